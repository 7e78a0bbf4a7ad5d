//! `rollcall serve`: deliveries in, durable records out.

use crate::support::app::{TestApp, json_of};
use crate::support::fixture;

#[tokio::test]
async fn a_signed_membership_created_is_recorded_with_email_name_and_flags() {
    let app = TestApp::spawn().await;
    let (status, answer) = json_of(
        app.deliver("team", &fixture("memberships-created-current.json"))
            .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(answer["status"], "recorded");
    assert_eq!(answer["seq"], 1);
    let records = app.records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["event"], "joined");
    assert_eq!(records[0]["person_email"], "ana.silva@example.com");
    assert_eq!(records[0]["person_display_name"], "Ana Silva");
    assert_eq!(records[0]["is_moderator"], true);
    assert_eq!(records[0]["target"], "team");
    app.stop().await;
}
