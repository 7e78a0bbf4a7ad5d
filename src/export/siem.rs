//! What the SIEM schemas ([`ocsf`](super::ocsf), [`ecs`](super::ecs))
//! share: which schema, the event's time, the product, and the record's
//! own fields that neither schema has a place for.
//!
//! Each writes one JSON object a line with the room (`group`) as its last
//! member, so that a record written before its room's title is known gets
//! the title later by inserting `,"name":"..."` just before the line's
//! closing `}}`: the way the CSV gets its late title cells.

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::log::members::Change;
use crate::log::reader::RecordView;
use crate::log::roster;

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
        let grouped = match self {
            Schema::Ocsf => super::ocsf::write(record, title, &mut *out)?,
            Schema::Ecs => super::ecs::write(record, title, &mut *out)?,
        };
        let untitled = (grouped && title.is_none()).then(|| out.len() - "}}".len());
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

/// When the record's event happened, as well as the log knows (as for a
/// roster: an `events_api` record's exact time, a join's membership
/// start, else its receipt), in RFC 3339 and in ms since the epoch.
pub(super) fn event_time(record: &RecordView<'_>) -> Result<(String, i64), NotATime> {
    let at = roster::event_time(Change::from(record));
    let ms = millis(record.seq, &at)?;
    Ok((at, ms))
}

/// An RFC 3339 time in ms since the epoch.
pub(super) fn millis(seq: u64, at: &str) -> Result<i64, NotATime> {
    let parsed = OffsetDateTime::parse(at, &Rfc3339).map_err(|_| NotATime {
        seq,
        value: at.to_string(),
    })?;
    Ok((parsed.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// Empty text (a receiver record's room and person) as absent.
pub(super) fn given(text: &str) -> Option<&str> {
    (!text.is_empty()).then_some(text)
}

/// The record's own fields that the schema has no place for: OCSF's
/// `unmapped`, ECS's `rollcall` field set. The hashes let a SIEM's copy
/// be checked against the log (`rollcall export --seq N --format jsonl`).
#[derive(Serialize)]
pub(super) struct Details<'a> {
    pub event: &'static str,
    pub source: &'static str,
    pub received_at: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_before: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub membership_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub membership_created: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_moderator: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_monitor: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_name: Option<&'a str>,
    pub prev_hash: &'a str,
    pub hash: &'a str,
}

impl<'a> Details<'a> {
    pub fn of(record: &'a RecordView<'_>) -> Self {
        Self {
            event: record.event.as_str(),
            source: record.source.as_str(),
            received_at: &record.received_at,
            not_before: record.not_before.as_deref(),
            membership_id: given(&record.membership_id),
            membership_created: record.membership_created.as_deref(),
            is_moderator: record.is_moderator,
            is_monitor: record.is_monitor,
            target: given(&record.target),
            webhook_id: record.webhook_id.as_deref(),
            webhook_name: record.webhook_name.as_deref(),
            prev_hash: &record.prev_hash,
            hash: &record.hash,
        }
    }
}
