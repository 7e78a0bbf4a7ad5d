//! The SQLite index on a generated organisation's log (10,000 rooms of 100
//! members, with churn, reconciled baselines and a few coverage gaps),
//! through the real binary: the first build (`index --rebuild`) beside
//! DuckDB's `read_json` of the same files into a table, the index's size
//! beside the log's, and the read commands that answer from it, each with
//! its wall time and peak RSS. Measured, not asserted:
//!
//! `cargo bench --bench index` (`ROLLCALL_BENCH_RECORDS` for another size
//! than 1,000,000; `ROLLCALL_BENCH_BASELINE` for an older binary measured
//! beside this one on a copy of the log; `ROLLCALL_BENCH_DIR` to keep the
//! generated log). DuckDB comes from PyPI into `target/bench-venv`, made
//! on first use; without it the row says why it was skipped.

mod support;

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rollcall::log::days;
use rollcall::log::record::{Event, GENESIS_HASH, Record, Source, format_timestamp};
use support::id;
use time::macros::date;
use time::{Date, OffsetDateTime};

const BIN: &str = env!("CARGO_BIN_EXE_rollcall");

const ROOMS: u64 = 10_000;
const MEMBERS: u64 = 100;
/// Each person is in `ROOMS * MEMBERS / PEOPLE` rooms.
const PEOPLE: u64 = 50_000;
/// Days the log spans.
const SPAN_DAYS: i64 = 30;
/// Clean restarts spread through the log; one more start follows a crash.
const RESTARTS: u64 = 3;
/// Leaves each reconciliation after a gap finds.
const FOUND_GONE: u64 = 20;
/// Runs of each read command; the best is shown.
const RUNS: usize = 5;

fn main() {
    let records = support::records();
    let temp = tempfile::tempdir().expect("creating a temp dir");
    let dir = support::log_dir(&temp);
    let started = Instant::now();
    let log = generate_org(&dir, records, date!(2026 - 03 - 01));
    eprintln!(
        "generated {records} records in {} day files ({} MB) in {:.1?}",
        log.files.len(),
        log.bytes / 1_000_000,
        started.elapsed()
    );

    println!(
        "| {records} records ({} MB), {ROOMS} rooms x {MEMBERS} | time | records/s | peak RSS |\n|---|---|---|---|",
        log.bytes / 1_000_000
    );
    measure_binary("rollcall", Path::new(BIN), &dir, &log);
    match duckdb() {
        Ok(python) => {
            let database = temp.path().join("duckdb.db");
            let (took, rss) = duckdb_read_json(&python, &database, &dir);
            row(
                "DuckDB read_json into a table (in Python, import not counted)",
                took,
                Some(records),
                rss,
            );
            let bytes = database.metadata().map_or(0, |m| m.len());
            size_row("DuckDB database file", bytes, log.bytes);
        }
        Err(why) => println!("| DuckDB read_json into a table | skipped: {why} | | |"),
    }
    if let Some(bin) = support::baseline_bin() {
        // Its own copy of the log, so neither binary's index is the other's.
        let copy = temp.path().join("baseline-audit-logs");
        std::fs::create_dir_all(&copy).unwrap();
        for file in &log.files {
            std::fs::hard_link(file, copy.join(file.file_name().unwrap())).unwrap();
        }
        measure_binary("baseline", &bin, &copy, &log);
    }
}

/// Every row for one binary: the build (when it has `index`), the index's
/// size, and each read command it has.
fn measure_binary(name: &str, bin: &Path, dir: &Path, log: &Generated) {
    let has = |command: &str| {
        Command::new(bin)
            .args([command, "--help"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if has("index") {
        let (took, rss) = timed(rollcall(bin, dir, &["index", "--rebuild"]));
        row(
            &format!("{name} index --rebuild"),
            took,
            Some(log.records),
            rss,
        );
        let index: u64 = ["index.sqlite", "index.sqlite-wal"]
            .iter()
            .filter_map(|f| dir.join(f).metadata().ok())
            .map(|m| m.len())
            .sum();
        size_row(&format!("{name} index.sqlite + -wal"), index, log.bytes);
    }
    let at = log.middle.as_str();
    let reads: [(&str, Vec<&str>); 3] = [
        (
            "roster --room R --at T",
            vec!["roster", "--room", &log.room, "--at", at],
        ),
        ("rooms", vec!["rooms"]),
        (
            "history --person P",
            vec!["history", "--person", &log.person],
        ),
    ];
    for (label, args) in reads.iter().filter(|(_, args)| has(args[0])) {
        let (took, rss) = (0..RUNS)
            .map(|_| timed(rollcall(bin, dir, args)))
            .min_by_key(|(took, _)| *took)
            .expect("at least one run");
        row(&format!("{name} {label} (best of {RUNS})"), took, None, rss);
    }
}

/// `bin --dir DIR args`.
fn rollcall(bin: &Path, dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(bin);
    command.arg("--dir").arg(dir).args(args);
    command
}

/// Runs `command` to the end with its stdout discarded: its wall time and
/// peak RSS in KiB (from `/usr/bin/time`, into a file of its own so the
/// command's stderr stays its own).
fn timed(command: Command) -> (Duration, u64) {
    let report = tempfile::NamedTempFile::new().expect("a temp file");
    let mut wrapped = Command::new("/usr/bin/time");
    wrapped
        .args(["-f", "%M", "-o"])
        .arg(report.path())
        .arg(command.get_program())
        .args(command.get_args())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let output = wrapped
        .output()
        .unwrap_or_else(|e| panic!("running {wrapped:?}: {e}"));
    let took = started.elapsed();
    assert!(
        output.status.success(),
        "{wrapped:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rss = std::fs::read_to_string(report.path())
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0);
    (took, rss)
}

fn size_row(name: &str, bytes: u64, log_bytes: u64) {
    println!(
        "| {name} | {} MB | {:.2}x the log | |",
        bytes / 1_000_000,
        bytes as f64 / log_bytes as f64
    );
}

fn row(name: &str, took: Duration, records: Option<u64>, rss_kib: u64) {
    let time = if took < Duration::from_secs(1) {
        format!("{:.1} ms", took.as_secs_f64() * 1000.0)
    } else {
        format!("{:.2} s", took.as_secs_f64())
    };
    let rate = records.map_or(String::new(), |n| {
        format!("{:.0}", n as f64 / took.as_secs_f64())
    });
    println!(
        "| {name} | {time} | {rate} | {:.1} MiB |",
        rss_kib as f64 / 1024.0
    );
}

/// A Python with `duckdb` importable: `target/bench-venv`'s, made and
/// filled from PyPI when it is not there yet.
fn duckdb() -> Result<PathBuf, String> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-venv");
    let python = venv.join("bin/python");
    let imports = |python: &Path| {
        Command::new(python)
            .args(["-c", "import duckdb"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if imports(&python) {
        return Ok(python);
    }
    let quiet = |command: &mut Command, what: &str| {
        let output = command.output().map_err(|e| format!("{what}: {e}"))?;
        if output.status.success() {
            Ok(())
        } else {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let last = stderr.lines().last().unwrap_or_default();
            Err(format!("{what} failed: {last}"))
        }
    };
    if !python.exists() {
        quiet(
            Command::new("python3").arg("-m").arg("venv").arg(&venv),
            "python3 -m venv",
        )?;
    }
    quiet(
        Command::new(venv.join("bin/pip")).args(["install", "-q", "duckdb"]),
        "pip install duckdb",
    )?;
    imports(&python)
        .then_some(python)
        .ok_or_else(|| "duckdb installed but not importable".into())
}

/// DuckDB reads every day file of `dir` into a table of a database file:
/// the time of that statement alone, and the process's peak RSS.
fn duckdb_read_json(python: &Path, database: &Path, dir: &Path) -> (Duration, u64) {
    const SCRIPT: &str = "import sys, time, duckdb\n\
        con = duckdb.connect(sys.argv[1])\n\
        con.execute('SET enable_progress_bar = false')\n\
        started = time.perf_counter()\n\
        con.execute(\"CREATE TABLE records AS SELECT * FROM read_json('\" + sys.argv[2] + \"', format='newline_delimited')\")\n\
        print(time.perf_counter() - started, con.execute('SELECT count(*) FROM records').fetchone()[0])\n";
    let glob = dir.join("*.jsonl");
    let report = tempfile::NamedTempFile::new().expect("a temp file");
    let output = Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o"])
        .arg(report.path())
        .arg(python)
        .args(["-c", SCRIPT])
        .arg(database)
        .arg(&glob)
        .output()
        .expect("running python");
    assert!(
        output.status.success(),
        "duckdb failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let seconds: f64 = stdout
        .split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("duckdb printed {stdout:?}"));
    let rss = std::fs::read_to_string(report.path())
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0);
    (Duration::from_secs_f64(seconds), rss)
}

/// What [`generate_org`] wrote, and what the read commands ask of it.
struct Generated {
    files: Vec<PathBuf>,
    bytes: u64,
    records: u64,
    /// A baselined room's id, and a time halfway through the log.
    room: String,
    middle: String,
    /// A person in `ROOMS * MEMBERS / PEOPLE` rooms.
    person: String,
}

/// Writes `records` sealed, chained records from `first_day` on, over
/// [`SPAN_DAYS`]: the receiver's first start, a reconciled baseline of as
/// many rooms as a fifth of the log holds, then joins, leaves and
/// moderator changes of random memberships, with [`RESTARTS`] clean
/// restarts of an hour (each followed by [`FOUND_GONE`] reconciled leaves)
/// and a crash at nine tenths.
fn generate_org(dir: &Path, records: u64, first_day: Date) -> Generated {
    std::fs::create_dir_all(dir).unwrap();
    let start = first_day.midnight().assume_utc();
    let step = time::Duration::milliseconds(SPAN_DAYS * 86_400_000 / records.max(1) as i64);
    let mut org = Org::new(records, start - time::Duration::days(30));
    let mut late = time::Duration::ZERO;
    let mut prev_hash = GENESIS_HASH.to_string();
    let mut files = Vec::new();
    let mut out: Option<(Date, BufWriter<File>)> = None;
    for seq in 1..=records {
        let planned = start + step * (seq - 1) as i32 + late;
        let (mut record, at) = org.next(seq, planned, &mut late);
        record.seq = seq;
        record.received_at = format_timestamp(at);
        record.prev_hash = prev_hash;
        if out.as_ref().is_none_or(|(day, _)| *day != at.date()) {
            if let Some((_, mut file)) = out.take() {
                file.flush().unwrap();
            }
            let path = days::live_path(dir, at.date());
            files.push(path.clone());
            out = Some((at.date(), BufWriter::new(File::create(path).unwrap())));
        }
        let line = record.seal();
        out.as_mut().unwrap().1.write_all(&line).unwrap();
        prev_hash = record.hash;
    }
    if let Some((_, mut file)) = out {
        file.flush().unwrap();
    }
    let bytes = files.iter().map(|f| f.metadata().unwrap().len()).sum();
    Generated {
        files,
        bytes,
        records,
        room: id("JPT00", 0),
        middle: format_timestamp(start + step * (records / 2) as i32),
        person: email(7),
    }
}

/// The organisation's state while its log is generated.
struct Org {
    present: Vec<bool>,
    moderator: Vec<bool>,
    /// When each membership's current stay began.
    created: Vec<OffsetDateTime>,
    baseline: u64,
    gaps_at: Vec<u64>,
    crash_at: u64,
    queued: VecDeque<Queued>,
    last_at: OffsetDateTime,
    random: u64,
}

/// A record decided ahead: a gap's stop and start and what follows them.
enum Queued {
    Stopped,
    Started { not_before: Option<String> },
    FoundGone,
}

impl Org {
    fn new(records: u64, before_the_log: OffsetDateTime) -> Self {
        let memberships = (ROOMS * MEMBERS) as usize;
        let baseline = (records / 5 / MEMBERS).min(ROOMS) * MEMBERS;
        Org {
            present: vec![false; memberships],
            moderator: vec![false; memberships],
            created: vec![before_the_log; memberships],
            baseline,
            gaps_at: (1..=RESTARTS)
                .map(|i| records * i / (RESTARTS + 1))
                .collect(),
            crash_at: records * 9 / 10,
            queued: VecDeque::from([Queued::Started { not_before: None }]),
            last_at: before_the_log,
            random: 0x9e37_79b9_7f4a_7c15,
        }
    }

    /// xorshift64*: the same log for the same size, every run.
    fn random(&mut self, below: u64) -> u64 {
        self.random ^= self.random >> 12;
        self.random ^= self.random << 25;
        self.random ^= self.random >> 27;
        self.random.wrapping_mul(0x2545_f491_4f6c_dd1d) % below
    }

    /// The record at `seq`, planned for `at`, and when it is received: an
    /// hour later than planned after a gap, as every record after it.
    fn next(
        &mut self,
        seq: u64,
        at: OffsetDateTime,
        late: &mut time::Duration,
    ) -> (Record, OffsetDateTime) {
        if self.gaps_at.contains(&seq) {
            self.queued.push_back(Queued::Stopped);
            self.queued.push_back(Queued::Started { not_before: None });
            self.queued
                .extend((0..FOUND_GONE).map(|_| Queued::FoundGone));
        } else if seq == self.crash_at {
            let not_before = Some(format_timestamp(self.last_at));
            self.queued.push_back(Queued::Started { not_before });
        }
        let mut at = at;
        let record = match self.queued.pop_front() {
            Some(Queued::Stopped) => {
                // The receiver is down for an hour after this one.
                *late += time::Duration::hours(1);
                Record::receiver(Event::ReceiverStopped, None)
            }
            Some(Queued::Started { not_before }) => {
                if not_before.is_some() {
                    *late += time::Duration::hours(1);
                    at += time::Duration::hours(1);
                }
                Record::receiver(Event::ReceiverStarted, not_before)
            }
            Some(Queued::FoundGone) => {
                let (m, _) = self.pick(true);
                let not_before = format_timestamp(self.last_at - time::Duration::hours(1));
                self.change(m, Event::Left, Source::Reconciled, at, Some(not_before))
            }
            None if seq <= self.baseline + 1 => {
                let m = seq - 2;
                self.moderator[m as usize] = m.is_multiple_of(MEMBERS);
                self.change(m, Event::Joined, Source::Reconciled, at, None)
            }
            None => {
                // Half joins, the rest mostly leaves, one in ten a
                // moderator change, of random memberships in every room.
                let roll = self.random(10);
                let (m, present) = self.pick(roll >= 5);
                let event = match (present, self.moderator[m as usize]) {
                    (false, _) => Event::Joined,
                    (true, false) if roll == 9 => Event::ModeratorGranted,
                    (true, true) if roll == 9 => Event::ModeratorRevoked,
                    (true, _) => Event::Left,
                };
                self.change(m, event, Source::Webhook, at, None)
            }
        };
        self.last_at = at;
        (record, at)
    }

    /// A random membership that is `present` (or, when a few tries find
    /// none, one that is not), and whether it is present.
    fn pick(&mut self, present: bool) -> (u64, bool) {
        let mut m = 0;
        for _ in 0..64 {
            m = self.random(ROOMS * MEMBERS);
            if self.present[m as usize] == present {
                break;
            }
        }
        (m, self.present[m as usize])
    }

    /// Membership `m`'s record of `event`, with the state it leaves.
    fn change(
        &mut self,
        m: u64,
        event: Event,
        source: Source,
        at: OffsetDateTime,
        not_before: Option<String>,
    ) -> Record {
        let i = m as usize;
        match event {
            Event::Joined => {
                self.present[i] = true;
                if source == Source::Webhook {
                    self.created[i] = at;
                }
            }
            Event::Left => self.present[i] = false,
            Event::ModeratorGranted => self.moderator[i] = true,
            Event::ModeratorRevoked => self.moderator[i] = false,
            _ => {}
        }
        let (room, slot) = (m / MEMBERS, m % MEMBERS);
        let person = (room * 13 + slot * (PEOPLE / MEMBERS)) % PEOPLE;
        Record {
            room_id: id("JPT00", room),
            room_title: Some(format!("Project room {room}")),
            room_type: Some("group".into()),
            person_id: id("BFT1BMRS", person),
            person_email: Some(email(person)),
            person_display_name: Some(format!("Person {person}")),
            person_org_id: Some(id("9SR0FOSVpBVElPTi", 1)),
            is_moderator: Some(self.moderator[i]),
            is_monitor: Some(false),
            is_room_hidden: Some(false),
            membership_id: id("01FTUJFUlNISVAv", m),
            membership_created: Some(format_timestamp(self.created[i])),
            actor_id: Some(id("BFT1BMRS", PEOPLE + 1)),
            org_id: Some("OTZhYmMyYWEtM2RjYy0xMWU1LWExNTItZmUzNDgxOWNkYzlh".into()),
            webhook_id: Some(id("1dFQkhPT0sv", 1)),
            webhook_name: Some("Org memberships".into()),
            target: "org".into(),
            source,
            not_before,
            ..Record::receiver(event, None)
        }
    }
}

fn email(person: u64) -> String {
    format!("person{person}@example.com")
}
