//! Reading single fields of a record line without parsing it: the seq it
//! begins with, one string member, and the dedup key. The writer, the
//! reader and `verify` all read lines through these, so there is one set
//! of assumptions about the line layout, tested here once.
//!
//! They rely on what [`Record::seal`](super::Record::seal) writes: `seq`
//! first, keys as fixed names, no spaces. `"key":` cannot occur inside a
//! JSON string (its second quote would have to be escaped), so the first
//! match of `,"key":` is the member itself.

use std::borrow::Cow;
use std::sync::LazyLock;

use memchr::memmem::Finder;

use super::{DedupKey, Event, Source};

/// The seq a line begins with, even if the rest of it does not parse.
pub fn leading_seq(line: &[u8]) -> Option<u64> {
    let digits = line.strip_prefix(b"{\"seq\":")?;
    let end = digits
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    std::str::from_utf8(&digits[..end]).ok()?.parse().ok()
}

/// The value of a top-level string member of a record line: `Some(None)`
/// for `null`, `None` if absent or not a string.
pub fn string_member<'a>(line: &'a [u8], key: &[u8]) -> Option<Option<Cow<'a, str>>> {
    let needle = [b",\"", key, b"\":"].concat();
    let at = memchr::memmem::find(line, &needle)? + needle.len();
    let rest = &line[at..];
    if rest.starts_with(b"null") {
        return Some(None);
    }
    let body = rest.strip_prefix(b"\"")?;
    let mut escaped = false;
    for (i, &b) in body.iter().enumerate() {
        match b {
            b'\\' => escaped = true,
            b'"' if !escaped_before(body, i) => {
                return if escaped {
                    serde_json::from_slice::<String>(&rest[..i + 2])
                        .ok()
                        .map(|s| Some(Cow::Owned(s)))
                } else {
                    std::str::from_utf8(&body[..i])
                        .ok()
                        .map(|s| Some(Cow::Borrowed(s)))
                };
            }
            _ => {}
        }
    }
    None
}

/// Whether the quote at `body[i]` is escaped (an odd run of backslashes
/// before it).
fn escaped_before(body: &[u8], i: usize) -> bool {
    body[..i].iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 1
}

/// The seq and dedup key of a line the writer wrote, found by its fixed
/// member order without a JSON parse: no key for an event that has none
/// (see [`Record::dedup_key`](super::Record::dedup_key)). `None` (parse
/// it instead) for anything unexpected, such as an escape inside the
/// membership id.
pub fn dedup_key(line: &[u8]) -> Option<(u64, Option<DedupKey>)> {
    let seq = leading_seq(line)?;
    static EVENT: LazyLock<Finder> = LazyLock::new(|| Finder::new(b",\"event\":\""));
    static ID: LazyLock<Finder> = LazyLock::new(|| Finder::new(b",\"membership_id\":\""));
    static CREATED: LazyLock<Finder> = LazyLock::new(|| Finder::new(b",\"membership_created\":"));
    let at = EVENT.find(line)? + EVENT.needle().len();
    let event = match &line[at..] {
        rest if rest.starts_with(b"joined\"") => Event::Joined,
        rest if rest.starts_with(b"left\"") => Event::Left,
        rest => {
            let (name, _) = string_at(rest, 0)?;
            Event::from_name(name)?;
            return Some((seq, None));
        }
    };
    let id_at = ID.find(&line[at..])? + at + ID.needle().len();
    let (id, rest) = string_at(line, id_at)?;
    let created_at = CREATED.find(rest)? + CREATED.needle().len();
    let created = match &rest[created_at..] {
        value if value.starts_with(b"null,") => "",
        value if value.starts_with(b"\"") => string_at(value, 1)?.0,
        _ => return None,
    };
    Some((seq, Some(DedupKey::new(event, id, created))))
}

/// What a line says about its membership's state, read as
/// [`dedup_key`] reads: its seq, event, moderator flag, membership id and
/// source. `None` (parse it instead) for anything unexpected, such as an
/// escape inside the membership id or a line without a source.
pub fn membership_state(line: &[u8]) -> Option<MembershipState<'_>> {
    let seq = leading_seq(line)?;
    static EVENT: LazyLock<Finder> = LazyLock::new(|| Finder::new(b",\"event\":\""));
    static MODERATOR: LazyLock<Finder> = LazyLock::new(|| Finder::new(b",\"is_moderator\":"));
    static ID: LazyLock<Finder> = LazyLock::new(|| Finder::new(b",\"membership_id\":\""));
    static SOURCE: LazyLock<Finder> = LazyLock::new(|| Finder::new(b",\"source\":\""));
    let at = EVENT.find(line)? + EVENT.needle().len();
    let (name, _) = string_at(line, at)?;
    let event = Event::from_name(name)?;
    let flag_at = MODERATOR.find(&line[at..])? + at + MODERATOR.needle().len();
    let is_moderator = match &line[flag_at..] {
        rest if rest.starts_with(b"true,") => Some(true),
        rest if rest.starts_with(b"false,") => Some(false),
        rest if rest.starts_with(b"null,") => None,
        _ => return None,
    };
    let id_at = ID.find(&line[flag_at..])? + flag_at + ID.needle().len();
    let (membership_id, rest) = string_at(line, id_at)?;
    let source_at = SOURCE.find(rest)? + SOURCE.needle().len();
    let source = Source::from_name(string_at(rest, source_at)?.0)?;
    Some(MembershipState {
        seq,
        event,
        is_moderator,
        membership_id,
        source,
    })
}

/// The members of a line [`membership_state`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MembershipState<'a> {
    pub seq: u64,
    pub event: Event,
    pub is_moderator: Option<bool>,
    pub membership_id: &'a str,
    pub source: Source,
}

/// The text of the JSON string whose content starts at `start`, if it has
/// no escapes, and what follows it.
fn string_at(bytes: &[u8], start: usize) -> Option<(&str, &[u8])> {
    let len = memchr::memchr2(b'"', b'\\', &bytes[start..])?;
    let end = start + len;
    if bytes[end] != b'"' {
        return None;
    }
    Some((std::str::from_utf8(&bytes[start..end]).ok()?, &bytes[end..]))
}

#[cfg(test)]
mod tests {
    use super::super::{Record, example, parse_line};
    use super::*;

    fn sealed(id: &str, created: Option<&str>, event: Event) -> Vec<u8> {
        let mut record = Record {
            seq: 42,
            received_at: "2026-11-28T10:00:00.000Z".into(),
            event,
            room_title: Some("\"membership_id\":\"decoy".into()),
            person_display_name: Some(",\"membership_created\":null,".into()),
            membership_id: id.into(),
            membership_created: created.map(String::from),
            ..example()
        };
        let mut line = record.seal();
        line.pop();
        line
    }

    #[test]
    fn the_dedup_key_agrees_with_the_record_or_defers_to_a_parse() {
        for (id, created, event) in [
            ("plain-id", Some("2026-11-28T09:00:00.000Z"), Event::Joined),
            ("plain-id", None, Event::Left),
            ("with \"quotes\" and \\ escapes", Some("x"), Event::Joined),
            ("plain-id", Some("x"), Event::ModeratorGranted),
            ("", None, Event::ReceiverStarted),
        ] {
            let line = sealed(id, created, event);
            let record = parse_line(&line).unwrap();
            match dedup_key(&line) {
                Some((seq, key)) => {
                    assert_eq!((seq, key), (42, record.dedup_key()), "{id:?}");
                }
                None => assert!(id.contains('"'), "only escapes need the parse"),
            }
        }
    }

    #[test]
    fn the_membership_state_agrees_with_the_record_or_defers_to_a_parse() {
        for (id, event, moderator, source) in [
            ("plain-id", Event::Joined, Some(true), Source::Webhook),
            ("plain-id", Event::Left, None, Source::Reconciled),
            (
                "plain-id",
                Event::ModeratorRevoked,
                Some(false),
                Source::EventsApi,
            ),
            (
                "with \"quotes\"",
                Event::Joined,
                Some(false),
                Source::Webhook,
            ),
            ("", Event::ReceiverStarted, None, Source::Webhook),
        ] {
            let mut record = Record {
                seq: 42,
                received_at: "2026-11-28T10:00:00.000Z".into(),
                event,
                is_moderator: moderator,
                room_title: Some(",\"is_moderator\":true,\"membership_id\":\"decoy".into()),
                membership_id: id.into(),
                source,
                ..example()
            };
            let mut line = record.seal();
            line.pop();
            let record = parse_line(&line).unwrap();
            match membership_state(&line) {
                Some(state) => assert_eq!(
                    state,
                    MembershipState {
                        seq: 42,
                        event: record.event,
                        is_moderator: record.is_moderator,
                        membership_id: &record.membership_id,
                        source: record.source,
                    }
                ),
                None => assert!(id.contains('"'), "only escapes need the parse"),
            }
        }
    }

    #[test]
    fn the_leading_seq_is_read_even_from_a_damaged_line() {
        let line = sealed("m", None, Event::Joined);
        assert_eq!(leading_seq(&line), Some(42));
        assert_eq!(leading_seq(&line[..12]), Some(42));
        assert_eq!(leading_seq(b"{\"seq\":7"), Some(7));
        assert_eq!(leading_seq(b"{\"seq\":x"), None);
        assert_eq!(leading_seq(b"not a record"), None);
    }

    #[test]
    fn string_members_are_found_outside_strings_only() {
        let line = br#"{"seq":1,"room_id":"r\",\"room_title\":\"fake","room_title":"Team \"A\"","x":null}"#;
        assert_eq!(
            string_member(line, b"room_id").unwrap().unwrap(),
            r#"r","room_title":"fake"#
        );
        assert_eq!(
            string_member(line, b"room_title").unwrap().unwrap(),
            r#"Team "A""#
        );
        assert_eq!(string_member(line, b"x"), Some(None));
        assert_eq!(string_member(line, b"missing"), None);
    }
}
