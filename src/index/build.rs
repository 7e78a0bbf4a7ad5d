//! Catching the index up with the log: the durable records past the
//! index's newest, read from where that one sits in its day file, folded
//! into the tables in batched transactions. Each batch commits together
//! with the position it reached, so a crash leaves the index at an earlier
//! consistent seq, from which the next catch-up goes on ([`fold`]). The
//! indexes only answers read are made when a catch-up ends
//! ([`INDEXES`]).
//!
//! [`fold`]: super::fold

use rusqlite::Connection;

use super::fold::Fold;
use super::lines::{self, Lines};
use super::schema::Kind;
use super::{Index, IndexError};
use crate::clock::Clock;
use crate::log::reader::RecordView;
use crate::log::record::scan;

/// Records per transaction: large enough that the pages a batch changes
/// at random (memberships, stays) are written once for many records, and
/// a commit's fsync is paid rarely; small enough that another process
/// catching up never waits long for the write lock (about a second).
pub(super) const BATCH: usize = 250_000;

/// Where the index has got to in a receiver's log.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Position {
    pub seq: u64,
    pub hash: String,
    /// The UTC day (`YYYY-MM-DD`) of the record at `seq`.
    pub day: Option<String>,
    /// The byte offset of its line in that day.
    pub offset: u64,
}

impl Position {
    /// Where an index of one receiver has got to (the first receiver's
    /// position in an index of several).
    pub fn read(conn: &Connection) -> rusqlite::Result<Position> {
        conn.query_row(
            "SELECT seq, hash, day, offset FROM state WHERE receiver = 0",
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
    /// Records folded in (of several receivers: records read, each copy
    /// of an event one).
    pub records: u64,
    /// The newest record the index now holds; of several receivers, the
    /// sum of their newest seqs (how many of their records it has read).
    pub seq: u64,
}

/// `None` when the log's record at the index's newest seq is still there
/// with the same hash; else why the index is not this log's.
pub fn still_in_log(dir: &std::path::Path, at: &Position) -> Result<Option<String>, IndexError> {
    if at.seq == 0 {
        return Ok(None);
    }
    let Some(day) = at
        .day
        .as_deref()
        .and_then(|d| lines::find_day(dir, d).transpose())
    else {
        return Ok(Some(format!(
            "the log has no day {} for the index's newest record (seq {})",
            at.day.as_deref().unwrap_or("?"),
            at.seq
        )));
    };
    let day = day?;
    let mut lines = lines::open_at(&day, at.offset)?;
    let mut line = Vec::new();
    lines::read_line(&mut lines, &mut line, &day)?;
    if scan::leading_seq(&line) != Some(at.seq) {
        // Not where it was: lines before it changed length. Look for it
        // in the whole day, to say what became of it.
        lines = lines::open_at(&day, 0)?;
        loop {
            let whole = lines::read_line(&mut lines, &mut line, &day)?;
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
    /// Folds in every durable record past the index's newest: up to each
    /// receiver's `DIR/.head`, or every whole line for a log without one.
    pub fn catch_up(&mut self, clock: &dyn Clock) -> Result<CaughtUp, IndexError> {
        let heads = self.heads()?;
        self.catch_up_each(&heads, u64::MAX, clock)
    }

    /// Folds in the records past the index's newest, up to seq `through`
    /// of each receiver.
    pub fn catch_up_to(&mut self, through: u64, clock: &dyn Clock) -> Result<CaughtUp, IndexError> {
        let through = vec![through; self.receivers.len()];
        self.catch_up_each(&through, u64::MAX, clock)
    }

    /// Folds in each receiver's records past the index's newest, up to
    /// its seq in `through`; of several receivers, stops after the batch
    /// that reads the `most`th record.
    pub fn catch_up_each(
        &mut self,
        through: &[u64],
        most: u64,
        clock: &dyn Clock,
    ) -> Result<CaughtUp, IndexError> {
        let done = match self.kind {
            Kind::Single => self.fold_up_to(through[0], clock)?,
            Kind::Merged => self.merge_up_to(through, most, clock)?,
        };
        self.make_indexes()?;
        self.unanalyzed += done.records;
        if self.unanalyzed >= ANALYZE_AFTER {
            self.optimize()?;
        }
        Ok(done)
    }

    /// Each receiver's durable head (`u64::MAX` for a log without one).
    pub fn heads(&self) -> Result<Vec<u64>, IndexError> {
        self.receivers
            .iter()
            .map(|r| super::durable_seq(&r.dir).map(|head| head.unwrap_or(u64::MAX)))
            .collect()
    }

    /// The indexes only answers read, whichever are missing.
    pub(super) fn make_indexes(&self) -> Result<(), IndexError> {
        // IF NOT EXISTS: all of them but after a first build, or one that
        // was cut off, none of them; in one transaction all the same.
        self.conn
            .execute_batch(&format!("BEGIN IMMEDIATE; {} COMMIT;", self.kind.indexes()))
            .inspect_err(|_| {
                let _ = self.conn.execute_batch("ROLLBACK");
            })?;
        Ok(())
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
        let mut lines = Lines::from(&self.receivers[0].dir, &start)?;
        let mut fold = Fold::new(&self.conn, self.texts)?;
        fold.begin()?;
        let mut line = Vec::new();
        let mut scratch = String::new();
        while let Some(at) = lines.next(&mut line)? {
            let Some(seq) = scan::leading_seq(&line) else {
                continue;
            };
            if seq <= fold.newest(0) {
                continue;
            }
            if seq > through {
                break;
            }
            // A damaged line is `verify`'s to report; the index goes on
            // from the lines that read.
            let Ok(record) = RecordView::parse_reusing(&line, &mut scratch) else {
                continue;
            };
            let hash = scan::string_member(&line, b"hash").flatten();
            fold.record(&record, hash.as_deref().unwrap_or(""), lines.day(), at)?;
            done.records += 1;
            if fold.pending >= BATCH {
                fold.commit(clock)?;
                fold.begin()?;
            }
        }
        done.seq = fold.commit(clock)?;
        Ok(done)
    }
}
