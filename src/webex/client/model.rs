//! The shapes the Webex API sends and takes: webhooks, rooms, memberships
//! and membership events. Lenient where Webex is: unknown fields are
//! ignored, and only what identifies a thing is required.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::log::record::{Event, Record, Source};

/// A webhook registration as Webex lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    pub id: String,
    #[serde(default)]
    pub name: String,
    pub target_url: String,
    pub resource: String,
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    #[serde(default, skip_serializing)]
    pub secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

impl Webhook {
    /// Webex disables a webhook after too many failed deliveries; a
    /// missing status means active.
    pub fn is_active(&self) -> bool {
        self.status.as_deref().is_none_or(|s| s == "active")
    }
}

/// The body of `POST /webhooks`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewWebhook<'a> {
    pub name: &'a str,
    pub target_url: &'a str,
    pub resource: &'a str,
    pub event: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<&'a str>,
    pub secret: &'a str,
}

/// The body of `PUT /webhooks/{id}`: resource, event and filter cannot
/// change.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookUpdate<'a> {
    pub name: &'a str,
    pub target_url: &'a str,
    pub secret: &'a str,
    pub status: &'a str,
}

/// A room, as `GET /rooms/{id}` gives it and `GET /rooms` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Room {
    pub id: String,
    #[serde(default)]
    pub title: Option<String>,
    /// `group` or `direct`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

/// A membership, as `GET /memberships?roomId=` lists it and as a webhook
/// delivery's or a membership event's `data` holds it. Webex may leave
/// out any field; [`Membership::missing`] names an identifying one that
/// is absent.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Membership {
    /// The same for a person and room across leaving and rejoining.
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub room_id: String,
    #[serde(default)]
    pub person_id: String,
    #[serde(default)]
    pub room_type: Option<String>,
    #[serde(default)]
    pub person_email: Option<String>,
    #[serde(default)]
    pub person_display_name: Option<String>,
    #[serde(default)]
    pub person_org_id: Option<String>,
    #[serde(default)]
    pub is_moderator: Option<bool>,
    #[serde(default)]
    pub is_monitor: Option<bool>,
    #[serde(default)]
    pub is_room_hidden: Option<bool>,
    /// When this membership began, as Webex wrote it: kept as text, since
    /// `(event, id, created)` identifies an event and must compare equal
    /// to what a webhook delivery carried.
    #[serde(default)]
    pub created: Option<String>,
}

impl Membership {
    /// The first identifying field that is missing or empty, by its
    /// name in the payload.
    pub fn missing(&self) -> Option<&'static str> {
        [
            (&self.id, "data.id"),
            (&self.room_id, "data.roomId"),
            (&self.person_id, "data.personId"),
        ]
        .into_iter()
        .find_map(|(value, name)| value.is_empty().then_some(name))
    }

    /// The record of `event` for this membership, learned from `source`.
    /// The writer fills in seq, time and hashes; the caller what it knows
    /// of the delivery (actor, webhook, target).
    pub fn record(self, event: Event, source: Source) -> Record {
        Record {
            room_id: self.room_id,
            room_type: self.room_type,
            person_id: self.person_id,
            person_email: self.person_email,
            person_display_name: self.person_display_name,
            person_org_id: self.person_org_id,
            is_moderator: self.is_moderator,
            is_monitor: self.is_monitor,
            is_room_hidden: self.is_room_hidden,
            membership_id: self.id,
            membership_created: self.created,
            source,
            ..Record::receiver(event, None)
        }
    }
}

/// What happened to a membership, in `GET /events`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Created,
    Updated,
    Deleted,
}

/// One entry of `GET /events?resource=memberships`: a change, when it
/// happened (`created`), who made it, and the membership as it was then.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MembershipEvent {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub resource: Option<String>,
    #[serde(rename = "type")]
    pub kind: EventKind,
    #[serde(default)]
    pub actor_id: Option<String>,
    #[serde(default)]
    pub org_id: Option<String>,
    /// The event's own time.
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    pub data: Membership,
}
