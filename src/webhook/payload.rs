//! What Webex posts: the webhook envelope, and a membership event turned
//! into the record it becomes. Parsing is lenient (unknown fields ignored,
//! everything optional but `resource`, `event` and `data`); ids are opaque
//! strings, never decoded.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

use crate::log::record::{Event, Record, Source};
use crate::webex::client;

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

/// A membership join, leave or role change, ready for the writer.
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
    /// `updated` membership without a moderator flag): answered 200 so
    /// Webex keeps the webhook on.
    Ignored,
}

/// Parses a delivery's raw body. The error says what is wrong with it.
pub fn parse(body: &[u8], target: &Target) -> Result<Delivery, String> {
    let envelope: Envelope = serde_json::from_slice(body)
        .map_err(|e| format!("body is not a Webex webhook event: {e}"))?;
    if !matches!(
        (envelope.resource.as_str(), envelope.event.as_str()),
        ("memberships", "created" | "deleted" | "updated")
    ) {
        return Ok(Delivery::Ignored);
    }
    let data: client::Membership = serde_json::from_str(envelope.data.get())
        .map_err(|e| format!("data is not a Webex membership: {e}"))?;
    if let Some(name) = data.missing() {
        return Err(format!("membership event is missing {name}"));
    }
    let event = match (envelope.event.as_str(), data.is_moderator) {
        ("created", _) => Event::Joined,
        ("deleted", _) => Event::Left,
        (_, Some(true)) => Event::ModeratorGranted,
        (_, Some(false)) => Event::ModeratorRevoked,
        // An update that says nothing of the moderator flag changes
        // nothing rollcall logs.
        (_, None) => return Ok(Delivery::Ignored),
    };
    let record = Record {
        actor_id: envelope.actor_id,
        org_id: envelope.org_id,
        webhook_id: envelope.id,
        webhook_name: envelope.name,
        target: target.as_str().to_string(),
        ..data.record(event, Source::Webhook)
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
    fn an_updated_membership_is_a_role_change_or_ignored() {
        let update = |flag: &str| {
            format!(
                r#"{{"resource":"memberships","event":"updated","data":{{"id":"m","roomId":"r","personId":"p"{flag}}}}}"#
            )
        };
        let event = |body: String| match parse(body.as_bytes(), &target()) {
            Ok(Delivery::Membership(m)) => Some(m.record.event),
            Ok(Delivery::Ignored) => None,
            Err(error) => panic!("{error}"),
        };
        assert_eq!(
            event(update(r#","isModerator":true"#)),
            Some(Event::ModeratorGranted)
        );
        assert_eq!(
            event(update(r#","isModerator":false"#)),
            Some(Event::ModeratorRevoked)
        );
        assert_eq!(event(update("")), None);
    }

    #[test]
    fn an_envelope_without_data_is_not_well_formed() {
        let body = br#"{"resource":"messages","event":"created"}"#;
        assert!(parse(body, &target()).is_err());
    }
}
