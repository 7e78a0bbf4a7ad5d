//! docs/index.md's SQL examples, run for real: the page's log is written
//! with the real writer, indexed by the real binary, and every ```sql
//! block is fed to Debian's `sqlite3` shell, opened as the page says; what
//! it prints must be the output block the page shows after it. The
//! examples of its "Several receivers" section run on the merged index of
//! that log and a second receiver's.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use pulldown_cmark::{CodeBlockKind, Event as Md, Parser, Tag, TagEnd};
use rollcall::log::record::{Event, Record, Source};
use rollcall::receiver::remember;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::roster::ok;
use crate::support::bin::{rollcall, run};
use crate::support::logs::{TestLog, record};

const PAGE: &str = include_str!("../../docs/index.md");

/// The file the page opens; the test opens its own log's instead.
const DOCUMENTED_FILE: &str = "audit-logs/index.sqlite";
/// The file its "Several receivers" section opens.
const DOCUMENTED_MERGED: &str = "audit-logs/merged.sqlite";
/// Where that section begins.
const SEVERAL: &str = "\n## Several receivers\n";

/// The page before its "Several receivers" section, and that section on.
fn parts(page: &str) -> (&str, &str) {
    let at = page
        .find(SEVERAL)
        .expect("docs/index.md has a Several receivers section");
    page.split_at(at)
}

/// One example: the SQL typed at the shell's prompt, and what the page
/// says it prints.
#[derive(Debug, Clone)]
struct Example {
    sql: String,
    output: String,
}

/// Every ```sql block with the code block that follows it; an SQL block
/// with no output after it is an example nobody checks, so it fails here.
fn examples(page: &str) -> Vec<Example> {
    let mut blocks: Vec<(String, String)> = Vec::new();
    let mut open: Option<(String, String)> = None;
    for event in Parser::new(page) {
        match event {
            Md::Start(Tag::CodeBlock(kind)) => {
                let info = match kind {
                    CodeBlockKind::Fenced(info) => info.to_string(),
                    CodeBlockKind::Indented => String::new(),
                };
                open = Some((info, String::new()));
            }
            Md::Text(text) => {
                if let Some((_, body)) = open.as_mut() {
                    body.push_str(&text);
                }
            }
            Md::End(TagEnd::CodeBlock) => blocks.extend(open.take()),
            _ => {}
        }
    }
    let mut found = Vec::new();
    let mut blocks = blocks.into_iter().peekable();
    while let Some((info, sql)) = blocks.next() {
        if info != "sql" {
            continue;
        }
        let output = match blocks.next_if(|(info, _)| info != "sql") {
            Some((_, output)) => output,
            None => panic!("docs/index.md: this SQL example has no output block after it:\n{sql}"),
        };
        found.push(Example { sql, output });
    }
    found
}

/// The shell's options, from the page's own `sqlite3 ... FILE` line (FILE
/// being `documented`), so the examples run exactly as a reader would run
/// them.
fn shell_options(page: &str, documented: &str) -> Vec<String> {
    let line = page
        .lines()
        .map(str::trim)
        .find(|line| line.starts_with("sqlite3 ") && line.ends_with(documented))
        .unwrap_or_else(|| panic!("docs/index.md shows no `sqlite3 ... {documented}` line"));
    let words: Vec<&str> = line.split_whitespace().collect();
    words[1..words.len() - 1]
        .iter()
        .map(|w| w.to_string())
        .collect()
}

/// What the shell printed for `sql`, or why it failed.
fn run_sqlite3(options: &[String], index: &Path, sql: &str) -> Result<String, String> {
    let mut child = Command::new("sqlite3")
        .args(options)
        .arg(index)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("running sqlite3 ({e}): scripts/test installs Debian's sqlite3 package")
        });
    child
        .stdin
        .take()
        .expect("sqlite3's stdin")
        .write_all(sql.as_bytes())
        .expect("writing the SQL to sqlite3");
    let output = child.wait_with_output().expect("waiting for sqlite3");
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() || !stderr.is_empty() {
        return Err(format!("sqlite3 {}: {stderr}", output.status));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Column mode pads the last column; a page keeps no trailing spaces.
fn normalised(text: &str) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    lines.join("\n").trim_end().to_string()
}

/// Each example whose output is not what the page shows, as a report:
/// run on `index`, the page's `documented` file.
fn mismatches(page: &str, documented: &str, index: &Path) -> Vec<String> {
    let options = shell_options(page, documented);
    examples(page)
        .into_iter()
        .filter_map(|example| {
            let got = match run_sqlite3(&options, index, &example.sql) {
                Ok(got) if normalised(&got) == normalised(&example.output) => return None,
                Ok(got) => got,
                Err(failed) => failed,
            };
            Some(format!(
                "--- sql\n{}--- documented\n{}--- printed\n{got}",
                example.sql, example.output
            ))
        })
        .collect()
}

/// Appends `record` so that it is received at `at` (RFC 3339).
async fn append_at(log: &TestLog, at: &str, record: Record) {
    let at = OffsetDateTime::parse(at, &Rfc3339).expect("an RFC 3339 time");
    log.append_at(at, record).await;
}

/// `who`'s membership of a room, as the webhook records it: the
/// membership began when the delivery says, a moment before it arrived.
pub(crate) fn membership(event: Event, who: &str, room: (&str, &str), began: &str) -> Record {
    let (room_id, title) = room;
    let first = who.split_whitespace().next().unwrap_or(who).to_lowercase();
    let email = format!("{first}@example.com");
    Record {
        room_title: Some(title.into()),
        person_id: format!("person-{first}"),
        membership_id: format!("membership-{first}-{room_id}"),
        membership_created: Some(began.into()),
        ..record(event, &email, who, room_id)
    }
}

fn reconciled(record: Record, not_before: Option<&str>) -> Record {
    Record {
        source: Source::Reconciled,
        not_before: not_before.map(str::to_string),
        ..record
    }
}

pub(crate) const TEAM: (&str, &str) = ("room-team", "Team room");
/// Team room's members before the log began: who, and since when.
const ANA: (&str, &str) = ("Ana Silva", "2026-02-10T08:55:12.000Z");
const BO: (&str, &str) = ("Bo Chen", "2026-02-20T16:02:40.000Z");

/// `who`'s membership of Team room as reconciliation first records it,
/// Ana a moderator.
fn baseline((who, began): (&str, &str)) -> Record {
    reconciled(
        Record {
            is_moderator: Some(who == "Ana Silva"),
            ..membership(Event::Joined, who, TEAM, began)
        },
        None,
    )
}

/// Bo made a moderator of Team room.
fn bo_made_moderator() -> Record {
    Record {
        is_moderator: Some(true),
        ..membership(Event::ModeratorGranted, BO.0, TEAM, BO.1)
    }
}
pub(crate) const LAUNCH: (&str, &str) = ("room-launch", "Launch");

/// The log the page's examples describe: Team room's baseline in March
/// 2026, a join, a moderator granted, a clean restart after which
/// reconciliation finds a leave, a stay in Launch, a crash, and a rejoin
/// in April.
pub(crate) async fn the_pages_log() -> TestLog {
    let log = TestLog::new();
    remember(&log.dir, &"site-a".parse().unwrap()).unwrap();
    let started = |not_before: Option<&str>| {
        Record::receiver(Event::ReceiverStarted, not_before.map(str::to_string))
    };
    append_at(&log, "2026-03-02T09:00:00Z", started(None)).await;
    append_at(&log, "2026-03-02T09:00:01Z", baseline(ANA)).await;
    append_at(&log, "2026-03-02T09:00:02Z", baseline(BO)).await;
    let cy = membership(Event::Joined, "Cy Diaz", TEAM, "2026-03-03T10:15:00Z");
    append_at(&log, "2026-03-03T10:15:00Z", cy).await;
    let ana = membership(Event::Joined, "Ana Silva", LAUNCH, "2026-03-05T13:30:00Z");
    append_at(&log, "2026-03-05T13:30:00Z", ana).await;
    append_at(&log, "2026-03-09T11:00:00Z", bo_made_moderator()).await;
    let stopped = Record::receiver(Event::ReceiverStopped, None);
    append_at(&log, "2026-03-12T18:00:00Z", stopped).await;
    append_at(&log, "2026-03-13T08:00:00Z", started(None)).await;
    let cy = reconciled(
        membership(Event::Left, "Cy Diaz", TEAM, "2026-03-03T10:15:00Z"),
        Some("2026-03-12T18:00:00.000Z"),
    );
    append_at(&log, "2026-03-13T08:00:05Z", cy).await;
    let ana = membership(Event::Left, "Ana Silva", LAUNCH, "2026-03-05T13:30:00Z");
    append_at(&log, "2026-03-20T16:30:00Z", ana).await;
    // No stop before this start: the receiver crashed after 16:30.
    let crashed = started(Some("2026-03-20T16:30:00.000Z"));
    append_at(&log, "2026-03-21T07:00:00Z", crashed).await;
    let ana = membership(Event::Joined, "Ana Silva", LAUNCH, "2026-04-02T09:45:00Z");
    append_at(&log, "2026-04-02T09:45:00Z", ana).await;
    log
}

/// The second receiver of the "Several receivers" section: Team room's
/// baseline and Bo's role as the page's log has them, a join only it
/// recorded, and a clean stop; Cy's join it missed.
async fn site_b() -> TestLog {
    let log = TestLog::new();
    remember(&log.dir, &"site-b".parse().unwrap()).unwrap();
    let started = Record::receiver(Event::ReceiverStarted, None);
    append_at(&log, "2026-03-02T08:59:00Z", started).await;
    append_at(&log, "2026-03-02T09:00:03Z", baseline(ANA)).await;
    append_at(&log, "2026-03-02T09:00:04Z", baseline(BO)).await;
    let dee = membership(Event::Joined, "Dee Evans", TEAM, "2026-03-04T09:20:00Z");
    append_at(&log, "2026-03-04T09:20:00Z", dee).await;
    append_at(&log, "2026-03-09T11:00:01Z", bo_made_moderator()).await;
    let stopped = Record::receiver(Event::ReceiverStopped, None);
    append_at(&log, "2026-03-11T17:00:00Z", stopped).await;
    log
}

#[tokio::test]
async fn every_sql_example_on_the_index_page_prints_the_output_the_page_shows() {
    let log = the_pages_log().await;
    let other = site_b().await;
    ok(&log.dir, &["index"]);
    run(rollcall(&log.dir).arg("--dir").arg(&other.dir).arg("index")).success();

    let (one, several) = parts(PAGE);
    let mut wrong = mismatches(one, DOCUMENTED_FILE, &log.dir.join("index.sqlite"));
    wrong.extend(mismatches(
        several,
        DOCUMENTED_MERGED,
        &log.dir.join("merged.sqlite"),
    ));

    assert!(
        wrong.is_empty(),
        "docs/index.md: {} of its examples print something else:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert!(examples(one).len() >= 6, "{:#?}", examples(one));
    assert!(examples(several).len() >= 2, "{:#?}", examples(several));
}

#[tokio::test]
async fn a_wrong_documented_answer_is_reported_with_what_sqlite3_printed() {
    let log = the_pages_log().await;
    ok(&log.dir, &["index"]);
    let first = examples(PAGE).remove(0);
    let wrong = first.output.replacen("Bo Chen", "Bo Chan", 1);
    assert_ne!(wrong, first.output, "the first example names Bo Chen");
    let page = parts(PAGE).0.replacen(&first.output, &wrong, 1);

    let reports = mismatches(&page, DOCUMENTED_FILE, &log.dir.join("index.sqlite"));

    assert_eq!(reports.len(), 1, "{reports:#?}");
    assert!(
        reports[0].contains("Bo Chan") && reports[0].contains("Bo Chen"),
        "{}",
        reports[0]
    );
}
