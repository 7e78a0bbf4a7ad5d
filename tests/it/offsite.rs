//! Off the machine: archives, digests and head checkpoints shipped to a
//! real S3 implementation (moto) with Object Lock, checked against by
//! `verify --remote`, and restored from, all through the real binary.

use std::path::Path;
use std::process::Command;

use rollcall::log::days;
use rollcall::log::head::Head;
use rollcall::log::record::{Event, Record};
use time::{Duration, OffsetDateTime};

use crate::support::bin::{Run, ServerProcess, rollcall, run};
use crate::support::logs::{TestLog, read_lines, tamper_archive, write_lines};
use crate::support::moto::{self, Moto};
use crate::support::{eventually, metrics};

const PREFIX: &str = "site-a";
/// The receiver every test's log is, shipping to `PREFIX/RECEIVER/`.
const RECEIVER: &str = "site-a-1";

/// The bucket's key of a log's object `name`.
fn object_key(name: &str) -> String {
    format!("{PREFIX}/{RECEIVER}/{name}")
}

/// Points `command` at the bucket, as receiver [`RECEIVER`].
fn ship_as_receiver(moto: &Moto, command: &mut Command) {
    moto.configure(command, PREFIX);
    command.env("ROLLCALL_RECEIVER", RECEIVER);
}

fn with_bucket(moto: &Moto, dir: &Path, args: &[&str]) -> Run {
    let mut command = rollcall(dir);
    command.args(args);
    ship_as_receiver(moto, &mut command);
    run(&mut command)
}

/// A closed log over 2026-11-27 and -28, `per_day` records each: logs
/// of different sizes have archives of the same names and other bytes.
pub(crate) async fn closed_log(per_day: u32) -> TestLog {
    let mut log = TestLog::over_days(2, per_day).await;
    log.close();
    log
}

/// The archives and digests in `DIR/archive`, as object names, sorted.
pub(crate) fn local_objects(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("archive"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".jsonl.gz") || n.ends_with(".digest.json"))
        .map(|n| format!("archive/{n}"))
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn archive_ships_every_archive_and_digest_locked_and_a_second_run_uploads_nothing() {
    let moto = Moto::start().await;
    let log = closed_log(4).await;

    let first = with_bucket(
        &moto,
        &log.dir,
        &[
            "archive",
            "--s3-lock-days",
            "1",
            "--s3-lock-mode",
            "governance",
        ],
    )
    .success();

    let objects = local_objects(&log.dir);
    assert_eq!(objects.len(), 4, "two days, archive and digest each");
    let keys = moto.keys().await;
    for name in &objects {
        assert!(
            first.stdout.contains(&format!("shipped {name}")),
            "{}",
            first.report()
        );
        let key = object_key(name);
        assert!(keys.contains(&key), "{key} not in {keys:?}");
        assert_eq!(
            moto.get(&key).await,
            std::fs::read(log.dir.join(name)).unwrap()
        );
        let (mode, until) = moto.retention(&key).await;
        assert_eq!(mode, "GOVERNANCE", "{key}");
        assert!(!until.is_empty(), "{key} has no retain-until date");
    }
    let head = Head::read(&log.dir).unwrap().unwrap();
    assert!(
        keys.contains(&object_key(&format!("checkpoints/{:020}.json", head.seq))),
        "{keys:?}"
    );
    let archive_key = object_key(&objects[1]);
    let refused = moto.delete_version(&archive_key).await;
    assert!(
        (400..500).contains(&refused),
        "deleting a locked version answered {refused}"
    );
    assert_eq!(
        moto.get(&archive_key).await,
        std::fs::read(log.dir.join(&objects[1])).unwrap()
    );

    let second = with_bucket(&moto, &log.dir, &["archive"]).success();

    assert!(
        !second.stdout.contains("shipped archive/"),
        "{}",
        second.report()
    );
    assert!(
        second.stdout.contains("nothing to ship"),
        "{}",
        second.report()
    );
    assert_eq!(moto.keys().await, keys);
    with_bucket(&moto, &log.dir, &["verify", "--remote"]).success();
}

#[tokio::test]
async fn a_store_down_during_archival_keeps_the_archives_and_the_next_run_ships_them() {
    let moto = Moto::start().await;
    let mut log = TestLog::new();
    let old = OffsetDateTime::now_utc() - Duration::days(12);
    log.clock.set(old);
    for _ in 0..2 {
        for _ in 0..3 {
            log.append(log.member(Event::Joined)).await;
        }
        log.next_day();
    }
    log.close();
    let down = format!("http://127.0.0.1:{}", moto::free_port());

    let mut command = rollcall(&log.dir);
    command
        .args(["archive", "--retain-days", "7"])
        .env("ROLLCALL_RECEIVER", RECEIVER);
    moto::configure(
        &mut command,
        &down,
        &format!("s3://{}/{PREFIX}", moto.bucket),
    );
    let failed = run(&mut command).code(1);

    assert!(failed.stdout.contains("NOT SHIPPED"), "{}", failed.report());
    assert!(
        !failed.stderr.contains("testing-secret-key"),
        "{}",
        failed.report()
    );
    let archived = local_objects(&log.dir);
    assert_eq!(archived.len(), 4, "{}", failed.report());
    assert!(moto.keys().await.is_empty());

    let shipped = with_bucket(&moto, &log.dir, &["archive", "--retain-days", "7"]).success();

    let keys = moto.keys().await;
    for name in &archived {
        assert!(keys.contains(&object_key(name)), "{}", shipped.report());
    }
    for name in archived.iter().filter(|n| n.ends_with(".gz")) {
        assert!(
            shipped
                .stdout
                .contains(&format!("deleted {}", log.dir.join(name).display())),
            "past retention and now in the bucket: {}",
            shipped.report()
        );
    }
    let verified = with_bucket(&moto, &log.dir, &["verify", "--remote"]).success();
    assert!(
        verified.stdout.contains("deleted here by retention"),
        "{}",
        verified.report()
    );
}

#[tokio::test]
async fn an_archive_edited_after_shipping_fails_verify_remote() {
    let moto = Moto::start().await;
    let log = closed_log(3).await;
    with_bucket(&moto, &log.dir, &["archive"]).success();
    tamper_archive(&log.dir, "2026-11-27", |lines| {
        lines[1] = lines[1].replace("person2@example.com", "someone@example.com");
    });

    let failed = with_bucket(&moto, &log.dir, &["verify", "--remote"]).code(1);

    assert!(
        failed
            .stdout
            .contains("2026-11-27.jsonl.gz: differs from its object"),
        "{}",
        failed.report()
    );
}

/// A log of two closed days and today's live file, shipped with a head
/// checkpoint.
async fn shipped_with_live_day(moto: &Moto) -> TestLog {
    let mut log = TestLog::new();
    let now = OffsetDateTime::now_utc();
    log.clock.set(now - Duration::days(2));
    for _ in 0..2 {
        for _ in 0..3 {
            log.append(log.member(Event::Joined)).await;
        }
        log.next_day();
    }
    log.clock.set(now);
    for _ in 0..5 {
        log.append(log.member(Event::Joined)).await;
    }
    log.close();
    let shipped = with_bucket(moto, &log.dir, &["archive"]).success();
    assert!(
        shipped.stdout.contains("checkpointed the head: seq 11"),
        "{}",
        shipped.report()
    );
    log
}

/// Rewrites today's live file from `lines` as an attacker would: every
/// record re-hashed from the first, and `.head` moved to the new end, so
/// every local check passes.
fn rewrite_today(log: &TestLog, edit: impl FnOnce(&mut Vec<Record>)) {
    let path = days::live_path(&log.dir, OffsetDateTime::now_utc().date());
    let mut records: Vec<Record> = read_lines(&path)
        .iter()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    edit(&mut records);
    let (lines, head) = rechain(&mut records);
    write_lines(&path, &lines);
    head.store(&log.dir, true).unwrap();
    run(rollcall(&log.dir).arg("verify")).success();
}

/// Re-hashes `records` from the first one's `prev_hash`, as an attacker
/// who edited them would: their lines, and the head they end at.
fn rechain(records: &mut [Record]) -> (Vec<String>, Head) {
    let mut previous = records[0].prev_hash.clone();
    let mut lines = Vec::new();
    for record in records.iter_mut() {
        record.prev_hash = previous;
        let line = record.seal();
        previous = record.hash.clone();
        lines.push(String::from_utf8(line).unwrap().trim_end().to_string());
    }
    let last = records.last().unwrap();
    let head = Head {
        seq: last.seq,
        hash: last.hash.clone(),
    };
    (lines, head)
}

#[tokio::test]
async fn a_chain_rewritten_end_to_end_on_the_host_fails_verify_remote_naming_the_checkpoint() {
    let moto = Moto::start().await;
    let log = shipped_with_live_day(&moto).await;
    rewrite_today(&log, |records| {
        records[1].person_email = Some("someone-else@example.com".into());
    });

    let failed = with_bucket(&moto, &log.dir, &["verify", "--remote"]).code(1);

    assert!(
        failed
            .stdout
            .contains(&format!("checkpoint checkpoints/{:020}.json", 11))
            && failed.stdout.contains("rewritten"),
        "{}",
        failed.report()
    );
}

#[tokio::test]
async fn a_log_cut_at_its_end_fails_verify_remote_naming_the_checkpoint() {
    let moto = Moto::start().await;
    let log = shipped_with_live_day(&moto).await;
    rewrite_today(&log, |records| records.truncate(3));

    let failed = with_bucket(&moto, &log.dir, &["verify", "--remote"]).code(1);

    assert!(
        failed.stdout.contains(&format!(
            "the log ends at seq 9, but checkpoint checkpoints/{:020}.json",
            11
        )),
        "{}",
        failed.report()
    );
}

#[tokio::test]
async fn restore_into_a_new_directory_gives_the_same_export_and_verifies() {
    let moto = Moto::start().await;
    let log = closed_log(5).await;
    with_bucket(&moto, &log.dir, &["archive"]).success();
    let temp = tempfile::tempdir().unwrap();
    let restored = temp.path().join("restored");

    let done = with_bucket(&moto, &restored, &["restore"]).success();

    assert!(
        done.stdout.contains("restored 5 objects"),
        "{}",
        done.report()
    );
    let export = |dir: &Path| run(rollcall(dir).arg("export")).success().stdout;
    assert_eq!(export(&restored), export(&log.dir));
    run(rollcall(&restored).arg("verify")).success();
    with_bucket(&moto, &restored, &["verify", "--remote"]).success();
    let again = with_bucket(&moto, &restored, &["restore"]).code(2);
    assert!(again.stderr.contains("is not empty"), "{}", again.report());
}

#[test]
fn credentials_never_show_in_help() {
    let mut command = Command::new(crate::support::bin::BIN);
    command
        .args(["archive", "--help"])
        .env("AWS_SECRET_ACCESS_KEY", "testing-secret-key");
    let help = run(&mut command).success();
    assert!(help.stdout.contains("--s3-url"), "{}", help.report());
    assert!(!help.stdout.contains("testing-secret-key"));
}

#[tokio::test]
async fn serve_ships_what_earlier_runs_could_not_and_checkpoints_the_head_at_shutdown() {
    let moto = Moto::start().await;
    let log = closed_log(3).await;
    run(rollcall(&log.dir).arg("archive")).success();
    let unshipped = local_objects(&log.dir);

    let server = ServerProcess::start(&log.dir, |command| {
        ship_as_receiver(&moto, command);
        command.args(["--checkpoint-every", "1h"]);
    });
    eventually("the archives in the bucket", || async {
        metrics(&server.address)
            .await
            .contains("rollcall_offsite_shipped_objects_total 4")
    })
    .await;
    let text = metrics(&server.address).await;
    assert!(text.contains("rollcall_unshipped_archives 0"), "{text}");
    let keys = moto.keys().await;
    for name in &unshipped {
        assert!(keys.contains(&object_key(name)), "{keys:?}");
    }
    assert!(server.terminate().success());

    let head = Head::read(&log.dir).unwrap().unwrap();
    let checkpoint = moto
        .get(&object_key(&format!("checkpoints/{:020}.json", head.seq)))
        .await;
    let checkpoint: serde_json::Value = serde_json::from_slice(&checkpoint).unwrap();
    assert_eq!(
        checkpoint["hash"],
        head.hash.as_str(),
        "the head after the stop record"
    );
    with_bucket(&moto, &log.dir, &["verify", "--remote"]).success();
}

#[tokio::test]
async fn serve_with_the_store_down_stays_healthy_and_shows_the_unshipped_archives() {
    let log = closed_log(3).await;
    run(rollcall(&log.dir).arg("archive")).success();
    let down = format!("http://127.0.0.1:{}", moto::free_port());

    let server = ServerProcess::start(&log.dir, |command| {
        moto::configure(command, &down, "s3://rollcall-audit/site-a");
    });
    eventually("a failed shipping run", || async {
        metrics(&server.address)
            .await
            .contains("rollcall_offsite_ship_failures_total 1")
    })
    .await;

    let text = metrics(&server.address).await;
    assert!(text.contains("rollcall_unshipped_archives 2"), "{text}");
    let age = text
        .lines()
        .find_map(|l| l.strip_prefix("rollcall_oldest_unshipped_archive_age_seconds "))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap();
    assert!(age > 0, "{text}");
    let health = reqwest::get(format!("{}/healthz", server.address))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert!(!server.stderr().contains("testing-secret-key"));
    assert!(server.terminate().success());
}

/// Object Lock for the tests: a day, in a mode that moto lets expire.
const LOCKED_A_DAY: [&str; 4] = ["--s3-lock-days", "1", "--s3-lock-mode", "governance"];

/// The records of every archived day, with the day each was in.
fn archived_records(dir: &Path) -> Vec<(String, Record)> {
    let mut out = Vec::new();
    for name in local_objects(dir)
        .iter()
        .filter_map(|n| n.strip_prefix("archive/")?.strip_suffix(".jsonl.gz"))
    {
        let path = days::archive_path(dir, days::parse_day_name(name).unwrap());
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::MultiGzDecoder::new(std::fs::File::open(&path).unwrap()),
            &mut text,
        )
        .unwrap();
        for line in text.lines() {
            out.push((name.to_string(), serde_json::from_str(line).unwrap()));
        }
    }
    out
}

/// What someone on the host with the bucket's credentials can do: edit an
/// archived record, re-hash the chain from the first record, archive the
/// days again from scratch (new digests, `.head` moved, so every local
/// check passes), then put the new archives, digests and the head
/// checkpoint over the old names with plain PutObject (no If-None-Match).
async fn rewrite_and_overwrite(moto: &Moto, dir: &Path, edit: impl FnOnce(&mut [Record])) {
    let (days_of, mut records): (Vec<String>, Vec<Record>) =
        archived_records(dir).into_iter().unzip();
    edit(&mut records);
    let (lines, head) = rechain(&mut records);
    let mut by_day: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (day, line) in days_of.iter().zip(lines) {
        by_day.entry(day.clone()).or_default().push(line);
    }
    std::fs::remove_dir_all(dir.join("archive")).unwrap();
    for (day, lines) in &by_day {
        write_lines(
            &days::live_path(dir, days::parse_day_name(day).unwrap()),
            lines,
        );
    }
    head.store(dir, true).unwrap();
    run(rollcall(dir).arg("archive")).success();
    run(rollcall(dir).arg("verify")).success();
    for name in local_objects(dir) {
        let key = object_key(&name);
        moto.put_plain(&key, &std::fs::read(dir.join(&name)).unwrap())
            .await;
    }
    let checkpoint = serde_json::json!({
        "seq": head.seq,
        "hash": head.hash,
        "time": "2026-11-29T00:00:00Z",
    });
    moto.put_plain(
        &object_key(&format!("checkpoints/{:020}.json", head.seq)),
        checkpoint.to_string().as_bytes(),
    )
    .await;
}

#[tokio::test]
async fn a_log_rewritten_and_put_over_its_objects_fails_verify_remote_naming_every_overwritten_key()
{
    let moto = Moto::start().await;
    let log = closed_log(30).await;
    with_bucket(&moto, &log.dir, &[&["archive"][..], &LOCKED_A_DAY].concat()).success();
    rewrite_and_overwrite(&moto, &log.dir, |records| {
        records[9].person_email = Some("someone-else@example.com".into());
    })
    .await;
    let checkpoint = format!("checkpoints/{:020}.json", 60);
    assert_eq!(moto.version_count(&object_key(&checkpoint)).await, 2);

    let failed = with_bucket(&moto, &log.dir, &["verify", "--remote"]).code(1);

    for name in local_objects(&log.dir).iter().chain([&checkpoint]) {
        assert!(
            failed
                .stdout
                .lines()
                .any(|l| l.contains(&format!("{name}: 2 versions"))),
            "{name} not named as overwritten: {}",
            failed.report()
        );
    }
    assert!(
        failed
            .stdout
            .contains("2026-11-27.jsonl.gz: differs from its object"),
        "{}",
        failed.report()
    );
    assert!(
        failed.stdout.contains(&format!("checkpoint {checkpoint}"))
            && failed.stdout.contains("rewritten"),
        "{}",
        failed.report()
    );
}

#[tokio::test]
async fn verify_remote_names_objects_unlocked_or_locked_for_less_than_configured() {
    let moto = Moto::start().await;
    let log = closed_log(3).await;
    with_bucket(&moto, &log.dir, &[&["archive"][..], &LOCKED_A_DAY].concat()).success();
    let as_shipped = ["--s3-lock-days", "1", "--s3-lock-mode", "governance"];
    with_bucket(
        &moto,
        &log.dir,
        &[&["verify", "--remote"][..], &as_shipped].concat(),
    )
    .success();

    let longer = with_bucket(
        &moto,
        &log.dir,
        &[
            "verify",
            "--remote",
            "--s3-lock-days",
            "30",
            "--s3-lock-mode",
            "governance",
        ],
    )
    .code(1);
    let stricter = with_bucket(
        &moto,
        &log.dir,
        &["verify", "--remote", "--s3-lock-days", "1"],
    )
    .code(1);

    for name in local_objects(&log.dir) {
        assert!(
            longer
                .stdout
                .lines()
                .any(|l| l.contains(&name) && l.contains("less than the 30 days")),
            "{name}: {}",
            longer.report()
        );
        assert!(
            stricter
                .stdout
                .lines()
                .any(|l| l.contains(&name) && l.contains("GOVERNANCE, not COMPLIANCE")),
            "{name}: {}",
            stricter.report()
        );
    }

    let unlocked = closed_log(3).await;
    let mut command = rollcall(&unlocked.dir);
    command.arg("archive");
    moto::configure(
        &mut command,
        &moto.endpoint,
        &format!("s3://{}/site-b", moto.bucket),
    );
    run(&mut command).success();
    let mut command = rollcall(&unlocked.dir);
    command.args(["verify", "--remote", "--s3-lock-days", "1"]);
    moto::configure(
        &mut command,
        &moto.endpoint,
        &format!("s3://{}/site-b", moto.bucket),
    );
    let failed = run(&mut command).code(1);
    for name in local_objects(&unlocked.dir) {
        assert!(
            failed
                .stdout
                .lines()
                .any(|l| l.contains(&name) && l.contains("not locked")),
            "{name}: {}",
            failed.report()
        );
    }
}

#[tokio::test]
async fn archive_serve_and_verify_remote_warn_of_a_bucket_without_object_lock() {
    let moto = Moto::start_with(false).await;
    let log = closed_log(3).await;

    let shipped = with_bucket(&moto, &log.dir, &["archive"]).success();
    let verified = with_bucket(&moto, &log.dir, &["verify", "--remote"]).code(1);

    assert!(
        shipped.stderr.contains("has no Object Lock"),
        "{}",
        shipped.report()
    );
    assert!(
        verified.stdout.contains("has no Object Lock"),
        "{}",
        verified.report()
    );
    let server = ServerProcess::start(&log.dir, |command| {
        ship_as_receiver(&moto, command);
        command.args(["--checkpoint-every", "1h"]);
    });
    eventually("the warning in serve's log", || async {
        server.stderr().contains("has no Object Lock")
    })
    .await;
    assert!(server.terminate().success());
}

/// A closed log of `old` records 11 days ago and `today` records today.
async fn old_day_and_today(old: u32, today: u32) -> (TestLog, String) {
    let mut log = TestLog::new();
    let now = OffsetDateTime::now_utc();
    log.clock.set(now - Duration::days(11));
    for _ in 0..old {
        log.append(log.member(Event::Joined)).await;
    }
    let day = log.date_name();
    log.clock.set(now);
    for _ in 0..today {
        log.append(log.member(Event::Joined)).await;
    }
    log.close();
    (log, day)
}

#[tokio::test]
async fn junk_under_an_archives_name_in_the_bucket_fails_archive_and_retention_keeps_the_local_copy()
 {
    let moto = Moto::start().await;
    let (log, day) = old_day_and_today(40, 10).await;
    let name = format!("archive/{day}.jsonl.gz");
    moto.put_plain(&object_key(&name), b"not an archive").await;

    let failed = with_bucket(&moto, &log.dir, &["archive", "--retain-days", "7"]).code(1);

    assert!(
        failed
            .stdout
            .lines()
            .any(|l| l.starts_with("MISMATCH") && l.contains(&name)),
        "{}",
        failed.report()
    );
    assert!(
        log.dir.join(&name).exists(),
        "the only real copy was deleted: {}",
        failed.report()
    );
    let export = run(rollcall(&log.dir).arg("export")).success();
    let header = 1;
    assert_eq!(
        export.stdout.lines().count(),
        40 + 10 + header,
        "{}",
        export.report()
    );
    let verified = with_bucket(&moto, &log.dir, &["verify", "--remote"]).code(1);
    assert!(
        verified
            .stdout
            .contains(&format!("{day}.jsonl.gz: differs from its object")),
        "{}",
        verified.report()
    );
}

#[tokio::test]
async fn serve_counts_a_bucket_object_that_does_not_match_its_archive() {
    let moto = Moto::start().await;
    let log = closed_log(3).await;
    run(rollcall(&log.dir).arg("archive")).success();
    let name = "archive/2026-11-27.jsonl.gz";
    moto.put_plain(&object_key(name), b"not an archive").await;

    let server = ServerProcess::start(&log.dir, |command| {
        ship_as_receiver(&moto, command);
        command.args(["--checkpoint-every", "1h"]);
    });
    // The run's gauges are set at its end, after the alarm.
    eventually(
        "the mismatch counted and the archive left unshipped",
        || async {
            let text = metrics(&server.address).await;
            text.contains("rollcall_offsite_mismatches_total 1")
                && text.contains("rollcall_unshipped_archives 1")
        },
    )
    .await;

    assert!(server.stderr().contains(name), "{}", server.stderr());
    assert!(server.terminate().success());
}

#[tokio::test]
async fn a_checkpoint_name_holding_another_head_fails_archive() {
    let moto = Moto::start().await;
    let log = closed_log(3).await;
    let head = Head::read(&log.dir).unwrap().unwrap();
    let name = format!("checkpoints/{:020}.json", head.seq);
    let forged = serde_json::json!({"seq": head.seq, "hash": "0".repeat(64), "time": "2026-11-29T00:00:00Z"});
    moto.put_plain(&object_key(&name), forged.to_string().as_bytes())
        .await;

    let failed = with_bucket(&moto, &log.dir, &["archive"]).code(1);

    assert!(
        failed
            .stdout
            .lines()
            .any(|l| l.starts_with("MISMATCH") && l.contains(&name)),
        "{}",
        failed.report()
    );
}

#[tokio::test]
async fn a_retired_archive_whose_object_does_not_match_its_digest_fails_verify_remote() {
    let moto = Moto::start().await;
    let (log, day) = old_day_and_today(5, 2).await;
    let name = format!("archive/{day}.jsonl.gz");
    run(rollcall(&log.dir).args(["archive", "--retain-days", "7"])).success();
    assert!(!log.dir.join(&name).exists(), "retired");
    // As a receiver that trusted a name would have left it: junk under the
    // archive's name, its digest shipped.
    moto.put_plain(&object_key(&name), b"not an archive").await;
    with_bucket(&moto, &log.dir, &["archive"]).success();

    let failed = with_bucket(&moto, &log.dir, &["verify", "--remote"]).code(1);

    assert!(
        failed
            .stdout
            .lines()
            .any(|l| l.starts_with("FAULT") && l.contains(&name) && l.contains("digest")),
        "{}",
        failed.report()
    );
}

#[tokio::test]
async fn a_restore_refuses_a_junk_archive_naming_it_leaves_no_directory_and_succeeds_once_repaired()
{
    let moto = Moto::start().await;
    let log = closed_log(5).await;
    with_bucket(&moto, &log.dir, &["archive"]).success();
    let name = "archive/2026-11-28.jsonl.gz";
    let key = object_key(name);
    let real = moto.get(&key).await;
    assert!((200..300).contains(&moto.delete_version(&key).await));
    moto.put_plain(&key, b"not an archive").await;
    let temp = tempfile::tempdir().unwrap();
    let restored = temp.path().join("restored");

    let failed = with_bucket(&moto, &restored, &["restore"]).code(2);

    assert!(
        failed.stderr.contains(name) && failed.stderr.contains("digest"),
        "{}",
        failed.report()
    );
    let left: Vec<_> = std::fs::read_dir(temp.path()).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");

    assert!((200..300).contains(&moto.delete_version(&key).await));
    moto.put_plain(&key, &real).await;
    with_bucket(&moto, &restored, &["restore"]).success();

    let export = |dir: &Path| run(rollcall(dir).arg("export")).success().stdout;
    assert_eq!(export(&restored), export(&log.dir));
    run(rollcall(&restored).arg("verify")).success();
}
