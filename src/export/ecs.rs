//! A record as an Elastic Common Schema document: a membership change as
//! an `iam` event about the member (`user.target`) in the room (`group`),
//! made by `user` where the record knows who; the receiver's own start
//! and stop as `process` events. `docs/siem.md` has the mapping as a
//! table.

use serde::Serialize;

use super::siem::{Details, PRODUCT, Room, Times, VERSION, given};
use crate::log::reader::RecordView;
use crate::log::record::Event;

/// The ECS version the documents conform to.
pub const ECS_VERSION: &str = "8.16.0";

/// `event.category`, `event.type` and `event.action` of each event. ECS
/// files adding a user to a group (and a change of the user's rights) as
/// a change to the user: `creation` and `deletion` are for an account or
/// a group itself being made or removed, which a membership never is.
fn categorised(event: Event) -> (&'static str, &'static [&'static str], &'static str) {
    const USER_CHANGE: &[&str] = &["user", "change"];
    match event {
        Event::Joined => ("iam", USER_CHANGE, "added-member"),
        Event::Left => ("iam", USER_CHANGE, "removed-member"),
        Event::ModeratorGranted => ("iam", USER_CHANGE, "granted-moderator"),
        Event::ModeratorRevoked => ("iam", USER_CHANGE, "revoked-moderator"),
        Event::ReceiverStarted => ("process", &["start"], "receiver-started"),
        Event::ReceiverStopped => ("process", &["end"], "receiver-stopped"),
    }
}

/// Members in this order; `group` last (see [`siem`](super::siem)).
#[derive(Serialize)]
pub(super) struct Document<'r, 'a> {
    #[serde(rename = "@timestamp")]
    timestamp: &'r str,
    ecs: Ecs,
    event: EventFields<'r>,
    observer: Observer<'r>,
    #[serde(skip_serializing_if = "Option::is_none")]
    organization: Option<Organization<'r>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    process: Option<Process>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<Actor<'r>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    related: Option<Related<'r>>,
    rollcall: Details<'r, 'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    group: Option<Room<'r>>,
}

#[derive(Serialize)]
struct Ecs {
    version: &'static str,
}

#[derive(Serialize)]
struct EventFields<'a> {
    kind: &'static str,
    category: [&'static str; 1],
    #[serde(rename = "type")]
    kind_of: &'static [&'static str],
    action: &'static str,
    outcome: &'static str,
    /// The record's seq.
    sequence: u64,
    /// Webex for what happened in a room, rollcall for its own records.
    provider: &'static str,
    module: &'static str,
    dataset: &'static str,
    /// When rollcall received (or reconciled) it.
    created: &'a str,
}

/// rollcall itself; `name` the receiver, in its own start and stop.
#[derive(Serialize)]
struct Observer<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    product: &'static str,
    vendor: &'static str,
    version: &'static str,
}

#[derive(Serialize)]
struct Organization<'a> {
    id: &'a str,
}

#[derive(Serialize)]
struct Process {
    name: &'static str,
}

/// `user`: who made the change, when known, and `user.target`: the member.
#[derive(Serialize)]
struct Actor<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<Target<'a>>,
}

#[derive(Serialize)]
struct Target<'a> {
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    /// The member's roles once the event happened.
    #[serde(skip_serializing_if = "Option::is_none")]
    roles: Option<[&'static str; 1]>,
}

#[derive(Serialize)]
struct Related<'a> {
    user: Vec<&'a str>,
}

/// `record` as an ECS document, `room` its group.
pub(super) fn document<'r, 'a>(
    record: &'r RecordView<'a>,
    times: &'r Times,
    room: Option<Room<'r>>,
) -> Document<'r, 'a> {
    let (category, kind_of, action) = categorised(record.event);
    let membership = record.event.is_membership();
    let actor = record.actor_id.as_deref();
    let target = given(&record.person_id).map(|id| Target {
        id,
        email: record.person_email.as_deref(),
        name: record.person_display_name.as_deref(),
        roles: (record.is_moderator == Some(true)).then_some(["moderator"]),
    });
    let mut related: Vec<&str> = [
        given(&record.person_id),
        record.person_email.as_deref(),
        actor,
    ]
    .into_iter()
    .flatten()
    .collect();
    related.dedup();
    Document {
        timestamp: &times.event,
        ecs: Ecs {
            version: ECS_VERSION,
        },
        event: EventFields {
            kind: "event",
            category: [category],
            kind_of,
            action,
            outcome: "success",
            sequence: record.seq,
            provider: if membership { "webex" } else { PRODUCT },
            module: PRODUCT,
            dataset: "rollcall.audit",
            created: &record.received_at,
        },
        observer: Observer {
            name: record.receiver.as_deref(),
            product: PRODUCT,
            vendor: PRODUCT,
            version: VERSION,
        },
        organization: record.org_id.as_deref().map(|id| Organization { id }),
        process: (!membership).then_some(Process { name: PRODUCT }),
        user: (actor.is_some() || target.is_some()).then_some(Actor { id: actor, target }),
        related: (!related.is_empty()).then_some(Related { user: related }),
        rollcall: Details(record),
        group: room,
    }
}
