//! Catching up an index of several receivers: each receiver's durable
//! records past its position, merged in received order
//! ([`crate::log::merge`]), each event folded in once with every receiver
//! that recorded it.
//!
//! A batch is a merge of its own. It reads each receiver on from where
//! the last commit left it and, once it has read enough, stops every
//! receiver at the newest time it has read of any: the merge then gives
//! out every event still waiting for copies, and the commit holds each
//! receiver's position exactly (every record up to it folded in, none
//! after). A catch-up ends the same way, with its last batch. The events
//! a later batch's records are copies of (a copy a moment after the cut,
//! a slower receiver's, one reconciled after its receiver was down) are
//! found in the index by their identity, as the merge finds them within
//! a batch ([`Merged::Late`]), within the writer's dedup window, and gain
//! that receiver instead of being added again: the index holds each
//! event's identity until every receiver has recorded it.

use std::cell::RefCell;

use super::build::{BATCH, CaughtUp};
use super::fold::{Fold, Row};
use super::lines::Lines;
use super::state::{self, Track};
use super::{Index, IndexError};
use crate::clock::Clock;
use crate::log::merge::{self, Key, Merge, Mergeable, Merged};
use crate::log::reader::RecordView;
use crate::log::record::scan;

/// A receiver's record, read for the merge; its line is parsed again
/// only if it is the copy folded in.
struct Recorded {
    line: Vec<u8>,
    received_at: String,
    key: Key,
    not_before: Option<String>,
    hash: String,
    day: String,
    offset: u64,
}

impl Mergeable for Recorded {
    fn received_at(&self) -> &str {
        &self.received_at
    }

    fn key(&self) -> Key {
        self.key
    }
}

/// Where a batch ends, shared by its receivers' inputs.
#[derive(Debug, Default)]
struct Cut {
    /// The newest `received_at` read of any receiver.
    newest: String,
    /// Once set, each input reads nothing received after it.
    at: Option<String>,
    /// Records read in the batch.
    read: u64,
}

/// One receiver's records for a batch, from its position on.
struct Input<'c> {
    lines: Lines,
    /// Its durable head: nothing past it is read.
    through: u64,
    /// Where it has got to, and its coverage: each record read goes in.
    track: Track,
    cut: &'c RefCell<Cut>,
    /// A record read past the cut, for the next batch's merge.
    past_cut: Option<Recorded>,
    ended: bool,
    line: Vec<u8>,
    scratch: String,
}

impl Iterator for Input<'_> {
    type Item = Result<Recorded, IndexError>;

    fn next(&mut self) -> Option<Self::Item> {
        let next = match self.past_cut.take() {
            Some(next) => next,
            None => match self.read() {
                Ok(Some(next)) => next,
                Ok(None) => return None,
                Err(error) => return Some(Err(error)),
            },
        };
        let mut cut = self.cut.borrow_mut();
        if cut.at.as_ref().is_some_and(|at| next.received_at > *at) {
            self.past_cut = Some(next);
            return None;
        }
        if next.received_at > cut.newest {
            cut.newest.clone_from(&next.received_at);
        }
        cut.read += 1;
        // Read into this batch's merge: it is folded in by the commit.
        let track = &mut self.track;
        track.see(
            next.key.event,
            next.key.source,
            &next.received_at,
            next.not_before.as_deref(),
        );
        track.at.seq = next.key.seq;
        track.at.hash.clone_from(&next.hash);
        track.at.day = Some(next.day.clone());
        track.at.offset = next.offset;
        Some(Ok(next))
    }
}

impl Input<'_> {
    /// The receiver's next record past its position and up to its head.
    fn read(&mut self) -> Result<Option<Recorded>, IndexError> {
        while !self.ended {
            let Some(offset) = self.lines.next(&mut self.line)? else {
                self.ended = true;
                break;
            };
            let Some(seq) = scan::leading_seq(&self.line) else {
                continue;
            };
            if seq <= self.track.at.seq {
                continue;
            }
            if seq > self.through {
                self.ended = true;
                break;
            }
            // A damaged line is `verify`'s to report; the index goes on
            // from the lines that read.
            let Ok(view) = RecordView::parse_reusing(&self.line, &mut self.scratch) else {
                continue;
            };
            let own = !view.event.is_membership();
            let mut recorded = Recorded {
                received_at: view.received_at.to_string(),
                key: view.key(),
                // Read only for a start's gap.
                not_before: own
                    .then(|| view.not_before.as_deref().map(str::to_string))
                    .flatten(),
                hash: view.hash.to_string(),
                day: self.lines.day().to_string(),
                offset,
                line: Vec::new(),
            };
            recorded.line = std::mem::take(&mut self.line);
            return Ok(Some(recorded));
        }
        Ok(None)
    }
}

impl Index {
    /// Whether the file still holds this index's receivers: a read of
    /// another set with the same first `--dir` may have remade it since
    /// this connection opened it (serve's indexer keeps one open for
    /// good). Nothing is folded under another set's names, and the
    /// caller, opening it again, rebuilds it for its own.
    fn still_the_set(&self) -> Result<(), IndexError> {
        let held = state::names(&self.conn)?;
        let ours = self.receivers.iter().map(|r| r.name.as_str());
        if held.iter().map(String::as_str).eq(ours.clone()) {
            return Ok(());
        }
        Err(IndexError::Receiver(format!(
            "{} now holds receivers {} (a read of another set of receivers with the same first --dir remade it for them), not {}: run the command again, which rebuilds it for these; give each set a first --dir of its own to keep both",
            self.file().display(),
            held.join(", "),
            ours.collect::<Vec<_>>().join(", ")
        )))
    }

    /// Folds in each receiver's records past the index's newest, up to
    /// its seq in `through`, merged; stops after the batch that reads the
    /// `most`th record.
    pub(super) fn merge_up_to(
        &mut self,
        through: &[u64],
        most: u64,
        clock: &dyn Clock,
    ) -> Result<CaughtUp, IndexError> {
        // Before the positions are read: another set's would say nothing
        // of this one's (checked again under the batch's lock).
        self.still_the_set()?;
        let start = state::read(&self.conn)?;
        let mut done = CaughtUp {
            records: 0,
            seq: start.iter().map(|t| t.at.seq).sum(),
        };
        if start.iter().zip(through).all(|(t, &head)| t.at.seq >= head) {
            return Ok(done);
        }
        let all = merge::Receivers::first(self.receivers.len());
        let all = mask(all);
        let mut fold = Fold::new(&self.conn, self.texts)?;
        let mut scratch = String::new();
        loop {
            fold.begin()?;
            self.still_the_set()?;
            let mut next_id: u64 =
                self.conn
                    .query_row("SELECT coalesce(max(id), 0) + 1 FROM record", [], |row| {
                        row.get(0)
                    })?;
            let cut = RefCell::new(Cut::default());
            let mut inputs = Vec::with_capacity(self.receivers.len());
            for ((receiver, track), &head) in self
                .receivers
                .iter()
                .zip(std::mem::take(&mut fold.tracks))
                .zip(through)
            {
                inputs.push(Input {
                    lines: Lines::from(&receiver.dir, &track.at)?,
                    through: head,
                    track,
                    cut: &cut,
                    past_cut: None,
                    ended: false,
                    line: Vec::new(),
                    scratch: String::new(),
                });
            }
            let enough = (BATCH as u64).min(most.saturating_sub(done.records)).max(1);
            for merged in Merge::new(inputs.iter_mut().collect()) {
                let (record, receiver, receivers) = match merged? {
                    Merged::Event {
                        record,
                        receiver,
                        receivers,
                    } => (record, receiver, mask(receivers)),
                    Merged::Late { copy, receiver, .. } => (copy, receiver, 1 << receiver),
                };
                let row = Row {
                    id: next_id,
                    receiver,
                    seq: Some(record.key.seq),
                    receivers,
                    identity: record.key.identity.filter(|_| receivers != all),
                };
                if land(&mut fold, &record, row, all, &mut scratch)? {
                    next_id += 1;
                }
                let mut cut = cut.borrow_mut();
                if cut.at.is_none() && cut.read >= enough {
                    cut.at = Some(cut.newest.clone());
                }
            }
            fold.tracks = inputs.into_iter().map(|input| input.track).collect();
            let Cut { read, at, .. } = cut.into_inner();
            if read == 0 {
                // Nothing new (a log without a head file, read to its
                // end): the batch is rolled back, not committed unchanged.
                return Ok(done);
            }
            done.seq = fold.commit(clock)?;
            done.records += read;
            // No cut: every receiver was read to its head.
            if at.is_none() || done.records >= most {
                return Ok(done);
            }
        }
    }
}

/// Folds in `record` as `row`, unless it is a copy of an event the index
/// has from other receivers: then that event gains its receivers.
/// Returns whether it added a row.
fn land(
    fold: &mut Fold<'_>,
    record: &Recorded,
    row: Row,
    all: u64,
    scratch: &mut String,
) -> Result<bool, IndexError> {
    // An event every receiver recorded is no copy of an earlier one: one
    // receiver's records are never copies of each other.
    if let Some(identity) = record.key.identity
        && row.receivers != all
        && let Some((id, before)) = fold.copy_of(
            identity,
            row.receivers,
            (
                &since(record, merge::REMEMBER_MS),
                &since(record, delivered_window(record)),
            ),
        )?
    {
        fold.add_receivers(id, before, row.receivers, all)?;
        return Ok(false);
    }
    // It read when the merge took it in.
    let Ok(view) = RecordView::parse_reusing(&record.line, scratch) else {
        return Ok(false);
    };
    fold.event(&view, row)?;
    Ok(true)
}

/// How long before `record` the first copy of its event may be, when that
/// copy was a delivery ([`merge::delivered_copy_window_ms`]).
fn delivered_window(record: &Recorded) -> i64 {
    merge::delivered_copy_window_ms(record.key.event, record.key.source)
}

/// The time `window_ms` before `record`: the oldest an event it is a copy
/// of can have.
fn since(record: &Recorded, window_ms: i64) -> String {
    merge::shifted(&record.received_at, -window_ms).unwrap_or_default()
}

/// The receivers as one bit a place.
fn mask(receivers: merge::Receivers) -> u64 {
    receivers.iter().fold(0, |mask, place| mask | 1 << place)
}
