//! Property tests through the real request path: arbitrary bytes and
//! arbitrary envelope-shaped JSON never panic the server, and a record is
//! written if and only if the input was a valid, signed membership event.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Map, Value, json};

use crate::support::app::{TestApp, json_of};

/// A field that is absent, null, of the right type, or of a wrong one.
#[derive(Debug, Clone)]
enum Field {
    Absent,
    Null,
    Good(Value),
    WrongType(Value),
}

// Mostly good values, so that valid events are common among the cases.
fn text_field(good: u32) -> impl Strategy<Value = Field> {
    prop_oneof![
        1 => Just(Field::Absent),
        1 => Just(Field::Null),
        good => "[a-zA-Z0-9 =@\u{0}-\u{1f}\u{202e}]{0,12}".prop_map(|s| Field::Good(json!(s))),
        1 => any::<i64>().prop_map(|n| Field::WrongType(json!(n))),
        1 => Just(Field::WrongType(json!(["a"]))),
    ]
}

fn flag_field() -> impl Strategy<Value = Field> {
    prop_oneof![
        1 => Just(Field::Absent),
        1 => Just(Field::Null),
        30 => any::<bool>().prop_map(|b| Field::Good(json!(b))),
        1 => "[a-z]{0,4}".prop_map(|s| Field::WrongType(json!(s))),
    ]
}

#[derive(Debug, Clone)]
struct Case {
    resource: String,
    event: String,
    data_is_object: bool,
    fields: Vec<(&'static str, Field, bool)>,
    signed: bool,
}

const TEXT: [(&str, bool); 8] = [
    ("id", true),
    ("roomId", true),
    ("personId", true),
    ("personEmail", false),
    ("personDisplayName", false),
    ("roomType", false),
    ("personOrgId", false),
    ("created", false),
];
const FLAGS: [&str; 3] = ["isModerator", "isMonitor", "isRoomHidden"];

fn case() -> impl Strategy<Value = Case> {
    (
        prop_oneof![
            8 => Just("memberships".to_string()),
            1 => Just("messages".to_string()),
            1 => "[a-z]{0,6}"
        ],
        prop_oneof![
            4 => Just("created".to_string()),
            4 => Just("deleted".to_string()),
            1 => Just("updated".to_string()),
            1 => "[a-z]{0,6}"
        ],
        prop::bool::weighted(0.9),
        prop::collection::vec(text_field(12), TEXT.len() - 3),
        prop::collection::vec(text_field(40), 3),
        prop::collection::vec(flag_field(), FLAGS.len()),
        prop::bool::weighted(0.8),
    )
        .prop_map(
            |(resource, event, data_is_object, optional, required, flags, signed)| Case {
                resource,
                event,
                data_is_object,
                fields: TEXT
                    .iter()
                    .zip(required.into_iter().chain(optional))
                    .map(|((name, required), f)| (*name, f, *required))
                    .chain(FLAGS.iter().zip(flags).map(|(name, f)| (*name, f, false)))
                    .collect(),
                signed,
            },
        )
}

impl Case {
    /// The body, with `unique` appended to a good `data.id` so that no two
    /// cases are the same event.
    fn body(&self, unique: usize) -> Vec<u8> {
        let mut data = Map::new();
        for (name, field, _) in &self.fields {
            let value = match field {
                Field::Absent => continue,
                Field::Null => Value::Null,
                Field::Good(Value::String(s)) if *name == "id" => json!(format!("{s}-{unique}")),
                Field::Good(v) | Field::WrongType(v) => v.clone(),
            };
            data.insert(name.to_string(), value);
        }
        let data = if self.data_is_object {
            Value::Object(data)
        } else {
            json!("data")
        };
        serde_json::to_vec(&json!({"resource": self.resource, "event": self.event, "data": data}))
            .unwrap()
    }

    fn should_record(&self) -> bool {
        // An update is a role change when it gives the moderator flag, and
        // every case is a membership the log has not seen: recorded.
        let moderator_given = self
            .fields
            .iter()
            .any(|(name, field, _)| *name == "isModerator" && matches!(field, Field::Good(_)));
        self.signed
            && self.resource == "memberships"
            && (self.event == "created"
                || self.event == "deleted"
                || (self.event == "updated" && moderator_given))
            && self.data_is_object
            && self
                .fields
                .iter()
                .all(|(name, field, required)| match field {
                    Field::WrongType(_) => false,
                    Field::Good(Value::String(s)) if *required => !s.is_empty() || *name == "id",
                    Field::Good(_) => true,
                    Field::Absent | Field::Null => !required,
                })
    }
}

#[test]
fn a_record_is_written_if_and_only_if_the_input_is_a_valid_signed_membership_event() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let app = runtime.block_on(TestApp::spawn());
    let mut runner = TestRunner::new(Config {
        cases: 300,
        ..Config::default()
    });
    let unique = std::sync::atomic::AtomicUsize::new(0);
    let recorded = std::sync::atomic::AtomicUsize::new(0);
    runner
        .run(&case(), |case| {
            let body = case.body(unique.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
            let before = app.records().len();
            let (status, answer) = runtime.block_on(async {
                let response = if case.signed {
                    app.deliver("default", &body).await
                } else {
                    app.post("default", &body, None).await
                };
                json_of(response).await
            });
            let written = app.records().len() - before;
            prop_assert_eq!(
                written,
                usize::from(case.should_record()),
                "answer {} {}",
                status,
                answer
            );
            prop_assert_eq!(
                status == 200 && answer["status"] == "recorded",
                case.should_record()
            );
            prop_assert!([200, 400, 401].contains(&status));
            recorded.fetch_add(written, std::sync::atomic::Ordering::Relaxed);
            Ok(())
        })
        .unwrap();
    // Both sides of "if and only if" were exercised.
    let recorded = recorded.into_inner();
    assert!(
        (20..280).contains(&recorded),
        "{recorded} of 300 cases recorded"
    );
}

#[test]
fn arbitrary_bytes_never_panic_the_server_nor_write_anything() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let app = runtime.block_on(TestApp::spawn());
    let mut runner = TestRunner::new(Config {
        cases: 300,
        ..Config::default()
    });
    runner
        .run(&prop::collection::vec(any::<u8>(), 0..4096), |bytes| {
            let (status, _) =
                runtime.block_on(async { json_of(app.deliver("default", &bytes).await).await });
            prop_assert_eq!(status, 400);
            prop_assert!(app.records().is_empty());
            Ok(())
        })
        .unwrap();
}

/// One step of the writer property test.
#[derive(Debug, Clone)]
enum Step {
    /// A delivery of the event with this id (few ids: retries are common).
    Append(u8),
    /// The next write stops halfway with an error.
    TearWrite,
    /// The next N fdatasyncs fail.
    FailSyncs(u32),
    /// The next cut of a failed batch fails.
    FailTruncate,
    /// The writer stops and the log is opened again.
    Restart,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (0u8..8).prop_map(Step::Append),
        1 => Just(Step::TearWrite),
        1 => (1u32..3).prop_map(Step::FailSyncs),
        1 => Just(Step::FailTruncate),
        1 => Just(Step::Restart),
    ]
}

fn event(id: u8) -> rollcall::log::record::Record {
    let body = crate::support::app::membership(
        "created",
        &format!("m{id}"),
        "room",
        "2026-11-27T01:00:00.000Z",
    );
    match rollcall::webhook::payload::parse(&body, &"default".parse().unwrap()).unwrap() {
        rollcall::webhook::payload::Delivery::Membership(m) => m.record,
        rollcall::webhook::payload::Delivery::Ignored => unreachable!("a membership body"),
    }
}

#[test]
fn acknowledged_records_are_in_the_log_exactly_once_through_faults_and_restarts() {
    use std::collections::HashMap;
    use std::sync::Arc;
    use std::sync::atomic::Ordering::SeqCst;

    use rollcall::log::verify::{Heads, verify};
    use rollcall::log::writer::{Appended, LogWriter};

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut runner = TestRunner::new(Config {
        cases: 64,
        ..Config::default()
    });
    runner
        .run(&prop::collection::vec(step(), 1..40), |steps| {
            let temp = tempfile::tempdir().unwrap();
            let dir = temp.path().join("log");
            let clock = Arc::new(rollcall::clock::FakeClock::new(crate::support::app::START));
            let disk = Arc::new(crate::support::disk::FaultyDisk::default());
            let open = || {
                LogWriter::open_on(
                    &dir,
                    clock.clone(),
                    Arc::new(rollcall::metrics::Metrics::default()),
                    disk.clone(),
                )
            };
            let mut writer = open().ok();
            // id -> the seq it was answered with, recorded or duplicate.
            let mut answered: HashMap<u8, u64> = HashMap::new();
            for step in steps {
                match step {
                    Step::Append(id) => {
                        let Some(live) = &writer else { continue };
                        match runtime.block_on(live.append(event(id))) {
                            Ok(Appended::Recorded(seq)) => {
                                prop_assert!(!answered.contains_key(&id), "m{id} recorded twice");
                                answered.insert(id, seq);
                            }
                            Ok(Appended::Duplicate(seq)) => {
                                // Either answered before, or its bytes were
                                // made durable since: checked in the log below.
                                if let Some(&before) = answered.get(&id) {
                                    prop_assert_eq!(before, seq);
                                }
                                answered.insert(id, seq);
                            }
                            Ok(Appended::Unchanged) => {
                                prop_assert!(
                                    false,
                                    "a plain join is always written or a duplicate"
                                );
                            }
                            Err(_) => {}
                        }
                    }
                    Step::TearWrite => disk.tear_writes.store(1, SeqCst),
                    Step::FailSyncs(n) => disk.fail_syncs.store(n, SeqCst),
                    Step::FailTruncate => disk.fail_truncates.store(1, SeqCst),
                    Step::Restart => {
                        writer.take();
                        // A start whose sync fails stays down until one
                        // that succeeds.
                        writer = open().ok();
                    }
                }
            }
            // A last start on a sound disk: what a crash left torn is
            // moved aside, as after any crash.
            drop(writer);
            disk.heal();
            drop(open().unwrap());
            // Checked against the head the writer kept, too.
            let heads = Heads {
                durable: rollcall::log::head::Head::read(&dir).unwrap(),
                expected: None,
            };
            let report = verify(&dir, &heads).unwrap();
            prop_assert!(report.intact(), "{:?}", report.entries());
            let mut in_log: HashMap<String, Vec<u64>> = HashMap::new();
            for record in crate::support::app::live_records(&dir) {
                in_log
                    .entry(record["membership_id"].as_str().unwrap().to_string())
                    .or_default()
                    .push(record["seq"].as_u64().unwrap());
            }
            for seqs in in_log.values() {
                prop_assert_eq!(seqs.len(), 1, "an event in the log twice");
            }
            for (id, seq) in answered {
                prop_assert_eq!(in_log.get(&format!("m{id}")), Some(&vec![seq]));
            }
            Ok(())
        })
        .unwrap();
}
