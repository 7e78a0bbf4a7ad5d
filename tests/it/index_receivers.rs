//! The index of several receivers (`--dir` more than once,
//! `FIRSTDIR/merged.sqlite`): each event once whichever receivers
//! recorded it, each row naming the seq and receiver it rests on, a
//! coverage gap only where every receiver was down, a copy reconciled
//! later counted once, rebuilt when asked for another set of receivers,
//! checked by `index --check`, answering as the index of one log holding
//! each event once would, and read by the console of a `serve` given the
//! other receiver's directory. Logs are written by the real writer
//! (`TestLog`) or by real servers over sockets (`TestApp`), each receiver
//! in a directory of its own.

use std::sync::Arc;

use rollcall::clock::FakeClock;
use rollcall::index::Index;
use rollcall::log::head::Head;
use rollcall::log::record::{Event, Record, Source, format_timestamp};
use rollcall::receiver::{Receivers, remember};
use rollcall::secret::Secret;
use rollcall::webhook::signature;
use serde_json::Value;
use time::{Duration, OffsetDateTime};

use crate::index::Lcg;
use crate::read_side::column;
use crate::roster::{json, member};
use crate::support::app::{START, TestApp, membership};
use crate::support::bin::{Run, rollcall, run};
use crate::support::console::ConsoleApp;
use crate::support::eventually;
use crate::support::logs::TestLog;

/// Two receivers' logs, `a` and `b`, each written by the real writer in
/// a directory of its own.
pub(crate) struct Two {
    pub(crate) a: TestLog,
    pub(crate) b: TestLog,
}

impl Two {
    fn new() -> Self {
        Two {
            a: named("a"),
            b: named("b"),
        }
    }

    /// `rollcall --dir A --dir B ARGS`.
    pub(crate) fn run(&self, args: &[&str]) -> Run {
        run(rollcall(&self.a.dir)
            .arg("--dir")
            .arg(&self.b.dir)
            .args(args))
    }

    pub(crate) fn ok(&self, args: &[&str]) -> Run {
        self.run(args).success()
    }

    fn merged_file(&self) -> std::path::PathBuf {
        self.a.dir.join("merged.sqlite")
    }

    /// One value of a query of the merged index.
    fn query(&self, sql: &str) -> String {
        let conn = rusqlite::Connection::open(self.merged_file()).unwrap();
        conn.query_row(sql, [], |row| row.get(0)).unwrap()
    }
}

/// A log whose receiver is named `name`.
fn named(name: &str) -> TestLog {
    let log = TestLog::new();
    remember(&log.dir, &name.parse().unwrap()).unwrap();
    log
}

/// `HH:MM:SS` on the day the tests' clocks start.
fn time(hms: &str) -> OffsetDateTime {
    let (h, rest) = hms.split_once(':').unwrap();
    let (m, s) = rest.split_once(':').unwrap();
    START.replace_time(
        time::Time::from_hms(h.parse().unwrap(), m.parse().unwrap(), s.parse().unwrap()).unwrap(),
    )
}

fn started() -> Record {
    Record::receiver(Event::ReceiverStarted, None)
}

fn stopped() -> Record {
    Record::receiver(Event::ReceiverStopped, None)
}

/// The same delivery at both receivers: at `a` at `hms`, at `b` a second
/// later.
async fn both(two: &Two, hms: &str, record: Record) {
    two.a.append_at(time(hms), record.clone()).await;
    two.b
        .append_at(time(hms) + Duration::seconds(1), record)
        .await;
}

/// Two receivers through a day: some deliveries reach both, some one;
/// `a` restarts 12:10-12:30, `b` 13:00-13:20, and both are down
/// 14:10-14:50 (a from 14:00 to 15:00, b from 14:10 to 14:50).
pub(crate) async fn a_day_of_two() -> Two {
    let two = Two::new();
    let (a, b) = (&two.a, &two.b);
    a.append_at(time("12:00:00"), started()).await;
    b.append_at(time("12:00:02"), started()).await;
    both(&two, "12:01:00", member(Event::Joined, "ana", "room-1")).await; // a:2
    both(&two, "12:02:00", member(Event::Joined, "bo", "room-1")).await; // a:3
    a.append_at(time("12:03:00"), member(Event::Joined, "cy", "room-2"))
        .await; // a:4
    b.append_at(time("12:04:00"), member(Event::Joined, "dee", "room-2"))
        .await; // b:4
    a.append_at(time("12:10:00"), stopped()).await;
    b.append_at(time("12:20:00"), member(Event::Joined, "eve", "room-1"))
        .await; // b:5
    a.append_at(time("12:30:00"), started()).await;
    both(&two, "12:35:00", member(Event::Left, "bo", "room-1")).await; // a:7
    b.append_at(time("13:00:00"), stopped()).await;
    a.append_at(time("13:10:00"), member(Event::Joined, "fay", "room-1"))
        .await; // a:8
    b.append_at(time("13:20:00"), started()).await;
    a.append_at(time("14:00:00"), stopped()).await;
    b.append_at(time("14:10:00"), stopped()).await;
    b.append_at(time("14:50:00"), started()).await;
    a.append_at(time("15:00:00"), started()).await;
    both(&two, "15:05:00", member(Event::Left, "ana", "room-1")).await; // a:11
    two
}

/// Room 1's roster at 13:30 as CSV: ana, eve and fay.
const ROOM_1_AT_1330: [&str; 7] = [
    "roster",
    "--room",
    "room-1",
    "--at",
    "2026-11-27T13:30:00Z",
    "--format",
    "csv",
];

/// The stderr lines of a run that name a coverage gap.
pub(crate) fn gap_warnings(run: &Run) -> Vec<&str> {
    run.stderr
        .lines()
        .filter(|line| line.contains("coverage gap"))
        .collect()
}

#[tokio::test]
async fn roster_at_a_time_inside_one_receivers_gap_has_no_warning_and_inside_a_gap_of_both_warns() {
    let two = a_day_of_two().await;

    let one_down = two.ok(&["roster", "--room", "room-1", "--at", "2026-11-27T12:20:30Z"]);
    let b_down = two.ok(&["roster", "--room", "room-1", "--at", "2026-11-27T13:10:30Z"]);
    let both_down = two.ok(&["roster", "--room", "room-1", "--at", "2026-11-27T14:30:00Z"]);

    assert!(gap_warnings(&one_down).is_empty(), "{}", one_down.report());
    assert!(gap_warnings(&b_down).is_empty(), "{}", b_down.report());
    assert_eq!(
        gap_warnings(&both_down),
        [
            "warning: room-1: 2026-11-27T14:30:00.000Z falls in a coverage gap from 2026-11-27T14:10:00.000Z to 2026-11-27T14:50:00.000Z: deliveries were not being received; the roster at 2026-11-27T14:30:00.000Z is unknown, shown is what the log knew"
        ],
        "{}",
        both_down.report()
    );
    // Alone, a's own gap is one: the warning is the merge's doing.
    let a_alone = run(rollcall(&two.a.dir).args([
        "roster",
        "--room",
        "room-1",
        "--at",
        "2026-11-27T12:20:30Z",
    ]))
    .success();
    assert_eq!(gap_warnings(&a_alone).len(), 1, "{}", a_alone.report());
    assert_eq!(
        two.query("SELECT json_group_array(from_at || ' ' || to_at) FROM coverage_gaps"),
        r#"["2026-11-27T14:10:00.000Z 2026-11-27T14:50:00.000Z"]"#
    );
}

#[tokio::test]
async fn a_receiver_whose_log_ends_without_a_stop_hides_no_later_gap_of_the_other() {
    let two = a_day_of_two().await;
    // b dies after 15:05 (no stop recorded); a restarts 16:00-16:30.
    two.a.append_at(time("16:00:00"), stopped()).await;
    two.a.append_at(time("16:30:00"), started()).await;
    two.a
        .append_at(time("16:40:00"), member(Event::Joined, "gus", "room-1"))
        .await;

    let a_down = two.ok(&["roster", "--room", "room-1", "--at", "2026-11-27T16:15:00Z"]);
    let after = two.ok(&["roster", "--room", "room-1", "--at", "2026-11-27T16:45:00Z"]);

    assert_eq!(
        gap_warnings(&a_down),
        [
            "warning: room-1: 2026-11-27T16:15:00.000Z falls in a coverage gap from 2026-11-27T16:00:00.000Z to 2026-11-27T16:30:00.000Z (the receiver had crashed): deliveries were not being received; the roster at 2026-11-27T16:15:00.000Z is unknown, shown is what the log knew"
        ],
        "{}",
        a_down.report()
    );
    // a is up after its last record.
    assert!(gap_warnings(&after).is_empty(), "{}", after.report());
    two.ok(&["index", "--check"]);
}

#[tokio::test]
async fn a_receiver_only_quiet_while_the_other_restarts_leaves_no_gap() {
    let two = a_day_of_two().await;
    // No delivery after 15:05; b is upgraded 16:00-16:30, a only quiet.
    two.b.append_at(time("16:00:00"), stopped()).await;
    two.b.append_at(time("16:30:00"), started()).await;

    let b_down = two.ok(&["roster", "--room", "room-1", "--at", "2026-11-27T16:15:00Z"]);

    assert!(gap_warnings(&b_down).is_empty(), "{}", b_down.report());
    assert_eq!(
        two.query("SELECT count(*) || '' FROM coverage_gaps"),
        "1",
        "only the gap of both, 14:10-14:50"
    );
}

#[tokio::test]
async fn roster_rooms_and_history_over_two_receivers_give_each_member_once_naming_seq_and_receiver()
{
    let two = a_day_of_two().await;

    let roster = two.ok(&ROOM_1_AT_1330);
    let rooms = json(&two.ok(&["rooms", "--format", "json"]));
    let history = two.ok(&["history", "--person", "ana@example.com", "--format", "csv"]);
    let history_json =
        json(&two.ok(&["history", "--person", "ana@example.com", "--format", "json"]));

    assert_eq!(
        column(&roster.stdout, "email"),
        ["ana@example.com", "eve@example.com", "fay@example.com"],
        "{}",
        roster.report()
    );
    assert_eq!(column(&roster.stdout, "joined_seq"), ["a:2", "b:5", "a:8"]);
    assert_eq!(column(&roster.stdout, "last_seq"), ["a:2", "b:5", "a:8"]);
    assert!(
        roster
            .stderr
            .contains(&format!("--dir {} for a", two.a.dir.display()))
            && roster
                .stderr
                .contains(&format!("--dir {} for b", two.b.dir.display())),
        "the hint names each receiver's directory: {}",
        roster.report()
    );
    let members: Vec<&Value> = rooms
        .as_array()
        .unwrap()
        .iter()
        .map(|room| &room["members_now"])
        .collect();
    assert_eq!(
        members,
        [2, 2],
        "room-1: eve, fay; room-2: cy, dee: {rooms}"
    );
    assert_eq!(
        column(&history.stdout, "joined_seq"),
        ["a:2"],
        "{}",
        history.report()
    );
    assert_eq!(column(&history.stdout, "left_seq"), ["a:11"]);
    let stay = &history_json["stays"][0];
    assert_eq!(
        (&stay["joined_receiver"], &stay["left_receiver"]),
        (&Value::from("a"), &Value::from("a"))
    );
    assert!(
        history_json["warnings"][0].as_str().unwrap().contains(
            "from 2026-11-27T14:10:00.000Z to 2026-11-27T14:50:00.000Z (every receiver was down)"
        ),
        "{history_json}"
    );
    assert_eq!(
        two.query(
            "SELECT json_group_array(json_array(person_email, event, receiver, seq, json(receivers)))
             FROM (SELECT * FROM records WHERE room_id <> '' ORDER BY received_at)"
        ),
        serde_json::json!([
            ["ana@example.com", "joined", "a", 2, ["a", "b"]],
            ["bo@example.com", "joined", "a", 3, ["a", "b"]],
            ["cy@example.com", "joined", "a", 4, ["a"]],
            ["dee@example.com", "joined", "b", 4, ["b"]],
            ["eve@example.com", "joined", "b", 5, ["b"]],
            ["bo@example.com", "left", "a", 7, ["a", "b"]],
            ["fay@example.com", "joined", "a", 8, ["a"]],
            ["ana@example.com", "left", "a", 11, ["a", "b"]],
        ])
        .to_string()
    );
}

#[tokio::test]
async fn one_dir_prints_seqs_as_before_with_no_receiver_column_or_hint() {
    let two = a_day_of_two().await;
    let alone = run(rollcall(&two.a.dir).args(ROOM_1_AT_1330)).success();
    assert_eq!(
        column(&alone.stdout, "joined_seq"),
        ["2", "8"],
        "{}",
        alone.report()
    );
    assert!(!alone.stderr.contains("--dir"), "{}", alone.report());
    let json = json(
        &run(rollcall(&two.a.dir).args([
            "history",
            "--person",
            "ana@example.com",
            "--format",
            "json",
        ]))
        .success(),
    );
    assert!(json["stays"][0].get("joined_receiver").is_none(), "{json}");
}

#[tokio::test]
async fn a_copy_reconciled_later_at_the_other_receiver_counts_once_and_adds_it_to_receivers() {
    let two = Two::new();
    let (a, b) = (&two.a, &two.b);
    a.append_at(time("12:00:00"), started()).await;
    b.append_at(time("12:00:01"), started()).await;
    b.append_at(time("12:04:00"), stopped()).await;
    a.append_at(time("12:05:00"), member(Event::Joined, "fay", "room-1"))
        .await;
    let before = two.ok(&["roster", "--room", "room-1", "--format", "csv"]);
    assert_eq!(column(&before.stdout, "joined_seq"), ["a:2"]);
    let fay =
        "SELECT json_group_array(receivers) FROM records WHERE person_email = 'fay@example.com'";
    assert_eq!(two.query(fay), r#"["[\"a\"]"]"#);

    // b comes back and its reconciliation finds fay, as a copy of its own.
    b.append_at(time("12:30:00"), started()).await;
    let found = Record {
        source: Source::Reconciled,
        not_before: Some("2026-11-27T12:04:00.000Z".into()),
        ..member(Event::Joined, "fay", "room-1")
    };
    b.append_at(time("12:30:05"), found).await;
    let after = two.ok(&["roster", "--room", "room-1", "--format", "csv"]);

    assert_eq!(
        column(&after.stdout, "email"),
        ["fay@example.com"],
        "{}",
        after.report()
    );
    assert_eq!(
        column(&after.stdout, "joined_seq"),
        ["a:2"],
        "{}",
        after.report()
    );
    assert_eq!(two.query(fay), r#"["[\"a\",\"b\"]"]"#);
    let rooms = json(&two.ok(&["rooms", "--format", "json"]));
    assert_eq!(rooms[0]["members_now"], 1, "{rooms}");
    // A fresh fold of both logs, which meets both copies in one merge,
    // agrees with the index built in two catch-ups.
    two.ok(&["index", "--check"]);
}

#[tokio::test]
async fn the_merged_index_opened_with_another_set_of_receivers_is_rebuilt_saying_why() {
    let two = a_day_of_two().await;
    two.ok(&["index"]);
    let c = named("c");
    c.append_at(time("12:00:00"), started()).await;
    c.append_at(time("12:01:30"), member(Event::Joined, "gus", "room-1"))
        .await;

    let other = run(rollcall(&two.a.dir)
        .arg("--dir")
        .arg(&c.dir)
        .args(["roster", "--room", "room-1", "--format", "csv"]))
    .success();

    assert!(
        other
            .stderr
            .contains("warning: rebuilding the index from the receivers' logs:")
            && other
                .stderr
                .contains("holds receivers a, b, and these are a, c"),
        "{}",
        other.report()
    );
    assert!(
        other.stdout.contains("gus@example.com") && !other.stdout.contains("eve@example.com"),
        "{}",
        other.report()
    );
    let again = run(rollcall(&two.a.dir)
        .arg("--dir")
        .arg(&c.dir)
        .args(["index"]))
    .success();
    assert!(!again.stderr.contains("rebuilding"), "{}", again.report());
}

#[tokio::test]
async fn a_receivers_log_rewritten_under_the_merged_index_rebuilds_it_naming_that_receiver() {
    let two = a_day_of_two().await;
    two.ok(&["index"]);
    // b's log replaced by another whose records differ (c's, same day).
    let c = named("c");
    c.append_at(time("12:00:00"), started()).await;
    for n in 0..12 {
        let who = format!("x{n}");
        c.append_at(
            time("12:05:00") + Duration::seconds(n),
            member(Event::Joined, &who, "room-9"),
        )
        .await;
    }
    let day = two.b.date_name();
    std::fs::copy(c.day_file(&day), two.b.day_file(&day)).unwrap();
    std::fs::copy(c.dir.join(".head"), two.b.dir.join(".head")).unwrap();

    let read = two.ok(&["rooms", "--format", "json"]);

    assert!(
        read.stderr
            .contains("warning: rebuilding the index from the receivers' logs: receiver b (")
            && read.stderr.contains("the log was rewritten or restored"),
        "{}",
        read.report()
    );
    assert!(read.stdout.contains("room-9"), "{}", read.report());
}

#[tokio::test]
async fn index_check_over_two_receivers_passes_and_names_a_row_edited_by_hand() {
    let two = a_day_of_two().await;
    let built = two.ok(&["index"]);
    assert!(
        built
            .stdout
            .contains("merged.sqlite up to seq 11 of a, seq 11 of b"),
        "{}",
        built.report()
    );
    let sound = two.ok(&["index", "--check"]);
    assert!(
        sound
            .stdout
            .contains("every view agrees with the merged logs"),
        "{}",
        sound.report()
    );

    let conn = rusqlite::Connection::open(two.merged_file()).unwrap();
    // Say b alone recorded cy's join, which only a did.
    conn.execute(
        "UPDATE record_copy SET receivers = 2 WHERE receivers = 1 AND seq = 4",
        [],
    )
    .unwrap();
    drop(conn);
    let edited = two.run(&["index", "--check"]).code(1);

    assert!(
        edited.stdout.contains("view records") && edited.stdout.contains("cy@example.com"),
        "{}",
        edited.report()
    );
    two.ok(&["index", "--rebuild"]);
    two.ok(&["index", "--check"]);
}

#[test]
fn serve_with_a_second_dir_and_no_console_is_refused_saying_why() {
    let temp = tempfile::tempdir().unwrap();
    let (own, other) = (temp.path().join("a"), temp.path().join("b"));
    let refused =
        run(rollcall(&own)
            .arg("--dir")
            .arg(&other)
            .args(["serve", "--listen", "127.0.0.1:0"]));
    assert_ne!(refused.status.code(), Some(0), "{}", refused.report());
    assert!(
        refused.stderr.contains("add --console"),
        "{}",
        refused.report()
    );
}

/// Receiver b's log, in which dee joined room 1.
async fn b_with_dee() -> TestLog {
    let b = named("b");
    b.append_at(
        START + Duration::seconds(30),
        member(Event::Joined, "dee", "room-1"),
    )
    .await;
    b
}

/// The console of receiver a's serve, given `b`'s directory to read too.
async fn console_beside(b: &TestLog) -> ConsoleApp {
    let b_dir = b.dir.clone();
    ConsoleApp::spawn_configured(move |settings| {
        std::fs::create_dir_all(&settings.dir).unwrap();
        remember(&settings.dir, &"a".parse().unwrap()).unwrap();
        settings.merged_with = vec![b_dir];
    })
    .await
}

#[tokio::test]
async fn the_console_of_serve_given_the_other_receivers_dir_shows_both_logs_on_the_room_page() {
    let b = b_with_dee().await;
    let app = console_beside(&b).await;
    app.deliver("created", "room-1", "alice@example.com", "Alice")
        .await;
    // Serve's indexer brings the merged index up to both heads by itself.
    let merged = app.dir.join("merged.sqlite");
    let head = |dir: &std::path::Path| Head::read(dir).unwrap().map_or(0, |h| h.seq);
    let (a_head, b_head) = (head(&app.dir), head(&b.dir));
    eventually("serve's indexer to read both receivers", || {
        let merged = merged.clone();
        async move {
            let Ok(conn) = rusqlite::Connection::open(&merged) else {
                return false;
            };
            let read: Vec<(String, u64)> = conn
                .prepare("SELECT receiver, seq FROM index_state")
                .and_then(|mut s| {
                    s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                        .collect::<Result<_, _>>()
                })
                .unwrap_or_default();
            read == [("a".to_string(), a_head), ("b".to_string(), b_head)]
        }
    })
    .await;
    let cookie = app.login().await;

    let (status, _, page) = app.get("/room?id=room-1", Some(&cookie)).await;

    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Members now (2)"), "{page}");
    let roster = &page[page.find("Members now").unwrap()..page.find("Coverage gaps").unwrap()];
    assert!(
        roster.contains("alice@example.com") && roster.contains("dee@example.com"),
        "{roster}"
    );
    assert!(
        roster.contains(">a:2<") && roster.contains(">b:1<"),
        "each seq names its receiver: {roster}"
    );
    let (_, _, search) = app.get("/?person=dee", Some(&cookie)).await;
    assert!(search.contains(">b:1<"), "{search}");
}

#[tokio::test]
async fn serve_starts_and_records_when_the_other_receivers_directory_is_misnamed_and_its_pages_say_why()
 {
    let b = b_with_dee().await;
    std::fs::write(b.dir.join(".receiver"), "not a name!\n").unwrap();
    let app = console_beside(&b).await;
    // Recorded: `deliver` asserts its 200.
    let seq = app
        .deliver("created", "room-1", "alice@example.com", "Alice")
        .await;
    assert!(seq > 1);
    let cookie = app.login().await;

    let (status, _, page) = app.get("/room?id=room-1", Some(&cookie)).await;

    assert_eq!(status, 503, "{page}");
    assert!(page.contains(".receiver"), "the page says why: {page}");

    // Named again, the receivers are read again: the indexer, retrying,
    // builds the merged index, and the page shows both logs.
    std::fs::write(b.dir.join(".receiver"), "b\n").unwrap();
    eventually("the room page to show both receivers' members", || {
        let (app, cookie) = (&app, &cookie);
        async move {
            let (status, _, page) = app.get("/room?id=room-1", Some(cookie)).await;
            status == 200 && page.contains("dee@example.com")
        }
    })
    .await;
}

#[tokio::test]
async fn a_merged_index_remade_for_other_receivers_under_an_open_connection_is_not_folded_into() {
    let (a, b, c) = (named("a"), named("b"), named("c"));
    for (log, who) in [(&a, "ana"), (&b, "bo"), (&c, "cy")] {
        log.append_at(time("10:00:00"), member(Event::Joined, who, "room-1"))
            .await;
    }
    b.append_at(time("10:01:00"), member(Event::Joined, "bea", "room-1"))
        .await;
    let clock = FakeClock::new(START);
    let ab = Receivers::of_dirs(&[a.dir.clone(), b.dir.clone()]).unwrap();
    let (mut held, _) = Index::open_of(&ab, &a.dir, &clock).unwrap();
    // serve's indexer keeps its connection; a read of another set with
    // the same first --dir remakes the file for that set meanwhile.
    let ac = Receivers::of_dirs(&[a.dir.clone(), c.dir.clone()]).unwrap();
    let (mut other, _) = Index::open_of(&ac, &a.dir, &clock).unwrap();
    other.catch_up(&clock).unwrap();

    let refused = held.catch_up(&clock).unwrap_err();

    let why = format!("{:#}", anyhow::Error::from(refused));
    assert!(why.contains("now holds receivers a, c"), "{why}");
    let conn = rusqlite::Connection::open(a.dir.join("merged.sqlite")).unwrap();
    let people: Vec<String> = conn
        .prepare("SELECT person_email FROM records ORDER BY person_email")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        people,
        ["ana@example.com", "cy@example.com"],
        "b's records were never folded in"
    );
}

/// A receiver: `serve` in process on a directory named `name` of its
/// own, with a secret of its own, its clock at `clock`.
async fn receiver(dir: &std::path::Path, name: &str, at: OffsetDateTime) -> TestApp {
    let (dir, name) = (dir.to_path_buf(), name.to_string());
    TestApp::spawn_in(
        &dir.clone(),
        Arc::new(FakeClock::new(at)),
        move |settings| {
            std::fs::create_dir_all(&dir).unwrap();
            remember(&dir, &name.parse().unwrap()).unwrap();
            settings.secret = Some(Secret::new(format!("secret-{name}")));
        },
    )
    .await
}

/// Delivers `who`'s `event` (created/deleted) in `room` to `app`, signed
/// with its receiver's secret.
async fn deliver(app: &TestApp, name: &str, event: &str, who: &str, room: &str) {
    let mut body: Value = serde_json::from_slice(&membership(
        event,
        &format!("{room}:{who}"),
        room,
        "2026-11-27T11:00:00.000Z",
    ))
    .unwrap();
    body["data"]["personEmail"] = format!("{who}@example.com").into();
    body["data"]["personId"] = format!("person-{who}").into();
    body["data"]["personDisplayName"] = who.into();
    let body = serde_json::to_vec(&body).unwrap();
    let signed = signature::sign(&Secret::new(format!("secret-{name}")), &body);
    let answer = app.post("team", &body, Some(&signed)).await;
    assert_eq!(answer.status(), 200, "{name} recorded {who}'s {event}");
}

#[tokio::test]
async fn two_servers_each_with_its_own_dir_and_secret_read_together_give_each_member_once() {
    let temp = tempfile::tempdir().unwrap();
    let (a_dir, b_dir) = (temp.path().join("site-a"), temp.path().join("site-b"));
    let a = receiver(&a_dir, "a", START).await;
    let b = receiver(&b_dir, "b", START).await;
    for app in [(&a, "a"), (&b, "b")] {
        deliver(app.0, app.1, "created", "ana", "room-1").await;
        deliver(app.0, app.1, "created", "bo", "room-1").await;
    }
    b.stop().await;
    a.clock.advance(Duration::minutes(5));
    deliver(&a, "a", "deleted", "bo", "room-1").await;
    let b = receiver(&b_dir, "b", START + Duration::minutes(10)).await;
    deliver(&b, "b", "created", "cy", "room-1").await;
    a.stop().await;
    b.stop().await;

    let read = run(rollcall(&a_dir)
        .arg("--dir")
        .arg(&b_dir)
        .args(["roster", "--room", "room-1", "--format", "json"]))
    .success();
    let roster = json(&read);
    let members: Vec<(&Value, &Value)> = roster["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (&m["email"], &m["joined_receiver"]))
        .collect();
    assert_eq!(
        members,
        [
            (&Value::from("ana@example.com"), &Value::from("a")),
            (&Value::from("cy@example.com"), &Value::from("b"))
        ],
        "{}",
        read.report()
    );
    let conn = rusqlite::Connection::open(a_dir.join("merged.sqlite")).unwrap();
    let receivers: Vec<(String, String, String)> = conn
        .prepare("SELECT person_email, event, receivers FROM records WHERE room_id <> '' ORDER BY received_at, seq")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let both = r#"["a","b"]"#.to_string();
    assert_eq!(
        receivers,
        [
            ("ana@example.com".into(), "joined".into(), both.clone()),
            ("bo@example.com".into(), "joined".into(), both),
            ("bo@example.com".into(), "left".into(), r#"["a"]"#.into()),
            ("cy@example.com".into(), "joined".into(), r#"["b"]"#.into()),
        ]
    );
}

// ------------------------------------------------------- differential

/// One event: the copy each receiver recorded, if it did, and when.
struct Generated {
    record: Record,
    a: Option<(OffsetDateTime, Record)>,
    b: Option<(OffsetDateTime, Record)>,
}

impl Generated {
    /// The copy the merge gives out: the first received (a's on a tie).
    fn first(&self) -> &(OffsetDateTime, Record) {
        match (&self.a, &self.b) {
            (Some(a), Some(b)) if b.0 < a.0 => b,
            (Some(a), _) => a,
            (None, Some(b)) => b,
            (None, None) => unreachable!("every event reached a receiver"),
        }
    }

    fn receivers(&self) -> Value {
        let mut names = Vec::new();
        if self.a.is_some() {
            names.push("a");
        }
        if self.b.is_some() {
            names.push("b");
        }
        serde_json::json!(names)
    }
}

/// Churn in three rooms: joins, leaves and role changes, each recorded
/// by both receivers (a moment apart, either first), by one, or by one
/// and reconciled by the other an hour or more later; and while one
/// receiver is down, by the other alone.
fn generate(rng: &mut Lcg) -> Vec<Generated> {
    let people = ["ana", "bo", "cy", "dee", "eve", "fay"];
    let rooms = ["room-a", "room-b", "room-c"];
    let mut present = vec![[None::<bool>; 3]; people.len()];
    let mut when = START + Duration::minutes(1);
    let mut events = Vec::new();
    for n in 0..240 {
        when += Duration::seconds(5 + rng.next(40) as i64);
        let (p, r) = (rng.next(6) as usize, rng.next(3) as usize);
        let mut record = member(Event::Joined, people[p], rooms[r]);
        record.membership_created = Some(format!("created-{n}"));
        if rng.next(6) == 0 {
            record.room_title = Some(format!("Room {r} v{}", rng.next(3)));
        }
        record.event = match present[p][r] {
            None => {
                record.is_moderator = Some(rng.next(4) == 0);
                Event::Joined
            }
            Some(_) if rng.next(2) == 0 => Event::Left,
            Some(true) => Event::ModeratorRevoked,
            Some(false) => Event::ModeratorGranted,
        };
        present[p][r] = match record.event {
            Event::Left => None,
            Event::Joined => record.is_moderator,
            event => Some(event == Event::ModeratorGranted),
        };
        let apart = Duration::milliseconds(rng.next(3000) as i64);
        let minute = (when - START).whole_minutes();
        let (a, b, late) = match rng.next(20) {
            // a is down for a while, then b: the other records alone.
            _ if (40..55).contains(&minute) => (None, Some(when), false),
            _ if (70..90).contains(&minute) => (Some(when), None, false),
            0..=12 if rng.next(2) == 0 => (Some(when), Some(when + apart), false),
            0..=12 => (Some(when + apart), Some(when), false),
            13..=15 => (Some(when), None, false),
            16..=18 => (None, Some(when), false),
            _ => {
                let later = when + Duration::minutes(60 + rng.next(120) as i64);
                (Some(when), Some(later), true)
            }
        };
        let copy = |at: Option<OffsetDateTime>, reconciled: bool| {
            at.map(|at| {
                let mut copy = record.clone();
                if reconciled {
                    copy.source = Source::Reconciled;
                    copy.not_before = Some(format_timestamp(when));
                }
                (at, copy)
            })
        };
        events.push(Generated {
            a: copy(a, false),
            b: copy(b, late),
            record,
        });
    }
    events
}

/// The receiver's copies, in the order it received them.
async fn write(log: &TestLog, copies: Vec<(OffsetDateTime, Record)>) -> Vec<(OffsetDateTime, u64)> {
    let mut copies = copies;
    copies.sort_by_key(|(at, _)| *at);
    let mut seqs = Vec::new();
    log.append_at(START, started()).await;
    for (when, record) in copies {
        let seq = log.append_at(when, record).await;
        seqs.push((when, seq));
    }
    seqs
}

/// Every row of `sql` on `index`, as JSON values, sorted.
fn rows(index: &Index, sql: &str) -> Vec<Value> {
    let mut statement = index.connection().prepare(sql).unwrap();
    let names: Vec<String> = statement.column_names().map(str::to_string).collect();
    let mut found: Vec<Value> = statement
        .query_map([], |row| {
            let mut object = serde_json::Map::new();
            for (i, name) in names.iter().enumerate() {
                let value: rusqlite::types::Value = row.get(i)?;
                object.insert(
                    name.clone(),
                    match value {
                        rusqlite::types::Value::Null => Value::Null,
                        rusqlite::types::Value::Integer(n) => n.into(),
                        rusqlite::types::Value::Text(t) => t.into(),
                        other => format!("{other:?}").into(),
                    },
                );
            }
            Ok(Value::Object(object))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    found.sort_by_key(Value::to_string);
    found
}

#[tokio::test]
async fn a_merged_index_answers_as_the_index_of_one_log_holding_each_event_once() {
    let mut rng = Lcg(23);
    let events = generate(&mut rng);
    let two = Two::new();
    let one = named("one");
    let a_seqs = write(&two.a, events.iter().filter_map(|e| e.a.clone()).collect()).await;
    let b_seqs = write(&two.b, events.iter().filter_map(|e| e.b.clone()).collect()).await;
    let mut firsts: Vec<&(OffsetDateTime, Record)> = events.iter().map(Generated::first).collect();
    firsts.sort_by_key(|(at, _)| *at);
    write(&one, firsts.into_iter().cloned().collect()).await;

    let clock = FakeClock::new(START);
    let receivers = Receivers::of_dirs(&[two.a.dir.clone(), two.b.dir.clone()]).unwrap();
    let (mut merged, _) = Index::open_of(&receivers, &two.a.dir, &clock).unwrap();
    // Two catch-ups, cut at one time: copies either side of the cut meet
    // in the index, not in one merge.
    let cut = START + Duration::minutes(30);
    let upto = |seqs: &[(OffsetDateTime, u64)]| {
        seqs.iter()
            .filter(|(at, _)| *at <= cut)
            .map(|(_, seq)| *seq)
            .max()
            .unwrap_or(1)
    };
    merged
        .catch_up_each(&[upto(&a_seqs), upto(&b_seqs)], u64::MAX, &clock)
        .unwrap();
    // Then a few records a step, as serve's indexer goes: each batch a
    // merge of its own, cut at a time both receivers are read to.
    let heads = merged.heads().unwrap();
    let mut steps = 0;
    while merged.catch_up_each(&heads, 17, &clock).unwrap().records > 0 {
        steps += 1;
    }
    assert!(steps > 5, "{steps} steps");
    let (mut single, _) = Index::open(&one.dir, &clock).unwrap();
    single.catch_up(&clock).unwrap();

    let memberships = "WHERE event NOT LIKE 'receiver_%'";
    for sql in [
        format!(
            "SELECT received_at, event, room_id, room_title, person_id, person_email,
                person_display_name, is_moderator, is_monitor, membership_id,
                membership_created, source, not_before, day
             FROM records {memberships}"
        ),
        "SELECT room_id, room_title, membership_id, person_id, person_email,
            person_display_name, joined_at, join_source, left_at, left_not_before,
            leave_source, is_moderator
         FROM presence"
            .to_string(),
        "SELECT * FROM rooms".to_string(),
    ] {
        assert_eq!(rows(&merged, &sql), rows(&single, &sql), "{sql}");
    }
    let mut expected: Vec<Value> = events
        .iter()
        .map(|e| {
            serde_json::json!({
                "created": e.record.membership_created, "receivers": e.receivers().to_string(),
            })
        })
        .collect();
    expected.sort_by_key(Value::to_string);
    assert_eq!(
        rows(
            &merged,
            &format!("SELECT membership_created AS created, receivers FROM records {memberships}")
        ),
        expected
    );
    let mut compared = 0;
    for minute in (0..360).step_by(3) {
        let at = format_timestamp(START + Duration::minutes(minute) + Duration::milliseconds(500));
        for room in single.rooms().unwrap() {
            let of = |index: &Index| -> Vec<Value> {
                let room = index.find_room(&room.room_id).unwrap();
                index
                    .roster(&room, &at)
                    .unwrap()
                    .members
                    .iter()
                    .map(|m| serde_json::to_value(&m.member).unwrap())
                    .collect()
            };
            let members = of(&merged);
            assert_eq!(members, of(&single), "members of {} at {at}", room.room_id);
            compared += members.len();
        }
    }
    assert!(compared > 100, "the rosters compared were nearly empty");
    assert!(merged.check(&clock).unwrap().is_none());
}
