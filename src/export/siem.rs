//! What the SIEM schemas ([`ocsf`](super::ocsf), [`ecs`](super::ecs))
//! share: which schema, the event's time, the product, and the record's
//! own fields that neither schema has a place for.
//!
//! Each writes one JSON object a line with the room (`group`) as its last
//! member, so that a record written before its room's title is known gets
//! the title later by inserting `,"name":"..."` just before the line's
//! closing `}}`: the way the CSV gets its late title cells.

use serde::ser::{Serialize, SerializeMap, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::log::members::Change;
use crate::log::reader::RecordView;
use crate::log::roster;

use super::{ecs, ocsf};

/// The product every line names as its source.
pub const PRODUCT: &str = "rollcall";
/// Its version, the crate's.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// A SIEM schema a record can be written in, one JSON object a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// OCSF 1.5.0: Group Management (3006) for membership changes,
    /// Application Lifecycle (6002) for the receiver's own records.
    Ocsf,
    /// Elastic Common Schema 8.x: `iam` events for membership changes,
    /// `process` events for the receiver's own records.
    Ecs,
}

/// A record whose time cannot be read: not one the writer made.
#[derive(Debug, thiserror::Error)]
#[error("seq {seq}: {value:?} is not an RFC 3339 time")]
pub struct NotATime {
    pub seq: u64,
    pub value: String,
}

impl Schema {
    /// Appends `record` to `out` as one line, newline included; `title` is
    /// its room's title (its own, or the one learned before it). Without
    /// a title, returns where in `out` the room's `,"name":...` member
    /// belongs, for a title learned later ([`title_member`]); `None` for
    /// a titled record or one without a room.
    pub fn write(
        self,
        record: &RecordView<'_>,
        title: Option<&str>,
        out: &mut Vec<u8>,
    ) -> Result<Option<usize>, NotATime> {
        let title = title.filter(|t| !t.is_empty());
        let times = Times::of(record)?;
        let room = |id_key| {
            given(&record.room_id).map(|id| Room {
                name: title,
                id,
                id_key,
            })
        };
        let written = match self {
            Schema::Ocsf => {
                serde_json::to_writer(&mut *out, &ocsf::event(record, &times, room("uid")))
            }
            Schema::Ecs => {
                serde_json::to_writer(&mut *out, &ecs::document(record, &times, room("id")))
            }
        };
        written.expect("a line written to memory cannot fail");
        let untitled =
            (title.is_none() && given(&record.room_id).is_some()).then(|| out.len() - "}}".len());
        out.push(b'\n');
        Ok(untitled)
    }
}

/// The member [`Schema::write`] left room for: `,"name":"TITLE"`, into
/// `member` (emptied first).
pub fn title_member<'m>(title: &str, member: &'m mut Vec<u8>) -> &'m [u8] {
    member.clear();
    member.extend_from_slice(b",\"name\":");
    serde_json::to_writer(&mut *member, title).expect("a string written to memory cannot fail");
    member
}

/// A record's times.
pub(super) struct Times {
    /// When its event happened, as well as the log knows (as for a
    /// roster: an `events_api` record's exact time, a join's membership
    /// start, else its receipt), in RFC 3339 and in ms since the epoch.
    pub event: String,
    pub event_ms: i64,
    /// When rollcall received (or reconciled) it, in ms since the epoch.
    pub received_ms: i64,
}

impl Times {
    fn of(record: &RecordView<'_>) -> Result<Self, NotATime> {
        let millis = |at: &str| {
            OffsetDateTime::parse(at, &Rfc3339)
                .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
                .map_err(|_| NotATime {
                    seq: record.seq,
                    value: at.to_string(),
                })
        };
        let event = roster::event_time(Change::from(record));
        Ok(Self {
            event_ms: millis(&event)?,
            received_ms: millis(&record.received_at)?,
            event,
        })
    }
}

/// Empty text (a receiver record's room and person) as absent.
pub(super) fn given(text: &str) -> Option<&str> {
    (!text.is_empty()).then_some(text)
}

/// The room, last in the line: its title when known, then its id under
/// the schema's name for an id.
pub(super) struct Room<'a> {
    name: Option<&'a str>,
    id: &'a str,
    id_key: &'static str,
}

impl Serialize for Room<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        if let Some(name) = self.name {
            map.serialize_entry("name", name)?;
        }
        map.serialize_entry(self.id_key, self.id)?;
        map.end()
    }
}

/// The record's own fields that the schema has no place for: OCSF's
/// `unmapped`, ECS's `rollcall` field set, by the log's names, those
/// without a value left out. The hashes let a SIEM's copy be checked
/// against the log (`rollcall export --seq N --format jsonl`).
pub(super) struct Details<'r, 'a>(pub &'r RecordView<'a>);

impl Serialize for Details<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("event", r.event.as_str())?;
        map.serialize_entry("source", r.source.as_str())?;
        let texts = [
            ("received_at", Some(&*r.received_at)),
            ("not_before", r.not_before.as_deref()),
            ("membership_id", given(&r.membership_id)),
            ("membership_created", r.membership_created.as_deref()),
            ("target", given(&r.target)),
            ("webhook_id", r.webhook_id.as_deref()),
            ("webhook_name", r.webhook_name.as_deref()),
            ("receiver", r.receiver.as_deref()),
        ];
        for (name, text) in texts {
            if let Some(text) = text {
                map.serialize_entry(name, text)?;
            }
        }
        for (name, flag) in [
            ("is_moderator", r.is_moderator),
            ("is_monitor", r.is_monitor),
        ] {
            if let Some(flag) = flag {
                map.serialize_entry(name, &flag)?;
            }
        }
        map.serialize_entry("prev_hash", &*r.prev_hash)?;
        map.serialize_entry("hash", &*r.hash)?;
        map.end()
    }
}
