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
use crate::log::days;
use crate::log::reader::{self, Block, Place, ReadError};
use crate::log::record::{self, GENESIS_HASH, LineError, Record};

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(global: &Global, _args: Args) -> anyhow::Result<ExitCode> {
    let dir = &global.dir;
    days::ensure_log_dir(dir)?;
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
/// archival removes it). Lines are parsed and hashed on every core; the
/// chain is then followed through them in log order. `start` is where the
/// chain begins when retention deleted the oldest archives: the last
/// deleted record's seq and hash.
pub fn verify(dir: &Path, start: Option<(u64, String)>) -> Result<Verdict, ReadError> {
    let all = reader::days(dir)?;
    let mut chain = match start {
        Some((seq, hash)) => Chain {
            next_seq: seq + 1,
            last_hash: hash,
            records: 0,
        },
        None => Chain::default(),
    };
    let checked = reader::in_log_order(&all, Vec::new, parse_block, |place, lines| {
        check_block(&mut chain, place, lines)
    });
    match checked {
        Ok(()) => Ok(Verdict::Intact {
            records: chain.records,
            days: all.len(),
            archived: all.iter().filter(|d| d.live.is_none()).count(),
        }),
        Err(Stop::Fault(fault)) => Ok(Verdict::Faulty {
            fault,
            checked: chain.records,
        }),
        // An archive whose bytes cannot be decoded (a damaged gzip) is a
        // fault in the log, not a reason verify cannot run.
        Err(Stop::Read(ReadError::Read { path, source }))
            if path.extension().is_some_and(|e| e == "gz")
                && source.kind() != std::io::ErrorKind::PermissionDenied =>
        {
            Ok(Verdict::Faulty {
                fault: Fault {
                    path,
                    line: 0,
                    seq: None,
                    problem: format!("the file cannot be read back: {source}"),
                },
                checked: chain.records,
            })
        }
        Err(Stop::Read(e)) => Err(e),
    }
}

/// Why the pass over the log ended early.
enum Stop {
    Fault(Fault),
    Read(ReadError),
}

impl From<ReadError> for Stop {
    fn from(e: ReadError) -> Self {
        Stop::Read(e)
    }
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

/// A line checked on its own: its record, or what is wrong with it, and
/// its seq as far as it can be read.
struct Parsed {
    record: Result<Record, String>,
    seq: Option<u64>,
}

/// Parses and hashes the lines of `block`, up to the first bad one
/// (nothing after it is checked). Returns the number of lines gone
/// through.
fn parse_block(block: &Block, parsed: &mut Vec<Parsed>) -> u64 {
    parsed.clear();
    for (bytes, whole) in block.lines() {
        let record = parse(bytes, whole);
        let bad = record.is_err();
        parsed.push(Parsed {
            record,
            seq: leading_seq(bytes),
        });
        if bad {
            break;
        }
    }
    parsed.len() as u64
}

/// The record on a line if it is whole and untouched.
fn parse(bytes: &[u8], whole: bool) -> Result<Record, String> {
    if !whole {
        return Err("the line is cut short (no newline at the end): the file was truncated".into());
    }
    record::parse_line(bytes).map_err(|e| match e {
        LineError::HashMismatch => {
            "the record does not match its hash: its content was modified".to_string()
        }
        LineError::Parse(why) => format!("not a record ({why}): the line was damaged"),
    })
}

/// Follows the chain through a block's lines, in order.
fn check_block(chain: &mut Chain, place: Place<'_>, lines: &mut [Parsed]) -> Result<(), Stop> {
    let name = days::day_name(place.day.date);
    for (number, parsed) in (place.lines_before + 1..).zip(lines.iter_mut()) {
        let record = std::mem::replace(&mut parsed.record, Err(String::new()));
        let record = record
            .and_then(|record| check_link(chain, &name, number, record))
            .map_err(|problem| {
                Stop::Fault(Fault {
                    path: place.day.path().to_path_buf(),
                    line: number,
                    seq: parsed.seq,
                    problem,
                })
            })?;
        chain.next_seq = record.seq + 1;
        chain.last_hash = record.hash;
        chain.records += 1;
    }
    Ok(())
}

/// `record`, line `number` of the file for `day`, if it is the next link
/// of the chain; otherwise what is wrong.
fn check_link(chain: &Chain, day: &str, number: u64, record: Record) -> Result<Record, String> {
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
        return Err(match (number, expected) {
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
