//! The SQLite index (`DIR/index.sqlite`): built on first use, rebuilt when
//! missing, corrupt or not of this log, caught up only to the durable
//! head, checked by `index --check`, and answering exactly what the fold
//! of the log (`log::roster`) answers.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use rollcall::clock::FakeClock;
use rollcall::index::Index;
use rollcall::log::head::Head;
use rollcall::log::reader;
use rollcall::log::record::{Event, Record, Source, format_timestamp, parse_line};
use rollcall::log::roster::History;
use serde_json::Value;
use time::Duration;

use crate::read_side::column;
use crate::roster::{json, member, ok};
use crate::support::app::START;
use crate::support::bin::{rollcall, run};
use crate::support::logs::{TestLog, archive_day, read_lines, write_lines};

/// A small log: two rooms, a reconciled baseline, a leave and a rejoin.
async fn small_log() -> TestLog {
    let log = TestLog::new();
    log.append(Record {
        source: Source::Reconciled,
        room_title: Some("Team room".into()),
        ..member(Event::Joined, "ana", "room-1")
    })
    .await;
    log.append(member(Event::Joined, "bo", "room-1")).await;
    log.append(member(Event::Joined, "cy", "room-2")).await;
    log.append(Record {
        membership_created: Some("left once".into()),
        ..member(Event::Left, "bo", "room-1")
    })
    .await;
    log.append(Record {
        membership_created: Some("rejoined".into()),
        ..member(Event::Joined, "bo", "room-1")
    })
    .await;
    log
}

/// What the read commands answer, for comparing before and after.
fn answers(dir: &Path) -> (Value, Value, Value) {
    (
        json(&ok(
            dir,
            &["roster", "--at", "2026-11-27T13:00:00Z", "--format", "json"],
        )),
        json(&ok(dir, &["rooms", "--format", "json"])),
        json(&ok(
            dir,
            &["history", "--person", "bo@example.com", "--format", "json"],
        )),
    )
}

fn index_file(dir: &Path) -> std::path::PathBuf {
    dir.join("index.sqlite")
}

#[tokio::test]
async fn the_index_is_built_on_first_use_in_wal_mode_readable_by_group_only() {
    let log = small_log().await;
    assert!(!index_file(&log.dir).exists());

    let rooms = json(&ok(&log.dir, &["rooms", "--format", "json"]));

    assert_eq!(rooms[0]["members_now"], 2, "{rooms}");
    let file = index_file(&log.dir);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
    let conn = rusqlite::Connection::open(&file).unwrap();
    let journal: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(journal, "wal");
    let (seq, stays): (u64, u64) = conn
        .query_row(
            "SELECT (SELECT seq FROM index_state), (SELECT count(*) FROM presence)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((seq, stays), (5, 4));
}

#[tokio::test]
async fn a_deleted_index_is_rebuilt_with_the_same_answers() {
    let log = small_log().await;
    let before = answers(&log.dir);

    std::fs::remove_file(index_file(&log.dir)).unwrap();
    let after = answers(&log.dir);

    assert_eq!(before, after);
    assert!(index_file(&log.dir).exists());
}

#[tokio::test]
async fn a_corrupt_index_file_is_rebuilt_with_a_warning_and_the_same_answers() {
    let log = small_log().await;
    let before = answers(&log.dir);

    std::fs::write(index_file(&log.dir), vec![0x5a; 8192]).unwrap();
    let rooms = ok(&log.dir, &["rooms", "--format", "json"]);
    let after = answers(&log.dir);

    assert!(
        rooms
            .stderr
            .contains("warning: rebuilding the index from the log:"),
        "{}",
        rooms.report()
    );
    assert!(
        rooms.stderr.contains("could not be read"),
        "{}",
        rooms.report()
    );
    assert_eq!(before, after);
}

/// Changes bo's email in every record and re-chains the log from there,
/// as someone rewriting history would, with a matching head.
fn rewrite_and_rechain(log: &TestLog) {
    let path = log.day_file(&log.date_name());
    let mut prev = rollcall::log::record::GENESIS_HASH.to_string();
    let mut last = None;
    let lines: Vec<String> = read_lines(&path)
        .iter()
        .map(|line| {
            let mut r = parse_line(line.as_bytes()).unwrap();
            if r.person_email.as_deref() == Some("bo@example.com") {
                r.person_email = Some("robert@example.com".into());
            }
            r.prev_hash = prev.clone();
            let sealed = r.seal();
            prev = r.hash.clone();
            last = Some(Head {
                seq: r.seq,
                hash: r.hash.clone(),
            });
            String::from_utf8(sealed).unwrap().trim_end().to_string()
        })
        .collect();
    write_lines(&path, &lines);
    last.unwrap().store(&log.dir, true).unwrap();
}

#[tokio::test]
async fn a_log_rewritten_under_the_index_is_detected_at_open_and_the_index_rebuilt() {
    let mut log = small_log().await;
    let before = ok(&log.dir, &["roster", "--room", "room-1", "--format", "csv"]);
    assert!(
        before.stdout.contains("bo@example.com"),
        "{}",
        before.report()
    );
    log.close();

    rewrite_and_rechain(&log);
    let after = ok(&log.dir, &["roster", "--room", "room-1", "--format", "csv"]);

    assert!(
        after
            .stderr
            .contains("warning: rebuilding the index from the log:")
            && after.stderr.contains("the log was rewritten or restored"),
        "{}",
        after.report()
    );
    assert_eq!(
        column(&after.stdout, "email"),
        ["ana@example.com", "robert@example.com"],
        "{}",
        after.report()
    );
    ok(&log.dir, &["verify"]);
}

#[tokio::test]
async fn index_check_passes_on_a_sound_index_and_names_a_row_edited_by_hand() {
    let log = small_log().await;
    let built = ok(&log.dir, &["index"]);
    assert!(built.stdout.contains("up to seq 5"), "{}", built.report());
    let sound = ok(&log.dir, &["index", "--check"]);
    assert!(sound.stdout.contains("agrees"), "{}", sound.report());

    let conn = rusqlite::Connection::open(index_file(&log.dir)).unwrap();
    conn.execute(
        "UPDATE stay SET person_email = 'mallory@example.com' WHERE person_email = 'cy@example.com'",
        [],
    )
    .unwrap();
    drop(conn);
    let edited = run(rollcall(&log.dir).args(["index", "--check"])).code(1);

    assert!(
        edited.stdout.contains("view presence") && edited.stdout.contains("mallory@example.com"),
        "{}",
        edited.report()
    );
    let rebuilt = ok(&log.dir, &["index", "--rebuild"]);
    assert!(
        rebuilt.stdout.contains("up to seq 5"),
        "{}",
        rebuilt.report()
    );
    ok(&log.dir, &["index", "--check"]);
}

#[tokio::test]
async fn records_after_the_index_are_caught_up_before_answering_but_only_to_the_durable_head() {
    let log = small_log().await;
    ok(&log.dir, &["index"]);
    let cy_joined = log.append(member(Event::Joined, "dee", "room-2")).await;
    log.append(member(Event::Joined, "eve", "room-2")).await;
    // The head may lag the log: what is past it is not known durable.
    let lines = read_lines(&log.day_file(&log.date_name()));
    let at_dee = parse_line(lines[cy_joined as usize - 1].as_bytes()).unwrap();
    Head {
        seq: at_dee.seq,
        hash: at_dee.hash,
    }
    .store(&log.dir, true)
    .unwrap();

    let roster = ok(&log.dir, &["roster", "--room", "room-2", "--format", "csv"]);

    assert!(
        roster.stdout.contains("dee@example.com"),
        "{}",
        roster.report()
    );
    assert!(
        !roster.stdout.contains("eve@example.com"),
        "{}",
        roster.report()
    );
}

// ------------------------------------------------------- differential

/// A small deterministic generator, so a failure can be replayed.
pub(crate) struct Lcg(pub(crate) u64);

impl Lcg {
    pub(crate) fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

/// Who is in which room, and moderators, as the generator made it.
#[derive(Default, Clone, Copy)]
struct Modelled {
    present: bool,
    moderator: bool,
}

/// A log with churn, coverage gaps (clean and after a crash), reconciled
/// joins, leaves and role changes with `not_before`, events API records,
/// titles that change, over two days (the first archived while the index
/// is half built).
#[tokio::test]
async fn index_answers_match_the_log_fold_at_many_random_times() {
    let log = TestLog::new();
    let clock = FakeClock::new(START);
    let mut rng = Lcg(19);
    let people = ["ana", "bo", "cy", "dee", "eve", "fay", "gus", "hal"];
    let rooms = ["room-a", "room-b", "room-c"];
    let mut model = vec![[Modelled::default(); 3]; people.len()];
    let mut n = 0;
    let mut halfway = 0;
    for step in 0..420 {
        if step == 210 {
            log.next_day();
        }
        log.clock
            .advance(Duration::seconds(4 + rng.next(30) as i64));
        let now = format_timestamp(rollcall::clock::Clock::now(&*log.clock));
        let shortly_before =
            format_timestamp(rollcall::clock::Clock::now(&*log.clock) - Duration::seconds(2));
        match rng.next(40) {
            0 => {
                log.append(Record::receiver(Event::ReceiverStopped, None))
                    .await;
                log.clock.advance(Duration::minutes(10));
                log.append(Record::receiver(Event::ReceiverStarted, Some(now)))
                    .await;
                continue;
            }
            1 => {
                log.append(Record::receiver(Event::ReceiverStarted, Some(now)))
                    .await;
                continue;
            }
            _ => {}
        }
        let (p, r) = (rng.next(people.len() as u64) as usize, rng.next(3) as usize);
        let state = model[p][r];
        let source = match rng.next(6) {
            0 => Source::Reconciled,
            1 => Source::EventsApi,
            _ => Source::Webhook,
        };
        n += 1;
        let mut rec = member(Event::Joined, people[p], rooms[r]);
        rec.source = source;
        rec.membership_created = Some(format!("created-{n}"));
        if rng.next(5) == 0 {
            rec.room_title = Some(format!("Room {} v{}", rooms[r], rng.next(3)));
        }
        if source == Source::EventsApi {
            rec.not_before = Some(shortly_before.clone());
        }
        let roll = rng.next(10);
        rec.event = if !state.present {
            if rng.next(3) == 0 {
                // A real join time, a moment before it was received.
                rec.membership_created = Some(shortly_before.clone());
            }
            rec.is_moderator = Some(roll == 0);
            Event::Joined
        } else if roll < 5 {
            Event::Left
        } else if state.moderator {
            Event::ModeratorRevoked
        } else {
            Event::ModeratorGranted
        };
        if source == Source::Reconciled && rec.event != Event::Joined {
            rec.not_before = Some(format_timestamp(
                rollcall::clock::Clock::now(&*log.clock) - Duration::seconds(3),
            ));
        }
        model[p][r] = match rec.event {
            Event::Joined => Modelled {
                present: true,
                moderator: roll == 0,
            },
            Event::Left => Modelled::default(),
            e => Modelled {
                present: true,
                moderator: e == Event::ModeratorGranted,
            },
        };
        let seq = log.append(rec).await;
        if step == 150 {
            halfway = seq;
        }
    }

    let mut index = {
        let (mut index, _) = Index::open(&log.dir, &clock).unwrap();
        index.catch_up_to(halfway, &clock).unwrap();
        index
    };
    drop(index);
    let first_day = format_timestamp(START)[..10].to_string();
    archive_day(&log.dir, &first_day);
    index = Index::open(&log.dir, &clock).unwrap().0;
    let caught = index.catch_up(&clock).unwrap();
    assert!(caught.records > 0);
    let history = History::load(&reader::days(&log.dir).unwrap()).unwrap();

    let listed: Vec<Value> = history
        .rooms()
        .map(|room| {
            serde_json::json!({
                "room_id": room.room_id, "title": room.title,
                "first_record_at": room.first_at, "last_record_at": room.last_at,
                "members_now": room.members_now(), "baseline_at": room.baseline,
            })
        })
        .collect();
    let indexed: Vec<Value> = index
        .rooms()
        .unwrap()
        .iter()
        .map(|room| serde_json::to_value(room).unwrap())
        .collect();
    assert_eq!(listed, indexed);

    let end = rollcall::clock::Clock::now(&*log.clock);
    let span = (end - START).whole_milliseconds() as u64;
    let mut times: Vec<String> = (0..150)
        .map(|_| {
            format_timestamp(
                START + Duration::milliseconds(rng.next(span + 60_000) as i64 - 30_000),
            )
        })
        .collect();
    // Exactly at, and a moment either side of, records' own times.
    for _ in 0..50 {
        let at = START + Duration::seconds(rng.next(span / 1000) as i64);
        for d in [-1, 0, 1] {
            times.push(format_timestamp(at + Duration::milliseconds(d)));
        }
    }
    let mut compared = 0;
    for at in &times {
        for room in history.rooms() {
            let folded = history.roster(room, at);
            let from_index = index
                .roster(&index.find_room(&room.room_id).unwrap(), at)
                .unwrap();
            let members: Vec<Value> = from_index
                .members
                .iter()
                .map(|m| serde_json::to_value(&m.member).unwrap())
                .collect();
            assert_eq!(
                serde_json::to_value(&folded.members).unwrap(),
                Value::Array(members),
                "members of {} at {at}",
                room.room_id
            );
            assert_eq!(
                folded.warnings, from_index.warnings,
                "warnings of {} at {at}",
                room.room_id
            );
            compared += folded.members.len();
        }
    }
    assert!(compared > 100, "the rosters compared were nearly empty");
    assert!(index.check(&clock).unwrap().is_none());
}
