//! Export throughput on a generated log of 1,000,000 records, beside
//! `jq -r '[...] | @csv'` on the same files, with peak RSS from
//! `/usr/bin/time -v`. Measured, not asserted:
//!
//! `cargo bench --bench export` (set `ROLLCALL_BENCH_RECORDS` for another
//! size, `ROLLCALL_BENCH_DIR` to keep the generated log).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rollcall::log::days;
use rollcall::log::record::{Event, GENESIS_HASH, Record, format_timestamp};
use time::macros::datetime;

const BIN: &str = env!("CARGO_BIN_EXE_rollcall");
const DAYS: u64 = 10;

fn main() {
    let records: u64 = std::env::var("ROLLCALL_BENCH_RECORDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let temp = tempfile::tempdir().expect("creating a temp dir");
    let dir = std::env::var_os("ROLLCALL_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| temp.path().join("audit-logs"));
    let started = Instant::now();
    let files = generate(&dir, records);
    let bytes: u64 = files.iter().map(|f| f.metadata().unwrap().len()).sum();
    println!(
        "generated {records} records in {} day files ({} MB) in {:.1?}",
        files.len(),
        bytes / 1_000_000,
        started.elapsed()
    );

    let rollcall = |args: &[&str]| {
        let mut command = Command::new("/usr/bin/time");
        command.arg("-v").arg(BIN).arg("--dir").arg(&dir).args(args);
        command
    };
    report("rollcall export (csv)", records, &mut rollcall(&["export"]));
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
    let mut jq = Command::new("/usr/bin/time");
    jq.args(["-v", "jq", "-r"]).arg(JQ_CSV).args(&files);
    report("jq -r '[...] | @csv'", records, &mut jq);
    report("rollcall verify", records, &mut rollcall(&["verify"]));
}

const JQ_CSV: &str = "[.seq, .received_at, .event, .room_id, .room_title, .person_id, \
    .person_email, .person_display_name, .is_moderator, .is_monitor, .membership_id, \
    .membership_created, .actor_id, .org_id, .webhook_id, .webhook_name, .target] | @csv";

/// Runs `command` (a `/usr/bin/time -v` wrapper) with stdout discarded and
/// prints its rate and peak RSS.
fn report(name: &str, records: u64, command: &mut Command) {
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
        .unwrap_or("?");
    println!(
        "{name:<42} {:>8.2} s {:>12.0} records/s   peak RSS {rss_kb} kB",
        secs(took),
        records as f64 / secs(took)
    );
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Writes `records` sealed, chained records over [`DAYS`] day files, shaped
/// like real deliveries (long base64 ids, a third with room titles).
fn generate(dir: &Path, records: u64) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    let start = datetime!(2026-11-01 00:00:00 UTC);
    let per_day = records.div_ceil(DAYS);
    let step = time::Duration::milliseconds((86_400_000 / per_day as i64).max(1));
    let mut prev_hash = GENESIS_HASH.to_string();
    let mut files = Vec::new();
    let mut out: Option<(String, BufWriter<File>)> = None;
    for seq in 1..=records {
        let day = (seq - 1) / per_day;
        let at = start + time::Duration::days(day as i64) + step * ((seq - 1) % per_day) as i32;
        let mut record = sample(seq, format_timestamp(at), prev_hash);
        let day_name = record.day().to_string();
        if out.as_ref().is_none_or(|(name, _)| *name != day_name) {
            if let Some((_, mut file)) = out.take() {
                file.flush().unwrap();
            }
            let path = days::live_path(dir, at.date());
            files.push(path.clone());
            out = Some((day_name, BufWriter::new(File::create(path).unwrap())));
        }
        let line = record.seal();
        out.as_mut().unwrap().1.write_all(&line).unwrap();
        prev_hash = record.hash;
    }
    if let Some((_, mut file)) = out {
        file.flush().unwrap();
    }
    files
}

fn sample(seq: u64, received_at: String, prev_hash: String) -> Record {
    let person = seq % 10;
    let room = seq % 50;
    let id = |kind: &str, n: u64| {
        format!(
            "Y2lzY29zcGFyazovL3VzL{kind}LzBkMGM5MWI2LWNlNjAtNDcyNS1iNmQwLTM0NTVkNWQxMWVmMz{n:012}"
        )
    };
    Record {
        seq,
        received_at,
        event: if seq.is_multiple_of(3) {
            Event::Left
        } else {
            Event::Joined
        },
        room_id: id("JPT00", room),
        room_title: (seq % 3 == 1).then(|| format!("Project room {room}")),
        room_type: Some("group".into()),
        person_id: id("BFT1BMRS", person),
        person_email: Some(format!("person{person}@example.com")),
        person_display_name: Some(format!("Person {person}, \"P{person}\"")),
        person_org_id: Some(id("9SR0FOSVpBVElPTi", 1)),
        is_moderator: Some(seq.is_multiple_of(7)),
        is_monitor: Some(false),
        is_room_hidden: Some(false),
        membership_id: id("01FTUJFUlNISVAv", seq),
        membership_created: Some("2026-11-27T14:03:11.482Z".into()),
        actor_id: Some(id("BFT1BMRS", 99)),
        org_id: Some("OTZhYmMyYWEtM2RjYy0xMWU1LWExNTItZmUzNDgxOWNkYzlh".into()),
        webhook_id: Some(id("1dFQkhPT0sv", 1)),
        webhook_name: Some("Team roster webhook".into()),
        target: "team".into(),
        prev_hash,
        hash: String::new(),
    }
}
