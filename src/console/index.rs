//! The console's search index: every record's searchable fields held in
//! memory as compact rows, read once (on all cores) and then caught up
//! with what the log has appended since, before each search. A search is
//! then one pass over the rows, not over the files.
//!
//! Why not a scan per search: reading and parsing a 1,000,000-record log
//! takes most of a second on two cores (`rollcall export --format jsonl`
//! 0.85 s), which a person waiting on a page feels; a pass over the rows
//! takes milliseconds (figures in docs/performance.md). Catching up reads only the
//! bytes added to the live day since the last search, so the index needs
//! no hook in the writer and sees archived and live days alike.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};

use time::Date;

use crate::log::days::Day;
use crate::log::head::Head;
use crate::log::reader::{self, Block, ReadError, RecordView};
use crate::log::record::{Event, Source};

/// Marks a row without a room or person (the receiver's own records).
pub const NONE: u32 = u32::MAX;
/// `received_at` as the writer formats it: fixed width.
const TIME_LEN: usize = 24;

/// One record, as searched and listed.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    pub seq: u64,
    at: [u8; TIME_LEN],
    pub event: Event,
    pub source: Source,
    /// Index into [`Index::rooms`], or [`NONE`].
    pub room: u32,
    /// Index into [`Index::people`], or [`NONE`].
    pub person: u32,
}

impl Row {
    pub fn received_at(&self) -> &str {
        std::str::from_utf8(&self.at).unwrap_or("").trim_end()
    }
}

/// A room the log knows.
#[derive(Debug, Clone)]
pub struct Room {
    pub id: String,
    /// The latest title recorded for it.
    pub title: Option<String>,
    /// Every title it was recorded with, lowercased, for searching.
    titles: Vec<String>,
}

impl Room {
    /// Its id is `query`, or one of its titles contains it (any case).
    pub fn matches(&self, query: &str, lowered: &str) -> bool {
        self.id == query || self.titles.iter().any(|t| t.contains(lowered))
    }
}

/// A person as a record names them: id, email and display name. One
/// person under two spellings of their name is two entries with one id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Person {
    pub id: String,
    pub email: Option<String>,
    pub name: Option<String>,
}

impl Person {
    /// The email or name contains `lowered` (already lowercase).
    pub fn contains(&self, lowered: &str) -> bool {
        [&self.email, &self.name]
            .into_iter()
            .flatten()
            .any(|text| text.to_lowercase().contains(lowered))
    }

    /// The email is `address` (any case): how `rollcall export --person`
    /// picks a person.
    pub fn has_email(&self, address: &str) -> bool {
        self.email.as_deref().is_some_and(|email| {
            email.eq_ignore_ascii_case(address) || email.to_lowercase() == address.to_lowercase()
        })
    }
}

/// A coverage gap: when the receiver was not listening.
#[derive(Debug, Clone)]
pub struct Gap {
    /// The last record before it; `None` when unknown.
    pub from: Option<String>,
    pub to: String,
    /// It began with a recorded clean stop (else a crash or kill).
    pub clean: bool,
}

/// Where the index has read up to.
#[derive(Debug, Default, Clone, Copy)]
struct Position {
    day: Option<Date>,
    /// Bytes of that day's live file read (whole lines only).
    offset: u64,
    last_seq: u64,
}

/// The rows of the whole log, in log order.
#[derive(Debug, Default)]
pub struct Index {
    rows: Vec<Row>,
    rooms: Vec<Room>,
    room_ids: HashMap<String, u32>,
    people: Vec<Person>,
    person_ids: HashMap<Person, u32>,
    /// `not_before` by seq: few records have one.
    not_before: HashMap<u64, String>,
    at: Position,
    /// The durable head's seq at this catch-up (`None`: a log without a
    /// head, read to its end): records past it may yet be cut off and
    /// their seqs reused, so they are neither kept nor read past.
    durable: Option<u64>,
    /// This catch-up met a record past the durable head.
    at_head: bool,
}

/// A record parsed on a worker thread, owned so it can cross to the
/// thread that adds it.
struct Parsed {
    /// Where its line starts in its block.
    start: u64,
    seq: u64,
    received_at: String,
    event: Event,
    source: Source,
    room_id: String,
    room_title: Option<String>,
    person: Person,
    not_before: Option<String>,
}

impl Parsed {
    fn of(view: &RecordView<'_>) -> Self {
        Parsed {
            start: 0,
            seq: view.seq,
            received_at: view.received_at.to_string(),
            event: view.event,
            source: view.source,
            room_id: view.room_id.to_string(),
            room_title: view.room_title.as_deref().map(str::to_string),
            person: Person {
                id: view.person_id.to_string(),
                email: view.person_email.as_deref().map(str::to_string),
                name: view.person_display_name.as_deref().map(str::to_string),
            },
            not_before: view.not_before.as_deref().map(str::to_string),
        }
    }
}

/// One block's records, and the bytes of whole lines it held.
#[derive(Default)]
struct Slot {
    records: Vec<Parsed>,
    bytes: u64,
    scratch: String,
}

impl Index {
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    pub fn rooms(&self) -> &[Room] {
        &self.rooms
    }

    pub fn people(&self) -> &[Person] {
        &self.people
    }

    pub fn room(&self, row: &Row) -> Option<&Room> {
        self.rooms.get(row.room as usize)
    }

    pub fn person(&self, row: &Row) -> Option<&Person> {
        self.people.get(row.person as usize)
    }

    pub fn room_by_id(&self, id: &str) -> Option<u32> {
        self.room_ids.get(id).copied()
    }

    pub fn not_before(&self, seq: u64) -> Option<&str> {
        self.not_before.get(&seq).map(String::as_str)
    }

    /// When the receiver was not listening: from each start's
    /// `not_before` (the last record before it) to the start itself.
    pub fn gaps(&self) -> Vec<Gap> {
        let mut gaps = Vec::new();
        let mut last = None;
        for row in &self.rows {
            match row.event {
                Event::ReceiverStopped => last = Some(row.event),
                Event::ReceiverStarted => {
                    if last.is_some() || self.not_before(row.seq).is_some() {
                        gaps.push(Gap {
                            from: self.not_before(row.seq).map(str::to_string),
                            to: row.received_at().to_string(),
                            clean: last == Some(Event::ReceiverStopped),
                        });
                    }
                    last = Some(row.event);
                }
                _ => {}
            }
        }
        gaps
    }

    /// Reads what the log in `dir` holds beyond what the index has: the
    /// rest of the day it stopped in, then every newer day.
    pub fn catch_up(&mut self, dir: &std::path::Path) -> Result<(), ReadError> {
        // Read before the log: the head never leads the log, so every
        // record up to it is on disk by the time the days are read.
        self.durable = match Head::read(dir) {
            Ok(head) => head.map(|head| head.seq),
            // Unknown: nothing new is known durable.
            Err(_) => Some(self.at.last_seq),
        };
        self.at_head = false;
        let days = reader::days(dir)?;
        let mut newer = 0;
        if let Some(date) = self.at.day {
            newer = days.partition_point(|d| d.date <= date);
            if let Some(day) = days.iter().find(|d| d.date == date) {
                match &day.live {
                    Some(path) => self.read_tail(path)?,
                    // Archived since: read it again, keeping only what is new.
                    None => self.read_days(std::slice::from_ref(day))?,
                }
            }
        }
        self.read_days(&days[newer..])
    }

    /// The whole lines added to the live day file at `path` since the
    /// last read.
    fn read_tail(&mut self, path: &std::path::Path) -> Result<(), ReadError> {
        let failed = |source| ReadError::Read {
            path: path.to_path_buf(),
            source,
        };
        let mut file = std::fs::File::open(path).map_err(failed)?;
        file.seek(SeekFrom::Start(self.at.offset)).map_err(failed)?;
        let mut added = Vec::new();
        file.read_to_end(&mut added).map_err(failed)?;
        let whole = memchr::memrchr(b'\n', &added).map_or(0, |end| end + 1);
        let mut scratch = String::new();
        let mut start = 0;
        for line in added[..whole].split(|&b| b == b'\n') {
            let line_start = start;
            start += line.len() as u64 + 1;
            if line.is_empty() {
                continue;
            }
            // A line that is not a record is `verify`'s to report.
            if let Ok(view) = RecordView::parse_reusing(line, &mut scratch) {
                if self.past_head(view.seq) {
                    self.at.offset += line_start;
                    return Ok(());
                }
                self.add(Parsed::of(&view));
            }
        }
        self.at.offset += whole as u64;
        Ok(())
    }

    fn read_days(&mut self, days: &[Day]) -> Result<(), ReadError> {
        reader::in_log_order(
            days,
            Slot::default,
            |block: &Block, slot: &mut Slot| {
                slot.records.clear();
                slot.bytes = block.whole_lines().len() as u64;
                let mut lines = 0;
                let mut start = 0;
                for (line, whole) in block.lines() {
                    lines += 1;
                    let line_start = start;
                    start += line.len() as u64 + 1;
                    if !whole {
                        continue;
                    }
                    if let Ok(view) = RecordView::parse_reusing(line, &mut slot.scratch) {
                        slot.records.push(Parsed {
                            start: line_start,
                            ..Parsed::of(&view)
                        });
                    }
                }
                lines
            },
            |place, slot: &mut Slot| {
                if self.at_head {
                    return Ok(());
                }
                if self.at.day != Some(place.day.date) {
                    self.at.day = Some(place.day.date);
                    self.at.offset = 0;
                }
                for parsed in slot.records.drain(..) {
                    if self.past_head(parsed.seq) {
                        self.at.offset += parsed.start;
                        return Ok(());
                    }
                    self.add(parsed);
                }
                self.at.offset += slot.bytes;
                Ok::<_, ReadError>(())
            },
        )
    }

    /// Whether `seq` is past the durable head; the first such record
    /// ends this catch-up, leaving the index where that record starts.
    fn past_head(&mut self, seq: u64) -> bool {
        if self.durable.is_some_and(|durable| seq > durable) {
            self.at_head = true;
        }
        self.at_head
    }

    fn add(&mut self, record: Parsed) {
        if record.seq <= self.at.last_seq {
            return;
        }
        self.at.last_seq = record.seq;
        let room = if record.room_id.is_empty() {
            NONE
        } else {
            self.room_index(&record.room_id, record.room_title)
        };
        let person = if record.person.id.is_empty() {
            NONE
        } else {
            let next = self.people.len() as u32;
            *self
                .person_ids
                .entry(record.person.clone())
                .or_insert_with(|| {
                    self.people.push(record.person);
                    next
                })
        };
        let mut at = [b' '; TIME_LEN];
        let given = record.received_at.as_bytes();
        let len = given.len().min(TIME_LEN);
        at[..len].copy_from_slice(&given[..len]);
        if let Some(not_before) = record.not_before {
            self.not_before.insert(record.seq, not_before);
        }
        self.rows.push(Row {
            seq: record.seq,
            at,
            event: record.event,
            source: record.source,
            room,
            person,
        });
    }

    fn room_index(&mut self, id: &str, title: Option<String>) -> u32 {
        let index = match self.room_ids.get(id) {
            Some(&index) => index,
            None => {
                let index = self.rooms.len() as u32;
                self.rooms.push(Room {
                    id: id.to_string(),
                    title: None,
                    titles: Vec::new(),
                });
                self.room_ids.insert(id.to_string(), index);
                index
            }
        };
        if let Some(title) = title {
            let room = &mut self.rooms[index as usize];
            let lowered = title.to_lowercase();
            if !room.titles.contains(&lowered) {
                room.titles.push(lowered);
            }
            room.title = Some(title);
        }
        index
    }
}
