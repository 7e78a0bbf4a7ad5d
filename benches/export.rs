//! Export throughput on a generated log of 1,000,000 records shaped as
//! the read side's targets were set (`support::generate_turns`: 1,000
//! rooms of 50 members joining and leaving in turn, records made from
//! Webex-shaped deliveries, about 990 bytes each; each
//! command run `ROLLCALL_BENCH_ROUNDS` times, 3 by default, the median
//! reported; jq and archival only up to 2,000,000 records), beside
//! `jq -r '[...] | @csv'` on the same files, with peak RSS from
//! `/usr/bin/time -v`, and `verify` beside SHA-256 alone of the same
//! bytes (`openssl dgst -sha256`), then `rollcall archive` of the same log beside
//! `gzip -6` of the same files. Measured, not asserted:
//!
//! `cargo bench --bench export` (set `ROLLCALL_BENCH_RECORDS` for another
//! size, `ROLLCALL_BENCH_DIR` to keep the generated log).

mod support;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use time::macros::date;

const BIN: &str = env!("CARGO_BIN_EXE_rollcall");

fn main() {
    let records = support::records();
    let temp = tempfile::tempdir().expect("creating a temp dir");
    let dir = support::log_dir(&temp);
    let started = Instant::now();
    let files = support::generate_turns(&dir, records, date!(2026 - 11 - 01));
    let bytes: u64 = files.iter().map(|f| f.metadata().unwrap().len()).sum();
    eprintln!(
        "generated {records} records in {} day files ({} MB) in {:.1?}",
        files.len(),
        bytes / 1_000_000,
        started.elapsed()
    );

    let timed = |bin: &Path, args: &[&str]| {
        let mut command = Command::new("/usr/bin/time");
        command.arg("-v").arg(bin).arg("--dir").arg(&dir).args(args);
        command
    };
    let rollcall = |args: &[&str]| timed(Path::new(BIN), args);
    println!("| {records} records | time | records/s | peak RSS |\n|---|---|---|---|");
    let csv = report("rollcall export (csv)", records, &mut rollcall(&["export"]));
    report(
        "rollcall export --format jsonl",
        records,
        &mut rollcall(&["export", "--format", "jsonl"]),
    );
    report(
        "rollcall export --person (1 match in 10)",
        records,
        &mut rollcall(&["export", "--person", "person7@example.com"]),
    );
    // jq and archival take minutes a million records: beside the
    // largest logs they would be most of the run, and their rate does
    // not change with the size.
    let small = records <= SMALL;
    let jq = small.then(|| {
        let mut jq = Command::new("/usr/bin/time");
        jq.args(["-v", "jq", "-r"]).arg(JQ_CSV).args(&files);
        report_once("jq -r '[...] \\| @csv'", records, &mut jq)
    });
    report("rollcall verify", records, &mut rollcall(&["verify"]));
    // The bound verify works against: SHA-256 of the same bytes alone, on
    // one core and on two (OpenSSL's, with the CPU's SHA instructions, a
    // day file each; coreutils' sha256sum here runs at a tenth of it).
    let mut one_core = Command::new("/usr/bin/time");
    one_core
        .args(["-v", "openssl", "dgst", "-sha256"])
        .args(&files);
    report(
        "openssl dgst -sha256 of the same files, one core",
        records,
        &mut one_core,
    );
    let mut two_cores = Command::new("/usr/bin/time");
    two_cores
        .args([
            "-v",
            "sh",
            "-c",
            "printf '%s\\0' \"$@\" | xargs -0 -n 1 -P 2 openssl dgst -sha256",
            "sh",
        ])
        .args(&files);
    report(
        "openssl dgst -sha256 of the same files, two at a time",
        records,
        &mut two_cores,
    );
    if let Some(bin) = support::baseline_bin() {
        let baseline = |args: &[&str]| timed(&bin, args);
        report("baseline export (csv)", records, &mut baseline(&["export"]));
        report(
            "baseline export --format jsonl",
            records,
            &mut baseline(&["export", "--format", "jsonl"]),
        );
        report("baseline verify", records, &mut baseline(&["verify"]));
    }
    match jq {
        Some(jq) => {
            println!(
                "| rollcall export / jq | {:.1}x | | |",
                jq.as_secs_f64() / csv.as_secs_f64()
            );
            archival(&dir, &files, bytes);
        }
        None => println!("| jq and archival | not run above {SMALL} records | | |"),
    }
}

/// The largest log jq and archival are measured on.
const SMALL: u64 = 2_000_000;

/// Runs of each rollcall command (`ROLLCALL_BENCH_ROUNDS`, else 3): the
/// median is reported, so one run slowed by the machine does not make
/// the figure.
fn rounds() -> usize {
    std::env::var("ROLLCALL_BENCH_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3)
        .max(1)
}

const JQ_CSV: &str = "[.seq, .received_at, .event, .room_id, .room_title, .person_id, \
    .person_email, .person_display_name, .is_moderator, .is_monitor, .membership_id, \
    .membership_created, .actor_id, .org_id, .webhook_id, .webhook_name, .target, .source, \
    .not_before] | @csv";

/// Runs `command` (a `/usr/bin/time -v` wrapper) [`rounds`] times with
/// stdout discarded, prints the median time's rate and the largest peak
/// RSS as a table row, and returns the median time.
fn report(name: &str, records: u64, command: &mut Command) -> Duration {
    let mut runs: Vec<(Duration, u64)> = (0..rounds()).map(|_| run(name, command)).collect();
    let rss_kb = runs.iter().map(|&(_, rss)| rss).max().unwrap_or(0);
    runs.sort();
    let took = runs[runs.len() / 2].0;
    row(name, records, took, rss_kb);
    took
}

/// [`report`] of a single run, for a command too slow to repeat.
fn report_once(name: &str, records: u64, command: &mut Command) -> Duration {
    let (took, rss_kb) = run(name, command);
    row(name, records, took, rss_kb);
    took
}

fn row(name: &str, records: u64, took: Duration, rss_kb: u64) {
    println!(
        "| {name} | {:.2} s | {:.0} | {rss_kb} kB |",
        secs(took),
        records as f64 / secs(took)
    );
}

/// One run of `command`: its time and peak RSS (kB).
fn run(name: &str, command: &mut Command) -> (Duration, u64) {
    let started = Instant::now();
    let output = command
        .stdout(Stdio::from(File::create("/dev/null").unwrap()))
        .stderr(Stdio::piped())
        .output()
        .unwrap_or_else(|e| panic!("running {name}: {e}"));
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{name} failed:\n{stderr}");
    let rss_kb = stderr
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .and_then(|kb| kb.parse().ok())
        .unwrap_or(0);
    (took, rss_kb)
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// `rollcall archive` over the same log (every day of it closed), beside
/// `gzip -6` over the same files: time, MB/s of uncompressed input, ratio.
fn archival(dir: &Path, files: &[PathBuf], bytes: u64) {
    let gzipped = dir.with_extension("gzip-6");
    let started = Instant::now();
    let status = Command::new("gzip")
        .args(["-6", "-c"])
        .args(files)
        .stdout(File::create(&gzipped).unwrap())
        .status()
        .expect("running gzip");
    assert!(status.success());
    let gzip = (started.elapsed(), gzipped.metadata().unwrap().len());
    let started = Instant::now();
    let status = Command::new(BIN)
        .arg("--dir")
        .arg(dir)
        .arg("archive")
        .stdout(Stdio::null())
        .status();
    assert!(status.expect("running rollcall archive").success());
    let took = started.elapsed();
    let archived: u64 = support::archived_bytes(dir);
    println!(
        "\n| archival of {} MB | time | MB/s in | ratio |\n|---|---|---|---|",
        bytes / 1_000_000
    );
    for (name, (took, out)) in [
        ("rollcall archive (verified, fsync'd)", (took, archived)),
        ("gzip -6", gzip),
    ] {
        println!(
            "| {name} | {:.2} s | {:.0} | {:.2}x |",
            secs(took),
            bytes as f64 / 1e6 / secs(took),
            bytes as f64 / out as f64
        );
    }
}
