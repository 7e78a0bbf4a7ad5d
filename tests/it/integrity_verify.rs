//! The integrity rules `verify`, `tail` and retention keep (issue 10):
//! the durable head, the quarantine, the chained retention log, seq that
//! survives retention, and readers that outlast a day being archived.

use std::path::Path;

use rollcall::log::days;
use rollcall::log::head::Head;
use rollcall::log::reader::{self, DayReader};
use rollcall::log::record::Event;

use crate::read_side::Follower;
use crate::support::app::live_records;
use crate::support::bin::{Run, ServerProcess, rollcall, run};
use crate::support::logs::{TestLog, archive_day, read_lines, write_lines};

fn verify(dir: &Path, args: &[&str]) -> Run {
    run(rollcall(dir).arg("verify").args(args))
}

/// A closed log of `n` records on 2026-11-27.
async fn closed_log(n: u32) -> TestLog {
    let mut log = TestLog::over_days(1, n).await;
    log.close();
    log
}

/// The head of the record on `line` of `path`, as the writer stores it.
fn head_of(path: &Path, line: usize) -> Head {
    let record: serde_json::Value = serde_json::from_str(&read_lines(path)[line - 1]).unwrap();
    Head {
        seq: record["seq"].as_u64().unwrap(),
        hash: record["hash"].as_str().unwrap().to_string(),
    }
}

const TODAY: &str = "2026-11-27";

// ---------------------------------------------------------------- item 1

#[tokio::test]
async fn verify_names_the_file_line_and_seq_of_an_edited_last_line() {
    let log = closed_log(3).await;
    let file = log.day_file(TODAY);
    let mut lines = read_lines(&file);
    lines[2] = lines[2].replace("person3@example.com", "someone.else@example.com");
    write_lines(&file, &lines);

    let verified = verify(&log.dir, &[]).code(1);
    assert!(
        verified.stdout.contains(&format!(
            "{} line 3, seq 3: the record does not match its hash",
            file.display()
        )),
        "{}",
        verified.report()
    );
}

#[tokio::test]
async fn verify_lists_each_file_in_the_quarantine() {
    let log = closed_log(2).await;
    let quarantine = log.dir.join("quarantine");
    std::fs::create_dir(&quarantine).unwrap();
    std::fs::write(
        quarantine.join("2026-11-27.jsonl.at-100.1.torn"),
        b"{\"seq\":3",
    )
    .unwrap();
    std::fs::write(quarantine.join("2026-11-26.jsonl.at-7.1.torn"), b"{\"se").unwrap();

    let verified = verify(&log.dir, &[]).success();
    let listed: Vec<&str> = verified
        .stdout
        .lines()
        .filter(|l| l.starts_with("quarantine: "))
        .collect();
    assert_eq!(listed.len(), 2, "{}", verified.report());
    let line = listed
        .iter()
        .find(|l| l.contains("2026-11-27.jsonl.at-100.1.torn"))
        .unwrap();
    assert!(line.contains(", 8 bytes, modified 20"), "{line}");
}

// ---------------------------------------------------------------- item 2

#[tokio::test]
async fn verify_prints_the_head_it_ended_on() {
    let log = closed_log(3).await;
    let head = head_of(&log.day_file(TODAY), 3);
    let verified = verify(&log.dir, &[]).success();
    assert!(
        verified
            .stdout
            .contains(&format!("head: seq 3 hash {}", head.hash)),
        "{}",
        verified.report()
    );
}

#[tokio::test]
async fn verify_fails_when_the_log_was_cut_below_the_durable_head() {
    let log = closed_log(3).await;
    let file = log.day_file(TODAY);
    head_of(&file, 3).store(&log.dir, true).unwrap();
    verify(&log.dir, &[]).success();

    let mut lines = read_lines(&file);
    lines.pop();
    write_lines(&file, &lines);

    let verified = verify(&log.dir, &[]).code(1);
    assert!(
        verified
            .stdout
            .contains("line 2, seq 2: the log ends at seq 2")
            && verified.stdout.contains(".head says seq 3 was durable")
            && verified.stdout.contains("cut from the end"),
        "{}",
        verified.report()
    );
}

#[tokio::test]
async fn verify_fails_when_the_record_at_the_head_has_another_hash() {
    let log = closed_log(3).await;
    let file = log.day_file(TODAY);
    Head {
        seq: 2,
        hash: head_of(&file, 3).hash,
    }
    .store(&log.dir, true)
    .unwrap();

    let verified = verify(&log.dir, &[]).code(1);
    assert!(
        verified
            .stdout
            .contains("line 2, seq 2: the record's hash is")
            && verified.stdout.contains("the record was replaced"),
        "{}",
        verified.report()
    );
}

#[tokio::test]
async fn verify_checks_the_log_against_a_head_kept_elsewhere() {
    let log = closed_log(3).await;
    let file = log.day_file(TODAY);
    let second = head_of(&file, 2);
    let third = head_of(&file, 3);

    verify(&log.dir, &["--expect-head", &format!("2:{}", second.hash)]).success();

    let differs = verify(&log.dir, &["--expect-head", &format!("2:{}", third.hash)]).code(1);
    assert!(
        differs.stdout.contains("--expect-head says seq 2 had hash"),
        "{}",
        differs.report()
    );

    let missing = verify(&log.dir, &["--expect-head", &format!("4:{}", third.hash)]).code(1);
    assert!(
        missing
            .stdout
            .contains("the log ends at seq 3, but --expect-head says seq 4 was durable"),
        "{}",
        missing.report()
    );

    let unreadable = verify(&log.dir, &["--expect-head", "4"]).code(2);
    assert!(
        unreadable.stderr.contains("is not SEQ:HASH"),
        "{}",
        unreadable.report()
    );
}

// ---------------------------------------------------------------- item 9

/// A batch being written: part of a line, no newline yet.
fn append_fragment(path: &Path) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(b"{\"seq\":4,\"received_at\":\"2026-11-27T12:")
        .unwrap();
}

#[tokio::test]
async fn verify_notes_a_fragment_past_the_durable_head_as_being_written() {
    let log = closed_log(3).await;
    let file = log.day_file(TODAY);
    head_of(&file, 3).store(&log.dir, true).unwrap();
    append_fragment(&file);

    let verified = verify(&log.dir, &[]).success();
    assert!(
        verified.stdout.contains(&format!(
            "note: {} line 4 has no newline yet and is past the durable head (seq 3): a batch still being written",
            file.display()
        )) && verified.stdout.contains("head: seq 3 hash"),
        "{}",
        verified.report()
    );
}

#[tokio::test]
async fn verify_reports_a_fragment_the_head_says_was_durable() {
    let log = closed_log(3).await;
    let file = log.day_file(TODAY);
    let mut lines = read_lines(&file);
    head_of(&file, 3).store(&log.dir, true).unwrap();
    lines.pop();
    write_lines(&file, &lines);
    append_fragment(&file);

    let verified = verify(&log.dir, &[]).code(1);
    assert!(
        verified
            .stdout
            .contains("line 3, seq 4: the line is cut short"),
        "{}",
        verified.report()
    );
}

// ---------------------------------------------------------------- item 8

#[tokio::test]
async fn every_reader_reads_a_day_archived_after_it_was_listed() {
    let mut log = TestLog::over_days(2, 3).await;
    log.close();
    let listed = reader::days(&log.dir).unwrap();
    assert!(listed[0].live.is_some() && listed[0].archived.is_none());

    archive_day(&log.dir, TODAY);
    assert!(!log.day_file(TODAY).exists());

    let mut lines = 0;
    reader::in_log_order(
        &listed,
        || 0,
        |block, n: &mut u64| {
            *n = block.lines().count() as u64;
            *n
        },
        |_, n| {
            lines += *n;
            Ok::<_, reader::ReadError>(())
        },
    )
    .expect("the whole-log pass reads the archive");
    assert_eq!(lines, 6);

    let mut day = DayReader::open(&listed[0]).expect("the day opens from its archive");
    let first = day.next_line().unwrap().unwrap().record().unwrap().seq;
    assert_eq!(first, 1);
}

// ---------------------------------------------------------------- items 6, 7

/// A closed log of `n` records written 30 days before the real today, so
/// `rollcall archive --retain-days 7` (on the real clock) archives and
/// then deletes it.
async fn month_old_log(n: u32) -> TestLog {
    let mut log = TestLog::new();
    let long_ago = time::OffsetDateTime::now_utc() - time::Duration::days(30);
    log.clock
        .set(long_ago.date().midnight().assume_utc() + time::Duration::hours(9));
    for _ in 0..n {
        log.append(log.member(Event::Joined)).await;
    }
    log.close();
    log
}

/// `rollcall archive --retain-days 7`, which must delete an archive.
fn archive_and_retire(dir: &Path) {
    let retired = run(rollcall(dir).args(["archive", "--retain-days", "7"])).success();
    assert!(retired.stdout.contains("deleted "), "{}", retired.report());
}

#[tokio::test]
async fn seq_and_chain_continue_after_retention_deleted_every_day_file() {
    let log = month_old_log(3).await;
    let last = head_of(&log.day_file(&log.date_name()), 3);
    archive_and_retire(&log.dir);
    assert!(
        days::list(&log.dir).unwrap().is_empty(),
        "no day file is left"
    );

    let server = ServerProcess::start(&log.dir, |_| {});
    run(rollcall(&log.dir).args(["simulate", "--url", &server.address, "--count", "1"])).success();
    assert!(server.terminate().success());

    let records = live_records(&log.dir);
    assert_eq!(records[0]["seq"], 4, "seq goes on from the deleted days");
    assert_eq!(records[0]["prev_hash"], last.hash.as_str());
    verify(&log.dir, &[]).success();
}

#[test]
fn retain_days_below_the_dedup_window_is_refused() {
    let temp = tempfile::tempdir().unwrap();
    for command in [
        &["archive", "--retain-days", "6"][..],
        &["serve", "--listen", "127.0.0.1:0", "--retain-days", "6"],
    ] {
        let refused = run(rollcall(temp.path()).args(command)).code(2);
        assert!(
            refused.stderr.contains("--retain-days 6 is below 7")
                && refused.stderr.contains("give 7 or more"),
            "{}",
            refused.report()
        );
    }
}

#[tokio::test]
async fn an_archive_deleted_with_a_retirement_written_by_hand_fails_verify() {
    let mut log = TestLog::over_days(2, 2).await;
    log.close();
    archive_day(&log.dir, "2026-11-28");
    verify(&log.dir, &[]).success();

    let archive_dir = log.dir.join("archive");
    let oldest = days::archive_path(&log.dir, days::parse_day_name(TODAY).unwrap());
    let digest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(archive_dir.join(format!("{TODAY}.digest.json"))).unwrap(),
    )
    .unwrap();
    let forged = serde_json::json!({
        "day": TODAY,
        "archive": format!("{TODAY}.jsonl.gz"),
        "compressed_sha256": digest["compressed_sha256"],
        "digest": format!("{TODAY}.digest.json"),
        "digest_sha256": "0".repeat(64),
        "deleted_at": "2026-12-30T00:05:00.000Z",
        "previous_sha256": "0".repeat(64),
    });
    std::fs::write(archive_dir.join("retired.jsonl"), format!("{forged}\n")).unwrap();
    std::fs::remove_file(&oldest).unwrap();

    let verified = verify(&log.dir, &[]).code(1);
    assert!(
        verified.stdout.contains("retired.jsonl line 1: the digest 2026-11-27.digest.json is not the one whose archive was retired"),
        "{}",
        verified.report()
    );
}

#[tokio::test]
async fn a_retirement_slipped_into_the_chain_of_real_ones_fails_verify() {
    let log = month_old_log(2).await;
    archive_and_retire(&log.dir);
    verify(&log.dir, &[]).success();
    let retired = log.dir.join("archive").join("retired.jsonl");
    let mut lines = read_lines(&retired);
    assert_eq!(lines.len(), 1);
    lines.insert(0, lines[0].clone());
    write_lines(&retired, &lines);

    let verified = verify(&log.dir, &[]).code(1);
    assert!(
        verified.stdout.contains(
            "retired.jsonl line 2: the line does not name the hash of the line before it"
        ),
        "{}",
        verified.report()
    );
}

// ---------------------------------------------------------------- item 3

/// Appends whole lines to a day file, as the writer's batch would.
fn append_lines(path: &Path, lines: &[String]) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    for line in lines {
        writeln!(file, "{line}").unwrap();
    }
}

/// Two logs that share their first two records and then part: `a` with
/// one more member, `b` with "Replacement" and "Later". As (a's lines,
/// b's lines), both closed.
async fn parting_logs() -> (TestLog, Vec<String>, Vec<String>) {
    let mut a = TestLog::over_days(1, 3).await;
    a.close();
    let mut b = TestLog::over_days(1, 2).await;
    for name in ["Replacement", "Later"] {
        b.append(crate::support::logs::record(
            Event::Joined,
            "x@example.com",
            name,
            "room-x",
        ))
        .await;
    }
    b.close();
    let (a_lines, b_lines) = (
        read_lines(&a.day_file(TODAY)),
        read_lines(&b.day_file(TODAY)),
    );
    assert_eq!(a_lines[..2], b_lines[..2], "the logs share their start");
    (a, a_lines, b_lines)
}

#[tokio::test]
async fn tail_follow_shows_only_durable_records_and_survives_a_failed_batch_cut_off() {
    let (log, a_lines, b_lines) = parting_logs().await;
    let file = log.day_file(TODAY);
    // Seq 3 is on disk but its batch is not durable yet.
    head_of(&file, 2).store(&log.dir, false).unwrap();

    let tail = Follower::start(&log.dir, &["-n", "5", "--json"]);
    let seq =
        |line: String| serde_json::from_str::<serde_json::Value>(&line).unwrap()["seq"].clone();
    assert_eq!(seq(tail.next_line()), 1);
    assert_eq!(seq(tail.next_line()), 2);

    // The batch fails and is cut off again; the next batch takes seq 3.
    write_lines(&file, &a_lines[..2]);
    append_lines(&file, &b_lines[2..3]);
    let replacement = Head {
        seq: 3,
        hash: head_of(&file, 3).hash,
    };
    replacement.store(&log.dir, false).unwrap();

    let shown: serde_json::Value = serde_json::from_str(&tail.next_line()).unwrap();
    assert_eq!(shown["seq"], 3);
    assert_eq!(
        shown["person_display_name"], "Replacement",
        "not the batch that failed"
    );

    append_lines(&file, &b_lines[3..4]);
    head_of(&file, 4).store(&log.dir, false).unwrap();
    let later: serde_json::Value = serde_json::from_str(&tail.next_line()).unwrap();
    assert_eq!(later["person_display_name"], "Later");
}

#[tokio::test]
async fn a_well_formed_retirement_of_a_day_newer_than_a_kept_archive_fails_verify() {
    use sha2::Digest as _;
    let mut log = TestLog::over_days(3, 1).await;
    log.close();
    archive_day(&log.dir, "2026-11-29");
    let middle = "2026-11-28";
    let archive_dir = log.dir.join("archive");
    let digest_name = format!("{middle}.digest.json");
    let digest_bytes = std::fs::read(archive_dir.join(&digest_name)).unwrap();
    let digest: serde_json::Value = serde_json::from_slice(&digest_bytes).unwrap();
    let forged = serde_json::json!({
        "day": middle,
        "archive": format!("{middle}.jsonl.gz"),
        "compressed_sha256": digest["compressed_sha256"],
        "digest": digest_name,
        "digest_sha256": hex::encode(sha2::Sha256::digest(&digest_bytes)),
        "deleted_at": "2026-12-30T00:05:00.000Z",
        "previous_sha256": "0".repeat(64),
    });
    std::fs::write(archive_dir.join("retired.jsonl"), format!("{forged}\n")).unwrap();
    std::fs::remove_file(archive_dir.join(format!("{middle}.jsonl.gz"))).unwrap();

    let verified = verify(&log.dir, &[]).code(1);
    assert!(
        verified
            .stdout
            .contains("named as retired, but an older archive is kept"),
        "{}",
        verified.report()
    );
}

// ---------------------------------------------------------------- verify --json

/// Each line of `verify --json`, parsed: every one must be a JSON object.
fn json_lines(verified: &Run) -> Vec<serde_json::Value> {
    verified
        .stdout
        .lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{line:?} is not JSON ({e})\n{}", verified.report()));
            assert!(value.is_object(), "{line}");
            value
        })
        .collect()
}

#[tokio::test]
async fn verify_json_of_an_intact_log_is_the_summary_with_the_head() {
    let log = closed_log(3).await;
    let head = head_of(&log.day_file(TODAY), 3);

    let verified = verify(&log.dir, &["--json"]).success();
    let lines = json_lines(&verified);

    assert_eq!(
        lines,
        vec![serde_json::json!({
            "kind": "summary",
            "verdict": "intact",
            "records": 3,
            "days": 1,
            "archived": 0,
            "head": {"seq": 3, "hash": head.hash},
            "receiver_starts": 0,
            "clean_stops": 0,
            "starts_after_crash": 0,
            "records_by_source": {"webhook": 3, "reconciled": 0, "events_api": 0},
        })],
        "{}",
        verified.report()
    );
}

#[tokio::test]
async fn verify_json_of_a_tampered_log_names_file_line_and_seq_then_sums_up() {
    let log = closed_log(3).await;
    let file = log.day_file(TODAY);
    let mut lines = read_lines(&file);
    lines[1] = lines[1].replace("person2@example.com", "someone.else@example.com");
    write_lines(&file, &lines);

    let verified = verify(&log.dir, &["--json"]).code(1);
    let lines = json_lines(&verified);

    assert_eq!(lines.len(), 2, "{}", verified.report());
    let fault = &lines[0];
    assert_eq!(fault["kind"], "fault");
    assert_eq!(fault["file"], file.display().to_string());
    assert_eq!(
        (fault["line"].as_u64(), fault["seq"].as_u64()),
        (Some(2), Some(2))
    );
    assert!(
        fault["problem"]
            .as_str()
            .unwrap()
            .contains("does not match its hash"),
        "{fault}"
    );
    let summary = &lines[1];
    assert_eq!(summary["kind"], "summary");
    assert_eq!(summary["verdict"], "faulty");
    assert_eq!(summary["records"], 1, "one record checks out before it");
    assert_eq!(summary["head"], serde_json::Value::Null);
}

#[tokio::test]
async fn verify_json_lists_archive_faults_and_the_quarantine_as_objects_of_their_own() {
    let mut log = TestLog::over_days(2, 2).await;
    log.close();
    archive_day(&log.dir, TODAY);
    let quarantine = log.dir.join("quarantine");
    std::fs::create_dir(&quarantine).unwrap();
    std::fs::write(quarantine.join("2026-11-28.jsonl.at-9.1.torn"), b"{\"se").unwrap();
    let archive = days::archive_path(&log.dir, days::parse_day_name(TODAY).unwrap());
    std::fs::remove_file(archive.with_file_name(format!("{TODAY}.digest.json"))).unwrap();

    let verified = verify(&log.dir, &["--json"]).code(1);
    let lines = json_lines(&verified);

    let kinds: Vec<&str> = lines.iter().map(|l| l["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["fault", "quarantine", "summary"],
        "{}",
        verified.report()
    );
    assert_eq!(lines[0]["file"], archive.display().to_string());
    assert_eq!(lines[0]["line"], serde_json::Value::Null);
    assert_eq!(lines[1]["bytes"], 4);
    assert_eq!(lines[2]["verdict"], "faulty");
    assert_eq!(
        (lines[2]["days"].as_u64(), lines[2]["archived"].as_u64()),
        (Some(2), Some(1))
    );
}
