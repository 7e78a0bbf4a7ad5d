//! Talking to Webex, against the fake API: `subscribe`, `webhooks`, the
//! server's own registration upkeep, and room titles.

use std::time::Duration;

use futures_util::future::join_all;
use rollcall::secret::Secret;
use rollcall::startup::Settings;
use rollcall::webhook::signature;
use serde_json::{Value, json};

use crate::support::app::{self, SECRET, TestApp, json_of};
use crate::support::bin::{Run, ServerProcess, rollcall, run};
use crate::support::fake_webex::{FakeWebex, TOKEN};

const PUBLIC_URL: &str = "https://audit.example.com";

/// A real-shaped membership delivery for `room`, from a webhook with
/// `filter` (`None`: a webhook that covers every room).
fn membership(id: &str, room: &str, filter: Option<&str>) -> Vec<u8> {
    let body = app::membership("created", id, room, "2026-11-27T12:00:00.000Z");
    let mut body: Value = serde_json::from_slice(&body).unwrap();
    match filter {
        Some(filter) => body["filter"] = json!(filter),
        None => {
            body.as_object_mut().unwrap().remove("filter");
        }
    }
    serde_json::to_vec(&body).unwrap()
}

/// A fake API that knows rooms R1 ("Board") and R2 ("Audit committee").
fn fake_with_rooms() -> FakeWebex {
    let fake = FakeWebex::start();
    fake.add_room("R1", "Board");
    fake.add_room("R2", "Audit committee");
    fake
}

fn untitled(record: &Value) -> bool {
    record.get("room_title").is_none_or(Value::is_null)
}

/// Settings that point the server at `fake` with its token.
fn with_webex(fake: &FakeWebex) -> impl FnOnce(&mut Settings) + use<> {
    let url = fake.url.clone();
    move |settings: &mut Settings| {
        settings.webex.token = Some(Secret::new(TOKEN.into()));
        settings.webex.api_url = url;
    }
}

fn membership_webhook(target_url: &str, event: &str, filter: Option<&str>) -> Value {
    let mut webhook = json!({
        "targetUrl": target_url,
        "resource": "memberships",
        "event": event,
        "secret": SECRET,
    });
    if let Some(filter) = filter {
        webhook["filter"] = json!(filter);
    }
    webhook
}

fn subscribe(dir: &std::path::Path, fake: &FakeWebex, args: &[&str]) -> Run {
    run(rollcall(dir)
        .args(["subscribe", "--public-url", PUBLIC_URL])
        .args(args)
        .env("WEBEX_TOKEN", TOKEN)
        .env("WEBEX_API_URL", &fake.url))
}

/// `rollcall webhooks ARGS` against `fake`, in a fresh directory.
fn webhooks(fake: &FakeWebex, args: &[&str]) -> Run {
    let temp = tempfile::tempdir().unwrap();
    run(rollcall(temp.path())
        .arg("webhooks")
        .args(args)
        .env("WEBEX_TOKEN", TOKEN)
        .env("WEBEX_API_URL", &fake.url))
}

/// `subscribe --target team` where target `team` has active `deleted` and
/// `updated` webhooks and a disabled `created` one (with id `id`, else one the fake
/// picks). Returns the fake, the disabled webhook's id and the run.
fn subscribe_with_one_disabled_webhook(id: Option<&str>) -> (FakeWebex, String, Run) {
    let fake = FakeWebex::start();
    let temp = tempfile::tempdir().unwrap();
    let url = format!("{PUBLIC_URL}/hooks/team");
    let mut disabled = membership_webhook(&url, "created", None);
    disabled["status"] = json!("inactive");
    if let Some(id) = id {
        disabled["id"] = json!(id);
    }
    let disabled = fake.add_webhook(disabled);
    fake.add_webhook(membership_webhook(&url, "deleted", None));
    fake.add_webhook(membership_webhook(&url, "updated", None));

    let subscribed = run(rollcall(temp.path())
        .args(["subscribe", "--public-url", PUBLIC_URL, "--target", "team"])
        .env("ROLLCALL_SECRET", SECRET)
        .env("WEBEX_TOKEN", TOKEN)
        .env("WEBEX_API_URL", &fake.url))
    .success();
    (fake, disabled, subscribed)
}

#[test]
fn subscribe_creates_three_webhooks_per_room_and_changes_nothing_the_second_time() {
    let fake = FakeWebex::start();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("audit-logs");

    let first = subscribe(&dir, &fake, &["--room", "R1", "--room", "R2"]).success();
    assert!(
        first.stdout.contains("6 created, 0 kept"),
        "{}",
        first.report()
    );
    let secret = std::fs::read_to_string(dir.join(".secret")).unwrap();
    let webhooks = fake.webhooks();
    assert_eq!(webhooks.len(), 6);
    for room in ["R1", "R2"] {
        let mut events: Vec<&str> = webhooks
            .iter()
            .filter(|w| w["filter"] == format!("roomId={room}"))
            .map(|w| w["event"].as_str().unwrap())
            .collect();
        events.sort_unstable();
        assert_eq!(
            events,
            ["created", "deleted", "updated"],
            "webhooks for {room}"
        );
    }
    for webhook in &webhooks {
        assert_eq!(webhook["targetUrl"], format!("{PUBLIC_URL}/hooks/default"));
        assert_eq!(webhook["resource"], "memberships");
        assert_eq!(webhook["secret"], secret.trim());
    }

    let before = fake.requests().len();
    let second = subscribe(&dir, &fake, &["--room", "R1", "--room", "R2"]).success();
    assert!(
        second.stdout.contains("0 created, 6 kept, 0 re-activated"),
        "{}",
        second.report()
    );
    assert_eq!(fake.webhooks(), webhooks);
    let changes: Vec<_> = fake.requests()[before..]
        .iter()
        .filter(|r| r.method != "GET")
        .cloned()
        .collect();
    assert!(changes.is_empty(), "the second run changed {changes:#?}");
}

#[test]
fn subscribe_reactivates_an_inactive_webhook_instead_of_adding_another() {
    let (fake, disabled, subscribed) = subscribe_with_one_disabled_webhook(None);

    assert!(
        subscribed
            .stdout
            .contains("0 created, 0 kept, 1 re-activated, 0 secret updated, 2 adopted"),
        "{}",
        subscribed.report()
    );
    let webhooks = fake.webhooks();
    assert_eq!(webhooks.len(), 3);
    assert!(webhooks.iter().all(|w| w["status"] == "active"));
    assert_eq!(fake.count("PUT", &format!("/webhooks/{disabled}")), 1);
    assert_eq!(fake.count("POST", "/webhooks"), 0);
}

#[test]
fn webhooks_lists_all_three_pages_and_marks_those_of_this_server() {
    let fake = FakeWebex::start();
    fake.set_page_size(2);
    for (i, url) in [
        "https://audit.example.com/hooks/team",
        "https://audit.example.com/hooks/team",
        "https://elsewhere.example.net/bot",
        "https://audit.example.com/hooks/sales",
        "https://elsewhere.example.net/bot",
    ]
    .iter()
    .enumerate()
    {
        fake.add_webhook(json!({
            "name": format!("hook number {i}"),
            "targetUrl": url,
            "resource": "memberships",
            "event": "created",
        }));
    }

    let listed = webhooks(&fake, &["--public-url", PUBLIC_URL]).success();

    assert_eq!(fake.count("GET", "/webhooks"), 3);
    for i in 0..5 {
        assert!(
            listed.stdout.contains(&format!("hook number {i}")),
            "{}",
            listed.report()
        );
    }
    let ours: Vec<&str> = listed
        .stdout
        .lines()
        .filter(|l| l.starts_with('*'))
        .collect();
    assert_eq!(ours.len(), 3, "{}", listed.report());
    assert!(ours.iter().all(|l| l.contains("audit.example.com")));
    assert!(
        listed
            .stdout
            .contains("5 webhooks, 3 pointing at this server")
    );
}

#[test]
fn a_next_page_link_to_another_origin_is_refused_and_never_sent_the_token() {
    let fake = FakeWebex::start();
    let foreign = FakeWebex::start();
    fake.set_page_size(1);
    fake.set_next_base(&foreign.url);
    for event in ["created", "deleted"] {
        fake.add_webhook(membership_webhook(
            "https://elsewhere.example.net/bot",
            event,
            None,
        ));
    }

    let failed = webhooks(&fake, &[]).code(2);

    let foreign_origin = foreign.url.trim_end_matches("/v1");
    assert!(
        failed.stderr.contains(foreign_origin),
        "{}",
        failed.report()
    );
    assert!(foreign.requests().is_empty(), "{:#?}", foreign.requests());
    assert!(!failed.stderr.contains(TOKEN) && !failed.stdout.contains(TOKEN));
}

#[test]
fn paging_goes_on_when_a_cursor_holds_a_comma() {
    let fake = FakeWebex::start();
    fake.set_page_size(2);
    fake.set_comma_cursors(true);
    for i in 0..5 {
        fake.add_webhook(json!({
            "name": format!("hook number {i}"),
            "targetUrl": "https://elsewhere.example.net/bot",
            "resource": "memberships",
            "event": "created",
        }));
    }

    let listed = webhooks(&fake, &[]).success();

    assert!(listed.stdout.contains("5 webhooks"), "{}", listed.report());
    assert_eq!(fake.count("GET", "/webhooks"), 3);
}

#[test]
fn subscribe_reactivates_a_webhook_whose_id_needs_encoding_through_that_id() {
    let (fake, _, subscribed) = subscribe_with_one_disabled_webhook(Some("wh/1 ?#x"));

    assert!(
        subscribed.stdout.contains("1 re-activated"),
        "{}",
        subscribed.report()
    );
    assert!(fake.webhooks().iter().all(|w| w["status"] == "active"));
    assert_eq!(fake.count("PUT", "/webhooks/wh%2F1%20%3F%23x"), 1);
}

#[test]
fn a_rate_limit_that_does_not_end_fails_clearly_without_showing_the_token() {
    let fake = FakeWebex::start();
    fake.rate_limit(1000, 0);

    let failed = webhooks(&fake, &[]).code(2);

    assert!(
        failed.stderr.contains("rate limiting"),
        "{}",
        failed.report()
    );
    assert_eq!(fake.count("GET", "/webhooks"), 4, "bounded retries");
    assert!(!failed.stderr.contains(TOKEN) && !failed.stdout.contains(TOKEN));
}

#[tokio::test]
async fn a_target_serving_one_room_records_without_asking_webex_about_the_room() {
    let fake = fake_with_rooms();
    fake.add_webhook(membership_webhook(
        &format!("{PUBLIC_URL}/hooks/board"),
        "created",
        Some("roomId=R1"),
    ));
    let app = TestApp::spawn_with(with_webex(&fake)).await;

    for id in ["m1", "m2"] {
        let (status, _) = json_of(
            app.deliver("board", &membership(id, "R1", Some("roomId=R1")))
                .await,
        )
        .await;
        assert_eq!(status, 200);
    }

    let records = app.records();
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(untitled));
    let requests = fake.requests();
    assert!(
        requests.iter().all(|r| r.is("GET", "/webhooks")),
        "only the start-up webhook listing is allowed: {requests:#?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_target_that_the_webhook_list_shows_shared_by_two_rooms_records_room_titles() {
    let fake = fake_with_rooms();
    for room in ["R1", "R2"] {
        fake.add_webhook(membership_webhook(
            &format!("{PUBLIC_URL}/hooks/committees"),
            "created",
            Some(&format!("roomId={room}")),
        ));
    }
    let app = TestApp::spawn_with(with_webex(&fake)).await;

    app.deliver("committees", &membership("m1", "R1", Some("roomId=R1")))
        .await;
    app.deliver("committees", &membership("m2", "R1", Some("roomId=R1")))
        .await;

    let records = app.records();
    assert_eq!(records[0]["room_title"], "Board");
    assert_eq!(records[1]["room_title"], "Board");
    assert_eq!(
        fake.count("GET", "/rooms/"),
        1,
        "the second title came from the cache"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_target_learns_from_its_deliveries_that_it_serves_several_rooms() {
    let fake = fake_with_rooms();
    let app = TestApp::spawn_with(with_webex(&fake)).await;

    app.deliver("mixed", &membership("m1", "R1", Some("roomId=R1")))
        .await;
    app.deliver("mixed", &membership("m2", "R2", Some("roomId=R2")))
        .await;
    app.deliver("firehose", &membership("m3", "R1", None)).await;

    let titles: Vec<Value> = app
        .records()
        .iter()
        .map(|r| r["room_title"].clone())
        .collect();
    assert_eq!(
        titles,
        [Value::Null, json!("Audit committee"), json!("Board")]
    );
    app.stop().await;
}

#[tokio::test]
async fn a_room_id_with_a_slash_question_mark_hash_and_space_is_looked_up_as_one_path_segment() {
    let fake = FakeWebex::start();
    let room = "Y2lz/b?c#d e";
    fake.add_room(room, "Odd ids");
    let app = TestApp::spawn_with(with_webex(&fake)).await;

    let (status, _) = json_of(app.deliver("all", &membership("m1", room, None)).await).await;

    assert_eq!(status, 200);
    assert_eq!(app.records()[0]["room_title"], "Odd ids");
    assert_eq!(fake.count("GET", "/rooms/Y2lz%2Fb%3Fc%23d%20e"), 1);
    app.stop().await;
}

#[tokio::test]
async fn fifty_concurrent_deliveries_for_one_uncached_room_make_exactly_one_room_request() {
    let fake = FakeWebex::start();
    fake.add_room("R1", "All hands");
    let app = TestApp::spawn_with(with_webex(&fake)).await;
    // Slow enough that every delivery arrives while the lookup is out.
    fake.set_delay(Duration::from_millis(500));

    let bodies: Vec<Vec<u8>> = (0..50)
        .map(|i| membership(&format!("m{i}"), "R1", None))
        .collect();
    let answers = join_all(bodies.iter().map(|body| app.deliver("all", body))).await;

    assert!(answers.iter().all(|a| a.status() == 200));
    let records = app.records();
    assert_eq!(records.len(), 50);
    assert!(records.iter().all(|r| r["room_title"] == "All hands"));
    assert_eq!(fake.count("GET", "/rooms/R1"), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_429_with_retry_after_is_waited_out_and_the_title_recorded() {
    let fake = fake_with_rooms();
    let app = TestApp::spawn_with(with_webex(&fake)).await;
    fake.rate_limit(1, 1);

    let (status, _) = json_of(app.deliver("all", &membership("m1", "R1", None)).await).await;

    assert_eq!(status, 200);
    assert_eq!(app.records()[0]["room_title"], "Board");
    assert_eq!(fake.count("GET", "/rooms/R1"), 2);
    app.stop().await;
}

#[tokio::test]
async fn with_the_api_failing_records_are_written_without_titles_and_every_delivery_gets_200() {
    let fake = fake_with_rooms();
    let app = TestApp::spawn_with(with_webex(&fake)).await;
    fake.set_failing(true);

    for (id, room) in [("m1", "R1"), ("m2", "R2"), ("m3", "R1")] {
        let (status, answer) = json_of(app.deliver("all", &membership(id, room, None)).await).await;
        assert_eq!((status, answer["status"].as_str()), (200, Some("recorded")));
    }

    let records = app.records();
    assert_eq!(records.len(), 3);
    assert!(records.iter().all(untitled));
    let metrics = app.get("/metrics").await.1;
    assert!(
        metrics.contains("rollcall_room_lookup_failures_total 2"),
        "{metrics}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_slow_api_holds_no_delivery_past_the_bound() {
    let fake = fake_with_rooms();
    let app = TestApp::spawn_with(|settings| {
        with_webex(&fake)(settings);
        settings.webex.titles.wait = Duration::from_millis(100);
    })
    .await;
    fake.set_delay(Duration::from_secs(30));

    let (status, _) = json_of(app.deliver("all", &membership("m1", "R1", None)).await).await;

    assert_eq!(status, 200);
    assert!(
        app.records()[0]
            .get("room_title")
            .is_none_or(Value::is_null)
    );
    app.stop().await;
}

#[tokio::test]
async fn without_a_token_the_server_sends_nothing_to_webex_and_warns_once() {
    let fake = fake_with_rooms();
    let temp = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(temp.path(), |cmd| {
        cmd.env("WEBEX_API_URL", &fake.url)
            .env("ROLLCALL_PUBLIC_URL", PUBLIC_URL)
            .env("ROLLCALL_SECRET", SECRET);
    });
    let client = reqwest::Client::new();

    for id in ["m1", "m2"] {
        let body = membership(id, "R1", None);
        let answer = client
            .post(format!("{}/hooks/all", server.address))
            .header(
                "x-spark-signature",
                signature::sign(&Secret::new(SECRET.into()), &body),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
    }

    assert!(fake.requests().is_empty(), "{:#?}", fake.requests());
    let stderr = server.stderr();
    assert_eq!(
        stderr.matches("WEBEX_TOKEN is not set").count(),
        1,
        "{stderr}"
    );
}

#[tokio::test]
async fn serve_registers_itself_at_start_and_reactivates_a_disabled_webhook_on_recheck() {
    let fake = FakeWebex::start();
    let app = TestApp::spawn_with(|settings| {
        with_webex(&fake)(settings);
        settings.webex.public_url = Some(PUBLIC_URL.into());
        settings.webex.recheck_every = Duration::from_millis(50);
    })
    .await;

    let webhooks = fake.webhooks();
    assert_eq!(
        webhooks.len(),
        3,
        "registered before serving: {webhooks:#?}"
    );
    assert!(webhooks.iter().all(|w| {
        w["targetUrl"] == format!("{PUBLIC_URL}/hooks/default") && w["secret"] == SECRET
    }));
    // What Webex does after too many failed deliveries.
    let id = webhooks[0]["id"].as_str().unwrap().to_string();
    fake.set_status(&id, "inactive");

    let put = format!("/webhooks/{id}");
    fake.wait_for("the disabled webhook switched back on", |log| {
        log.iter().any(|r| r.is("PUT", &put))
    })
    .await;
    assert!(fake.webhooks().iter().all(|w| w["status"] == "active"));
    assert_eq!(fake.webhooks().len(), 3);
    app.stop().await;
}

#[test]
fn a_public_url_without_https_is_warned_about_by_subscribe_and_by_serve() {
    let fake = FakeWebex::start();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("audit-logs");
    let plain = "http://audit.example.com";
    let subscribed = run(rollcall(&dir)
        .args(["subscribe", "--public-url", plain])
        .env("WEBEX_TOKEN", TOKEN)
        .env("WEBEX_API_URL", &fake.url))
    .success();
    assert!(
        subscribed.stderr.contains("is not HTTPS"),
        "{}",
        subscribed.report()
    );

    let server = ServerProcess::start(&dir, |c| {
        c.env("WEBEX_TOKEN", TOKEN)
            .env("WEBEX_API_URL", &fake.url)
            .env("ROLLCALL_PUBLIC_URL", plain);
    });
    assert!(
        server.stderr().contains("is not HTTPS"),
        "{}",
        server.stderr()
    );
    assert!(server.terminate().success());
}
