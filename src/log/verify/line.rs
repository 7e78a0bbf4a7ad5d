//! One line of the log checked on its own, on any core: parsed (in place
//! when it is laid out as the writer seals it), its own hash checked, and
//! kept as only what following the chain needs.

use std::borrow::Cow;

use crate::log::reader::{Block, RecordView};
use crate::log::record::{self, Event, LineError, Record, Source, scan};

/// A line checked on its own: what the chain needs of its record, or what
/// is wrong with it, and its seq as far as it can be read.
pub(super) struct Parsed {
    pub record: Result<Link, String>,
    pub seq: Option<u64>,
    pub whole: bool,
}

/// What following the chain needs of a record that checked out on its
/// own: a few short strings instead of the whole record's.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Link {
    pub seq: u64,
    pub received_at: String,
    pub event: Event,
    pub source: Source,
    pub not_before: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

impl Link {
    /// `received_at`'s UTC day, `YYYY-MM-DD`.
    pub fn day(&self) -> &str {
        self.received_at.get(..10).unwrap_or(&self.received_at)
    }
}

impl From<Record> for Link {
    fn from(r: Record) -> Self {
        Link {
            seq: r.seq,
            received_at: r.received_at,
            event: r.event,
            source: r.source,
            not_before: r.not_before,
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
            event: r.event,
            source: r.source,
            not_before: r.not_before.map(Cow::into_owned),
            prev_hash: r.prev_hash.into_owned(),
            hash: r.hash.into_owned(),
        }
    }
}

/// Parses and hashes the lines of `block`, up to the first bad one
/// (nothing after it is checked). Returns the number of lines gone
/// through.
pub(super) fn parse_block(block: &Block, parsed: &mut Vec<Parsed>) -> u64 {
    parsed.clear();
    let mut scratch = String::new();
    for (bytes, whole) in block.lines() {
        let record = parse(bytes, whole, &mut scratch);
        let bad = record.is_err();
        parsed.push(Parsed {
            record,
            seq: scan::leading_seq(bytes),
            whole,
        });
        if bad {
            break;
        }
    }
    parsed.len() as u64
}

/// The record on a line if it is whole and untouched. A line laid out as
/// the writer seals it is read in place, every member checked for its
/// type ([`RecordView::parse_sealed`]); any other gets the full parse.
/// Either way the hash is of the stored bytes, never of a re-serialised
/// record ([`record::check_seal`]).
fn parse(bytes: &[u8], whole: bool, scratch: &mut String) -> Result<Link, String> {
    if !whole {
        return Err("the line is cut short (no newline at the end): the file was truncated".into());
    }
    let checked = match RecordView::parse_sealed(bytes, scratch) {
        Some(view) => record::check_seal(bytes, &view.hash).map(|()| Link::from(view)),
        None => record::parse_line(bytes).map(Link::from),
    };
    checked.map_err(|e| match e {
        LineError::HashMismatch => {
            "the record does not match its hash: its content was modified".to_string()
        }
        LineError::Parse(why) => format!("not a record ({why}): the line was damaged"),
    })
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
            assert_eq!(parse(line, true, &mut scratch), Ok(full));

            // One byte changed inside the content is a mismatch either way.
            let edited = String::from_utf8_lossy(line).replacen("12:00:00", "12:00:01", 1);
            let answer = parse(edited.as_bytes(), true, &mut scratch).unwrap_err();
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
        let answer = parse(resealed, true, &mut scratch).unwrap_err();
        assert!(answer.contains("not a record"), "{answer}");
    }
}
