//! `memberships`/`updated` deliveries: a moderator granted or revoked is
//! recorded when it changes the flag the log holds for that membership,
//! across restarts; any other update is answered `ignored`.

use std::sync::Arc;

use rollcall::clock::FakeClock;
use serde_json::Value;

use crate::support::app::{START, TestApp, json_of, membership};

/// A delivery of `event` for membership `m1` with the given moderator flag.
fn delivery(event: &str, moderator: bool) -> Vec<u8> {
    let mut body: Value = serde_json::from_slice(&membership(
        event,
        "m1",
        "room-1",
        "2026-11-27T09:00:00.000Z",
    ))
    .unwrap();
    body["data"]["isModerator"] = moderator.into();
    serde_json::to_vec(&body).unwrap()
}

async fn status_of(app: &TestApp, body: &[u8]) -> String {
    let (status, answer) = json_of(app.deliver("default", body).await).await;
    assert_eq!(status, 200, "{answer}");
    answer["status"].as_str().unwrap().to_string()
}

fn events(app: &TestApp) -> Vec<(String, Value, String)> {
    app.records()
        .iter()
        .map(|r| {
            (
                r["event"].as_str().unwrap().to_string(),
                r["is_moderator"].clone(),
                r["source"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn an_update_is_recorded_only_when_it_changes_the_moderator_flag() {
    let app = TestApp::spawn().await;
    assert_eq!(
        status_of(&app, &delivery("created", false)).await,
        "recorded"
    );
    assert_eq!(
        status_of(&app, &delivery("updated", false)).await,
        "ignored"
    );
    assert_eq!(
        status_of(&app, &delivery("updated", true)).await,
        "recorded"
    );
    // A retried update finds the flag already set.
    assert_eq!(status_of(&app, &delivery("updated", true)).await, "ignored");
    assert_eq!(
        status_of(&app, &delivery("updated", false)).await,
        "recorded"
    );
    assert_eq!(
        events(&app),
        [
            ("joined".into(), false.into(), "webhook".into()),
            ("moderator_granted".into(), true.into(), "webhook".into()),
            ("moderator_revoked".into(), false.into(), "webhook".into()),
        ]
    );
    let (_, metrics) = app.get("/metrics").await;
    assert!(
        metrics.contains("rollcall_deliveries_total{outcome=\"ignored\"} 2\n"),
        "{metrics}"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_moderator_flag_the_log_holds_survives_a_restart() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("log");
    let clock = Arc::new(FakeClock::new(START));
    let app = TestApp::spawn_in(&dir, clock.clone(), |_| {}).await;
    assert_eq!(
        status_of(&app, &delivery("created", false)).await,
        "recorded"
    );
    assert_eq!(
        status_of(&app, &delivery("updated", true)).await,
        "recorded"
    );
    app.stop().await;

    let app = TestApp::spawn_in(&dir, clock, |_| {}).await;
    assert_eq!(status_of(&app, &delivery("updated", true)).await, "ignored");
    assert_eq!(
        status_of(&app, &delivery("updated", false)).await,
        "recorded"
    );
    assert_eq!(
        events(&app)
            .iter()
            .map(|(event, ..)| event.as_str())
            .collect::<Vec<_>>(),
        ["joined", "moderator_granted", "moderator_revoked"]
    );
    app.stop().await;
}

#[tokio::test]
async fn an_update_of_a_membership_the_log_has_never_seen_records_its_flag() {
    let app = TestApp::spawn().await;
    assert_eq!(
        status_of(&app, &delivery("updated", true)).await,
        "recorded"
    );
    assert_eq!(
        events(&app),
        [("moderator_granted".into(), true.into(), "webhook".into())]
    );
    app.stop().await;
}

#[tokio::test]
async fn webex_s_updated_sample_after_a_moderator_s_join_is_a_revocation() {
    let app = TestApp::spawn().await;
    let joined = crate::support::fixture("memberships-created-current.json");
    let updated = crate::support::fixture("memberships-updated.json");
    assert_eq!(status_of(&app, &joined).await, "recorded");
    assert_eq!(status_of(&app, &updated).await, "recorded");
    assert_eq!(status_of(&app, &updated).await, "ignored");
    assert_eq!(
        events(&app),
        [
            ("joined".into(), true.into(), "webhook".into()),
            ("moderator_revoked".into(), false.into(), "webhook".into()),
        ]
    );
    app.stop().await;
}
