//! Exact backfill: the membership events `GET /events` kept for a
//! coverage gap, as records with their real times. The gap that ended at
//! this start is written as deliveries are; an older one, whose backfill
//! failed before, under [`Rule::Replayed`], so its old leaves and role
//! changes never lay themselves over newer state.

use std::collections::HashMap;

use super::roster::Finding;
use super::watched::Room;
use crate::log::record::{Event, Source, format_timestamp};
use crate::log::writer::Rule;
use crate::webex::client::{EventKind, MembershipEvent};

/// The events of one page that are about the watched `rooms`: all a
/// backfill keeps of the org's.
pub fn watched<'r>(
    page: Vec<MembershipEvent>,
    rooms: &'r HashMap<&str, &Room>,
) -> impl Iterator<Item = MembershipEvent> + 'r {
    page.into_iter()
        .filter(|event| rooms.contains_key(event.data.room_id.as_str()))
}

/// The records `events` make, in the order the events happened, for the
/// watched `rooms` only (a compliance officer sees the whole org).
///
/// A join or leave a webhook already recorded has the same dedup key and
/// is written once; a role change is written only if it changes the flag
/// the log holds; an update that does not say the flag is no role change.
/// `late` is the rule for every record of a gap backfilled after its own
/// start's run (`None`: this start's gap).
pub fn findings(
    mut events: Vec<MembershipEvent>,
    rooms: &HashMap<&str, &Room>,
    late: Option<Rule>,
) -> Vec<Finding> {
    events.sort_by_key(|event| event.created);
    events
        .into_iter()
        .filter_map(|event| {
            let room = rooms.get(event.data.room_id.as_str())?;
            if event.data.missing().is_some() {
                return None;
            }
            let (kind, rule) = match event.kind {
                EventKind::Created => (Event::Joined, Rule::Always),
                EventKind::Deleted => (Event::Left, Rule::Always),
                EventKind::Updated => match event.data.is_moderator? {
                    true => (Event::ModeratorGranted, Rule::RoleChange),
                    false => (Event::ModeratorRevoked, Rule::RoleChange),
                },
            };
            let mut record = event.data.record(kind, Source::EventsApi);
            record.not_before = Some(format_timestamp(event.created));
            record.actor_id = event.actor_id;
            record.org_id = event.org_id;
            record.room_title = room.title.clone();
            record.target = room.target.clone();
            Some(Finding {
                record,
                rule: late.unwrap_or(rule),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webex::client::Membership;
    use time::OffsetDateTime;
    use time::macros::datetime;

    fn event(
        kind: EventKind,
        room: &str,
        moderator: Option<bool>,
        at: OffsetDateTime,
    ) -> MembershipEvent {
        MembershipEvent {
            id: Some("ev".into()),
            resource: Some("memberships".into()),
            kind,
            actor_id: Some("admin".into()),
            org_id: Some("org".into()),
            created: at,
            data: Membership {
                id: "m".into(),
                room_id: room.into(),
                person_id: "p".into(),
                room_type: None,
                person_email: None,
                person_display_name: None,
                person_org_id: None,
                is_moderator: moderator,
                is_monitor: None,
                is_room_hidden: None,
                created: Some("2026-11-27T10:00:00.000Z".into()),
            },
        }
    }

    #[test]
    fn events_become_records_in_time_order_with_their_exact_time_and_actor() {
        let watched = Room {
            id: "R".into(),
            title: Some("Ops".into()),
            target: String::new(),
        };
        let rooms = HashMap::from([("R", &watched)]);
        let events = vec![
            event(
                EventKind::Deleted,
                "R",
                Some(true),
                datetime!(2026-11-27 10:03 UTC),
            ),
            event(
                EventKind::Updated,
                "R",
                None,
                datetime!(2026-11-27 10:02 UTC),
            ),
            event(
                EventKind::Created,
                "elsewhere",
                None,
                datetime!(2026-11-27 10:00 UTC),
            ),
            event(
                EventKind::Updated,
                "R",
                Some(true),
                datetime!(2026-11-27 10:01 UTC),
            ),
            event(
                EventKind::Created,
                "R",
                Some(false),
                datetime!(2026-11-27 10:00 UTC),
            ),
        ];

        let found = findings(events, &rooms, None);

        let seen: Vec<(Event, Option<&str>, Rule)> = found
            .iter()
            .map(|f| (f.record.event, f.record.not_before.as_deref(), f.rule))
            .collect();
        assert_eq!(
            seen,
            [
                (
                    Event::Joined,
                    Some("2026-11-27T10:00:00.000Z"),
                    Rule::Always
                ),
                (
                    Event::ModeratorGranted,
                    Some("2026-11-27T10:01:00.000Z"),
                    Rule::RoleChange
                ),
                (Event::Left, Some("2026-11-27T10:03:00.000Z"), Rule::Always),
            ]
        );
        assert!(found.iter().all(|f| f.record.source == Source::EventsApi
            && f.record.actor_id.as_deref() == Some("admin")
            && f.record.room_title.as_deref() == Some("Ops")));
    }
}
