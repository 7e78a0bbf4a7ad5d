//! Catching the index up with the log: the durable records past the
//! index's newest, read from where that one sits in its day file, folded
//! into the tables in batched transactions. Each batch commits together
//! with the position it reached, so a crash leaves the index at an earlier
//! consistent seq, from which the next catch-up goes on ([`fold`]). The
//! indexes only answers read are made when a catch-up ends
//! ([`INDEXES`]).
//!
//! [`fold`]: super::fold

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};

use rusqlite::Connection;

use super::fold::Fold;
use super::schema::INDEXES;
use super::{Index, IndexError};
use crate::clock::Clock;
use crate::log::days::{self, Day};
use crate::log::reader::{self, RecordView};
use crate::log::record::scan;

/// Records per transaction: large enough that the pages a batch changes
/// at random (memberships, stays) are written once for many records, and
/// a commit's fsync is paid rarely; small enough that another process
/// catching up never waits long for the write lock (about a second).
const BATCH: usize = 250_000;

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

/// Records a connection folds in before it refreshes the planner's
/// statistics: a build, or a long-lived connection (serve's indexer)
/// every so often, never a console page's short catch-up.
const ANALYZE_AFTER: u64 = 100_000;

impl Index {
    /// Folds in every durable record past the index's newest: up to
    /// `DIR/.head`, or every whole line for a log without one.
    pub fn catch_up(&mut self, clock: &dyn Clock) -> Result<CaughtUp, IndexError> {
        let head = super::durable_seq(&self.dir)?;
        self.catch_up_to(head.unwrap_or(u64::MAX), clock)
    }

    /// Folds in the records past the index's newest, up to seq `through`.
    pub fn catch_up_to(&mut self, through: u64, clock: &dyn Clock) -> Result<CaughtUp, IndexError> {
        let done = self.fold_up_to(through, clock)?;
        // IF NOT EXISTS: all of them but after a first build, or one that
        // was cut off, none of them; in one transaction all the same.
        self.conn
            .execute_batch(&format!("BEGIN IMMEDIATE; {INDEXES} COMMIT;"))
            .inspect_err(|_| {
                let _ = self.conn.execute_batch("ROLLBACK");
            })?;
        self.unanalyzed += done.records;
        if self.unanalyzed >= ANALYZE_AFTER {
            self.optimize()?;
        }
        Ok(done)
    }

    fn fold_up_to(&mut self, through: u64, clock: &dyn Clock) -> Result<CaughtUp, IndexError> {
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
        let mut fold = Fold::new(&self.conn, self.texts)?;
        fold.begin()?;
        let mut line = Vec::new();
        let mut scratch = String::new();
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
                let Ok(record) = RecordView::parse_reusing(&line, &mut scratch) else {
                    continue;
                };
                let hash = scan::string_member(&line, b"hash").flatten();
                fold.record(&record, hash.as_deref().unwrap_or(""), &name, at)?;
                done.records += 1;
                if fold.pending >= BATCH {
                    fold.commit(clock)?;
                    fold.begin()?;
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
