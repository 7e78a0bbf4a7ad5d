//! `rollcall roster` and `rooms`, and what issue 12 added to `export`,
//! `tail` and `verify` (CSV v2, every event, the receiver's own records,
//! sources), run as the real binary over logs written by the real writer.

use std::path::Path;

use rollcall::log::record::{Event, Record, Source};
use serde_json::Value;
use time::Duration;

use crate::read_side::column;
use crate::support::bin::{Run, rollcall, run};
use crate::support::logs::{TestLog, record};

pub(crate) fn ok(dir: &Path, args: &[&str]) -> Run {
    run(rollcall(dir).args(args)).success()
}

pub(crate) fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}\n{}", run.report()))
}

pub(crate) fn member(event: Event, who: &str, room: &str) -> Record {
    record(event, &format!("{who}@example.com"), who, room)
}

fn reconciled(event: Event, who: &str, room: &str) -> Record {
    Record {
        source: Source::Reconciled,
        ..member(event, who, room)
    }
}

fn receiver(event: Event, not_before: Option<&str>) -> Record {
    Record::receiver(event, not_before.map(str::to_string))
}

/// The emails of a CSV roster, in its order.
fn emails(csv: &str) -> Vec<String> {
    column(csv, "email")
}

// ---------------------------------------------------------------- roster

#[tokio::test]
async fn roster_at_a_time_shows_who_was_in_the_room_before_and_after_a_leave() {
    let log = TestLog::new();
    log.append(reconciled(Event::Joined, "ana", "room-1")).await;
    log.append(member(Event::Joined, "bo", "room-1")).await;
    log.append(member(Event::Joined, "cy", "room-2")).await;
    log.clock.advance(Duration::hours(1));
    log.append(member(Event::Left, "ana", "room-1")).await;

    let before = ok(
        &log.dir,
        &[
            "roster",
            "--room",
            "room-1",
            "--at",
            "2026-11-27T12:30:00Z",
            "--format",
            "csv",
        ],
    );
    let now = ok(&log.dir, &["roster", "--room", "room-1", "--format", "csv"]);

    assert_eq!(
        emails(&before.stdout),
        ["ana@example.com", "bo@example.com"]
    );
    assert_eq!(
        before.stdout.lines().next(),
        Some("person_id,email,name,moderator,since,added_by,source,joined_seq,last_seq")
    );
    assert!(
        before.stdout.contains(",reconciled,1,1\n"),
        "{}",
        before.report()
    );
    assert_eq!(
        before.stderr, "",
        "a baseline and no gap: nothing to warn about"
    );
    assert_eq!(emails(&now.stdout), ["bo@example.com"]);
}

#[tokio::test]
async fn roster_inside_a_coverage_gap_warns_that_it_is_unknown() {
    let log = TestLog::new();
    log.append(receiver(Event::ReceiverStarted, None)).await;
    log.append(reconciled(Event::Joined, "ana", "room-1")).await;
    log.append(receiver(Event::ReceiverStopped, None)).await;
    log.clock.advance(Duration::hours(2));
    log.append(receiver(
        Event::ReceiverStarted,
        Some("2026-11-27T12:00:03.000Z"),
    ))
    .await;

    let table = ok(
        &log.dir,
        &["roster", "--room", "room-1", "--at", "2026-11-27T13:00:00Z"],
    );
    let json = json(&ok(
        &log.dir,
        &[
            "roster",
            "--room",
            "room-1",
            "--at",
            "2026-11-27T13:00:00Z",
            "--format",
            "json",
        ],
    ));
    let after = ok(&log.dir, &["roster", "--room", "room-1"]);

    let warning = "2026-11-27T13:00:00.000Z falls in a coverage gap from 2026-11-27T12:00:03.000Z to 2026-11-27T14:00:04.000Z: deliveries were not being received";
    assert!(table.stderr.contains(warning), "{}", table.report());
    assert!(
        table.stdout.contains("ana@example.com"),
        "{}",
        table.report()
    );
    assert!(
        json["warnings"][0].as_str().unwrap().starts_with(warning),
        "{json}"
    );
    assert_eq!(json["members"][0]["email"], "ana@example.com");
    assert_eq!(after.stderr, "", "{}", after.report());
}

#[tokio::test]
async fn roster_before_the_first_record_or_without_baseline_says_what_is_unknown() {
    let log = TestLog::new();
    log.append(member(Event::Joined, "ana", "room-1")).await;

    let early = ok(
        &log.dir,
        &["roster", "--room", "room-1", "--at", "2026-11-27"],
    );
    let now = ok(&log.dir, &["roster", "--room", "room-1", "--format", "csv"]);

    assert!(
        early
            .stderr
            .contains("the roster before 2026-11-27T12:00:01.000Z is unknown"),
        "{}",
        early.report()
    );
    assert!(!early.stdout.contains("ana@"), "{}", early.report());
    assert!(
        now.stderr.contains(
            "members who joined before 2026-11-27T12:00:01.000Z and never changed since are not in the log: run `rollcall reconcile`"
        ),
        "{}",
        now.report()
    );
    assert_eq!(emails(&now.stdout), ["ana@example.com"]);
}

#[tokio::test]
async fn a_room_is_picked_by_title_in_any_case_and_an_ambiguous_or_unknown_one_is_refused() {
    let log = TestLog::new();
    let titled = |who: &str, room: &str, title: &str| Record {
        room_title: Some(title.into()),
        ..member(Event::Joined, who, room)
    };
    log.append(titled("ana", "room-1", "Team room")).await;
    log.append(titled("bo", "room-2", "Board")).await;
    log.append(titled("cy", "room-3", "board")).await;

    let by_title = ok(
        &log.dir,
        &["roster", "--room", "team ROOM", "--format", "json"],
    );
    let ambiguous = run(rollcall(&log.dir).args(["roster", "--room", "Board"])).code(2);
    let unknown = run(rollcall(&log.dir).args(["roster", "--room", "nope"])).code(2);

    assert_eq!(json(&by_title)["room_id"], "room-1");
    assert_eq!(json(&by_title)["title"], "Team room");
    assert!(
        ambiguous.stderr.contains(
            "several rooms are titled \"Board\": give one of their ids with --room: room-2, room-3"
        ),
        "{}",
        ambiguous.report()
    );
    assert!(
        unknown.stderr.contains("`rollcall rooms`"),
        "{}",
        unknown.report()
    );
}

#[tokio::test]
async fn roster_without_a_room_lists_every_room_with_its_title() {
    let log = TestLog::new();
    log.append(Record {
        room_title: Some("Team room".into()),
        ..reconciled(Event::Joined, "ana", "room-1")
    })
    .await;
    log.append(reconciled(Event::Joined, "bo", "room-2")).await;

    let table = ok(&log.dir, &["roster"]);

    assert!(
        table.stdout.contains("Team room (room-1) at "),
        "{}",
        table.report()
    );
    assert!(table.stdout.contains("\nroom-2 at "), "{}", table.report());
}

// ----------------------------------------------------------------- rooms

#[tokio::test]
async fn rooms_lists_every_room_with_its_members_now_and_baseline() {
    let log = TestLog::new();
    log.append(member(Event::Joined, "ana", "room-1")).await;
    log.append(Record {
        room_title: Some("Team room".into()),
        ..member(Event::Joined, "bo", "room-1")
    })
    .await;
    log.append(reconciled(Event::Joined, "cy", "room-2")).await;
    log.append(member(Event::Left, "ana", "room-1")).await;

    let listed = json(&ok(&log.dir, &["rooms", "--format", "json"]));
    let table = ok(&log.dir, &["rooms"]);

    assert_eq!(
        listed,
        serde_json::json!([
            {"room_id": "room-1", "title": "Team room", "members_now": 1,
             "first_record": "2026-11-27T12:00:01.000Z", "last_record": "2026-11-27T12:00:04.000Z",
             "baseline": null},
            {"room_id": "room-2", "title": null, "members_now": 1,
             "first_record": "2026-11-27T12:00:03.000Z", "last_record": "2026-11-27T12:00:03.000Z",
             "baseline": "2026-11-27T12:00:03.000Z"},
        ])
    );
    assert!(table.stdout.starts_with("room_id "), "{}", table.report());
    assert!(table.stdout.contains("none"), "{}", table.report());
}

// ------------------------------------------------ export, tail, verify

#[tokio::test]
async fn export_has_header_v2_and_the_receiver_s_records_unless_a_room_is_asked_for() {
    let log = TestLog::new();
    log.append(receiver(Event::ReceiverStarted, None)).await;
    log.append(member(Event::Joined, "ana", "room-1")).await;
    log.append(Record {
        not_before: Some("2026-11-27T12:00:02.000Z".into()),
        person_display_name: Some("=evil".into()),
        ..reconciled(Event::Left, "ana", "room-1")
    })
    .await;
    log.append(receiver(Event::ReceiverStopped, None)).await;

    let all = ok(&log.dir, &["export"]);
    let room = ok(&log.dir, &["export", "--room", "room-1"]);

    assert!(
        all.stdout.starts_with("seq,received_at,event,room_id,room_title,person_id,person_email,person_display_name,is_moderator,is_monitor,membership_id,membership_created,actor_id,org_id,webhook_id,webhook_name,target,source,not_before\n"),
        "{}",
        all.report()
    );
    assert_eq!(
        column(&all.stdout, "event"),
        ["receiver_started", "joined", "left", "receiver_stopped"]
    );
    assert_eq!(column(&all.stdout, "room_id"), ["", "room-1", "room-1", ""]);
    assert_eq!(
        column(&all.stdout, "source"),
        ["webhook", "webhook", "reconciled", "webhook"]
    );
    assert_eq!(
        column(&all.stdout, "not_before"),
        ["", "", "2026-11-27T12:00:02.000Z", ""]
    );
    assert_eq!(column(&all.stdout, "person_display_name")[2], "'=evil");
    assert_eq!(column(&room.stdout, "event"), ["joined", "left"]);
}

#[tokio::test]
async fn export_event_takes_every_event_repeated_or_comma_separated_and_source_filters() {
    let log = TestLog::new();
    log.append(receiver(Event::ReceiverStarted, None)).await;
    log.append(member(Event::Joined, "ana", "room-1")).await;
    log.append(member(Event::ModeratorGranted, "ana", "room-1"))
        .await;
    log.append(reconciled(Event::ModeratorRevoked, "ana", "room-1"))
        .await;
    log.append(member(Event::Left, "ana", "room-1")).await;

    let events = |args: &[&str]| column(&ok(&log.dir, args).stdout, "event");

    assert_eq!(
        events(&["export", "--event", "moderator_granted,receiver_started"]),
        ["receiver_started", "moderator_granted"]
    );
    assert_eq!(
        events(&["export", "--event", "joined", "--event", "left"]),
        ["joined", "left"]
    );
    assert_eq!(
        events(&["export", "--source", "reconciled"]),
        ["moderator_revoked"]
    );
    let jsonl = ok(
        &log.dir,
        &["export", "--format", "jsonl", "--source", "reconciled"],
    );
    let line: Value = serde_json::from_str(jsonl.stdout.trim()).unwrap();
    assert_eq!(line["source"], "reconciled");
}

#[tokio::test]
async fn tail_shows_role_changes_the_receiver_and_a_reconciled_window_readably() {
    let log = TestLog::new();
    log.append(member(Event::Joined, "ana", "room-1")).await;
    log.append(member(Event::ModeratorGranted, "ana", "room-1"))
        .await;
    log.append(receiver(
        Event::ReceiverStarted,
        Some("2026-11-27T12:00:02.000Z"),
    ))
    .await;
    log.append(Record {
        not_before: Some("2026-11-27T12:00:02.000Z".into()),
        ..reconciled(Event::Left, "ana", "room-1")
    })
    .await;

    let tail = ok(&log.dir, &["tail", "-n", "4"]);
    let lines: Vec<&str> = tail.stdout.lines().collect();

    assert!(
        lines[1].contains("moderator granted  ana <ana@example.com>"),
        "{}",
        tail.report()
    );
    assert_eq!(
        lines[2],
        "2026-11-27 12:00:03Z  receiver started - gap since 2026-11-27 12:00:02Z (after a crash)"
    );
    assert!(
        lines[3].ends_with("[reconciled, between 2026-11-27 12:00:02Z and 2026-11-27 12:00:04Z]"),
        "{}",
        tail.report()
    );
}

#[tokio::test]
async fn verify_counts_starts_clean_stops_crashes_and_sources_without_a_fault() {
    let log = TestLog::new();
    log.append(receiver(Event::ReceiverStarted, None)).await;
    log.append(member(Event::Joined, "ana", "room-1")).await;
    log.append(receiver(Event::ReceiverStopped, None)).await;
    log.append(receiver(
        Event::ReceiverStarted,
        Some("2026-11-27T12:00:03.000Z"),
    ))
    .await;
    log.append(reconciled(Event::Joined, "bo", "room-1")).await;
    log.append(receiver(
        Event::ReceiverStarted,
        Some("2026-11-27T12:00:05.000Z"),
    ))
    .await;

    let human = ok(&log.dir, &["verify"]);
    let summary = json(&ok(&log.dir, &["verify", "--json"]));

    assert!(
        human
            .stdout
            .contains("receiver: 3 starts (1 after a crash), 1 clean stops\nrecords by source: 0 events_api, 1 reconciled, 5 webhook\n"),
        "{}",
        human.report()
    );
    assert_eq!(summary["verdict"], "intact");
    assert_eq!(summary["receiver_starts"], 3);
    assert_eq!(summary["clean_stops"], 1);
    assert_eq!(summary["starts_after_crash"], 1);
    assert_eq!(
        summary["records_by_source"],
        serde_json::json!({"webhook": 5, "reconciled": 1, "events_api": 0})
    );
}
