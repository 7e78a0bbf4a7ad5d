//! `export` and `tail` in the SIEM schemas (`--format ocsf`, `--format
//! ecs`), run as the real binary over a log written by the real writer
//! with every kind of record: each field checked against the record it
//! came from, and every OCSF line passed through an independent OCSF
//! validator (PyPI `ocsf-emitter`, which scripts/test installs into
//! `target/ocsf-venv`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rollcall::log::record::{Event, Record, Source};
use serde_json::{Value, json};
use time::Duration;

use crate::read_side::Follower;
use crate::roster::{member, ok};
use crate::support::installed;
use crate::support::logs::{TestLog, fixture_record};

/// The room of the `memberships-updated` fixture, titled in the log.
const TEAM_ROOM: &str =
    "Y2lzY29zcGFyazovL3VzL1JPT00vY2RlMWRkNDAtMmYwZC0xMWU1LWJhOWMtN2I2NTU2ZDIyMDdi";
const ANA: &str = "Y2lzY29zcGFyazovL3VzL1BFT1BMRS8wZDBjOTFiNi1jZTYwLTQ3MjUtYjZkMC0zNDU1ZDVkMTFlZjM";
const ACTOR: &str =
    "Y2lzY29zcGFyazovL3VzL1BFT1BMRS8xZjdkZTVjYi04NTYxLTQ2NzEtYmMwMy1iYzk3NDMxNDQ0MmQ";
const ORG: &str = "OTZhYmMyYWEtM2RjYy0xMWU1LWExNTItZmUzNDgxOWNkYzlh";
/// When the reconciled leave happened at the earliest.
const GAP_FROM: &str = "2026-11-27T12:00:03.000Z";
/// When Ana's membership began.
const MEMBER_SINCE: &str = "2026-11-27T11:58:00.125Z";
/// The exact time of the events API's join.
const EXACT: &str = "2026-11-27T12:00:04.250Z";
/// The receiver that wrote the log's last stop and start.
const RECEIVER: &str = "site-a";

/// A log with one record of each kind, in this order: the receiver's
/// start (as written before receivers had names), Ana's join (with the
/// room's title), her moderator granted and revoked (untitled: they get
/// the title recorded before them), a leave in another room, a
/// reconciled leave, a join from the events API, a clean stop and a start
/// after it (both naming their receiver, [`RECEIVER`]).
async fn every_kind() -> TestLog {
    let receiver: rollcall::receiver::Name = RECEIVER.parse().unwrap();
    let log = TestLog::new();
    log.append(Record::receiver(Event::ReceiverStarted, None))
        .await;
    let ana = fixture_record("memberships-updated.json");
    log.append(Record {
        event: Event::Joined,
        room_title: Some("Team room".into()),
        is_moderator: Some(false),
        membership_created: Some(MEMBER_SINCE.into()),
        ..ana.clone()
    })
    .await;
    log.append(Record {
        event: Event::ModeratorGranted,
        is_moderator: Some(true),
        ..ana.clone()
    })
    .await;
    log.append(Record {
        event: Event::ModeratorRevoked,
        is_moderator: Some(false),
        ..ana
    })
    .await;
    log.append(fixture_record("memberships-deleted.json")).await;
    log.append(Record {
        source: Source::Reconciled,
        not_before: Some(GAP_FROM.into()),
        actor_id: None,
        ..member(Event::Left, "bo", "room-2")
    })
    .await;
    log.append(Record {
        source: Source::EventsApi,
        not_before: Some(EXACT.into()),
        ..member(Event::Joined, "cy", "room-2")
    })
    .await;
    log.append(Record::receiver(Event::ReceiverStopped, None).by(&receiver))
        .await;
    log.clock.advance(Duration::minutes(5));
    log.append(
        Record::receiver(
            Event::ReceiverStarted,
            Some("2026-11-27T12:00:08.000Z".into()),
        )
        .by(&receiver),
    )
    .await;
    log
}

/// The log's own records, as `export --format jsonl` gives them.
fn records(dir: &Path) -> Vec<Value> {
    lines(&ok(dir, &["export", "--format", "jsonl"]).stdout)
}

/// Each line of `text` as JSON.
fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// `received_at`-style time in ms since the epoch.
fn ms(at: &Value) -> i64 {
    let at = at.as_str().expect("a time");
    let parsed = time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{at}: {e}"));
    (parsed.unix_timestamp_nanos() / 1_000_000) as i64
}

/// The python of the virtualenv that holds ocsf-emitter:
/// `ROLLCALL_TEST_OCSF_PYTHON`, else the one scripts/test makes.
fn ocsf_python() -> PathBuf {
    installed(
        "ROLLCALL_TEST_OCSF_PYTHON",
        "target/ocsf-venv/bin/python",
        "a python with ocsf-emitter",
    )
}

/// Checks each line of stdin with ocsf-emitter, as the model of its
/// class; prints what is wrong with each line that fails, exits 1 if any.
const VALIDATOR: &str = r#"
import json, sys
from ocsf_emitter import _models
from ocsf_emitter.validate import validate
classes = {3006: _models.GroupManagement, 6002: _models.ApplicationLifecycle}
bad = 0
for number, line in enumerate(sys.stdin, 1):
    event = json.loads(line)
    try:
        validate(classes[event["class_uid"]].model_validate(event))
    except Exception as e:
        bad += 1
        print(f"line {number}: {e}")
        for field in getattr(e, "field_errors", None) or []:
            print(f"  {field}")
sys.exit(1 if bad else 0)
"#;

/// ocsf-emitter's verdict on `ocsf` (lines): `Ok` or what it says is wrong.
fn ocsf_verdict(ocsf: &str) -> Result<(), String> {
    let mut child = Command::new(ocsf_python())
        .args(["-c", VALIDATOR])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting the OCSF validator");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(ocsf.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn assert_valid_ocsf(ocsf: &str) {
    if let Err(problems) = ocsf_verdict(ocsf) {
        panic!("ocsf-emitter refuses the output:\n{problems}\n{ocsf}");
    }
}

// ---------------------------------------------------------------- OCSF

#[tokio::test]
async fn ocsf_export_maps_each_kind_of_record_to_its_class_and_activity() {
    let log = every_kind().await;
    let out = ok(&log.dir, &["export", "--format", "ocsf"]);
    let events = lines(&out.stdout);
    let records = records(&log.dir);
    assert_eq!(events.len(), 9, "{}", out.report());

    let expected = [
        (6002, 3, "Start", "Application Lifecycle: Start"),
        (3006, 3, "Add User", "Group Management: Add User"),
        (
            3006,
            1,
            "Assign Privileges",
            "Group Management: Assign Privileges",
        ),
        (
            3006,
            2,
            "Revoke Privileges",
            "Group Management: Revoke Privileges",
        ),
        (3006, 4, "Remove User", "Group Management: Remove User"),
        (3006, 4, "Remove User", "Group Management: Remove User"),
        (3006, 3, "Add User", "Group Management: Add User"),
        (6002, 4, "Stop", "Application Lifecycle: Stop"),
        (6002, 3, "Start", "Application Lifecycle: Start"),
    ];
    for ((event, record), (class, activity, activity_name, type_name)) in
        events.iter().zip(&records).zip(expected)
    {
        let seq = record["seq"].as_u64().unwrap();
        assert_eq!(event["class_uid"], class, "seq {seq}: {event}");
        assert_eq!(event["activity_id"], activity, "seq {seq}");
        assert_eq!(event["type_uid"], class * 100 + activity, "seq {seq}");
        assert_eq!(event["activity_name"], activity_name, "seq {seq}");
        assert_eq!(event["type_name"], type_name, "seq {seq}");
        let (category, category_name, class_name) = if class == 3006 {
            (3, "Identity & Access Management", "Group Management")
        } else {
            (6, "Application Activity", "Application Lifecycle")
        };
        assert_eq!(event["category_uid"], category, "seq {seq}");
        assert_eq!(event["category_name"], category_name, "seq {seq}");
        assert_eq!(event["class_name"], class_name, "seq {seq}");
        assert_eq!(event["severity_id"], 1, "seq {seq}");
        assert_eq!(event["severity"], "Informational", "seq {seq}");
        assert_eq!(event["status_id"], 1, "seq {seq}");
        assert_eq!(event["status"], "Success", "seq {seq}");

        let metadata = &event["metadata"];
        assert_eq!(metadata["uid"], seq.to_string(), "seq {seq}");
        assert_eq!(metadata["sequence"], seq, "seq {seq}");
        assert_eq!(metadata["version"], "1.5.0");
        assert_eq!(metadata["product"]["name"], "rollcall");
        assert_eq!(metadata["product"]["vendor_name"], "rollcall");
        assert_eq!(metadata["product"]["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(metadata["logged_time"], ms(&record["received_at"]));

        // What OCSF has no place for, as the log has it.
        let unmapped = &event["unmapped"];
        for field in ["event", "source", "received_at", "hash", "prev_hash"] {
            assert_eq!(unmapped[field], record[field], "seq {seq}: {field}");
        }
        if record["not_before"].is_null() {
            assert!(unmapped.get("not_before").is_none(), "seq {seq}");
        } else {
            assert_eq!(unmapped["not_before"], record["not_before"], "seq {seq}");
        }

        if class == 6002 {
            assert_eq!(event["app"]["name"], "rollcall", "seq {seq}");
            for absent in ["user", "actor", "group", "privileges"] {
                assert!(event.get(absent).is_none(), "seq {seq}: {absent}");
            }
            assert_eq!(event["time"], ms(&record["received_at"]), "seq {seq}");
            continue;
        }
        assert_eq!(event["user"]["uid"], record["person_id"], "seq {seq}");
        assert_eq!(event["user"]["email_addr"], record["person_email"]);
        assert_eq!(event["user"]["name"], record["person_display_name"]);
        assert_eq!(event["group"]["uid"], record["room_id"], "seq {seq}");
        assert_eq!(unmapped["membership_id"], record["membership_id"]);
        match record["actor_id"].as_str() {
            Some(actor) => assert_eq!(event["actor"]["user"]["uid"], actor, "seq {seq}"),
            None => assert!(event.get("actor").is_none(), "seq {seq}: {event}"),
        }
        match record["org_id"].as_str() {
            Some(org) => assert_eq!(metadata["tenant_uid"], org, "seq {seq}"),
            None => assert!(metadata.get("tenant_uid").is_none(), "seq {seq}"),
        }
    }

    // Ana's join, with the room's title, by the admin who added her.
    let join = &events[1];
    assert_eq!(join["user"]["uid"], ANA);
    assert_eq!(join["user"]["email_addr"], "ana.silva@example.com");
    assert_eq!(join["user"]["name"], "Ana Silva");
    assert_eq!(join["actor"]["user"]["uid"], ACTOR);
    assert_eq!(
        join["group"],
        json!({"name": "Team room", "uid": TEAM_ROOM})
    );
    assert_eq!(join["metadata"]["tenant_uid"], ORG);
    // A join happened when the membership began.
    assert_eq!(join["time"], ms(&json!(MEMBER_SINCE)));
    // Role changes: the privilege, and the title recorded before them.
    for change in &events[2..4] {
        assert_eq!(change["privileges"], json!(["moderator"]), "{change}");
        assert_eq!(change["group"]["name"], "Team room", "{change}");
        assert_eq!(change["time"], ms(&change["unmapped"]["received_at"]));
    }
    assert!(join.get("privileges").is_none());
    // A room never titled in the log has no name.
    assert!(events[4]["group"].get("name").is_none(), "{}", events[4]);
    // Reconciled: found after the fact, between not_before and receipt.
    let reconciled = &events[5];
    assert_eq!(reconciled["unmapped"]["source"], "reconciled");
    assert_eq!(reconciled["unmapped"]["not_before"], GAP_FROM);
    assert_eq!(
        reconciled["time"],
        ms(&reconciled["unmapped"]["received_at"])
    );
    // From the events API: the event's exact time.
    let exact = &events[6];
    assert_eq!(exact["unmapped"]["source"], "events_api");
    assert_eq!(exact["time"], ms(&json!(EXACT)));
    // The start after a clean stop carries the gap's start.
    assert_eq!(
        events[8]["unmapped"]["not_before"],
        "2026-11-27T12:00:08.000Z"
    );
    // A receiver's stop and start name it; a start from before receivers
    // had names does not.
    for named in &events[7..9] {
        assert_eq!(named["unmapped"]["receiver"], RECEIVER, "{named}");
    }
    assert!(events[0]["unmapped"].get("receiver").is_none());
}

#[tokio::test]
async fn every_ocsf_line_of_export_and_tail_passes_an_independent_validator() {
    let log = every_kind().await;
    let export = ok(&log.dir, &["export", "--format", "ocsf"]);
    assert_eq!(export.stdout.lines().count(), 9);
    assert_valid_ocsf(&export.stdout);
    let tail = ok(&log.dir, &["tail", "-n", "100", "--format", "ocsf"]);
    assert_eq!(
        tail.stdout, export.stdout,
        "tail and export write the same events"
    );
}

#[test]
fn the_validator_names_what_is_wrong_with_an_event() {
    let event = json!({
        "time": 1, "class_uid": 3006, "class_name": "Group Management",
        "category_uid": 3, "category_name": "Identity & Access Management",
        "activity_id": 3, "type_uid": 300604, "severity_id": 1,
        "metadata": {"version": "1.5.0", "product": {"name": "rollcall"}},
        "group": {"uid": "room"},
    });
    let problems = ocsf_verdict(&format!("{event}\n")).unwrap_err();
    assert!(problems.contains("type_uid: expected 300603"), "{problems}");
    let mut no_group = event.clone();
    no_group["type_uid"] = json!(300603);
    no_group.as_object_mut().unwrap().remove("group");
    let problems = ocsf_verdict(&format!("{no_group}\n")).unwrap_err();
    assert!(problems.contains("group"), "{problems}");
}

#[tokio::test]
async fn export_filters_apply_to_the_siem_formats() {
    let log = every_kind().await;
    let joins = ok(
        &log.dir,
        &[
            "export",
            "--format",
            "ocsf",
            "--event",
            "joined",
            "--source",
            "events_api",
        ],
    );
    let events = lines(&joins.stdout);
    assert_eq!(events.len(), 1, "{}", joins.report());
    assert_eq!(events[0]["user"]["email_addr"], "cy@example.com");
    let one = ok(&log.dir, &["export", "--format", "ecs", "--seq", "3"]);
    let documents = lines(&one.stdout);
    assert_eq!(documents.len(), 1, "{}", one.report());
    assert_eq!(documents[0]["event"]["sequence"], 3);
    assert_eq!(documents[0]["group"]["name"], "Team room");
}

#[tokio::test]
async fn a_title_recorded_on_an_earlier_day_reaches_the_siem_formats() {
    let log = TestLog::new();
    let ana = fixture_record("memberships-updated.json");
    log.append(Record {
        event: Event::Joined,
        room_title: Some("Team \"A\" room".into()),
        ..ana.clone()
    })
    .await;
    log.next_day();
    let day = log.date_name();
    log.append(Record {
        event: Event::ModeratorGranted,
        is_moderator: Some(true),
        ..ana
    })
    .await;
    // The title comes from a day the export does not write: it is filled
    // in after the line is made.
    let ocsf = ok(&log.dir, &["export", "--format", "ocsf", "--from", &day]);
    let events = lines(&ocsf.stdout);
    assert_eq!(events.len(), 1, "{}", ocsf.report());
    assert_eq!(
        events[0]["group"],
        json!({"uid": TEAM_ROOM, "name": "Team \"A\" room"})
    );
    assert_valid_ocsf(&ocsf.stdout);
    let ecs = ok(&log.dir, &["export", "--format", "ecs", "--from", &day]);
    assert_eq!(lines(&ecs.stdout)[0]["group"]["name"], "Team \"A\" room");
}

// ---------------------------------------------------------------- ECS

#[tokio::test]
async fn ecs_export_maps_each_kind_of_record_to_its_category_and_action() {
    let log = every_kind().await;
    let out = ok(&log.dir, &["export", "--format", "ecs"]);
    let documents = lines(&out.stdout);
    let records = records(&log.dir);
    assert_eq!(documents.len(), 9, "{}", out.report());

    let expected = [
        ("process", json!(["start"]), "receiver-started"),
        ("iam", json!(["user", "change"]), "added-member"),
        ("iam", json!(["user", "change"]), "granted-moderator"),
        ("iam", json!(["user", "change"]), "revoked-moderator"),
        ("iam", json!(["user", "change"]), "removed-member"),
        ("iam", json!(["user", "change"]), "removed-member"),
        ("iam", json!(["user", "change"]), "added-member"),
        ("process", json!(["end"]), "receiver-stopped"),
        ("process", json!(["start"]), "receiver-started"),
    ];
    for ((doc, record), (category, kind_of, action)) in documents.iter().zip(&records).zip(expected)
    {
        let seq = record["seq"].as_u64().unwrap();
        let event = &doc["event"];
        assert_eq!(event["kind"], "event", "seq {seq}: {doc}");
        assert_eq!(event["category"], json!([category]), "seq {seq}");
        assert_eq!(event["type"], kind_of, "seq {seq}");
        assert_eq!(event["action"], action, "seq {seq}");
        assert_eq!(event["outcome"], "success", "seq {seq}");
        assert_eq!(event["sequence"], seq, "seq {seq}");
        assert_eq!(event["module"], "rollcall", "seq {seq}");
        assert_eq!(event["created"], record["received_at"], "seq {seq}");
        assert_eq!(doc["ecs"]["version"], "8.16.0");
        assert_eq!(doc["observer"]["product"], "rollcall");
        assert_eq!(doc["observer"]["version"], env!("CARGO_PKG_VERSION"));
        for field in ["event", "source", "received_at", "hash", "prev_hash"] {
            assert_eq!(doc["rollcall"][field], record[field], "seq {seq}: {field}");
        }
        if category == "process" {
            assert_eq!(event["provider"], "rollcall", "seq {seq}");
            assert_eq!(doc["process"]["name"], "rollcall", "seq {seq}");
            assert_eq!(doc["@timestamp"], record["received_at"], "seq {seq}");
            for absent in ["user", "group", "related"] {
                assert!(doc.get(absent).is_none(), "seq {seq}: {absent}");
            }
            continue;
        }
        assert_eq!(event["provider"], "webex", "seq {seq}");
        let target = &doc["user"]["target"];
        assert_eq!(target["id"], record["person_id"], "seq {seq}");
        assert_eq!(target["email"], record["person_email"], "seq {seq}");
        assert_eq!(target["name"], record["person_display_name"], "seq {seq}");
        assert_eq!(doc["group"]["id"], record["room_id"], "seq {seq}");
        assert_eq!(
            doc["user"].get("id"),
            record.get("actor_id").filter(|a| !a.is_null())
        );
        let related = doc["related"]["user"].as_array().unwrap();
        assert!(related.contains(&record["person_id"]), "seq {seq}");
        assert!(related.contains(&record["person_email"]), "seq {seq}");
        if let Some(actor) = record["actor_id"].as_str() {
            assert!(related.contains(&json!(actor)), "seq {seq}");
        }
    }

    let join = &documents[1];
    assert_eq!(
        join["@timestamp"], MEMBER_SINCE,
        "a join: when the membership began"
    );
    assert_eq!(join["user"]["id"], ACTOR);
    assert_eq!(join["user"]["target"]["id"], ANA);
    assert_eq!(join["group"], json!({"name": "Team room", "id": TEAM_ROOM}));
    assert_eq!(join["organization"]["id"], ORG);
    assert!(join["user"]["target"].get("roles").is_none());
    let granted = &documents[2];
    assert_eq!(granted["user"]["target"]["roles"], json!(["moderator"]));
    assert_eq!(
        granted["group"]["name"], "Team room",
        "the title recorded before"
    );
    assert!(documents[3]["user"]["target"].get("roles").is_none());
    assert!(documents[4]["group"].get("name").is_none());
    assert!(
        documents[5]["user"].get("id").is_none(),
        "a reconciled leave has no actor"
    );
    assert_eq!(documents[5]["rollcall"]["not_before"], GAP_FROM);
    assert_eq!(documents[5]["@timestamp"], records[5]["received_at"]);
    assert_eq!(
        documents[6]["@timestamp"], EXACT,
        "the events API's exact time"
    );
    for named in &documents[7..9] {
        assert_eq!(named["observer"]["name"], RECEIVER, "{named}");
        assert_eq!(named["rollcall"]["receiver"], RECEIVER, "{named}");
    }
    assert!(documents[0]["observer"].get("name").is_none());
}

// ---------------------------------------------------------------- tail -f

#[tokio::test]
async fn tail_follow_in_ocsf_shows_a_new_record_as_it_is_written() {
    let log = every_kind().await;
    let tail = Follower::start(&log.dir, &["-n", "1", "--format", "ocsf"]);
    let last = tail.next_line();
    assert_eq!(lines(&last)[0]["metadata"]["uid"], "9", "{last}");

    let seq = log.append(member(Event::Joined, "dee", "room-2")).await;
    let new = tail.next_line();
    let event = &lines(&new)[0];
    assert_eq!(event["metadata"]["uid"], seq.to_string(), "{new}");
    assert_eq!(event["activity_id"], 3);
    assert_eq!(event["user"]["email_addr"], "dee@example.com");
    assert_valid_ocsf(&format!("{last}\n{new}\n"));
}

#[tokio::test]
async fn tail_follow_in_ecs_shows_a_new_record_with_its_rooms_title() {
    let log = every_kind().await;
    let tail = Follower::start(&log.dir, &["-n", "1", "--format", "ecs"]);
    // The last record shown first: the log is read, so what comes next is new.
    assert_eq!(lines(&tail.next_line())[0]["event"]["sequence"], 9);
    let mut ana = fixture_record("memberships-updated.json");
    ana.event = Event::Left;
    let seq = log.append(ana).await;
    let document = &lines(&tail.next_line())[0];
    assert_eq!(document["event"]["sequence"], seq);
    assert_eq!(document["event"]["action"], "removed-member");
    assert_eq!(document["group"]["name"], "Team room", "{document}");
}
