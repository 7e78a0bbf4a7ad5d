//! The writer's copy of every membership's state ([`Known`]). It is read
//! from the whole log on a thread of its own at start, so a start on a
//! large log answers its first delivery as soon as the chain's end is
//! found; the writer keeps it current meanwhile (records written before
//! the load is done wait in a backlog, applied after it), and only what
//! needs it waits for it: a role change, reconciliation's guard, readers.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::log::days::Day;
use crate::log::members::{Change, Member, Members};
use crate::log::record::Record;

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
    members: Members,
    loaded: bool,
    /// Which load counts: a reload makes the one still running stale.
    generation: u64,
    /// Records written while the load runs, in order.
    backlog: Vec<Record>,
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
    Member(String, Option<Box<Member>>),
    Backlog,
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
                let loaded = Members::load_through(&days, through).unwrap_or_else(|error| {
                    tracing::error!(
                        error = %format!("{:#}", anyhow::Error::new(error)),
                        "the membership state could not be read from the log: role changes and reconciliation compare against what this run writes only"
                    );
                    Members::default()
                });
                known.publish(generation, loaded);
            });
        if let Err(error) = spawned {
            tracing::error!(%error, "could not start reading the membership state; reading it now");
            let loaded = Members::load_through(&list, through).unwrap_or_default();
            self.publish(generation, loaded);
        }
    }

    fn publish(&self, generation: u64, mut members: Members) {
        let mut state = self.lock();
        if state.generation != generation {
            return;
        }
        for record in state.backlog.drain(..) {
            members.apply(Change::from(&record));
        }
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

    /// `state` once the load is done.
    pub(super) fn wait<'k>(&self, mut state: MutexGuard<'k, State>) -> MutexGuard<'k, State> {
        while !state.loaded {
            state = self.loaded.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state
    }

    /// The seq of the last membership record the state holds (the log's
    /// at start included). Read under the lock a batch keeps until it is
    /// durable, so never a seq a failed batch gives back.
    pub(super) fn last_seq(&self) -> u64 {
        self.lock().last_seq
    }

    /// Reads the state once it is loaded.
    pub(super) fn read<T>(&self, read: impl FnOnce(&Members) -> T) -> T {
        read(&self.wait(self.lock()).members)
    }
}

impl State {
    /// The membership as the log holds it; before the load is done, only
    /// what this run wrote is known (the writer waits first where that
    /// matters).
    pub(super) fn get(&self, membership_id: &str) -> Option<&Member> {
        self.members.get(membership_id)
    }

    /// Applies a written record, returning how to take it back.
    pub(super) fn apply(&mut self, record: &Record) -> Undo {
        let last_seq = std::mem::replace(&mut self.last_seq, record.seq);
        if !self.loaded {
            self.backlog.push(record.clone());
            return Undo {
                change: UndoChange::Backlog,
                last_seq,
            };
        }
        let before = self
            .members
            .get(&record.membership_id)
            .cloned()
            .map(Box::new);
        self.members.apply(Change::from(record));
        Undo {
            change: UndoChange::Member(record.membership_id.clone(), before),
            last_seq,
        }
    }

    pub(super) fn undo(&mut self, undo: Undo) {
        self.last_seq = undo.last_seq;
        match undo.change {
            UndoChange::Member(id, before) => self.members.restore(id, before.map(|b| *b)),
            UndoChange::Backlog => {
                self.backlog.pop();
            }
        }
    }
}
