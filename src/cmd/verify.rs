//! `rollcall verify`: shows the log is whole. Every record's own hash, the
//! chain of `prev_hash` links across days, and `seq` running from 1 with no
//! gap or repeat. Exit 0 intact, 1 at the first fault (naming file, line
//! and seq), 2 when it cannot run.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use crate::cli::Global;
use crate::log::archive;
use crate::log::days::{self, Day};
use crate::log::reader::{DayReader, Line, ReadError};
use crate::log::record::{self, GENESIS_HASH, LineError, Record};

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(global: &Global, _args: Args) -> anyhow::Result<ExitCode> {
    let dir = &global.dir;
    if !dir.is_dir() {
        anyhow::bail!("there is no log directory at {}", dir.display());
    }
    let verifying = || format!("verifying {}", dir.display());
    let start = archive::retired_chain_end(dir).with_context(verifying)?;
    let verdict = verify(dir, start).with_context(verifying)?;
    let archive_faults = archive::check_archives(dir).with_context(verifying)?;
    for fault in &archive_faults {
        println!("FAULT: {fault}");
    }
    match verdict {
        Verdict::Intact {
            records,
            days,
            archived,
        } if archive_faults.is_empty() => {
            println!("{records} records in {days} days, chain intact");
            if archived > 0 {
                println!("{archived} archived days match their digests and the digest chain");
            }
            Ok(ExitCode::SUCCESS)
        }
        Verdict::Intact { .. } => Ok(ExitCode::from(1)),
        Verdict::Faulty { fault, checked } => {
            println!("FAULT: {fault}");
            println!("({checked} records before it check out; nothing after it was checked)");
            Ok(ExitCode::from(1))
        }
    }
}

/// What `verify` found.
#[derive(Debug)]
pub enum Verdict {
    Intact {
        records: u64,
        days: usize,
        /// Days read from their archive.
        archived: usize,
    },
    /// The first fault; what follows a broken link cannot be trusted to
    /// say anything more.
    Faulty { fault: Fault, checked: u64 },
}

/// Where the log stops being whole, and how.
#[derive(Debug)]
pub struct Fault {
    pub path: PathBuf,
    pub line: u64,
    /// As far as the line can be read.
    pub seq: Option<u64>,
    pub problem: String,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} line {}", self.path.display(), self.line)?;
        match self.seq {
            Some(seq) => write!(f, ", seq {seq}")?,
            None => write!(f, ", seq unreadable")?,
        }
        write!(f, ": {}", self.problem)
    }
}

/// Checks every day, oldest first. For a day that is both live and
/// archived the live file is the one read (it is authoritative until
/// archival removes it). `start` is where the chain begins when retention
/// deleted the oldest archives: the last deleted record's seq and hash.
pub fn verify(dir: &Path, start: Option<(u64, String)>) -> Result<Verdict, ReadError> {
    let all = days::list(dir).map_err(|source| ReadError::List {
        dir: dir.to_path_buf(),
        source,
    })?;
    let mut chain = match start {
        Some((seq, hash)) => Chain {
            next_seq: seq + 1,
            last_hash: hash,
            records: 0,
        },
        None => Chain::default(),
    };
    for day in &all {
        if let Some(fault) = check_day(&mut chain, day)? {
            return Ok(Verdict::Faulty {
                fault,
                checked: chain.records,
            });
        }
    }
    Ok(Verdict::Intact {
        records: chain.records,
        days: all.len(),
        archived: all.iter().filter(|d| d.live.is_none()).count(),
    })
}

/// The chain as checked so far.
#[derive(Debug)]
struct Chain {
    next_seq: u64,
    last_hash: String,
    records: u64,
}

impl Default for Chain {
    fn default() -> Self {
        Self {
            next_seq: 1,
            last_hash: GENESIS_HASH.to_string(),
            records: 0,
        }
    }
}

/// Checks one day file's lines, each against the chain so far.
fn check_day(chain: &mut Chain, day: &Day) -> Result<Option<Fault>, ReadError> {
    let name = days::day_name(day.date);
    let mut lines = DayReader::open(day)?;
    while let Some(line) = lines.next_line()? {
        match check_line(chain, &name, &line) {
            Ok(record) => {
                chain.next_seq = record.seq + 1;
                chain.last_hash = record.hash;
                chain.records += 1;
            }
            Err(problem) => {
                return Ok(Some(Fault {
                    path: line.path.to_path_buf(),
                    line: line.number,
                    seq: leading_seq(line.bytes),
                    problem,
                }));
            }
        }
    }
    Ok(None)
}

/// The record on `line` if it is whole, untouched and the next link of the
/// chain; otherwise what is wrong.
fn check_line(chain: &Chain, day: &str, line: &Line<'_>) -> Result<Record, String> {
    if !line.whole {
        return Err("the line is cut short (no newline at the end): the file was truncated".into());
    }
    let record = record::parse_line(line.bytes).map_err(|e| match e {
        LineError::HashMismatch => {
            "the record does not match its hash: its content was modified".to_string()
        }
        LineError::Parse(why) => format!("not a record ({why}): the line was damaged"),
    })?;
    let expected = chain.next_seq;
    if record.seq < expected {
        return Err(format!(
            "seq {} comes again after seq {}: a line was inserted, duplicated or moved",
            record.seq,
            expected - 1
        ));
    }
    if record.seq > expected {
        let missing = if record.seq - expected == 1 {
            format!("seq {expected} is missing")
        } else {
            format!("seqs {expected} to {} are missing", record.seq - 1)
        };
        return Err(match (line.number, expected) {
            (1, 1) => format!(
                "the log starts at seq {} instead of 1: {missing}; the first day(s) appear to be missing",
                record.seq
            ),
            (1, _) => format!(
                "{missing} before this file: a day appears to be missing (or the end of the previous day file was cut off)"
            ),
            _ => format!("{missing}: a line was deleted or moved"),
        });
    }
    if record.prev_hash != chain.last_hash {
        return Err(if expected == 1 {
            "the first record does not start the chain (prev_hash is not the genesis hash)"
                .to_string()
        } else {
            format!(
                "prev_hash does not match the hash of seq {}: a record was replaced",
                expected - 1
            )
        });
    }
    if record.day() != day {
        return Err(format!(
            "a record received on {} is in the file for {day}",
            record.day()
        ));
    }
    Ok(record)
}

/// The seq of a line that may not parse: records begin with it.
fn leading_seq(line: &[u8]) -> Option<u64> {
    let digits = line.strip_prefix(b"{\"seq\":")?;
    let end = digits
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    std::str::from_utf8(&digits[..end]).ok()?.parse().ok()
}
