//! What `serve` does with a log that is not as it left it: a durable head
//! the log ends before (a cut) is kept aside as evidence and the head
//! follows the log again; a line that is not a record is reported and
//! skipped, and the server starts. Through the real binary.

use std::path::{Path, PathBuf};

use rollcall::log::head::Head;
use rollcall::secret::Secret;
use rollcall::webhook::signature;
use serde_json::Value;

use crate::integrity_serve::metric;
use crate::read_side::Follower;
use crate::support::app::{SECRET, live_records, membership, membership_record};
use crate::support::bin::{ServerProcess, rollcall, run};
use crate::support::logs::{TestLog, read_lines, write_lines};
use crate::support::moto::Moto;

/// The delivery body for the i-th join of [`hundred_records`].
fn join(i: usize) -> Vec<u8> {
    membership(
        "created",
        &format!("m{i}"),
        "room",
        "2026-11-27T01:00:00.000Z",
    )
}

/// A closed log of 100 joins, seq 1 to 100, the i-th (from 0) for
/// membership `m{i}`: what [`join`] delivers. Written yesterday at noon by
/// the real clock, so a `serve` started on it has them inside its dedup
/// window whatever the date.
async fn hundred_records() -> TestLog {
    let yesterday = time::OffsetDateTime::now_utc().date() - time::Duration::days(1);
    let mut log = TestLog::starting_at(yesterday.with_hms(12, 0, 0).unwrap().assume_utc());
    for i in 0..100 {
        log.append(membership_record(&format!("m{i}"))).await;
    }
    log.close();
    log
}

/// The log's only day file.
fn day_file(log: &TestLog) -> PathBuf {
    log.day_file(&log.date_name())
}

/// `serve` on `dir` with the test secret.
fn serve(dir: &Path) -> ServerProcess {
    ServerProcess::start(dir, |command| {
        command.env("ROLLCALL_SECRET", SECRET);
    })
}

/// Posts `body`, signed, to the server's default target: the status and
/// the JSON answer.
pub(crate) async fn deliver(server: &ServerProcess, body: &[u8]) -> (u16, Value) {
    let sig = signature::sign(&Secret::new(SECRET.into()), body);
    let answer = reqwest::Client::new()
        .post(format!("{}/hooks/default", server.address))
        .header("content-type", "application/json")
        .header("x-spark-signature", sig)
        .body(body.to_vec())
        .send()
        .await
        .expect("posting a delivery");
    let status = answer.status().as_u16();
    (status, answer.json().await.expect("a JSON answer"))
}

async fn get(server: &ServerProcess, path: &str) -> (u16, String) {
    let answer = reqwest::get(format!("{}{path}", server.address))
        .await
        .expect("a GET");
    let status = answer.status().as_u16();
    (status, answer.text().await.expect("reading the answer"))
}

/// Three new joins, each recorded: their seqs.
async fn three_new_deliveries(server: &ServerProcess) -> Vec<u64> {
    let mut seqs = Vec::new();
    for i in 1000..1003 {
        let (status, answer) = deliver(server, &join(i)).await;
        assert_eq!((status, &answer["status"]), (200, &"recorded".into()));
        seqs.push(answer["seq"].as_u64().unwrap());
    }
    seqs
}

/// A 100-record log with its last 10 lines cut off, and the head that
/// witnessed seq 100.
async fn cut_log() -> (TestLog, Head) {
    let log = hundred_records().await;
    let witnessed = Head::read(&log.dir).unwrap().expect("a head");
    assert_eq!(witnessed.seq, 100);
    let mut lines = read_lines(&day_file(&log));
    lines.truncate(90);
    write_lines(&day_file(&log), &lines);
    (log, witnessed)
}

/// The heads kept in `DIR/quarantine/`, as JSON.
fn quarantined_heads(dir: &Path) -> Vec<Value> {
    let Ok(entries) = std::fs::read_dir(dir.join("quarantine")) else {
        return Vec::new();
    };
    entries
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("head-")
        })
        .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
        .collect()
}

#[tokio::test]
async fn after_a_cut_the_old_head_is_kept_aside_and_the_head_follows_the_new_records() {
    let (log, witnessed) = cut_log().await;

    let server = serve(&log.dir);
    let seqs = three_new_deliveries(&server).await;
    // Seqs 91 to 100 were acknowledged once: they are never given again.
    assert!(seqs.iter().all(|&seq| seq > 100), "{seqs:?}");
    let head = Head::read(&log.dir).unwrap().unwrap();
    assert_eq!(head.seq, *seqs.last().unwrap(), "the head moved on");
    let stderr = server.stderr();
    assert!(server.terminate().success());

    assert!(
        stderr.contains("quarantine") && stderr.contains("seq 100"),
        "the start says where the old head went:\n{stderr}"
    );
    let last = live_records(&log.dir).pop().unwrap();
    assert_eq!(last["event"], "receiver_stopped");
    let head = Head::read(&log.dir).unwrap().unwrap();
    assert_eq!(
        (head.seq, head.hash.as_str()),
        (
            last["seq"].as_u64().unwrap(),
            last["hash"].as_str().unwrap()
        ),
        "the head after a clean stop is the stop record"
    );
    let kept = quarantined_heads(&log.dir);
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(
        (&kept[0]["seq"], &kept[0]["hash"]),
        (&witnessed.seq.into(), &witnessed.hash.clone().into())
    );

    // A second start finds the head and the log agreeing: nothing more
    // is kept aside.
    assert!(serve(&log.dir).terminate().success());
    assert_eq!(quarantined_heads(&log.dir).len(), 1);
}

#[tokio::test]
async fn verify_names_the_quarantined_head_and_the_cut_seqs_after_serve_went_on() {
    let (log, witnessed) = cut_log().await;
    let server = serve(&log.dir);
    three_new_deliveries(&server).await;
    assert!(server.terminate().success());

    let verdict = run(rollcall(&log.dir).arg("verify")).code(1);
    let kept = verdict
        .stdout
        .lines()
        .find(|l| l.starts_with("FAULT:") && l.contains("quarantine/head-"))
        .unwrap_or_else(|| panic!("no fault names the kept head:\n{}", verdict.report()));
    assert!(
        kept.contains(&witnessed.hash) && kept.contains("seqs 91 to 100"),
        "{}",
        verdict.report()
    );
}

#[tokio::test]
async fn metrics_show_the_quarantined_head() {
    let (log, _) = cut_log().await;
    let server = serve(&log.dir);
    let (_, text) = get(&server, "/metrics").await;
    assert_eq!(
        metric(&text, "rollcall_head_quarantined"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, "rollcall_head_quarantined_seq"),
        Some(100.0),
        "{text}"
    );
    assert!(server.terminate().success());
}

#[tokio::test]
async fn after_a_cut_serve_checkpoints_the_head_past_the_kept_one() {
    let moto = Moto::start().await;
    let (log, witnessed) = cut_log().await;
    let server = ServerProcess::start(&log.dir, |command| {
        command.env("ROLLCALL_SECRET", SECRET);
        moto.configure(command, "site-cut");
        command.args(["--checkpoint-every", "1h"]);
    });
    let seqs = three_new_deliveries(&server).await;
    assert!(server.terminate().success());

    let head = Head::read(&log.dir).unwrap().unwrap();
    assert!(head.seq > *seqs.last().unwrap(), "the stop record");
    let key = format!(
        "site-cut/{}/checkpoints/{:020}.json",
        rollcall::receiver::host_name(),
        head.seq
    );
    let keys = moto.keys().await;
    assert!(keys.contains(&key), "{key} in {keys:?}");
    let checkpoint: Value = serde_json::from_slice(&moto.get(&key).await).unwrap();
    assert_eq!(checkpoint["hash"], head.hash.as_str());
    assert_ne!(head, witnessed);
}

#[tokio::test]
async fn tail_follow_shows_the_records_written_after_a_cut() {
    let (log, _) = cut_log().await;
    let server = serve(&log.dir);
    let tail = Follower::start(&log.dir, &["-n", "1", "--json"]);
    let first: Value = serde_json::from_str(&tail.next_line()).unwrap();
    assert_eq!(first["event"], "receiver_started");

    let seqs = three_new_deliveries(&server).await;
    let shown: Vec<u64> = (0..3)
        .map(|_| {
            serde_json::from_str::<Value>(&tail.next_line()).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(shown, seqs);
    assert!(server.terminate().success());
}

/// [`hundred_records`] with `"event"` renamed on line `line` (from 1).
async fn damaged_at(line: usize) -> TestLog {
    let log = hundred_records().await;
    let mut lines = read_lines(&day_file(&log));
    let damaged = lines[line - 1].replacen("\"event\"", "\"evXnt\"", 1);
    assert_ne!(damaged, lines[line - 1]);
    lines[line - 1] = damaged;
    write_lines(&day_file(&log), &lines);
    log
}

/// With line `line` of 100 damaged: the server starts, is healthy, reports
/// the line, records a new delivery under a fresh seq, still knows a retry
/// of an earlier event, and `verify` names the line.
async fn serve_starts_past_a_damaged_line(line: usize) {
    let log = damaged_at(line).await;
    let before: Vec<u64> = read_lines(&day_file(&log))
        .iter()
        .filter_map(|l| rollcall::log::record::scan::leading_seq(l.as_bytes()))
        .collect();

    let server = serve(&log.dir);
    assert_eq!(get(&server, "/healthz").await.0, 200);
    let (_, text) = get(&server, "/metrics").await;
    assert_eq!(metric(&text, "rollcall_damaged_lines"), Some(1.0), "{text}");
    let (status, answer) = deliver(&server, &join(1000)).await;
    assert_eq!((status, &answer["status"]), (200, &"recorded".into()));
    let seq = answer["seq"].as_u64().unwrap();
    assert!(seq > 100 && !before.contains(&seq), "seq {seq}");
    let (status, answer) = deliver(&server, &join(10)).await;
    assert_eq!(
        (status, &answer["status"], &answer["seq"]),
        (200, &"duplicate".into(), &11.into())
    );
    let stderr = server.stderr();
    assert!(server.terminate().success());
    assert!(
        stderr.contains(&format!("{}.jsonl", log.date_name()))
            && stderr.contains(&format!("line {line}"))
            && stderr.contains(&format!("seq {line}")),
        "the start names the damaged line:\n{stderr}"
    );

    let verdict = run(rollcall(&log.dir).arg("verify")).code(1);
    assert!(
        verdict.stdout.contains(&format!(
            "{}.jsonl line {line}, seq {line}",
            log.date_name()
        )),
        "{}",
        verdict.report()
    );
}

#[tokio::test]
async fn serve_starts_past_a_damaged_last_line() {
    serve_starts_past_a_damaged_line(100).await;
}

#[tokio::test]
async fn serve_starts_past_a_damaged_line_in_the_middle() {
    serve_starts_past_a_damaged_line(50).await;
}

#[tokio::test]
async fn a_second_serve_on_the_same_directory_is_refused_and_the_first_goes_on() {
    let log = hundred_records().await;
    let first = serve(&log.dir);
    let second = run(rollcall(&log.dir).env("ROLLCALL_SECRET", SECRET).args([
        "serve",
        "--listen",
        "127.0.0.1:0",
    ]));
    assert!(!second.status.success());
    assert!(
        second
            .stderr
            .contains("another rollcall serve is already using"),
        "{}",
        second.stderr
    );
    let (status, _) = deliver(&first, &join(100)).await;
    assert_eq!(status, 200);
    assert!(first.terminate().success());
}
