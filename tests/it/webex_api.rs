//! The Webex client's lists (rooms, a room's memberships, membership
//! events), its pacing and its count of calls, against the fake API: the
//! ground reconciliation stands on.

use std::num::NonZeroU32;

use rollcall::secret::Secret;
use rollcall::webex::client::{ApiError, Client, EventKind, Membership, MembershipEvent, Room};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;

use crate::support::fake_webex::{FakeWebex, TOKEN, membership_id};
use crate::support::fixture;

fn client(fake: &FakeWebex) -> Client {
    Client::new(&fake.url, Secret::new(TOKEN.into())).unwrap()
}

/// The queries of the fake's requests to `path`, in order.
fn queries(fake: &FakeWebex, path: &str) -> Vec<String> {
    fake.requests()
        .into_iter()
        .filter(|r| r.is("GET", path))
        .map(|r| r.query)
        .collect()
}

/// The `items` of a list fixture, as `T`.
fn items<T: DeserializeOwned>(name: &str) -> Vec<T> {
    let list: Value = serde_json::from_slice(&fixture(name)).unwrap();
    serde_json::from_value(list["items"].clone()).unwrap()
}

#[tokio::test]
async fn every_room_is_listed_across_pages_asking_for_a_thousand_a_page() {
    let fake = FakeWebex::start();
    fake.set_page_size(2);
    for i in 1..=5 {
        fake.add_room(&format!("R{i}"), &format!("Room number {i}"));
    }
    let client = client(&fake);

    let rooms = client.list_rooms().await.unwrap();

    let ids: Vec<&str> = rooms.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["R1", "R2", "R3", "R4", "R5"]);
    assert_eq!(rooms[2].title.as_deref(), Some("Room number 3"));
    assert_eq!(rooms[2].kind.as_deref(), Some("group"));
    let asked = queries(&fake, "/rooms");
    assert_eq!(asked.len(), 3, "{asked:?}");
    assert!(asked[0].contains("max=1000"), "{asked:?}");
    assert_eq!(client.api_calls(), 3);
}

#[tokio::test]
async fn a_rooms_members_are_listed_across_pages_and_no_other_rooms() {
    let fake = FakeWebex::start();
    fake.set_page_size(2);
    for person in ["p1", "p2", "p3", "p4", "p5"] {
        fake.add_member("R1", person, "2026-11-01T09:00:00.000Z");
    }
    fake.add_member("R2", "p9", "2026-11-02T09:00:00.000Z");
    fake.set_moderator("R1", "p2", true);
    fake.remove_member("R1", "p4");
    let client = client(&fake);

    let members = client.list_memberships("R1").await.unwrap();

    let people: Vec<&str> = members.iter().map(|m| m.person_id.as_str()).collect();
    assert_eq!(people, ["p1", "p2", "p3", "p5"]);
    assert!(members.iter().all(|m| m.room_id == "R1"));
    assert_eq!(members[1].id, membership_id("R1", "p2"));
    assert_eq!(members[1].is_moderator, Some(true));
    assert_eq!(members[0].is_moderator, Some(false));
    assert_eq!(members[0].person_email.as_deref(), Some("p1@example.com"));
    assert_eq!(
        members[0].created.as_deref(),
        Some("2026-11-01T09:00:00.000Z")
    );
    let asked = queries(&fake, "/memberships");
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert!(
        asked.iter().all(|q| q.contains("roomId=R1")),
        "every page is of R1: {asked:?}"
    );
}

#[tokio::test]
async fn a_room_id_that_needs_encoding_reaches_the_api_as_that_id() {
    let fake = FakeWebex::start();
    let room = "Y2lz/R+1 &x=y";
    fake.add_member(room, "p1", "2026-11-01T09:00:00.000Z");

    let members = client(&fake).list_memberships(room).await.unwrap();

    assert_eq!(members.len(), 1);
    assert_eq!(members[0].room_id, room);
}

fn event_at(fake: &FakeWebex, kind: &str, person: &str, at: &str) -> String {
    let membership = json!({
        "id": membership_id("R1", person),
        "roomId": "R1",
        "personId": person,
        "created": "2026-11-27T10:00:00.000Z",
    });
    fake.add_event(kind, &membership, at)
}

#[tokio::test]
async fn membership_events_of_a_window_are_listed_across_pages_with_a_compliance_token() {
    let fake = FakeWebex::start();
    fake.set_compliance(true);
    fake.set_page_size(2);
    event_at(&fake, "created", "early", "2026-11-27T09:59:59.999Z");
    let inside = [
        event_at(&fake, "created", "p1", "2026-11-27T10:00:00.000Z"),
        event_at(&fake, "updated", "p1", "2026-11-27T10:30:00.5Z"),
        event_at(&fake, "deleted", "p1", "2026-11-27T11:00:00Z"),
        event_at(&fake, "created", "p2", "2026-11-27T11:59:59.999Z"),
    ];
    event_at(&fake, "created", "late", "2026-11-27T12:00:00.000Z");
    let client = client(&fake);

    let events = client
        .list_membership_events(
            datetime!(2026-11-27 10:00 UTC),
            datetime!(2026-11-27 12:00 UTC),
        )
        .await
        .unwrap();

    let ids: Vec<&str> = events.iter().filter_map(|e| e.id.as_deref()).collect();
    assert_eq!(ids, inside);
    let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            EventKind::Created,
            EventKind::Updated,
            EventKind::Deleted,
            EventKind::Created
        ]
    );
    assert_eq!(events[1].created, datetime!(2026-11-27 10:30:00.5 UTC));
    assert_eq!(events[2].data.id, membership_id("R1", "p1"));
    assert_eq!(events[2].data.person_email, None, "missing fields are None");
    let asked = queries(&fake, "/events");
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert!(
        asked.iter().all(|q| q.contains("resource=memberships")
            && q.contains("from=")
            && q.contains("to=")),
        "every page keeps the window: {asked:?}"
    );
}

#[tokio::test]
async fn events_with_a_token_that_is_not_a_compliance_officers_are_a_distinct_error_saying_so() {
    let fake = FakeWebex::start();
    event_at(&fake, "created", "p1", "2026-11-27T10:00:00Z");

    let error = client(&fake)
        .list_membership_events(datetime!(2026-11-27 00:00 UTC), OffsetDateTime::now_utc())
        .await
        .unwrap_err();

    assert!(
        matches!(error, ApiError::NotComplianceOfficer { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("compliance officer"), "{message}");
    assert!(!message.contains(TOKEN), "{message}");
}

#[tokio::test]
async fn a_403_elsewhere_stays_a_plain_status_error() {
    let fake = FakeWebex::start();
    fake.add_member("R1", "p1", "2026-11-01T09:00:00.000Z");
    fake.set_compliance(true);
    let client = client(&fake);
    assert!(
        client
            .list_membership_events(
                datetime!(2026-11-27 00:00 UTC),
                datetime!(2026-11-28 00:00 UTC)
            )
            .await
            .unwrap()
            .is_empty()
    );

    let error = client.list_memberships("unknown room").await.unwrap_err();
    assert!(matches!(error, ApiError::Status { .. }), "{error:?}");
}

#[tokio::test(start_paused = true)]
async fn a_429_in_the_middle_of_paging_is_waited_out_as_asked_and_counted_as_a_call() {
    let fake = FakeWebex::start_on_this_runtime();
    fake.set_page_size(2);
    for person in ["p1", "p2", "p3"] {
        fake.add_member("R1", person, "2026-11-01T09:00:00.000Z");
    }
    let client = client(&fake);
    client.list_rooms().await.unwrap();
    fake.rate_limit(1, 7);
    let start = tokio::time::Instant::now();

    let members = client.list_memberships("R1").await.unwrap();

    assert!(
        start.elapsed() >= std::time::Duration::from_secs(7),
        "Retry-After: 7 was not waited out: {:?}",
        start.elapsed()
    );
    assert_eq!(members.len(), 3);
    assert_eq!(fake.count("GET", "/memberships"), 3, "one 429, two pages");
    assert_eq!(client.api_calls(), 4, "one list of rooms, then three");
}

#[tokio::test]
async fn a_failing_room_fails_alone() {
    let fake = FakeWebex::start();
    fake.add_member("R1", "p1", "2026-11-01T09:00:00.000Z");
    fake.add_member("R2", "p2", "2026-11-01T09:00:00.000Z");
    fake.set_room_failing("R1", true);
    let client = client(&fake);

    let failed = client.list_memberships("R1").await.unwrap_err();
    let listed = client.list_memberships("R2").await.unwrap();

    assert!(
        matches!(&failed, ApiError::Status { status, .. } if status.as_u16() == 500),
        "{failed:?}"
    );
    assert_eq!(listed.len(), 1);
    fake.set_room_failing("R1", false);
    assert_eq!(client.list_memberships("R1").await.unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_paced_client_sends_six_requests_at_five_a_second_over_at_least_a_second() {
    let fake = FakeWebex::start_on_this_runtime();
    fake.set_page_size(1);
    for person in ["p1", "p2", "p3", "p4", "p5", "p6"] {
        fake.add_member("R1", person, "2026-11-01T09:00:00.000Z");
    }
    let client = client(&fake).paced(NonZeroU32::new(5).unwrap());
    let start = tokio::time::Instant::now();

    let members = client.list_memberships("R1").await.unwrap();

    assert_eq!(members.len(), 6);
    assert_eq!(client.api_calls(), 6);
    assert!(
        start.elapsed() >= std::time::Duration::from_secs(1),
        "six requests at five a second took {:?}",
        start.elapsed()
    );
}

#[test]
fn the_api_fixtures_parse() {
    let rooms: Vec<Room> = items("api-rooms-list.json");
    assert_eq!(rooms.len(), 2);
    assert_eq!(rooms[0].title.as_deref(), Some("Board of Directors"));

    let members: Vec<Membership> = items("api-memberships-list.json");
    assert_eq!(members.len(), 3);
    assert!(members.iter().all(|m| m.room_id == rooms[0].id));
    assert_eq!(members[0].is_moderator, Some(true));
    assert_eq!(
        members[0].created.as_deref(),
        Some("2026-11-27T14:03:11.482Z")
    );

    let events: Vec<MembershipEvent> = items("api-events-memberships.json");
    let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [EventKind::Created, EventKind::Deleted]);
    assert_eq!(events[1].created, datetime!(2026-11-27 16:40:02.011 UTC));
    assert_eq!(
        events[0].data, members[0],
        "an event's data is the membership"
    );

    let updated: Value = serde_json::from_slice(&fixture("memberships-updated.json")).unwrap();
    let data: Membership = serde_json::from_value(updated["data"].clone()).unwrap();
    assert_eq!(data.id, members[0].id);
    assert_eq!(data.is_moderator, Some(false));
}

#[test]
fn a_membership_needs_its_id_room_and_person_and_nothing_else() {
    let bare = json!({"id": "m", "roomId": "r", "personId": "p", "somethingNew": 1});
    let membership: Membership = serde_json::from_value(bare).unwrap();
    assert_eq!(membership.person_email, None);
    assert_eq!(membership.created, None);

    assert_eq!(membership.missing(), None);

    let no_person = json!({"id": "m", "roomId": "r"});
    let membership: Membership = serde_json::from_value(no_person).unwrap();
    assert_eq!(membership.missing(), Some("data.personId"));
}
