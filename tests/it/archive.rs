//! Archival: closed days become gzip archives with chained digests, read
//! back exactly as they were live, and every kind of tampering with them
//! is reported.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::future::join_all;
use rollcall::clock::FakeClock;
use rollcall::console::access;
use rollcall::log::access::{ACCESS_DIR, day_path, retention::RETIRED_FILE};
use rollcall::log::archive::{self, Options};
use rollcall::log::days;
use rollcall::log::record::{Event, Record, Source};
use rollcall::log::writer::{Appended, LogWriter};
use rollcall::metrics::Metrics;
use rollcall::schedule::Nightly;
use time::macros::{date, datetime};
use time::{Date, Duration, OffsetDateTime};

use crate::support::app::{START, TestApp, json_of};
use crate::support::bin::{rollcall, run};
use crate::support::fixture;
use crate::support::moto::{self, Moto};

/// A join with a membership id of its own, so no two are duplicates.
fn record(n: u64) -> Record {
    Record {
        seq: 0,
        received_at: String::new(),
        event: Event::Joined,
        room_id: "room-1".into(),
        room_title: None,
        room_type: Some("group".into()),
        person_id: format!("person-{n}"),
        person_email: Some(format!("person{n}@example.com")),
        person_display_name: Some(format!("Person {n}")),
        person_org_id: None,
        is_moderator: Some(false),
        is_monitor: Some(false),
        is_room_hidden: Some(false),
        membership_id: format!("membership-{n}"),
        membership_created: Some("2026-01-01T00:00:00.000Z".into()),
        actor_id: None,
        org_id: None,
        webhook_id: None,
        webhook_name: None,
        target: "team".into(),
        source: Source::Webhook,
        not_before: None,
        receiver: None,
        prev_hash: String::new(),
        hash: String::new(),
    }
}

fn noon(date: Date) -> OffsetDateTime {
    date.midnight().assume_utc() + Duration::hours(12)
}

/// Writes `count` records on each of the given days through the real
/// writer, with a fake clock set to each day in turn.
async fn write_days(dir: &Path, plan: &[(Date, u64)]) {
    let clock = Arc::new(FakeClock::new(noon(plan[0].0)));
    let writer = LogWriter::open(dir, clock.clone(), Arc::new(Metrics::default())).unwrap();
    let mut n = 0;
    for &(date, count) in plan {
        clock.set(noon(date));
        let appends: Vec<_> = (0..count)
            .map(|_| {
                n += 1;
                writer.append(record(n))
            })
            .collect();
        for outcome in join_all(appends).await {
            assert!(matches!(outcome, Ok(Appended::Recorded(_))), "{outcome:?}");
        }
    }
    tokio::task::spawn_blocking(move || drop(writer))
        .await
        .unwrap();
}

/// Every line of the log, live or archived, in day then line order.
fn all_lines(dir: &Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for day in days::list(dir).unwrap() {
        let mut lines = day.lines().unwrap();
        while let Some((line, whole)) = lines.next_line().unwrap() {
            assert!(whole, "a torn line in {}", day.path().display());
            out.push(line.to_vec());
        }
    }
    out
}

fn archive_now(dir: &Path, now: OffsetDateTime) -> archive::Summary {
    archive::archive_closed_days(
        dir,
        &FakeClock::new(now),
        &Options::default(),
        &AtomicBool::new(false),
    )
    .unwrap()
}

/// The files the faults name.
fn faulty_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = archive::check_archives(dir)
        .unwrap()
        .into_iter()
        .map(|f| f.file)
        .collect();
    files.sort();
    files.dedup();
    files
}

const D1: Date = date!(2026 - 11 - 24);
const D2: Date = date!(2026 - 11 - 25);
const D3: Date = date!(2026 - 11 - 26);
const TODAY: Date = date!(2026 - 11 - 27);

/// A fresh directory holding the days of `plan`.
async fn log_with(plan: &[(Date, u64)]) -> (tempfile::TempDir, PathBuf) {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("audit-logs");
    write_days(&dir, plan).await;
    (temp, dir)
}

/// Three closed days and today, archived at noon today.
async fn archived_log() -> (tempfile::TempDir, PathBuf) {
    let (temp, dir) = log_with(&[(D1, 5), (D2, 7), (D3, 3), (TODAY, 2)]).await;
    archive_now(&dir, noon(TODAY));
    (temp, dir)
}

/// Panics unless a fault names `file` and says `about`.
fn assert_fault(dir: &Path, file: &Path, about: &str) {
    let faults = archive::check_archives(dir).unwrap();
    assert!(
        faults
            .iter()
            .any(|f| f.file == file && f.problem.contains(about)),
        "no fault about {about:?} in {}: {faults:#?}",
        file.display()
    );
}

/// Replaces the first `from` in the text file at `path` with `to`.
fn replace_in(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{from:?} is not in {}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

/// The bytes of the days' archives and digests.
fn archived_bytes(dir: &Path, dates: &[Date]) -> Vec<Vec<u8>> {
    dates
        .iter()
        .flat_map(|d| [days::archive_path(dir, *d), archive::digest_path(dir, *d)])
        .map(|path| std::fs::read(path).unwrap())
        .collect()
}

#[tokio::test]
async fn archiving_closed_days_keeps_every_line_and_leaves_today_live() {
    let (_temp, dir) = log_with(&[(D1, 5), (D2, 7), (D3, 3), (TODAY, 2)]).await;
    let before = all_lines(&dir);
    let originals: Vec<Vec<u8>> = [D1, D2, D3]
        .iter()
        .map(|d| std::fs::read(days::live_path(&dir, *d)).unwrap())
        .collect();

    let summary = archive_now(&dir, noon(TODAY));

    let archived: Vec<(Date, u64)> = summary
        .archived
        .iter()
        .map(|a| (a.date, a.records))
        .collect();
    assert_eq!(archived, vec![(D1, 5), (D2, 7), (D3, 3)]);
    assert_eq!(
        all_lines(&dir),
        before,
        "the log reads the same after archival"
    );
    for (day, original) in [D1, D2, D3].iter().zip(&originals) {
        assert!(!days::live_path(&dir, *day).exists());
        assert!(archive::digest_path(&dir, *day).exists());
        let zcat = std::process::Command::new("zcat")
            .arg(days::archive_path(&dir, *day))
            .output()
            .unwrap();
        assert!(zcat.status.success());
        assert_eq!(&zcat.stdout, original, "zcat gives back the day file");
    }
    assert!(days::live_path(&dir, TODAY).exists(), "today stays live");
    assert_eq!(archive::check_archives(&dir).unwrap(), vec![]);
}

#[tokio::test]
async fn a_digest_records_the_day_and_links_to_the_digest_before_it() {
    let (_temp, dir) = archived_log().await;
    let read = |d: Date| -> archive::DayDigest {
        serde_json::from_slice(&std::fs::read(archive::digest_path(&dir, d)).unwrap()).unwrap()
    };
    let (first, second) = (read(D1), read(D2));
    assert_eq!(first.day, "2026-11-24");
    assert_eq!(first.archive, "2026-11-24.jsonl.gz");
    assert_eq!(
        (first.records, first.first_seq, first.last_seq),
        (5, Some(1), Some(5))
    );
    assert_eq!(first.previous_digest, None);
    assert_eq!(first.previous_digest_sha256, archive::GENESIS_DIGEST);
    assert_eq!(
        (
            second.first_seq,
            second.last_seq,
            second.chain_start.as_str()
        ),
        (Some(6), Some(12), first.last_hash.as_str())
    );
    assert_eq!(
        second.previous_digest.as_deref(),
        Some("2026-11-24.digest.json")
    );
    let first_bytes = std::fs::read(archive::digest_path(&dir, D1)).unwrap();
    assert_eq!(
        second.previous_digest_sha256,
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&first_bytes))
    );
    let gz = std::fs::read(days::archive_path(&dir, D1)).unwrap();
    assert_eq!(first.compressed_bytes, gz.len() as u64);
}

#[tokio::test]
async fn a_flipped_byte_in_an_archive_is_reported_against_that_archive() {
    let (_temp, dir) = archived_log().await;
    let path = days::archive_path(&dir, D2);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();
    assert_eq!(faulty_files(&dir), vec![path]);
}

#[tokio::test]
async fn a_deleted_archive_is_reported() {
    let (_temp, dir) = archived_log().await;
    let path = days::archive_path(&dir, D2);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(faulty_files(&dir), vec![path]);
}

#[tokio::test]
async fn a_deleted_digest_is_reported_by_its_archive_and_by_the_next_digest() {
    let (_temp, dir) = archived_log().await;
    std::fs::remove_file(archive::digest_path(&dir, D2)).unwrap();
    assert_eq!(
        faulty_files(&dir),
        vec![days::archive_path(&dir, D2), archive::digest_path(&dir, D3)]
    );
}

#[tokio::test]
async fn an_edited_digest_is_reported_by_name() {
    let (_temp, dir) = archived_log().await;
    // An edit that keeps the digest well-formed and its fields true to the
    // archive: only the next digest's record of its hash gives it away.
    let path = archive::digest_path(&dir, D1);
    replace_in(&path, "\"archived_at\": \"2026", "\"archived_at\": \"2025");
    assert_eq!(faulty_files(&dir), vec![path]);
}

#[tokio::test]
async fn a_digest_edited_to_disagree_with_its_archive_is_reported() {
    let (_temp, dir) = archived_log().await;
    replace_in(
        &archive::digest_path(&dir, D3),
        "\"records\": 3",
        "\"records\": 2",
    );
    assert_fault(&dir, &days::archive_path(&dir, D3), "records");
}

#[tokio::test]
async fn a_live_day_restored_beside_its_archive_is_reported_as_archived_twice() {
    let (_temp, dir) = log_with(&[(D1, 5), (D2, 7), (TODAY, 1)]).await;
    let live = days::live_path(&dir, D2);
    let original = std::fs::read(&live).unwrap();
    archive_now(&dir, noon(TODAY));
    let mut edited = original.clone();
    edited.truncate(original.len() / 2);
    std::fs::write(&live, edited).unwrap();
    let faults = archive::check_archives(&dir).unwrap();
    assert_eq!(faults.len(), 1, "{faults:#?}");
    assert_eq!(faults[0].file, live);
    assert!(faults[0].problem.contains("archived twice"), "{faults:#?}");
}

#[tokio::test]
async fn the_same_records_archived_under_two_days_are_reported() {
    let (_temp, dir) = archived_log().await;
    let earlier = date!(2026 - 11 - 23);
    std::fs::copy(
        days::archive_path(&dir, D1),
        days::archive_path(&dir, earlier),
    )
    .unwrap();
    std::fs::copy(
        archive::digest_path(&dir, D1),
        archive::digest_path(&dir, earlier),
    )
    .unwrap();
    assert_fault(&dir, &archive::digest_path(&dir, D1), "twice");
    assert_fault(
        &dir,
        &archive::digest_path(&dir, earlier),
        "not the day its name says",
    );
}

#[tokio::test]
async fn a_crash_before_the_live_file_was_removed_is_finished_by_the_next_run() {
    let (_temp, dir) = log_with(&[(D1, 5), (D2, 7), (TODAY, 1)]).await;
    let before = all_lines(&dir);
    let live = days::live_path(&dir, D2);
    let original = std::fs::read(&live).unwrap();
    archive_now(&dir, noon(TODAY));
    // As if the run had died between writing the digest and removing the
    // live file.
    std::fs::write(&live, &original).unwrap();
    assert_eq!(faulty_files(&dir), vec![live.clone()]);
    assert_eq!(all_lines(&dir), before);

    let summary = archive_now(&dir, noon(TODAY));

    assert_eq!(summary.finished, vec![D2]);
    assert!(summary.archived.is_empty());
    assert!(!live.exists());
    assert_eq!(archive::check_archives(&dir).unwrap(), vec![]);
    assert_eq!(all_lines(&dir), before);
}

#[tokio::test]
async fn a_crash_while_the_archive_was_being_written_is_redone_by_the_next_run() {
    let (_temp, dir) = log_with(&[(D1, 5), (D2, 7), (TODAY, 1)]).await;
    let before = all_lines(&dir);
    archive_now(&dir, noon(TODAY));
    // Put D2 back to how a crash mid-archival would leave it: the live
    // file, a half-written temporary, and a renamed archive whose digest
    // was never written.
    let live = days::live_path(&dir, D2);
    let archive_path = days::archive_path(&dir, D2);
    let gz = std::fs::read(&archive_path).unwrap();
    std::fs::write(
        &live,
        before[5..12]
            .iter()
            .flat_map(|l| [l.as_slice(), b"\n"].concat())
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    std::fs::remove_file(archive::digest_path(&dir, D2)).unwrap();
    std::fs::write(&archive_path, &gz[..gz.len() / 2]).unwrap();
    let temporary = dir.join("archive").join(".2026-11-25.jsonl.gz.tmp");
    std::fs::write(&temporary, &gz[..10]).unwrap();
    assert_eq!(all_lines(&dir), before, "the live file is what is read");

    let summary = archive_now(&dir, noon(TODAY));

    assert_eq!(summary.archived.len(), 1);
    assert_eq!(summary.archived[0].date, D2);
    assert!(!live.exists());
    assert!(!temporary.exists());
    assert_eq!(std::fs::read(&archive_path).unwrap(), gz);
    assert_eq!(archive::check_archives(&dir).unwrap(), vec![]);
    assert_eq!(all_lines(&dir), before);
}

#[tokio::test]
async fn a_closed_day_with_a_damaged_record_is_not_archived() {
    let (_temp, dir) = log_with(&[(D1, 3), (TODAY, 1)]).await;
    let live = days::live_path(&dir, D1);
    replace_in(&live, "person2@", "mallory@");

    let error = archive::archive_closed_days(
        &dir,
        &FakeClock::new(noon(TODAY)),
        &Options::default(),
        &AtomicBool::new(false),
    )
    .unwrap_err();

    assert!(
        format!("{error:#}").contains("2026-11-24.jsonl:2"),
        "{error:#}"
    );
    assert!(live.exists());
    assert!(!days::archive_path(&dir, D1).exists());
    assert!(!archive::digest_path(&dir, D1).exists());
}

#[tokio::test]
async fn a_stopped_run_leaves_the_day_live_and_no_temporary_behind() {
    let (_temp, dir) = log_with(&[(D1, 3), (TODAY, 1)]).await;
    let before = all_lines(&dir);

    let error = archive::archive_closed_days(
        &dir,
        &FakeClock::new(noon(TODAY)),
        &Options::default(),
        &AtomicBool::new(true),
    )
    .unwrap_err();

    assert!(error.is::<archive::Cancelled>(), "{error:#}");
    assert!(days::live_path(&dir, D1).exists());
    let left: Vec<_> = std::fs::read_dir(dir.join("archive"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|name| name != ".lock")
        .collect();
    assert_eq!(left, Vec::<std::ffi::OsString>::new());
    assert_eq!(all_lines(&dir), before);
}

#[tokio::test]
async fn rollcall_archive_refuses_a_directory_that_does_not_exist() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("no-such-log");

    let failed = run(rollcall(&dir).arg("archive")).code(2);

    assert!(
        failed.stderr.contains("no log directory"),
        "{}",
        failed.report()
    );
    assert!(!dir.exists());
}

#[tokio::test]
async fn rollcall_archive_archives_closed_days_once_and_then_has_nothing_to_do() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("audit-logs");
    let today = OffsetDateTime::now_utc().date();
    let (d1, d2) = (today - Duration::days(3), today - Duration::days(2));
    write_days(&dir, &[(d1, 4), (d2, 6)]).await;
    let before = all_lines(&dir);

    let first = run(rollcall(&dir).arg("archive")).success();

    for (day, records) in [(d1, 4), (d2, 6)] {
        let name = days::day_name(day);
        assert!(
            first
                .stdout
                .contains(&format!("archived {name}: {records} records")),
            "{}",
            first.report()
        );
        assert!(!days::live_path(&dir, day).exists());
    }
    let archives = archived_bytes(&dir, &[d1, d2]);

    let second = run(rollcall(&dir).arg("archive")).success();

    assert!(
        second.stdout.contains("nothing to archive"),
        "{}",
        second.report()
    );
    assert_eq!(
        archived_bytes(&dir, &[d1, d2]),
        archives,
        "a second run changes nothing"
    );
    assert_eq!(all_lines(&dir), before);
}

#[tokio::test]
async fn rollcall_archive_retain_days_deletes_only_older_archives_and_says_which() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("audit-logs");
    let today = OffsetDateTime::now_utc().date();
    let old = today - Duration::days(10);
    let recent = today - Duration::days(2);
    write_days(&dir, &[(old, 3), (recent, 2)]).await;
    run(rollcall(&dir).arg("archive")).success();
    assert!(days::archive_path(&dir, old).exists(), "kept by default");

    let pruned = run(rollcall(&dir).args(["archive", "--retain-days", "7"])).success();

    let old_archive = days::archive_path(&dir, old);
    assert!(
        pruned
            .stdout
            .contains(&format!("deleted {}", old_archive.display())),
        "{}",
        pruned.report()
    );
    assert!(!old_archive.exists());
    assert!(days::archive_path(&dir, recent).exists());
    assert!(
        archive::digest_path(&dir, old).exists(),
        "the digest stays, so the chain does"
    );
    assert_eq!(archive::check_archives(&dir).unwrap(), vec![]);
    assert_eq!(
        archive::retired_chain_end(&dir)
            .unwrap()
            .map(|(seq, _)| seq),
        Some(3)
    );
}

/// Nightly archival of `dir` at `at`, with its own metrics.
fn nightly_on(dir: &Path, clock: &Arc<FakeClock>, at: time::Time) -> (Nightly, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::default());
    let nightly = Nightly::new(dir.to_path_buf(), clock.clone(), at, metrics.clone());
    (nightly, metrics)
}

#[tokio::test(start_paused = true)]
async fn nightly_archival_runs_at_its_time_of_day_and_not_before() {
    let (_temp, dir) = log_with(&[(D2, 2), (D3, 2), (TODAY, 2)]).await;
    let clock = Arc::new(FakeClock::new(START));
    let (nightly, metrics) = nightly_on(&dir, &clock, time::macros::time!(00:05));
    let mut runs = nightly.runs();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(nightly.run(async {
        let _ = stopped.await;
    }));
    tokio::task::yield_now().await;

    // 11:59 later it is 23:59 on the 27th: nothing yet.
    tokio::time::advance(std::time::Duration::from_secs(11 * 3600 + 59 * 60)).await;
    tokio::task::yield_now().await;
    assert_eq!(*runs.borrow(), 0);
    assert!(days::live_path(&dir, D3).exists());

    clock.set(datetime!(2026-11-28 00:05 UTC));
    tokio::time::advance(std::time::Duration::from_secs(6 * 60)).await;
    runs.changed().await.unwrap();

    for day in [D2, D3, TODAY] {
        assert!(!days::live_path(&dir, day).exists(), "{day} is archived");
        assert!(archive::digest_path(&dir, day).exists());
    }
    assert_eq!(metrics.archive_runs.load(Ordering::Relaxed), 1);
    assert_eq!(metrics.archive_failures.load(Ordering::Relaxed), 0);
    stop.send(()).unwrap();
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_failed_nightly_run_is_counted_and_keeps_the_live_files() {
    let (_temp, dir) = log_with(&[(D3, 2), (TODAY, 1)]).await;
    let live = days::live_path(&dir, D3);
    replace_in(&live, "Person 1", "Person X");
    let clock = Arc::new(FakeClock::new(datetime!(2026-11-27 23:00 UTC)));
    let (nightly, metrics) = nightly_on(&dir, &clock, time::macros::time!(00:05));
    let mut runs = nightly.runs();
    let task = tokio::spawn(nightly.run(std::future::pending()));

    runs.changed().await.unwrap();

    assert_eq!(metrics.archive_runs.load(Ordering::Relaxed), 1);
    assert_eq!(metrics.archive_failures.load(Ordering::Relaxed), 1);
    assert!(live.exists());
    task.abort();
}

/// A membership delivery of its own (a distinct event each time).
fn delivery(n: u64) -> Vec<u8> {
    let mut body: serde_json::Value =
        serde_json::from_slice(&fixture("memberships-created-current.json")).unwrap();
    body["data"]["id"] = format!("membership-during-archival-{n}").into();
    serde_json::to_vec(&body).unwrap()
}

#[tokio::test]
async fn the_server_keeps_acknowledging_deliveries_while_nightly_archival_runs() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("audit-logs");
    let old = date!(2026 - 11 - 01);
    write_days(&dir, &[(old, 3), (TODAY, 2)]).await;
    // The old day becomes a pipe: archival blocks reading it until this
    // test writes the day's bytes, so deliveries are answered while the
    // archival is certainly in progress.
    let live = days::live_path(&dir, old);
    let content = std::fs::read(&live).unwrap();
    std::fs::remove_file(&live).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&live)
        .status()
        .unwrap();
    assert!(made.success());

    // The start reads every day once, to learn each membership's state:
    // the pipe gives it the day's bytes.
    let fed = tokio::task::spawn_blocking({
        let (fifo, content) = (live.clone(), content.clone());
        move || {
            use std::io::Write;
            let mut start = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
            start.write_all(&content).unwrap();
        }
    });
    let clock = Arc::new(FakeClock::new(START));
    let soon = (START + Duration::milliseconds(20)).time();
    // The pipe has exactly two readers, the start and the archival; the
    // index, which reads every day too, would be a third and take bytes
    // meant for one of them.
    let app = TestApp::spawn_in(&dir, clock.clone(), |s| {
        s.archive = Some((soon, Options::default()));
        s.index = false;
    })
    .await;
    fed.await.unwrap();
    let mut runs = app.archive_runs.clone().expect("nightly archival is on");

    // Opening a pipe for writing returns once its reader, the archival,
    // has opened it.
    let fifo = live.clone();
    let mut writer = tokio::task::spawn_blocking(move || {
        std::fs::OpenOptions::new().write(true).open(fifo).unwrap()
    })
    .await
    .unwrap();
    for n in 0..5 {
        let (status, answer) = json_of(app.deliver("team", &delivery(n)).await).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["status"], "recorded", "{answer}");
        // Seq 6 is the server's start record.
        assert_eq!(answer["seq"], 7 + n);
    }
    assert_eq!(*runs.borrow(), 0, "archival is still running");
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        writer.write_all(&content).unwrap();
    })
    .await
    .unwrap();
    runs.changed().await.unwrap();

    assert!(!live.exists());
    assert!(days::archive_path(&dir, old).exists());
    assert_eq!(archive::check_archives(&dir).unwrap(), vec![]);
    assert_eq!(app.records().len(), 2 + 5);
    let metrics = app.get("/metrics").await.1;
    assert!(
        metrics.contains("rollcall_archive_runs_total 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("rollcall_archive_failures_total 0\n"),
        "{metrics}"
    );
    app.stop().await;
}

/// What a user sees of the log through the read commands.
fn read_views(dir: &Path) -> Vec<String> {
    [
        vec!["export"],
        vec!["export", "--format", "jsonl"],
        vec![
            "export",
            "--from",
            "2026-11-25",
            "--to",
            "2026-11-27T00:00:00.005Z",
        ],
        vec!["tail", "-n", "12"],
    ]
    .iter()
    .map(|args| run(rollcall(dir).args(args)).success().stdout)
    .collect()
}

#[tokio::test]
async fn export_and_tail_read_the_same_before_and_after_archiving_and_verify_passes() {
    let (_temp, dir) = log_with(&[(D1, 5), (D2, 7), (D3, 3), (TODAY, 2)]).await;
    let before = read_views(&dir);
    assert!(before[0].lines().count() == 1 + 17, "{}", before[0]);
    let archived = run(rollcall(&dir).arg("archive")).success();
    assert!(
        days::archive_path(&dir, D3).exists(),
        "{}",
        archived.report()
    );
    assert!(!days::live_path(&dir, D3).exists());
    assert_eq!(read_views(&dir), before);
    let verified = run(rollcall(&dir).arg("verify")).success();
    assert!(
        verified
            .stdout
            .contains("17 records in 4 days, chain intact"),
        "{}",
        verified.report()
    );
    assert!(
        verified.stdout.contains("4 archived days"),
        "{}",
        verified.report()
    );
}

/// Each way of tampering with archived days, and the file verify must name.
#[tokio::test]
async fn verify_exits_1_naming_the_file_for_each_kind_of_archive_tampering() {
    type Tamper = fn(&Path) -> PathBuf;
    let cases: [(&str, Tamper); 6] = [
        ("a flipped byte in a .gz", |dir| {
            let gz = days::archive_path(dir, D2);
            let mut bytes = std::fs::read(&gz).unwrap();
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0x01;
            std::fs::write(&gz, bytes).unwrap();
            gz
        }),
        ("a deleted archive", |dir| {
            let gz = days::archive_path(dir, D2);
            std::fs::remove_file(&gz).unwrap();
            archive::digest_path(dir, D2)
        }),
        ("a deleted digest", |dir| {
            std::fs::remove_file(archive::digest_path(dir, D2)).unwrap();
            days::archive_path(dir, D2)
        }),
        ("an edited digest", |dir| {
            let digest = archive::digest_path(dir, D2);
            replace_in(
                &digest,
                "\"archived_at\": \"2026",
                "\"archived_at\": \"2025",
            );
            digest
        }),
        ("a live day restored beside its archive", |dir| {
            let live = days::live_path(dir, D2);
            let mut text = Vec::new();
            for line in all_lines(dir)
                .iter()
                .filter(|l| l.windows(12).any(|w| w == b"\"2026-11-25T"))
            {
                text.extend_from_slice(line);
                text.push(b'\n');
            }
            std::fs::write(&live, text).unwrap();
            live
        }),
        ("a day archived twice", |dir| {
            let twice = date!(2026 - 11 - 20);
            std::fs::copy(days::archive_path(dir, D2), days::archive_path(dir, twice)).unwrap();
            std::fs::copy(
                archive::digest_path(dir, D2),
                archive::digest_path(dir, twice),
            )
            .unwrap();
            days::archive_path(dir, twice)
        }),
    ];
    for (what, tamper) in cases {
        let (_temp, dir) = archived_log().await;
        run(rollcall(&dir).arg("verify")).success();
        let named = tamper(&dir);
        let verified = run(rollcall(&dir).arg("verify")).code(1);
        let name = named.file_name().unwrap().to_str().unwrap();
        assert!(
            verified.stdout.contains(name),
            "{what}: verify should name {name}\n{}",
            verified.report()
        );
    }
}

/// Writes one console access line on each of `plan`'s days (audit
/// records too, so the log is not empty) and returns the access day files.
async fn access_days(dir: &Path, plan: &[Date]) -> Vec<PathBuf> {
    write_days(dir, &plan.iter().map(|&d| (d, 1)).collect::<Vec<_>>()).await;
    let clock = Arc::new(FakeClock::new(noon(plan[0])));
    let log = access::AccessLog::open(dir, clock.clone(), Arc::new(Metrics::default())).unwrap();
    for &day in plan {
        clock.set(noon(day));
        let entry = access::Entry {
            action: "page",
            outcome: "ok",
            ..access::Entry::default()
        };
        log.record(&access::Who::default(), &entry).await.unwrap();
    }
    plan.iter()
        .map(|&day| day_path(&dir.join(ACCESS_DIR), day))
        .collect()
}

#[tokio::test]
async fn rollcall_archive_retain_days_deletes_access_days_past_retention_and_verify_passes() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("audit-logs");
    let today = OffsetDateTime::now_utc().date();
    let plan = [
        today - Duration::days(11),
        today - Duration::days(10),
        today - Duration::days(2),
    ];
    let files = access_days(&dir, &plan).await;

    let pruned = run(rollcall(&dir).args(["archive", "--retain-days", "7"])).success();

    for old in &files[..2] {
        assert!(!old.exists(), "{}", pruned.report());
        assert!(
            pruned
                .stdout
                .contains(&format!("deleted {}", old.display())),
            "{}",
            pruned.report()
        );
    }
    assert!(files[2].exists(), "a recent day is kept");
    let verify = run(rollcall(&dir).arg("verify")).success();
    assert!(
        verify
            .stdout
            .contains("console access log: 1 lines, chain intact"),
        "{}",
        verify.report()
    );
}

#[tokio::test]
async fn an_access_day_deleted_by_hand_fails_verify_even_after_retention() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("audit-logs");
    let today = OffsetDateTime::now_utc().date();
    let plan = [
        today - Duration::days(12),
        today - Duration::days(5),
        today - Duration::days(4),
        today - Duration::days(1),
    ];
    let files = access_days(&dir, &plan).await;
    run(rollcall(&dir).args(["archive", "--retain-days", "7"])).success();
    assert!(!files[0].exists(), "retention deleted the oldest day");
    run(rollcall(&dir).arg("verify")).success();

    std::fs::remove_file(&files[1]).unwrap();
    let verify = run(rollcall(&dir).arg("verify")).code(1);
    assert!(
        verify.stdout.contains(&format!(
            "FAULT: {} line 1, seq 3: seq 2 is missing",
            files[2].display()
        )),
        "{}",
        verify.report()
    );
}

#[tokio::test]
async fn with_shipping_on_an_access_day_the_bucket_does_not_hold_is_kept_past_retention() {
    let moto = Moto::start().await;
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("audit-logs");
    let today = OffsetDateTime::now_utc().date();
    let plan = [today - Duration::days(10), today - Duration::days(1)];
    let files = access_days(&dir, &plan).await;
    // The bucket is down: nothing is shipped, so nothing is confirmed.
    let down = format!("http://127.0.0.1:{}", moto::free_port());
    let mut unshipped = rollcall(&dir);
    unshipped.args(["archive", "--retain-days", "7"]);
    moto::configure(
        &mut unshipped,
        &down,
        &format!("s3://{}/site-a", moto.bucket),
    );
    run(&mut unshipped).code(1);
    assert!(files[0].exists(), "kept: no copy is confirmed");

    let mut shipped = rollcall(&dir);
    shipped.args(["archive", "--retain-days", "7"]);
    moto.configure(&mut shipped, "site-a");
    let done = run(&mut shipped).success();
    assert!(!files[0].exists(), "{}", done.report());
    run(rollcall(&dir).arg("verify")).success();
}

#[tokio::test]
async fn an_edited_line_of_the_access_retired_list_fails_verify_naming_it() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("audit-logs");
    let today = OffsetDateTime::now_utc().date();
    let plan = [
        today - Duration::days(11),
        today - Duration::days(10),
        today - Duration::days(1),
    ];
    access_days(&dir, &plan).await;
    run(rollcall(&dir).args(["archive", "--retain-days", "7"])).success();
    run(rollcall(&dir).arg("verify")).success();

    let list = dir.join(ACCESS_DIR).join(RETIRED_FILE);
    let text = std::fs::read_to_string(&list).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    std::fs::write(
        &list,
        text.replacen("\"deleted_at\":\"", "\"deleted_at\":\"1", 1),
    )
    .unwrap();
    let verify = run(rollcall(&dir).arg("verify")).code(1);
    assert!(
        verify
            .stdout
            .contains(&format!("FAULT: {} line 2:", list.display())),
        "{}",
        verify.report()
    );
}
