//! Reconciliation against the fake Webex API: the baseline, what an outage
//! hid (found by roster diff, or exactly from `/events` with a compliance
//! token), one record per event whichever way it arrived, 429s and a
//! failing room, and `rollcall reconcile` beside a running `serve`.

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rollcall::clock::FakeClock;
use rollcall::reconcile::{self, EventsApi};
use rollcall::secret::Secret;
use rollcall::startup::{Application, Settings};
use serde_json::{Value, json};
use time::macros::datetime;
use tokio::sync::{oneshot, watch};

use crate::support::app::{self, SECRET, START, json_of, live_records, membership_records};
use crate::support::bin::{Run, ServerProcess, rollcall, run};
use crate::support::fake_webex::{FakeWebex, TOKEN, membership_id};

/// How long a reconcile run may take before the test fails instead of
/// hanging; never a measure of speed.
const HANG_GUARD: Duration = Duration::from_secs(30);

/// `serve`, in process, reconciling against `fake`, with the hook to wait
/// for its runs.
struct Server {
    address: String,
    runs: watch::Receiver<u64>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Server {
    async fn start(
        dir: &Path,
        clock: &Arc<FakeClock>,
        fake: &FakeWebex,
        every: Option<Duration>,
    ) -> Self {
        Self::start_with(dir, clock, fake, every, |_| {}).await
    }

    /// [`Server::start`], with `configure` changing the settings.
    async fn start_with(
        dir: &Path,
        clock: &Arc<FakeClock>,
        fake: &FakeWebex,
        every: Option<Duration>,
        configure: impl FnOnce(&mut Settings),
    ) -> Self {
        let mut settings = Settings {
            secret: Some(Secret::new(SECRET.into())),
            reconcile: Some(reconcile::Settings {
                every,
                // The pace itself is the client's own tests' business.
                api_rate: NonZeroU32::new(10_000).unwrap(),
                events_api: EventsApi::Detect,
            }),
            ..Settings::new(dir.to_path_buf(), "127.0.0.1:0".parse().unwrap())
        };
        settings.webex.token = Some(Secret::new(TOKEN.into()));
        settings.webex.api_url = fake.url.clone();
        configure(&mut settings);
        let app = Application::build(settings, clock.clone()).await.unwrap();
        let address = format!("http://{}", app.local_addr());
        let runs = app
            .reconcile_runs()
            .expect("a token turns reconciliation on");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until_stopped(async {
            let _ = stopped.await;
        }));
        Self {
            address,
            runs,
            stop,
            task,
        }
    }

    /// Waits until `n` reconcile runs have finished.
    async fn ran(&mut self, n: u64) {
        tokio::time::timeout(HANG_GUARD, self.runs.wait_for(|done| *done >= n))
            .await
            .unwrap_or_else(|_| panic!("reconcile run {n} never finished"))
            .unwrap();
    }

    fn runs_so_far(&self) -> u64 {
        *self.runs.borrow()
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}

/// `serve` on a fresh directory (kept while the `TempDir` lives) with a
/// fake clock at [`START`], its first run (the baseline) done.
async fn serving(
    fake: &FakeWebex,
    every: Option<Duration>,
) -> (tempfile::TempDir, PathBuf, Arc<FakeClock>, Server) {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("audit-logs");
    let clock = Arc::new(FakeClock::new(START));
    let mut server = Server::start(&dir, &clock, fake, every).await;
    server.ran(1).await;
    (temp, dir, clock, server)
}

/// `rollcall reconcile` in `dir` against `fake`, with `args`.
fn reconcile_cli(dir: &Path, fake: &FakeWebex, args: &[&str]) -> Run {
    run(rollcall(dir)
        .arg("reconcile")
        .args(args)
        .env("WEBEX_TOKEN", TOKEN)
        .env("WEBEX_API_URL", &fake.url))
}

/// The membership records after the first `skip`, as (event, person,
/// source).
fn changes(dir: &Path, skip: usize) -> Vec<(String, String, String)> {
    membership_records(dir)
        .iter()
        .skip(skip)
        .map(|r| {
            (
                r["event"].as_str().unwrap().to_string(),
                r["person_id"].as_str().unwrap().to_string(),
                r["source"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn triple(event: &str, person: &str, source: &str) -> (String, String, String) {
    (event.into(), person.into(), source.into())
}

/// The one membership record of `person` with `event`.
fn record_of(dir: &Path, event: &str, person: &str) -> Value {
    let mut found: Vec<Value> = membership_records(dir)
        .into_iter()
        .filter(|r| r["event"] == event && r["person_id"] == person)
        .collect();
    assert_eq!(found.len(), 1, "{event} {person}: {found:#?}");
    found.remove(0)
}

/// The `received_at` of the last record whose event is `event`.
fn last_time_of(dir: &Path, event: &str) -> String {
    live_records(dir)
        .iter()
        .rev()
        .find(|r| r["event"] == event)
        .unwrap_or_else(|| panic!("no {event} record"))["received_at"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Room R1 ("Board") with stays, leaves, promoted; room R2 ("Audit") with
/// other.
fn two_rooms() -> FakeWebex {
    let fake = FakeWebex::start();
    fake.add_room("R1", "Board");
    fake.add_room("R2", "Audit");
    for person in ["stays", "leaves", "promoted"] {
        fake.add_member("R1", person, "2026-11-01T09:00:00.000Z");
    }
    fake.add_member("R2", "other", "2026-11-02T09:00:00.000Z");
    fake
}

/// The outage: one join, one leave, one promotion, and a join and leave
/// both inside it.
fn outage(fake: &FakeWebex) {
    fake.add_member("R1", "joiner", "2026-11-27T12:30:00.000Z");
    fake.remove_member("R1", "leaves");
    fake.set_moderator("R1", "promoted", true);
    fake.add_member("R1", "ghost", "2026-11-27T12:20:00.000Z");
    fake.remove_member("R1", "ghost");
}

#[test]
fn the_first_reconcile_records_every_member_as_the_baseline_and_a_second_finds_nothing() {
    let fake = two_rooms();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("audit-logs");

    let first = reconcile_cli(&dir, &fake, &[]).success();

    let mut people: Vec<(String, String, String)> = changes(&dir, 0);
    people.sort();
    assert_eq!(
        people,
        [
            triple("joined", "leaves", "reconciled"),
            triple("joined", "other", "reconciled"),
            triple("joined", "promoted", "reconciled"),
            triple("joined", "stays", "reconciled"),
        ]
    );
    let other = record_of(&dir, "joined", "other");
    assert_eq!(other["membership_created"], "2026-11-02T09:00:00.000Z");
    assert_eq!(other["membership_id"], membership_id("R2", "other"));
    assert_eq!(other["room_title"], "Audit");
    assert_eq!(other["person_email"], "other@example.com");
    assert!(other["actor_id"].is_null() && other["not_before"].is_null());
    assert_eq!(other["target"], "", "the CLI does not know the target");
    assert!(
        first.stdout.contains("reconciled 2 of 2 rooms")
            && first.stdout.contains("4 records written (joined 4;"),
        "{}",
        first.report()
    );
    assert!(first.stdout.contains("API calls"), "{}", first.report());

    let second = reconcile_cli(&dir, &fake, &[]).success();

    assert_eq!(membership_records(&dir).len(), 4);
    assert!(
        second.stdout.contains("0 records written"),
        "{}",
        second.report()
    );
    run(rollcall(&dir).arg("verify")).success();
}

#[test]
fn reconcile_by_hand_records_what_changed_since_the_last_record_and_not_what_it_cannot_see() {
    let fake = two_rooms();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("audit-logs");
    reconcile_cli(&dir, &fake, &[]).success();
    let baseline_end = last_time_of(&dir, "joined");
    outage(&fake);

    reconcile_cli(&dir, &fake, &["--room", "R1"]).success();

    assert_eq!(
        changes(&dir, 4),
        [
            triple("moderator_granted", "promoted", "reconciled"),
            triple("joined", "joiner", "reconciled"),
            triple("left", "leaves", "reconciled"),
        ],
        "the join and leave inside the gap stay invisible"
    );
    let left = record_of(&dir, "left", "leaves");
    assert_eq!(left["not_before"], baseline_end.as_str());
    assert_eq!(left["membership_id"], membership_id("R1", "leaves"));
    assert_eq!(left["room_title"], "Board");
    let joined = record_of(&dir, "joined", "joiner");
    assert_eq!(joined["membership_created"], "2026-11-27T12:30:00.000Z");
    let promoted = record_of(&dir, "moderator_granted", "promoted");
    assert_eq!(promoted["is_moderator"], true);
    assert_eq!(promoted["not_before"], baseline_end.as_str());
    assert_eq!(
        fake.count("GET", "/memberships"),
        3,
        "--room R1 lists R1 only the second time"
    );
}

#[tokio::test]
async fn serve_records_a_baseline_at_start_and_after_an_outage_exactly_what_the_rosters_show() {
    let fake = two_rooms();
    let (_temp, dir, clock, server) = serving(&fake, None).await;
    assert_eq!(membership_records(&dir).len(), 4, "the baseline");
    clock.set(datetime!(2026-11-27 12:10 UTC));
    server.stop().await;
    let stopped_at = last_time_of(&dir, "receiver_stopped");
    outage(&fake);
    clock.set(datetime!(2026-11-27 13:00 UTC));

    let mut server = Server::start(&dir, &clock, &fake, None).await;
    server.ran(1).await;

    assert_eq!(
        changes(&dir, 4),
        [
            triple("moderator_granted", "promoted", "reconciled"),
            triple("joined", "joiner", "reconciled"),
            triple("left", "leaves", "reconciled"),
        ]
    );
    for (event, person) in [("left", "leaves"), ("moderator_granted", "promoted")] {
        let record = record_of(&dir, event, person);
        assert_eq!(
            record["not_before"],
            stopped_at.as_str(),
            "{event}: last known at the start of the gap"
        );
        assert_eq!(record["received_at"], "2026-11-27T13:00:00.000Z");
        assert!(record["actor_id"].is_null());
    }
    assert_eq!(
        record_of(&dir, "joined", "joiner")["membership_created"],
        "2026-11-27T12:30:00.000Z"
    );
    assert_eq!(
        fake.count("GET", "/events"),
        1,
        "tried once for the gap; a bot token gets 403 and the roster diff runs"
    );
    let (_, metrics) = get(&server.address, "/metrics").await;
    assert!(
        metrics.contains("rollcall_reconcile_runs_total 1")
            && metrics.contains("rollcall_reconcile_records_total{source=\"reconciled\"} 3"),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test]
async fn serve_reconciles_only_the_rooms_its_webhooks_filter_and_names_their_target() {
    let fake = two_rooms();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("audit-logs");
    let clock = Arc::new(FakeClock::new(START));

    let mut server = Server::start_with(&dir, &clock, &fake, None, |settings| {
        settings.webex.public_url = Some("https://audit.example.com".into());
        settings.webex.target = "board".parse().unwrap();
        settings.webex.rooms = vec!["R1".into()];
    })
    .await;
    server.ran(1).await;

    let records = membership_records(&dir);
    assert_eq!(records.len(), 3, "R1's members only: {records:#?}");
    assert!(
        records
            .iter()
            .all(|r| r["room_id"] == "R1" && r["target"] == "board" && r["room_title"] == "Board"),
        "{records:#?}"
    );
    assert_eq!(fake.count("GET", "/memberships"), 1);
    server.stop().await;
}

#[tokio::test]
async fn with_a_compliance_token_the_gap_is_backfilled_exactly_from_events_and_nothing_twice() {
    let fake = two_rooms();
    let (_temp, dir, clock, server) = serving(&fake, None).await;
    server.stop().await;
    fake.set_compliance(true);
    let event_of = |kind: &str, membership: Value, at: &str| {
        fake.add_event(kind, &membership, at);
    };
    let ghost = fake.add_member("R1", "ghost", "2026-11-27T12:20:00.000Z");
    event_of("created", ghost.clone(), "2026-11-27T12:20:00.000Z");
    fake.remove_member("R1", "ghost");
    event_of("deleted", ghost, "2026-11-27T12:25:00.000Z");
    let joiner = fake.add_member("R1", "joiner", "2026-11-27T12:30:00.000Z");
    event_of("created", joiner, "2026-11-27T12:30:00.000Z");
    let leaver = fake.remove_member("R1", "leaves").unwrap();
    event_of("deleted", leaver, "2026-11-27T12:40:00.000Z");
    let promoted = fake.set_moderator("R1", "promoted", true);
    event_of("updated", promoted, "2026-11-27T12:50:00.000Z");
    let elsewhere = json!({"id": "m-x", "roomId": "R-unwatched", "personId": "x"});
    event_of("created", elsewhere, "2026-11-27T12:55:00.000Z");
    clock.set(datetime!(2026-11-27 13:00 UTC));

    let mut server = Server::start(&dir, &clock, &fake, None).await;
    server.ran(1).await;

    assert_eq!(
        changes(&dir, 4),
        [
            triple("joined", "ghost", "events_api"),
            triple("left", "ghost", "events_api"),
            triple("joined", "joiner", "events_api"),
            triple("left", "leaves", "events_api"),
            triple("moderator_granted", "promoted", "events_api"),
        ],
        "exact events in time order; the roster diff then finds nothing"
    );
    let left = record_of(&dir, "left", "leaves");
    assert_eq!(left["not_before"], "2026-11-27T12:40:00.000Z");
    assert_eq!(left["actor_id"], "person-admin");
    assert_eq!(left["room_title"], "Board");
    let asked = fake
        .requests()
        .into_iter()
        .find(|r| r.is("GET", "/events"))
        .unwrap();
    assert!(
        asked.query.contains("resource=memberships"),
        "{}",
        asked.query
    );
    assert_eq!(
        fake.count("GET", "/events"),
        1,
        "only the gap that ended at this start (the first start had none)"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_join_delivered_by_webhook_and_found_by_reconcile_is_recorded_once() {
    let fake = FakeWebex::start();
    let member = fake.add_member("R1", "ana", "2026-11-27T11:00:00.000Z");
    let (_temp, dir, clock, server) = serving(&fake, None).await;
    let mut body: Value = serde_json::from_slice(&app::membership(
        "created",
        "x",
        "R1",
        "2026-11-27T11:00:00.000Z",
    ))
    .unwrap();
    body["data"] = member;
    let body = serde_json::to_vec(&body).unwrap();

    let (status, answer) = json_of(deliver(&server.address, &body).await).await;

    assert_eq!(status, 200);
    assert_eq!(answer["status"], "duplicate", "{answer}");
    assert_eq!(changes(&dir, 0), [triple("joined", "ana", "reconciled")]);
    server.stop().await;

    // The other way round: the delivery first, then a reconcile by hand.
    let other = tempfile::tempdir().unwrap();
    let dir = other.path().join("audit-logs");
    let empty = FakeWebex::start();
    let server = Server::start(&dir, &clock, &empty, None).await;
    let (_, answer) = json_of(deliver(&server.address, &body).await).await;
    assert_eq!(answer["status"], "recorded", "{answer}");
    server.stop().await;

    let by_hand = reconcile_cli(&dir, &fake, &[]).success();

    assert_eq!(changes(&dir, 0), [triple("joined", "ana", "webhook")]);
    assert!(
        by_hand.stdout.contains("0 records written"),
        "{}",
        by_hand.report()
    );
}

#[tokio::test]
async fn a_periodic_run_dates_a_leave_from_the_previous_check_of_the_room() {
    let fake = two_rooms();
    let (_temp, dir, clock, mut server) = serving(&fake, Some(Duration::from_millis(1))).await;
    clock.set(datetime!(2026-11-27 13:00 UTC));
    // A run that began after the clock moved has finished: R1 was checked at 13:00.
    let n = server.runs_so_far();
    server.ran(n + 2).await;
    fake.remove_member("R1", "leaves");
    clock.set(datetime!(2026-11-27 14:00 UTC));

    let n = server.runs_so_far();
    server.ran(n + 2).await;

    let left = record_of(&dir, "left", "leaves");
    assert_eq!(left["source"], "reconciled");
    assert_eq!(left["not_before"], "2026-11-27T13:00:00.000Z");
    assert_eq!(membership_records(&dir).len(), 5);
    server.stop().await;
}

#[test]
fn rate_limits_are_waited_out_and_a_failing_room_is_named_and_checked_next_run() {
    let fake = two_rooms();
    fake.add_room("R3", "Legal");
    fake.add_member("R3", "counsel", "2026-11-03T09:00:00.000Z");
    fake.set_room_failing("R2", true);
    fake.rate_limit(2, 0);
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("audit-logs");

    let first = reconcile_cli(&dir, &fake, &[]).code(1);

    assert!(
        first.stderr.contains("room R2 could not be checked"),
        "{}",
        first.report()
    );
    assert!(
        first.stdout.contains("reconciled 2 of 3 rooms") && first.stdout.contains("failed"),
        "{}",
        first.report()
    );
    let mut people: Vec<String> = changes(&dir, 0).into_iter().map(|c| c.1).collect();
    people.sort();
    assert_eq!(people, ["counsel", "leaves", "promoted", "stays"]);
    assert_eq!(fake.count("GET", "/rooms"), 3, "two 429s, then the list");
    assert!(
        first
            .stdout
            .contains(&format!(", {} API calls", fake.requests().len())),
        "429s count as calls: {}",
        first.report()
    );

    fake.set_room_failing("R2", false);
    reconcile_cli(&dir, &fake, &[]).success();

    assert_eq!(changes(&dir, 4), [triple("joined", "other", "reconciled")]);
}

#[test]
fn reconcile_by_hand_is_refused_while_serve_runs_on_the_directory() {
    let fake = two_rooms();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("audit-logs");
    let server = ServerProcess::start(&dir, |c| {
        c.env("ROLLCALL_SECRET", SECRET);
    });

    let refused = reconcile_cli(&dir, &fake, &[]).code(2);

    assert!(
        refused.stderr.contains("serve reconciles by itself"),
        "{}",
        refused.report()
    );
    assert!(fake.requests().is_empty(), "{:#?}", fake.requests());
    assert!(server.terminate().success());
    assert!(membership_records(&dir).is_empty());
}

async fn deliver(address: &str, body: &[u8]) -> reqwest::Response {
    let signature = rollcall::webhook::signature::sign(&Secret::new(SECRET.into()), body);
    reqwest::Client::new()
        .post(format!("{address}/hooks/default"))
        .header("x-spark-signature", signature)
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
}

async fn get(address: &str, path: &str) -> (u16, String) {
    let answer = reqwest::get(format!("{address}{path}")).await.unwrap();
    (answer.status().as_u16(), answer.text().await.unwrap())
}

#[test]
fn serve_refuses_an_interval_it_cannot_read_and_says_what_it_takes() {
    let temp = tempfile::tempdir().unwrap();

    let refused = run(rollcall(temp.path()).args(["serve", "--reconcile-every", "1d"])).code(2);

    assert!(
        refused.stderr.contains("give e.g. 90s, 30m or 1h"),
        "{}",
        refused.report()
    );
}

/// Delivers a signed `memberships/{event}` for `membership` (as the fake
/// lists it) to `server`; returns the answer's `status`.
async fn deliver_change(server: &Server, event: &str, membership: &Value) -> String {
    let mut body: Value = serde_json::from_slice(&app::membership(
        event,
        "x",
        "R1",
        "2026-11-27T11:00:00.000Z",
    ))
    .unwrap();
    body["data"] = membership.clone();
    let body = serde_json::to_vec(&body).unwrap();
    let (status, answer) = json_of(deliver(&server.address, &body).await).await;
    assert_eq!(status, 200, "{answer}");
    answer["status"].as_str().unwrap().to_string()
}

/// The person ids `roster --room R1` shows now, sorted.
fn roster_now(dir: &Path) -> Vec<String> {
    let shown = run(rollcall(dir).args(["roster", "--room", "R1", "--format", "json"])).success();
    let roster: Value = serde_json::from_str(&shown.stdout).unwrap();
    let mut people: Vec<String> = roster["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["person_id"].as_str().unwrap().to_string())
        .collect();
    people.sort();
    people
}

/// `rooms`' member count of R1.
fn members_now(dir: &Path) -> u64 {
    let listed = run(rollcall(dir).args(["rooms", "--format", "json"])).success();
    let rooms: Value = serde_json::from_str(&listed.stdout).unwrap();
    rooms
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["room_id"] == "R1")
        .unwrap()["members_now"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn a_join_delivered_while_a_room_is_being_listed_is_not_contradicted_by_that_listing() {
    let fake = FakeWebex::start();
    fake.set_page_size(1);
    fake.add_member("R1", "a", "2026-11-01T09:00:00.000Z");
    fake.add_member("R1", "b", "2026-11-01T09:00:00.000Z");
    let mut page_two = fake.hold("/memberships", "cursor=1");
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("audit-logs");
    let clock = Arc::new(FakeClock::new(START));
    let mut server = Server::start(&dir, &clock, &fake, None).await;
    page_two.arrived().await;
    let q = crate::support::fake_webex::member("R1", "q", "2026-11-27T11:30:00.000Z");

    assert_eq!(deliver_change(&server, "created", &q).await, "recorded");
    // Webex answers the held page with a 429 first, as it did in the report.
    fake.rate_limit(1, 0);
    page_two.release();
    server.ran(1).await;
    server.stop().await;

    let mut seen = changes(&dir, 0);
    seen.sort();
    assert_eq!(
        seen,
        [
            triple("joined", "a", "reconciled"),
            triple("joined", "b", "reconciled"),
            triple("joined", "q", "webhook"),
        ],
        "the listing began before q joined: it cannot say q left"
    );
    // The next run sees q listed, and the log already agrees.
    fake.add_membership(q);
    reconcile_cli(&dir, &fake, &[]).success();
    assert_eq!(changes(&dir, 3), []);
    assert_eq!(roster_now(&dir), ["a", "b", "q"]);
    assert_eq!(members_now(&dir), 3);
}

#[tokio::test]
async fn a_leave_delivered_while_a_room_is_being_listed_is_not_undone_by_that_listing() {
    let fake = FakeWebex::start();
    fake.set_page_size(1);
    let q = fake.add_member("R1", "q", "2026-11-01T09:00:00.000Z");
    fake.add_member("R1", "b", "2026-11-01T09:00:00.000Z");
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("audit-logs");
    reconcile_cli(&dir, &fake, &[]).success();
    let mut page_two = fake.hold("/memberships", "cursor=1");
    let clock = Arc::new(FakeClock::new(START));
    let mut server = Server::start(&dir, &clock, &fake, None).await;
    page_two.arrived().await;

    // Page one listed q already; q leaves before page two is answered.
    assert_eq!(deliver_change(&server, "deleted", &q).await, "recorded");
    page_two.release();
    server.ran(1).await;
    server.stop().await;
    fake.remove_member("R1", "q");

    assert_eq!(
        changes(&dir, 2),
        [triple("left", "q", "webhook")],
        "the listing that still named q began before q left"
    );
    reconcile_cli(&dir, &fake, &[]).success();
    assert_eq!(changes(&dir, 2), [triple("left", "q", "webhook")]);
    assert_eq!(roster_now(&dir), ["b"]);
    assert_eq!(members_now(&dir), 1);
}

#[tokio::test]
async fn a_member_webex_lists_again_after_a_recorded_leave_is_recorded_as_rejoined_and_shown() {
    let fake = FakeWebex::start();
    fake.add_member("R1", "b", "2026-11-01T09:00:00.000Z");
    let (_temp, dir, clock, server) = serving(&fake, None).await;
    let q = crate::support::fake_webex::member("R1", "q", "2026-11-27T11:30:00.000Z");
    assert_eq!(deliver_change(&server, "created", &q).await, "recorded");
    clock.set(datetime!(2026-11-27 12:30 UTC));
    assert_eq!(deliver_change(&server, "deleted", &q).await, "recorded");
    server.stop().await;
    // Webex lists the same membership again: the leave was not the end.
    fake.add_membership(q);

    reconcile_cli(&dir, &fake, &[]).success();

    assert_eq!(
        changes(&dir, 1),
        [
            triple("joined", "q", "webhook"),
            triple("left", "q", "webhook"),
            triple("joined", "q", "reconciled"),
        ],
        "the correction is not a retry of the first join"
    );
    assert_eq!(roster_now(&dir), ["b", "q"], "the log's order decides");
    assert_eq!(members_now(&dir), 2);
    let after_leave = run(rollcall(&dir).args([
        "roster",
        "--room",
        "R1",
        "--at",
        "2026-11-27T12:45:00.000Z",
        "--format",
        "json",
    ]))
    .success();
    assert!(
        after_leave.stdout.contains("\"q\""),
        "the rejoin is not sorted before the leave: {}",
        after_leave.report()
    );
}

#[test]
fn a_listed_membership_without_its_person_or_room_id_does_not_make_a_present_member_leave() {
    let fake = two_rooms();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("audit-logs");
    reconcile_cli(&dir, &fake, &[]).success();
    let roster = fake.roster("R1");
    for (person, field) in [("stays", "personId"), ("leaves", "roomId")] {
        let mut entry = roster
            .iter()
            .find(|m| m["personId"] == person)
            .unwrap()
            .clone();
        entry.as_object_mut().unwrap().remove(field);
        fake.add_membership_to("R1", entry);
    }

    let second = reconcile_cli(&dir, &fake, &[]).success();

    assert_eq!(changes(&dir, 4), [], "{}", second.report());
    assert!(
        second.stderr.contains("without data.personId")
            && second.stderr.contains("without data.roomId"),
        "{}",
        second.report()
    );
}

#[test]
fn a_next_page_link_that_repeats_ends_the_run_with_an_error_naming_it_instead_of_looping() {
    let fake = FakeWebex::start();
    fake.add_member("R1", "a", "2026-11-01T09:00:00.000Z");
    fake.add_member("R1", "b", "2026-11-01T09:00:00.000Z");
    fake.set_page_size(1);
    fake.set_looping_next(true);
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("audit-logs");

    let looped = reconcile_cli(&dir, &fake, &[]).code(1);

    assert!(
        looped.stderr.contains("room R1 could not be checked")
            && looped.stderr.contains("already followed")
            && looped
                .stderr
                .contains("/memberships?max=1&roomId=R1&cursor=0"),
        "{}",
        looped.report()
    );
    assert!(membership_records(&dir).is_empty());
}

/// What `verify` and `rooms` say of the gap from `from` to `to`: whether
/// each names it as unfilled.
fn gap_named(dir: &Path, from: &str, to: &str) -> (bool, bool) {
    let named = |text: &str| text.contains(&format!("unfilled gap from {from} to {to}"));
    let verified = run(rollcall(dir).arg("verify")).success();
    let rooms = run(rollcall(dir).arg("rooms")).success();
    (named(&verified.stdout), named(&rooms.stdout))
}

/// `serve` stopped after its baseline at [`START`], then a ghost joined and
/// left R1 while it was down; compliance on, `/events` failing.
async fn down_while_a_ghost_came_and_went(
    fake: &FakeWebex,
) -> (tempfile::TempDir, PathBuf, Arc<FakeClock>) {
    let (temp, dir, clock, server) = serving(fake, None).await;
    server.stop().await;
    fake.set_compliance(true);
    fake.set_events_failing(true);
    let ghost = fake.add_member("R1", "ghost", "2026-11-27T12:20:00.000Z");
    fake.add_event("created", &ghost, "2026-11-27T12:20:00.000Z");
    fake.remove_member("R1", "ghost");
    fake.add_event("deleted", &ghost, "2026-11-27T12:25:00.000Z");
    clock.set(datetime!(2026-11-27 13:00 UTC));
    (temp, dir, clock)
}

/// `server` stopped and started again at 14:00 with `/events` answering,
/// its first run done.
async fn restarted_with_events_answering(
    server: Server,
    dir: &Path,
    clock: &Arc<FakeClock>,
    fake: &FakeWebex,
) -> Server {
    server.stop().await;
    fake.set_events_failing(false);
    clock.set(datetime!(2026-11-27 14:00 UTC));
    let mut server = Server::start(dir, clock, fake, None).await;
    server.ran(1).await;
    server
}

#[tokio::test]
async fn a_backfill_that_failed_is_retried_after_a_restart_and_fills_the_gap_exactly_then() {
    let fake = two_rooms();
    let (_temp, dir, clock) = down_while_a_ghost_came_and_went(&fake).await;
    let (from, to) = ("2026-11-27T12:00:00.000Z", "2026-11-27T13:00:00.000Z");

    let mut server = Server::start(&dir, &clock, &fake, None).await;
    server.ran(1).await;
    assert_eq!(changes(&dir, 4), [], "the failed backfill wrote nothing");
    assert_eq!(gap_named(&dir, from, to), (true, true));
    let (_, metrics) = get(&server.address, "/metrics").await;
    assert!(
        metrics.contains("rollcall_reconcile_unfilled_gaps 1"),
        "{metrics}"
    );
    let server = restarted_with_events_answering(server, &dir, &clock, &fake).await;

    assert_eq!(
        changes(&dir, 4),
        [
            triple("joined", "ghost", "events_api"),
            triple("left", "ghost", "events_api"),
        ]
    );
    assert_eq!(
        record_of(&dir, "left", "ghost")["not_before"],
        "2026-11-27T12:25:00.000Z"
    );
    assert_eq!(gap_named(&dir, from, to), (false, false));
    server.stop().await;
}

#[tokio::test]
async fn a_backfill_retried_by_a_later_run_does_not_override_a_newer_webhook_record() {
    let fake = two_rooms();
    let (_temp, dir, clock) = down_while_a_ghost_came_and_went(&fake).await;
    let granted = fake.set_moderator("R1", "promoted", true);
    fake.add_event("updated", &granted, "2026-11-27T12:50:00.000Z");
    let mut server = Server::start(&dir, &clock, &fake, None).await;
    server.ran(1).await;
    assert_eq!(
        changes(&dir, 4),
        [triple("moderator_granted", "promoted", "reconciled")]
    );
    let (_, metrics) = get(&server.address, "/metrics").await;
    assert!(
        metrics.contains("rollcall_reconcile_records_without_backfill_total 1"),
        "the grant was reconciled while the gap was unfilled: {metrics}"
    );
    clock.set(datetime!(2026-11-27 13:10 UTC));
    let revoked = fake.set_moderator("R1", "promoted", false);
    assert_eq!(
        deliver_change(&server, "updated", &revoked).await,
        "recorded"
    );
    let server = restarted_with_events_answering(server, &dir, &clock, &fake).await;

    assert_eq!(
        changes(&dir, 4),
        [
            triple("moderator_granted", "promoted", "reconciled"),
            triple("moderator_revoked", "promoted", "webhook"),
            triple("joined", "ghost", "events_api"),
            triple("left", "ghost", "events_api"),
        ],
        "the gap was filled, but its old grant does not undo the newer revoke"
    );
    server.stop().await;
}

/// Serve's reconcile after `leaves` left R1 while it was down, with its
/// index on or off: the `left` record it wrote, and the join before it.
async fn leave_found_after_an_outage(index: bool) -> (Value, Value) {
    let fake = two_rooms();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("audit-logs");
    let clock = Arc::new(FakeClock::new(START));
    let mut server = Server::start_with(&dir, &clock, &fake, None, |s| s.index = index).await;
    server.ran(1).await;
    clock.set(datetime!(2026-11-27 12:10 UTC));
    server.stop().await;
    fake.remove_member("R1", "leaves");
    clock.set(datetime!(2026-11-27 13:00 UTC));

    let mut server = Server::start_with(&dir, &clock, &fake, None, |s| s.index = index).await;
    server.ran(1).await;
    server.stop().await;

    assert_eq!(changes(&dir, 4), [triple("left", "leaves", "reconciled")]);
    run(rollcall(&dir).arg("verify")).success();
    (
        record_of(&dir, "left", "leaves"),
        record_of(&dir, "joined", "leaves"),
    )
}

#[tokio::test]
async fn a_leave_found_by_reconcile_names_the_person_as_the_log_has_them_with_the_index_or_without()
{
    for index in [true, false] {
        let (left, joined) = leave_found_after_an_outage(index).await;
        for field in [
            "membership_id",
            "room_id",
            "person_id",
            "person_email",
            "person_display_name",
            "membership_created",
        ] {
            assert!(
                !joined[field].is_null(),
                "index {index}: the join's {field}"
            );
            assert_eq!(left[field], joined[field], "index {index}: {field}");
        }
        assert_eq!(left["room_title"], "Board", "index {index}");
    }
}
