//! Reading the log in seq order across live and archived days: the one
//! reader behind `export`, `tail` and `verify`.
//!
//! Days come from [`days::list`] and their lines from [`Day::lines`], so an
//! archived day reads like a live one. A [`Filter`] narrows the days worth
//! opening and the records worth keeping; a [`RecordView`] is a record
//! parsed once, borrowing from its line wherever no unescaping is needed.
//!
//! Whole-log passes ([`in_log_order`]) read the days in large blocks of
//! whole lines and work on several blocks at once, one per core, while the
//! results are still taken in log order: reading, parsing and formatting
//! a record each cost about as much as the others, so one thread cannot
//! keep up with the disk cache.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError, mpsc};

use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::{Date, Duration, OffsetDateTime, Time};

use super::days::{self, Day, Lines};
use super::record::{Event, format_timestamp};

/// Why the log could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot list the log directory {}", dir.display())]
    List { dir: PathBuf, source: io::Error },
    #[error("cannot read {}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{} line {line} is not a record ({reason}); run `rollcall verify`", path.display())]
    NotARecord {
        path: PathBuf,
        line: u64,
        reason: String,
    },
}

/// Every day of the log in `dir`, oldest first.
pub fn days(dir: &Path) -> Result<Vec<Day>, ReadError> {
    days::list(dir).map_err(|source| ReadError::List {
        dir: dir.to_path_buf(),
        source,
    })
}

/// One line of a day file, where it was read.
#[derive(Debug, Clone, Copy)]
pub struct Line<'a> {
    pub path: &'a Path,
    /// 1-based.
    pub number: u64,
    /// Without the newline.
    pub bytes: &'a [u8],
    /// False for a last line without its newline: torn by a crash, or
    /// still being written.
    pub whole: bool,
}

impl Line<'_> {
    /// Parses the record, with the line's place in the error.
    pub fn record(&self) -> Result<RecordView<'_>, ReadError> {
        RecordView::parse(self.bytes).map_err(|e| ReadError::NotARecord {
            path: self.path.to_path_buf(),
            line: self.number,
            reason: e.to_string(),
        })
    }
}

/// The lines of one day, in order.
pub struct DayReader {
    path: PathBuf,
    lines: Lines,
    number: u64,
    /// The start of a line whose newline has not been written yet.
    partial: Vec<u8>,
    /// That line once its rest has arrived.
    joined: Vec<u8>,
}

impl DayReader {
    /// Opens the day's authoritative file (live until archival removes it).
    pub fn open(day: &Day) -> Result<Self, ReadError> {
        let path = day.path().to_path_buf();
        let lines = day.lines().map_err(|source| ReadError::Read {
            path: path.clone(),
            source,
        })?;
        Ok(Self {
            path,
            lines,
            number: 0,
            partial: Vec::new(),
            joined: Vec::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The next line, or `None` at the end of the file as it is now.
    pub fn next_line(&mut self) -> Result<Option<Line<'_>>, ReadError> {
        let next = self.lines.next_line().map_err(|source| ReadError::Read {
            path: self.path.clone(),
            source,
        })?;
        Ok(next.map(|(bytes, whole)| {
            self.number += 1;
            Line {
                path: &self.path,
                number: self.number,
                bytes,
                whole,
            }
        }))
    }

    /// Like [`next_line`](Self::next_line), for a live file that is still
    /// growing: a line without its newline is held back, not handed out,
    /// and completed by a later call once the rest has been written.
    pub fn next_whole_line(&mut self) -> Result<Option<Line<'_>>, ReadError> {
        let next = self.lines.next_line().map_err(|source| ReadError::Read {
            path: self.path.clone(),
            source,
        })?;
        let Some((bytes, whole)) = next else {
            return Ok(None);
        };
        if !whole {
            self.partial.extend_from_slice(bytes);
            return Ok(None);
        }
        self.number += 1;
        if self.partial.is_empty() {
            return Ok(Some(Line {
                path: &self.path,
                number: self.number,
                bytes,
                whole,
            }));
        }
        self.joined.clear();
        std::mem::swap(&mut self.joined, &mut self.partial);
        self.joined.extend_from_slice(bytes);
        Ok(Some(Line {
            path: &self.path,
            number: self.number,
            bytes: &self.joined,
            whole,
        }))
    }
}

/// A record as read: parsed once, its text borrowed from the line unless
/// it had escapes. Fields export and tail do not show are skipped.
#[derive(Debug, Deserialize)]
pub struct RecordView<'a> {
    pub seq: u64,
    #[serde(borrow)]
    pub received_at: Cow<'a, str>,
    pub event: Event,
    #[serde(borrow)]
    pub room_id: Cow<'a, str>,
    #[serde(borrow)]
    pub room_title: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub person_id: Cow<'a, str>,
    #[serde(borrow)]
    pub person_email: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub person_display_name: Option<Cow<'a, str>>,
    pub is_moderator: Option<bool>,
    pub is_monitor: Option<bool>,
    #[serde(borrow)]
    pub membership_id: Cow<'a, str>,
    #[serde(borrow)]
    pub membership_created: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub actor_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub org_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub webhook_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub webhook_name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub target: Cow<'a, str>,
}

impl<'a> RecordView<'a> {
    /// Parses a line without checking its hash (that is `verify`'s job).
    pub fn parse(line: &'a [u8]) -> serde_json::Result<Self> {
        serde_json::from_slice(line)
    }

    /// Like [`parse`](Self::parse), with the same result, but lines laid
    /// out the way [`Record::seal`](super::record::Record::seal) writes
    /// them are read directly, unescaping into `scratch` instead of
    /// allocating. Anything else is left to serde_json.
    pub fn parse_reusing(line: &'a [u8], scratch: &'a mut String) -> serde_json::Result<Self> {
        match std::str::from_utf8(line) {
            Ok(text) => match sealed::parse(text, scratch) {
                Some(record) => Ok(record),
                None => Self::parse(line),
            },
            Err(_) => Self::parse(line),
        }
    }
}

/// Which records a command wants. Times are kept in `received_at` form,
/// which is fixed-width, so comparing them as text compares the times.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Inclusive.
    pub from: Option<String>,
    /// Exclusive.
    pub to: Option<String>,
    pub room: Option<String>,
    pub person: Option<String>,
    pub event: Option<Event>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FilterError {
    #[error("{0:?} is not a time: give YYYY-MM-DD or RFC 3339 (e.g. 2026-11-27T14:00:00Z)")]
    Time(String),
    #[error("--from ({from}) must be before --to ({to}); --to is exclusive")]
    Empty { from: String, to: String },
}

impl Filter {
    /// Checks that the range can hold anything at all.
    pub fn validate(&self) -> Result<(), FilterError> {
        match (&self.from, &self.to) {
            (Some(from), Some(to)) if from >= to => Err(FilterError::Empty {
                from: from.clone(),
                to: to.clone(),
            }),
            _ => Ok(()),
        }
    }

    /// Whether the day file for `date` can hold records in the range.
    pub fn may_hold(&self, date: Date) -> bool {
        let start = || format_timestamp(date.midnight().assume_utc());
        let end = || format_timestamp((date + Duration::days(1)).midnight().assume_utc());
        self.to.as_ref().is_none_or(|to| start() < *to)
            && self.from.as_ref().is_none_or(|from| end() > *from)
    }

    pub fn matches(&self, record: &RecordView<'_>) -> bool {
        self.event.is_none_or(|e| e == record.event)
            && self
                .from
                .as_deref()
                .is_none_or(|from| *record.received_at >= *from)
            && self
                .to
                .as_deref()
                .is_none_or(|to| *record.received_at < *to)
            && self
                .room
                .as_deref()
                .is_none_or(|room| *record.room_id == *room)
            && self.person.as_deref().is_none_or(|person| {
                record
                    .person_email
                    .as_deref()
                    .is_some_and(|email| same_email(email, person))
            })
    }
}

fn same_email(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
        || (!(a.is_ascii() && b.is_ascii()) && a.to_lowercase() == b.to_lowercase())
}

/// Parses `YYYY-MM-DD` (midnight UTC) or RFC 3339 into `received_at` form.
/// A time between two milliseconds is rounded up, so that comparing at
/// millisecond precision keeps `--from` inclusive and `--to` exclusive.
pub fn parse_time(text: &str) -> Result<String, FilterError> {
    let at = if let Some(date) = days::parse_day_name(text) {
        date.with_time(Time::MIDNIGHT).assume_utc()
    } else {
        OffsetDateTime::parse(text, &Rfc3339).map_err(|_| FilterError::Time(text.to_string()))?
    };
    let below_ms = at.nanosecond() % 1_000_000;
    let at = if below_ms == 0 {
        at
    } else {
        at + Duration::nanoseconds(i64::from(1_000_000 - below_ms))
    };
    Ok(format_timestamp(at))
}

/// The latest room title recorded for each room, for records that were
/// written without one.
#[derive(Debug, Default)]
pub struct RoomTitles(HashMap<String, String>);

impl RoomTitles {
    /// Reads every day. A byte search over whole blocks finds the lines
    /// that carry a title; only those have their room id and title
    /// decoded, and the rest are never looked at line by line.
    pub fn scan(all_days: &[Day]) -> Result<Self, ReadError> {
        let finder = memchr::memmem::Finder::new(TITLE_MEMBER);
        let mut titles = Self::default();
        in_log_order(
            all_days,
            Self::default,
            |block, found: &mut Self| {
                found.0.clear();
                found.learn_from_block(&finder, block.whole_lines());
                0
            },
            |_, found| {
                for (room, title) in found.0.drain() {
                    titles.0.insert(room, title);
                }
                Ok::<_, ReadError>(())
            },
        )?;
        Ok(titles)
    }

    /// Remembers the last title of each room in `lines`. A string can
    /// never hold `,"room_title":"` unescaped, so every match is the
    /// member itself.
    fn learn_from_block(&mut self, finder: &memchr::memmem::Finder<'_>, lines: &[u8]) {
        let mut from = 0;
        while let Some(hit) = finder.find(&lines[from..]).map(|at| from + at) {
            let start = memchr::memrchr(b'\n', &lines[..hit]).map_or(0, |i| i + 1);
            let end = memchr::memchr(b'\n', &lines[hit..]).map_or(lines.len(), |i| hit + i);
            self.learn_from_line(&lines[start..end]);
            from = end;
        }
    }

    /// Remembers the title in a record line, if it has one.
    pub fn learn_from_line(&mut self, line: &[u8]) {
        let Some(Some(title)) = string_member(line, b"room_title") else {
            return;
        };
        let Some(Some(room)) = string_member(line, b"room_id") else {
            return;
        };
        match self.0.get_mut(&*room) {
            Some(known) if *known == *title => {}
            Some(known) => *known = title.into_owned(),
            None => {
                self.0.insert(room.into_owned(), title.into_owned());
            }
        }
    }

    pub fn learn(&mut self, room: &str, title: &str) {
        if self.0.get(room).is_none_or(|known| known != title) {
            self.0.insert(room.to_string(), title.to_string());
        }
    }

    pub fn get(&self, room: &str) -> Option<&str> {
        self.0.get(room).map(String::as_str)
    }
}

const TITLE_MEMBER: &[u8] = b",\"room_title\":\"";

/// The value of a top-level string member of a record line: `Some(None)`
/// for `null`, `None` if absent or not a string.
///
/// `"key":` cannot occur inside a JSON string (its second quote would have
/// to be escaped), and record keys are fixed names, so the first match
/// after a `,` is the member itself.
fn string_member<'a>(line: &'a [u8], key: &[u8]) -> Option<Option<Cow<'a, str>>> {
    let needle = [b",\"", key, b"\":"].concat();
    let at = memchr::memmem::find(line, &needle)? + needle.len();
    let rest = &line[at..];
    if rest.starts_with(b"null") {
        return Some(None);
    }
    let body = rest.strip_prefix(b"\"")?;
    let mut escaped = false;
    for (i, &b) in body.iter().enumerate() {
        match b {
            b'\\' => escaped = true,
            b'"' if !escaped_before(body, i) => {
                return if escaped {
                    serde_json::from_slice::<String>(&rest[..i + 2])
                        .ok()
                        .map(|s| Some(Cow::Owned(s)))
                } else {
                    std::str::from_utf8(&body[..i])
                        .ok()
                        .map(|s| Some(Cow::Borrowed(s)))
                };
            }
            _ => {}
        }
    }
    None
}

/// Whether the quote at `body[i]` is escaped (an odd run of backslashes
/// before it).
fn escaped_before(body: &[u8], i: usize) -> bool {
    body[..i].iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 1
}

/// Blocks are about this size: a system call per few hundred records, and
/// the blocks in flight stay a few megabytes whatever the log's size.
const BLOCK_BYTES: usize = 1 << 19;

/// More threads than this only add blocks in flight.
const MAX_THREADS: usize = 4;

/// Lines of one day, in order and whole except that the day's very last
/// line may lack its newline (torn by a crash, or still being written).
pub struct Block {
    /// Index into the days being read.
    day: usize,
    buf: Vec<u8>,
    len: usize,
}

impl Block {
    fn new() -> Self {
        Self {
            day: 0,
            buf: vec![0; BLOCK_BYTES],
            len: 0,
        }
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The lines without their newlines, each with whether it had one.
    pub fn lines(&self) -> impl Iterator<Item = (&[u8], bool)> {
        let mut rest = self.bytes();
        std::iter::from_fn(move || {
            if rest.is_empty() {
                return None;
            }
            Some(match memchr::memchr(b'\n', rest) {
                Some(end) => {
                    let line = &rest[..end];
                    rest = &rest[end + 1..];
                    (line, true)
                }
                None => (std::mem::take(&mut rest), false),
            })
        })
    }

    /// The whole lines, newlines included, without a torn last one.
    pub fn whole_lines(&self) -> &[u8] {
        let bytes = self.bytes();
        match bytes.last() {
            Some(b'\n') | None => bytes,
            Some(_) => memchr::memrchr(b'\n', bytes).map_or(&[], |end| &bytes[..=end]),
        }
    }

    /// Reads until the block is full or the file ends; returns true at the
    /// end. A line longer than the block grows it.
    fn fill(&mut self, file: &mut dyn Read) -> io::Result<bool> {
        loop {
            if self.len == self.buf.len() {
                if memchr::memchr(b'\n', self.bytes()).is_some() {
                    return Ok(false);
                }
                self.buf.resize(self.buf.len() * 2, 0);
            }
            match file.read(&mut self.buf[self.len..]) {
                Ok(0) => return Ok(true),
                Ok(n) => self.len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Where a block's lines are: its day, and how many lines of that day
/// came before it (so its first line is number `lines_before + 1`).
#[derive(Debug, Clone, Copy)]
pub struct Place<'d> {
    pub day: &'d Day,
    pub lines_before: u64,
}

/// The reading side shared by the workers: whoever holds the lock reads
/// the next block, so blocks are numbered in log order.
struct Reading<'d, T> {
    days: &'d [Day],
    state: Mutex<ReadState<T>>,
    /// Signalled when a result slot is free again, or on stop.
    freed: Condvar,
}

struct ReadState<T> {
    next_day: usize,
    file: Option<Box<dyn Read + Send>>,
    /// The start of a line that the previous block cut off.
    carry: Vec<u8>,
    next_order: u64,
    /// Result slots not in flight: bounding them bounds memory.
    free: Vec<T>,
    done: bool,
}

struct Taken<T> {
    order: u64,
    slot: T,
    read: Result<bool, ReadError>,
}

impl<'d, T> Reading<'d, T> {
    fn lock(&self) -> MutexGuard<'_, ReadState<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for a free result slot, then reads the next block into
    /// `block`. `read` is false once the log has been read (or failed).
    fn take(&self, block: &mut Block) -> Option<Taken<T>> {
        let mut state = self.lock();
        let slot = loop {
            if state.done {
                return None;
            }
            match state.free.pop() {
                Some(slot) => break slot,
                None => {
                    state = self
                        .freed
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner)
                }
            }
        };
        let order = state.next_order;
        state.next_order += 1;
        let read = self.read(&mut state, block);
        if !matches!(read, Ok(true)) {
            state.done = true;
        }
        Some(Taken { order, slot, read })
    }

    fn read(&self, state: &mut ReadState<T>, block: &mut Block) -> Result<bool, ReadError> {
        loop {
            let file = match &mut state.file {
                Some(file) => file,
                None => {
                    let Some(day) = self.days.get(state.next_day) else {
                        return Ok(false);
                    };
                    let file = day.bytes().map_err(|source| ReadError::Read {
                        path: day.path().to_path_buf(),
                        source,
                    })?;
                    state.next_day += 1;
                    state.file.insert(file)
                }
            };
            let day = state.next_day - 1;
            block.day = day;
            block.len = 0;
            if block.buf.len() < state.carry.len() {
                block.buf.resize(state.carry.len(), 0);
            }
            block.buf[..state.carry.len()].copy_from_slice(&state.carry);
            block.len = state.carry.len();
            state.carry.clear();
            let ended = block
                .fill(file.as_mut())
                .map_err(|source| ReadError::Read {
                    path: self.days[day].path().to_path_buf(),
                    source,
                })?;
            if ended {
                state.file = None;
                if block.len == 0 {
                    continue;
                }
            } else if let Some(end) = memchr::memrchr(b'\n', block.bytes()) {
                state.carry.extend_from_slice(&block.bytes()[end + 1..]);
                block.len = end + 1;
            }
            return Ok(true);
        }
    }

    fn give_back(&self, slot: T) {
        self.lock().free.push(slot);
        self.freed.notify_one();
    }

    fn stop(&self) {
        self.lock().done = true;
        self.freed.notify_all();
    }
}

/// Stops the workers however the taking side ends.
struct StopOnDrop<'r, 'd, T>(&'r Reading<'d, T>);

impl<T> Drop for StopOnDrop<'_, '_, T> {
    fn drop(&mut self) {
        self.0.stop();
    }
}

/// One pass over `days`: `work` runs on each block, on as many threads as
/// there are cores, filling a result slot (from `new_slot`) and returning
/// the number of lines it went through; `commit` then takes the slots in
/// log order, on the calling thread. A few slots are in flight at a time,
/// so memory does not grow with the log. The first error (reading, or
/// from `commit`) ends the pass.
pub fn in_log_order<T, E>(
    days: &[Day],
    new_slot: impl Fn() -> T,
    work: impl Fn(&Block, &mut T) -> u64 + Sync,
    mut commit: impl FnMut(Place<'_>, &mut T) -> Result<(), E>,
) -> Result<(), E>
where
    T: Send,
    E: From<ReadError>,
{
    let threads = std::thread::available_parallelism()
        .map_or(1, NonZeroUsize::get)
        .min(MAX_THREADS);
    let reading = Reading {
        days,
        state: Mutex::new(ReadState {
            next_day: 0,
            file: None,
            carry: Vec::new(),
            next_order: 0,
            free: (0..threads * 2).map(|_| new_slot()).collect(),
            done: false,
        }),
        freed: Condvar::new(),
    };
    std::thread::scope(|scope| {
        let (results, done) = mpsc::channel();
        for _ in 0..threads {
            let results = results.clone();
            let (reading, work) = (&reading, &work);
            scope.spawn(move || {
                let mut block = Block::new();
                while let Some(mut taken) = reading.take(&mut block) {
                    let lines = match taken.read {
                        Ok(true) => work(&block, &mut taken.slot),
                        _ => 0,
                    };
                    let day = block.day;
                    if results.send((taken, day, lines)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(results);
        let _stop = StopOnDrop(&reading);
        let mut waiting = BTreeMap::new();
        let mut next = 0;
        let mut counted = (0, 0);
        for (taken, day, lines) in done {
            waiting.insert(taken.order, (taken, day, lines));
            while let Some((taken, day, lines)) = waiting.remove(&next) {
                next += 1;
                let Taken { slot, read, .. } = taken;
                let mut slot = slot;
                if !read? {
                    return Ok(());
                }
                if counted.0 != day {
                    counted = (day, 0);
                }
                let place = Place {
                    day: &days[day],
                    lines_before: counted.1,
                };
                counted.1 += lines;
                commit(place, &mut slot)?;
                reading.give_back(slot);
            }
        }
        Ok(())
    })
}

/// The fast path of [`RecordView::parse_reusing`]: a line exactly as
/// `seal` writes it (members in `Record`'s order, no spaces). Returns
/// `None` for anything else, and for anything it would have to think
/// about (a `\u` escape, a number serde_json might read differently), so
/// that serde_json decides those and the results never differ.
mod sealed {
    use std::borrow::Cow;

    use super::RecordView;
    use crate::log::record::Event;

    /// Where a string value is: in the line, or unescaped into scratch.
    #[derive(Clone, Copy)]
    enum Text {
        Null,
        Line(usize, usize),
        Scratch(usize, usize),
    }

    struct Parser<'s> {
        text: &'s str,
        line: &'s [u8],
        at: usize,
        scratch: &'s mut String,
    }

    pub(super) fn parse<'a>(text: &'a str, scratch: &'a mut String) -> Option<RecordView<'a>> {
        scratch.clear();
        let mut p = Parser {
            text,
            line: text.as_bytes(),
            at: 0,
            scratch,
        };
        p.literal(b"{\"seq\":")?;
        let seq = p.number()?;
        let received_at = p.member(b"received_at", Parser::string)?;
        let event = p.member(b"event", Parser::string)?;
        let room_id = p.member(b"room_id", Parser::string)?;
        let room_title = p.member(b"room_title", Parser::nullable_string)?;
        p.member(b"room_type", Parser::skipped_string)?;
        let person_id = p.member(b"person_id", Parser::string)?;
        let person_email = p.member(b"person_email", Parser::nullable_string)?;
        let person_display_name = p.member(b"person_display_name", Parser::nullable_string)?;
        p.member(b"person_org_id", Parser::skipped_string)?;
        let is_moderator = p.member(b"is_moderator", Parser::flag)?;
        let is_monitor = p.member(b"is_monitor", Parser::flag)?;
        p.member(b"is_room_hidden", Parser::flag)?;
        let membership_id = p.member(b"membership_id", Parser::string)?;
        let membership_created = p.member(b"membership_created", Parser::nullable_string)?;
        let actor_id = p.member(b"actor_id", Parser::nullable_string)?;
        let org_id = p.member(b"org_id", Parser::nullable_string)?;
        let webhook_id = p.member(b"webhook_id", Parser::nullable_string)?;
        let webhook_name = p.member(b"webhook_name", Parser::nullable_string)?;
        let target = p.member(b"target", Parser::string)?;
        p.member(b"prev_hash", Parser::skipped_string)?;
        p.member(b"hash", Parser::skipped_string)?;
        p.literal(b"}")?;
        if p.at != p.line.len() {
            return None;
        }
        let scratch: &'a str = p.scratch;
        let get = |t: Text| -> Option<Cow<'a, str>> {
            match t {
                Text::Null => None,
                Text::Line(start, end) => Some(Cow::Borrowed(&text[start..end])),
                Text::Scratch(start, end) => Some(Cow::Borrowed(&scratch[start..end])),
            }
        };
        Some(RecordView {
            seq,
            received_at: get(received_at)?,
            event: match get(event)?.as_ref() {
                "joined" => Event::Joined,
                "left" => Event::Left,
                _ => return None,
            },
            room_id: get(room_id)?,
            room_title: get(room_title),
            person_id: get(person_id)?,
            person_email: get(person_email),
            person_display_name: get(person_display_name),
            is_moderator,
            is_monitor,
            membership_id: get(membership_id)?,
            membership_created: get(membership_created),
            actor_id: get(actor_id),
            org_id: get(org_id),
            webhook_id: get(webhook_id),
            webhook_name: get(webhook_name),
            target: get(target)?,
        })
    }

    impl Parser<'_> {
        fn literal(&mut self, expected: &[u8]) -> Option<()> {
            let found = self.line.get(self.at..self.at + expected.len())?;
            (found == expected).then(|| self.at += expected.len())
        }

        /// `,"key":` and then the value.
        fn member<V>(
            &mut self,
            key: &[u8],
            value: impl FnOnce(&mut Self) -> Option<V>,
        ) -> Option<V> {
            self.literal(b",\"")?;
            self.literal(key)?;
            self.literal(b"\":")?;
            value(self)
        }

        /// Plain digits that fit a u64, without a leading zero.
        fn number(&mut self) -> Option<u64> {
            let digits = self.line[self.at..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            if digits == 0 || (digits > 1 && self.line[self.at] == b'0') {
                return None;
            }
            let mut n: u64 = 0;
            for &d in &self.line[self.at..self.at + digits] {
                n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
            }
            self.at += digits;
            Some(n)
        }

        fn flag(&mut self) -> Option<Option<bool>> {
            if self.literal(b"true").is_some() {
                Some(Some(true))
            } else if self.literal(b"false").is_some() {
                Some(Some(false))
            } else {
                self.literal(b"null").map(|()| None)
            }
        }

        fn nullable_string(&mut self) -> Option<Text> {
            if self.literal(b"null").is_some() {
                return Some(Text::Null);
            }
            self.string()
        }

        fn skipped_string(&mut self) -> Option<()> {
            if self.literal(b"null").is_some() {
                return Some(());
            }
            self.quoted(false).map(|_| ())
        }

        fn string(&mut self) -> Option<Text> {
            self.quoted(true)
        }

        /// A string, unescaped into scratch if it has escapes (and `keep`).
        fn quoted(&mut self, keep: bool) -> Option<Text> {
            self.literal(b"\"")?;
            let start = self.at;
            let mut end = stop(self.line, start)?;
            if self.line[end] == b'"' {
                self.at = end + 1;
                return Some(Text::Line(start, end));
            }
            let from = self.scratch.len();
            let mut piece = start;
            loop {
                match self.line[end] {
                    b'"' => break,
                    b'\\' => {
                        let unescaped = match *self.line.get(end + 1)? {
                            b'"' => '"',
                            b'\\' => '\\',
                            b'/' => '/',
                            b'b' => '\u{8}',
                            b'f' => '\u{c}',
                            b'n' => '\n',
                            b'r' => '\r',
                            b't' => '\t',
                            _ => return None,
                        };
                        if keep {
                            self.push(piece, end);
                            self.scratch.push(unescaped);
                        }
                        piece = end + 2;
                        end = stop(self.line, piece)?;
                    }
                    _ => return None,
                }
            }
            if keep {
                self.push(piece, end);
            }
            self.at = end + 1;
            Some(Text::Scratch(from, self.scratch.len()))
        }

        /// Copies `text[start..end]` (bounded by ASCII bytes, so always
        /// on character boundaries).
        fn push(&mut self, start: usize, end: usize) {
            self.scratch.push_str(&self.text[start..end]);
        }
    }

    /// The index of the first `"`, `\` or control byte (which JSON does
    /// not allow in a string) at or after `from`, eight bytes at a time.
    fn stop(line: &[u8], mut from: usize) -> Option<usize> {
        const ONES: u64 = u64::from_le_bytes([1; 8]);
        const HIGH: u64 = ONES << 7;
        const QUOTE: u64 = ONES * b'"' as u64;
        const BACKSLASH: u64 = ONES * b'\\' as u64;
        const SPACE: u64 = ONES * 0x20;
        while let Some(chunk) = line[from..].first_chunk::<8>() {
            let w = u64::from_le_bytes(*chunk);
            let (q, b) = (w ^ QUOTE, w ^ BACKSLASH);
            // The lowest flagged byte is exact for each test (borrows only
            // ever flag bytes above a real match).
            let found = (q.wrapping_sub(ONES) & !q
                | b.wrapping_sub(ONES) & !b
                | w.wrapping_sub(SPACE) & !w)
                & HIGH;
            if found != 0 {
                return Some(from + (found.trailing_zeros() / 8) as usize);
            }
            from += 8;
        }
        line[from..]
            .iter()
            .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
            .map(|i| from + i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_means_midnight_utc_and_offsets_are_normalised() {
        assert_eq!(
            parse_time("2026-11-27").unwrap(),
            "2026-11-27T00:00:00.000Z"
        );
        assert_eq!(
            parse_time("2026-11-27T14:00:00+01:00").unwrap(),
            "2026-11-27T13:00:00.000Z"
        );
        assert_eq!(
            parse_time("2026-11-27T14:00:00.0001Z").unwrap(),
            "2026-11-27T14:00:00.001Z"
        );
        assert!(matches!(parse_time("yesterday"), Err(FilterError::Time(_))));
    }

    #[test]
    fn a_day_is_opened_only_if_it_overlaps_the_range() {
        let filter = Filter {
            from: Some(parse_time("2026-11-27T23:59:59Z").unwrap()),
            to: Some(parse_time("2026-11-29").unwrap()),
            ..Filter::default()
        };
        let day = |d| days::parse_day_name(d).unwrap();
        assert!(!filter.may_hold(day("2026-11-26")));
        assert!(filter.may_hold(day("2026-11-27")));
        assert!(filter.may_hold(day("2026-11-28")));
        assert!(!filter.may_hold(day("2026-11-29")));
    }

    /// Text that exercises every escape, control bytes and non-ASCII.
    fn tricky() -> impl proptest::strategy::Strategy<Value = String> {
        proptest::string::string_regex("([a-z\"\\\\/,=\\x00-\\x1f]|é|😀){0,12}").unwrap()
    }

    proptest::proptest! {
        #[test]
        fn the_fast_path_reads_sealed_lines_exactly_as_serde_json_does(
            name in tricky(),
            title in proptest::option::of(tricky()),
            seq in 0u64..=u64::MAX,
            moderator in proptest::option::of(proptest::bool::ANY),
        ) {
            let mut record = crate::log::record::Record {
                seq,
                received_at: "2026-11-27T12:00:00.000Z".into(),
                event: Event::Left,
                room_id: name.clone(),
                room_title: title,
                room_type: Some(name.clone()),
                person_display_name: Some(name.clone()),
                is_moderator: moderator,
                is_room_hidden: Some(true),
                webhook_name: Some(name),
                target: "team".into(),
                ..crate::log::record::example()
            };
            let line = record.seal();
            let line = &line[..line.len() - 1];
            let mut scratch = String::new();
            let fast = RecordView::parse_reusing(line, &mut scratch).unwrap();
            let slow = RecordView::parse(line).unwrap();
            proptest::prop_assert_eq!(format!("{fast:?}"), format!("{slow:?}"));
            let text = std::str::from_utf8(line).unwrap();
            proptest::prop_assert!(
                sealed::parse(text, &mut String::new()).is_some() || text.contains("\\u"),
                "only \\u escapes are left to serde_json: {}", text
            );
        }
    }

    #[test]
    fn lines_the_fast_path_does_not_know_get_serde_json_s_answer() {
        let sealed = br#"{"seq":1,"received_at":"t","event":"left","room_id":"r","room_title":null,"room_type":null,"person_id":"p","person_email":null,"person_display_name":null,"person_org_id":null,"is_moderator":null,"is_monitor":null,"is_room_hidden":null,"membership_id":"m","membership_created":null,"actor_id":null,"org_id":null,"webhook_id":null,"webhook_name":null,"target":"t","prev_hash":"h","hash":"h"}"#;
        let text = std::str::from_utf8(sealed).unwrap();
        let odd = [
            text.replace("\"seq\":1", "\"seq\":01"),
            text.replace("\"seq\":1", "\"seq\":1.0"),
            text.replace("\"seq\":1", "\"seq\":99999999999999999999"),
            text.replace("\"room_id\":\"r\"", "\"room_id\":\"r\\x\""),
            text.replace("\"room_id\":\"r\"", "\"room_id\":\"r\u{1}\""),
            text.replace("\"event\":\"left\"", "\"event\":\"updated\""),
            text.replace("\"room_id\":\"r\"", "\"room_id\":null"),
            text.replace("\"room_type\":null", "\"room_type\":5"),
            text.replace(",\"hash\":\"h\"", ""),
            text.replace("{\"seq\"", "{ \"seq\""),
            format!("{text} "),
            format!("{text}x"),
        ];
        let mut scratch = String::new();
        assert!(RecordView::parse_reusing(sealed, &mut scratch).is_ok());
        for line in &odd {
            assert!(sealed::parse(line, &mut String::new()).is_none(), "{line}");
            let fast = RecordView::parse_reusing(line.as_bytes(), &mut scratch);
            let slow = RecordView::parse(line.as_bytes());
            assert_eq!(format!("{fast:?}"), format!("{slow:?}"), "{line}");
        }
    }

    #[test]
    fn string_members_are_found_outside_strings_only() {
        let line = br#"{"seq":1,"room_id":"r\",\"room_title\":\"fake","room_title":"Team \"A\"","x":null}"#;
        assert_eq!(
            string_member(line, b"room_id").unwrap().unwrap(),
            r#"r","room_title":"fake"#
        );
        assert_eq!(
            string_member(line, b"room_title").unwrap().unwrap(),
            r#"Team "A""#
        );
        assert_eq!(string_member(line, b"x"), Some(None));
        assert_eq!(string_member(line, b"missing"), None);
    }
}
