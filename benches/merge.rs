//! The merge's cost: `export` of two receivers' logs of 1,000,000 records
//! each (one stream of events, nine in ten delivered to both, the tenth
//! to one only, the two copies up to a second apart) read as one record,
//! against `export` of one of those logs alone, in the same run, with
//! peak RSS from `/usr/bin/time -v`. The two are run in turn, the order
//! swapped each round, and the medians given with their ratio: the
//! machine is shared and noisy. Measured, not asserted (beyond the merged
//! export having each event once):
//!
//! `cargo bench --bench merge` (`ROLLCALL_BENCH_RECORDS` for another size,
//! `ROLLCALL_BENCH_ROUNDS` for other than 5 rounds, `ROLLCALL_BENCH_DIR`
//! to keep the generated logs).

mod support;

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use time::macros::date;

const BIN: &str = env!("CARGO_BIN_EXE_rollcall");

fn main() {
    let records = support::records();
    let rounds: usize = std::env::var("ROLLCALL_BENCH_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5);
    let temp = tempfile::tempdir().expect("creating a temp dir");
    let root = support::log_dir(&temp);
    let (a, b) = (root.join("a"), root.join("b"));
    let started = Instant::now();
    let events = support::generate_receivers(&a, &b, records, date!(2026 - 11 - 01));
    eprintln!(
        "generated two logs of {records} records ({events} events) in {:.1?}",
        started.elapsed()
    );
    let merged_lines = count_lines(
        Command::new(BIN)
            .args(dirs(&[&a, &b]))
            .args(["export", "--format", "jsonl"]),
    );
    assert_eq!(
        merged_lines, events,
        "the merged export has each event once"
    );

    println!(
        "| {records} records a log, medians of {rounds} | time | records/s | peak RSS |\n|---|---|---|---|"
    );
    for format in ["csv", "jsonl"] {
        let export = ["export", "--format", format];
        let command = |logs: &[&Path]| {
            let mut args = dirs(logs);
            args.extend(export.map(std::ffi::OsString::from));
            args
        };
        let (single, merged) = (command(&[&a]), command(&[&a, &b]));
        let (mut one, mut two) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            if round % 2 == 0 {
                one.push(timed(&single));
                two.push(timed(&merged));
            } else {
                two.push(timed(&merged));
                one.push(timed(&single));
            }
        }
        let (one_time, one_rss) = medians(&mut one);
        let (two_time, two_rss) = medians(&mut two);
        row(
            &format!("export --format {format}, one log"),
            records,
            one_time,
            one_rss,
        );
        row(
            &format!("export --format {format}, two logs merged"),
            2 * records,
            two_time,
            two_rss,
        );
        println!(
            "| merged / one log ({format}) | {:.2}x | | {:.2}x |",
            two_time.as_secs_f64() / one_time.as_secs_f64(),
            two_rss as f64 / one_rss as f64
        );
    }
}

/// `--dir D` for each of `dirs`.
fn dirs(dirs: &[&Path]) -> Vec<std::ffi::OsString> {
    dirs.iter()
        .flat_map(|d| ["--dir".into(), d.as_os_str().to_os_string()])
        .collect()
}

/// Runs `rollcall ARGS` under `/usr/bin/time -v` with stdout discarded:
/// its wall time and peak RSS in kB.
fn timed(args: &[std::ffi::OsString]) -> (Duration, u64) {
    let started = Instant::now();
    let output = Command::new("/usr/bin/time")
        .arg("-v")
        .arg(BIN)
        .args(args)
        .stdout(Stdio::from(File::create("/dev/null").unwrap()))
        .stderr(Stdio::piped())
        .output()
        .expect("running /usr/bin/time");
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{args:?} failed:\n{stderr}");
    let rss = stderr
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .and_then(|kb| kb.parse().ok())
        .unwrap_or(0);
    (took, rss)
}

fn medians(runs: &mut [(Duration, u64)]) -> (Duration, u64) {
    let mut times: Vec<Duration> = runs.iter().map(|r| r.0).collect();
    let mut rss: Vec<u64> = runs.iter().map(|r| r.1).collect();
    times.sort();
    rss.sort();
    (times[times.len() / 2], rss[rss.len() / 2])
}

fn row(name: &str, records: u64, took: Duration, rss_kb: u64) {
    println!(
        "| {name} | {:.2} s | {:.0} | {rss_kb} kB |",
        took.as_secs_f64(),
        records as f64 / took.as_secs_f64()
    );
}

/// The lines `command` writes to stdout.
fn count_lines(command: &mut Command) -> u64 {
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .expect("running rollcall");
    let lines = BufReader::new(child.stdout.take().unwrap())
        .split(b'\n')
        .count() as u64;
    assert!(child.wait().unwrap().success());
    lines
}
