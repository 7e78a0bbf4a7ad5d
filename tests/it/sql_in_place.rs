//! docs/offsite.md's "Query it where it lies", run for real: a log written
//! by the real writer is archived and shipped by the real binary to moto;
//! then the section's DuckDB blocks run in DuckDB, with httpfs, against
//! that bucket, exactly as the page shows them but for its placeholders
//! (bucket, endpoint, keys). The Athena queries run in DuckDB too, over
//! DuckDB's `records` view, which has the Athena view's columns: that
//! checks their logic, not their dialect. Each answer must be what
//! `rollcall export` or `rollcall roster` says from the log itself.

use std::collections::BTreeSet;
use std::path::Path;

use pulldown_cmark::{CodeBlockKind, Event as Md, HeadingLevel, Parser, Tag, TagEnd};
use rollcall::log::record::{Event, Record, format_timestamp};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::index_docs::{LAUNCH, TEAM, membership, the_pages_log};
use crate::roster::{json, ok};
use crate::support::bin::{rollcall, run};
use crate::support::duckdb::{Answer, session};
use crate::support::logs::TestLog;
use crate::support::moto::Moto;

const PAGE: &str = include_str!("../../docs/offsite.md");
const SECTION: &str = "Query it where it lies";
/// The page's bucket prefix; the tests ship under it.
const PREFIX: &str = "prod";
/// The subsections the tests take their blocks from.
const DUCKDB: &str = "DuckDB";
const ROOM_AT: &str = "Who was in a room at a time";
const RECEIVERS: &str = "Several receivers: each event once";
/// The room and time the page's room query asks about.
const ASKED_ROOM: &str = "'room-team'";
const ASKED_AT: &str = "'2026-03-10T12:00:00.000Z'";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Engine {
    DuckDb,
    Athena,
}

/// One SQL block of the section: the engine its info string names
/// (```` ```sql duckdb ```` or ```` ```sql athena ````), the heading it
/// is under, its text.
#[derive(Debug, Clone)]
struct Block {
    engine: Engine,
    heading: String,
    sql: String,
}

/// The section's SQL blocks, in page order. An SQL block that names no
/// engine fails here: nobody would run it.
fn blocks(page: &str) -> Vec<Block> {
    let mut found = Vec::new();
    let mut in_section = false;
    let mut heading: Option<(HeadingLevel, String)> = None;
    let mut under = String::new();
    let mut open: Option<(String, String)> = None;
    for event in Parser::new(page) {
        match event {
            Md::Start(Tag::Heading { level, .. }) => heading = Some((level, String::new())),
            Md::End(TagEnd::Heading(_)) => {
                let (level, text) = heading.take().expect("a heading was open");
                if level <= HeadingLevel::H2 {
                    in_section = text == SECTION;
                }
                under = text;
            }
            Md::Start(Tag::CodeBlock(CodeBlockKind::Fenced(info))) => {
                open = Some((info.to_string(), String::new()));
            }
            Md::Text(text) | Md::Code(text) => match (heading.as_mut(), open.as_mut()) {
                (Some((_, title)), _) => title.push_str(&text),
                (None, Some((_, body))) => body.push_str(&text),
                (None, None) => {}
            },
            Md::End(TagEnd::CodeBlock) => {
                let Some((info, sql)) = open.take() else {
                    continue;
                };
                let engine = match info.as_str() {
                    "sql duckdb" => Engine::DuckDb,
                    "sql athena" => Engine::Athena,
                    other if in_section && other.starts_with("sql") => {
                        panic!("docs/offsite.md: a ```{other} block names no engine:\n{sql}")
                    }
                    _ => continue,
                };
                if in_section {
                    found.push(Block {
                        engine,
                        heading: under.clone(),
                        sql,
                    });
                }
            }
            _ => {}
        }
    }
    found
}

/// The one block of `engine` under `heading` whose text starts with
/// `opening`.
fn block(page: &[Block], engine: Engine, heading: &str, opening: &str) -> String {
    let matching: Vec<&Block> = page
        .iter()
        .filter(|b| b.engine == engine && b.heading == heading && b.sql.starts_with(opening))
        .collect();
    match matching.as_slice() {
        [one] => one.sql.clone(),
        other => panic!(
            "docs/offsite.md, {SECTION:?} > {heading:?}: {} {engine:?} blocks start with {opening:?}, one expected",
            other.len()
        ),
    }
}

/// The page's placeholders, and what stands for each against moto.
fn placeholders(moto: &Moto) -> [(&'static str, String); 5] {
    let endpoint = moto.endpoint.trim_start_matches("http://");
    [
        ("acme-rollcall", moto.bucket.clone()),
        ("'ACCESSKEY'", "'testing'".into()),
        ("'SECRETKEY'", "'testing-secret-key'".into()),
        ("'127.0.0.1:9000'", format!("'{endpoint}'")),
        ("'eu-west-1'", "'us-east-1'".into()),
    ]
}

fn against(moto: &Moto, sql: &str) -> String {
    placeholders(moto)
        .iter()
        .fold(sql.to_string(), |sql, (from, to)| sql.replace(from, to))
}

/// The page's DuckDB set-up against moto: the extension and the secret,
/// then the `records` view.
fn set_up(page: &[Block], moto: &Moto) -> Vec<String> {
    let secret = block(page, Engine::DuckDb, DUCKDB, "INSTALL httpfs");
    for (placeholder, _) in &placeholders(moto)[1..] {
        assert!(
            secret.contains(placeholder),
            "the page's secret no longer says {placeholder}: the test cannot point it at moto"
        );
    }
    let records = block(page, Engine::DuckDb, DUCKDB, "CREATE VIEW records");
    assert!(records.contains("s3://acme-rollcall/prod/"), "{records}");
    vec![against(moto, &secret), against(moto, &records)]
}

/// Runs `sqls` in one DuckDB session, failing the test with DuckDB's words.
fn duckdb(sqls: &[String]) -> Vec<Answer> {
    session(sqls).unwrap_or_else(|e| panic!("{e}"))
}

/// `rollcall archive` shipping the closed days of `dir` under `prefix`.
fn ship(moto: &Moto, dir: &Path, prefix: &str) {
    let mut command = rollcall(dir);
    command.arg("archive");
    moto.configure(&mut command, prefix);
    let shipped = run(&mut command).success();
    assert!(
        shipped.stdout.contains("shipped archive/"),
        "{}",
        shipped.report()
    );
}

/// Each bucket folder holding archives, as `s3://BUCKET/FOLDER`: whether
/// the code ships to `PREFIX/archive/` or `PREFIX/NAME/archive/`, both
/// are read, so the tests take either.
async fn log_folders(moto: &Moto) -> BTreeSet<String> {
    let keys = moto.keys().await;
    keys.iter()
        .filter(|key| key.ends_with(".jsonl.gz"))
        .map(|key| {
            assert!(key.starts_with(&format!("{PREFIX}/")), "{key}");
            let (folder, _) = key.rsplit_once("/archive/").expect("an archive key");
            format!("s3://{}/{folder}", moto.bucket)
        })
        .collect()
}

/// The index page's log, closed, archived and shipped under [`PREFIX`].
async fn shipped_pages_log() -> (Moto, TestLog) {
    let moto = Moto::start().await;
    let mut log = the_pages_log().await;
    log.close();
    ship(&moto, &log.dir, PREFIX);
    (moto, log)
}

/// A CSV's header and rows.
fn csv(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader.headers().unwrap().iter().map(String::from).collect();
    let rows = reader
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    (header, rows)
}

/// What the page's March query compares with.
fn march_export(dir: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let export = ok(
        dir,
        &[
            "export",
            "--from",
            "2026-03-01",
            "--to",
            "2026-04-01",
            "--raw",
        ],
    );
    csv(&export.stdout)
}

/// The page's March query, over the view `events` instead of `records`,
/// as the page says to read it with several receivers.
fn over_events(march: &str) -> String {
    assert_eq!(march.matches("FROM records").count(), 1, "{march}");
    march.replace("FROM records", "FROM events")
}

/// The columns named in the Athena table's definition, in order.
fn athena_columns(page: &[Block]) -> Vec<String> {
    let table = block(page, Engine::Athena, "Athena", "CREATE EXTERNAL TABLE");
    let (columns, _) = table
        .split_once("ROW FORMAT")
        .expect("the table's columns before ROW FORMAT");
    columns
        .split('`')
        .skip(1)
        .step_by(2)
        .map(String::from)
        .collect()
}

#[tokio::test]
async fn duckdb_reads_the_shipped_archives_in_place_and_gives_the_rows_rollcall_export_gives() {
    let (moto, log) = shipped_pages_log().await;
    let page = blocks(PAGE);
    let march = block(&page, Engine::DuckDb, DUCKDB, "SELECT");
    // Every DuckDB block of the page, in its order, then what the test
    // asks of the result.
    let mut sqls: Vec<String> = page
        .iter()
        .filter(|b| b.engine == Engine::DuckDb)
        .map(|b| against(&moto, &b.sql))
        .collect();
    let march_at = page
        .iter()
        .filter(|b| b.engine == Engine::DuckDb)
        .position(|b| b.sql == march)
        .unwrap();
    sqls.push(against(&moto, &over_events(&march)));
    sqls.push("SELECT DISTINCT log_folder FROM records ORDER BY 1".into());
    sqls.push("SELECT column_name FROM (DESCRIBE records)".into());

    let answers = duckdb(&sqls);

    let [.., events, folders, columns] = answers.as_slice() else {
        unreachable!("three answers pushed")
    };
    let (header, rows) = march_export(&log.dir);
    let answer = &answers[march_at];
    assert_eq!(answer.columns.as_ref(), Some(&header));
    assert!(rows.len() > 10, "{rows:?}");
    assert_eq!(answer.rows, rows, "the March query over the bucket");
    assert_eq!(events.rows, rows, "the March query over events, one log");
    let shipped: Vec<String> = log_folders(&moto).await.into_iter().collect();
    assert_eq!(folders.column("log_folder"), shipped);
    // The DuckDB view and the Athena table name every member a line has,
    // in the same order, so one query reads the same in both.
    let mut viewed = columns.column("column_name");
    assert_eq!(viewed.pop().as_deref(), Some("log_folder"));
    assert_eq!(viewed, athena_columns(&page));
    let lines = ok(&log.dir, &["export", "--format", "jsonl"]).stdout;
    for line in lines.lines() {
        let record: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(line).unwrap();
        for member in record.keys() {
            assert!(viewed.contains(member), "{member} is no column: {line}");
        }
    }
    let archives = moto.keys().await;
    eprintln!(
        "DuckDB over moto, {} archives: the March query ({} rows) in {:.1?}",
        archives.iter().filter(|k| k.ends_with(".jsonl.gz")).count(),
        rows.len(),
        answer.took()
    );
}

/// Every time a record of `room` could change its roster: when each was
/// received and when each membership began, and a millisecond before.
fn moments(dir: &Path, room: &str) -> BTreeSet<String> {
    let (header, rows) = csv(&ok(dir, &["export", "--raw"]).stdout);
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (room_id, received, created) = (
        column("room_id"),
        column("received_at"),
        column("membership_created"),
    );
    rows.iter()
        .filter(|row| row[room_id] == room)
        .flat_map(|row| [&row[received], &row[created]])
        .filter_map(|time| OffsetDateTime::parse(time, &Rfc3339).ok())
        .flat_map(|at| [at, at - time::Duration::milliseconds(1)])
        .map(format_timestamp)
        .collect()
}

/// The page's room query asking about `room` at `at`.
fn asked(query: &str, room: &str, at: &str) -> String {
    for literal in [ASKED_ROOM, ASKED_AT] {
        assert_eq!(query.matches(literal).count(), 1, "{literal} in {query}");
    }
    query
        .replace(ASKED_ROOM, &format!("'{room}'"))
        .replace(ASKED_AT, &format!("'{at}'"))
}

/// Who `rollcall roster` says was in `room` at `at`: email, moderator flag
/// and the seq the membership's state rests on, by email.
fn roster_at(dir: &Path, room: &str, at: &str) -> Vec<[String; 3]> {
    let roster = json(&ok(
        dir,
        &["roster", "--room", room, "--at", at, "--format", "json"],
    ));
    let mut members: Vec<[String; 3]> = roster["members"]
        .as_array()
        .expect("a roster's members")
        .iter()
        .map(|m| {
            let text = |v: &serde_json::Value| match v {
                serde_json::Value::Null => String::new(),
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            [
                text(&m["email"]),
                text(&m["moderator"]),
                text(&m["last_seq"]),
            ]
        })
        .collect();
    members.sort();
    members
}

/// The same of a room query's answer.
fn members(answer: &Answer) -> Vec<[String; 3]> {
    let (emails, moderators, seqs) = (
        answer.column("person_email"),
        answer.column("is_moderator"),
        answer.column("seq"),
    );
    let mut members: Vec<[String; 3]> = emails
        .into_iter()
        .zip(moderators)
        .zip(seqs)
        .map(|((email, moderator), seq)| [email, moderator, seq])
        .collect();
    members.sort();
    members
}

/// Where the page's room queries (DuckDB's and Athena's) disagree with
/// `roster` on the page's log shipped to `moto`, at every moment a
/// record could change a roster, as reports.
fn room_query_mismatches(page: &str, moto: &Moto, dir: &Path) -> Vec<String> {
    let page = blocks(page);
    let queries = [
        ("DuckDB", block(&page, Engine::DuckDb, ROOM_AT, "WITH")),
        ("Athena", block(&page, Engine::Athena, ROOM_AT, "WITH")),
    ];
    let mut asks = Vec::new();
    for (room, _) in [TEAM, LAUNCH] {
        asks.extend(moments(dir, room).into_iter().map(|at| (room, at)));
    }
    asks.push((TEAM.0, ASKED_AT.trim_matches('\'').to_string()));
    let mut sqls = set_up(&page, moto);
    let set = sqls.len();
    for (room, at) in &asks {
        for (_, query) in &queries {
            sqls.push(asked(query, room, at));
        }
    }
    let answers = duckdb(&sqls);
    let mut answers = answers[set..].iter();
    let mut reports = Vec::new();
    for (room, at) in &asks {
        let roster = roster_at(dir, room, at);
        for (engine, _) in &queries {
            let got = members(answers.next().expect("an answer per query"));
            if got != roster {
                reports.push(format!(
                    "{engine}, {room} at {at}: the query names {got:?}, roster {roster:?}"
                ));
            }
        }
    }
    assert!(asks.len() > 20, "{asks:?}");
    reports
}

#[tokio::test]
async fn the_pages_room_query_names_whom_roster_names_at_every_moment_a_record_changed_something() {
    let (moto, log) = shipped_pages_log().await;

    let reports = room_query_mismatches(PAGE, &moto, &log.dir);

    assert!(reports.is_empty(), "{}", reports.join("\n"));
    let team = roster_at(&log.dir, TEAM.0, ASKED_AT.trim_matches('\''));
    assert_eq!(team.len(), 3, "the page's example has three members");
}

#[tokio::test]
async fn a_room_query_that_forgets_leaves_is_caught_naming_who_roster_says_had_left() {
    let (moto, log) = shipped_pages_log().await;
    let forgets = "\n    AND event <> 'left'";
    assert!(
        PAGE.contains(forgets),
        "the DuckDB room query drops leaves so"
    );
    let page = PAGE.replacen(forgets, "", 1);

    let reports = room_query_mismatches(&page, &moto, &log.dir);

    assert!(!reports.is_empty());
    assert!(
        reports.iter().all(|r| r.starts_with("DuckDB")),
        "{reports:#?}"
    );
    assert!(
        reports.iter().any(|r| r.contains("cy@example.com")),
        "{reports:#?}"
    );
}

/// `record` as each of `logs` receives it: the first at `at`, each next
/// one 250 ms later.
async fn received_by(logs: &[&TestLog], at: &str, record: Record) {
    let mut when = OffsetDateTime::parse(at, &Rfc3339).expect("an RFC 3339 time");
    for log in logs {
        log.append_at(when, record.clone()).await;
        when += time::Duration::milliseconds(250);
    }
}

/// Two receivers of the same deliveries in March 2026: Bo made moderator,
/// unmade and made again (the same event, membership and membership start
/// twice in each log), Cy's join recorded by B alone and Ana's leave by A
/// alone.
async fn two_receivers() -> (TestLog, TestLog) {
    let (a, b) = (TestLog::new(), TestLog::new());
    let started = || Record::receiver(Event::ReceiverStarted, None);
    received_by(&[&a, &b], "2026-03-02T09:00:00Z", started()).await;
    let ana = "2026-03-02T09:10:00.000Z";
    let joined = membership(Event::Joined, "Ana Silva", TEAM, ana);
    received_by(&[&a, &b], ana, joined).await;
    let bo = "2026-03-02T09:20:00.000Z";
    let joined = membership(Event::Joined, "Bo Chen", TEAM, bo);
    received_by(&[&a, &b], bo, joined).await;
    let role = |event, moderator| Record {
        is_moderator: Some(moderator),
        ..membership(event, "Bo Chen", TEAM, bo)
    };
    let granted = role(Event::ModeratorGranted, true);
    received_by(&[&a, &b], "2026-03-02T10:00:00Z", granted.clone()).await;
    let revoked = role(Event::ModeratorRevoked, false);
    received_by(&[&a, &b], "2026-03-02T11:00:00Z", revoked).await;
    received_by(&[&a, &b], "2026-03-03T09:00:00Z", granted).await;
    let cy = "2026-03-03T10:00:00.000Z";
    received_by(&[&b], cy, membership(Event::Joined, "Cy Diaz", LAUNCH, cy)).await;
    let left = membership(Event::Left, "Ana Silva", TEAM, ana);
    received_by(&[&a], "2026-03-04T09:00:00Z", left).await;
    let dee = "2026-03-04T10:00:00.000Z";
    let joined = membership(Event::Joined, "Dee Ek", LAUNCH, dee);
    received_by(&[&a, &b], dee, joined).await;
    (a, b)
}

#[tokio::test]
async fn two_receivers_under_one_prefix_count_twice_in_records_and_once_in_the_pages_events_views()
{
    let moto = Moto::start().await;
    let (mut a, mut b) = two_receivers().await;
    a.close();
    b.close();
    ship(&moto, &a.dir, PREFIX);
    // Under the prefix either way: a folder of its own below it.
    ship(&moto, &b.dir, &format!("{PREFIX}/b"));
    assert_eq!(log_folders(&moto).await.len(), 2);
    let page = blocks(PAGE);
    let march = block(&page, Engine::DuckDb, DUCKDB, "SELECT");
    let events = against(&moto, &over_events(&march));
    let room_query = block(&page, Engine::DuckDb, ROOM_AT, "WITH");
    let at = "2026-03-05T12:00:00.000Z";
    let mut sqls = set_up(&page, &moto);
    let set = sqls.len();
    sqls.extend([
        against(&moto, &march),
        block(&page, Engine::DuckDb, RECEIVERS, "CREATE VIEW events"),
        events.clone(),
        "DROP VIEW events".into(),
        block(&page, Engine::Athena, RECEIVERS, "CREATE VIEW events"),
        events,
        asked(&room_query, TEAM.0, at),
        asked(&room_query, LAUNCH.0, at),
    ]);

    let answers = duckdb(&sqls);

    let [records, _, duckdb_events, _, _, athena_events, team, launch] = &answers[set..] else {
        panic!("one answer per statement: {answers:?}")
    };
    let (_, a_rows) = march_export(&a.dir);
    let (header, b_rows) = march_export(&b.dir);
    assert_eq!(records.rows.len(), a_rows.len() + b_rows.len());
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (event, email) = (column("event"), column("person_email"));
    // Each event once, its first copy: all of A's, which came first, and
    // from B its own start and the join only B had.
    let mut once: Vec<Vec<String>> = b_rows
        .into_iter()
        .filter(|row| row[event].starts_with("receiver_") || row[email] == "cy@example.com")
        .chain(a_rows)
        .collect();
    once.sort_by_key(|row| {
        (
            row[column("received_at")].clone(),
            row[0].parse::<u64>().unwrap(),
        )
    });
    assert_eq!(once.len(), 10, "{once:#?}");
    assert_eq!(duckdb_events.rows, once, "DuckDB's events view");
    assert_eq!(athena_events.rows, once, "Athena's events view");
    // A change one receiver missed is there from the other: A had every
    // change of Team room, B every change of Launch.
    let who = |answer: &Answer| -> Vec<[String; 2]> {
        members(answer)
            .into_iter()
            .map(|[e, m, _]| [e, m])
            .collect()
    };
    let roster = |dir: &Path, room: &str| -> Vec<[String; 2]> {
        roster_at(dir, room, at)
            .into_iter()
            .map(|[e, m, _]| [e, m])
            .collect()
    };
    assert_eq!(who(team), roster(&a.dir, TEAM.0));
    assert_eq!(who(launch), roster(&b.dir, LAUNCH.0));
    assert_eq!(who(team).len(), 1, "Ana left, as A alone recorded");
    assert_eq!(who(launch).len(), 2, "Cy joined, as B alone recorded");
}
