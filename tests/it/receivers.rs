//! Two receivers, one record: two real servers, each with its own
//! directory, name and secret, given the same deliveries (and some only
//! while the other was down), read through the real binary with `--dir`
//! twice: `export` and `tail` give each event once in received order,
//! `verify` checks each chain and then the two against each other.

use std::process::Command;

use serde_json::Value;
use time::Duration;

use crate::index_receivers::gap_warnings;
use crate::read_side::Follower;
use crate::support::app::membership;
use crate::support::bin::{Run, rollcall, run};
use crate::support::receivers::{Pair, To, rechain};

/// `rollcall --dir A --dir B`.
fn both(pair: &Pair) -> Command {
    let [a, b] = pair.dirs();
    let mut command = rollcall(a);
    command.arg("--dir").arg(b);
    command
}

fn joined(id: &str) -> Vec<u8> {
    membership("created", id, "room-1", "2026-11-01T09:00:00.000Z")
}

fn left(id: &str) -> Vec<u8> {
    membership("deleted", id, "room-1", "2026-11-01T09:00:00.000Z")
}

/// The membership events of [`delivered`], in the order they were
/// received, each with the receivers that had it.
const EVENTS: [(&str, &str, &[&str]); 7] = [
    ("joined", "m1", &["a", "b"]),
    ("joined", "m2", &["a", "b"]),
    ("joined", "m3", &["b"]),
    ("left", "m1", &["a", "b"]),
    ("left", "m2", &["a"]),
    ("joined", "m4", &["a", "b"]),
    ("left", "m4", &["a", "b"]),
];

/// Both receivers given the same deliveries, except while one of them
/// was restarting (`a` at 12:02, `b` an hour later), both stopped at the
/// end.
async fn delivered() -> Pair {
    let mut pair = Pair::start().await;
    pair.deliver(To::Both, &joined("m1")).await;
    pair.advance(Duration::minutes(1));
    pair.deliver(To::Both, &joined("m2")).await;
    pair.advance(Duration::minutes(1));
    pair.stop(To::A).await;
    pair.advance(Duration::minutes(10));
    pair.deliver(To::B, &joined("m3")).await;
    pair.advance(Duration::minutes(10));
    pair.start_again(To::A).await;
    pair.advance(Duration::minutes(10));
    pair.deliver(To::Both, &left("m1")).await;
    pair.advance(Duration::hours(1));
    pair.stop(To::B).await;
    pair.advance(Duration::minutes(10));
    pair.deliver(To::A, &left("m2")).await;
    pair.advance(Duration::minutes(10));
    pair.start_again(To::B).await;
    pair.advance(Duration::minutes(10));
    pair.deliver(To::Both, &joined("m4")).await;
    pair.advance(Duration::minutes(10));
    pair.deliver(To::Both, &left("m4")).await;
    pair.advance(Duration::minutes(10));
    pair.stop(To::Both).await;
    pair
}

/// The data rows of a CSV export as maps of column to cell.
fn csv_rows(csv: &str) -> Vec<std::collections::HashMap<String, String>> {
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let headers = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|row| {
            let row = row.expect("the export is valid CSV");
            headers
                .iter()
                .zip(row.iter())
                .map(|(h, c)| (h.to_string(), c.to_string()))
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn a_merged_csv_export_has_each_event_once_in_received_order() {
    let pair = delivered().await;

    let out = run(both(&pair).arg("export")).success();

    let rows = csv_rows(&out.stdout);
    let events: Vec<(&str, &str)> = rows
        .iter()
        .filter(|r| !r["event"].starts_with("receiver_"))
        .map(|r| (r["event"].as_str(), r["membership_id"].as_str()))
        .collect();
    let expected: Vec<(&str, &str)> = EVENTS.iter().map(|(e, m, _)| (*e, *m)).collect();
    assert_eq!(events, expected, "{}", out.report());
    let times: Vec<&str> = rows.iter().map(|r| r["received_at"].as_str()).collect();
    assert!(times.is_sorted(), "in received order: {times:?}");
    // Each receiver's own starts and stops: two runs each.
    let own = rows.iter().filter(|r| r["event"].starts_with("receiver_"));
    assert_eq!(own.count(), 8, "{}", out.report());
    // The header is the single log's: no column was added.
    assert!(out.stdout.starts_with("seq,received_at,event,room_id,"));
}

#[tokio::test]
async fn a_merged_jsonl_export_names_the_receivers_of_each_event_after_the_stored_line() {
    let pair = delivered().await;

    let out = run(both(&pair).args(["export", "--format", "jsonl"])).success();

    let mut events = Vec::new();
    for line in out.stdout.lines() {
        let value: Value = serde_json::from_str(line).expect("a JSON line");
        let receivers: Vec<&str> = value["receivers"]
            .as_array()
            .unwrap_or_else(|| panic!("no receivers: {line}"))
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        // Without the member, the line as the first receiver stored it.
        let (stored, tail) = line.rsplit_once(",\"receivers\":").unwrap();
        assert!(tail.ends_with("]}"), "receivers is the last member: {line}");
        let stored = format!("{stored}}}");
        let dir = if receivers[0] == "a" {
            &pair.a.dir
        } else {
            &pair.b.dir
        };
        let day = std::fs::read_to_string(dir.join("2026-11-27.jsonl")).unwrap();
        assert!(day.lines().any(|l| l == stored), "{stored}");
        let event = value["event"].as_str().unwrap().to_string();
        if !event.starts_with("receiver_") {
            let id = value["membership_id"].as_str().unwrap().to_string();
            events.push((event, id, receivers.join(",")));
        }
    }
    let expected: Vec<(String, String, String)> = EVENTS
        .iter()
        .map(|(e, m, r)| (e.to_string(), m.to_string(), r.join(",")))
        .collect();
    assert_eq!(events, expected, "{}", out.report());
}

#[tokio::test]
async fn seq_ranges_over_several_receivers_are_refused_and_one_dir_reads_as_before() {
    let pair = delivered().await;

    let refused = run(both(&pair).args(["export", "--from-seq", "2"])).code(2);
    assert!(
        refused.stderr.contains("one receiver's log"),
        "{}",
        refused.report()
    );
    let one = run(rollcall(&pair.a.dir).args(["export", "--format", "jsonl"])).success();
    let stored = std::fs::read_to_string(pair.a.dir.join("2026-11-27.jsonl")).unwrap();
    assert_eq!(
        one.stdout, stored,
        "a single --dir exports the lines as stored"
    );
}

fn export(pair: &Pair, args: &[&str]) -> Run {
    run(both(pair).arg("export").args(args)).success()
}

#[tokio::test]
async fn filters_apply_to_the_merged_record() {
    let pair = delivered().await;

    let out = export(&pair, &["--event", "left", "--format", "jsonl"]);
    let ids: Vec<String> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["membership_id"].to_string())
        .collect();
    assert_eq!(ids, ["\"m1\"", "\"m2\"", "\"m4\""], "{}", out.report());

    // From a time between the copies of one delivery: its first copy is
    // before it, so the event is not in the range.
    let rows = csv_rows(&export(&pair, &[]).stdout);
    let m4 = rows
        .iter()
        .find(|r| r["membership_id"] == "m4")
        .expect("m4 exported");
    let after_first = m4["received_at"].replace(".000Z", ".500Z");
    let out = export(&pair, &["--from", &after_first]);
    let m4: Vec<String> = csv_rows(&out.stdout)
        .into_iter()
        .filter(|r| r["membership_id"] == "m4")
        .map(|r| r["event"].clone())
        .collect();
    assert_eq!(m4, ["left"], "{}", out.report());
}

#[tokio::test]
async fn a_damaged_line_in_one_receiver_stops_a_merged_export_after_what_came_before_it() {
    let pair = delivered().await;
    let (_, line) = place_of(&pair.b.dir, "left", "m1");
    let path = pair.b.dir.join("2026-11-27.jsonl");
    let day = std::fs::read_to_string(&path).unwrap();
    let damaged: Vec<&str> = day
        .lines()
        .enumerate()
        .map(|(n, l)| if n + 1 == line { "not a record" } else { l })
        .collect();
    std::fs::write(&path, damaged.join("\n") + "\n").unwrap();

    let out = run(both(&pair).arg("export")).code(2);

    let where_ = format!("{} line {line}", path.display());
    assert!(out.stderr.contains(&where_), "{}", out.report());
    // Every event received before the damaged line is written, as an
    // export of b alone writes its records before it.
    let events: Vec<(String, String)> = csv_rows(&out.stdout)
        .into_iter()
        .filter(|r| !r["event"].starts_with("receiver_"))
        .map(|r| (r["event"].clone(), r["membership_id"].clone()))
        .collect();
    let before: Vec<(String, String)> = EVENTS[..3]
        .iter()
        .map(|(e, m, _)| (e.to_string(), m.to_string()))
        .collect();
    assert_eq!(events, before, "{}", out.report());
}

#[tokio::test]
async fn an_event_whose_first_copy_is_before_the_range_is_not_exported_from_its_later_copy() {
    let mut pair = Pair::start().await;
    // `a` has it at 23:59:59 on the 27th, `b` (1.5 s ahead) on the 28th.
    pair.advance(Duration::hours(12) - Duration::seconds(1));
    pair.deliver(To::Both, &joined("late-night")).await;
    pair.advance(Duration::minutes(1));
    pair.deliver(To::Both, &joined("next-day")).await;
    pair.stop(To::Both).await;

    let ids = |args: &[&str]| -> Vec<(String, String)> {
        let out = export(
            &pair,
            &[&["--format", "jsonl", "--event", "joined"], args].concat(),
        );
        out.stdout
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                (
                    v["membership_id"].as_str().unwrap().to_string(),
                    v["receivers"].to_string(),
                )
            })
            .collect()
    };
    assert_eq!(
        ids(&["--from", "2026-11-28"]),
        [("next-day".to_string(), r#"["a","b"]"#.to_string())]
    );
    assert_eq!(
        ids(&["--to", "2026-11-28"]),
        [("late-night".to_string(), r#"["a","b"]"#.to_string())],
        "the copy on the next day is read to list its receivers"
    );
}

#[tokio::test]
async fn roster_over_two_served_receivers_warns_only_where_both_were_down() {
    let mut pair = Pair::start().await;
    pair.deliver(To::Both, &joined("m1")).await;
    // a stops at 12:01 and b at 12:21; a starts again at 12:31, b at 12:41.
    pair.advance(Duration::minutes(1));
    pair.stop(To::A).await;
    pair.advance(Duration::minutes(10));
    pair.deliver(To::B, &joined("m2")).await;
    pair.advance(Duration::minutes(10));
    pair.stop(To::B).await;
    pair.advance(Duration::minutes(10));
    pair.start_again(To::A).await;
    pair.advance(Duration::minutes(10));
    pair.start_again(To::B).await;
    pair.deliver(To::Both, &left("m1")).await;
    pair.stop(To::Both).await;
    let roster_at =
        |at: &str| run(both(&pair).args(["roster", "--room", "room-1", "--at", at])).success();

    let a_down = roster_at("2026-11-27T12:11:30Z");
    let both_down = roster_at("2026-11-27T12:25:00Z");

    assert!(gap_warnings(&a_down).is_empty(), "{}", a_down.report());
    // m2, delivered to b alone while a was down, is a member all the same.
    assert!(
        a_down.stdout.contains("2 members") && a_down.stdout.contains(" b:3 "),
        "{}",
        a_down.report()
    );
    let warned = gap_warnings(&both_down);
    assert_eq!(warned.len(), 1, "{}", both_down.report());
    assert!(
        warned[0]
            .contains("coverage gap from 2026-11-27T12:21:01.500Z to 2026-11-27T12:31:00.000Z"),
        "b stopped last, a started first: {}",
        both_down.report()
    );
}

// ---------------------------------------------------------------- tail

#[tokio::test]
async fn tail_over_two_receivers_shows_the_last_events_of_the_merged_record() {
    let pair = delivered().await;

    let out =
        run(both(&pair).args(["tail", "-n", "3", "--event", "joined,left", "--json"])).success();

    let shown: Vec<(String, String, String)> = out
        .stdout
        .lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line).expect("a JSON line");
            let receivers: Vec<&str> = value["receivers"]
                .as_array()
                .unwrap_or_else(|| panic!("no receivers: {line}"))
                .iter()
                .map(|r| r.as_str().unwrap())
                .collect();
            (
                value["event"].as_str().unwrap().to_string(),
                value["membership_id"].as_str().unwrap().to_string(),
                receivers.join(","),
            )
        })
        .collect();
    let expected: Vec<(String, String, String)> = EVENTS[4..]
        .iter()
        .map(|(e, m, r)| (e.to_string(), m.to_string(), r.join(",")))
        .collect();
    assert_eq!(shown, expected, "{}", out.report());

    let text = run(both(&pair).args(["tail", "-n", "2"])).success();
    let lines: Vec<&str> = text.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", text.report());
    assert!(
        lines.iter().all(|l| l.contains("receiver stopped")),
        "{}",
        text.report()
    );
}

#[tokio::test]
async fn tail_follow_over_two_receivers_prints_an_event_delivered_to_both_once() {
    let mut pair = Pair::start().await;
    let tail = Follower::spawn(both(&pair).args(["tail", "-f", "-n", "2", "--json"]));
    for _ in 0..2 {
        let line = tail.next_line();
        assert!(line.contains("\"receiver_started\""), "{line}");
    }

    pair.deliver(To::Both, &joined("m1")).await;
    pair.advance(Duration::seconds(5));
    pair.deliver(To::Both, &joined("m2")).await;
    pair.advance(Duration::seconds(5));
    // `b`'s cursor reads its log in order: once this is printed, its copies
    // of the two above have been read too.
    pair.deliver(To::B, &joined("last")).await;

    let mut printed = Vec::new();
    loop {
        let line: Value = serde_json::from_str(&tail.next_line()).expect("a JSON line");
        let id = line["membership_id"].as_str().unwrap().to_string();
        let receivers = line["receivers"].as_array().expect("receivers").len();
        assert_eq!(
            receivers, 1,
            "only the first copy is known when it is printed: {line}"
        );
        printed.push(id.clone());
        if id == "last" {
            break;
        }
    }
    assert_eq!(printed, ["m1", "m2", "last"]);
    pair.stop(To::Both).await;
}

#[tokio::test]
async fn a_merged_export_titles_a_room_from_either_receiver_and_writes_a_file_as_stdout() {
    use crate::support::logs::{TestLog, record};
    use rollcall::log::record::Event;
    let (a, b) = (TestLog::new(), TestLog::new());
    rollcall::receiver::remember(&a.dir, &"a".parse().unwrap()).unwrap();
    rollcall::receiver::remember(&b.dir, &"b".parse().unwrap()).unwrap();
    let mut titled = record(Event::Joined, "ana@example.com", "Ana", "room-1");
    titled.room_title = Some("Team room".into());
    a.append(titled).await;
    b.clock.advance(Duration::seconds(1));
    b.append(record(Event::Joined, "bo@example.com", "Bo", "room-1"))
        .await;
    let mut command = rollcall(&a.dir);
    command.arg("--dir").arg(&b.dir).arg("export");

    let out = run(&mut command).success();

    let titles: Vec<String> = csv_rows(&out.stdout)
        .into_iter()
        .map(|r| format!("{} {}", r["person_email"], r["room_title"]))
        .collect();
    assert_eq!(
        titles,
        ["ana@example.com Team room", "bo@example.com Team room"],
        "{}",
        out.report()
    );
    let file = a.dir.with_file_name("merged.csv");
    run(command.arg("-o").arg(&file)).success();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), out.stdout);
}

// ---------------------------------------------------------------- verify

fn verify(pair: &Pair, args: &[&str]) -> Run {
    run(both(pair).arg("verify").args(args))
}

/// Where the record of `event` of membership `id` is in `dir`'s log: its
/// seq, and its line in the day file.
fn place_of(dir: &std::path::Path, event: &str, id: &str) -> (u64, usize) {
    let day = std::fs::read_to_string(dir.join("2026-11-27.jsonl")).unwrap();
    day.lines()
        .enumerate()
        .find_map(|(n, line)| {
            let record: Value = serde_json::from_str(line).unwrap();
            (record["event"] == event && record["membership_id"] == id)
                .then(|| (record["seq"].as_u64().unwrap(), n + 1))
        })
        .unwrap_or_else(|| panic!("no {event} of {id} in {}", dir.display()))
}

#[tokio::test]
async fn verify_over_two_receivers_checks_each_chain_then_finds_nothing_missing() {
    let pair = delivered().await;

    let out = verify(&pair, &[]).success();

    let a = format!("receiver a ({}):", pair.a.dir.display());
    let b = format!("receiver b ({}):", pair.b.dir.display());
    let (at_a, at_b) = (out.stdout.find(&a), out.stdout.find(&b));
    assert!(at_a.is_some() && at_b > at_a, "{}", out.report());
    assert_eq!(
        out.stdout
            .matches("records in 1 days, chain intact")
            .count(),
        2,
        "{}",
        out.report()
    );
    // What one received while the other was restarting is no finding:
    // only the deliveries made while both were up are compared.
    assert!(
        out.stdout.contains(
            "cross-check: 3 deliveries compared between receivers that were up, 3 on every one of them; missing: a 0, b 0"
        ),
        "{}",
        out.report()
    );
}

#[tokio::test]
async fn verify_over_two_receivers_names_a_delivery_cut_from_one_chain_sealed_again() {
    let pair = delivered().await;
    let (cut, _) = place_of(&pair.b.dir, "left", "m1");
    rechain(&pair.b.dir, cut);
    run(rollcall(&pair.b.dir).arg("verify")).success();

    let out = verify(&pair, &[]).code(1);

    let (seq, line) = place_of(&pair.a.dir, "left", "m1");
    let fault = format!(
        "FAULT: receiver a, {} line {line}, seq {seq}: the left of membership m1 received at 2026-11-27T12:32:00.000Z has no copy at receiver b",
        pair.a.dir.join("2026-11-27.jsonl").display()
    );
    assert!(out.stdout.contains(&fault), "{}", out.report());
    assert_eq!(out.stdout.matches("FAULT").count(), 1, "{}", out.report());
    assert!(out.stdout.contains("missing: a 0, b 1"), "{}", out.report());

    let json = verify(&pair, &["--json"]).code(1);
    let lines: Vec<Value> = json
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let summaries: Vec<&Value> = lines.iter().filter(|l| l["kind"] == "summary").collect();
    assert_eq!(summaries.len(), 2, "{}", json.report());
    assert_eq!(
        (
            summaries[0]["receiver"].as_str(),
            summaries[1]["receiver"].as_str()
        ),
        (Some("a"), Some("b"))
    );
    assert!(summaries.iter().all(|s| s["verdict"] == "intact"));
    let missing: Vec<&Value> = lines.iter().filter(|l| l["kind"] == "missing").collect();
    assert_eq!(missing.len(), 1, "{}", json.report());
    assert_eq!(
        (
            missing[0]["receiver"].as_str(),
            missing[0]["lacking"].as_str(),
            missing[0]["seq"].as_u64(),
            missing[0]["line"].as_u64(),
            missing[0]["membership_id"].as_str(),
            missing[0]["event"].as_str(),
        ),
        (
            Some("a"),
            Some("b"),
            Some(seq),
            Some(line as u64),
            Some("m1"),
            Some("left")
        )
    );
    let last = lines.last().unwrap();
    assert_eq!(last["kind"], "cross_check");
    assert_eq!(last["verdict"], "faulty");
    assert_eq!(last["missing"], serde_json::json!({"a": 0, "b": 1}));
}

#[tokio::test]
async fn verify_over_two_receivers_takes_a_named_head_for_each_and_refuses_what_it_cannot_do() {
    let pair = delivered().await;
    let head: Value =
        serde_json::from_str(&std::fs::read_to_string(pair.b.dir.join(".head")).unwrap()).unwrap();
    let kept = format!("b={}:{}", head["seq"], head["hash"].as_str().unwrap());
    verify(&pair, &["--expect-head", &kept]).success();
    let other = format!("b={}:{}", head["seq"], "0".repeat(64));
    let out = verify(&pair, &["--expect-head", &other]).code(1);
    assert!(out.stdout.contains("--expect-head"), "{}", out.report());

    let unnamed = format!("{}:{}", head["seq"], head["hash"].as_str().unwrap());
    let refused = verify(&pair, &["--expect-head", &unnamed]).code(2);
    assert!(
        refused.stderr.contains("NAME=SEQ:HASH"),
        "{}",
        refused.report()
    );
    let refused = verify(&pair, &["--remote"]).code(2);
    assert!(
        refused.stderr.contains("one receiver's log"),
        "{}",
        refused.report()
    );
}
