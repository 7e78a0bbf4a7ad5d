//! A block of the log checked on any core: each line parsed (in place
//! when it is laid out as the writer seals it), its own hash checked, and
//! each link inside the block followed by the chain's rule. What is left
//! for the pass in log order is little: the block's first link, the
//! receiver's own records, the counts, and the records a head names.

use std::collections::BTreeSet;

use crate::log::chain::Chain;
use crate::log::reader::{Block, RecordView};
use crate::log::record::{self, Event, LineError, Record, Source, scan};

/// What following the chain needs of a record that checked out on its
/// own: a few short strings instead of the whole record's.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Link {
    pub seq: u64,
    pub received_at: String,
    pub prev_hash: String,
    pub hash: String,
}

impl Link {
    /// `received_at`'s UTC day, `YYYY-MM-DD`.
    pub fn day(&self) -> &str {
        day_of(&self.received_at)
    }
}

fn day_of(received_at: &str) -> &str {
    received_at.get(..10).unwrap_or(received_at)
}

impl From<Record> for Link {
    fn from(r: Record) -> Self {
        Link {
            seq: r.seq,
            received_at: r.received_at,
            prev_hash: r.prev_hash,
            hash: r.hash,
        }
    }
}

impl From<RecordView<'_>> for Link {
    fn from(r: RecordView<'_>) -> Self {
        Link {
            seq: r.seq,
            received_at: r.received_at.into_owned(),
            prev_hash: r.prev_hash.into_owned(),
            hash: r.hash.into_owned(),
        }
    }
}

/// A record the pass in log order must see itself: the receiver's own
/// starts and stops, which make the
/// coverage, and the block's first record, after which the log has
/// begun.
#[derive(Debug)]
pub(super) struct Mark {
    pub event: Event,
    pub received_at: String,
    pub not_before: Option<String>,
}

/// A line that does not check out: where in the block, its seq as far as
/// it can be read, what is wrong, and whether it had its newline.
#[derive(Debug)]
pub(super) struct Bad {
    pub index: u64,
    pub seq: Option<u64>,
    pub problem: String,
    pub whole: bool,
}

/// One block checked on its own, up to its first bad line.
#[derive(Debug, Default)]
pub(super) struct Checked {
    /// Lines gone through.
    pub lines: u64,
    /// The first record, whose link to the block before is the pass's
    /// to check; `None` when the first line is bad.
    pub first: Option<Link>,
    /// The chain after the first record, through every record that
    /// checked out (`records` of them past the first).
    pub run: Chain,
    pub marks: Vec<Mark>,
    /// The records `wanted` named: their place, seq and hash.
    pub found: Vec<(u64, u64, String)>,
    /// Records that checked out, by [`Source::ALL`]'s order.
    pub by_source: [u64; 3],
    /// When the last record that checked out was received.
    pub last_at: String,
    pub bad: Option<Bad>,
}

impl Checked {
    /// The place of the last record that checked out.
    pub fn last_index(&self) -> Option<u64> {
        self.first.as_ref().map(|_| self.run.records)
    }
}

/// Checks the lines of `block`, the day `day` (`YYYY-MM-DD`), up to the
/// first bad one (nothing after it is checked); `wanted` are the seqs
/// whose hashes the pass needs.
pub(super) fn check_block(block: &Block, day: &str, wanted: &BTreeSet<u64>, out: &mut Checked) {
    *out = Checked::default();
    let mut scratch = String::new();
    for (index, (bytes, whole)) in (0u64..).zip(block.lines()) {
        out.lines += 1;
        let bad = |problem: String| Bad {
            index,
            seq: scan::leading_seq(bytes),
            problem,
            whole,
        };
        if !whole {
            out.bad = Some(bad(CUT_SHORT.into()));
            return;
        }
        let view = match checked(bytes, &mut scratch) {
            Ok(view) => view,
            Err(problem) => {
                out.bad = Some(bad(problem));
                return;
            }
        };
        if out.first.is_some() {
            if let Err(problem) = out.run.check(view.seq, &view.prev_hash) {
                out.bad = Some(bad(problem.to_string()));
                return;
            }
            if day_of(&view.received_at) != day {
                out.bad = Some(bad(wrong_day(&view.received_at, day)));
                return;
            }
            out.run
                .push(view.seq, &view.prev_hash, &view.hash)
                .expect("checked above");
        } else {
            out.run = Chain::after(view.seq, view.hash.to_string());
        }
        if out.first.is_none() || !view.event.is_membership() {
            out.marks.push(Mark {
                event: view.event,
                received_at: view.received_at.to_string(),
                not_before: view.not_before.as_deref().map(str::to_string),
            });
        }
        if wanted.contains(&view.seq) {
            out.found.push((index, view.seq, view.hash.to_string()));
        }
        out.by_source[source_index(view.source)] += 1;
        out.last_at.clear();
        out.last_at.push_str(&view.received_at);
        if out.first.is_none() {
            out.first = Some(Link {
                seq: view.seq,
                received_at: view.received_at.to_string(),
                prev_hash: view.prev_hash.to_string(),
                hash: view.hash.to_string(),
            });
        }
    }
}

fn source_index(source: Source) -> usize {
    Source::ALL
        .iter()
        .position(|&s| s == source)
        .expect("every source is in ALL")
}

const CUT_SHORT: &str = "the line is cut short (no newline at the end): the file was truncated";

/// What a record received on another day than its file's says.
pub(super) fn wrong_day(received_at: &str, day: &str) -> String {
    format!(
        "a record received on {} is in the file for {day}",
        day_of(received_at)
    )
}

fn damaged(e: LineError) -> String {
    match e {
        LineError::HashMismatch => {
            "the record does not match its hash: its content was modified".to_string()
        }
        LineError::Parse(why) => format!("not a record ({why}): the line was damaged"),
    }
}

/// The record on a line, if it is untouched. A line laid out as the
/// writer seals it is read in place, every member checked for its type
/// ([`RecordView::parse_sealed`]); any other gets the full parse. Either
/// way the hash is of the stored bytes, never of a re-serialised record
/// ([`record::check_seal`]).
fn checked<'a>(bytes: &'a [u8], scratch: &'a mut String) -> Result<RecordView<'a>, String> {
    match RecordView::parse_sealed(bytes, scratch) {
        Some(view) => record::check_seal(bytes, &view.hash).map(|()| view),
        None => record::parse_line(bytes).map(RecordView::from),
    }
    .map_err(damaged)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind of record the writer seals: each event from each
    /// source, with and without `not_before`, titles and names that need
    /// escapes, empty and absent fields.
    fn every_kind() -> Vec<Record> {
        let mut all = Vec::new();
        for event in Event::ALL {
            for source in Source::ALL {
                for not_before in [None, Some("2026-11-27T11:59:00.000Z".to_string())] {
                    all.push(Record {
                        seq: all.len() as u64 + 1,
                        event,
                        source,
                        not_before,
                        room_title: Some("Q3 \"board\" \\ é 😀 \n tab\t".into()),
                        person_display_name: (all.len() % 2 == 0).then(|| "Zoë".into()),
                        is_moderator: [None, Some(true), Some(false)][all.len() % 3],
                        ..record::example()
                    });
                }
            }
        }
        all.push(Record::receiver(Event::ReceiverStarted, None));
        all.push(Record::receiver(Event::ReceiverStopped, Some("x".into())));
        let site: crate::receiver::Name = "site-a".parse().unwrap();
        all.push(Record::receiver(Event::ReceiverStarted, Some("x".into())).by(&site));
        all.push(Record::receiver(Event::ReceiverStopped, None).by(&site));
        all
    }

    #[test]
    fn a_sealed_line_read_in_place_checks_out_as_the_full_parse_does() {
        for mut record in every_kind() {
            record.received_at = "2026-11-27T12:00:00.000Z".into();
            let sealed = record.seal();
            let line = &sealed[..sealed.len() - 1];
            let mut scratch = String::new();
            assert!(
                RecordView::parse_sealed(line, &mut scratch).is_some()
                    || String::from_utf8_lossy(line).contains("\\u"),
                "the fast path reads every sealed line: {}",
                String::from_utf8_lossy(line)
            );
            let full = Link::from(record::parse_line(line).unwrap());
            assert_eq!(checked(line, &mut scratch).map(Link::from), Ok(full));

            // One byte changed inside the content is a mismatch either way.
            let edited = String::from_utf8_lossy(line).replacen("12:00:00", "12:00:01", 1);
            let answer = checked(edited.as_bytes(), &mut scratch)
                .map(Link::from)
                .unwrap_err();
            assert!(answer.contains("does not match its hash"), "{answer}");
        }
    }

    #[test]
    fn a_line_of_another_layout_gets_the_full_parse_and_its_verdict() {
        let mut record = record::example();
        let sealed = record.seal();
        let line = &sealed[..sealed.len() - 1];
        let text = std::str::from_utf8(line).unwrap();
        // A member of the wrong type, with a hash made to match it: the
        // full parse refuses it, as it always did.
        let content = &text[..text.rfind(",\"hash\":").unwrap()];
        let wrong_type = content.replacen("\"is_room_hidden\":null", "\"is_room_hidden\":5", 1);
        assert_ne!(wrong_type, content);
        let (_, resealed) = record::seal(format!("{wrong_type}}}").into_bytes());
        let resealed = &resealed[..resealed.len() - 1];
        let mut scratch = String::new();
        assert!(RecordView::parse_sealed(resealed, &mut scratch).is_none());
        let answer = checked(resealed, &mut scratch).map(Link::from).unwrap_err();
        assert!(answer.contains("not a record"), "{answer}");
    }
}
