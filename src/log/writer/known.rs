//! The writer's copy of every membership's state ([`Known`]): only what
//! its rules decide by ([`MemberState`], 8 bytes) under a 12-byte digest
//! of the membership id, 20 bytes per membership in a [`DigestMap`]; the
//! ids, names and emails are the index's to answer (or a fold of the log
//! for one room, see [`crate::reconcile`]). It is read from the whole log
//! on threads of its own at start, so a start on a large log answers its
//! first delivery as soon as the chain's end is found; the writer keeps it
//! current meanwhile (records written before the load is done wait in a
//! backlog, 32 bytes each, applied after it), and only what needs it waits
//! for it: a role change, reconciliation's guard.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use sha2::{Digest, Sha256};

use super::compact::DigestMap;
use super::idle::Watchdog;
use crate::log::days::Day;
use crate::log::reader::{self, Block, ReadError, RecordView};
use crate::log::record::{Event, Record, Source, scan};

/// One membership as the writer's rules need it, in 8 bytes: the seq of
/// its last record (the high 59 bits), where that record came from, its
/// moderator flag and whether it is present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberState(u64);

const PRESENT: u64 = 1;
const MODERATOR_SHIFT: u32 = 1;
const SOURCE_SHIFT: u32 = 3;
const SEQ_SHIFT: u32 = 5;

impl MemberState {
    fn new(present: bool, is_moderator: Option<bool>, last_seq: u64, source: Source) -> Self {
        let moderator = match is_moderator {
            None => 0,
            Some(false) => 1,
            Some(true) => 2,
        };
        let source = match source {
            Source::Webhook => 0,
            Source::Reconciled => 1,
            Source::EventsApi => 2,
        };
        // A seq past 2^59 would take 18,000 years at a million records a
        // second.
        Self(
            u64::from(present)
                | moderator << MODERATOR_SHIFT
                | source << SOURCE_SHIFT
                | last_seq << SEQ_SHIFT,
        )
    }

    /// Joined and not left since.
    pub fn present(self) -> bool {
        self.0 & PRESENT != 0
    }

    pub fn is_moderator(self) -> Option<bool> {
        match (self.0 >> MODERATOR_SHIFT) & 3 {
            0 => None,
            flag => Some(flag == 2),
        }
    }

    /// The seq of the last record about this membership.
    pub fn last_seq(self) -> u64 {
        self.0 >> SEQ_SHIFT
    }

    /// Where that last record was learned from.
    pub fn last_source(self) -> Source {
        match (self.0 >> SOURCE_SHIFT) & 3 {
            0 => Source::Webhook,
            1 => Source::Reconciled,
            _ => Source::EventsApi,
        }
    }

    /// The state after `step` (a membership record of this membership).
    fn after(state: Option<Self>, step: &Step) -> Self {
        let (mut present, mut moderator) =
            state.map_or((false, None), |s| (s.present(), s.is_moderator()));
        match step.event {
            Event::Joined => {
                present = true;
                moderator = step.is_moderator;
            }
            Event::Left => present = false,
            Event::ModeratorGranted | Event::ModeratorRevoked => moderator = step.event.moderator(),
            Event::ReceiverStarted | Event::ReceiverStopped => {}
        }
        Self::new(present, moderator, step.seq, step.source)
    }
}

/// The digest a membership's state is kept under (of which the map keeps
/// 12 bytes).
pub(super) fn membership_key(membership_id: &str) -> u128 {
    let digest = Sha256::digest(membership_id.as_bytes());
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest[..16]);
    u128::from_le_bytes(first)
}

/// What one membership record changes in the state: 32 bytes.
#[derive(Debug, Clone, Copy)]
struct Step {
    key: u128,
    seq: u64,
    event: Event,
    source: Source,
    is_moderator: Option<bool>,
}

impl Step {
    /// `None` for a record that changes no membership (the receiver's own,
    /// or one without a membership id).
    fn of(
        seq: u64,
        event: Event,
        source: Source,
        is_moderator: Option<bool>,
        membership_id: &str,
    ) -> Option<Self> {
        (event.is_membership() && !membership_id.is_empty()).then(|| Step {
            key: membership_key(membership_id),
            seq,
            event,
            source,
            is_moderator,
        })
    }

    fn of_record(record: &Record) -> Option<Self> {
        Self::of(
            record.seq,
            record.event,
            record.source,
            record.is_moderator,
            &record.membership_id,
        )
    }
}

/// Every membership's state, and whether the load from disk is done.
#[derive(Debug, Default)]
pub(super) struct Known {
    state: Mutex<State>,
    loaded: Condvar,
    /// The same news for async readers.
    ready: tokio::sync::watch::Sender<bool>,
}

#[derive(Debug, Default)]
pub(super) struct State {
    /// By [`membership_key`]: 20 bytes per membership.
    members: DigestMap,
    loaded: bool,
    /// Which load counts: a reload makes the one still running stale.
    generation: u64,
    /// What the records written while the load runs change, in order.
    backlog: Vec<Step>,
    /// The seq of the last membership record applied: a listing that
    /// begins now knows nothing of a record after it.
    last_seq: u64,
}

/// How to take back one record's change if its batch fails: the
/// membership (or the backlog) and the last seq as they were.
pub(super) struct Undo {
    change: UndoChange,
    last_seq: u64,
}

enum UndoChange {
    Member(u128, Option<u64>),
    Backlog,
    Nothing,
}

impl Known {
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads `days` up to seq `through` on a thread of its own, then
    /// applies what was written meanwhile. A load started later wins.
    pub(super) fn load(self: &Arc<Self>, days: Vec<Day>, through: u64) {
        let generation = {
            let mut state = self.lock();
            state.loaded = false;
            state.backlog.clear();
            state.last_seq = through;
            state.generation += 1;
            state.generation
        };
        self.ready.send_replace(false);
        let (known, list) = (self.clone(), days.clone());
        let spawned = std::thread::Builder::new()
            .name("membership-state".into())
            .spawn(move || {
                let started = std::time::Instant::now();
                let loaded = load_through(&days, through).unwrap_or_else(|error| {
                    tracing::error!(
                        error = %format!("{:#}", anyhow::Error::new(error)),
                        "the membership state could not be read from the log: role changes and reconciliation compare against what this run writes only"
                    );
                    DigestMap::default()
                });
                tracing::info!(
                    memberships = loaded.len(),
                    seconds = started.elapsed().as_secs_f64(),
                    "membership state read from the log"
                );
                known.publish(generation, loaded);
                crate::heap::give_back();
            });
        if let Err(error) = spawned {
            tracing::error!(%error, "could not start reading the membership state; reading it now");
            let loaded = load_through(&list, through).unwrap_or_default();
            self.publish(generation, loaded);
        }
    }

    fn publish(&self, generation: u64, mut members: DigestMap) {
        let mut state = self.lock();
        if state.generation != generation {
            return;
        }
        for step in std::mem::take(&mut state.backlog) {
            apply(&mut members, &step);
        }
        members.settle();
        state.members = members;
        state.loaded = true;
        self.loaded.notify_all();
        self.ready.send_replace(true);
    }

    /// Resolves once the state is loaded.
    pub(super) async fn ready(&self) {
        let mut ready = self.ready.subscribe();
        // The sender lives as long as `self`.
        let _ = ready.wait_for(|ready| *ready).await;
    }

    /// `state` once the load is done. The writer waits here for a load
    /// that can take as long as a read of the whole log: it is waiting,
    /// not wedged, so it keeps pinging the `watchdog` meanwhile.
    pub(super) fn wait<'k>(
        &self,
        mut state: MutexGuard<'k, State>,
        mut watchdog: Option<&mut Watchdog>,
    ) -> MutexGuard<'k, State> {
        while !state.loaded {
            state = match watchdog.as_deref_mut() {
                Some(watchdog) => {
                    self.loaded
                        .wait_timeout(state, watchdog.tick())
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
                None => self.loaded.wait(state).unwrap_or_else(|e| e.into_inner()),
            };
        }
        state
    }

    /// The seq of the last membership record the state holds (the log's
    /// at start included). Read under the lock a batch keeps until it is
    /// durable, so never a seq a failed batch gives back.
    pub(super) fn last_seq(&self) -> u64 {
        self.lock().last_seq
    }
}

/// Applies `step`, returning what its membership was.
fn apply(members: &mut DigestMap, step: &Step) -> Option<u64> {
    members.update(step.key, |before| {
        MemberState::after(before.map(MemberState), step).0
    })
}

impl State {
    /// The membership as the log holds it; before the load is done, only
    /// what this run wrote is known (the writer waits first where that
    /// matters).
    pub(super) fn get(&self, membership_id: &str) -> Option<MemberState> {
        self.members
            .get(membership_key(membership_id))
            .map(MemberState)
    }

    /// Applies a written record, returning how to take it back.
    pub(super) fn apply(&mut self, record: &Record) -> Undo {
        let last_seq = std::mem::replace(&mut self.last_seq, record.seq);
        let change = match Step::of_record(record) {
            None => UndoChange::Nothing,
            Some(step) if !self.loaded => {
                self.backlog.push(step);
                UndoChange::Backlog
            }
            Some(step) => UndoChange::Member(step.key, apply(&mut self.members, &step)),
        };
        Undo { change, last_seq }
    }

    pub(super) fn undo(&mut self, undo: Undo) {
        self.last_seq = undo.last_seq;
        match undo.change {
            UndoChange::Member(key, Some(before)) => {
                self.members.insert(key, before);
            }
            UndoChange::Member(key, None) => {
                self.members.remove(key);
            }
            UndoChange::Backlog => {
                self.backlog.pop();
            }
            UndoChange::Nothing => {}
        }
    }

    /// Between batches: lets the map fold in what it took since.
    pub(super) fn settle(&mut self) {
        self.members.settle();
    }
}

/// The state of every membership of `days`, from its records up to seq
/// `through`: each block's lines are read into steps on every core, and
/// the steps applied in log order. The state is folded into one
/// [`DigestMap`] at a time, so a start holds no second copy of it.
fn load_through(days: &[Day], through: u64) -> Result<DigestMap, ReadError> {
    struct Slot {
        steps: Vec<Step>,
        scratch: String,
        /// The damaged lines, by their index in the block.
        damaged: Vec<(usize, String)>,
    }
    let mut members = DigestMap::default();
    reader::in_log_order(
        days,
        || Slot {
            steps: Vec::new(),
            scratch: String::new(),
            damaged: Vec::new(),
        },
        |block: &Block, slot: &mut Slot| {
            slot.steps.clear();
            slot.damaged.clear();
            let mut count = 0;
            // Split by memchr: a byte-by-byte split was a third of a load.
            for (i, (line, whole)) in block.lines().enumerate() {
                count += 1;
                if !whole {
                    continue;
                }
                // The fields it needs, found without a parse: the parse is
                // most of a start's time on a big log.
                if let Some(state) = scan::membership_state(line) {
                    if state.seq <= through {
                        slot.steps.extend(Step::of(
                            state.seq,
                            state.event,
                            state.source,
                            state.is_moderator,
                            state.membership_id,
                        ));
                    }
                    continue;
                }
                match RecordView::parse_reusing(line, &mut slot.scratch) {
                    Ok(view) if view.seq <= through => slot.steps.extend(Step::of(
                        view.seq,
                        view.event,
                        view.source,
                        view.is_moderator,
                        &view.membership_id,
                    )),
                    Ok(_) => {}
                    Err(error) if !line.is_empty() => slot.damaged.push((i, error.to_string())),
                    Err(_) => {}
                }
            }
            count
        },
        |place, slot: &mut Slot| {
            for (i, error) in &slot.damaged {
                // A damaged line is `verify`'s to report; the state goes on
                // from the lines that read.
                tracing::warn!(
                    file = %place.day.path().display(),
                    line = place.lines_before + *i as u64 + 1,
                    %error,
                    "a line that is not a record was left out of the membership state"
                );
            }
            for step in &slot.steps {
                apply(&mut members, step);
            }
            members.settle();
            Ok::<_, ReadError>(())
        },
    )?;
    Ok(members)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_is_8_bytes_and_a_backlog_step_32() {
        assert_eq!(
            (
                std::mem::size_of::<MemberState>(),
                std::mem::size_of::<Step>()
            ),
            (8, 32)
        );
    }

    #[test]
    fn a_state_holds_each_flag_and_the_seq_as_made() {
        for present in [false, true] {
            for moderator in [None, Some(false), Some(true)] {
                for source in Source::ALL {
                    let state = MemberState::new(present, moderator, (1 << 59) - 1, source);
                    assert_eq!(
                        (
                            state.present(),
                            state.is_moderator(),
                            state.last_seq(),
                            state.last_source()
                        ),
                        (present, moderator, (1 << 59) - 1, source)
                    );
                }
            }
        }
    }
}
