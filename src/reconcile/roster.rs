//! The roster diff: one room's `GET /memberships` against the members the
//! log has present in it, as the records that make the log agree.

use std::collections::HashSet;

use super::watched::Room;
use crate::log::members::{Member, Members};
use crate::log::record::{Event, Record, Source};
use crate::log::writer::Rule;
use crate::webex::client::Membership;

/// A record the diff found missing, and when the writer is to write it.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub record: Record,
    pub rule: Rule,
}

/// What makes the log's roster of `room` match `listed`, Webex's roster
/// now. `known_until` is when the log last covered the room in full (the
/// start of the latest coverage gap, or the previous check): someone gone
/// since was there at least until then, or until their own last record.
///
/// Every finding is written only if the membership's last record is still
/// the one the diff saw: a delivery that came in meanwhile knows better.
pub fn diff(
    room: &Room,
    listed: Vec<Membership>,
    members: &Members,
    known_until: Option<&str>,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut listed_ids = HashSet::with_capacity(listed.len());
    for membership in listed {
        if membership.missing().is_some() {
            continue;
        }
        listed_ids.insert(membership.id.clone());
        let known = members.get(&membership.id);
        match known {
            Some(member) if member.present => {
                let Some(moderator) = membership.is_moderator else {
                    continue;
                };
                // A log that never heard the flag reads as not a moderator:
                // what Webex assumes of a member too.
                if member.is_moderator.unwrap_or(false) == moderator {
                    continue;
                }
                let event = if moderator {
                    Event::ModeratorGranted
                } else {
                    Event::ModeratorRevoked
                };
                findings.push(Finding {
                    record: Record {
                        not_before: last_known(member, known_until),
                        ..found(membership.record(event, Source::Reconciled), room)
                    },
                    rule: Rule::IfLastSeq(member.last_seq),
                });
            }
            _ => findings.push(Finding {
                // `membership_created` is the real join time.
                record: found(membership.record(Event::Joined, Source::Reconciled), room),
                rule: Rule::IfLastSeq(known.map_or(0, |m| m.last_seq)),
            }),
        }
    }
    let mut gone: Vec<&Member> = members
        .present_in(&room.id)
        .filter(|m| !listed_ids.contains(&m.membership_id))
        .collect();
    gone.sort_by_key(|m| m.last_seq);
    for member in gone {
        findings.push(Finding {
            record: left(member, room, last_known(member, known_until)),
            rule: Rule::IfLastSeq(member.last_seq),
        });
    }
    findings
}

/// The record with what the room tells: its title and target.
fn found(record: Record, room: &Room) -> Record {
    Record {
        room_title: room.title.clone(),
        target: room.target.clone(),
        ..record
    }
}

/// The `left` record of a member the log has present and Webex no longer
/// lists, from what the log knows of them.
fn left(member: &Member, room: &Room, not_before: Option<String>) -> Record {
    Record {
        room_id: member.room_id.clone(),
        person_id: member.person_id.clone(),
        person_email: member.person_email.clone(),
        person_display_name: member.person_display_name.clone(),
        is_moderator: member.is_moderator,
        membership_id: member.membership_id.clone(),
        // The join's `membership_created`, as a webhook's `deleted` carries
        // it: a late delivery of the same leave is then a duplicate.
        membership_created: member.since.clone(),
        source: Source::Reconciled,
        ..found(Record::receiver(Event::Left, not_before), room)
    }
}

/// When `member` was last known in the state the log holds: the later of
/// their last record and `known_until` (both as the log writes times, so
/// they compare as text).
fn last_known(member: &Member, known_until: Option<&str>) -> Option<String> {
    let last = Some(member.last_at.as_str()).filter(|at| !at.is_empty());
    last.max(known_until).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::members::Change;

    fn room() -> Room {
        Room {
            id: "R".into(),
            title: Some("Ops".into()),
            target: "default".into(),
        }
    }

    fn membership(person: &str, moderator: bool) -> Membership {
        Membership {
            id: format!("m-{person}"),
            room_id: "R".into(),
            person_id: person.into(),
            room_type: Some("group".into()),
            person_email: Some(format!("{person}@example.com")),
            person_display_name: Some(person.into()),
            person_org_id: None,
            is_moderator: Some(moderator),
            is_monitor: Some(false),
            is_room_hidden: None,
            created: Some("2026-11-01T09:00:00.000Z".into()),
        }
    }

    /// The log after `person` joined as record `seq`.
    fn joined(members: &mut Members, person: &str, seq: u64, at: &str) {
        let mut record = membership(person, false).record(Event::Joined, Source::Webhook);
        record.seq = seq;
        record.received_at = at.into();
        members.apply(Change::from(&record));
    }

    #[test]
    fn joins_leaves_and_role_changes_are_found_with_their_times_and_guards() {
        let mut members = Members::default();
        joined(&mut members, "stays", 1, "2026-11-02T10:00:00.000Z");
        joined(&mut members, "promoted", 2, "2026-11-02T10:00:01.000Z");
        joined(&mut members, "leaves", 3, "2026-11-20T10:00:00.000Z");
        let listed = vec![
            membership("stays", false),
            membership("promoted", true),
            membership("new", false),
        ];

        let found = diff(&room(), listed, &members, Some("2026-11-10T00:00:00.000Z"));

        let summary: Vec<(&str, Event, Option<&str>, Rule)> = found
            .iter()
            .map(|f| {
                (
                    f.record.person_id.as_str(),
                    f.record.event,
                    f.record.not_before.as_deref(),
                    f.rule,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "promoted",
                    Event::ModeratorGranted,
                    Some("2026-11-10T00:00:00.000Z"),
                    Rule::IfLastSeq(2)
                ),
                ("new", Event::Joined, None, Rule::IfLastSeq(0)),
                (
                    "leaves",
                    Event::Left,
                    Some("2026-11-20T10:00:00.000Z"),
                    Rule::IfLastSeq(3)
                ),
            ]
        );
        assert!(found.iter().all(|f| f.record.source == Source::Reconciled
            && f.record.room_title.as_deref() == Some("Ops")
            && f.record.target == "default"));
        assert_eq!(
            found[1].record.membership_created.as_deref(),
            Some("2026-11-01T09:00:00.000Z")
        );
        assert_eq!(
            found[2].record.person_email.as_deref(),
            Some("leaves@example.com")
        );
    }

    #[test]
    fn an_empty_log_gets_the_whole_roster_as_joins() {
        let found = diff(
            &room(),
            vec![membership("a", true), membership("b", false)],
            &Members::default(),
            None,
        );
        assert_eq!(found.len(), 2);
        assert!(found.iter().all(|f| f.record.event == Event::Joined));
        assert_eq!(found[0].record.is_moderator, Some(true));
    }
}
