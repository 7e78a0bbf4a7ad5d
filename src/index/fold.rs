//! Folding records into the index's tables, one transaction (a batch) at
//! a time: each commits with the position it reached.
//!
//! A membership's state is folded by the log's own rule
//! ([`Members::apply`]); a record's event time is `log::roster`'s
//! ([`event_time`]), kept from going back in time within a membership, so
//! a membership's records apply in the log's order. The batch keeps the
//! memberships it touched in memory and writes each back once per flush of
//! [`FLUSH`] records, and the rooms once per batch (or [`ROOMS`] of them);
//! every table but `membership`, `room` and `stay` is only appended to.

use std::collections::{HashMap, HashSet};

use rusqlite::{Connection, OptionalExtension, params};

use super::IndexError;
use super::build::Position;
use super::statements::Statements;
use super::text::Texts;
use crate::clock::Clock;
use crate::log::members::{Change, Member, Members};
use crate::log::reader::RecordView;
use crate::log::record::{Event, Source, format_timestamp};
use crate::log::roster::coverage::Coverage;
use crate::log::roster::event_time;

/// Records whose memberships are held in memory before they are written
/// to the batch's tables: what bounds the memory a batch takes, about
/// 1 KiB per membership, whatever its size in records.
const FLUSH: usize = 20_000;

/// Rooms held in memory before they are written: about 150 bytes each,
/// 10 MiB at most. A busy organisation's rooms are each named many times
/// a batch, and written once for all of them.
const ROOMS: usize = 65_536;

/// How many (room, title) and (email, person) pairs are remembered as
/// already stored: 16 bytes and a slot each, about 1.1 MiB per set.
const PAIRS: usize = 1 << 16;

/// What the index keeps per membership beside the fold's [`Member`].
#[derive(Debug, Clone, Default)]
struct Place {
    /// The `text` id of its membership id: its `membership` row.
    id: i64,
    /// The event time of its last record, never earlier than the one
    /// before: its records apply in the log's order.
    last_event_at: String,
    /// Its open stay, while present.
    stay: Option<i64>,
    /// The join that began the open stay.
    joined_seq: Option<u64>,
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

/// What a batch saw of a room: written back when the batch ends.
#[derive(Debug, Default)]
struct RoomChange {
    /// Its records in this batch, if any named it.
    seen: Option<Seen>,
    /// Members who came less those who left.
    members: i64,
}

#[derive(Debug)]
struct Seen {
    title: Option<i64>,
    first_at: String,
    first_seq: u64,
    last_at: String,
    last_seq: u64,
    baseline_at: Option<String>,
}

/// A catch-up's fold: one batch at a time, from [`Fold::begin`] to
/// [`Fold::commit`].
pub struct Fold<'c> {
    conn: &'c Connection,
    sql: Statements<'c>,
    texts: Texts<'c>,
    /// Where the batch has got to.
    pub at: Position,
    /// Records folded in this batch.
    pub pending: usize,
    /// Records folded since the memberships were written.
    unflushed: usize,
    coverage: Coverage,
    /// The memberships this batch touched, written back at the next
    /// flush: at most one entry per record since the last.
    members: Members,
    places: HashMap<String, Place>,
    /// The rooms this batch touched, at most [`ROOMS`].
    rooms: HashMap<i64, RoomChange>,
    /// (room, title) and (email, person) `text` ids known to be stored.
    titled: HashSet<(i64, i64)>,
    emailed: HashSet<(i64, i64)>,
}

impl<'c> Fold<'c> {
    pub fn new(conn: &'c Connection, texts: usize) -> Result<Self, IndexError> {
        Ok(Fold {
            conn,
            sql: Statements::prepare(conn)?,
            texts: Texts::new(conn, texts)?,
            at: Position::read(conn)?,
            pending: 0,
            unflushed: 0,
            coverage: Coverage::default(),
            members: Members::default(),
            places: HashMap::new(),
            rooms: HashMap::new(),
            titled: HashSet::new(),
            emailed: HashSet::new(),
        })
    }

    /// Starts a batch where the index now is.
    pub fn begin(&mut self) -> Result<(), IndexError> {
        // Immediate: another process catching up waits here, then sees
        // where this one got to and skips those records.
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        self.texts.begin(self.conn)?;
        self.at = Position::read(self.conn)?;
        let stopped_at: Option<String> = self
            .conn
            .query_row(
                "SELECT from_at FROM gap WHERE to_at IS NULL ORDER BY id DESC LIMIT 1",
                [],
                |row| row.get(0),
            )
            .optional()?;
        self.coverage = Coverage::resume(self.at.seq > 0, stopped_at);
        Ok(())
    }

    /// Folds in `r`, whose line is at byte `offset` of `day` and has this
    /// hash.
    pub fn record(
        &mut self,
        r: &RecordView<'_>,
        hash: &str,
        day: &str,
        offset: u64,
    ) -> Result<(), IndexError> {
        self.fold(r)?;
        self.at.seq = r.seq;
        self.at.hash.clear();
        self.at.hash.push_str(hash);
        if self.at.day.as_deref() != Some(day) {
            self.at.day = Some(day.to_string());
        }
        self.at.offset = offset;
        self.pending += 1;
        self.unflushed += 1;
        if self.unflushed >= FLUSH {
            self.flush_members()?;
        }
        if self.rooms.len() >= ROOMS {
            self.flush_rooms()?;
        }
        Ok(())
    }

    fn fold(&mut self, r: &RecordView<'_>) -> Result<(), IndexError> {
        let texts = &mut self.texts;
        let room = texts.id(&r.room_id)?;
        let title = texts.id_of(r.room_title.as_deref())?;
        let person = texts.id(&r.person_id)?;
        let email = texts.id_of(r.person_email.as_deref())?;
        let membership = match self.places.get(r.membership_id.as_ref()) {
            Some(place) => place.id,
            None if r.event.is_membership() && !r.membership_id.is_empty() => {
                self.place(&r.membership_id)?
            }
            None => self.texts.id(&r.membership_id)?,
        };
        let texts = &mut self.texts;
        self.sql.record.execute(params![
            r.seq,
            r.received_at,
            r.event.as_str(),
            room,
            title,
            person,
            email,
            texts.id_of(r.person_display_name.as_deref())?,
            r.is_moderator,
            r.is_monitor,
            membership,
            r.membership_created,
            texts.id_of(r.actor_id.as_deref())?,
            texts.id_of(r.org_id.as_deref())?,
            texts.id_of(r.webhook_id.as_deref())?,
            texts.id_of(r.webhook_name.as_deref())?,
            texts.id(&r.target)?,
            r.source.as_str(),
            r.not_before,
        ])?;
        self.coverage
            .see(r.event, &r.received_at, r.not_before.as_deref());
        if r.event.is_membership() && !r.room_id.is_empty() {
            self.room(r, room, title)?;
        }
        if r.event.is_membership() && !r.membership_id.is_empty() {
            self.membership(r)?;
        }
        if let (Some(address), Some(email)) = (r.person_email.as_deref(), email)
            && !r.person_id.is_empty()
            && remember(&mut self.emailed, (email, person))
        {
            self.sql
                .person_email
                .execute((address.to_lowercase(), &r.person_id))?;
        }
        Ok(())
    }

    /// The membership's place in this batch: loaded with its state if the
    /// index has one. Returns its `text` id.
    fn place(&mut self, membership_id: &str) -> Result<i64, IndexError> {
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

    /// The room's first and last record, latest title and baseline.
    fn room(
        &mut self,
        r: &RecordView<'_>,
        room: i64,
        title: Option<i64>,
    ) -> Result<(), IndexError> {
        let reconciled = r.source == Source::Reconciled;
        let change = self.rooms.entry(room).or_default();
        match &mut change.seen {
            None => {
                change.seen = Some(Seen {
                    title,
                    first_at: r.received_at.to_string(),
                    first_seq: r.seq,
                    last_at: r.received_at.to_string(),
                    last_seq: r.seq,
                    baseline_at: reconciled.then(|| r.received_at.to_string()),
                })
            }
            Some(seen) => {
                seen.title = title.or(seen.title);
                seen.last_at.clear();
                seen.last_at.push_str(&r.received_at);
                seen.last_seq = r.seq;
                if reconciled && seen.baseline_at.is_none() {
                    seen.baseline_at = Some(r.received_at.to_string());
                }
            }
        }
        if let (Some(text), Some(title)) = (r.room_title.as_deref(), title)
            && remember(&mut self.titled, (room, title))
        {
            self.sql
                .room_title
                .execute((text.to_lowercase(), &r.room_id))?;
        }
        Ok(())
    }

    /// The membership's state after `r`, the span it ends and the stay it
    /// begins, changes or ends.
    fn membership(&mut self, r: &RecordView<'_>) -> Result<(), IndexError> {
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
                ])?;
                if joined.is_some() {
                    place.stay = Some(stay);
                    place.joined_seq = Some(r.seq);
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
                    ])?;
                    if left.is_some() {
                        place.stay = None;
                        place.joined_seq = None;
                    }
                }
            }
        }
        let delta = i64::from(after.present) - i64::from(was_present);
        if delta != 0 {
            rooms.entry(place.texts.room).or_default().members += delta;
        }
        place.last_event_at = event_at;
        Ok(())
    }

    /// Writes back what the batch changed, with the position it reached,
    /// and commits; returns that position's seq.
    pub fn commit(&mut self, clock: &dyn Clock) -> Result<u64, IndexError> {
        self.flush_members()?;
        self.flush_rooms()?;
        self.write_position(clock)?;
        self.conn.execute_batch("COMMIT")?;
        self.pending = 0;
        Ok(self.at.seq)
    }

    /// Writes the memberships held in memory to the batch's tables, and
    /// forgets them.
    fn flush_members(&mut self) -> Result<(), IndexError> {
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
            ])?;
        }
        self.members = Members::default();
        self.places.clear();
        self.unflushed = 0;
        Ok(())
    }

    /// Writes the rooms held in memory to the batch's tables, and forgets
    /// them.
    fn flush_rooms(&mut self) -> Result<(), IndexError> {
        for (room, change) in &self.rooms {
            let sql = &mut self.sql;
            match &change.seen {
                Some(seen) => sql.room.execute(params![
                    room,
                    seen.title,
                    seen.first_at,
                    seen.first_seq,
                    seen.last_at,
                    seen.last_seq,
                    change.members,
                    seen.baseline_at,
                ])?,
                None => sql.room_members.execute((room, change.members))?,
            };
        }
        self.rooms.clear();
        Ok(())
    }

    /// The coverage gaps and the position the batch reached.
    fn write_position(&mut self, clock: &dyn Clock) -> Result<(), IndexError> {
        for gap in self.coverage.take_closed() {
            self.conn
                .prepare_cached(
                    "INSERT INTO gap (from_at, to_at, after_crash) VALUES (?1, ?2, ?3)",
                )?
                .execute((&gap.from, &gap.to, gap.after_crash))?;
        }
        self.conn
            .execute("DELETE FROM gap WHERE to_at IS NULL", [])?;
        if let Some(from) = self.coverage.stopped_at() {
            self.conn.execute(
                "INSERT INTO gap (from_at, to_at, after_crash) VALUES (?1, NULL, 0)",
                [from],
            )?;
        }
        self.conn.execute(
            "UPDATE state SET seq = ?1, hash = ?2, day = ?3, offset = ?4, built_at = ?5
             WHERE only = 1",
            params![
                self.at.seq,
                self.at.hash,
                self.at.day,
                self.at.offset,
                format_timestamp(clock.now())
            ],
        )?;
        Ok(())
    }
}

/// A batch that failed, or was given up, is rolled back: the index stays
/// at the position the last commit stored.
impl Drop for Fold<'_> {
    fn drop(&mut self) {
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

/// Whether `pair` is new to `known`, remembering it; the set starts
/// again when full, so a pair may be stored twice, never missed.
fn remember(known: &mut HashSet<(i64, i64)>, pair: (i64, i64)) -> bool {
    if known.contains(&pair) {
        return false;
    }
    if known.len() == PAIRS {
        known.clear();
    }
    known.insert(pair)
}
