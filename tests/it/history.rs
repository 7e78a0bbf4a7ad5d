//! `rollcall history --person`: every stay of a person in every room from
//! the index, with the seqs each rests on, and `export --from-seq/--to-seq`
//! reading exactly the records those seqs name.

use rollcall::log::record::{Event, Record};
use serde_json::Value;
use time::Duration;

use crate::read_side::column;
use crate::roster::ok;
use crate::support::bin::{rollcall, run};
use crate::support::logs::{TestLog, record};

fn ana(event: Event, room: &str, created: &str) -> Record {
    Record {
        membership_created: Some(created.into()),
        ..record(event, "ana@example.com", "Ana", room)
    }
}

#[tokio::test]
async fn history_of_a_person_lists_every_stay_across_rooms_a_gap_and_a_rejoin_with_their_seqs() {
    let log = TestLog::new();
    let joined_1 = log.append(ana(Event::Joined, "room-1", "first")).await;
    let joined_2 = log.append(ana(Event::Joined, "room-2", "first")).await;
    log.append(record(Event::Joined, "bo@example.com", "Bo", "room-1"))
        .await;
    let left_1 = log.append(ana(Event::Left, "room-1", "first")).await;
    log.append(Record::receiver(Event::ReceiverStopped, None))
        .await;
    log.clock.advance(Duration::hours(1));
    log.append(Record::receiver(Event::ReceiverStarted, None))
        .await;
    let rejoined_1 = log.append(ana(Event::Joined, "room-1", "again")).await;

    let answer: Value = serde_json::from_str(
        &ok(
            &log.dir,
            &["history", "--person", "ANA@example.com", "--format", "json"],
        )
        .stdout,
    )
    .unwrap();
    let by_id = ok(
        &log.dir,
        &[
            "history",
            "--person",
            "person-id-ana@example.com",
            "--format",
            "csv",
        ],
    );
    let later = ok(
        &log.dir,
        &[
            "history",
            "--person",
            "ana@example.com",
            "--from",
            "2026-11-27T12:30:00Z",
            "--format",
            "csv",
        ],
    );

    let stays = answer["stays"].as_array().unwrap();
    let seqs: Vec<(Value, Value, Value)> = stays
        .iter()
        .map(|s| {
            (
                s["room_id"].clone(),
                s["joined_seq"].clone(),
                s["left_seq"].clone(),
            )
        })
        .collect();
    assert_eq!(
        seqs,
        [
            ("room-1".into(), joined_1.into(), left_1.into()),
            ("room-2".into(), joined_2.into(), Value::Null),
            ("room-1".into(), rejoined_1.into(), Value::Null),
        ]
    );
    assert_eq!(stays[0]["left_at"], "2026-11-27T12:00:04.000Z");
    assert!(
        answer["warnings"][0]
            .as_str()
            .unwrap()
            .starts_with("the log has a coverage gap from 2026-11-27T12:00:05.000Z"),
        "{answer}"
    );
    assert_eq!(
        column(&by_id.stdout, "joined_seq"),
        [joined_1, joined_2, rejoined_1].map(|s| s.to_string())
    );
    assert_eq!(
        column(&later.stdout, "joined_seq"),
        [joined_2, rejoined_1].map(|s| s.to_string())
    );
}

#[tokio::test]
async fn history_of_someone_the_log_never_saw_says_so_and_lists_nothing() {
    let log = TestLog::new();
    log.append(ana(Event::Joined, "room-1", "first")).await;

    let nobody = ok(&log.dir, &["history", "--person", "zed@example.com"]);

    assert!(
        nobody.stderr.contains("no stay of zed@example.com"),
        "{}",
        nobody.report()
    );
    assert_eq!(nobody.stdout.lines().count(), 1, "{}", nobody.report());
}

#[tokio::test]
async fn export_from_seq_to_seq_reads_exactly_the_records_a_row_names() {
    let log = TestLog::new();
    for room in ["room-1", "room-2", "room-3", "room-4"] {
        log.append(ana(Event::Joined, room, "first")).await;
    }

    let range = ok(&log.dir, &["export", "--from-seq", "2", "--to-seq", "3"]);
    let one = ok(&log.dir, &["export", "--seq", "4", "--format", "jsonl"]);
    let backwards = run(rollcall(&log.dir).args(["export", "--from-seq", "3", "--to-seq", "2"]));

    assert_eq!(column(&range.stdout, "seq"), ["2", "3"]);
    assert_eq!(one.stdout.lines().count(), 1, "{}", one.report());
    assert!(one.stdout.starts_with("{\"seq\":4,"), "{}", one.report());
    assert_eq!(backwards.status.code(), Some(2), "{}", backwards.report());
}
