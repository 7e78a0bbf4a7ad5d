//! `rollcall serve`: deliveries in, durable records out.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::future::join_all;
use rollcall::clock::FakeClock;
use rollcall::secret::Secret;
use rollcall::webhook::signature;
use serde_json::Value;
use time::macros::datetime;
use tokio::sync::Semaphore;

use crate::support::app::{
    SECRET, START, TestApp, assert_chain_whole, json_of, live_records, membership,
    membership_records,
};
use crate::support::bin::{ServerProcess, rollcall, run};
use crate::support::fixture;

#[tokio::test]
async fn a_signed_membership_created_is_recorded_with_email_name_and_flags() {
    let app = TestApp::spawn().await;
    let (status, answer) = json_of(
        app.deliver("team", &fixture("memberships-created-current.json"))
            .await,
    )
    .await;
    // Seq 1 is the server's own receiver_started.
    assert_eq!(
        (status, &answer["status"], &answer["seq"]),
        (200, &"recorded".into(), &2.into())
    );
    let records = app.records();
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(r["event"], "joined");
    assert_eq!(r["person_email"], "ana.silva@example.com");
    assert_eq!(r["person_display_name"], "Ana Silva");
    assert_eq!(r["is_moderator"], true);
    assert_eq!(r["is_monitor"], false);
    assert_eq!(
        r["room_id"],
        "Y2lzY29zcGFyazovL3VzL1JPT00vY2RlMWRkNDAtMmYwZC0xMWU1LWJhOWMtN2I2NTU2ZDIyMDdi"
    );
    assert_eq!(r["membership_created"], "2026-11-27T14:03:11.482Z");
    assert_eq!(r["webhook_name"], "Team roster webhook");
    assert_eq!(r["target"], "team");
    assert_eq!(r["received_at"], "2026-11-27T12:00:00.000Z");
    app.stop().await;
}

#[tokio::test]
async fn both_fixture_membership_events_are_recorded_as_join_and_leave() {
    let app = TestApp::spawn().await;
    for name in ["memberships-created.json", "memberships-deleted.json"] {
        let (status, answer) = json_of(app.deliver("default", &fixture(name)).await).await;
        assert_eq!(
            (status, answer["status"].as_str()),
            (200, Some("recorded")),
            "{name}"
        );
    }
    let records = app.records();
    let events: Vec<&Value> = records.iter().map(|r| &r["event"]).collect();
    assert_eq!(events, ["joined", "left"]);
    assert!(
        records
            .iter()
            .all(|r| r["person_email"] == "example@cisco.com"
                && r["person_display_name"] == "Example Person"
                && r["is_moderator"] == false)
    );
    assert_eq!(assert_chain_whole(&app.dir), [1, 2, 3]);
    app.stop().await;
}

#[tokio::test]
async fn message_and_room_events_are_acknowledged_as_ignored_and_not_written() {
    let app = TestApp::spawn().await;
    for name in ["messages-created.json", "rooms-created.json"] {
        let (status, answer) = json_of(app.deliver("default", &fixture(name)).await).await;
        assert_eq!(status, 200, "{name}");
        assert_eq!(answer, serde_json::json!({"status": "ignored"}));
    }
    let mut updated: Value = serde_json::from_slice(&membership(
        "updated",
        "m1",
        "room",
        "2026-11-27T10:00:00.000Z",
    ))
    .unwrap();
    updated["data"]
        .as_object_mut()
        .unwrap()
        .remove("isModerator");
    let (status, answer) = json_of(
        app.deliver("default", &serde_json::to_vec(&updated).unwrap())
            .await,
    )
    .await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("ignored")));
    assert!(app.records().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_wrong_or_missing_signature_is_refused_with_401_and_nothing_written() {
    let app = TestApp::spawn().await;
    let body = fixture("memberships-created.json");
    let wrong = signature::sign(&Secret::new("another secret".into()), &body);
    for sig in [Some(wrong.as_str()), None, Some("abc"), Some("")] {
        let (status, answer) = json_of(app.post("default", &body, sig).await).await;
        assert_eq!(status, 401, "signature {sig:?}");
        assert!(
            answer["error"]
                .as_str()
                .unwrap()
                .contains("X-Spark-Signature")
        );
    }
    assert!(app.records().is_empty());
    let right = signature::sign(&Secret::new(SECRET.into()), &body);
    let (status, _) = json_of(app.post("default", &body, Some(&right)).await).await;
    assert_eq!(status, 200);
    assert_eq!(app.records().len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn insecure_accept_unsigned_records_unsigned_deliveries() {
    let app = TestApp::spawn_with(|s| s.insecure_accept_unsigned = true).await;
    let (status, answer) = json_of(
        app.post("default", &fixture("memberships-created.json"), None)
            .await,
    )
    .await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("recorded")));
    app.stop().await;
}

#[tokio::test]
async fn malformed_deliveries_get_400_saying_what_is_wrong() {
    let app = TestApp::spawn().await;
    let cases: [(&[u8], &str); 5] = [
        (b"not json", "not a Webex webhook event"),
        (br#"{"resource":"memberships","event":"created"}"#, "not a Webex webhook event"),
        (br#"{"resource":"memberships","event":"created","data":{"roomId":"r","personId":"p"}}"#, "missing data.id"),
        (br#"{"resource":"memberships","event":"deleted","data":{"id":"m","personId":"p"}}"#, "missing data.roomId"),
        (br#"{"resource":"memberships","event":"created","data":{"id":"m","roomId":"r","personId":"p","isModerator":"yes"}}"#, "not a Webex membership"),
    ];
    for (body, says) in cases {
        let (status, answer) = json_of(app.deliver("default", body).await).await;
        assert_eq!(status, 400, "{}", String::from_utf8_lossy(body));
        let error = answer["error"].as_str().unwrap();
        assert!(error.contains(says), "{error:?} should say {says:?}");
    }
    assert!(app.records().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_bad_target_name_is_404() {
    let app = TestApp::spawn().await;
    let body = fixture("memberships-created.json");
    for target in ["..", "a%2Fb", &"x".repeat(65), "bad.name"] {
        let (status, answer) = json_of(app.deliver(target, &body).await).await;
        assert_eq!(status, 404, "target {target:?}");
        assert!(answer["error"].is_string());
    }
    let (status, _) = app.get("/nowhere").await;
    assert_eq!(status, 404);
    assert!(app.records().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_body_over_64_kib_is_413_and_one_just_under_is_recorded() {
    let app = TestApp::spawn().await;
    let base = membership("created", "m-big", "room", "2026-11-27T10:00:00.000Z");
    let mut body: Value = serde_json::from_slice(&base).unwrap();
    let room = 64 * 1024 - base.len() + "Ana Silva".len();
    body["data"]["personDisplayName"] = "n".repeat(room).into();
    let at_limit = serde_json::to_vec(&body).unwrap();
    assert_eq!(at_limit.len(), 64 * 1024);
    body["data"]["personDisplayName"] = "n".repeat(room + 1).into();
    let over = serde_json::to_vec(&body).unwrap();

    let (status, answer) = json_of(app.deliver("default", &over).await).await;
    assert_eq!(status, 413);
    assert!(answer["error"].as_str().unwrap().contains("65536"));
    assert!(app.records().is_empty());

    let (status, _) = json_of(app.deliver("default", &at_limit).await).await;
    assert_eq!(status, 200);
    assert_eq!(app.records().len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_retried_delivery_is_a_duplicate_with_the_original_seq_also_after_a_restart() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("log");
    let clock = Arc::new(FakeClock::new(START));
    let body = fixture("memberships-created.json");
    let app = TestApp::spawn_in(&dir, clock.clone(), |_| {}).await;
    app.deliver("default", &fixture("memberships-deleted.json"))
        .await;
    let (_, first) = json_of(app.deliver("default", &body).await).await;
    assert_eq!(first["seq"], 3);
    let (status, again) = json_of(app.deliver("default", &body).await).await;
    assert_eq!(status, 200);
    assert_eq!(again, serde_json::json!({"status": "duplicate", "seq": 3}));
    app.stop().await;

    // Six days later, after a restart, the retry is still recognised.
    clock.advance(time::Duration::days(6));
    let app = TestApp::spawn_in(&dir, clock, |_| {}).await;
    let (_, later) = json_of(app.deliver("default", &body).await).await;
    assert_eq!(later, serde_json::json!({"status": "duplicate", "seq": 3}));
    // Both starts and the stop between them are in the chain.
    assert_eq!(assert_chain_whole(&dir), [1, 2, 3, 4, 5]);
    app.stop().await;
}

#[tokio::test]
async fn concurrent_copies_of_one_delivery_record_it_once() {
    let app = TestApp::spawn().await;
    let body = fixture("memberships-created.json");
    let answers = join_all((0..20).map(|_| app.deliver("default", &body))).await;
    let mut statuses = Vec::new();
    for answer in answers {
        let (status, value) = json_of(answer).await;
        assert_eq!((status, &value["seq"]), (200, &2.into()));
        statuses.push(value["status"].as_str().unwrap().to_string());
    }
    assert_eq!(statuses.iter().filter(|s| *s == "recorded").count(), 1);
    assert_eq!(app.records().len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_leave_and_a_rejoin_of_the_same_membership_are_separate_records() {
    let app = TestApp::spawn().await;
    let deliveries = [
        membership("created", "m1", "room", "2026-11-27T09:00:00.000Z"),
        membership("deleted", "m1", "room", "2026-11-27T10:00:00.000Z"),
        membership("created", "m1", "room", "2026-11-27T11:00:00.000Z"),
    ];
    for body in &deliveries {
        let (_, answer) = json_of(app.deliver("default", body).await).await;
        assert_eq!(answer["status"], "recorded");
    }
    let events: Vec<String> = app
        .records()
        .iter()
        .map(|r| r["event"].as_str().unwrap().into())
        .collect();
    assert_eq!(events, ["joined", "left", "joined"]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_crossing_midnight_under_concurrent_load_land_in_the_right_day_files() {
    let clock = Arc::new(FakeClock::new(datetime!(2026-11-27 23:59:59.900 UTC)));
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("log");
    let app = Arc::new(TestApp::spawn_in(&dir, clock.clone(), |_| {}).await);
    let acked = Arc::new(AtomicUsize::new(0));
    let in_flight = Arc::new(Semaphore::new(32));
    let deliveries: Vec<_> = (0..300)
        .map(|i| {
            let (app, clock, acked, in_flight) =
                (app.clone(), clock.clone(), acked.clone(), in_flight.clone());
            tokio::spawn(async move {
                let _slot = in_flight.acquire().await.unwrap();
                let body = membership(
                    "created",
                    &format!("m{i}"),
                    "room",
                    "2026-11-27T23:00:00.000Z",
                );
                let answer = json_of(app.deliver("default", &body).await).await;
                // Midnight strikes while a third of the deliveries are in.
                if acked.fetch_add(1, Ordering::SeqCst) == 99 {
                    clock.set(datetime!(2026-11-28 00:00:00.100 UTC));
                }
                answer
            })
        })
        .collect();
    for delivery in join_all(deliveries).await {
        let (status, answer) = delivery.unwrap();
        assert_eq!((status, answer["status"].as_str()), (200, Some("recorded")));
    }
    let seqs = assert_chain_whole(&dir);
    assert_eq!(seqs.len(), 301, "300 deliveries after the start record");
    let per_day: Vec<(String, usize)> = rollcall::log::days::list(&dir)
        .unwrap()
        .iter()
        .map(|d| {
            let text = std::fs::read_to_string(d.path()).unwrap();
            (rollcall::log::days::day_name(d.date), text.lines().count())
        })
        .collect();
    assert_eq!(per_day.len(), 2, "{per_day:?}");
    assert_eq!(per_day[0].0, "2026-11-27");
    assert_eq!(per_day[1].0, "2026-11-28");
    assert!(per_day[0].1 >= 100, "{per_day:?}");
    Arc::into_inner(app).unwrap().stop().await;
}

#[tokio::test]
async fn a_torn_last_line_is_moved_to_quarantine_and_the_chain_resumes() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("log");
    let clock = Arc::new(FakeClock::new(START));
    let app = TestApp::spawn_in(&dir, clock.clone(), |_| {}).await;
    for i in 0..3 {
        app.deliver(
            "default",
            &membership("created", &format!("m{i}"), "r", "2026-11-27T01:00:00.000Z"),
        )
        .await;
    }
    app.stop().await;
    let day = dir.join("2026-11-27.jsonl");
    let torn = br#"{"seq":6,"received_at":"2026-11-27T12:00:00.000Z","event":"jo"#;
    let mut bytes = std::fs::read(&day).unwrap();
    bytes.extend_from_slice(torn);
    std::fs::write(&day, &bytes).unwrap();

    let app = TestApp::spawn_in(&dir, clock, |_| {}).await;
    let quarantined: Vec<_> = std::fs::read_dir(dir.join("quarantine"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(quarantined.len(), 1);
    assert_eq!(std::fs::read(&quarantined[0]).unwrap(), torn);
    let (_, answer) = json_of(
        app.deliver(
            "default",
            &membership("created", "m9", "r", "2026-11-27T02:00:00.000Z"),
        )
        .await,
    )
    .await;
    // Start, three joins, stop; the second start is seq 6.
    assert_eq!(answer["seq"], 7);
    assert_eq!(assert_chain_whole(&dir), [1, 2, 3, 4, 5, 6, 7]);
    app.stop().await;
}

#[tokio::test]
async fn when_the_log_directory_disappears_deliveries_get_503_until_it_is_back() {
    let app = TestApp::spawn().await;
    let (status, _) = json_of(
        app.deliver("default", &fixture("memberships-created.json"))
            .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(app.get("/healthz").await.0, 200);

    std::fs::remove_dir_all(&app.dir).unwrap();
    let (status, answer) = json_of(
        app.deliver("default", &fixture("memberships-deleted.json"))
            .await,
    )
    .await;
    assert_eq!(status, 503);
    assert!(answer["error"].as_str().unwrap().contains("durable"));
    let (status, _) = app.get("/healthz").await;
    assert_eq!(status, 503);
    // When the directory is back, the server recovers by itself.
    rollcall::log::files::create_dir(&app.dir).unwrap();
    let (status, answer) = json_of(
        app.deliver("default", &fixture("memberships-deleted.json"))
            .await,
    )
    .await;
    assert_eq!((status, &answer["seq"]), (200, &3.into()));
    let (status, _) = app.get("/healthz").await;
    assert_eq!(status, 200);
    app.stop().await;
}

#[tokio::test]
async fn audit_files_and_directories_are_private_and_a_generated_secret_is_owner_only() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("log");
    let app = TestApp::spawn_in(&dir, Arc::new(FakeClock::new(START)), |s| s.secret = None).await;
    let secret = std::fs::read_to_string(dir.join(".secret")).unwrap();
    let body = fixture("memberships-created.json");
    let sig = signature::sign(&Secret::new(secret.trim().into()), &body);
    let (status, _) = json_of(app.post("default", &body, Some(&sig)).await).await;
    assert_eq!(status, 200);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir.join(".secret")), 0o600);
    assert_eq!(mode(&dir), 0o750);
    assert_eq!(mode(&dir.join("2026-11-27.jsonl")), 0o640);
    app.stop().await;
}

#[test]
fn a_second_server_on_the_same_directory_is_refused_naming_it() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("log");
    let first = ServerProcess::start(&dir, |_| {});
    let second = run(rollcall(&dir).args(["serve", "--listen", "127.0.0.1:0"]));
    assert_ne!(second.status.code(), Some(0), "{}", second.report());
    assert!(
        second.stderr.contains(&dir.display().to_string()),
        "{}",
        second.report()
    );
    assert!(second.stderr.contains("already"), "{}", second.report());
    drop(first);
}

#[test]
fn the_first_start_says_where_the_generated_secret_is() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("log");
    let server = ServerProcess::start(&dir, |_| {});
    let stderr = server.stderr();
    assert!(
        stderr.contains("generated a new webhook secret"),
        "{stderr}"
    );
    assert!(stderr.contains(".secret"), "{stderr}");
    let secret = std::fs::read_to_string(dir.join(".secret")).unwrap();
    assert!(
        !stderr.contains(secret.trim()),
        "the secret itself must not be logged"
    );
    let status = server.terminate();
    assert!(
        status.success(),
        "SIGTERM should stop the server cleanly: {status}"
    );
}

/// SIGKILL in the middle of hundreds of concurrent deliveries: every
/// delivery that got a 200 is in the log exactly once, and the chain is
/// whole after the restart.
#[test]
fn every_acknowledged_delivery_survives_a_sigkill_exactly_once() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("log");
    let server = ServerProcess::start(&dir, |c| {
        c.env("ROLLCALL_SECRET", SECRET);
    });
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let url = format!("{}/hooks/default", server.address);
    let (acked, killed) = runtime.block_on(async {
        let client = reqwest::Client::new();
        let (acks, mut ack_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let in_flight = Arc::new(Semaphore::new(64));
        let senders: Vec<_> = (0..1000)
            .map(|i| {
                let client = client.clone();
                let url = url.clone();
                let acks = acks.clone();
                let in_flight = in_flight.clone();
                tokio::spawn(async move {
                    let _slot = in_flight.acquire().await.unwrap();
                    let body = membership(
                        "created",
                        &format!("crash-{i}"),
                        "r",
                        "2026-11-27T01:00:00.000Z",
                    );
                    let sig = signature::sign(&Secret::new(SECRET.into()), &body);
                    let answer = client
                        .post(&url)
                        .header("x-spark-signature", sig)
                        .body(body)
                        .send()
                        .await;
                    if let Ok(answer) = answer
                        && answer.status() == 200
                        && let Ok(value) = answer.json::<Value>().await
                        && value["status"] == "recorded"
                    {
                        let _ = acks.send(format!("crash-{i}"));
                    }
                })
            })
            .collect();
        drop(acks);
        let mut acked = Vec::new();
        while acked.len() < 150 {
            acked.push(ack_rx.recv().await.expect("150 acks before the kill"));
        }
        let killed = server.kill();
        join_all(senders).await;
        while let Some(id) = ack_rx.recv().await {
            acked.push(id);
        }
        (acked, killed)
    });
    assert!(!killed.success());
    assert!(
        acked.len() < 1000,
        "the kill came too late to test anything"
    );

    let server = ServerProcess::start(&dir, |c| {
        c.env("ROLLCALL_SECRET", SECRET);
    });
    let seqs = assert_chain_whole(&dir);
    let records = live_records(&dir);
    assert_eq!(seqs.len(), records.len());
    for id in &acked {
        let copies = records
            .iter()
            .filter(|r| r["membership_id"] == id.as_str())
            .count();
        assert_eq!(
            copies, 1,
            "acked delivery {id} is in the log {copies} times"
        );
    }
    drop(server);
}

#[test]
fn with_log_dir_the_service_log_also_goes_to_a_daily_file() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("log");
    let logs = temp.path().join("service-logs");
    let server = ServerProcess::start(&dir, |c| {
        c.arg("--log-dir").arg(&logs);
    });
    assert!(server.terminate().success());
    let files: Vec<_> = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(text.contains("rollcall is listening"), "{text}");
    assert!(text.contains("stopped"), "{text}");
}

#[tokio::test]
async fn metrics_count_deliveries_by_outcome_records_and_syncs() {
    let app = TestApp::spawn().await;
    let body = fixture("memberships-created.json");
    app.deliver("default", &body).await;
    app.deliver("default", &body).await;
    app.deliver("default", &fixture("messages-created.json"))
        .await;
    app.post("default", &body, None).await;
    let text = app.get("/metrics").await.1;
    for line in [
        "rollcall_deliveries_total{outcome=\"recorded\"} 1",
        "rollcall_deliveries_total{outcome=\"duplicate\"} 1",
        "rollcall_deliveries_total{outcome=\"ignored\"} 1",
        "rollcall_deliveries_total{outcome=\"unauthorized\"} 1",
        // The start record is written and synced like any other.
        "rollcall_records_written_total 2",
        "rollcall_fdatasync_total 2",
        "rollcall_ack_seconds_count 4",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    assert!(!text.contains(crate::support::app::SECRET));
    app.stop().await;
}

#[test]
fn simulate_posts_signed_joins_leaves_and_rejoins_across_rooms_to_a_running_server() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("log");
    let server = ServerProcess::start(&dir, |_| {});
    let simulated = run(rollcall(&dir).args([
        "simulate",
        "--url",
        &server.address,
        "--count",
        "12",
        "--rooms",
        "3",
    ]))
    .success();
    assert!(
        simulated.stdout.contains("12 recorded, 0 not"),
        "{}",
        simulated.report()
    );
    let records = membership_records(&dir);
    assert_eq!(records.len(), 12);
    let rooms: std::collections::BTreeSet<&str> = records
        .iter()
        .map(|r| r["room_id"].as_str().unwrap())
        .collect();
    assert_eq!(rooms.len(), 3);
    assert!(records.iter().any(|r| r["event"] == "left"));
    assert!(
        records
            .iter()
            .any(|r| r["event"].as_str().unwrap().starts_with("moderator_")),
        "a moderator granted or revoked among {records:#?}"
    );
    let rejoined = records.iter().enumerate().any(|(i, left)| {
        left["event"] == "left"
            && records[i..]
                .iter()
                .any(|r| r["event"] == "joined" && r["membership_id"] == left["membership_id"])
    });
    assert!(
        rejoined,
        "a leave followed by a rejoin of the same membership"
    );
    assert_chain_whole(&dir);
}

#[test]
fn simulate_gives_each_person_one_membership_per_room_however_many_deliveries_it_posts() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("log");
    let server = ServerProcess::start(&dir, |_| {});

    let simulated = run(rollcall(&dir).args([
        "simulate",
        "--url",
        &server.address,
        "--count",
        "80",
        "--rooms",
        "2",
    ]))
    .success();

    assert!(
        simulated.stdout.contains("80 recorded, 0 not"),
        "{}",
        simulated.report()
    );
    let mut by_pair = std::collections::BTreeMap::<(String, String), Vec<String>>::new();
    for record in membership_records(&dir) {
        let pair = (
            record["room_id"].as_str().unwrap().to_string(),
            record["person_id"].as_str().unwrap().to_string(),
        );
        let ids = by_pair.entry(pair).or_default();
        let id = record["membership_id"].as_str().unwrap().to_string();
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    let doubled: Vec<_> = by_pair.iter().filter(|(_, ids)| ids.len() > 1).collect();
    assert!(
        doubled.is_empty(),
        "one person, two memberships: {doubled:#?}"
    );
    let ids: std::collections::BTreeSet<&String> = by_pair.values().flatten().collect();
    assert_eq!(ids.len(), by_pair.len(), "one membership, two people");
}

#[test]
fn simulate_without_the_servers_secret_says_how_to_give_it_and_makes_none() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("elsewhere");
    let refused = run(rollcall(&dir).args(["simulate", "--url", "http://127.0.0.1:9"])).code(2);
    assert!(
        refused.stderr.contains("no webhook secret"),
        "{}",
        refused.report()
    );
    assert!(
        refused.stderr.contains("ROLLCALL_SECRET"),
        "{}",
        refused.report()
    );
    assert!(!dir.join(".secret").exists());
}
