//! Reading the log in seq order across live and archived days: the one
//! reader behind `export`, `tail` and `verify`.
//!
//! Days come from [`days::list`] and their lines from a [`DayReader`], so
//! an archived day reads like a live one. A [`Filter`] narrows the days
//! worth opening and the records worth keeping; a [`RecordView`] is a
//! record parsed once; [`in_log_order`] runs whole-log passes on several
//! cores; [`Stream`] gives one receiver's records to a merge of several;
//! [`TitleFallback`] gives a record written without a room title the one
//! it had at the time.

mod blocks;
mod filter;
mod stream;
mod title_fallback;
mod view;

pub use blocks::{Block, Place, in_log_order};
pub use filter::{Filter, FilterError, SeqRange, parse_time};
pub use stream::{Entry, Stream};
pub use title_fallback::{TitleFallback, titled_lines};
pub use view::RecordView;

use std::io;
use std::path::{Path, PathBuf};

use super::days::{self, Day, Lines};

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
