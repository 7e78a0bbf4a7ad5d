//! `serve` keeps `DIR/index.sqlite` up to the durable head on a thread of
//! its own: built from an existing log at start, caught up with what is
//! delivered, shown in `/metrics`, never in the way of a delivery (a
//! failing index is retried while deliveries are acked), and a kill in the
//! middle of it leaves every answer right.

use std::path::Path;

use rollcall::log::head::Head;
use rollcall::log::record::Event;

use crate::integrity_serve::metric;
use crate::roster::{json, member, ok};
use crate::support::app::SECRET;
use crate::support::bin::ServerProcess;
use crate::support::logs::TestLog;
use crate::support::{eventually, fixture, metrics};

fn serve(dir: &Path) -> ServerProcess {
    ServerProcess::start(dir, |command| {
        command.env("ROLLCALL_SECRET", SECRET);
    })
}

async fn deliver(server: &ServerProcess, body: &[u8]) -> u16 {
    server
        .deliver(&reqwest::Client::new(), body)
        .await
        .status()
        .as_u16()
}

fn head_seq(dir: &Path) -> u64 {
    Head::read(dir).unwrap().map_or(0, |head| head.seq)
}

/// Waits until serve's indexer reports holding every durable record.
async fn indexed_to_the_head(server: &ServerProcess, dir: &Path) {
    eventually("the indexer to reach the durable head", || async {
        let text = metrics(&server.address).await;
        metric(&text, "rollcall_index_seq") == Some(head_seq(dir) as f64)
            && metric(&text, "rollcall_index_lag_records") == Some(0.0)
    })
    .await;
}

/// The newest record and the record count the index file holds, read
/// with a plain SQLite client.
fn index_holds(dir: &Path) -> (u64, u64) {
    let conn = rusqlite::Connection::open_with_flags(
        dir.join("index.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    conn.query_row(
        "SELECT (SELECT seq FROM index_state), (SELECT count(*) FROM records)",
        [],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )
    .unwrap()
}

/// A log of `records` records: 40 people in 7 rooms, joining and leaving.
/// Appended a thousand at a time, as concurrent deliveries would be.
async fn log_of(records: usize) -> TestLog {
    let mut log = TestLog::new();
    for chunk in (0..records).collect::<Vec<_>>().chunks(1000) {
        futures_util::future::join_all(chunk.iter().map(|&n| {
            let mut record = member(
                if n % 4 == 3 {
                    Event::Left
                } else {
                    Event::Joined
                },
                &format!("p{}", n % 40),
                &format!("room-{}", n % 7),
            );
            record.membership_created = Some(format!("created-{n}"));
            log.append(record)
        }))
        .await;
    }
    log.close();
    log
}

/// What the read commands answer, to compare with a fresh index's.
fn answers(dir: &Path) -> Vec<serde_json::Value> {
    [
        vec!["roster", "--at", "2026-11-27T15:00:00Z", "--format", "json"],
        vec!["roster", "--at", "2026-11-28T00:00:00Z", "--format", "json"],
        vec!["rooms", "--format", "json"],
        vec!["history", "--person", "p1@example.com", "--format", "json"],
    ]
    .iter()
    .map(|args| json(&ok(dir, args)))
    .collect()
}

#[tokio::test]
async fn serve_indexes_an_existing_log_and_each_delivery_on_its_own_thread() {
    let log = log_of(30).await;
    assert!(!log.dir.join("index.sqlite").exists());

    let server = serve(&log.dir);
    indexed_to_the_head(&server, &log.dir).await;
    let at_start = index_holds(&log.dir);
    assert_eq!(
        deliver(&server, &fixture("memberships-created.json")).await,
        200
    );
    indexed_to_the_head(&server, &log.dir).await;
    let after = index_holds(&log.dir);
    let said = server.stderr();
    assert!(server.terminate().success());

    // 30 records and serve's receiver_started, then the delivery.
    assert_eq!(at_start, (31, 31));
    assert_eq!(after, (32, 32));
    assert!(said.contains("building the index from the log"), "{said}");
}

#[tokio::test]
async fn a_failing_index_never_holds_up_a_delivery_and_is_retried_until_it_works() {
    let log = log_of(5).await;
    // A directory where the index file should be: no SQLite can open it.
    std::fs::create_dir(log.dir.join("index.sqlite")).unwrap();

    let server = serve(&log.dir);
    assert_eq!(
        deliver(&server, &fixture("memberships-created.json")).await,
        200
    );
    eventually("a counted index failure", || async {
        metric(
            &metrics(&server.address).await,
            "rollcall_index_failures_total",
        )
        .is_some_and(|failures| failures >= 1.0)
    })
    .await;
    let health = reqwest::get(format!("{}/healthz", server.address))
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    assert_eq!(
        deliver(&server, &fixture("memberships-deleted.json")).await,
        200
    );

    std::fs::remove_dir(log.dir.join("index.sqlite")).unwrap();
    indexed_to_the_head(&server, &log.dir).await;
    let held = index_holds(&log.dir);
    assert!(server.terminate().success());
    // 5 records, receiver_started and the two deliveries.
    assert_eq!(held, (8, 8));
}

#[tokio::test]
async fn a_kill_of_serve_in_the_middle_of_indexing_leaves_every_answer_right() {
    let log = log_of(30_000).await;

    let server = serve(&log.dir);
    // Killed as soon as the indexer has committed something, while it
    // most likely has more to do.
    eventually("the indexer's first step", || async {
        metric(&metrics(&server.address).await, "rollcall_index_seq").is_some_and(|seq| seq > 0.0)
    })
    .await;
    assert!(!server.kill().success());

    ok(&log.dir, &["index", "--check"]);
    let answered = answers(&log.dir);
    std::fs::remove_file(log.dir.join("index.sqlite")).unwrap();
    let fresh = answers(&log.dir);
    for (question, (answered, fresh)) in answered.iter().zip(&fresh).enumerate() {
        assert!(
            answered == fresh,
            "answer {question} after the kill differs from a fresh index's:\n{answered:#}\n--- fresh\n{fresh:#}"
        );
    }
    assert_eq!(answered[2].as_array().unwrap().len(), 7, "{}", answered[2]);
}

#[tokio::test]
async fn index_rebuild_while_serve_runs_is_refilled_by_serve_in_the_same_file() {
    let log = log_of(20).await;
    let server = serve(&log.dir);
    indexed_to_the_head(&server, &log.dir).await;

    ok(&log.dir, &["index", "--rebuild"]);
    assert_eq!(
        deliver(&server, &fixture("memberships-created.json")).await,
        200
    );
    indexed_to_the_head(&server, &log.dir).await;

    // Read as a plain client would, without a command catching it up.
    assert_eq!(index_holds(&log.dir), (22, 22));
    assert!(server.terminate().success());
    ok(&log.dir, &["index", "--check"]);
}

#[tokio::test]
async fn serve_without_the_index_writes_none_and_the_read_commands_build_it() {
    let log = log_of(5).await;
    let server = ServerProcess::start(&log.dir, |command| {
        command
            .env("ROLLCALL_SECRET", SECRET)
            .env("ROLLCALL_NO_INDEX", "true");
    });
    assert_eq!(
        deliver(&server, &fixture("memberships-created.json")).await,
        200
    );
    assert!(server.terminate().success());
    assert!(!log.dir.join("index.sqlite").exists());

    ok(&log.dir, &["roster", "--format", "json"]);
    // 5 records, serve's start and stop, and the delivery.
    assert_eq!(index_holds(&log.dir), (8, 8));
    assert_eq!(head_seq(&log.dir), 8);
}

#[test]
fn serve_without_the_index_refuses_a_console_which_needs_it() {
    let log = TestLog::new();
    let refused = crate::support::bin::run(crate::support::bin::rollcall(&log.dir).args([
        "serve",
        "--no-index",
        "--console",
        "127.0.0.1:0",
    ]));
    assert!(!refused.status.success());
    assert!(refused.stderr.contains("--no-index"), "{}", refused.stderr);
}
