//! Reconcile's cost on a large org: RECONCILE_ROOMS rooms (default 1,000)
//! of RECONCILE_MEMBERS members (default 50) on the fake Webex API, with
//! the real `rollcall reconcile` under `/usr/bin/time -v`: the baseline on
//! an empty log, then a run that finds the log in agreement. Reports API
//! calls (from the summary line), the time those calls take at the
//! default 5 requests/s (the pacer's slots: the first is free, then one
//! every 200 ms), the unpaced wall time of the work itself, and peak RSS.
//! With RECONCILE_API_RATE=N the CLI runs paced at N requests/s instead,
//! and the wall time is the paced one. Run with `cargo bench --bench
//! reconcile`; measured, never asserted.

#[allow(dead_code)]
#[path = "../tests/support/fake_webex.rs"]
mod fake_webex;

use std::process::Command;
use std::time::Instant;

use fake_webex::{FakeWebex, TOKEN};

const DEFAULT_RATE: f64 = 5.0;

fn count(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let rooms = count("RECONCILE_ROOMS", 1000);
    let members = count("RECONCILE_MEMBERS", 50);
    let fake = FakeWebex::start();
    for room in 0..rooms {
        let room = format!("room-{room:05}");
        fake.add_room(&room, &format!("Room {room}"));
        for person in 0..members {
            fake.add_member(
                &room,
                &format!("person-{person:03}"),
                "2026-11-01T09:00:00.000Z",
            );
        }
    }
    // Unpaced by default, to measure the work itself; the paced time
    // follows from the calls.
    let rate = std::env::var("RECONCILE_API_RATE").unwrap_or_else(|_| "1000000".into());
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("audit-logs");
    println!("reconcile: {rooms} rooms x {members} members on the fake API, --api-rate {rate}");
    println!();
    println!(
        "| run | records written | API calls | time at 5 req/s | wall time at --api-rate | peak RSS |"
    );
    println!("|---|---|---|---|---|---|");
    for run in ["baseline (empty log)", "again (log agrees)"] {
        let start = Instant::now();
        let output = Command::new("/usr/bin/time")
            .arg("-v")
            .arg(env!("CARGO_BIN_EXE_rollcall"))
            .arg("--dir")
            .arg(&dir)
            .args(["reconcile", "--api-rate", &rate])
            .env("WEBEX_TOKEN", TOKEN)
            .env("WEBEX_API_URL", &fake.url)
            .output()
            .expect("running /usr/bin/time -v rollcall reconcile");
        let wall = start.elapsed();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stdout}\n{stderr}");
        let summary = stdout.lines().last().unwrap_or("");
        let number_before = |word: &str| -> u64 {
            summary
                .split(word)
                .next()
                .and_then(|head| head.split_whitespace().last())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no {word:?} in {summary:?}"))
        };
        let calls = number_before(" API calls");
        let written = number_before(" records written");
        let rss_kib: u64 = stderr
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("Maximum resident set size (kbytes): ")
            })
            .and_then(|n| n.parse().ok())
            .expect("peak RSS from /usr/bin/time -v");
        let paced = calls.saturating_sub(1) as f64 / DEFAULT_RATE;
        println!(
            "| {run} | {written} | {calls} | {:.0} s ({:.1} min) | {:.2} s | {:.1} MiB |",
            paced,
            paced / 60.0,
            wall.as_secs_f64(),
            rss_kib as f64 / 1024.0
        );
    }
}
