//! A receiver's name, through the real binary: where `serve` and
//! `subscribe` take it from, where it is kept, the start and stop records
//! that carry it (and every other record's line as it was), and the
//! readers that accept it.

use std::path::Path;

use serde_json::Value;

use crate::support::app::{SECRET, live_lines as lines, live_records, membership};
use crate::support::bin::{ServerProcess, rollcall, run};

/// The start and stop records, and every other line, of `dir`.
fn receiver_records(dir: &Path) -> (Vec<Value>, Vec<Value>) {
    live_records(dir)
        .into_iter()
        .partition(|r| r["event"].as_str().unwrap().starts_with("receiver_"))
}

/// A `serve` on `dir` with the test secret and `args`, given one join,
/// then stopped cleanly; returns what it wrote to stderr.
async fn serve_once(dir: &Path, args: &[&str]) -> String {
    let server = ServerProcess::start(dir, |command| {
        command.env("ROLLCALL_SECRET", SECRET).args(args);
    });
    let body = membership("created", "m-1", "room-1", "2026-11-27T12:00:00.000Z");
    let answer = server.deliver(&reqwest::Client::new(), &body).await;
    assert_eq!(answer.status(), 200);
    let stderr = server.stderr();
    assert!(server.terminate().success());
    stderr
}

#[tokio::test]
async fn serve_names_its_receiver_in_its_start_and_stop_records_and_leaves_every_other_line_as_it_was()
 {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("audit-logs");

    let stderr = serve_once(&dir, &["--receiver", "site-a"]).await;

    let listening = stderr
        .lines()
        .find(|l| l.contains("rollcall is listening"))
        .unwrap();
    assert!(listening.contains("receiver=site-a"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(dir.join(".receiver")).unwrap(),
        "site-a\n"
    );
    let (own, others) = receiver_records(&dir);
    let events: Vec<_> = own.iter().map(|r| r["event"].as_str().unwrap()).collect();
    assert_eq!(events, ["receiver_started", "receiver_stopped"]);
    assert!(own.iter().all(|r| r["receiver"] == "site-a"), "{own:?}");
    assert_eq!(others.len(), 1);
    // The join's line is exactly what its record seals to without a
    // receiver: byte for byte the line of a log from before names.
    let join = lines(&dir)
        .into_iter()
        .find(|l| l.contains("\"event\":\"joined\""))
        .unwrap();
    assert!(!join.contains("receiver"), "{join}");
    let mut record: rollcall::log::record::Record = serde_json::from_str(&join).unwrap();
    let resealed = record.seal();
    assert_eq!(String::from_utf8(resealed).unwrap().trim_end(), join);

    run(rollcall(&dir).arg("verify")).success();
    let exported = run(rollcall(&dir).args(["export", "--format", "jsonl"])).success();
    let named: Vec<Value> = exported
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|r: &Value| r["receiver"] == "site-a")
        .collect();
    assert_eq!(named.len(), 2, "{}", exported.report());
    // The CSV has no column for it: its header is as it was.
    let csv = run(rollcall(&dir).arg("export")).success();
    assert!(!csv.stdout.lines().next().unwrap().contains("receiver"));
}

#[tokio::test]
async fn without_a_name_serve_keeps_the_host_name_and_the_next_start_takes_the_kept_one() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("audit-logs");
    let host = rollcall::receiver::host_name();

    serve_once(&dir, &[]).await;
    assert_eq!(
        std::fs::read_to_string(dir.join(".receiver")).unwrap(),
        format!("{host}\n")
    );
    std::fs::write(dir.join(".receiver"), "renamed-by-hand\n").unwrap();
    let again = serve_once(&dir, &[]).await;

    // Recovery read the named stop record as the clean stop it is.
    assert!(!again.contains("did not record a clean stop"), "{again}");
    let (own, _) = receiver_records(&dir);
    let names: Vec<_> = own
        .iter()
        .map(|r| r["receiver"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            host.as_str(),
            host.as_str(),
            "renamed-by-hand",
            "renamed-by-hand"
        ]
    );
}

#[test]
fn a_name_other_than_the_one_the_directory_keeps_is_refused_by_serve_and_subscribe() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("audit-logs");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(".receiver"), "site-a\n").unwrap();

    let served = run(rollcall(&dir)
        .args(["serve", "--listen", "127.0.0.1:0", "--receiver", "site-b"])
        .env("ROLLCALL_SECRET", SECRET))
    .code(2);
    let subscribed = run(rollcall(&dir)
        .args(["subscribe", "--public-url", "https://audit.example.com"])
        .env("ROLLCALL_RECEIVER", "site-b")
        .env("WEBEX_TOKEN", "unused"))
    .code(2);

    for refused in [&served, &subscribed] {
        assert!(
            refused.stderr.contains("one receiver's") && refused.stderr.contains("site-b"),
            "{}",
            refused.report()
        );
    }
    assert!(lines(&dir).is_empty(), "serve wrote nothing");
    let bad = run(rollcall(&dir).args(["serve", "--receiver", "a/b"])).code(2);
    assert!(
        bad.stderr.contains("not a receiver name"),
        "{}",
        bad.report()
    );
}
