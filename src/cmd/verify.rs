//! `rollcall verify`: shows the log is whole. Every record's own hash, the
//! chain of `prev_hash` links across days, `seq` running from 1 with no
//! gap or repeat, and the end of the log against the durable head
//! (`DIR/.head`, and a head kept elsewhere given with `--expect-head`).
//! Exit 0 intact, 1 at the first fault (naming file, line and seq), 2 when
//! it cannot run.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use time::OffsetDateTime;

use crate::cli::Global;
use crate::log::archive;
use crate::log::days;
use crate::log::head::{self, Head};
use crate::log::reader::{self, Block, Place, ReadError};
use crate::log::record::{self, GENESIS_HASH, LineError, Record, format_timestamp, scan};
use crate::log::writer::QUARANTINE_DIR;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Also check that the log holds this record: a head an earlier
    /// `verify` printed after "head:", kept off this machine.
    #[arg(long, value_name = "SEQ:HASH", env = "ROLLCALL_EXPECT_HEAD")]
    pub expect_head: Option<Head>,
}

pub fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let dir = &global.dir;
    days::ensure_log_dir(dir)?;
    let verifying = || format!("verifying {}", dir.display());
    let start = archive::retired_chain_end(dir).with_context(verifying)?;
    let heads = Heads {
        durable: Head::read(dir).with_context(verifying)?,
        expected: args.expect_head,
    };
    let verdict = verify(dir, start, &heads).with_context(verifying)?;
    let archive_faults = archive::check_archives(dir).with_context(verifying)?;
    for fault in &archive_faults {
        println!("FAULT: {fault}");
    }
    for held in quarantined(dir).with_context(verifying)? {
        println!("{held}");
    }
    match verdict {
        Verdict::Intact {
            records,
            days,
            archived,
            end,
            notes,
        } if archive_faults.is_empty() => {
            println!("{records} records in {days} days, chain intact");
            if archived > 0 {
                println!("{archived} archived days match their digests and the digest chain");
            }
            for note in notes {
                println!("note: {note}");
            }
            if let Some(end) = end {
                println!("head: {end}");
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

/// Records the log must hold, with these hashes.
#[derive(Debug, Clone, Default)]
pub struct Heads {
    /// `DIR/.head`: what the writer made durable.
    pub durable: Option<Head>,
    /// `--expect-head`: a head kept elsewhere.
    pub expected: Option<Head>,
}

/// What `verify` found.
#[derive(Debug)]
pub enum Verdict {
    Intact {
        records: u64,
        days: usize,
        /// Days read from their archive.
        archived: usize,
        /// The last record: the head to keep elsewhere.
        end: Option<Head>,
        /// Worth knowing, not faults (a batch still being written).
        notes: Vec<String>,
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
/// deleted record's seq and hash. Each of `heads` names a record the log
/// must hold, with that hash.
///
/// A last line without its newline is a batch still being written when
/// `DIR/.head` does not reach it (nothing was answered for it yet): a
/// note. Anywhere else, or with no head to tell, it is a cut file.
pub fn verify(
    dir: &Path,
    start: Option<(u64, String)>,
    heads: &Heads,
) -> Result<Verdict, ReadError> {
    let all = reader::days(dir)?;
    let mut chain = match start {
        Some((seq, hash)) => Chain {
            next_seq: seq + 1,
            last_hash: hash,
            ..Chain::default()
        },
        None => Chain::default(),
    };
    let first_seq = chain.next_seq;
    let witnesses: Vec<(&Head, String)> = [
        (&heads.durable, head::path(dir).display().to_string()),
        (&heads.expected, "--expect-head".to_string()),
    ]
    .into_iter()
    .filter_map(|(head, source)| Some((head.as_ref()?, source)))
    .collect();
    chain.found = witnesses.iter().map(|(head, _)| (head.seq, None)).collect();
    let checked = reader::in_log_order(&all, Vec::new, parse_block, |place, lines| {
        check_block(&mut chain, place, lines)
    });
    let faulty = |fault, chain: &Chain| {
        Ok(Verdict::Faulty {
            fault,
            checked: chain.records,
        })
    };
    match checked {
        Ok(()) => {}
        Err(Stop::Fault(fault)) => return faulty(fault, &chain),
        // An archive whose bytes cannot be decoded (a damaged gzip) is a
        // fault in the log, not a reason verify cannot run.
        Err(Stop::Read(ReadError::Read { path, source }))
            if path.extension().is_some_and(|e| e == "gz")
                && source.kind() != std::io::ErrorKind::PermissionDenied =>
        {
            let fault = Fault {
                path,
                line: 0,
                seq: None,
                problem: format!("the file cannot be read back: {source}"),
            };
            return faulty(fault, &chain);
        }
        Err(Stop::Read(e)) => return Err(e),
    }
    let last_seq = chain.next_seq - 1;
    let mut notes = Vec::new();
    if let Some(fragment) = chain.fragment.take() {
        match heads.durable.as_ref().map(|head| head.seq) {
            Some(durable) if durable <= last_seq => notes.push(format!(
                "{} line {} has no newline yet and is past the durable head (seq {durable}): a batch still being written, not checked",
                fragment.path.display(),
                fragment.line
            )),
            _ => return faulty(fragment, &chain),
        }
    }
    for (head, source) in witnesses {
        if head.seq < first_seq {
            notes.push(format!(
                "{source} names seq {}, which retention has deleted: it cannot be checked",
                head.seq
            ));
        } else if let Some(fault) = check_head(&chain, dir, head, &source) {
            return faulty(fault, &chain);
        }
    }
    Ok(Verdict::Intact {
        records: chain.records,
        days: all.len(),
        archived: all.iter().filter(|d| d.live.is_none()).count(),
        end: (last_seq > 0).then(|| Head {
            seq: last_seq,
            hash: chain.last_hash.clone(),
        }),
        notes,
    })
}

/// Whether the log, checked as far as `chain`, holds `head` (named by
/// `source`).
fn check_head(chain: &Chain, dir: &Path, head: &Head, source: &str) -> Option<Fault> {
    let last_seq = chain.next_seq - 1;
    match chain.found.get(&head.seq).cloned().flatten() {
        None => {
            let (path, line) = chain
                .last_place
                .clone()
                .unwrap_or_else(|| (dir.to_path_buf(), 0));
            Some(Fault {
                path,
                line,
                seq: (last_seq > 0).then_some(last_seq),
                problem: format!(
                    "the log ends at seq {last_seq}, but {source} says seq {} was durable: records were cut from the end of the log",
                    head.seq
                ),
            })
        }
        Some(found) if found.hash != head.hash => Some(Fault {
            path: found.path,
            line: found.line,
            seq: Some(head.seq),
            problem: format!(
                "the record's hash is {}, but {source} says seq {} had hash {}: the record was replaced",
                found.hash, head.seq, head.hash
            ),
        }),
        Some(_) => None,
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

/// Where a record was found, and its hash.
#[derive(Debug, Clone)]
struct Found {
    path: PathBuf,
    line: u64,
    hash: String,
}

/// The chain as checked so far.
#[derive(Debug)]
struct Chain {
    next_seq: u64,
    last_hash: String,
    records: u64,
    /// Where the last record was.
    last_place: Option<(PathBuf, u64)>,
    /// A line without its newline: fine only as the very last line.
    fragment: Option<Fault>,
    /// The records witnesses name, by seq, once found.
    found: BTreeMap<u64, Option<Found>>,
}

impl Default for Chain {
    fn default() -> Self {
        Self {
            next_seq: 1,
            last_hash: GENESIS_HASH.to_string(),
            records: 0,
            last_place: None,
            fragment: None,
            found: BTreeMap::new(),
        }
    }
}

/// A line checked on its own: its record, or what is wrong with it, and
/// its seq as far as it can be read.
struct Parsed {
    record: Result<Record, String>,
    seq: Option<u64>,
    whole: bool,
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
            seq: scan::leading_seq(bytes),
            whole,
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

/// Follows the chain through a block's lines, in order. A line without
/// its newline is kept aside: it is a fault unless it turns out to be the
/// log's last line, still being written.
fn check_block(chain: &mut Chain, place: Place<'_>, lines: &mut [Parsed]) -> Result<(), Stop> {
    let name = days::day_name(place.day.date);
    let path = place.day.path();
    for (number, parsed) in (place.lines_before + 1..).zip(lines.iter_mut()) {
        if let Some(fragment) = chain.fragment.take() {
            return Err(Stop::Fault(fragment));
        }
        let record = std::mem::replace(&mut parsed.record, Err(String::new()));
        let fault = |problem| Fault {
            path: path.to_path_buf(),
            line: number,
            seq: parsed.seq,
            problem,
        };
        if !parsed.whole {
            chain.fragment = Some(fault(record.err().unwrap_or_default()));
            continue;
        }
        let record = record
            .and_then(|record| check_link(chain, &name, number, record))
            .map_err(|problem| Stop::Fault(fault(problem)))?;
        if let Some(slot) = chain.found.get_mut(&record.seq) {
            *slot = Some(Found {
                path: path.to_path_buf(),
                line: number,
                hash: record.hash.clone(),
            });
        }
        chain.next_seq = record.seq + 1;
        chain.last_hash = record.hash;
        chain.records += 1;
        chain.last_place = Some((path.to_path_buf(), number));
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

/// One line per file in `DIR/quarantine/`: torn writes moved aside at a
/// start (never acknowledged), listed so nothing there goes unseen.
fn quarantined(dir: &Path) -> anyhow::Result<Vec<String>> {
    let folder = dir.join(QUARANTINE_DIR);
    let entries = match std::fs::read_dir(&folder) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        entries => entries.with_context(|| format!("listing {}", folder.display()))?,
    };
    let mut found = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("listing {}", folder.display()))?
            .path();
        let metadata =
            std::fs::metadata(&path).with_context(|| format!("reading {}", path.display()))?;
        let modified = metadata
            .modified()
            .map(|at| format_timestamp(OffsetDateTime::from(at)))
            .unwrap_or_else(|_| "at an unknown time".to_string());
        found.push((modified, path, metadata.len()));
    }
    found.sort();
    Ok(found
        .into_iter()
        .map(|(modified, path, bytes)| {
            format!(
                "quarantine: {}, {bytes} bytes, modified {modified} (a torn write moved aside at a start; never acknowledged)",
                path.display()
            )
        })
        .collect())
}
