//! The console's search on a generated log: building its in-memory index,
//! catching up when nothing is new, and searches of each kind, beside one
//! parallel scan of the log per search (the way without an index).
//! Measured, not asserted:
//!
//! `cargo bench --bench console` (set `ROLLCALL_BENCH_RECORDS` for another
//! size than 1,000,000).

mod support;

use std::time::{Duration, Instant};

use rollcall::console::index::Index;
use rollcall::console::search::Query;
use rollcall::log::reader::{self, Block, RecordView};
use time::macros::date;

fn main() {
    let records = support::records();
    let temp = tempfile::tempdir().expect("creating a temp dir");
    let dir = temp.path().join("audit-logs");
    support::generate(&dir, records, date!(2026 - 11 - 01));
    println!("| {records} records | time |\n|---|---|");
    let before = rss_mb();
    let mut index = Index::default();
    let took = timed(|| index.catch_up(&dir).expect("reading the log"));
    row("build the index (once, at start)", took);
    println!("| index memory | {} MB |", rss_mb() - before);
    row(
        "catch up, nothing new",
        best(|| index.catch_up(&dir).expect("reading the log")),
    );
    for (name, query) in [
        ("search: newest 50, no filter", Query::default()),
        (
            "search: person, part of a name",
            Query {
                person: "person 7".into(),
                ..Query::default()
            },
        ),
        (
            "search: person, whole email",
            Query {
                person: "person7@example.com".into(),
                ..Query::default()
            },
        ),
        (
            "search: room, part of a title",
            Query {
                room: "project room 42".into(),
                ..Query::default()
            },
        ),
        (
            "search: event and one day",
            Query {
                event: "left".into(),
                from: "2026-11-05".into(),
                to: "2026-11-06".into(),
                ..Query::default()
            },
        ),
        (
            "search: no match",
            Query {
                person: "nobody".into(),
                ..Query::default()
            },
        ),
    ] {
        let search = query.parse().expect("a valid query");
        let mut total = 0;
        let took = best(|| total = search.run(&index, 0).total);
        row(&format!("{name} ({total} rows)"), took);
    }
    let took = best(|| {
        let days = reader::days(&dir).unwrap();
        let mut found = 0u64;
        reader::in_log_order(
            &days,
            || (0u64, String::new()),
            |block: &Block, (n, scratch): &mut (u64, String)| {
                *n = 0;
                let mut lines = 0;
                for (line, _) in block.lines() {
                    lines += 1;
                    if let Ok(r) = RecordView::parse_reusing(line, scratch)
                        && r.person_display_name
                            .as_deref()
                            .is_some_and(|n| n.to_lowercase().contains("person 7"))
                    {
                        *n += 1;
                    }
                }
                lines
            },
            |_, (n, _)| {
                found += *n;
                Ok::<_, reader::ReadError>(())
            },
        )
        .unwrap();
    });
    row("without an index: one parallel scan per search", took);
}

fn timed(run: impl FnOnce()) -> Duration {
    let started = Instant::now();
    run();
    started.elapsed()
}

/// Best of 5.
fn best(mut run: impl FnMut()) -> Duration {
    (0..5).map(|_| timed(&mut run)).min().unwrap()
}

fn row(name: &str, took: Duration) {
    println!("| {name} | {:.1} ms |", took.as_secs_f64() * 1000.0);
}

fn rss_mb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}
