//! A receiver's log read on from where the index has got to: its whole
//! lines from a day and byte offset on, across live and archived days,
//! each with the day and offset it was read at (what the index stores as
//! its position). A last line without its newline is torn or still being
//! written: not durable, so not read.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use super::IndexError;
use super::build::Position;
use crate::log::days::{self, Day};
use crate::log::reader;

/// A log's whole lines from a position on.
pub struct Lines {
    days: std::vec::IntoIter<Day>,
    open: Option<Open>,
}

/// The day being read.
struct Open {
    day: Day,
    name: String,
    lines: Box<dyn BufRead + Send>,
    /// Where the next line begins.
    offset: u64,
}

impl Lines {
    /// The lines of the log in `dir` from `start`'s line on (that line
    /// included: the reader skips the seqs it has).
    pub fn from(dir: &Path, start: &Position) -> Result<Self, IndexError> {
        let from_day = start.day.as_deref().and_then(days::parse_day_name);
        let all: Vec<Day> = reader::days(dir)?
            .into_iter()
            .filter(|d| from_day.is_none_or(|f| d.date >= f))
            .collect();
        let mut days = all.into_iter();
        let open = match days.next() {
            Some(day) => {
                let offset = if Some(day.date) == from_day {
                    start.offset
                } else {
                    0
                };
                Some(Open::at(day, offset)?)
            }
            None => None,
        };
        Ok(Lines { days, open })
    }

    /// Reads the next whole line into `line` (without its newline):
    /// the byte offset it began at, `None` once every day is read.
    pub fn next(&mut self, line: &mut Vec<u8>) -> Result<Option<u64>, IndexError> {
        loop {
            let Some(open) = self.open.as_mut() else {
                return Ok(None);
            };
            let whole = read_line(open.lines.as_mut(), line, &open.day)?;
            let at = open.offset;
            open.offset += line.len() as u64 + u64::from(whole);
            // A torn line (or one still being written) ends the day.
            if whole {
                return Ok(Some(at));
            }
            self.open = match self.days.next() {
                Some(day) => Some(Open::at(day, 0)?),
                None => None,
            };
        }
    }

    /// The UTC day (`YYYY-MM-DD`) of the line read last.
    pub fn day(&self) -> &str {
        self.open.as_ref().map_or("", |open| open.name.as_str())
    }
}

impl Open {
    fn at(day: Day, offset: u64) -> Result<Self, IndexError> {
        Ok(Open {
            lines: open_at(&day, offset)?,
            name: days::day_name(day.date),
            day,
            offset,
        })
    }
}

/// The day named `name` in `dir`'s log.
pub fn find_day(dir: &Path, name: &str) -> Result<Option<Day>, IndexError> {
    let Some(date) = days::parse_day_name(name) else {
        return Ok(None);
    };
    Ok(reader::days(dir)?.into_iter().find(|d| d.date == date))
}

/// The day's lines from byte `offset` on: a seek in a live file, a skip
/// through the decompressed bytes of an archived one.
pub fn open_at(day: &Day, offset: u64) -> Result<Box<dyn BufRead + Send>, IndexError> {
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
pub fn read_line(
    lines: &mut dyn BufRead,
    line: &mut Vec<u8>,
    day: &Day,
) -> Result<bool, IndexError> {
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
