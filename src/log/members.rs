//! What the log says about each membership, names and emails included:
//! present or gone, its moderator flag, and the join that began it.
//! `roster --at` folds the records up to a time into one, the index folds
//! the whole log through one, and reconciliation one room's records (from
//! the index, or the log). The writer keeps only what its rules decide by,
//! in fixed-size entries (`log::writer`), never one of these for the
//! whole log: with every string, it grew by about 900 bytes a membership.

use std::collections::HashMap;

use super::days::Day;
use super::reader::{self, Block, ReadError, RecordView};
use super::record::{Event, Record, Source};

/// One membership, as the records so far leave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub membership_id: String,
    pub room_id: String,
    pub person_id: String,
    pub person_email: Option<String>,
    pub person_display_name: Option<String>,
    /// Joined and not left since.
    pub present: bool,
    pub is_moderator: Option<bool>,
    /// When the present membership began: the join's `membership_created`
    /// (the real join time), else when it was received.
    pub since: Option<String>,
    /// Who added them: the actor of that join.
    pub added_by: Option<String>,
    /// Where that join was learned from.
    pub join_source: Source,
    /// The last record about this membership: its seq and `received_at`.
    pub last_seq: u64,
    pub last_at: String,
    /// Where that last record was learned from.
    pub last_source: Source,
}

/// The fields of a record that change a membership, borrowed from a
/// [`Record`] or a [`RecordView`] alike.
#[derive(Debug, Clone, Copy)]
pub struct Change<'r> {
    pub seq: u64,
    pub received_at: &'r str,
    pub event: Event,
    pub source: Source,
    pub room_id: &'r str,
    pub person_id: &'r str,
    pub person_email: Option<&'r str>,
    pub person_display_name: Option<&'r str>,
    pub is_moderator: Option<bool>,
    pub membership_id: &'r str,
    pub membership_created: Option<&'r str>,
    pub actor_id: Option<&'r str>,
    /// Read only for the event's time ([`event_time`](super::roster::event_time)).
    pub not_before: Option<&'r str>,
}

/// One conversion for both shapes of a record: the same fields by the
/// same names.
macro_rules! change_from {
    ($record:ty) => {
        impl<'r> From<&'r $record> for Change<'r> {
            fn from(r: &'r $record) -> Self {
                Change {
                    seq: r.seq,
                    received_at: &r.received_at,
                    event: r.event,
                    source: r.source,
                    room_id: &r.room_id,
                    person_id: &r.person_id,
                    person_email: r.person_email.as_deref(),
                    person_display_name: r.person_display_name.as_deref(),
                    is_moderator: r.is_moderator,
                    membership_id: &r.membership_id,
                    membership_created: r.membership_created.as_deref(),
                    actor_id: r.actor_id.as_deref(),
                    not_before: r.not_before.as_deref(),
                }
            }
        }
    };
}

change_from!(Record);
change_from!(RecordView<'r>);

/// Every membership the log knows, by membership id.
#[derive(Debug, Clone, Default)]
pub struct Members {
    by_id: HashMap<String, Member>,
}

impl Members {
    /// Folds every record of `days`, in log order.
    pub fn load(days: &[Day]) -> Result<Self, ReadError> {
        Self::load_through(days, u64::MAX)
    }

    /// [`Members::load`], of the records up to seq `through`: the log as
    /// it was when a writer started, whatever it has appended since.
    pub fn load_through(days: &[Day], through: u64) -> Result<Self, ReadError> {
        Self::load_where(days, |view| view.seq <= through)
    }

    /// [`Members::load`], of the records of room `room_id` alone: what the
    /// roster diff compares with when there is no index to ask.
    pub fn load_room(days: &[Day], room_id: &str) -> Result<Self, ReadError> {
        Self::load_where(days, |view| view.room_id == room_id)
    }

    fn load_where(days: &[Day], keep: impl Fn(&RecordView<'_>) -> bool) -> Result<Self, ReadError> {
        let mut members = Members::default();
        reader::in_log_order(
            days,
            Vec::new,
            |block: &Block, lines: &mut Vec<u8>| {
                // The fold itself is cheap next to reading, and must run in
                // log order: the whole lines are handed over in one copy.
                lines.clear();
                lines.extend_from_slice(block.whole_lines());
                block.lines().count() as u64
            },
            |place, lines: &mut Vec<u8>| {
                let mut scratch = String::new();
                for (i, line) in lines.split(|&b| b == b'\n').enumerate() {
                    match RecordView::parse_reusing(line, &mut scratch) {
                        Ok(view) if keep(&view) => members.apply(Change::from(&view)),
                        Ok(_) => {}
                        // A damaged line is `verify`'s to report; the
                        // state goes on from the lines that read.
                        Err(error) if !line.is_empty() => tracing::warn!(
                            file = %place.day.path().display(),
                            line = place.lines_before + i as u64 + 1,
                            %error,
                            "a line that is not a record was left out of the membership state"
                        ),
                        Err(_) => {}
                    }
                }
                Ok::<_, ReadError>(())
            },
        )?;
        Ok(members)
    }

    /// The state after `change`. The receiver's own records change no
    /// membership.
    pub fn apply(&mut self, change: Change<'_>) {
        if !change.event.is_membership() || change.membership_id.is_empty() {
            return;
        }
        // A whole-log fold at start goes through here once per record:
        // a membership seen before costs a lookup, not an allocation.
        let member = match self.by_id.get_mut(change.membership_id) {
            Some(member) => member,
            None => self
                .by_id
                .entry(change.membership_id.to_string())
                .or_insert_with(|| Member {
                    membership_id: change.membership_id.to_string(),
                    room_id: change.room_id.to_string(),
                    person_id: change.person_id.to_string(),
                    person_email: None,
                    person_display_name: None,
                    present: false,
                    is_moderator: None,
                    since: None,
                    added_by: None,
                    join_source: change.source,
                    last_seq: 0,
                    last_at: String::new(),
                    last_source: change.source,
                }),
        };
        if change.person_email.is_some() {
            set(&mut member.person_email, change.person_email);
        }
        if change.person_display_name.is_some() {
            set(&mut member.person_display_name, change.person_display_name);
        }
        match change.event {
            Event::Joined => {
                member.present = true;
                set(
                    &mut member.since,
                    Some(change.membership_created.unwrap_or(change.received_at)),
                );
                set(&mut member.added_by, change.actor_id);
                member.join_source = change.source;
                member.is_moderator = change.is_moderator;
            }
            Event::Left => member.present = false,
            Event::ModeratorGranted | Event::ModeratorRevoked => {
                member.is_moderator = change.event.moderator();
            }
            Event::ReceiverStarted | Event::ReceiverStopped => {}
        }
        member.last_seq = change.seq;
        member.last_source = change.source;
        member.last_at.clear();
        member.last_at.push_str(change.received_at);
    }

    /// Puts a membership back as it was (`None`: unknown), undoing a
    /// change that did not become durable.
    pub fn restore(&mut self, membership_id: String, before: Option<Member>) {
        match before {
            Some(member) => self.by_id.insert(membership_id, member),
            None => self.by_id.remove(&membership_id),
        };
    }

    pub fn get(&self, membership_id: &str) -> Option<&Member> {
        self.by_id.get(membership_id)
    }

    /// Everyone present in `room_id`, in no particular order.
    pub fn present_in<'m>(&'m self, room_id: &'m str) -> impl Iterator<Item = &'m Member> + 'm {
        self.by_id
            .values()
            .filter(move |m| m.present && m.room_id == room_id)
    }

    /// Every membership, present or not.
    pub fn all(&self) -> impl Iterator<Item = &Member> {
        self.by_id.values()
    }
}

/// Sets `field` to `value`, reusing its allocation.
fn set(field: &mut Option<String>, value: Option<&str>) {
    match (field.as_mut(), value) {
        (Some(old), Some(new)) if old == new => {}
        (Some(old), Some(new)) => {
            old.clear();
            old.push_str(new);
        }
        (_, new) => *field = new.map(str::to_string),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::record::example;

    fn record(seq: u64, event: Event, moderator: Option<bool>) -> Record {
        Record {
            seq,
            received_at: format!("2026-11-27T10:00:0{seq}.000Z"),
            event,
            is_moderator: moderator,
            membership_created: Some("2026-11-27T09:00:00.000Z".into()),
            actor_id: Some("boss".into()),
            ..example()
        }
    }

    #[test]
    fn joins_leaves_and_role_changes_leave_the_membership_as_they_say() {
        let mut members = Members::default();
        members.apply(Change::from(&record(1, Event::Joined, Some(false))));
        let m = members.get("m").unwrap();
        assert!(m.present);
        assert_eq!(m.since.as_deref(), Some("2026-11-27T09:00:00.000Z"));
        assert_eq!(m.added_by.as_deref(), Some("boss"));
        members.apply(Change::from(&record(2, Event::ModeratorGranted, None)));
        assert_eq!(members.get("m").unwrap().is_moderator, Some(true));
        assert_eq!(members.present_in("r").count(), 1);
        members.apply(Change::from(&record(3, Event::Left, None)));
        let m = members.get("m").unwrap();
        assert!(!m.present);
        assert_eq!(
            (m.last_seq, m.last_at.as_str()),
            (3, "2026-11-27T10:00:03.000Z")
        );
        assert_eq!(members.present_in("r").count(), 0);
    }

    #[test]
    fn the_receiver_s_own_records_change_no_membership() {
        let mut members = Members::default();
        let mut started = Record::receiver(Event::ReceiverStarted, None);
        started.seq = 1;
        members.apply(Change::from(&started));
        assert_eq!(members.all().count(), 0);
    }
}
