//! What a membership's records make in the index: its row (the state
//! the fold goes on from), the spans of the states that ended, and its
//! stays in rooms. The memberships a batch touches are held in memory
//! ([`Place`]) and written back once per flush.

use rusqlite::{OptionalExtension, params};

use super::Fold;
use crate::index::IndexError;
use crate::index::text::Texts;
use crate::log::members::{Change, Member, Members};
use crate::log::reader::RecordView;
use crate::log::record::{Event, Source};
use crate::log::roster::event_time;

/// What the index keeps per membership beside the fold's [`Member`].
#[derive(Debug, Clone, Default)]
pub(super) struct Place {
    /// The `text` id of its membership id: its `membership` row.
    pub(super) id: i64,
    /// The event time of its last record, never earlier than the one
    /// before: its records apply in the log's order.
    last_event_at: String,
    /// Its open stay, while present.
    stay: Option<i64>,
    /// The join that began the open stay, and its receiver.
    joined_seq: Option<u64>,
    joined_receiver: Option<usize>,
    /// The receiver of its last record ([`Member::last_seq`]'s).
    last_receiver: usize,
    /// The texts of its member as its last record left it.
    texts: MemberTexts,
}

/// The `text` ids of a member's room, person, email, name and adder:
/// found once per record, not again for each row they go in.
#[derive(Debug, Clone, Copy, Default)]
struct MemberTexts {
    room: i64,
    person: i64,
    email: Option<i64>,
    name: Option<i64>,
    added_by: Option<i64>,
}

impl MemberTexts {
    fn of(m: &Member, texts: &mut Texts<'_>) -> rusqlite::Result<Self> {
        Ok(MemberTexts {
            room: texts.id(&m.room_id)?,
            person: texts.id(&m.person_id)?,
            email: texts.id_of(m.person_email.as_deref())?,
            name: texts.id_of(m.person_display_name.as_deref())?,
            added_by: texts.id_of(m.added_by.as_deref())?,
        })
    }
}

impl Fold<'_> {
    /// The membership's place in this batch: loaded with its state if the
    /// index has one. Returns its `text` id.
    pub(super) fn place(&mut self, membership_id: &str) -> Result<i64, IndexError> {
        let (id, new) = self.texts.id_new(membership_id)?;
        let mut place = Place {
            id,
            ..Place::default()
        };
        let found = if new {
            None
        } else {
            self.sql
                .load
                .query_row([id], |row| {
                    let source: String = row.get(8)?;
                    place.joined_seq = row.get(9)?;
                    place.joined_receiver = row.get(18)?;
                    place.last_receiver = row.get(19)?;
                    place.last_event_at = row.get(11)?;
                    place.stay = row.get(12)?;
                    place.texts = MemberTexts {
                        room: row.get(13)?,
                        person: row.get(14)?,
                        email: row.get(15)?,
                        name: row.get(16)?,
                        added_by: row.get(17)?,
                    };
                    Ok(Member {
                        membership_id: membership_id.to_string(),
                        room_id: row.get(0)?,
                        person_id: row.get(1)?,
                        person_email: row.get(2)?,
                        person_display_name: row.get(3)?,
                        present: row.get(4)?,
                        is_moderator: row.get(5)?,
                        since: row.get(6)?,
                        added_by: row.get(7)?,
                        join_source: Source::from_name(&source).unwrap_or_default(),
                        last_seq: row.get(10)?,
                        // Neither is read by any answer of the index:
                        // `last_at` is the writer's, `last_source` its
                        // replay rule's.
                        last_at: String::new(),
                        last_source: Source::default(),
                    })
                })
                .optional()?
        };
        if let Some(member) = found {
            self.members
                .restore(membership_id.to_string(), Some(member));
        }
        self.places.insert(membership_id.to_string(), place);
        Ok(id)
    }

    /// The membership's state after `r` (of receiver `receiver`), the
    /// span it ends and the stay it begins, changes or ends.
    pub(super) fn membership(
        &mut self,
        r: &RecordView<'_>,
        receiver: usize,
    ) -> Result<(), IndexError> {
        let id = r.membership_id.as_ref();
        let change = Change::from(r);
        let Fold {
            sql,
            texts,
            members,
            places,
            rooms,
            ..
        } = self;
        let place = places.get_mut(id).expect("placed before it is folded");
        let mut event_at = event_time(change);
        if event_at < place.last_event_at {
            event_at.clone_from(&place.last_event_at);
        }
        let before = members.get(id);
        let known = before.is_some();
        let was_present = before.is_some_and(|m| m.present);
        if let Some(m) = before.filter(|m| m.present) {
            // The state it was in lasted until this record.
            let ids = place.texts;
            sql.span.execute(params![
                ids.room,
                ids.person,
                ids.email,
                ids.name,
                m.is_moderator,
                m.since,
                ids.added_by,
                m.join_source.as_str(),
                place.joined_seq,
                place.last_event_at,
                m.last_seq,
                event_at,
                place.joined_receiver,
                place.last_receiver,
            ])?;
        }
        members.apply(change);
        let after = members.get(id).expect("a membership record makes a member");
        place.texts = MemberTexts::of(after, texts)?;
        // A join opens a stay; a leave of a membership the log never saw
        // joined is a stay whose start is unknown. Both are one row.
        let opened = match r.event {
            Event::Joined if !was_present => Some((Some(r), None)),
            Event::Left if !known => Some((None, Some(r))),
            _ => None,
        };
        match opened {
            Some((joined, left)) => {
                let stay = sql.stay_open.insert(params![
                    place.texts.room,
                    place.id,
                    place.texts.person,
                    after.person_email,
                    after.person_display_name,
                    joined.map(|_| &event_at),
                    joined.map(|r| r.seq),
                    joined.map(|r| r.source.as_str()),
                    left.map(|_| &event_at),
                    left.map(|r| r.seq),
                    left.and_then(|r| r.not_before.as_deref()),
                    left.map(|r| r.source.as_str()),
                    after.is_moderator,
                    joined.map(|_| receiver),
                    left.map(|_| receiver),
                ])?;
                if joined.is_some() {
                    place.stay = Some(stay);
                    place.joined_seq = Some(r.seq);
                    place.joined_receiver = Some(receiver);
                }
            }
            None => {
                if let Some(stay) = place.stay {
                    let left = (was_present && !after.present).then_some(r);
                    sql.stay_update.execute(params![
                        stay,
                        after.person_email,
                        after.person_display_name,
                        after.is_moderator,
                        left.map(|_| &event_at),
                        left.map(|r| r.seq),
                        left.and_then(|r| r.not_before.as_deref()),
                        left.map(|r| r.source.as_str()),
                        left.map(|_| receiver),
                    ])?;
                    if left.is_some() {
                        place.stay = None;
                        place.joined_seq = None;
                        place.joined_receiver = None;
                    }
                }
            }
        }
        let delta = i64::from(after.present) - i64::from(was_present);
        if delta != 0 {
            rooms.entry(place.texts.room).or_default().members += delta;
        }
        place.last_event_at = event_at;
        place.last_receiver = receiver;
        Ok(())
    }

    /// Writes the memberships held in memory to the batch's tables, and
    /// forgets them.
    pub(super) fn flush_members(&mut self) -> Result<(), IndexError> {
        let Fold {
            sql,
            members,
            places,
            ..
        } = self;
        for m in members.all() {
            let place = &places[&m.membership_id];
            sql.membership.execute(params![
                place.id,
                place.texts.room,
                place.texts.person,
                place.texts.email,
                place.texts.name,
                m.present,
                m.is_moderator,
                m.since,
                place.texts.added_by,
                m.join_source.as_str(),
                place.joined_seq,
                m.last_seq,
                place.last_event_at,
                place.stay,
                place.joined_receiver,
                place.last_receiver,
            ])?;
        }
        self.members = Members::default();
        self.places.clear();
        self.unflushed = 0;
        Ok(())
    }
}
