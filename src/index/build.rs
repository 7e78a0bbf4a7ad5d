//! Catching the index up with the log: the durable records past the
//! index's newest, read from where that one sits in its day file, folded
//! into the tables in batched transactions. Each batch commits together
//! with the position it reached, so a crash leaves the index at an earlier
//! consistent seq, from which the next catch-up goes on.
//!
//! A membership's state is folded by the log's own rule
//! ([`Members::apply`]); a record's event time is `log::roster`'s
//! ([`event_time`]), kept from going back in time within a membership, so
//! a membership's records apply in the log's order.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};

use rusqlite::{Connection, OptionalExtension, params};

use super::{Index, IndexError};
use crate::clock::Clock;
use crate::log::days::{self, Day};
use crate::log::head::Head;
use crate::log::members::{Change, Member, Members};
use crate::log::reader;
use crate::log::record::{Record, Source, format_timestamp, scan};
use crate::log::roster::coverage::Coverage;
use crate::log::roster::event_time;

/// Records per transaction: large enough that a commit's fsync is paid
/// rarely, small enough that a reader never waits long for one.
const BATCH: usize = 20_000;

/// Where the index has got to in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub seq: u64,
    pub hash: String,
    /// The UTC day (`YYYY-MM-DD`) of the record at `seq`.
    pub day: Option<String>,
    /// The byte offset of its line in that day.
    pub offset: u64,
}

impl Position {
    pub fn read(conn: &Connection) -> rusqlite::Result<Position> {
        conn.query_row(
            "SELECT seq, hash, day, offset FROM state WHERE only = 1",
            [],
            |row| {
                Ok(Position {
                    seq: row.get(0)?,
                    hash: row.get(1)?,
                    day: row.get(2)?,
                    offset: row.get(3)?,
                })
            },
        )
    }
}

/// What a catch-up did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CaughtUp {
    /// Records folded in.
    pub records: u64,
    /// The newest record the index now holds.
    pub seq: u64,
}

/// `None` when the log's record at the index's newest seq is still there
/// with the same hash; else why the index is not this log's.
pub fn still_in_log(dir: &std::path::Path, at: &Position) -> Result<Option<String>, IndexError> {
    if at.seq == 0 {
        return Ok(None);
    }
    let Some(day) = at.day.as_deref().and_then(|d| find_day(dir, d).transpose()) else {
        return Ok(Some(format!(
            "the log has no day {} for the index's newest record (seq {})",
            at.day.as_deref().unwrap_or("?"),
            at.seq
        )));
    };
    let day = day?;
    let mut lines = open_at(&day, at.offset)?;
    let mut line = Vec::new();
    read_line(&mut lines, &mut line, &day)?;
    if scan::leading_seq(&line) != Some(at.seq) {
        // Not where it was: lines before it changed length. Look for it
        // in the whole day, to say what became of it.
        lines = open_at(&day, 0)?;
        loop {
            let whole = read_line(&mut lines, &mut line, &day)?;
            if scan::leading_seq(&line) == Some(at.seq) || !whole {
                break;
            }
        }
    }
    let found = (scan::leading_seq(&line) == Some(at.seq))
        .then(|| scan::string_member(&line, b"hash").flatten())
        .flatten();
    Ok(match found {
        Some(hash) if *hash == at.hash => None,
        Some(hash) => Some(format!(
            "the log's record seq {} has hash {hash}, the index was built from one with {}: the log was rewritten or restored, or the index is of another directory",
            at.seq, at.hash
        )),
        None => Some(format!(
            "the log has no record seq {} where the index found it ({} at byte {})",
            at.seq,
            day.path().display(),
            at.offset
        )),
    })
}

impl Index {
    /// Folds in every durable record past the index's newest: up to
    /// `DIR/.head`, or every whole line for a log without one.
    pub fn catch_up(&mut self, clock: &dyn Clock) -> Result<CaughtUp, IndexError> {
        let head = Head::read(&self.dir).map_err(|e| IndexError::Head(format!("{e:#}")))?;
        self.catch_up_to(head.map_or(u64::MAX, |h| h.seq), clock)
    }

    /// Folds in the records past the index's newest, up to seq `through`.
    pub fn catch_up_to(&mut self, through: u64, clock: &dyn Clock) -> Result<CaughtUp, IndexError> {
        let start = Position::read(&self.conn)?;
        let mut done = CaughtUp {
            records: 0,
            seq: start.seq,
        };
        if start.seq >= through {
            return Ok(done);
        }
        let from_day = start.day.as_deref().and_then(days::parse_day_name);
        let all = reader::days(&self.dir)?;
        let mut fold = Fold::begin(&self.conn)?;
        let mut line = Vec::new();
        'days: for day in all.iter().filter(|d| from_day.is_none_or(|f| d.date >= f)) {
            let mut offset = if Some(day.date) == from_day {
                start.offset
            } else {
                0
            };
            let name = days::day_name(day.date);
            let mut lines = open_at(day, offset)?;
            loop {
                let whole = read_line(&mut lines, &mut line, day)?;
                if line.is_empty() && !whole {
                    break;
                }
                let at = offset;
                offset += line.len() as u64 + u64::from(whole);
                if !whole {
                    // Torn, or still being written: not durable yet.
                    break;
                }
                let Some(seq) = scan::leading_seq(&line) else {
                    continue;
                };
                if seq <= fold.at.seq {
                    continue;
                }
                if seq > through {
                    break 'days;
                }
                // A damaged line is `verify`'s to report; the index goes
                // on from the lines that read.
                let Ok(record) = serde_json::from_slice::<Record>(&line) else {
                    continue;
                };
                fold.record(&record, &name, at)?;
                done.records += 1;
                if fold.pending >= BATCH {
                    fold.commit(clock)?;
                    fold = Fold::begin(&self.conn)?;
                }
            }
        }
        done.seq = fold.commit(clock)?;
        Ok(done)
    }
}

/// The day named `name` in `dir`'s log.
fn find_day(dir: &std::path::Path, name: &str) -> Result<Option<Day>, IndexError> {
    let Some(date) = days::parse_day_name(name) else {
        return Ok(None);
    };
    Ok(reader::days(dir)?.into_iter().find(|d| d.date == date))
}

/// The day's lines from byte `offset` on: a seek in a live file, a skip
/// through the decompressed bytes of an archived one.
fn open_at(day: &Day, offset: u64) -> Result<Box<dyn BufRead + Send>, IndexError> {
    let io_error = |source| IndexError::Io {
        what: "reading",
        path: day.path().to_path_buf(),
        source,
    };
    if let Some(live) = &day.live {
        match File::open(live) {
            Ok(mut file) => {
                file.seek(SeekFrom::Start(offset)).map_err(io_error)?;
                return Ok(Box::new(BufReader::with_capacity(1 << 16, file)));
            }
            // Archived since it was listed: read from the archive.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(e)),
        }
    }
    let mut bytes = BufReader::with_capacity(1 << 16, day.bytes().map_err(io_error)?);
    io::copy(&mut (&mut bytes).take(offset), &mut io::sink()).map_err(io_error)?;
    Ok(Box::new(bytes))
}

/// Reads the next line into `line` without its newline; returns whether
/// it had one.
fn read_line(lines: &mut dyn BufRead, line: &mut Vec<u8>, day: &Day) -> Result<bool, IndexError> {
    line.clear();
    lines
        .read_until(b'\n', line)
        .map_err(|source| IndexError::Io {
            what: "reading",
            path: day.path().to_path_buf(),
            source,
        })?;
    let whole = line.last() == Some(&b'\n');
    if whole {
        line.pop();
    }
    Ok(whole)
}

/// What the index keeps per membership beside the fold's [`Member`].
#[derive(Debug, Clone, Default)]
struct Place {
    /// The event time of its last record, never earlier than the one
    /// before: its records apply in the log's order.
    last_event_at: String,
    /// Its open stay and span, while present.
    stay_id: Option<i64>,
    span_id: Option<i64>,
    /// The join that began the open stay.
    joined_seq: Option<u64>,
}

/// One transaction of catching up.
struct Fold<'c> {
    conn: &'c Connection,
    at: Position,
    /// The memberships this batch touched, written back at commit.
    members: Members,
    places: HashMap<String, Place>,
    coverage: Coverage,
    pending: usize,
}

impl<'c> Fold<'c> {
    fn begin(conn: &'c Connection) -> Result<Self, IndexError> {
        // Immediate: another process catching up waits here, then sees
        // where this one got to and skips those records.
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let at = Position::read(conn)?;
        let stopped_at: Option<String> = conn
            .query_row(
                "SELECT from_at FROM gap WHERE to_at IS NULL ORDER BY id DESC LIMIT 1",
                [],
                |row| row.get(0),
            )
            .optional()?;
        Ok(Fold {
            coverage: Coverage::resume(at.seq > 0, stopped_at),
            conn,
            at,
            members: Members::default(),
            places: HashMap::new(),
            pending: 0,
        })
    }

    fn record(&mut self, r: &Record, day: &str, offset: u64) -> Result<(), IndexError> {
        self.insert_record(r)?;
        self.coverage
            .see(r.event, &r.received_at, r.not_before.as_deref());
        if r.event.is_membership() && !r.room_id.is_empty() {
            self.room(r)?;
        }
        if r.event.is_membership() && !r.membership_id.is_empty() {
            self.membership(r)?;
        }
        if let Some(email) = &r.person_email
            && !r.person_id.is_empty()
        {
            self.conn
                .prepare_cached("INSERT OR IGNORE INTO person_email VALUES (?1, ?2)")?
                .execute((email.to_lowercase(), &r.person_id))?;
        }
        self.at = Position {
            seq: r.seq,
            hash: r.hash.clone(),
            day: Some(day.to_string()),
            offset,
        };
        self.pending += 1;
        Ok(())
    }

    fn insert_record(&self, r: &Record) -> Result<(), IndexError> {
        self.conn
            .prepare_cached(
                "INSERT INTO record VALUES
                 (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
            )?
            .execute(params![
                r.seq,
                r.received_at,
                r.event.as_str(),
                r.room_id,
                r.room_title,
                r.person_id,
                r.person_email,
                r.person_display_name,
                r.is_moderator,
                r.is_monitor,
                r.membership_id,
                r.membership_created,
                r.actor_id,
                r.org_id,
                r.webhook_id,
                r.webhook_name,
                r.target,
                r.source.as_str(),
                r.not_before,
            ])?;
        Ok(())
    }

    /// The room's first and last record, latest title and baseline.
    fn room(&self, r: &Record) -> Result<(), IndexError> {
        let baseline = (r.source == Source::Reconciled).then_some(&r.received_at);
        self.conn
            .prepare_cached(
                "INSERT INTO room VALUES (?1, ?2, ?3, ?4, ?3, ?4, 0, ?5)
                 ON CONFLICT (room_id) DO UPDATE SET
                    title = coalesce(excluded.title, title),
                    last_at = excluded.last_at,
                    last_seq = excluded.last_seq,
                    baseline_at = coalesce(baseline_at, excluded.baseline_at)",
            )?
            .execute(params![
                r.room_id,
                r.room_title,
                r.received_at,
                r.seq,
                baseline
            ])?;
        if let Some(title) = &r.room_title {
            self.conn
                .prepare_cached("INSERT OR IGNORE INTO room_title VALUES (?1, ?2)")?
                .execute((title.to_lowercase(), &r.room_id))?;
        }
        Ok(())
    }

    /// The membership's state after `r`, and the stay and span it ends or
    /// begins.
    fn membership(&mut self, r: &Record) -> Result<(), IndexError> {
        let id = r.membership_id.as_str();
        if self.members.get(id).is_none() {
            self.load(id)?;
        }
        let before = self.members.get(id).cloned();
        let was_present = before.as_ref().is_some_and(|m| m.present);
        self.members.apply(Change::from(r));
        let Some(after) = self.members.get(id).cloned() else {
            return Ok(());
        };
        let place = self.places.entry(id.to_string()).or_default();
        let event_at = event_time(r).max(place.last_event_at.clone());
        if let Some(span) = place.span_id.take() {
            self.conn
                .prepare_cached("UPDATE span SET to_at = ?2 WHERE id = ?1")?
                .execute((span, &event_at))?;
        }
        // A join opens a stay; a leave of a membership the log never saw
        // joined is a stay whose start is unknown. Both are one row.
        let opened = match r.event {
            crate::log::record::Event::Joined if !was_present => Some((Some(r), None)),
            crate::log::record::Event::Left if before.is_none() => Some((None, Some(r))),
            _ => None,
        };
        match opened {
            Some((joined, left)) => {
                self.conn
                    .prepare_cached(
                        "INSERT INTO stay (room_id, membership_id, person_id, person_email,
                            person_display_name, joined_at, joined_seq, join_source, left_at,
                            left_seq, left_not_before, leave_source, is_moderator)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                    )?
                    .execute(params![
                        after.room_id,
                        id,
                        after.person_id,
                        after.person_email,
                        after.person_display_name,
                        joined.map(|_| &event_at),
                        joined.map(|r| r.seq),
                        joined.map(|r| r.source.as_str()),
                        left.map(|_| &event_at),
                        left.map(|r| r.seq),
                        left.and_then(|r| r.not_before.as_deref()),
                        left.map(|r| r.source.as_str()),
                        after.is_moderator,
                    ])?;
                if joined.is_some() {
                    place.stay_id = Some(self.conn.last_insert_rowid());
                    place.joined_seq = Some(r.seq);
                }
            }
            None => {
                if let Some(stay) = place.stay_id {
                    let left = (was_present && !after.present).then_some(r);
                    self.conn
                        .prepare_cached(
                            "UPDATE stay SET person_email = ?2, person_display_name = ?3,
                                is_moderator = ?4, left_at = ?5, left_seq = ?6,
                                left_not_before = ?7, leave_source = ?8
                             WHERE id = ?1",
                        )?
                        .execute(params![
                            stay,
                            after.person_email,
                            after.person_display_name,
                            after.is_moderator,
                            left.map(|_| &event_at),
                            left.map(|r| r.seq),
                            left.and_then(|r| r.not_before.as_deref()),
                            left.map(|r| r.source.as_str()),
                        ])?;
                    if left.is_some() {
                        place.stay_id = None;
                        place.joined_seq = None;
                    }
                }
            }
        }
        if after.present {
            self.conn
                .prepare_cached(
                    "INSERT INTO span (room_id, person_id, person_email, person_display_name,
                        is_moderator, since, added_by, join_source, joined_seq, from_at, from_seq)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                )?
                .execute(params![
                    after.room_id,
                    after.person_id,
                    after.person_email,
                    after.person_display_name,
                    after.is_moderator,
                    after.since,
                    after.added_by,
                    after.join_source.as_str(),
                    place.joined_seq,
                    event_at,
                    r.seq,
                ])?;
            place.span_id = Some(self.conn.last_insert_rowid());
        }
        let delta = i64::from(after.present) - i64::from(was_present);
        if delta != 0 {
            self.conn
                .prepare_cached(
                    "UPDATE room SET members_now = members_now + ?2 WHERE room_id = ?1",
                )?
                .execute((&after.room_id, delta))?;
        }
        place.last_event_at = event_at;
        Ok(())
    }

    /// Brings a membership the index already knows into this batch.
    fn load(&mut self, id: &str) -> Result<(), IndexError> {
        let found = self
            .conn
            .prepare_cached(
                "SELECT room_id, person_id, person_email, person_display_name, present,
                    is_moderator, since, added_by, join_source, last_seq, last_at,
                    last_event_at, stay_id, span_id, joined_seq
                 FROM membership WHERE membership_id = ?1",
            )?
            .query_row([id], |row| {
                let source: String = row.get(8)?;
                Ok((
                    Member {
                        membership_id: id.to_string(),
                        room_id: row.get(0)?,
                        person_id: row.get(1)?,
                        person_email: row.get(2)?,
                        person_display_name: row.get(3)?,
                        present: row.get(4)?,
                        is_moderator: row.get(5)?,
                        since: row.get(6)?,
                        added_by: row.get(7)?,
                        join_source: Source::from_name(&source).unwrap_or_default(),
                        last_seq: row.get(9)?,
                        last_at: row.get(10)?,
                        // Only the writer's replay rule reads it; no
                        // answer of the index depends on it.
                        last_source: Source::default(),
                    },
                    Place {
                        last_event_at: row.get(11)?,
                        stay_id: row.get(12)?,
                        span_id: row.get(13)?,
                        joined_seq: row.get(14)?,
                    },
                ))
            })
            .optional()?;
        if let Some((member, place)) = found {
            self.members.restore(id.to_string(), Some(member));
            self.places.insert(id.to_string(), place);
        }
        Ok(())
    }

    /// Writes back what the batch changed, with the position it reached,
    /// and commits; returns that position's seq.
    fn commit(mut self, clock: &dyn Clock) -> Result<u64, IndexError> {
        let written = self.write_back(clock);
        match written {
            Ok(()) => self.conn.execute_batch("COMMIT")?,
            Err(error) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                return Err(error);
            }
        }
        Ok(self.at.seq)
    }

    fn write_back(&mut self, clock: &dyn Clock) -> Result<(), IndexError> {
        let mut upsert = self.conn.prepare_cached(
            "INSERT OR REPLACE INTO membership VALUES
             (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        )?;
        for m in self.members.all() {
            let place = self
                .places
                .get(&m.membership_id)
                .cloned()
                .unwrap_or_default();
            upsert.execute(params![
                m.membership_id,
                m.room_id,
                m.person_id,
                m.person_email,
                m.person_display_name,
                m.present,
                m.is_moderator,
                m.since,
                m.added_by,
                m.join_source.as_str(),
                m.last_seq,
                m.last_at,
                place.last_event_at,
                place.stay_id,
                place.span_id,
                place.joined_seq,
            ])?;
        }
        for gap in self.coverage.take_closed() {
            self.conn
                .prepare_cached(
                    "INSERT INTO gap (from_at, to_at, after_crash) VALUES (?1, ?2, ?3)",
                )?
                .execute((&gap.from, &gap.to, gap.after_crash))?;
        }
        self.conn
            .execute("DELETE FROM gap WHERE to_at IS NULL", [])?;
        if let Some(from) = self.coverage.stopped_at() {
            self.conn.execute(
                "INSERT INTO gap (from_at, to_at, after_crash) VALUES (?1, NULL, 0)",
                [from],
            )?;
        }
        self.conn.execute(
            "UPDATE state SET seq = ?1, hash = ?2, day = ?3, offset = ?4, built_at = ?5
             WHERE only = 1",
            params![
                self.at.seq,
                self.at.hash,
                self.at.day,
                self.at.offset,
                format_timestamp(clock.now())
            ],
        )?;
        Ok(())
    }
}
