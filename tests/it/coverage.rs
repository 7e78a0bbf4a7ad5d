//! The receiver's own records: `serve` writes `receiver_started` when it
//! starts (with the time of the last record before it: the start of a
//! possible gap) and `receiver_stopped` when it stops cleanly, in the same
//! chain, so the log says what it covers.

use serde_json::Value;

use crate::support::app::{assert_chain_whole, live_records};
use crate::support::bin::ServerProcess;

fn receiver_records(dir: &std::path::Path) -> Vec<Value> {
    live_records(dir)
        .into_iter()
        .filter(|r| r["event"].as_str().unwrap().starts_with("receiver_"))
        .collect()
}

#[test]
fn a_clean_stop_and_the_next_start_bound_the_gap_between_them() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("log");
    assert!(ServerProcess::start(&dir, |_| {}).terminate().success());
    let first = receiver_records(&dir);
    assert_eq!(first.len(), 2);
    assert_eq!(first[0]["event"], "receiver_started");
    assert_eq!(first[0]["not_before"], Value::Null, "nothing came before");
    assert_eq!(first[1]["event"], "receiver_stopped");
    for empty in ["room_id", "person_id", "membership_id"] {
        assert_eq!(first[0][empty], "", "{empty}");
    }

    let server = ServerProcess::start(&dir, |_| {});
    let again = receiver_records(&dir);
    assert_eq!(again[2]["event"], "receiver_started");
    assert_eq!(again[2]["not_before"], first[1]["received_at"]);
    assert!(
        !server.stderr().contains("did not record a clean stop"),
        "{}",
        server.stderr()
    );
    assert!(server.terminate().success());
    assert_eq!(assert_chain_whole(&dir), [1, 2, 3, 4]);
}

#[test]
fn a_start_after_a_kill_is_a_start_without_a_stop_and_says_so() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("log");
    let server = ServerProcess::start(&dir, |_| {});
    assert!(!server.kill().success());
    let killed = receiver_records(&dir);
    assert_eq!(killed.len(), 1, "no stop record after a kill");

    let server = ServerProcess::start(&dir, |_| {});
    let records = receiver_records(&dir);
    assert_eq!(
        records
            .iter()
            .map(|r| r["event"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["receiver_started", "receiver_started"]
    );
    // The gap begins at the last record the killed run wrote.
    assert_eq!(records[1]["not_before"], records[0]["received_at"]);
    assert!(
        server.stderr().contains("did not record a clean stop"),
        "{}",
        server.stderr()
    );
    assert!(server.terminate().success());
}
