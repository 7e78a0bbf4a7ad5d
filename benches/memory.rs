//! Memory benchmark: measured, never asserted. Run with
//! `cargo bench --bench memory` (or `benches/run.sh`).
//!
//! For each size N (100,000 and 1,000,000; `ROLLCALL_BENCH_MEMBERSHIPS`
//! takes others, comma-separated) it writes a log of N joins, each of a
//! membership of its own, inside the 7-day dedup window (N dedup keys and
//! N memberships), indexes it, and starts the real `rollcall serve` on
//! it: the time to its first 200, to the 200 of a role change (answered
//! only once every membership's state is read: the state fully loaded),
//! then 20,000 more deliveries at 64 connections, each a membership and a
//! key more. It reports serve's peak RSS (VmHWM) and its RSS then
//! (VmRSS), beside the baseline binary's (`ROLLCALL_BENCH_BASELINE`) on
//! the same log in the same run, and their ratio.
//!
//! `ROLLCALL_BENCH_KEEP=1` keeps the generated logs (under
//! `target/tmp/bench-memory`). `ROLLCALL_BENCH_STARTUP_RECORDS` (e.g. 10000000) adds a start on a log
//! of that many records over 70 days, 1,000,000 memberships joining and
//! leaving in turn (so its last 7 days hold about 1,000,000 dedup keys),
//! not indexed beforehand.

mod support;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{Connection, Requests, Server, request, role_change_request};

const SIZES: [u64; 2] = [100_000, 1_000_000];
const LIVE: usize = 20_000;
const CONNECTIONS: usize = 64;

/// What one start of one binary measured.
struct Start {
    /// `baseline` or `this`.
    build: &'static str,
    /// The baseline's peak RSS on the same log, to compare with.
    baseline_peak_kib: Option<u64>,
    first: Duration,
    /// `None` for a build that logs no role changes (before they were
    /// recorded): it answers the role change without its state.
    loaded: Option<Duration>,
    peak_kib: u64,
    rss_kib: u64,
}

fn main() -> anyhow::Result<()> {
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-memory");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let sizes: Vec<u64> = std::env::var("ROLLCALL_BENCH_MEMBERSHIPS")
        .ok()
        .map(|list| {
            list.split(',')
                .filter_map(|n| n.trim().parse().ok())
                .collect()
        })
        .unwrap_or_else(|| SIZES.to_vec());
    let this = Path::new(env!("CARGO_BIN_EXE_rollcall"));
    let mut table = String::from(
        "| log | build | first 200 | state loaded | peak RSS | RSS after | peak / baseline |\n|---|---|---|---|---|---|---|\n",
    );
    let mut runs = 0;
    let row = |table: &mut String, label: &str, start: &Start| {
        let mib = |kib: u64| format!("{:.1} MiB", kib as f64 / 1024.0);
        let build = start.build;
        let ratio = start.baseline_peak_kib.map_or(String::new(), |b| {
            format!("{:.2}", start.peak_kib as f64 / b as f64)
        });
        let loaded = start
            .loaded
            .map_or("(no role changes)".to_string(), |loaded| {
                format!("{:.2} s", loaded.as_secs_f64())
            });
        let line = format!(
            "| {label} | {build} | {:.2} s | {loaded} | {} | {} | {ratio} |",
            start.first.as_secs_f64(),
            mib(start.peak_kib),
            mib(start.rss_kib),
        );
        eprintln!("{line}");
        table.push_str(&line);
        table.push('\n');
    };
    for &n in &sizes {
        let dir = work.join(format!("joins-{n}"));
        eprintln!("writing {n} joins of as many memberships, and indexing them ...");
        support::generate_joins(&dir, n, n, 7);
        index(this, &dir)?;
        settle_disk()?;
        let label = format!("{n} memberships and dedup keys");
        for start in both(&runtime, &dir, &mut runs, true)? {
            row(&mut table, &label, &start);
        }
        if std::env::var_os("ROLLCALL_BENCH_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    if let Some(records) = std::env::var("ROLLCALL_BENCH_STARTUP_RECORDS")
        .ok()
        .and_then(|n| n.parse::<u64>().ok())
    {
        let dir = work.join("startup");
        eprintln!("writing {records} records over 70 days ...");
        support::generate_joins(&dir, records, 1_000_000.min(records), 70);
        settle_disk()?;
        // Not indexed first (a build of this size takes longer than the
        // rest of the bench): each serve builds the index meanwhile, at the
        // lowest CPU priority, and its RSS includes that build's so far.
        let label = format!("start on {records} records, 1,000,000 memberships, index building");
        for start in both(&runtime, &dir, &mut runs, false)? {
            row(&mut table, &label, &start);
        }
    }
    println!("{table}");
    let out = work.join("memory.md");
    std::fs::write(&out, &table)?;
    eprintln!("table written to {}", out.display());
    Ok(())
}

/// The baseline's start on `dir` (if one is given), then this build's,
/// each with the baseline's peak RSS to compare with (`None` for the
/// baseline itself).
fn both(
    runtime: &tokio::runtime::Runtime,
    dir: &Path,
    runs: &mut usize,
    live: bool,
) -> anyhow::Result<Vec<Start>> {
    let mut starts = Vec::new();
    let mut baseline_peak = None;
    let this = Path::new(env!("CARGO_BIN_EXE_rollcall"));
    if let Some(bin) = support::baseline_bin() {
        eprintln!("  the baseline {} ...", bin.display());
        *runs += 1;
        let start = runtime.block_on(start(&bin, dir, *runs, live))?;
        baseline_peak = Some(start.peak_kib);
        starts.push(Start {
            build: "baseline",
            ..start
        });
    }
    eprintln!("  this build ...");
    *runs += 1;
    if live {
        // The index as the last serve would have left it: caught up with
        // the deliveries the baseline's run added (a catch-up of 20,000
        // records at start held 30 MiB of its fold at the peak).
        index(this, dir)?;
    }
    let start = runtime.block_on(start(this, dir, *runs, live))?;
    starts.push(Start {
        baseline_peak_kib: baseline_peak,
        ..start
    });
    Ok(starts)
}

/// Writes back what the generated log left dirty, so no start waits on
/// its fdatasync behind gigabytes of someone else's writeback.
fn settle_disk() -> anyhow::Result<()> {
    anyhow::ensure!(Command::new("sync").status()?.success(), "sync failed");
    Ok(())
}

/// Builds `dir`'s index with `bin`, so a start measures serve, not a
/// first build of its index.
fn index(bin: &Path, dir: &Path) -> anyhow::Result<()> {
    let status = Command::new(bin)
        .args(["index", "--dir"])
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .status()?;
    anyhow::ensure!(status.success(), "rollcall index failed: {status}");
    Ok(())
}

/// Starts `bin serve` on `dir` (the `run`th start on it, so each sends
/// deliveries of its own), times its first 200 and the 200 of a role
/// change, then sends [`LIVE`] new deliveries when `live`, and reads its
/// memory.
async fn start(bin: &Path, dir: &Path, run: usize, live: bool) -> anyhow::Result<Start> {
    let started = Instant::now();
    let serve = Server::start(&mut support::serve_command(bin, dir))?;
    let mut connection = Connection::open(serve.address).await?;
    connection
        .record(&request(&format!("first-{run}"), 0))
        .await?;
    let first = started.elapsed();
    // Membership 2 * run of the log joined as a moderator: revoking it is
    // new to the log on every run.
    let answer = connection
        .send(&role_change_request("log", 2 * run))
        .await?;
    let body = String::from_utf8_lossy(answer.body);
    anyhow::ensure!(answer.status == 200, "answer {}: {body}", answer.status);
    let loaded = (!body.contains("\"ignored\"")).then(|| started.elapsed());
    if live {
        let requests = Arc::new(Requests::deal(&format!("live-{run}"), LIVE, CONNECTIONS));
        let senders: Vec<_> = (0..CONNECTIONS)
            .map(|hand| {
                let (requests, address) = (requests.clone(), serve.address);
                tokio::spawn(async move {
                    let mut connection = Connection::open(address).await?;
                    for request in requests[hand].iter() {
                        connection.record(request).await?;
                    }
                    Ok::<_, anyhow::Error>(())
                })
            })
            .collect();
        for sender in senders {
            sender.await??;
        }
    }
    let peak_kib = serve.peak_rss_kib();
    let rss_kib = serve.rss_kib();
    Ok(Start {
        build: "this",
        baseline_peak_kib: None,
        first,
        loaded,
        peak_kib,
        rss_kib,
    })
}
