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
/// `listed_from` is the log's last membership record when the listing's
/// first request went out: every finding is written only if its
/// membership has no record after it, since a delivery that came in
/// while the room was being listed knows better than the listing.
///
/// An entry without its membership, room or person id is skipped with a
/// warning, yet whoever it may name is not taken for gone.
pub fn diff(
    room: &Room,
    listed: Vec<Membership>,
    members: &Members,
    known_until: Option<&str>,
    listed_from: u64,
) -> Vec<Finding> {
    let rule = Rule::IfUnchangedSince(listed_from);
    let mut findings = Vec::new();
    let mut listed_ids = HashSet::with_capacity(listed.len());
    let mut listed_people: HashSet<String> = HashSet::new();
    let mut unnamed = false;
    for membership in listed {
        if let Some(field) = membership.missing() {
            tracing::warn!(
                room = %room.id,
                membership = %membership.id,
                person = %membership.person_id,
                "Webex listed a membership without {field}: skipped, and no one it may name is recorded as gone"
            );
            unnamed |= membership.id.is_empty() && membership.person_id.is_empty();
            listed_people.insert(membership.person_id);
            listed_ids.insert(membership.id);
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
                    rule,
                });
            }
            _ => findings.push(Finding {
                // `membership_created` is the real join time.
                record: found(membership.record(Event::Joined, Source::Reconciled), room),
                rule,
            }),
        }
    }
    if unnamed {
        // An entry naming no one may be anyone: no leave can be told.
        tracing::warn!(room = %room.id, "no leaves recorded for this room this run");
        return findings;
    }
    let mut gone: Vec<&Member> = members
        .present_in(&room.id)
        .filter(|m| !listed_ids.contains(&m.membership_id) && !listed_people.contains(&m.person_id))
        .collect();
    gone.sort_by_key(|m| m.last_seq);
    for member in gone {
        findings.push(Finding {
            record: left(member, room, last_known(member, known_until)),
            rule,
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

        let found = diff(
            &room(),
            listed,
            &members,
            Some("2026-11-10T00:00:00.000Z"),
            3,
        );

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
                    Rule::IfUnchangedSince(3)
                ),
                ("new", Event::Joined, None, Rule::IfUnchangedSince(3)),
                (
                    "leaves",
                    Event::Left,
                    Some("2026-11-20T10:00:00.000Z"),
                    Rule::IfUnchangedSince(3)
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
            0,
        );
        assert_eq!(found.len(), 2);
        assert!(found.iter().all(|f| f.record.event == Event::Joined));
        assert_eq!(found[0].record.is_moderator, Some(true));
    }
}
