//! `simulate` for two receivers, through the real binary: two servers in
//! process, each with its own directory and secret; every delivery goes
//! to both but for the share dropped on the way to each, and each server
//! holds exactly what simulate says it sent it.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use rollcall::clock::FakeClock;

use crate::support::app::{START, TestApp};
use crate::support::bin::{Run, rollcall, run};

/// A server on `dir`, whose secret is the one `DIR/.secret` holds.
async fn server_with_own_secret(dir: &Path, secret: &str) -> TestApp {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(".secret"), format!("{secret}\n")).unwrap();
    TestApp::spawn_in(dir, Arc::new(FakeClock::new(START)), |settings| {
        settings.secret = None;
    })
    .await
}

/// `rollcall --dir A --dir B simulate --url A --url B ARGS`, off the
/// runtime the servers answer on.
async fn simulate(a: &TestApp, b: &TestApp, args: &[&str]) -> Run {
    let mut command = rollcall(&a.dir);
    command
        .arg("--dir")
        .arg(&b.dir)
        .args(["simulate", "--url", &a.address, "--url", &b.address])
        .args(args);
    tokio::task::spawn_blocking(move || run(&mut command))
        .await
        .unwrap()
}

/// What simulate says about receiver `label` (`a`, `b`) on each delivery
/// line: `Some(seq)` recorded, `None` dropped.
fn answers(out: &str, label: char) -> Vec<Option<u64>> {
    let marker = format!("{label}: ");
    out.lines()
        .filter_map(|line| line.split_once("@example.com> room "))
        .map(|(_, rest)| {
            let (_, all) = rest.split_once(": ").expect("answers after the room");
            let answer = all
                .split("; ")
                .find_map(|part| part.strip_prefix(&marker))
                .unwrap_or_else(|| panic!("no answer of {label} in {rest}"));
            if answer == "dropped" {
                return None;
            }
            let json = &answer[answer.find('{').expect("a JSON answer")..];
            let answer: serde_json::Value = serde_json::from_str(json).unwrap();
            assert_eq!(answer["status"], "recorded", "{rest}");
            Some(answer["seq"].as_u64().unwrap())
        })
        .collect()
}

fn membership_seqs(dir: &Path) -> BTreeSet<u64> {
    crate::support::app::membership_records(dir)
        .iter()
        .map(|r| r["seq"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn simulate_posts_each_delivery_to_both_servers_but_the_share_dropped_for_each() {
    let temp = tempfile::tempdir().unwrap();
    let a = server_with_own_secret(&temp.path().join("a"), "secret-of-a").await;
    let b = server_with_own_secret(&temp.path().join("b"), "secret-of-b").await;
    let args = [
        "--count", "40", "--drop-a", "0.25", "--drop-b", "0.1", "--seed", "2026",
    ];

    let first = simulate(&a, &b, &args).await.success();

    let (to_a, to_b) = (answers(&first.stdout, 'a'), answers(&first.stdout, 'b'));
    assert_eq!(to_a.len(), 40, "{}", first.report());
    assert_eq!(to_a.iter().filter(|s| s.is_none()).count(), 10);
    assert_eq!(to_b.iter().filter(|s| s.is_none()).count(), 4);
    assert!(
        to_a.iter()
            .zip(&to_b)
            .any(|(a, b)| a.is_none() && b.is_some())
            && to_a
                .iter()
                .zip(&to_b)
                .any(|(a, b)| a.is_some() && b.is_none()),
        "some deliveries reach only one side, each side: {}",
        first.report()
    );
    for (server, told) in [(&a, &to_a), (&b, &to_b)] {
        let sent: BTreeSet<u64> = told.iter().flatten().copied().collect();
        assert_eq!(membership_seqs(&server.dir), sent, "{}", first.report());
    }
    assert!(
        first.stdout.contains("receiver a: 30 deliveries posted to")
            && first.stdout.contains("10 dropped: 30 recorded, 0 not"),
        "{}",
        first.report()
    );
    // Both got the same events: the lines of one delivery differ only in
    // seq, hash and receipt time.
    let strip = |record: &serde_json::Value| {
        let mut record = record.clone();
        for volatile in ["seq", "received_at", "prev_hash", "hash"] {
            record.as_object_mut().unwrap().remove(volatile);
        }
        record
    };
    let of_a = crate::support::app::membership_records(&a.dir);
    let of_b = crate::support::app::membership_records(&b.dir);
    let both = to_a
        .iter()
        .zip(&to_b)
        .position(|(x, y)| x.is_some() && y.is_some());
    let (seq_a, seq_b) = both.map(|i| (to_a[i].unwrap(), to_b[i].unwrap())).unwrap();
    let find = |records: &[serde_json::Value], seq: u64| {
        records.iter().find(|r| r["seq"] == seq).cloned().unwrap()
    };
    assert_eq!(strip(&find(&of_a, seq_a)), strip(&find(&of_b, seq_b)));

    // The same seed drops the same deliveries again.
    let again = simulate(&a, &b, &args).await.success();
    let dropped = |told: &[Option<u64>]| told.iter().map(Option::is_none).collect::<Vec<_>>();
    assert_eq!(dropped(&answers(&again.stdout, 'a')), dropped(&to_a));
    assert_eq!(dropped(&answers(&again.stdout, 'b')), dropped(&to_b));
    a.stop().await;
    b.stop().await;
}

#[test]
fn simulate_for_two_without_a_secret_for_each_says_how_to_give_them() {
    let temp = tempfile::tempdir().unwrap();
    let refused = run(rollcall(temp.path()).args([
        "simulate",
        "--url",
        "http://127.0.0.1:9",
        "--url",
        "http://127.0.0.1:10",
    ]))
    .code(2);
    assert!(
        refused.stderr.contains("give --dir once per --url"),
        "{}",
        refused.report()
    );
    let one = run(rollcall(temp.path())
        .args(["simulate", "--url", "http://127.0.0.1:9", "--drop-b", "0.5"])
        .env("ROLLCALL_SECRET", "s"))
    .code(2);
    assert!(one.stderr.contains("--drop-b"), "{}", one.report());
    let rate = run(rollcall(temp.path()).args(["simulate", "--drop-a", "1.5"])).code(2);
    assert!(rate.stderr.contains("from 0 to 1"), "{}", rate.report());
}
