//! What Webex posts: the webhook envelope, and a membership event turned
//! into the record it becomes. Parsing is lenient (unknown fields ignored,
//! everything optional but `resource`, `event` and `data`); ids are opaque
//! strings, never decoded.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

use crate::log::record::{Event, Record};

/// The name of a webhook target: `/hooks/{target}`, 1-64 of `[A-Za-z0-9_-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target(String);

impl Target {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Target {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        let ok = (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(Self(name.to_string()))
        } else {
            Err(format!(
                "no such target {name:?}: a target name is 1-64 letters, digits, '_' or '-'"
            ))
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    id: Option<String>,
    name: Option<String>,
    resource: String,
    event: String,
    filter: Option<String>,
    org_id: Option<String>,
    actor_id: Option<String>,
    /// Checked to be JSON but only read for memberships.
    data: Box<serde_json::value::RawValue>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MembershipData {
    id: Option<String>,
    room_id: Option<String>,
    room_type: Option<String>,
    person_id: Option<String>,
    person_email: Option<String>,
    person_display_name: Option<String>,
    person_org_id: Option<String>,
    is_moderator: Option<bool>,
    is_monitor: Option<bool>,
    is_room_hidden: Option<bool>,
    created: Option<String>,
}

/// A membership join or leave, ready for the writer.
#[derive(Debug, Clone)]
pub struct Membership {
    /// The record, without seq, time and hashes (the writer sets those).
    pub record: Record,
    /// The delivering webhook's `filter`: `None` or no `roomId=` means the
    /// webhook covers every room.
    pub webhook_filter: Option<String>,
}

/// What a well-formed delivery is.
#[derive(Debug)]
pub enum Delivery {
    Membership(Box<Membership>),
    /// A well-formed event rollcall does not log (a message, a room, an
    /// `updated` membership): answered 200 so Webex keeps the webhook on.
    Ignored,
}

/// Parses a delivery's raw body. The error says what is wrong with it.
pub fn parse(body: &[u8], target: &Target) -> Result<Delivery, String> {
    let envelope: Envelope = serde_json::from_slice(body)
        .map_err(|e| format!("body is not a Webex webhook event: {e}"))?;
    let event = match (envelope.resource.as_str(), envelope.event.as_str()) {
        ("memberships", "created") => Event::Joined,
        ("memberships", "deleted") => Event::Left,
        _ => return Ok(Delivery::Ignored),
    };
    let data: MembershipData = serde_json::from_str(envelope.data.get())
        .map_err(|e| format!("data is not a Webex membership: {e}"))?;
    let required = |value: Option<String>, name: &str| {
        value
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("membership event is missing {name}"))
    };
    let membership_id = required(data.id, "data.id")?;
    let room_id = required(data.room_id, "data.roomId")?;
    let person_id = required(data.person_id, "data.personId")?;
    let record = Record {
        seq: 0,
        received_at: String::new(),
        event,
        room_id,
        room_title: None,
        room_type: data.room_type,
        person_id,
        person_email: data.person_email,
        person_display_name: data.person_display_name,
        person_org_id: data.person_org_id,
        is_moderator: data.is_moderator,
        is_monitor: data.is_monitor,
        is_room_hidden: data.is_room_hidden,
        membership_id,
        membership_created: data.created,
        actor_id: envelope.actor_id,
        org_id: envelope.org_id,
        webhook_id: envelope.id,
        webhook_name: envelope.name,
        target: target.as_str().to_string(),
        prev_hash: String::new(),
        hash: String::new(),
    };
    Ok(Delivery::Membership(Box::new(Membership {
        record,
        webhook_filter: envelope.filter,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        "default".parse().unwrap()
    }

    #[test]
    fn target_names_are_checked() {
        assert!("team_A-1".parse::<Target>().is_ok());
        assert!("".parse::<Target>().is_err());
        assert!("..".parse::<Target>().is_err());
        assert!("a%2Fb".parse::<Target>().is_err());
        assert!("x".repeat(65).parse::<Target>().is_err());
    }

    #[test]
    fn a_membership_without_a_person_is_refused_by_name() {
        let body =
            br#"{"resource":"memberships","event":"created","data":{"id":"m","roomId":"r"}}"#;
        assert_eq!(
            parse(body, &target()).unwrap_err(),
            "membership event is missing data.personId"
        );
    }

    #[test]
    fn an_updated_membership_is_ignored() {
        let body = br#"{"resource":"memberships","event":"updated","data":{}}"#;
        assert!(matches!(parse(body, &target()), Ok(Delivery::Ignored)));
    }

    #[test]
    fn an_envelope_without_data_is_not_well_formed() {
        let body = br#"{"resource":"messages","event":"created"}"#;
        assert!(parse(body, &target()).is_err());
    }
}
