//! Answers from the index: a room's roster at a time with the warnings
//! `log::roster` gives, the rooms, and every stay of a person. Each row
//! names the seqs of the records it rests on, so it can be checked
//! against the log (`rollcall export --from-seq N --to-seq N`); of
//! several receivers, with the receiver each seq is of (`rollcall export
//! --dir ITS_DIR --seq N`).

use rusqlite::{OptionalExtension, Row};
use serde::Serialize;

use super::{Index, IndexError, Kind};
use crate::log::members::{Change, Members};
use crate::log::record::{Event, Record, Source};
use crate::log::roster::coverage::Gap;
use crate::log::roster::{Present, RoomError, roster_warnings, shown_order, uncertain_warning};

/// Why a question could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    Room(#[from] RoomError),
    #[error(transparent)]
    Index(#[from] IndexError),
}

impl From<rusqlite::Error> for QueryError {
    fn from(e: rusqlite::Error) -> Self {
        QueryError::Index(e.into())
    }
}

/// A seq as a row shows it: `12`, or `a:12` when it names its receiver
/// (an index of several).
pub fn qualified(receiver: Option<&str>, seq: u64) -> String {
    match receiver {
        Some(receiver) => format!("{receiver}:{seq}"),
        None => seq.to_string(),
    }
}

/// One room, as the `rooms` view has it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RoomRow {
    pub room_id: String,
    pub title: Option<String>,
    pub first_record_at: String,
    pub last_record_at: String,
    pub members_now: u64,
    pub baseline_at: Option<String>,
}

/// Who was in a room at a time, each member with the seqs it rests on.
pub type Roster = crate::log::roster::Roster<RosterMember>;

/// One member of a roster, with the records it rests on.
#[derive(Debug, Clone, Serialize)]
pub struct RosterMember {
    #[serde(flatten)]
    pub member: Present,
    /// The join that began this stay (`None`: before the log).
    pub joined_seq: Option<u64>,
    /// The newest record of the membership at that time.
    pub last_seq: u64,
    /// Of several receivers, the ones whose seqs these are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub joined_receiver: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_receiver: Option<String>,
}

/// One stay of a person in a room, as the `presence` view has it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Stay {
    pub room_id: String,
    pub room_title: Option<String>,
    pub membership_id: String,
    pub person_id: String,
    pub person_email: Option<String>,
    pub person_display_name: Option<String>,
    pub joined_at: Option<String>,
    pub joined_seq: Option<u64>,
    pub join_source: Option<String>,
    pub left_at: Option<String>,
    pub left_seq: Option<u64>,
    pub left_not_before: Option<String>,
    pub leave_source: Option<String>,
    pub is_moderator: Option<bool>,
    /// Of several receivers, the ones whose seqs `joined_seq` and
    /// `left_seq` are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub joined_receiver: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub left_receiver: Option<String>,
}

const ROOM_COLUMNS: &str =
    "room_id, title, first_record_at, last_record_at, members_now, baseline_at";

/// Every room, by id. `+room_id` keeps SQLite from reading the rooms in
/// order along the index of every text (millions of ids, emails and
/// names, each looked up in `room`): it reads the 10,000 rooms and sorts
/// them, 0.21 s to 0.05 s for `rooms` on a 1,000,000-record index.
pub(super) fn every_room() -> String {
    format!("SELECT {ROOM_COLUMNS} FROM rooms ORDER BY +room_id")
}

fn room_row(row: &Row<'_>) -> rusqlite::Result<RoomRow> {
    Ok(RoomRow {
        room_id: row.get(0)?,
        title: row.get(1)?,
        first_record_at: row.get(2)?,
        last_record_at: row.get(3)?,
        members_now: row.get(4)?,
        baseline_at: row.get(5)?,
    })
}

impl Index {
    /// Every room, by id.
    pub fn rooms(&self) -> Result<Vec<RoomRow>, IndexError> {
        let rows = self
            .conn
            .prepare_cached(&every_room())?
            .query_map([], room_row)?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// The room with id `wanted`, else the one a recorded title names (any
    /// case).
    pub fn find_room(&self, wanted: &str) -> Result<RoomRow, QueryError> {
        let by_id = self
            .conn
            .prepare_cached(&format!(
                "SELECT {ROOM_COLUMNS} FROM rooms WHERE room_id = ?1"
            ))?
            .query_row([wanted], room_row)
            .optional()?;
        if let Some(room) = by_id {
            return Ok(room);
        }
        let ids: Vec<String> = self
            .conn
            .prepare_cached(
                "SELECT DISTINCT room_id FROM room_title WHERE title_key = ?1 ORDER BY room_id",
            )?
            .query_map([wanted.to_lowercase()], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        match ids.as_slice() {
            [] => Err(RoomError::Unknown(wanted.to_string()).into()),
            [id] => Ok(self
                .conn
                .prepare_cached(&format!(
                    "SELECT {ROOM_COLUMNS} FROM rooms WHERE room_id = ?1"
                ))?
                .query_row([id], room_row)?),
            _ => Err(RoomError::Ambiguous {
                title: wanted.to_string(),
                ids,
            }
            .into()),
        }
    }

    /// Who was in `room` at `at` (`received_at` form): the states of its
    /// memberships that had begun by then and had not yet ended.
    pub fn roster(&self, room: &RoomRow, at: &str) -> Result<Roster, IndexError> {
        let mut members: Vec<RosterMember> = self
            .conn
            .prepare_cached(
                "WITH wanted AS (SELECT id FROM text WHERE value = ?1)
                 SELECT person.value, email.value, name.value, s.is_moderator, s.since,
                    added.value, s.join_source, s.joined_seq, s.from_seq, joined.name, last.name
                 FROM (
                    SELECT person, person_email, person_display_name, is_moderator, since,
                        added_by, join_source, joined_seq, from_seq, joined_receiver,
                        from_receiver
                    FROM span WHERE room = (SELECT id FROM wanted) AND to_at > ?2 AND from_at <= ?2
                    UNION ALL
                    SELECT person, person_email, person_display_name, is_moderator, since,
                        added_by, join_source, joined_seq, last_seq, joined_receiver,
                        last_receiver
                    FROM membership
                    WHERE room = (SELECT id FROM wanted) AND present AND last_event_at <= ?2
                 ) s
                 JOIN text person ON person.id = s.person
                 LEFT JOIN text email ON email.id = s.person_email
                 LEFT JOIN text name ON name.id = s.person_display_name
                 LEFT JOIN text added ON added.id = s.added_by
                 LEFT JOIN state joined ON joined.receiver = s.joined_receiver
                 LEFT JOIN state last ON last.receiver = s.from_receiver",
            )?
            .query_map((&room.room_id, at), |row| {
                let source: String = row.get(6)?;
                Ok(RosterMember {
                    member: Present {
                        person_id: row.get(0)?,
                        email: row.get(1)?,
                        name: row.get(2)?,
                        moderator: row.get(3)?,
                        since: row.get(4)?,
                        added_by: row.get(5)?,
                        source: Source::from_name(&source).unwrap_or_default(),
                    },
                    joined_seq: row.get(7)?,
                    last_seq: row.get(8)?,
                    joined_receiver: self.named(row.get(9)?),
                    last_receiver: self.named(row.get(10)?),
                })
            })?
            .collect::<Result<_, _>>()?;
        members.sort_by_cached_key(|m| shown_order(&m.member));
        let warnings = roster_warnings(
            at,
            &self.gaps_at(at)?,
            &room.first_record_at,
            room.baseline_at.as_deref(),
            self.uncertain(&room.room_id, at)?,
        );
        Ok(Roster {
            room_id: room.room_id.clone(),
            title: room.title.clone(),
            at: at.to_string(),
            warnings,
            members,
        })
    }

    /// The coverage gaps that hold `at`, oldest first.
    fn gaps_at(&self, at: &str) -> Result<Vec<Gap>, IndexError> {
        self.gaps_between(at, at)
    }

    /// The coverage gaps that overlap `from`..`to`, oldest first.
    pub fn gaps_between(&self, from: &str, to: &str) -> Result<Vec<Gap>, IndexError> {
        let gaps = self
            .conn
            .prepare_cached(
                "SELECT from_at, to_at, after_crash FROM coverage_gap
                 WHERE from_at < ?2 AND (to_at IS NULL OR to_at > ?1) ORDER BY id",
            )?
            .query_map((from, to), |row| {
                Ok(Gap {
                    from: row.get(0)?,
                    to: row.get(1)?,
                    after_crash: row.get(2)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(gaps)
    }

    /// The warnings for the room's reconciled changes that `at` may lie
    /// before or after, in log order.
    fn uncertain(&self, room_id: &str, at: &str) -> Result<Vec<String>, IndexError> {
        let found = self
            .conn
            .prepare_cached(
                "SELECT r.id, r.received_at, r.event, person.value, email.value, name.value,
                    r.not_before
                 FROM record r
                 JOIN text person ON person.id = r.person
                 LEFT JOIN text email ON email.id = r.person_email
                 LEFT JOIN text name ON name.id = r.person_display_name
                 WHERE r.room = (SELECT id FROM text WHERE value = ?1)
                    AND r.source = 'reconciled' AND r.event <> 'joined'
                    AND r.not_before IS NOT NULL
                 ORDER BY r.id",
            )?
            .query_map([room_id], |row| {
                let event: String = row.get(2)?;
                let mut r = Record::receiver(Event::Left, row.get(6)?);
                r.seq = row.get(0)?;
                r.received_at = row.get(1)?;
                r.event = Event::from_name(&event).unwrap_or(Event::Left);
                r.person_id = row.get(3)?;
                r.person_email = row.get(4)?;
                r.person_display_name = row.get(5)?;
                r.source = Source::Reconciled;
                Ok(r)
            })?
            .filter_map(|r| r.map(|r| uncertain_warning(at, &r)).transpose())
            .collect::<Result<_, _>>()?;
        Ok(found)
    }

    /// Every stay of the person with this id or email (any case) that
    /// overlaps `from` (inclusive) .. `to` (exclusive), oldest first.
    pub fn history(
        &self,
        person: &str,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<Vec<Stay>, IndexError> {
        let stays = self
            .conn
            .prepare_cached(
                "SELECT room_id, room_title, membership_id, person_id, person_email,
                    person_display_name, joined_at, joined_seq, join_source, left_at, left_seq,
                    left_not_before, leave_source, is_moderator, joined_receiver, left_receiver
                 FROM stay_rows
                 WHERE person_id IN
                        (SELECT ?1 UNION SELECT person_id FROM person_email WHERE email_key = ?2)
                    AND (?3 IS NULL OR left_at IS NULL OR left_at >= ?3)
                    AND (?4 IS NULL OR joined_at IS NULL OR joined_at < ?4)
                 ORDER BY coalesce(joined_at, left_at), n",
            )?
            .query_map((person, person.to_lowercase(), from, to), |row| {
                Ok(Stay {
                    room_id: row.get(0)?,
                    room_title: row.get(1)?,
                    membership_id: row.get(2)?,
                    person_id: row.get(3)?,
                    person_email: row.get(4)?,
                    person_display_name: row.get(5)?,
                    joined_at: row.get(6)?,
                    joined_seq: row.get(7)?,
                    join_source: row.get(8)?,
                    left_at: row.get(9)?,
                    left_seq: row.get(10)?,
                    left_not_before: row.get(11)?,
                    leave_source: row.get(12)?,
                    is_moderator: row.get(13)?,
                    joined_receiver: self.named(row.get(14)?),
                    left_receiver: self.named(row.get(15)?),
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(stays)
    }
}

impl Index {
    /// A receiver's name, as a row of an index of several receivers names
    /// it; of one receiver, rows name none, and read as they always did.
    fn named(&self, name: Option<String>) -> Option<String> {
        name.filter(|_| self.kind == Kind::Merged)
    }

    /// Every membership of room `room_id` as its records in the index
    /// leave it, folded by [`Members::apply`] (the fold `roster --at` and
    /// the writer's state share), names and emails included: what the
    /// roster diff compares Webex's listing with. From the public
    /// `records` view, through its index on the room.
    pub fn room_members(&self, room_id: &str) -> Result<Members, IndexError> {
        let mut statement = self.conn.prepare(
            "SELECT seq, received_at, event, source, person_id, person_email, \
             person_display_name, is_moderator, membership_id, membership_created, \
             actor_id, not_before FROM records WHERE room_id = ?1 ORDER BY seq",
        )?;
        let mut rows = statement.query([room_id])?;
        let mut members = Members::default();
        while let Some(row) = rows.next()? {
            let text = |i| row.get::<_, Option<String>>(i);
            let (event, source) = (text(2)?.unwrap_or_default(), text(3)?.unwrap_or_default());
            let (Some(event), Some(source)) =
                (Event::from_name(&event), Source::from_name(&source))
            else {
                continue;
            };
            let (received_at, person_id) =
                (text(1)?.unwrap_or_default(), text(4)?.unwrap_or_default());
            let (email, name) = (text(5)?, text(6)?);
            let membership_id = text(8)?.unwrap_or_default();
            let (created, actor, not_before) = (text(9)?, text(10)?, text(11)?);
            members.apply(Change {
                seq: row.get(0)?,
                received_at: &received_at,
                event,
                source,
                room_id,
                person_id: &person_id,
                person_email: email.as_deref(),
                person_display_name: name.as_deref(),
                is_moderator: row.get(7)?,
                membership_id: &membership_id,
                membership_created: created.as_deref(),
                actor_id: actor.as_deref(),
                not_before: not_before.as_deref(),
            });
        }
        Ok(members)
    }
}
