//! The server side of the log's integrity: a restart never launders a
//! tampered record, the durable head witness, no answer for bytes not
//! known durable, health that heals by itself, no title lookups for
//! retries, and the smaller promises around them.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rollcall::clock::FakeClock;
use rollcall::log::head::Head;
use rollcall::log::record::Event;
use rollcall::log::writer::{AppendError, Appended};
use rollcall::secret::Secret;
use rollcall::startup::Settings;
use rollcall::webhook::signature;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::app::{self, SECRET, START, TestApp, json_of, membership_record};
use crate::support::bin::{ServerProcess, rollcall, run};
use crate::support::disk::{FaultyDisk, faulty_writer};
use crate::support::fake_webex::{FakeWebex, TOKEN};
use crate::support::logs::{TestLog, read_lines, write_lines};

/// The i-th distinct join.
fn body(i: usize) -> Vec<u8> {
    app::membership(
        "created",
        &format!("m{i}"),
        "room",
        "2026-11-27T01:00:00.000Z",
    )
}

/// A temp directory and the log directory inside it, kept past a stop.
fn temp_log() -> (TempDir, PathBuf) {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("audit-logs");
    (temp, dir)
}

/// A log of three records written by the library's writer, then closed.
async fn three_records() -> TestLog {
    let mut log = TestLog::new();
    for _ in 0..3 {
        log.append(log.member(Event::Joined)).await;
    }
    log.close();
    log
}

/// The value of the metric line that starts with `name ` in `text`.
pub(crate) fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

#[tokio::test]
async fn a_restart_keeps_a_tampered_last_record_in_place_and_verify_still_fails() {
    let log = three_records().await;
    let day = log.day_file("2026-11-27");
    let mut lines = read_lines(&day);
    let last = lines.pop().unwrap();
    let edited = last.replacen("@", ".evil@", 1);
    assert_ne!(edited, last, "the record holds an email to edit");
    lines.push(edited);
    write_lines(&day, &lines);
    let tampered = std::fs::read(&day).unwrap();
    run(rollcall(&log.dir).arg("verify")).code(1);

    let server = ServerProcess::start(&log.dir, |_| {});
    let stderr = server.stderr();
    assert!(server.terminate().success());

    assert_eq!(std::fs::read(&day).unwrap(), tampered, "the line stays");
    let quarantined = std::fs::read_dir(log.dir.join("quarantine"))
        .map(|entries| entries.count())
        .unwrap_or(0);
    assert_eq!(quarantined, 0, "a whole line is no torn write");
    assert!(
        stderr.contains("2026-11-27.jsonl")
            && stderr.contains("line 3")
            && stderr.contains("seq 3"),
        "the damage is logged with file, line and seq:\n{stderr}"
    );
    let verdict = run(rollcall(&log.dir).arg("verify")).code(1);
    assert!(verdict.stdout.contains("seq 3") || verdict.stderr.contains("seq 3"));
}

#[tokio::test]
async fn serve_chains_on_from_a_damaged_last_record_and_counts_it_in_metrics() {
    let log = three_records().await;
    let day = log.day_file("2026-11-27");
    let mut lines = read_lines(&day);
    let last: Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    let edited = lines.pop().unwrap().replacen("@", ".evil@", 1);
    lines.push(edited);
    write_lines(&day, &lines);

    let app = TestApp::spawn_in(&log.dir, Arc::new(FakeClock::new(START)), |_| {}).await;
    let (_, metrics) = app.get("/metrics").await;
    assert_eq!(
        metric(&metrics, "rollcall_damaged_records_at_start"),
        Some(1.0),
        "{metrics}"
    );
    // Seq 4 is the start record, chained on from the damaged line.
    let (status, answer) = json_of(app.deliver("default", &body(0)).await).await;
    assert_eq!((status, &answer["seq"]), (200, &json!(5)));
    app.stop().await;
    let records = app::live_records(&log.dir);
    assert_eq!(records[3]["event"], "receiver_started");
    assert_eq!(records[3]["prev_hash"], last["hash"]);
}

#[tokio::test]
async fn a_last_line_without_seq_or_hash_is_reported_and_its_seq_is_not_given_again() {
    let log = three_records().await;
    let day = log.day_file("2026-11-27");
    let mut lines = read_lines(&day);
    let third: Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    lines.push("{\"not\":\"a record\"}".into());
    write_lines(&day, &lines);
    let before = std::fs::read(&day).unwrap();

    let server = ServerProcess::start(&log.dir, |_| {});
    let stderr = server.stderr();
    assert!(server.terminate().success());
    assert!(
        stderr.contains("line 4") && stderr.contains("verify"),
        "{stderr}"
    );
    assert!(std::fs::read(&day).unwrap().starts_with(&before));
    // Line 4 held seq 4 as far as anyone knows: the start record takes 5,
    // chained on from the last record that reads.
    let started = app::live_records(&log.dir)
        .into_iter()
        .find(|r| r["event"] == "receiver_started")
        .unwrap();
    assert_eq!(
        (&started["seq"], &started["prev_hash"]),
        (&json!(5), &third["hash"])
    );
}

#[tokio::test]
async fn only_a_fragment_without_its_newline_is_moved_aside_as_a_torn_write() {
    let log = three_records().await;
    let day = log.day_file("2026-11-27");
    let whole = std::fs::read(&day).unwrap();
    let mut torn = whole.clone();
    torn.extend_from_slice(b"{\"seq\":4,\"rece");
    std::fs::write(&day, &torn).unwrap();

    let app = TestApp::spawn_in(&log.dir, Arc::new(FakeClock::new(START)), |_| {}).await;
    app.stop().await;
    // The whole lines stay as they were; the server's start and stop
    // records follow them.
    let after = std::fs::read(&day).unwrap();
    assert!(after.starts_with(&whole));
    let added: Vec<String> = app::live_records(&log.dir)[3..]
        .iter()
        .map(|r| r["event"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(added, ["receiver_started", "receiver_stopped"]);
    let aside: Vec<_> = std::fs::read_dir(log.dir.join("quarantine"))
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(aside, [b"{\"seq\":4,\"rece".to_vec()]);
}

#[tokio::test]
async fn the_head_names_the_last_durable_record_after_deliveries_and_after_a_stop() {
    let (_temp, dir) = temp_log();
    let app = TestApp::spawn_in(&dir, Arc::new(FakeClock::new(START)), |_| {}).await;
    for i in 0..3 {
        let (status, _) = json_of(app.deliver("default", &body(i)).await).await;
        assert_eq!(status, 200);
    }
    let last = app.records().pop().unwrap();
    let head = Head::read(&app.dir)
        .unwrap()
        .expect("a head after deliveries");
    // After the start record, seq 1.
    assert_eq!(
        (head.seq, head.hash.as_str()),
        (4, last["hash"].as_str().unwrap())
    );
    let (status, _) = json_of(app.deliver("default", &body(3)).await).await;
    assert_eq!(status, 200);
    app.stop().await;
    let last = app::live_records(&dir).pop().unwrap();
    assert_eq!(last["event"], "receiver_stopped");
    let head = Head::read(&dir).unwrap().expect("a head after the stop");
    assert_eq!(
        (head.seq, head.hash.as_str()),
        (6, last["hash"].as_str().unwrap())
    );
}

#[tokio::test]
async fn a_start_writes_the_head_of_the_recovered_log() {
    let log = three_records().await;
    std::fs::remove_file(rollcall::log::head::path(&log.dir)).ok();
    let last: Value =
        serde_json::from_str(read_lines(&log.day_file("2026-11-27")).last().unwrap()).unwrap();
    let app = TestApp::spawn_in(&log.dir, Arc::new(FakeClock::new(START)), |_| {}).await;
    let head = Head::read(&log.dir)
        .unwrap()
        .expect("a head after the start");
    // The start record, chained on from the recovered log's last record.
    let started = app::live_records(&log.dir).pop().unwrap();
    assert_eq!(started["event"], "receiver_started");
    assert_eq!(started["prev_hash"], last["hash"]);
    assert_eq!((head.seq, json!(head.hash)), (4, started["hash"].clone()));
    app.stop().await;
}

#[tokio::test]
async fn a_refused_record_whose_bytes_stayed_is_not_answered_duplicate_until_they_are_synced() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("log");
    let (writer, disk) = faulty_writer(&dir);
    assert_eq!(
        writer.append(membership_record("a")).await.unwrap(),
        Appended::Recorded(1)
    );

    // The batch's fdatasync fails and so does cutting it off again: its
    // bytes stay in the file, not known durable.
    disk.fail_syncs.store(2, Ordering::SeqCst);
    disk.fail_truncates.store(1, Ordering::SeqCst);
    let refused = writer.append(membership_record("b")).await;
    assert!(matches!(refused, Err(AppendError::Io(_))), "{refused:?}");
    // Webex retries; the sync that would make the bytes durable still fails.
    let retried = writer.append(membership_record("b")).await;
    assert!(matches!(retried, Err(AppendError::Io(_))), "{retried:?}");

    // Once a sync succeeds the bytes are durable, and only then answered.
    let retried = writer.append(membership_record("b")).await.unwrap();
    assert_eq!(retried, Appended::Duplicate(2));
    drop(writer);
    assert_eq!(app::assert_chain_whole(&dir), [1, 2]);
}

#[tokio::test]
async fn healthz_recovers_by_itself_once_the_disk_can_write_and_sync_again() {
    let disk = Arc::new(FaultyDisk::default());
    let app = TestApp::spawn_with({
        let disk = disk.clone();
        move |settings: &mut Settings| settings.disk = disk
    })
    .await;
    assert_eq!(app.get("/healthz").await.0, 200);

    disk.failing.store(true, Ordering::SeqCst);
    assert_eq!(app.get("/healthz").await.0, 503);
    let (status, _) = json_of(app.deliver("default", &body(0)).await).await;
    assert_eq!(status, 503);
    assert_eq!(app.get("/healthz").await.0, 503);

    disk.failing.store(false, Ordering::SeqCst);
    assert_eq!(app.get("/healthz").await.0, 200, "no delivery needed");
    app.stop().await;
}

#[tokio::test]
async fn a_retry_while_the_title_cache_is_cold_makes_no_room_lookup() {
    let fake = FakeWebex::start();
    fake.add_room("R1", "Board");
    let url = fake.url.clone();
    let app = TestApp::spawn_with(move |settings: &mut Settings| {
        settings.webex.token = Some(Secret::new(TOKEN.into()));
        settings.webex.api_url = url;
        // Every title is looked up afresh: only dedup can spare a call.
        settings.webex.titles.ttl = Duration::ZERO;
    })
    .await;
    let mut delivery: Value = serde_json::from_slice(&app::membership(
        "created",
        "m1",
        "R1",
        "2026-11-27T12:00:00.000Z",
    ))
    .unwrap();
    delivery.as_object_mut().unwrap().remove("filter");
    let delivery = serde_json::to_vec(&delivery).unwrap();
    for _ in 0..5 {
        let (status, _) = json_of(app.deliver("firehose", &delivery).await).await;
        assert_eq!(status, 200);
    }
    assert_eq!(fake.count("GET", "/rooms/"), 1);
    app.stop().await;
}

#[test]
fn log_dir_files_are_readable_by_the_group_only() {
    let temp = tempfile::tempdir().unwrap();
    let logs = temp.path().join("own-logs");
    let server = ServerProcess::start(&temp.path().join("audit-logs"), |command| {
        command.arg("--log-dir").arg(&logs);
    });
    assert!(server.terminate().success());
    let files: Vec<_> = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(!files.is_empty(), "a log file in {}", logs.display());
    for file in files {
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640, "{}", file.display());
    }
}

#[tokio::test]
async fn a_non_ascii_signature_is_a_401_with_a_json_error() {
    let app = TestApp::spawn().await;
    let request = app
        .client
        .post(format!("{}/hooks/default", app.address))
        .header(
            "x-spark-signature",
            reqwest::header::HeaderValue::from_bytes(b"caf\xe9").unwrap(),
        )
        .body(body(0));
    let (status, answer) = json_of(request.send().await.unwrap()).await;
    assert_eq!(status, 401, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("X-Spark-Signature")
    );
    assert!(app.records().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_too_large_body_is_timed_from_its_request() {
    let app = TestApp::spawn().await;
    let answer = app.post_chunked_past_the_limit().await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    let (_, metrics) = app.get("/metrics").await;
    assert_eq!(
        metric(&metrics, "rollcall_deliveries_total{outcome=\"too_large\"}"),
        Some(1.0)
    );
    let took = metric(&metrics, "rollcall_ack_seconds_sum").unwrap();
    assert!(took > 0.0, "a 413 took no time:\n{metrics}");
    app.stop().await;
}

#[test]
fn retain_days_without_archival_is_refused() {
    let temp = tempfile::tempdir().unwrap();
    let refused = run(rollcall(temp.path()).args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--no-archive",
        "--retain-days",
        "30",
    ]));
    assert_eq!(refused.status.code(), Some(2), "{}", refused.report());
    assert!(
        refused.stderr.contains("--retain-days"),
        "{}",
        refused.report()
    );
}

#[tokio::test]
async fn shutdown_stops_the_writer_even_when_a_connection_outlives_the_drain() {
    let (_temp, dir) = temp_log();
    let app = TestApp::spawn_in(&dir, Arc::new(FakeClock::new(START)), |settings| {
        settings.drain_timeout = Duration::from_millis(50);
    })
    .await;
    let delivery = body(0);
    let signature = signature::sign(&Secret::new(SECRET.into()), &delivery);
    let address = app.address.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /hooks/default HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nx-spark-signature: {signature}\r\ncontent-length: {}\r\n\r\n",
        delivery.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&delivery[..10]).await.unwrap();
    // The request is being read when the server is told to stop.
    let (status, _) = app.get("/healthz").await;
    assert_eq!(status, 200);
    app.stop().await;

    // What arrives after the server stopped is not written by a writer
    // nobody stopped.
    stream.write_all(&delivery[10..]).await.unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(!answer.contains("recorded"), "{answer}");
    assert!(app::membership_records(&dir).is_empty());
}

#[tokio::test]
async fn a_head_that_leads_the_log_at_start_is_kept_aside_and_the_head_goes_on() {
    let log = three_records().await;
    let witnessed = Head::read(&log.dir)
        .unwrap()
        .expect("a head after three records");
    assert_eq!(witnessed.seq, 3);
    let day = log.day_file("2026-11-27");
    let mut lines = read_lines(&day);
    lines.pop();
    write_lines(&day, &lines);

    let app = TestApp::spawn_in(&log.dir, Arc::new(FakeClock::new(START)), |_| {}).await;
    let (_, metrics) = app.get("/metrics").await;
    assert_eq!(metric(&metrics, "rollcall_head_quarantined"), Some(1.0));
    let (status, answer) = json_of(app.deliver("default", &body(0)).await).await;
    // Seq 3 was acknowledged once; seq 4 is the start record.
    assert_eq!((status, &answer["seq"]), (200, &json!(5)));
    app.stop().await;
    let kept: Vec<_> = rollcall::log::head::KeptHead::list(&log.dir)
        .unwrap()
        .into_iter()
        .map(|(_, kept)| kept.head())
        .collect();
    assert_eq!(kept, [witnessed]);
    assert_eq!(Head::read(&log.dir).unwrap().unwrap().seq, 6);
}
