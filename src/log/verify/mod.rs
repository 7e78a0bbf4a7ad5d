//! What `rollcall verify` checks: every record's own hash, the chain of
//! `prev_hash` links across days ([`Chain`]), `seq` running from 1 with no
//! gap or repeat, the end of the log against the durable head (`DIR/.head`,
//! and a head kept elsewhere), every archive against its digest, the
//! retention log, what lies in the quarantine, and each durable head a
//! start kept there because the log ended before it. The result is a
//! [`Report`]: its [`Entry`]s are what `verify --json` prints.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;
use time::OffsetDateTime;

use super::archive;
use super::chain::{self, Break, Chain};
use super::days;
use super::fault::{Fault, display_path};
use super::head::QUARANTINE_DIR;
use super::head::{self, Head, KeptHead};
use super::reader::{self, Place, ReadError};
use super::record::{Event, Source, format_timestamp};
use super::roster::coverage::{Coverage, Start};
use line::{Checked, Link};

pub mod cross;
mod line;

pub use cross::Receiving;

/// Records the log must hold, with these hashes.
#[derive(Debug, Clone, Default)]
pub struct Heads {
    /// `DIR/.head`: what the writer made durable.
    pub durable: Option<Head>,
    /// `--expect-head`: a head kept elsewhere.
    pub expected: Option<Head>,
}

/// Everything `verify` found.
#[derive(Debug)]
pub struct Report {
    /// Every fault in the archives, the digests and the retention log.
    pub archive_faults: Vec<Fault>,
    /// What lies in `DIR/quarantine/`.
    pub quarantine: Vec<Held>,
    /// Each durable head kept in the quarantine that the log does not
    /// hold (records were cut); one the log holds again is a note.
    pub kept_heads: Vec<Fault>,
    /// The first fault in the chain of records; what follows a broken link
    /// cannot be trusted to say anything more, so it is not checked.
    pub chain_fault: Option<Fault>,
    /// Records that check out (before the chain fault, if there is one).
    pub records: u64,
    pub days: usize,
    /// Days read from their archive.
    pub archived: usize,
    /// The last record, when the chain is whole: the head to keep
    /// elsewhere.
    pub head: Option<Head>,
    /// The first fault in the console's access log (`DIR/access/`).
    pub access_fault: Option<Fault>,
    /// Access lines that check out.
    pub access_lines: u64,
    /// Worth knowing, not faults (a batch still being written).
    pub notes: Vec<String>,
    /// The receiver's runs and where the records came from.
    pub counts: Counts,
    /// When the receiver was receiving, from the records that check out.
    pub receiving: Receiving,
}

/// The receiver's runs and where the records came from, over the records
/// that check out: worth knowing, never a fault.
#[derive(Debug, Clone, Serialize)]
pub struct Counts {
    pub receiver_starts: u64,
    pub clean_stops: u64,
    /// Starts with no clean stop since the previous start (or, for the
    /// first, after records written without the receiver's own records).
    pub starts_after_crash: u64,
    /// Records by `source`, every source listed.
    pub records_by_source: BTreeMap<&'static str, u64>,
}

impl Default for Counts {
    fn default() -> Self {
        Counts {
            receiver_starts: 0,
            clean_stops: 0,
            starts_after_crash: 0,
            records_by_source: Source::ALL.iter().map(|s| (s.as_str(), 0)).collect(),
        }
    }
}

impl Counts {
    /// Records that checked out, by [`Source::ALL`]'s order.
    fn add_sources(&mut self, by_source: &[u64; 3]) {
        for (source, n) in Source::ALL.iter().zip(by_source) {
            *self.records_by_source.entry(source.as_str()).or_default() += n;
        }
    }

    /// One of the receiver's own records (any other event counts nothing).
    fn add_event(&mut self, event: Event, start: Option<Start>) {
        match event {
            Event::ReceiverStarted => self.receiver_starts += 1,
            Event::ReceiverStopped => self.clean_stops += 1,
            _ => {}
        }
        if start == Some(Start::AfterCrash) {
            self.starts_after_crash += 1;
        }
    }
}

impl Report {
    /// Nothing is wrong.
    pub fn intact(&self) -> bool {
        self.chain_fault.is_none()
            && self.archive_faults.is_empty()
            && self.kept_heads.is_empty()
            && self.access_fault.is_none()
    }

    /// What the report says, one entry per fault, quarantined file and
    /// note, then the summary.
    pub fn entries(&self) -> Vec<Entry<'_>> {
        let mut out: Vec<Entry<'_>> = self.archive_faults.iter().map(Entry::Fault).collect();
        out.extend(self.quarantine.iter().map(Entry::Quarantine));
        out.extend(self.kept_heads.iter().map(Entry::Fault));
        out.extend(self.chain_fault.iter().map(Entry::Fault));
        out.extend(self.access_fault.iter().map(Entry::Fault));
        out.extend(self.notes.iter().map(|note| Entry::Note { note }));
        out.push(Entry::Summary(Summary {
            verdict: if self.intact() { "intact" } else { "faulty" },
            records: self.records,
            days: self.days,
            archived: self.archived,
            head: self.head.as_ref().filter(|_| self.intact()),
            counts: &self.counts,
        }));
        out
    }
}

/// One thing a report says, as a JSON object whose `kind` names it.
#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Entry<'r> {
    Fault(&'r Fault),
    Quarantine(&'r Held),
    Note { note: &'r str },
    Summary(Summary<'r>),
}

/// The verdict and what was checked.
#[derive(Debug, Serialize)]
pub struct Summary<'r> {
    /// `intact` or `faulty`.
    pub verdict: &'static str,
    pub records: u64,
    pub days: usize,
    pub archived: usize,
    /// Only for an intact log.
    pub head: Option<&'r Head>,
    #[serde(flatten)]
    pub counts: &'r Counts,
}

/// A file in `DIR/quarantine/`: a torn write moved aside at a start
/// (never acknowledged), listed so nothing there goes unseen.
#[derive(Debug, Clone, Serialize)]
pub struct Held {
    #[serde(serialize_with = "display_path")]
    pub file: PathBuf,
    pub bytes: u64,
    /// When it was last modified (RFC 3339), if known.
    pub modified: Option<String>,
}

impl fmt::Display for Held {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if KeptHead::is_named(&self.file) {
            "a durable head a start found the log ending before, kept as evidence of a cut"
        } else {
            "a torn write moved aside at a start; never acknowledged"
        };
        write!(
            f,
            "{}, {} bytes, modified {} ({what})",
            self.file.display(),
            self.bytes,
            self.modified.as_deref().unwrap_or("at an unknown time")
        )
    }
}

/// Checks everything in `dir`. `Err` only when the check cannot run.
pub fn verify(dir: &Path, heads: &Heads) -> anyhow::Result<Report> {
    let start = archive::retired_chain_end(dir)?;
    let kept = KeptHead::list(dir)?;
    let mut report = verify_chain(dir, start, heads, &kept)?;
    report.archive_faults = archive::check_archives(dir)?;
    report.quarantine = quarantined(dir)?;
    let access = super::access::check::check(dir)?;
    report.access_fault = access.fault;
    report.access_lines = access.lines;
    Ok(report)
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
/// Each of `kept` (the heads in the quarantine) is a fault unless the log,
/// as far as it checks out, holds it again.
fn verify_chain(
    dir: &Path,
    start: Option<(u64, String)>,
    heads: &Heads,
    kept: &[(PathBuf, KeptHead)],
) -> Result<Report, ReadError> {
    let all = reader::days(dir)?;
    let mut pass = Pass {
        chain: start.map_or_else(Chain::default, |(seq, hash)| Chain::after(seq, hash)),
        last_place: None,
        fragment: None,
        found: BTreeMap::new(),
        coverage: Coverage::default(),
        counts: Counts::default(),
        first_at: None,
        last_at: String::new(),
    };
    let first_seq = pass.chain.next_seq;
    let witnesses: Vec<(&Head, String)> = [
        (&heads.durable, head::path(dir).display().to_string()),
        (&heads.expected, "--expect-head".to_string()),
    ]
    .into_iter()
    .filter_map(|(head, source)| Some((head.as_ref()?, source)))
    .collect();
    pass.found = witnesses
        .iter()
        .map(|(head, _)| head.seq)
        .chain(kept.iter().map(|(_, head)| head.seq))
        .map(|seq| (seq, None))
        .collect();
    let names: Vec<String> = all.iter().map(|d| days::day_name(d.date)).collect();
    let wanted: BTreeSet<u64> = pass.found.keys().copied().collect();
    let checked = reader::in_log_order(
        &all,
        Checked::default,
        |block, checked| {
            line::check_block(block, &names[block.day()], &wanted, checked);
            checked.lines
        },
        |place, checked| check_block(&mut pass, place, checked),
    );
    let mut report = Report {
        archive_faults: Vec::new(),
        quarantine: Vec::new(),
        kept_heads: Vec::new(),
        chain_fault: None,
        access_fault: None,
        access_lines: 0,
        records: 0,
        days: all.len(),
        archived: all.iter().filter(|d| d.live.is_none()).count(),
        head: None,
        notes: Vec::new(),
        counts: Counts::default(),
        receiving: Receiving::default(),
    };
    let faulty = |fault, pass: &Pass, mut report: Report| {
        check_kept(pass, kept, &mut report);
        report.records = pass.chain.records;
        report.counts = pass.counts.clone();
        report.receiving = pass.receiving();
        report.chain_fault = Some(fault);
        Ok(report)
    };
    match checked {
        Ok(()) => {}
        Err(Stop::Fault(fault)) => return faulty(fault, &pass, report),
        // An archive whose bytes cannot be decoded (a damaged gzip) is a
        // fault in the log, not a reason verify cannot run.
        Err(Stop::Read(ReadError::Read { path, source }))
            if path.extension().is_some_and(|e| e == "gz")
                && source.kind() != std::io::ErrorKind::PermissionDenied =>
        {
            let fault = Fault::new(&path, format!("the file cannot be read back: {source}"));
            return faulty(fault, &pass, report);
        }
        Err(Stop::Read(e)) => return Err(e),
    }
    let last_seq = pass.chain.next_seq - 1;
    if let Some(fragment) = pass.fragment.take() {
        match heads.durable.as_ref().map(|head| head.seq) {
            Some(durable) if durable <= last_seq => report.notes.push(format!(
                "{} line {} has no newline yet and is past the durable head (seq {durable}): a batch still being written, not checked",
                fragment.file.display(),
                fragment.line.unwrap_or_default()
            )),
            _ => return faulty(fragment, &pass, report),
        }
    }
    for (head, source) in witnesses {
        if head.seq < first_seq {
            report.notes.push(format!(
                "{source} names seq {}, which retention has deleted: it cannot be checked",
                head.seq
            ));
        } else if let Some(fault) = check_head(&pass, dir, head, &source) {
            return faulty(fault, &pass, report);
        }
    }
    check_kept(&pass, kept, &mut report);
    report.records = pass.chain.records;
    report.counts = pass.counts.clone();
    report.receiving = pass.receiving();
    report.head = (last_seq > 0).then(|| Head {
        seq: last_seq,
        hash: pass.chain.last_hash.clone(),
    });
    Ok(report)
}

/// Whether the log, checked as far as `pass`, holds `head` (named by
/// `source`).
fn check_head(pass: &Pass, dir: &Path, head: &Head, source: &str) -> Option<Fault> {
    let last_seq = pass.chain.next_seq - 1;
    match pass.found.get(&head.seq).cloned().flatten() {
        None => {
            let problem = format!(
                "the log ends at seq {last_seq}, but {source} says seq {} was durable: records were cut from the end of the log",
                head.seq
            );
            Some(match &pass.last_place {
                Some((path, line)) => Fault {
                    seq: Some(last_seq),
                    ..Fault::new(path, problem).at_line(*line)
                },
                None => Fault::new(dir, problem),
            })
        }
        Some(found) if found.hash != head.hash => Some(Fault {
            seq: Some(head.seq),
            ..Fault::new(
                &found.path,
                format!(
                    "the record's hash is {}, but {source} says seq {} had hash {}: the record was replaced",
                    found.hash, head.seq, head.hash
                ),
            )
            .at_line(found.line)
        }),
        Some(_) => None,
    }
}

/// Reports each head of `kept` the log, checked as far as `pass`, does not
/// hold (a fault naming the file, the head and the cut seqs), or holds
/// again (a note).
fn check_kept(pass: &Pass, kept: &[(PathBuf, KeptHead)], report: &mut Report) {
    for (file, head) in kept {
        let found = pass.found.get(&head.seq).cloned().flatten();
        if found.as_ref().is_some_and(|found| found.hash == head.hash) {
            report.notes.push(format!(
                "{}: the durable head kept there (seq {}) is in the log again: the cut records were put back",
                file.display(),
                head.seq
            ));
            continue;
        }
        let cut = if head.seq > head.log_end_seq {
            chain::missing(head.log_end_seq + 1, head.seq)
        } else {
            format!("the record at seq {} had another hash", head.seq)
        };
        let now = match found {
            Some(found) => format!(
                "; the log now has another record at seq {} ({} line {}, hash {})",
                head.seq,
                found.path.display(),
                found.line,
                found.hash
            ),
            None => String::new(),
        };
        report.kept_heads.push(Fault {
            seq: Some(head.seq),
            ..Fault::new(
                file,
                format!(
                    "the durable head {} was kept here at a start on {}, when the log ended at seq {}: {cut} though \
                     they had been made durable: records were cut from the end of the log{now}",
                    head.head(),
                    head.kept_at,
                    head.log_end_seq
                ),
            )
        });
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

/// The pass over the log so far.
#[derive(Debug)]
struct Pass {
    chain: Chain,
    /// Where the last record was.
    last_place: Option<(PathBuf, u64)>,
    /// A line without its newline: fine only as the very last line.
    fragment: Option<Fault>,
    /// The records witnesses name, by seq, once found.
    found: BTreeMap<u64, Option<Found>>,
    coverage: Coverage,
    counts: Counts,
    first_at: Option<String>,
    last_at: String,
}

impl Pass {
    fn receiving(&self) -> Receiving {
        Receiving {
            first_at: self.first_at.clone(),
            last_at: self.first_at.as_ref().map(|_| self.last_at.clone()),
            gaps: self.coverage.gaps(),
            last_seq: self.chain.next_seq - 1,
        }
    }
}

/// Follows the chain through a block checked on its own: its first
/// record's link to the block before, then what its records say, in
/// order. A line without its newline is kept aside: it is a fault unless
/// it turns out to be the log's last line, still being written.
fn check_block(pass: &mut Pass, place: Place<'_>, checked: &mut Checked) -> Result<(), Stop> {
    if checked.lines == 0 {
        return Ok(());
    }
    if let Some(fragment) = pass.fragment.take() {
        return Err(Stop::Fault(fragment));
    }
    let path = place.day.path();
    let number = |index: u64| place.lines_before + 1 + index;
    let last = checked.last_index();
    if let Some(first) = checked.first.take() {
        let name = days::day_name(place.day.date);
        let seq = first.seq;
        let first = check_link(&pass.chain, &name, number(0), first).map_err(|problem| {
            Stop::Fault(Fault {
                seq: Some(seq),
                ..Fault::new(path, problem).at_line(number(0))
            })
        })?;
        pass.chain.take_checked(first.seq, first.hash);
        pass.chain.take_run(std::mem::take(&mut checked.run));
    }
    for mark in &checked.marks {
        let start = pass
            .coverage
            .see(mark.event, &mark.received_at, mark.not_before.as_deref());
        pass.counts.add_event(mark.event, start);
    }
    pass.counts.add_sources(&checked.by_source);
    for (index, seq, hash) in checked.found.drain(..) {
        pass.found.insert(
            seq,
            Some(Found {
                path: path.to_path_buf(),
                line: number(index),
                hash,
            }),
        );
    }
    if let Some(index) = last {
        pass.last_place = Some((path.to_path_buf(), number(index)));
        if pass.first_at.is_none() {
            pass.first_at = checked.marks.first().map(|mark| mark.received_at.clone());
        }
        std::mem::swap(&mut pass.last_at, &mut checked.last_at);
    }
    if let Some(bad) = checked.bad.take() {
        let fault = Fault {
            seq: bad.seq,
            ..Fault::new(path, bad.problem).at_line(number(bad.index))
        };
        if !bad.whole {
            pass.fragment = Some(fault);
        } else {
            return Err(Stop::Fault(fault));
        }
    }
    Ok(())
}

/// `record`, line `number` of the file for `day`, if it is the next link
/// of `chain`; otherwise what is wrong. A gap at a file's first line says
/// which days appear to be missing.
fn check_link(chain: &Chain, day: &str, number: u64, record: Link) -> Result<Link, String> {
    match chain.check(record.seq, &record.prev_hash) {
        Ok(()) => {}
        Err(Break::Missing { from: 1, to }) if number == 1 => {
            return Err(format!(
                "the log starts at seq {} instead of 1: {}; the first day(s) appear to be missing",
                record.seq,
                chain::missing(1, to)
            ));
        }
        Err(Break::Missing { from, to }) if number == 1 => {
            return Err(format!(
                "{} before this file: a day appears to be missing (or the end of the previous day file was cut off)",
                chain::missing(from, to)
            ));
        }
        Err(problem) => return Err(problem.to_string()),
    }
    if record.day() != day {
        return Err(line::wrong_day(&record.received_at, day));
    }
    Ok(record)
}

/// The files in `DIR/quarantine/`, oldest first.
fn quarantined(dir: &Path) -> anyhow::Result<Vec<Held>> {
    let folder = dir.join(QUARANTINE_DIR);
    let paths =
        super::files::entries(&folder).with_context(|| format!("listing {}", folder.display()))?;
    let mut found = Vec::new();
    for path in paths {
        let metadata =
            std::fs::metadata(&path).with_context(|| format!("reading {}", path.display()))?;
        let modified = metadata
            .modified()
            .ok()
            .map(|at| format_timestamp(OffsetDateTime::from(at)));
        found.push(Held {
            file: path,
            bytes: metadata.len(),
            modified,
        });
    }
    // Unknown times after known ones, as the text sorts.
    found.sort_by(|a, b| {
        let key = |h: &Held| {
            (
                h.modified.is_none(),
                h.modified.clone(),
                h.file.clone(),
                h.bytes,
            )
        };
        key(a).cmp(&key(b))
    });
    Ok(found)
}
