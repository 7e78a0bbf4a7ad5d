//! `rollcall export`, `tail` and `verify`, run as the real binary over logs
//! written by the real writer.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use rollcall::log::record::{Event, GENESIS_HASH, Record};

use crate::support::bin::{Run, rollcall, run, wait_bounded};
use crate::support::logs::{
    TestLog, archive_day, fixture_record, read_lines, record, tamper_archive, write_lines,
};

fn export(dir: &Path, args: &[&str]) -> Run {
    run(rollcall(dir).arg("export").args(args)).success()
}

/// The data rows of a CSV export, parsed back.
fn rows(csv: &str) -> Vec<csv::StringRecord> {
    csv::Reader::from_reader(csv.as_bytes())
        .records()
        .map(|r| r.expect("the export is valid CSV"))
        .collect()
}

/// One column of every row.
pub(crate) fn column(csv: &str, name: &str) -> Vec<String> {
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let index = reader
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name}"));
    rows(csv).iter().map(|r| r[index].to_string()).collect()
}

fn named(name: &str) -> Record {
    record(Event::Joined, "someone@example.com", name, "room-1")
}

// ---------------------------------------------------------------- export

#[tokio::test]
async fn export_of_the_fixtures_gives_exactly_the_expected_csv() {
    let log = TestLog::new();
    log.append(fixture_record("memberships-created.json")).await;
    log.append(fixture_record("memberships-deleted.json")).await;
    let mut titled = fixture_record("memberships-created-current.json");
    titled.room_title = Some("Team room".into());
    log.append(titled).await;

    let out = export(&log.dir, &[]);

    let expected = "\
seq,received_at,event,room_id,room_title,person_id,person_email,person_display_name,is_moderator,is_monitor,membership_id,membership_created,actor_id,org_id,webhook_id,webhook_name,target,source,not_before
1,2026-11-27T12:00:01.000Z,joined,Y2lzY29zcGFyazovL3VzL1JPT00vOTczZmQ3MzAtNDRiZC0xMWU2L1234567890asdfghjkl,,Y2lzY29zcGFyazovL3VzL1BFT1BMRS8yZDFiOGI3Zi1lYzQ3LTQ1234567890asdfghjkl,example@cisco.com,Example Person,false,false,Y2lzY29zcGFyazovL3VzL01FTUJFUlNISVAvMmQxYjhiN2YtZWM0Ny00MTk5LTkzYjUtYjQyMjczM2JiMzZlOjk3M2ZkNzMwLTQ0Y1234567890asdfghjkl,2016-07-08T03:42:57.054Z,,,Y2lzY29zcGFyazovL3VzL1dFQkhPT0svYTNiMTZkMzctNjNlNi00ZDU2L1234567890asdfghjkl,My Membership Webhook,team,webhook,
2,2026-11-27T12:00:02.000Z,left,Y2lzY29zcGFyazovL3VzL1JPT00vZThhOTQ3MzA1234567890asdfghjkl,,Y2lzY29zcGFyazovL3VzL1BFT1BMRS82YTYyZTljYS04Y2Q1234567890asdfghjkl,example@cisco.com,Example Person,false,false,Y2lzY29zcGFyazovL3VzL01FTUJFUlNISVAvNmE2MmU5Y2EtOGNkMi00NTZkLTlkOWQtOWYzZDE0OWExYjkxOmU4YTk0NzMwLTQ2Ym1234567890asdfghjkl,2016-07-10T16:49:16.325Z,,,Y2lzY29zcGFyazovL3VzL1dFQkhPT0svNWFhNmFmMWQtZDM2Mi001234567890asdfghjkl,Deleted Membership Webhook,team,webhook,
3,2026-11-27T12:00:03.000Z,joined,Y2lzY29zcGFyazovL3VzL1JPT00vY2RlMWRkNDAtMmYwZC0xMWU1LWJhOWMtN2I2NTU2ZDIyMDdi,Team room,Y2lzY29zcGFyazovL3VzL1BFT1BMRS8wZDBjOTFiNi1jZTYwLTQ3MjUtYjZkMC0zNDU1ZDVkMTFlZjM,ana.silva@example.com,Ana Silva,true,false,Y2lzY29zcGFyazovL3VzL01FTUJFUlNISVAvMGQwYzkxYjYtY2U2MC00NzI1LWI2ZDAtMzQ1NWQ1ZDExZWYzOmNkZTFkZDQwLTJmMGQtMTFlNS1iYTljLTdiNjU1NmQyMjA3Yg,2026-11-27T14:03:11.482Z,Y2lzY29zcGFyazovL3VzL1BFT1BMRS8xZjdkZTVjYi04NTYxLTQ2NzEtYmMwMy1iYzk3NDMxNDQ0MmQ,OTZhYmMyYWEtM2RjYy0xMWU1LWExNTItZmUzNDgxOWNkYzlh,Y2lzY29zcGFyazovL3VzL1dFQkhPT0svZjRlNjA1NjAtNjYwMi00ZmIwLWEyNWEtOTQ5ODgxNjA5NDk3,Team roster webhook,team,webhook,
";
    assert_eq!(out.stdout, expected, "{}", out.report());
}

#[tokio::test]
async fn a_formula_in_a_display_name_is_guarded_and_raw_leaves_it() {
    let log = TestLog::new();
    log.append(named("=HYPERLINK(\"http://x\")")).await;

    let guarded = export(&log.dir, &[]);
    let raw = export(&log.dir, &["--raw"]);

    assert!(
        guarded.stdout.contains(r#","'=HYPERLINK(""http://x"")","#),
        "{}",
        guarded.report()
    );
    assert_eq!(
        column(&guarded.stdout, "person_display_name"),
        ["'=HYPERLINK(\"http://x\")"]
    );
    assert_eq!(
        column(&raw.stdout, "person_display_name"),
        ["=HYPERLINK(\"http://x\")"]
    );
}

#[tokio::test]
async fn every_formula_starting_character_is_guarded_in_any_text_cell() {
    let log = TestLog::new();
    for (n, name) in ["+1", "-1", "@SUM(A1)", "\tx", "\rx", "a=b"]
        .iter()
        .enumerate()
    {
        let mut r = named(name);
        r.membership_id = format!("m{n}");
        log.append(r).await;
    }
    let mut in_room = named("plain");
    in_room.room_title = Some("=cmd|' /C calc'!A0".into());
    log.append(in_room).await;

    let out = export(&log.dir, &[]);

    assert_eq!(
        column(&out.stdout, "person_display_name"),
        ["'+1", "'-1", "'@SUM(A1)", "'\tx", "'\rx", "a=b", "plain"]
    );
    assert_eq!(
        column(&out.stdout, "room_title").last().unwrap(),
        "'=cmd|' /C calc'!A0"
    );
}

#[tokio::test]
async fn commas_quotes_and_newlines_in_names_survive_a_csv_round_trip() {
    let names = [
        "Silva, Ana",
        "Ana \"The Boss\" Silva",
        "two\nlines",
        "cr\r\nlf",
        "ünï, \"cödé\"",
    ];
    let log = TestLog::new();
    for (n, name) in names.iter().enumerate() {
        let mut r = named(name);
        r.membership_id = format!("m{n}");
        log.append(r).await;
    }

    let out = export(&log.dir, &[]);

    assert_eq!(column(&out.stdout, "person_display_name"), names);
    assert_eq!(rows(&out.stdout).len(), names.len());
}

#[tokio::test]
async fn unknown_values_are_empty_cells_and_flags_are_true_or_false() {
    let log = TestLog::new();
    let mut sparse = named("Sparse");
    sparse.person_email = None;
    sparse.is_moderator = None;
    sparse.is_monitor = Some(true);
    sparse.actor_id = None;
    log.append(sparse).await;

    let out = export(&log.dir, &[]);

    assert_eq!(column(&out.stdout, "person_email"), [""]);
    assert_eq!(column(&out.stdout, "is_moderator"), [""]);
    assert_eq!(column(&out.stdout, "is_monitor"), ["true"]);
    assert_eq!(column(&out.stdout, "actor_id"), [""]);
}

/// Joins of ana (room-a), bob (room-b), a leave of ana, on two days:
/// seqs 1, 2 on 2026-11-27 at 12:00:01 and :02, seq 3 on 2026-11-28 09:00:01.
async fn filter_log() -> TestLog {
    let log = TestLog::new();
    log.append(record(Event::Joined, "Ana@Example.com", "Ana", "room-a"))
        .await;
    log.append(record(Event::Joined, "bob@example.com", "Bob", "room-b"))
        .await;
    log.next_day();
    log.append(record(Event::Left, "ana@example.com", "Ana", "room-a"))
        .await;
    log
}

fn seqs(dir: &Path, args: &[&str]) -> Vec<String> {
    column(&export(dir, args).stdout, "seq")
}

#[tokio::test]
async fn from_is_inclusive_and_to_is_exclusive() {
    let log = filter_log().await;
    let dir = &log.dir;
    assert_eq!(seqs(dir, &["--from", "2026-11-27T12:00:02Z"]), ["2", "3"]);
    assert_eq!(seqs(dir, &["--to", "2026-11-27T12:00:02Z"]), ["1"]);
    assert_eq!(seqs(dir, &["--from", "2026-11-28"]), ["3"]);
    assert_eq!(seqs(dir, &["--to", "2026-11-28"]), ["1", "2"]);
    assert_eq!(
        seqs(
            dir,
            &[
                "--from",
                "2026-11-27T13:00:01.500+01:00",
                "--to",
                "2026-11-28T09:00:01Z"
            ]
        ),
        ["2"]
    );
}

#[tokio::test]
async fn room_filter_keeps_only_that_room() {
    let log = filter_log().await;
    assert_eq!(seqs(&log.dir, &["--room", "room-a"]), ["1", "3"]);
    assert_eq!(seqs(&log.dir, &["--room", "room-b"]), ["2"]);
}

#[tokio::test]
async fn person_filter_matches_the_email_in_any_case() {
    let log = filter_log().await;
    assert_eq!(seqs(&log.dir, &["--person", "ANA@example.COM"]), ["1", "3"]);
    assert_eq!(
        seqs(&log.dir, &["--person", "nobody@example.com"]),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn event_filter_keeps_only_joins_or_only_leaves() {
    let log = filter_log().await;
    assert_eq!(seqs(&log.dir, &["--event", "joined"]), ["1", "2"]);
    assert_eq!(seqs(&log.dir, &["--event", "left"]), ["3"]);
}

#[tokio::test]
async fn filters_combine_and_also_come_from_the_environment() {
    let log = filter_log().await;
    let out = run(rollcall(&log.dir)
        .args(["export", "--event", "joined"])
        .env("ROLLCALL_PERSON", "ana@example.com"))
    .success();
    assert_eq!(column(&out.stdout, "seq"), ["1"]);
}

#[tokio::test]
async fn export_runs_over_several_day_files_live_and_archived_in_seq_order() {
    let log = TestLog::over_days(4, 3).await;
    archive_day(&log.dir, "2026-11-27");
    archive_day(&log.dir, "2026-11-28");

    let out = export(&log.dir, &[]);

    let expected: Vec<String> = (1..=12).map(|n| n.to_string()).collect();
    assert_eq!(column(&out.stdout, "seq"), expected);
    let days: Vec<String> = column(&out.stdout, "received_at")
        .iter()
        .map(|t| t[..10].to_string())
        .collect();
    assert_eq!(days[0], "2026-11-27");
    assert_eq!(days[11], "2026-11-30");
}

#[tokio::test]
async fn a_record_without_a_room_title_gets_the_latest_title_recorded_before_it() {
    let log = TestLog::new();
    log.append(named("untitled first")).await;
    let mut old = named("old title");
    old.membership_id = "m2".into();
    old.room_title = Some("Old name".into());
    log.append(old).await;
    let mut new = named("new title");
    new.membership_id = "m3".into();
    new.room_title = Some("New name".into());
    log.append(new).await;
    let mut other = record(Event::Joined, "x@example.com", "elsewhere", "room-2");
    other.membership_id = "m4".into();
    log.append(other).await;

    let out = export(&log.dir, &[]);

    assert_eq!(
        column(&out.stdout, "room_title"),
        ["", "Old name", "New name", ""]
    );
}

#[tokio::test]
async fn a_title_recorded_after_a_record_is_not_used_and_one_before_it_is() {
    let log = TestLog::new();
    let titled = |name: &str, title: &str| {
        let mut r = named(name);
        r.membership_id = format!("m-{name}");
        r.room_title = Some(title.into());
        r
    };
    let untitled = |name: &str| {
        let mut r = named(name);
        r.membership_id = format!("m-{name}");
        r
    };
    log.append(titled("first", "Old name")).await;
    log.next_day();
    let second_day = log.date_name();
    log.append(untitled("before rename")).await;
    log.append(titled("rename", "New name")).await;
    log.append(untitled("after rename")).await;
    let first_rows = || export(&log.dir, &["--from", &second_day]);
    let before = first_rows();
    let tail = run(rollcall(&log.dir).args(["tail", "-n", "3"])).success();

    // A title from a day before the range counts; one from after does not.
    assert_eq!(
        column(&before.stdout, "room_title"),
        ["Old name", "New name", "New name"]
    );
    let rooms: Vec<&str> = tail
        .stdout
        .lines()
        .map(|l| l.rsplit_once("  in ").unwrap().1)
        .collect();
    assert_eq!(rooms, ["Old name", "New name", "New name"]);

    // What is written later changes nothing already exported.
    log.next_day();
    log.append(titled("later", "Newest name")).await;
    let again = first_rows();
    let rows_then: Vec<&str> = before.stdout.lines().collect();
    assert_eq!(
        again
            .stdout
            .lines()
            .take(rows_then.len())
            .collect::<Vec<_>>(),
        rows_then
    );
}

/// Seals one record per display name straight into a day file (the writer
/// would sync each one): enough bytes to span many of the blocks `export`
/// reads at a time. Returns the log directory and the day file.
fn sealed_day(names: impl IntoIterator<Item = String>) -> (tempfile::TempDir, PathBuf) {
    let temp = tempfile::tempdir().unwrap();
    let day = temp.path().join("2026-11-27.jsonl");
    let mut prev_hash = GENESIS_HASH.to_string();
    let mut lines = Vec::new();
    for (i, name) in names.into_iter().enumerate() {
        let mut r = named(&name);
        r.seq = i as u64 + 1;
        r.received_at = format!("2026-11-27T12:{:02}:{:02}.000Z", i / 60 % 60, i % 60);
        r.prev_hash = prev_hash;
        let line = r.seal();
        lines.push(String::from_utf8(line).unwrap().trim_end().to_string());
        prev_hash = r.hash;
    }
    write_lines(&day, &lines);
    (temp, day)
}

#[test]
fn a_bad_line_deep_in_a_long_day_is_named_after_the_rows_before_it() {
    let (temp, day) = sealed_day((1..=3000).map(|n| format!("{n:0>400}")));
    let mut lines = read_lines(&day);
    lines[2499] = "this is not a record".into();
    write_lines(&day, &lines);

    let out = run(rollcall(temp.path()).arg("export")).code(2);

    assert!(
        out.stderr.contains("2026-11-27.jsonl line 2500"),
        "{}",
        out.report()
    );
    let expected: Vec<String> = (1..=2499).map(|n| n.to_string()).collect();
    assert_eq!(column(&out.stdout, "seq"), expected);
}

#[test]
fn a_line_longer_than_a_read_block_is_exported_whole_and_its_title_found() {
    let long = "L".repeat(3 << 20);
    let (temp, day) = sealed_day(["before".into(), long.clone(), "after".into()]);
    let mut lines = read_lines(&day);
    let mut titled: Record = serde_json::from_str(&lines[1]).unwrap();
    titled.room_title = Some("Big room".into());
    lines[1] = String::from_utf8(titled.seal())
        .unwrap()
        .trim_end()
        .to_string();
    write_lines(&day, &lines);

    let out = export(temp.path(), &[]);

    assert_eq!(
        column(&out.stdout, "person_display_name"),
        ["before", long.as_str(), "after"]
    );
    assert_eq!(
        column(&out.stdout, "room_title"),
        ["", "Big room", "Big room"]
    );
}

#[tokio::test]
async fn jsonl_format_gives_the_records_as_they_are_in_the_log() {
    let log = filter_log().await;

    let out = export(&log.dir, &["--format", "jsonl", "--room", "room-a"]);

    let lines: Vec<&str> = out.stdout.lines().collect();
    let day1 = read_lines(&log.day_file("2026-11-27"));
    let day2 = read_lines(&log.day_file("2026-11-28"));
    assert_eq!(lines, [day1[0].as_str(), day2[0].as_str()]);
}

#[tokio::test]
async fn output_file_holds_the_export_and_nothing_is_left_beside_it() {
    let log = filter_log().await;
    let folder = tempfile::tempdir().unwrap();
    let target = folder.path().join("export.csv");

    let out = run(rollcall(&log.dir).args(["export", "-o"]).arg(&target)).success();

    assert_eq!(out.stdout, "");
    let written = std::fs::read_to_string(&target).unwrap();
    assert_eq!(column(&written, "seq"), ["1", "2", "3"]);
    let names: Vec<_> = std::fs::read_dir(folder.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["export.csv"]);
}

#[tokio::test]
async fn an_export_that_fails_leaves_no_file_that_looks_complete() {
    let mut log = filter_log().await;
    log.close();
    let day = log.day_file("2026-11-28");
    write_lines(&day, &["this is not a record".to_string()]);
    let folder = tempfile::tempdir().unwrap();
    let target = folder.path().join("export.csv");

    let out = run(rollcall(&log.dir).args(["export", "-o"]).arg(&target)).code(2);

    assert!(
        out.stderr.contains("2026-11-28.jsonl line 1"),
        "{}",
        out.report()
    );
    assert_eq!(std::fs::read_dir(folder.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn bad_arguments_are_refused_with_a_clear_error() {
    let log = filter_log().await;
    let refused = |args: &[&str], says: &str| {
        let out = run(rollcall(&log.dir).args(args)).code(2);
        assert!(out.stderr.contains(says), "{}", out.report());
    };
    refused(&["export", "--event", "updated"], "invalid value 'updated'");
    refused(
        &["export", "--from", "yesterday"],
        "\"yesterday\" is not a time",
    );
    refused(&["tail", "--to", "2026-13-01"], "is not a time");
    refused(
        &["export", "--from", "2026-11-28", "--to", "2026-11-27"],
        "--from (2026-11-28T00:00:00.000Z) must be before --to",
    );
    refused(&["export", "--format", "xlsx"], "invalid value 'xlsx'");
}

// ---------------------------------------------------------------- tail

#[tokio::test]
async fn tail_shows_the_last_n_records_as_readable_lines() {
    let log = TestLog::new();
    for n in 0..4 {
        let mut r = named(&format!("Person {n}"));
        r.membership_id = format!("m{n}");
        log.append(r).await;
    }
    let mut ana = record(Event::Left, "ana.silva@example.com", "Ana Silva", "room-1");
    ana.is_moderator = Some(true);
    ana.room_title = Some("Team room".into());
    log.append(ana).await;

    let out = run(rollcall(&log.dir).args(["tail", "-n", "2"])).success();

    assert_eq!(
        out.stdout,
        "2026-11-27 12:00:04Z  joined  Person 3 <someone@example.com>  in room-1\n\
         2026-11-27 12:00:05Z  left    Ana Silva <ana.silva@example.com> [moderator]  in Team room\n"
    );
}

#[tokio::test]
async fn tail_shows_ten_by_default_across_days_and_filters_like_export() {
    let log = TestLog::over_days(3, 5).await;

    let all = run(rollcall(&log.dir).arg("tail")).success();
    let one_room = run(rollcall(&log.dir).args(["tail", "--room", "room-1", "--json"])).success();

    assert_eq!(all.stdout.lines().count(), 10);
    assert!(
        all.stdout
            .lines()
            .next()
            .unwrap()
            .starts_with("2026-11-28 09:00:01Z")
    );
    let seqs: Vec<u64> = one_room
        .stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, [1, 4, 7, 10, 13]);
}

#[tokio::test]
async fn tail_keeps_a_hostile_name_on_one_line() {
    let log = TestLog::new();
    log.append(named("evil\n2026-01-01 00:00:00Z  left  \u{1b}[2Jforged"))
        .await;

    let out = run(rollcall(&log.dir).arg("tail")).success();

    assert_eq!(out.stdout.lines().count(), 1, "{}", out.report());
    assert!(out.stdout.contains("evil\\n2026"), "{}", out.report());
    assert!(!out.stdout.contains('\u{1b}'));
}

/// `rollcall tail -f` with its stdout read line by line on a thread.
pub(crate) struct Follower {
    child: Child,
    lines: mpsc::Receiver<String>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Follower {
    pub(crate) fn start(dir: &Path, args: &[&str]) -> Self {
        Self::spawn(rollcall(dir).args(["tail", "-f"]).args(args))
    }

    /// `command` (a `tail -f`) started with its stdout read.
    pub(crate) fn spawn(command: &mut Command) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting rollcall tail -f");
        let stdout: ChildStdout = child.stdout.take().unwrap();
        let (send, lines) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            reader: Some(reader),
        }
    }

    /// The next line it prints. The bound only turns a hang into a
    /// failure; it is never what the test waits for.
    pub(crate) fn next_line(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(60))
            .expect("tail -f printed no line")
    }

    fn interrupt(&mut self) -> std::process::ExitStatus {
        let sent = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        wait_bounded(&mut self.child)
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn tail_follow_sees_new_records_and_follows_into_the_next_days_file() {
    let log = TestLog::new();
    log.append(named("Before")).await;
    let mut tail = Follower::start(&log.dir, &["-n", "1"]);
    assert!(tail.next_line().contains("Before"));

    let mut r = named("Same day");
    r.membership_id = "m2".into();
    log.append(r).await;
    assert!(
        tail.next_line()
            .contains("2026-11-27 12:00:02Z  joined  Same day")
    );

    log.next_day();
    let mut r = named("Next day");
    r.membership_id = "m3".into();
    log.append(r).await;
    let mut r = named("Next day again");
    r.membership_id = "m4".into();
    log.append(r).await;
    assert!(
        tail.next_line()
            .contains("2026-11-28 09:00:01Z  joined  Next day")
    );
    assert!(tail.next_line().contains("Next day again"));
    assert!(log.day_file("2026-11-28").exists());

    assert_eq!(tail.interrupt().code(), Some(0), "Ctrl-C is a clean stop");
}

#[tokio::test]
async fn tail_follow_survives_the_day_it_reads_being_archived() {
    let log = TestLog::new();
    log.append(named("Day one")).await;
    let tail = Follower::start(&log.dir, &["-n", "5", "--json"]);
    assert!(tail.next_line().contains("Day one"));

    archive_day(&log.dir, "2026-11-27");
    log.next_day();
    let mut r = named("Day two");
    r.membership_id = "m2".into();
    log.append(r).await;

    let line: serde_json::Value = serde_json::from_str(&tail.next_line()).unwrap();
    assert_eq!(line["seq"], 2);
    assert_eq!(line["person_display_name"], "Day two");
}

#[tokio::test]
async fn tail_follow_applies_filters_to_new_records() {
    let log = TestLog::new();
    log.append(record(Event::Joined, "ana@example.com", "Ana", "room-a"))
        .await;
    let tail = Follower::start(&log.dir, &["--person", "ana@example.com"]);
    assert!(tail.next_line().contains("Ana"));

    log.append(record(Event::Joined, "bob@example.com", "Bob", "room-a"))
        .await;
    log.append(record(Event::Left, "ANA@example.com", "Ana", "room-a"))
        .await;

    assert!(tail.next_line().contains("left    Ana"));
}

#[tokio::test]
async fn tail_follow_exits_0_when_its_reader_goes_away() {
    let log = TestLog::new();
    log.append(named("First")).await;
    let mut tail = Follower::start(&log.dir, &["-n", "1"]);
    assert!(tail.next_line().contains("First"));

    // Like `| head -1` once it has its line: the reading thread stops at
    // the next line it gets, and its end of the pipe closes with it.
    drop(std::mem::replace(&mut tail.lines, mpsc::channel().1));
    let mut second = named("Second");
    second.membership_id = "m2".into();
    log.append(second).await;
    tail.reader.take().unwrap().join().unwrap();
    let mut third = named("Third");
    third.membership_id = "m3".into();
    log.append(third).await;

    assert_eq!(wait_bounded(&mut tail.child).code(), Some(0));
}

// ---------------------------------------------------------------- verify

fn verify(dir: &Path) -> Run {
    run(rollcall(dir).arg("verify"))
}

/// Three days of four records, writer stopped so the files can be edited.
async fn closed_log() -> TestLog {
    let mut log = TestLog::over_days(3, 4).await;
    log.close();
    log
}

/// Edits one day file's lines behind the writer's back.
fn tamper(log: &TestLog, date: &str, edit: impl FnOnce(&mut Vec<String>)) {
    let path = log.day_file(date);
    let mut lines = read_lines(&path);
    edit(&mut lines);
    write_lines(&path, &lines);
}

/// Asserts verify exits 1 naming the file, line and seq, and saying `why`.
fn assert_fault(dir: &Path, file: &str, line: u64, seq: u64, why: &str) {
    let out = verify(dir).code(1);
    let expected = format!("{file} line {line}, seq {seq}: ");
    assert!(
        out.stdout.contains(&expected),
        "wanted {expected:?}\n{}",
        out.report()
    );
    assert!(out.stdout.contains(why), "wanted {why:?}\n{}", out.report());
}

#[tokio::test]
async fn verify_passes_an_untouched_log() {
    let log = closed_log().await;
    archive_day(&log.dir, "2026-11-27");

    let out = verify(&log.dir).success();

    let (summary, head) = out.stdout.split_at(out.stdout.find("head: ").unwrap());
    assert_eq!(
        summary,
        "12 records in 3 days, chain intact\n\
         receiver: 0 starts (0 after a crash), 0 clean stops\n\
         records by source: 0 events_api, 0 reconciled, 12 webhook\n\
         1 archived days match their digests and the digest chain\n"
    );
    assert!(head.starts_with("head: seq 12 hash "), "{head}");
}

#[tokio::test]
async fn verify_catches_a_modified_byte() {
    let log = closed_log().await;
    tamper(&log, "2026-11-28", |lines| {
        lines[2] = lines[2].replace("Person 7", "Person 8");
    });

    assert_fault(&log.dir, "2026-11-28.jsonl", 3, 7, "content was modified");
}

#[tokio::test]
async fn verify_catches_a_deleted_line() {
    let log = closed_log().await;
    tamper(&log, "2026-11-28", |lines| {
        lines.remove(1);
    });

    assert_fault(&log.dir, "2026-11-28.jsonl", 2, 7, "seq 6 is missing");
}

#[tokio::test]
async fn verify_catches_an_inserted_line_even_one_sealed_like_a_real_record() {
    let log = closed_log().await;
    tamper(&log, "2026-11-28", |lines| {
        let previous = rollcall::log::record::parse_line(lines[0].as_bytes()).unwrap();
        let mut forged = named("Forged");
        forged.seq = previous.seq + 1;
        forged.received_at = previous.received_at.clone();
        forged.prev_hash = previous.hash.clone();
        let sealed = String::from_utf8(forged.seal()).unwrap();
        lines.insert(1, sealed.trim_end().to_string());
    });

    assert_fault(
        &log.dir,
        "2026-11-28.jsonl",
        3,
        6,
        "comes again after seq 6",
    );
}

#[tokio::test]
async fn verify_catches_reordered_lines() {
    let log = closed_log().await;
    tamper(&log, "2026-11-29", |lines| {
        lines.swap(1, 2);
    });

    assert_fault(&log.dir, "2026-11-29.jsonl", 2, 11, "seq 10 is missing");
}

#[tokio::test]
async fn verify_catches_a_duplicated_line() {
    let log = closed_log().await;
    tamper(&log, "2026-11-27", |lines| {
        lines.insert(3, lines[2].clone());
    });

    assert_fault(&log.dir, "2026-11-27.jsonl", 4, 3, "seq 3 comes again");
}

#[tokio::test]
async fn verify_catches_a_truncated_file() {
    let log = closed_log().await;
    let path = log.day_file("2026-11-29");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 40]).unwrap();

    assert_fault(&log.dir, "2026-11-29.jsonl", 4, 12, "cut short");
}

#[tokio::test]
async fn verify_catches_a_missing_day() {
    let log = closed_log().await;
    std::fs::remove_file(log.day_file("2026-11-28")).unwrap();

    assert_fault(
        &log.dir,
        "2026-11-29.jsonl",
        1,
        9,
        "seqs 5 to 8 are missing before this file: a day appears to be missing",
    );
}

#[tokio::test]
async fn verify_catches_a_missing_first_day() {
    let log = closed_log().await;
    std::fs::remove_file(log.day_file("2026-11-27")).unwrap();

    assert_fault(
        &log.dir,
        "2026-11-28.jsonl",
        1,
        5,
        "the first day(s) appear to be missing",
    );
}

#[tokio::test]
async fn verify_checks_archived_days_too() {
    let log = closed_log().await;
    archive_day(&log.dir, "2026-11-27");
    tamper_archive(&log.dir, "2026-11-27", |lines| {
        lines[0] = lines[0].replace("Person 1", "Person X");
    });

    assert_fault(
        &log.dir,
        "2026-11-27.jsonl.gz",
        1,
        1,
        "content was modified",
    );
}

#[test]
fn verify_cannot_run_without_a_log_directory() {
    let temp = tempfile::tempdir().unwrap();
    let out = verify(&temp.path().join("no-such-dir")).code(2);
    assert!(out.stderr.contains("no log directory"), "{}", out.report());
}

#[test]
fn verify_names_the_right_line_deep_in_a_long_day() {
    let (temp, day) = sealed_day((1..=3000).map(|n| format!("{n:0>400}")));
    let mut lines = read_lines(&day);
    lines.remove(1999);
    write_lines(&day, &lines);

    assert_fault(
        temp.path(),
        "2026-11-27.jsonl",
        2000,
        2001,
        "seq 2000 is missing: a line was deleted or moved",
    );
}

#[test]
fn every_reading_command_on_a_missing_directory_says_to_pass_dir() {
    let temp = tempfile::tempdir().unwrap();
    let missing = temp.path().join("no-such-dir");
    for args in [
        &["export"][..],
        &["tail"],
        &["tail", "-f"],
        &["verify"],
        &["archive"],
    ] {
        let out = run(rollcall(&missing).args(args)).code(2);
        assert!(out.stderr.contains("pass --dir"), "{}", out.report());
        assert!(!missing.exists(), "{args:?} must not create the directory");
    }
}

#[tokio::test]
async fn export_into_a_pipe_closed_early_exits_0() {
    let log = TestLog::over_days(2, 400).await;
    let mut export = rollcall(&log.dir)
        .arg("export")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(export.stdout.as_mut().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("seq,received_at,"), "{first}");
    drop(export.stdout.take());
    assert_eq!(wait_bounded(&mut export).code(), Some(0));
}
