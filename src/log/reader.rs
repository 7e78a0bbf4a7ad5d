//! Reading the log in seq order across live and archived days: the one
//! reader behind `export`, `tail` and `verify`.
//!
//! Days come from [`days::list`] and their lines from [`Day::lines`], so an
//! archived day reads like a live one. A [`Filter`] narrows the days worth
//! opening and the records worth keeping; a [`RecordView`] is a record
//! parsed once, borrowing from its line wherever no unescaping is needed.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

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

/// Every day of the log in `dir` that `filter` may want, oldest first.
pub fn days(dir: &Path, filter: &Filter) -> Result<Vec<Day>, ReadError> {
    let all = days::list(dir).map_err(|source| ReadError::List {
        dir: dir.to_path_buf(),
        source,
    })?;
    Ok(all
        .into_iter()
        .filter(|d| filter.may_hold(d.date))
        .collect())
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
    /// Reads every day. Most lines are dismissed by a byte search; only
    /// lines that carry a title have their room id and title decoded.
    pub fn scan(all_days: &[Day]) -> Result<Self, ReadError> {
        let mut titles = Self::default();
        for day in all_days {
            let mut reader = DayReader::open(day)?;
            while let Some(line) = reader.next_line()? {
                if line.whole {
                    titles.learn_from_line(line.bytes);
                }
            }
        }
        Ok(titles)
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
