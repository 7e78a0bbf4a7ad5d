//! A record as an OCSF 1.5.0 event: a membership change as Group
//! Management (class 3006, the room being the group), the receiver's own
//! start and stop as Application Lifecycle (6002). `docs/siem.md` has the
//! mapping as a table.

use serde::Serialize;

use super::siem::{Details, PRODUCT, Room, Times, VERSION, given};
use crate::log::reader::RecordView;
use crate::log::record::Event;

/// The schema version the events conform to.
pub const OCSF_VERSION: &str = "1.5.0";

/// An OCSF class, with its category.
struct Class {
    uid: u32,
    name: &'static str,
    category_uid: u32,
    category_name: &'static str,
}

const GROUP_MANAGEMENT: Class = Class {
    uid: 3006,
    name: "Group Management",
    category_uid: 3,
    category_name: "Identity & Access Management",
};

const APPLICATION_LIFECYCLE: Class = Class {
    uid: 6002,
    name: "Application Lifecycle",
    category_uid: 6,
    category_name: "Application Activity",
};

/// What the event is in OCSF: class, activity id, activity name and
/// type name (`Class: Activity`, as OCSF names a `type_uid`).
fn activity(event: Event) -> (&'static Class, u32, &'static str, &'static str) {
    match event {
        Event::Joined => (
            &GROUP_MANAGEMENT,
            3,
            "Add User",
            "Group Management: Add User",
        ),
        Event::Left => (
            &GROUP_MANAGEMENT,
            4,
            "Remove User",
            "Group Management: Remove User",
        ),
        Event::ModeratorGranted => (
            &GROUP_MANAGEMENT,
            1,
            "Assign Privileges",
            "Group Management: Assign Privileges",
        ),
        Event::ModeratorRevoked => (
            &GROUP_MANAGEMENT,
            2,
            "Revoke Privileges",
            "Group Management: Revoke Privileges",
        ),
        Event::ReceiverStarted => (
            &APPLICATION_LIFECYCLE,
            3,
            "Start",
            "Application Lifecycle: Start",
        ),
        Event::ReceiverStopped => (
            &APPLICATION_LIFECYCLE,
            4,
            "Stop",
            "Application Lifecycle: Stop",
        ),
    }
}

/// The privilege a role change assigns or revokes.
const MODERATOR: [&str; 1] = ["moderator"];

/// Members in this order; `group` last (see [`siem`](super::siem)).
#[derive(Serialize)]
pub(super) struct OcsfEvent<'r, 'a> {
    time: i64,
    class_uid: u32,
    class_name: &'static str,
    category_uid: u32,
    category_name: &'static str,
    activity_id: u32,
    activity_name: &'static str,
    type_uid: u32,
    type_name: &'static str,
    severity_id: u32,
    severity: &'static str,
    status_id: u32,
    status: &'static str,
    metadata: Metadata<'r>,
    #[serde(skip_serializing_if = "Option::is_none")]
    app: Option<Product>,
    #[serde(skip_serializing_if = "Option::is_none")]
    privileges: Option<[&'static str; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    actor: Option<Actor<'r>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<User<'r>>,
    unmapped: Details<'r, 'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    group: Option<Room<'r>>,
}

#[derive(Serialize)]
struct Metadata<'a> {
    version: &'static str,
    product: Product,
    /// The record's seq: unique in the log.
    uid: String,
    sequence: u64,
    /// When rollcall received (or reconciled) it.
    logged_time: i64,
    /// The Webex organization the webhook belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    tenant_uid: Option<&'a str>,
}

#[derive(Serialize)]
struct Product {
    name: &'static str,
    vendor_name: &'static str,
    version: &'static str,
}

const ROLLCALL: Product = Product {
    name: PRODUCT,
    vendor_name: PRODUCT,
    version: VERSION,
};

#[derive(Serialize)]
struct Actor<'a> {
    user: User<'a>,
}

#[derive(Serialize)]
struct User<'a> {
    uid: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    email_addr: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
}

/// `record` as an OCSF event, `room` its group.
pub(super) fn event<'r, 'a>(
    record: &'r RecordView<'a>,
    times: &Times,
    room: Option<Room<'r>>,
) -> OcsfEvent<'r, 'a> {
    let (class, activity_id, activity_name, type_name) = activity(record.event);
    let membership = record.event.is_membership();
    OcsfEvent {
        time: times.event_ms,
        class_uid: class.uid,
        class_name: class.name,
        category_uid: class.category_uid,
        category_name: class.category_name,
        activity_id,
        activity_name,
        type_uid: class.uid * 100 + activity_id,
        type_name,
        severity_id: 1,
        severity: "Informational",
        status_id: 1,
        status: "Success",
        metadata: Metadata {
            version: OCSF_VERSION,
            product: ROLLCALL,
            uid: record.seq.to_string(),
            sequence: record.seq,
            logged_time: times.received_ms,
            tenant_uid: record.org_id.as_deref(),
        },
        app: (!membership).then_some(ROLLCALL),
        privileges: record.event.moderator().map(|_| MODERATOR),
        actor: record.actor_id.as_deref().map(|uid| Actor {
            user: User {
                uid,
                email_addr: None,
                name: None,
            },
        }),
        user: given(&record.person_id).map(|uid| User {
            uid,
            email_addr: record.person_email.as_deref(),
            name: record.person_display_name.as_deref(),
        }),
        unmapped: Details(record),
        group: room,
    }
}
