//! The integrity rules `verify`, `tail` and retention keep (issue 10):
//! the durable head, the quarantine, the chained retention log, seq that
//! survives retention, and readers that outlast a day being archived.

use std::path::Path;

use rollcall::log::head::Head;
use rollcall::log::reader::{self, DayReader};

use crate::support::bin::{Run, rollcall, run};
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
        verified
            .stdout
            .contains(&format!("{} line 3, seq 3: the record does not match its hash", file.display())),
        "{}",
        verified.report()
    );
}

#[tokio::test]
async fn verify_lists_each_file_in_the_quarantine() {
    let log = closed_log(2).await;
    let quarantine = log.dir.join("quarantine");
    std::fs::create_dir(&quarantine).unwrap();
    std::fs::write(quarantine.join("2026-11-27.jsonl.at-100.1.torn"), b"{\"seq\":3").unwrap();
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
        verified.stdout.contains(&format!("head: seq 3 hash {}", head.hash)),
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
        verified.stdout.contains("line 2, seq 2: the log ends at seq 2")
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
        verified.stdout.contains("line 2, seq 2: the record's hash is")
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
    assert!(unreadable.stderr.contains("is not SEQ:HASH"), "{}", unreadable.report());
}

// ---------------------------------------------------------------- item 9

/// A batch being written: part of a line, no newline yet.
fn append_fragment(path: &Path) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(b"{\"seq\":4,\"received_at\":\"2026-11-27T12:").unwrap();
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
        verified.stdout.contains("line 3, seq 4: the line is cut short"),
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
