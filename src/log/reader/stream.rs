//! One receiver's records as a stream for a merge ([`Stream`]): read in
//! log order by the parallel block pipeline on a thread of its own, each
//! line kept as stored and read only for what the merge needs (seq,
//! `received_at`, event, source and the event's identity). Whoever gives
//! a record out parses it in full then, once, and only that copy: the
//! copies a merge drops are never parsed.
//!
//! A stream holds a few blocks in flight, and the records a merge keeps
//! waiting hold their block: memory follows the merge's window, never the
//! log's size.

use std::ops::Range;
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, LazyLock};
use std::thread::JoinHandle;

use memchr::memmem::Finder;
use time::Date;

use super::{Block, ReadError, RecordView, in_log_order};
use crate::log::days::Day;
use crate::log::merge::{self, Key, Mergeable};
use crate::log::record::{Event, Source, scan};

/// Blocks read ahead of the merge, per receiver.
const AHEAD: usize = 4;

/// The whole lines of one block, as stored, and where they are.
#[derive(Debug)]
struct Chunk {
    day: Day,
    /// The lines (newlines included), then any text unescaped out of them.
    text: Vec<u8>,
}

/// One record of a receiver's log, as the merge sees it: the line as
/// stored, where it is, and what the merge needs of it.
#[derive(Debug, Clone)]
pub struct Entry {
    chunk: Arc<Chunk>,
    line: Range<usize>,
    at: Range<usize>,
    /// 1-based, in its day's file.
    number: u64,
    key: Key,
}

impl Entry {
    /// The line as stored, without its newline.
    pub fn line(&self) -> &[u8] {
        &self.chunk.text[self.line.clone()]
    }

    /// The record, parsed in full.
    pub fn record(&self) -> Result<RecordView<'_>, ReadError> {
        RecordView::parse(self.line()).map_err(|e| self.not_a_record(e.to_string()))
    }

    /// The error for this line, which is not a record for `reason`.
    pub fn not_a_record(&self, reason: String) -> ReadError {
        ReadError::NotARecord {
            path: self.path().to_path_buf(),
            line: self.number,
            reason,
        }
    }

    /// The day file it was read from.
    pub fn path(&self) -> &Path {
        self.chunk.day.path()
    }

    pub fn date(&self) -> Date {
        self.chunk.day.date
    }

    /// Its line number in [`path`](Self::path), from 1.
    pub fn number(&self) -> u64 {
        self.number
    }
}

impl Mergeable for Entry {
    fn received_at(&self) -> &str {
        // Checked to be UTF-8 when it was read.
        std::str::from_utf8(&self.chunk.text[self.at.clone()]).unwrap_or_default()
    }

    fn key(&self) -> Key {
        self.key
    }
}

/// A receiver's records in log order, from the days it was opened on.
pub struct Stream {
    blocks: Option<Receiver<Result<Vec<Entry>, ReadError>>>,
    current: std::vec::IntoIter<Entry>,
    /// The last seq to give out: records past the durable head are not
    /// known durable yet.
    until: Option<u64>,
    ended: bool,
    /// The seq and day of the last record given out.
    last: Option<(u64, Date)>,
    reader: Option<JoinHandle<()>>,
}

impl Stream {
    /// Starts reading `days` (of one log, oldest first).
    pub fn open(days: Vec<Day>) -> Stream {
        let (sender, blocks) = sync_channel(AHEAD);
        let reader = std::thread::Builder::new()
            .name("rollcall-stream".into())
            .spawn(move || read(&days, &sender));
        let (reader, blocks) = match reader {
            Ok(reader) => (Some(reader), blocks),
            Err(e) => {
                // Said by the stream itself, as its first item.
                let (sender, blocks) = sync_channel(1);
                let _ = sender.send(Err(ReadError::Read {
                    path: "a reading thread".into(),
                    source: e,
                }));
                (None, blocks)
            }
        };
        Stream {
            blocks: Some(blocks),
            current: Vec::new().into_iter(),
            until: None,
            ended: false,
            last: None,
            reader,
        }
    }

    /// Gives out the records up to seq `until` only, when there is one.
    pub fn until(mut self, until: Option<u64>) -> Stream {
        self.until = until;
        self
    }

    /// The seq and day of the last record given out: where a reader that
    /// goes on from the stream's end starts.
    pub fn last(&self) -> Option<(u64, Date)> {
        self.last
    }
}

impl Iterator for Stream {
    type Item = Result<Entry, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.ended {
                return None;
            }
            if let Some(entry) = self.current.next() {
                if let Some(until) = self.until {
                    if entry.key.seq > until {
                        self.ended = true;
                        return None;
                    }
                    self.ended = entry.key.seq == until;
                }
                self.last = Some((entry.key.seq, entry.date()));
                return Some(Ok(entry));
            }
            match self.blocks.as_ref()?.recv() {
                Ok(Ok(entries)) => self.current = entries.into_iter(),
                Ok(Err(e)) => {
                    self.ended = true;
                    return Some(Err(e));
                }
                Err(_) => {
                    self.ended = true;
                    return None;
                }
            }
        }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        // The reader stops at its next block once no one takes them.
        self.blocks.take();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// Why the reading ended before the log did.
enum Stop {
    Read(ReadError),
    /// The stream was dropped.
    Gone,
}

impl From<ReadError> for Stop {
    fn from(e: ReadError) -> Self {
        Stop::Read(e)
    }
}

/// A block's lines read on a worker: their text and keys.
#[derive(Default)]
struct Scanned {
    text: Vec<u8>,
    /// Each line's range, `received_at`'s range, number in the block
    /// (from 1) and key.
    keys: Vec<(Range<usize>, Range<usize>, u64, Key)>,
    /// The first line that is not a record (number in the block), and why.
    bad: Option<(u64, String)>,
}

fn read(days: &[Day], sender: &SyncSender<Result<Vec<Entry>, ReadError>>) {
    let read = in_log_order(days, Scanned::default, scan_block, |place, scanned| {
        let chunk = Arc::new(Chunk {
            day: place.day.clone(),
            text: std::mem::take(&mut scanned.text),
        });
        let entries = scanned
            .keys
            .drain(..)
            .map(|(line, at, number, key)| Entry {
                chunk: chunk.clone(),
                line,
                at,
                number: place.lines_before + number,
                key,
            })
            .collect();
        sender.send(Ok(entries)).map_err(|_| Stop::Gone)?;
        if let Some((number, reason)) = scanned.bad.take() {
            return Err(Stop::Read(ReadError::NotARecord {
                path: place.day.path().to_path_buf(),
                line: place.lines_before + number,
                reason,
            }));
        }
        Ok(())
    });
    if let Err(Stop::Read(e)) = read {
        let _ = sender.send(Err(e));
    }
}

/// Keeps the whole lines of `block` and reads their keys, up to the
/// first line that is not a record. A last line without its newline is
/// being written, or torn: not a record yet (`verify` reports the torn
/// kind). Returns the number of lines gone through.
fn scan_block(block: &Block, scanned: &mut Scanned) -> u64 {
    scanned.keys.clear();
    scanned.bad = None;
    // A torn last line is the day's last: not counting it numbers no
    // line wrongly.
    let whole = block.whole_lines();
    scanned.text.clear();
    scanned.text.extend_from_slice(whole);
    let mut number = 0;
    let mut start = 0;
    while start < whole.len() {
        let end = memchr::memchr(b'\n', &whole[start..]).map_or(whole.len(), |i| start + i);
        number += 1;
        match read_key(&mut scanned.text, start..end) {
            Ok((at, key)) => scanned.keys.push((start..end, at, number, key)),
            Err(reason) => {
                scanned.bad = Some((number, reason));
                return number;
            }
        }
        start = end + 1;
    }
    number
}

/// The key of the line at `line` in `text`, and where its `received_at`
/// is: read in place on a line laid out as the writer seals it, else from
/// a full parse (an escaped `received_at` is then unescaped onto the end
/// of `text`). Only what is read is checked to be UTF-8: the copy given
/// out is parsed in full later, and a line that is not all UTF-8 is not
/// a record then.
fn read_key(text: &mut Vec<u8>, line: Range<usize>) -> Result<(Range<usize>, Key), String> {
    if let Some(found) = sealed_key(&text[line.clone()]) {
        let (at, key) = found;
        return Ok((line.start + at.start..line.start + at.end, key));
    }
    let bytes = &text[line.clone()];
    let record = RecordView::parse(bytes).map_err(|e| e.to_string())?;
    let key = record.key();
    let at = record.received_at.as_bytes();
    let within = bytes.as_ptr_range();
    let at = if within.contains(&at.as_ptr()) {
        let from = at.as_ptr() as usize - bytes.as_ptr() as usize;
        line.start + from..line.start + from + at.len()
    } else {
        let unescaped = record.received_at.into_owned();
        let from = text.len();
        text.extend_from_slice(unescaped.as_bytes());
        from..text.len()
    };
    Ok((at, key))
}

/// The key of a line as the writer seals it, found by its member order
/// without a parse; `None` (parse it instead) for anything unexpected,
/// such as an escape in the membership id.
fn sealed_key(line: &[u8]) -> Option<(Range<usize>, Key)> {
    static ID: LazyLock<Finder> = LazyLock::new(|| Finder::new(b",\"membership_id\":\""));
    static CREATED: LazyLock<Finder> = LazyLock::new(|| Finder::new(b",\"membership_created\":"));
    static SOURCE: LazyLock<Finder> = LazyLock::new(|| Finder::new(b",\"source\":\""));
    let seq = scan::leading_seq(line)?;
    let after_seq =
        b"{\"seq\":".len() + line[7..].iter().take_while(|b| b.is_ascii_digit()).count();
    let at_from = after_seq + literal(&line[after_seq..], b",\"received_at\":\"")?;
    let at = at_from..at_from + plain(&line[at_from..])?;
    let at_ms = merge::millis(std::str::from_utf8(&line[at.clone()]).ok()?);
    let event_from = at.end + 1 + literal(&line[at.end + 1..], b",\"event\":\"")?;
    let event_name = &line[event_from..event_from + plain(&line[event_from..])?];
    let event = Event::from_name(std::str::from_utf8(event_name).ok()?)?;
    let mut rest = event_from;
    let identity = if event.is_membership() {
        let id_from = rest + ID.find(&line[rest..])? + ID.needle().len();
        let id_end = id_from + plain(&line[id_from..])?;
        let created_from = id_end + CREATED.find(&line[id_end..])? + CREATED.needle().len();
        let created = match &line[created_from..] {
            value if value.starts_with(b"null,") => None,
            value if value.starts_with(b"\"") => {
                let end = created_from + 1 + plain(&line[created_from + 1..])?;
                Some(std::str::from_utf8(&line[created_from + 1..end]).ok()?)
            }
            _ => return None,
        };
        rest = created_from;
        let id = std::str::from_utf8(&line[id_from..id_end]).ok()?;
        merge::identity(event, id, created)
    } else {
        None
    };
    // Lines written before sources existed have none: a delivery's.
    let source = match SOURCE.find(&line[rest..]) {
        Some(found) => {
            let from = rest + found + SOURCE.needle().len();
            let name = &line[from..from + plain(&line[from..])?];
            Source::from_name(std::str::from_utf8(name).ok()?)?
        }
        None => Source::Webhook,
    };
    let key = Key {
        seq,
        at_ms,
        event,
        source,
        identity,
    };
    Some((at, key))
}

/// The length of `expected` if `bytes` starts with it.
fn literal(bytes: &[u8], expected: &[u8]) -> Option<usize> {
    bytes.starts_with(expected).then_some(expected.len())
}

/// The length of the string content `bytes` starts with, up to its
/// closing quote; `None` if it has an escape.
fn plain(bytes: &[u8]) -> Option<usize> {
    let end = memchr::memchr2(b'"', b'\\', bytes)?;
    (bytes[end] == b'"').then_some(end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::record::{self, Record};

    fn sealed(record: Record) -> Vec<u8> {
        let mut record = record;
        let mut line = record.seal();
        line.pop();
        line
    }

    #[test]
    fn a_sealed_line_reads_in_place_as_the_full_parse_reads_it() {
        for event in Event::ALL {
            for source in Source::ALL {
                for (id, created) in [
                    ("plain", Some("2026-11-27T01:00:00.000Z")),
                    ("plain", None),
                    ("with \"quotes\"", Some("x")),
                ] {
                    let line = sealed(Record {
                        seq: 42,
                        received_at: "2026-11-28T10:00:00.000Z".into(),
                        event,
                        source,
                        room_title: Some(",\"membership_id\":\"decoy\",\"source\":\"x".into()),
                        membership_id: id.into(),
                        membership_created: created.map(String::from),
                        ..record::example()
                    });
                    let mut text = line.clone();
                    let (at, key) = read_key(&mut text, 0..line.len()).unwrap();
                    assert_eq!(
                        key,
                        RecordView::parse(&line).unwrap().key(),
                        "{}",
                        String::from_utf8_lossy(&text)
                    );
                    assert_eq!(&text[at], b"2026-11-28T10:00:00.000Z");
                    let fast = sealed_key(&line).is_some();
                    assert!(fast || id.contains('"'), "only escapes need the parse");
                }
            }
        }
    }

    #[test]
    fn a_line_before_sources_existed_is_a_deliverys() {
        let line = br#"{"seq":3,"received_at":"2026-11-28T10:00:00.000Z","event":"left","membership_id":"m","membership_created":null,"prev_hash":"p","hash":"h"}"#;
        let (_, key) = sealed_key(line).unwrap();
        assert_eq!(
            (key.seq, key.event, key.source),
            (3, Event::Left, Source::Webhook)
        );
        assert_eq!(key.identity, merge::identity(Event::Left, "m", None));
    }

    #[test]
    fn the_stream_gives_every_record_in_log_order_with_where_it_is() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path();
        let mut prev = record::GENESIS_HASH.to_string();
        let mut seq = 0;
        for (day, count) in [("2026-11-27", 3000), ("2026-11-28", 5)] {
            let mut text = Vec::new();
            for n in 0..count {
                seq += 1;
                let mut r = Record {
                    seq,
                    received_at: format!("{day}T10:00:00.{:03}Z", n % 1000),
                    prev_hash: prev.clone(),
                    ..record::example()
                };
                text.extend(r.seal());
                prev = r.hash;
            }
            std::fs::write(dir.join(format!("{day}.jsonl")), text).unwrap();
        }
        // A last line still being written is not a record yet.
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.join("2026-11-28.jsonl"))
            .unwrap();
        std::io::Write::write_all(&mut file, b"{\"seq\":3006,\"rec").unwrap();
        let days = crate::log::days::list(dir).unwrap();
        let all: Vec<Entry> = Stream::open(days.clone()).map(Result::unwrap).collect();
        assert_eq!(all.len(), 3005);
        assert!(all.iter().zip(1..).all(|(e, seq)| e.seq() == seq));
        let last = all.last().unwrap();
        assert_eq!((last.date(), last.number()), (days[1].date, 5));
        assert_eq!(all[2999].number(), 3000);
        assert_eq!(RecordView::parse(last.line()).unwrap().seq, 3005);
        let until: Vec<u64> = Stream::open(days.clone())
            .until(Some(7))
            .map(|e| e.unwrap().seq())
            .collect();
        assert_eq!(until, (1..=7).collect::<Vec<_>>());
        // Taking a few and dropping the stream stops its reader.
        assert_eq!(Stream::open(days).take(2).count(), 2);
    }

    #[test]
    fn a_line_that_is_not_a_record_ends_the_stream_naming_it() {
        let temp = tempfile::tempdir().unwrap();
        let mut r = Record {
            seq: 1,
            received_at: "2026-11-27T10:00:00.000Z".into(),
            prev_hash: record::GENESIS_HASH.into(),
            ..record::example()
        };
        let mut text = r.seal();
        text.extend_from_slice(b"{\"seq\":2,\xff}\n");
        let path = temp.path().join("2026-11-27.jsonl");
        std::fs::write(&path, text).unwrap();
        let days = crate::log::days::list(temp.path()).unwrap();
        let read: Vec<_> = Stream::open(days).collect();
        assert_eq!(read.len(), 2);
        assert!(read[0].is_ok());
        match &read[1] {
            Err(ReadError::NotARecord { path: p, line, .. }) => {
                assert_eq!((p, *line), (&path, 2));
            }
            other => panic!("{other:?}"),
        }
    }
}
