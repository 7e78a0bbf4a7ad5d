//! `rollcall verify`: shows the log is whole (see [`crate::log::verify`]
//! for what is checked). Prints each fault as `FAULT: FILE line N, seq S:
//! PROBLEM`, or with `--json` one JSON object per line. Exit 0 intact, 1
//! at any fault (naming file, line and seq), 2 when it cannot run. A
//! gap whose backfill from `/events` is pending is a note on completeness,
//! not a fault: it does not change the exit status.
//!
//! With `--dir` more than once, each receiver's log is checked on its own
//! and reported under a heading of its own (with `--json`, each line
//! names its receiver), then the logs against each other
//! ([`verify::cross`]): a delivery one receiver recorded while another
//! was receiving and the other lacks is a fault too.

use std::path::Path;
use std::process::ExitCode;
use std::str::FromStr;

use anyhow::Context;

use crate::cli::Global;
use crate::log::days;
use crate::log::head::Head;
use crate::log::verify::cross::{self, CrossCheck};
use crate::log::verify::{self, Heads, Report};
use crate::offsite;
use crate::receiver::{Name, Receivers};
use crate::reconcile::pending;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "An unfilled gap (a coverage gap whose exact backfill from Webex's /events has failed so far, retried by the next reconcile) is printed as a note: it says the log may be incomplete there, not that anything was tampered with, and does not change the exit status."
)]
pub struct Args {
    /// Also check that the log holds this record: a head an earlier
    /// `verify` printed after "head:", kept off this machine. With several
    /// --dir, NAME=SEQ:HASH names the receiver (repeatable).
    #[arg(long, value_name = "[NAME=]SEQ:HASH", env = "ROLLCALL_EXPECT_HEAD")]
    pub expect_head: Vec<ExpectHead>,

    /// Also check the log against the S3 bucket (--s3-url): the oldest
    /// version of every object (a key written twice is a fault), archives
    /// and digests byte for byte, retired archives against their digests,
    /// Object Lock as --s3-lock-days says, and every head checkpoint.
    /// Unlike the other read commands, verify takes no s3://BUCKET/PREFIX
    /// after --remote: a receiver known only by the bucket is verified in
    /// its mirror, `rollcall verify --dir DIR/remote/BUCKET/PREFIX/NAME`,
    /// once a read with --remote s3://BUCKET/PREFIX made it (or in a
    /// directory `rollcall restore` made).
    #[arg(long, env = "ROLLCALL_REMOTE")]
    pub remote: bool,

    #[command(flatten)]
    pub s3: super::args::S3Args,

    /// One JSON object per line: each fault, quarantined file and note
    /// (`"kind"` says which), then a summary, for scripts and monitoring.
    #[arg(long)]
    pub json: bool,
}

/// A head a log must hold, and whose log it is when several are checked.
#[derive(Debug, Clone)]
pub struct ExpectHead {
    pub receiver: Option<Name>,
    pub head: Head,
}

impl FromStr for ExpectHead {
    type Err = String;

    /// `SEQ:HASH`, or `NAME=SEQ:HASH`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.split_once('=') {
            Some((name, head)) => Ok(ExpectHead {
                receiver: Some(name.trim().parse().map_err(|e| format!("{e}"))?),
                head: head.parse()?,
            }),
            None => Ok(ExpectHead {
                receiver: None,
                head: text.parse()?,
            }),
        }
    }
}

pub fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let receivers = Receivers::of_dirs(&global.dirs)?;
    for receiver in receivers.all() {
        days::ensure_log_dir(&receiver.dir)?;
    }
    if receivers.single().is_none() {
        anyhow::ensure!(
            !args.remote,
            "--remote checks one receiver's log against its bucket: give that receiver's --dir alone"
        );
        return run_several(&receivers, &args);
    }
    let dir = &receivers.all()[0].dir;
    let expected = match args.expect_head.as_slice() {
        [] => None,
        [one]
            if one
                .receiver
                .as_ref()
                .is_none_or(|n| *n == receivers.all()[0].name) =>
        {
            Some(one.head.clone())
        }
        _ => anyhow::bail!(
            "--expect-head names one head of this log ({}): SEQ:HASH",
            receivers.all()[0].name
        ),
    };
    let report = check(dir, expected)?;
    if args.json {
        print_json(&report, None)?;
    } else {
        print_text(&report);
    }
    print_unfilled(
        &pending::read(dir).with_context(|| verifying(dir))?,
        args.json,
        None,
    );
    let remote_intact = if args.remote {
        let store = args.s3.required("verify --remote")?;
        let remote = super::runtime()?
            .block_on(offsite::remote::verify_remote(dir, &store))
            .context("verifying against the S3 bucket")?;
        print_remote(&remote, args.json)?;
        remote.faults.is_empty()
    } else {
        true
    };
    Ok(if report.intact() && remote_intact {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn verifying(dir: &Path) -> String {
    format!("verifying {}", dir.display())
}

/// Checks the log in `dir` against its durable head and `expected`.
fn check(dir: &Path, expected: Option<Head>) -> anyhow::Result<Report> {
    let heads = Heads {
        durable: Head::read(dir).with_context(|| verifying(dir))?,
        expected,
    };
    verify::verify(dir, &heads).with_context(|| verifying(dir))
}

/// Each receiver's log on its own, then the logs against each other;
/// exit 1 at any fault of either kind, once everything has been checked.
fn run_several(receivers: &Receivers, args: &Args) -> anyhow::Result<ExitCode> {
    for expected in &args.expect_head {
        let Some(name) = &expected.receiver else {
            anyhow::bail!(
                "with several --dir, --expect-head says whose head it is: NAME=SEQ:HASH, NAME one of {}",
                receivers.names().join(", ")
            );
        };
        anyhow::ensure!(
            receivers.all().iter().any(|r| r.name == *name),
            "--expect-head names receiver {name:?}, which is none of {}",
            receivers.names().join(", ")
        );
        anyhow::ensure!(
            args.expect_head
                .iter()
                .filter(|e| e.receiver.as_ref() == Some(name))
                .count()
                == 1,
            "--expect-head names receiver {name:?} more than once"
        );
    }
    let mut reports = Vec::with_capacity(receivers.len());
    let mut intact = true;
    for receiver in receivers.all() {
        let expected = args
            .expect_head
            .iter()
            .find(|e| e.receiver.as_ref() == Some(&receiver.name))
            .map(|e| e.head.clone());
        let report = check(&receiver.dir, expected)?;
        let name = receiver.name.as_str();
        if args.json {
            print_json(&report, Some(name))?;
        } else {
            println!("receiver {name} ({}):", receiver.dir.display());
            print_text(&report);
        }
        let unfilled = pending::read(&receiver.dir).with_context(|| verifying(&receiver.dir))?;
        print_unfilled(&unfilled, args.json, Some(name));
        intact &= report.intact();
        reports.push(report);
    }
    let logs: Vec<cross::Log<'_>> = receivers
        .all()
        .iter()
        .zip(&reports)
        .map(|(receiver, report)| cross::Log {
            name: receiver.name.as_str(),
            dir: &receiver.dir,
            receiving: &report.receiving,
        })
        .collect();
    let crossed = cross::check(&logs).context("cross-checking the receivers' logs")?;
    print_cross(&crossed, &receivers.names(), args.json)?;
    intact &= crossed.findings.is_empty();
    Ok(if intact {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The cross-check's findings, then a line that sums it up.
fn print_cross(crossed: &CrossCheck, names: &[&str], json: bool) -> anyhow::Result<()> {
    if json {
        for finding in &crossed.findings {
            let entry = MissingEntry {
                kind: "missing",
                finding,
                problem: finding.to_string(),
            };
            println!("{}", serde_json::to_string(&entry)?);
        }
        let summary = CrossEntry {
            kind: "cross_check",
            verdict: if crossed.findings.is_empty() {
                "intact"
            } else {
                "faulty"
            },
            receivers: names,
            compared: crossed.compared,
            matched: crossed.matched,
            missing: names
                .iter()
                .copied()
                .zip(crossed.missing.iter().copied())
                .collect(),
        };
        println!("{}", serde_json::to_string(&summary)?);
        return Ok(());
    }
    for finding in &crossed.findings {
        println!("FAULT: {finding}");
    }
    let missing: Vec<String> = names
        .iter()
        .zip(&crossed.missing)
        .map(|(name, n)| format!("{name} {n}"))
        .collect();
    println!(
        "cross-check: {} deliveries compared between receivers that were up, {} on every one of them; missing: {}",
        crossed.compared,
        crossed.matched,
        missing.join(", ")
    );
    Ok(())
}

/// A cross-check finding as a JSON line.
#[derive(serde::Serialize)]
struct MissingEntry<'f> {
    kind: &'static str,
    #[serde(flatten)]
    finding: &'f cross::Finding,
    problem: String,
}

/// The cross-check's summary as a JSON line.
#[derive(serde::Serialize)]
struct CrossEntry<'n> {
    kind: &'static str,
    verdict: &'static str,
    receivers: &'n [&'n str],
    compared: u64,
    matched: u64,
    /// Per receiver, the deliveries it lacks.
    missing: std::collections::BTreeMap<&'n str, u64>,
}

fn print_remote(remote: &offsite::remote::RemoteReport, json: bool) -> anyhow::Result<()> {
    if json {
        for (kind, texts) in [
            ("remote_fault", &remote.faults),
            ("remote_note", &remote.notes),
        ] {
            for text in texts {
                println!("{}", serde_json::json!({ "kind": kind, "problem": text }));
            }
        }
        return Ok(());
    }
    for fault in &remote.faults {
        println!("FAULT: {fault}");
    }
    for note in &remote.notes {
        println!("note: {note}");
    }
    if remote.faults.is_empty() {
        println!(
            "bucket: {} archives and digests match their objects; the chain holds all {} checkpoints",
            remote.matched, remote.checkpoints
        );
    }
    Ok(())
}

/// The gaps still to be backfilled, one line each; as JSON, naming
/// `receiver` when there are several.
fn print_unfilled(gaps: &[pending::Gap], json: bool, receiver: Option<&str>) {
    for gap in gaps {
        if json {
            let entry = serde_json::json!({
                "kind": "unfilled_gap",
                "from": gap.from,
                "to": gap.to,
                "problem": gap.to_string(),
            });
            println!("{}", with_receiver(entry.to_string(), receiver));
        } else {
            println!("note: {gap}");
        }
    }
}

/// The report as JSON lines, each naming `receiver` when there are
/// several.
fn print_json(report: &Report, receiver: Option<&str>) -> anyhow::Result<()> {
    for entry in report.entries() {
        println!(
            "{}",
            with_receiver(serde_json::to_string(&entry)?, receiver)
        );
    }
    Ok(())
}

/// A JSON object's text with `"receiver":NAME` as its first member.
fn with_receiver(object: String, receiver: Option<&str>) -> String {
    match (receiver, object.strip_prefix('{')) {
        (Some(name), Some(rest)) => {
            let name = serde_json::Value::from(name);
            let comma = if rest.starts_with('}') { "" } else { "," };
            format!("{{\"receiver\":{name}{comma}{rest}")
        }
        _ => object,
    }
}

fn print_text(report: &Report) {
    for fault in &report.archive_faults {
        println!("FAULT: {fault}");
    }
    for held in &report.quarantine {
        println!("quarantine: {held}");
    }
    for fault in &report.kept_heads {
        println!("FAULT: {fault}");
    }
    if let Some(fault) = &report.access_fault {
        println!("FAULT: {fault}");
    }
    if let Some(fault) = &report.chain_fault {
        println!("FAULT: {fault}");
        println!(
            "({} records before it check out; nothing after it was checked)",
            report.records
        );
        return;
    }
    if !report.intact() {
        return;
    }
    println!(
        "{} records in {} days, chain intact",
        report.records, report.days
    );
    let counts = &report.counts;
    println!(
        "receiver: {} starts ({} after a crash), {} clean stops",
        counts.receiver_starts, counts.starts_after_crash, counts.clean_stops
    );
    let sources: Vec<String> = counts
        .records_by_source
        .iter()
        .map(|(source, n)| format!("{n} {source}"))
        .collect();
    println!("records by source: {}", sources.join(", "));
    if report.archived > 0 {
        println!(
            "{} archived days match their digests and the digest chain",
            report.archived
        );
    }
    if report.access_lines > 0 {
        println!(
            "console access log: {} lines, chain intact",
            report.access_lines
        );
    }
    for note in &report.notes {
        println!("note: {note}");
    }
    if let Some(head) = &report.head {
        println!("head: {head}");
    }
}
