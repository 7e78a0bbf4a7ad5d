//! `rollcall verify`: shows the log is whole (see [`crate::log::verify`]
//! for what is checked). Prints each fault as `FAULT: FILE line N, seq S:
//! PROBLEM`, or with `--json` one JSON object per line. Exit 0 intact, 1
//! at any fault (naming file, line and seq), 2 when it cannot run. A
//! gap whose backfill from `/events` is pending is a note on completeness,
//! not a fault: it does not change the exit status.

use std::process::ExitCode;

use anyhow::Context;

use crate::cli::Global;
use crate::log::days;
use crate::log::head::Head;
use crate::log::verify::{self, Heads, Report};
use crate::offsite;
use crate::reconcile::pending;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "An unfilled gap (a coverage gap whose exact backfill from Webex's /events has failed so far, retried by the next reconcile) is printed as a note: it says the log may be incomplete there, not that anything was tampered with, and does not change the exit status."
)]
pub struct Args {
    /// Also check that the log holds this record: a head an earlier
    /// `verify` printed after "head:", kept off this machine.
    #[arg(long, value_name = "SEQ:HASH", env = "ROLLCALL_EXPECT_HEAD")]
    pub expect_head: Option<Head>,

    /// Also check the log against the S3 bucket (--s3-url): the oldest
    /// version of every object (a key written twice is a fault), archives
    /// and digests byte for byte, retired archives against their digests,
    /// Object Lock as --s3-lock-days says, and every head checkpoint.
    #[arg(long, env = "ROLLCALL_REMOTE")]
    pub remote: bool,

    #[command(flatten)]
    pub s3: super::args::S3Args,

    /// One JSON object per line: each fault, quarantined file and note
    /// (`"kind"` says which), then a summary, for scripts and monitoring.
    #[arg(long)]
    pub json: bool,
}

pub fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let dir = global.dir()?;
    days::ensure_log_dir(dir)?;
    let verifying = || format!("verifying {}", dir.display());
    let heads = Heads {
        durable: Head::read(dir).with_context(verifying)?,
        expected: args.expect_head,
    };
    let report = verify::verify(dir, &heads).with_context(verifying)?;
    if args.json {
        print_json(&report)?;
    } else {
        print_text(&report);
    }
    print_unfilled(&pending::read(dir).with_context(verifying)?, args.json);
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

/// The gaps still to be backfilled, one line each.
fn print_unfilled(gaps: &[pending::Gap], json: bool) {
    for gap in gaps {
        if json {
            let entry = serde_json::json!({
                "kind": "unfilled_gap",
                "from": gap.from,
                "to": gap.to,
                "problem": gap.to_string(),
            });
            println!("{entry}");
        } else {
            println!("note: {gap}");
        }
    }
}

fn print_json(report: &Report) -> anyhow::Result<()> {
    for entry in report.entries() {
        println!("{}", serde_json::to_string(&entry)?);
    }
    Ok(())
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
