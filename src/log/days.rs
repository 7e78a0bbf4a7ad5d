//! Where each UTC day of the log lives: a live `DIR/YYYY-MM-DD.jsonl`, or,
//! once closed and archived, `DIR/archive/YYYY-MM-DD.jsonl.gz`. Everything
//! that reads the log goes through [`list`] and [`Day::lines`], so live and
//! archived days read alike.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use time::Date;
use time::macros::format_description;

pub const ARCHIVE_DIR: &str = "archive";
/// Retried deliveries are recognised for at least this many days: the
/// writer keeps their keys that long, and retention never deletes a day
/// inside it.
pub const DEDUP_DAYS: i64 = 7;
const LIVE_SUFFIX: &str = ".jsonl";
const ARCHIVE_SUFFIX: &str = ".jsonl.gz";

/// One UTC day of the log, and the files that hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Day {
    pub date: Date,
    pub live: Option<PathBuf>,
    pub archived: Option<PathBuf>,
}

impl Day {
    /// The file to read the day from. Until archival has removed it, the
    /// live file is authoritative.
    pub fn path(&self) -> &Path {
        self.live
            .as_deref()
            .or(self.archived.as_deref())
            .expect("a listed day has a file")
    }

    /// The day's lines in order, without their newlines. A last line with
    /// no newline (a torn write) is returned as it is.
    pub fn lines(&self) -> io::Result<Lines> {
        Ok(Lines::new(self.bytes()?))
    }

    /// The day's bytes, unbuffered and decompressed, for readers that
    /// split lines themselves out of large blocks.
    ///
    /// Archival may move a live day between the listing and the open (the
    /// archive is written before the live file is removed): then the day
    /// is read from its archive, whichever command reads it.
    pub fn bytes(&self) -> io::Result<Box<dyn Read + Send>> {
        match (open(self.path()), &self.live) {
            (Err(e), Some(live)) if e.kind() == io::ErrorKind::NotFound => {
                let dir = live.parent().unwrap_or(Path::new("."));
                open(&archive_path(dir, self.date)).map_err(|_| e)
            }
            (opened, _) => opened,
        }
    }
}

/// A day file's content, plain or gzip.
fn open(path: &Path) -> io::Result<Box<dyn Read + Send>> {
    let file = File::open(path)?;
    Ok(if path.extension().is_some_and(|e| e == "gz") {
        Box::new(MultiGzDecoder::new(BufReader::new(file)))
    } else {
        Box::new(file)
    })
}

/// `YYYY-MM-DD`.
pub fn day_name(date: Date) -> String {
    date.format(format_description!("[year]-[month]-[day]"))
        .expect("a date always formats")
}

pub fn parse_day_name(name: &str) -> Option<Date> {
    Date::parse(name, format_description!("[year]-[month]-[day]")).ok()
}

pub fn live_path(dir: &Path, date: Date) -> PathBuf {
    dir.join(format!("{}{LIVE_SUFFIX}", day_name(date)))
}

pub fn archive_path(dir: &Path, date: Date) -> PathBuf {
    dir.join(ARCHIVE_DIR)
        .join(format!("{}{ARCHIVE_SUFFIX}", day_name(date)))
}

/// Fails, saying what to do, unless `dir` is a directory: the commands
/// that read the log all start here.
pub fn ensure_log_dir(dir: &Path) -> anyhow::Result<()> {
    anyhow::ensure!(
        dir.is_dir(),
        "there is no log directory at {}: pass --dir (or set ROLLCALL_DIR) to the directory `rollcall serve` writes to (default ./audit-logs)",
        dir.display()
    );
    Ok(())
}

/// Whether `dir` holds a log of its own: a live day, an `archive/`
/// folder, or a durable head. A read command's first `--dir` given with
/// `--remote` and holding none is only the home of the mirrors and of
/// the merged index, not a receiver.
pub fn holds_a_log(dir: &Path) -> io::Result<bool> {
    Ok(dir.join(ARCHIVE_DIR).is_dir()
        || dir.join(super::head::HEAD_FILE).exists()
        || !list(dir)?.is_empty())
}

/// Every day in `dir`, oldest first.
pub fn list(dir: &Path) -> io::Result<Vec<Day>> {
    let mut days: std::collections::BTreeMap<Date, Day> = Default::default();
    for (folder, suffix) in [
        (dir.to_path_buf(), LIVE_SUFFIX),
        (dir.join(ARCHIVE_DIR), ARCHIVE_SUFFIX),
    ] {
        let entries = match std::fs::read_dir(&folder) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound && folder != dir => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            let Some(date) = name
                .to_str()
                .and_then(|n| n.strip_suffix(suffix))
                .and_then(parse_day_name)
            else {
                continue;
            };
            let day = days.entry(date).or_insert(Day {
                date,
                live: None,
                archived: None,
            });
            if suffix == LIVE_SUFFIX {
                day.live = Some(entry.path());
            } else {
                day.archived = Some(entry.path());
            }
        }
    }
    Ok(days.into_values().collect())
}

/// Lines of a day file, plain or gzip.
pub struct Lines {
    reader: Box<dyn BufRead + Send>,
    buf: Vec<u8>,
}

impl Lines {
    fn new(bytes: Box<dyn Read + Send>) -> Self {
        Self {
            reader: Box::new(BufReader::with_capacity(1 << 16, bytes)),
            buf: Vec::new(),
        }
    }

    /// The next line into the internal buffer, without allocating per line.
    /// Returns `None` at the end; `Some(true)` when the line ended with a
    /// newline, `Some(false)` for a torn last line.
    pub fn next_line(&mut self) -> io::Result<Option<(&[u8], bool)>> {
        self.buf.clear();
        if self.reader.read_until(b'\n', &mut self.buf)? == 0 {
            return Ok(None);
        }
        let whole = self.buf.last() == Some(&b'\n');
        if whole {
            self.buf.pop();
        }
        Ok(Some((&self.buf, whole)))
    }
}
