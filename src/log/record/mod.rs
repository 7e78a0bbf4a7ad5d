//! One audit record: its fields, its JSONL line, and the hash that chains it
//! to the record before it.
//!
//! A line is the record's JSON with `"hash"` as its last member. The hash is
//! SHA-256 over the line's exact bytes without that member (the JSON up to
//! and including `prev_hash`, closed with `}`), so any changed byte shows and
//! no canonical re-serialisation is ever needed to check it. [`scan`]
//! reads single fields of a line without parsing it.

pub mod scan;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::FormatItem;
use time::macros::format_description;

/// `prev_hash` of the very first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

const HASH_HEX_LEN: usize = 64;
const HASH_PREFIX: &[u8] = b",\"hash\":\"";
const HASH_SUFFIX: &[u8] = b"\"}";
const HASH_MEMBER_LEN: usize = HASH_PREFIX.len() + HASH_HEX_LEN + HASH_SUFFIX.len();

const RECEIVED_AT: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// What a record says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    Joined,
    Left,
    ModeratorGranted,
    ModeratorRevoked,
    /// The receiver's own start: the end of a coverage gap. Room and
    /// person are empty.
    ReceiverStarted,
    /// A clean stop: the start of a coverage gap.
    ReceiverStopped,
}

impl Event {
    pub const ALL: [Event; 6] = [
        Event::Joined,
        Event::Left,
        Event::ModeratorGranted,
        Event::ModeratorRevoked,
        Event::ReceiverStarted,
        Event::ReceiverStopped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Event::Joined => "joined",
            Event::Left => "left",
            Event::ModeratorGranted => "moderator_granted",
            Event::ModeratorRevoked => "moderator_revoked",
            Event::ReceiverStarted => "receiver_started",
            Event::ReceiverStopped => "receiver_stopped",
        }
    }

    /// The event named `name`, as a line writes it.
    pub fn from_name(name: &str) -> Option<Event> {
        Event::ALL.into_iter().find(|e| e.as_str() == name)
    }

    /// A change to a membership (as opposed to the receiver's own).
    pub fn is_membership(self) -> bool {
        !matches!(self, Event::ReceiverStarted | Event::ReceiverStopped)
    }

    /// The moderator flag this event sets, for a role change.
    pub fn moderator(self) -> Option<bool> {
        match self {
            Event::ModeratorGranted => Some(true),
            Event::ModeratorRevoked => Some(false),
            _ => None,
        }
    }
}

/// Where a record's knowledge came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A webhook delivery (every record written before sources existed).
    #[default]
    Webhook,
    /// Found by comparing a room's `GET /memberships` with the log.
    Reconciled,
    /// From `GET /events`, with a compliance officer token.
    EventsApi,
}

impl Source {
    pub const ALL: [Source; 3] = [Source::Webhook, Source::Reconciled, Source::EventsApi];

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Webhook => "webhook",
            Source::Reconciled => "reconciled",
            Source::EventsApi => "events_api",
        }
    }

    /// The source named `name`, as a line writes it.
    pub fn from_name(name: &str) -> Option<Source> {
        Source::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// One line of the log. Field order is the line's member order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub seq: u64,
    pub received_at: String,
    pub event: Event,
    pub room_id: String,
    pub room_title: Option<String>,
    pub room_type: Option<String>,
    pub person_id: String,
    pub person_email: Option<String>,
    pub person_display_name: Option<String>,
    pub person_org_id: Option<String>,
    pub is_moderator: Option<bool>,
    pub is_monitor: Option<bool>,
    pub is_room_hidden: Option<bool>,
    pub membership_id: String,
    pub membership_created: Option<String>,
    pub actor_id: Option<String>,
    pub org_id: Option<String>,
    pub webhook_id: Option<String>,
    pub webhook_name: Option<String>,
    pub target: String,
    /// Absent from lines written before sources existed: `webhook`.
    #[serde(default)]
    pub source: Source,
    /// The event happened after this time (and before `received_at`);
    /// for `events_api` records, the event's exact time.
    #[serde(default)]
    pub not_before: Option<String>,
    /// The receiver that wrote a `receiver_started` or `receiver_stopped`
    /// record; absent from every other record (and from those written
    /// before receivers had names), so their lines are as they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receiver: Option<String>,
    pub prev_hash: String,
    /// Empty until the record is sealed into a line.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hash: String,
}

impl Record {
    /// The identity of the join or leave this record was made from: a
    /// retried delivery of the same event has the same key. Role changes
    /// are recognised by the state they change instead, and the
    /// receiver's own records are never the same event twice.
    pub fn dedup_key(&self) -> Option<DedupKey> {
        matches!(self.event, Event::Joined | Event::Left).then(|| {
            DedupKey::new(
                self.event,
                &self.membership_id,
                self.membership_created.as_deref().unwrap_or(""),
            )
        })
    }

    /// A `receiver_started` or `receiver_stopped` record (room and person
    /// empty), for the writer to seal.
    pub fn receiver(event: Event, not_before: Option<String>) -> Record {
        Record {
            seq: 0,
            received_at: String::new(),
            event,
            room_id: String::new(),
            room_title: None,
            room_type: None,
            person_id: String::new(),
            person_email: None,
            person_display_name: None,
            person_org_id: None,
            is_moderator: None,
            is_monitor: None,
            is_room_hidden: None,
            membership_id: String::new(),
            membership_created: None,
            actor_id: None,
            org_id: None,
            webhook_id: None,
            webhook_name: None,
            target: String::new(),
            source: Source::Webhook,
            not_before,
            receiver: None,
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    /// This record, saying it was written by receiver `name`: for its own
    /// start and stop records.
    pub fn by(self, name: &crate::receiver::Name) -> Record {
        Record {
            receiver: Some(name.to_string()),
            ..self
        }
    }

    /// The UTC day file this record belongs in (`YYYY-MM-DD`).
    pub fn day(&self) -> &str {
        self.received_at.get(..10).unwrap_or("")
    }

    /// Fills in `hash` and returns the record's line, newline included.
    pub fn seal(&mut self) -> Vec<u8> {
        self.hash.clear();
        let (hash, line) = seal(serde_json::to_vec(self).expect("a record always serialises"));
        self.hash = hash;
        line
    }
}

/// A 128-bit digest of `(event, membership id, membership created)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DedupKey(u128);

impl std::hash::Hash for DedupKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.0 as u64);
    }
}

/// Hashes a [`DedupKey`] for free: it is already a uniformly spread
/// digest, so hashing it again (SipHash) is wasted work on a big log.
#[derive(Debug, Default, Clone, Copy)]
pub struct DigestHasher(u64);

impl std::hash::Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl DedupKey {
    pub fn new(event: Event, membership_id: &str, created: &str) -> Self {
        let mut h = Sha256::new();
        h.update(event.as_str());
        h.update([0]);
        h.update(membership_id);
        h.update([0]);
        h.update(created);
        let digest = h.finalize();
        let mut first = [0u8; 16];
        first.copy_from_slice(&digest[..16]);
        Self(u128::from_le_bytes(first))
    }

    /// The key's 16 bytes, to keep it in a map of fixed-size entries.
    pub fn digest(self) -> u128 {
        self.0
    }
}

/// Why a line is not a whole, untouched record.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LineError {
    #[error("not a record: {0}")]
    Parse(String),
    #[error("hash does not match the record's content")]
    HashMismatch,
}

/// Seals a JSON object (`{...}`, its last member the `prev_hash` link)
/// into a line: its hash, and the object with `"hash"` as its last member,
/// newline included. The one sealing rule, for records and the console's
/// access lines alike.
pub fn seal(mut object: Vec<u8>) -> (String, Vec<u8>) {
    let hash = hex::encode(Sha256::digest(&object));
    object.pop();
    object.extend_from_slice(HASH_PREFIX);
    object.extend_from_slice(hash.as_bytes());
    object.extend_from_slice(HASH_SUFFIX);
    object.push(b'\n');
    (hash, object)
}

/// Parses one line (without its newline) and checks its own hash.
/// Chain links and seq order are the caller's to check.
pub fn parse_line(line: &[u8]) -> Result<Record, LineError> {
    let record: Record =
        serde_json::from_slice(line).map_err(|e| LineError::Parse(e.to_string()))?;
    check_seal(line, &record.hash)?;
    Ok(record)
}

/// Whether a sealed line (without its newline) ends with `hash` as its
/// last member and `hash` is that of the rest ([`seal`]'s rule).
pub fn check_seal(line: &[u8], hash: &str) -> Result<(), LineError> {
    if hash.len() != HASH_HEX_LEN
        || line.len() < HASH_MEMBER_LEN + 1
        || !line.ends_with(HASH_SUFFIX)
    {
        return Err(LineError::Parse("no trailing hash member".into()));
    }
    let content_end = line.len() - HASH_MEMBER_LEN;
    let member = &line[content_end..];
    if !member.starts_with(HASH_PREFIX)
        || &member[HASH_PREFIX.len()..HASH_PREFIX.len() + HASH_HEX_LEN] != hash.as_bytes()
    {
        return Err(LineError::Parse("no trailing hash member".into()));
    }
    let mut h = Sha256::new();
    h.update(&line[..content_end]);
    h.update(b"}");
    // Into a buffer on the stack: verify checks every line, and a String
    // per line was a tenth of its time.
    let mut hex = [0u8; HASH_HEX_LEN];
    hex::encode_to_slice(h.finalize(), &mut hex).expect("a SHA-256 digest is 64 hex digits");
    if hex != hash.as_bytes() {
        return Err(LineError::HashMismatch);
    }
    Ok(())
}

/// `received_at` form: RFC 3339, UTC, milliseconds. Being fixed-width, it
/// sorts as text in time order.
pub fn format_timestamp(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(RECEIVED_AT)
        .expect("a UTC time always formats")
}

/// A record for unit tests to start from and change what they need.
#[cfg(test)]
pub(crate) fn example() -> Record {
    Record {
        seq: 1,
        received_at: "2026-11-27T10:00:00.000Z".into(),
        event: Event::Joined,
        room_id: "r".into(),
        person_id: "p".into(),
        membership_id: "m".into(),
        target: "t".into(),
        prev_hash: GENESIS_HASH.into(),
        ..Record::receiver(Event::Joined, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Record {
        Record {
            seq: 7,
            received_at: "2026-11-28T10:00:00.123Z".into(),
            room_id: "room".into(),
            room_type: Some("group".into()),
            person_id: "person".into(),
            person_email: Some("ana@example.com".into()),
            person_display_name: Some("Ana \"A\" Silva\n".into()),
            is_moderator: Some(true),
            is_monitor: Some(false),
            membership_created: Some("2026-11-28T09:59:59.000Z".into()),
            target: "default".into(),
            ..example()
        }
    }

    #[test]
    fn a_sealed_line_parses_back_to_the_same_record() {
        let mut record = sample();
        let line = record.seal();
        assert_eq!(line.last(), Some(&b'\n'));
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
        let parsed = parse_line(&line[..line.len() - 1]).unwrap();
        assert_eq!(parsed, record);
    }

    #[test]
    fn any_changed_content_byte_breaks_the_hash() {
        let mut record = sample();
        let line = record.seal();
        let text = String::from_utf8(line[..line.len() - 1].to_vec()).unwrap();
        let edited = text.replace("ana@example.com", "eve@example.com");
        assert_eq!(parse_line(edited.as_bytes()), Err(LineError::HashMismatch));
    }

    #[test]
    fn timestamps_have_milliseconds_and_z() {
        let at = time::macros::datetime!(2026-11-28 23:59:59.9876 UTC);
        assert_eq!(format_timestamp(at), "2026-11-28T23:59:59.987Z");
    }
}
