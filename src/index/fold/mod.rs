//! Folding records into the index's tables, one transaction (a batch) at
//! a time: each commits with every receiver's position ([`state`]).
//!
//! A row is one event ([`Row`]): the copy given out (its receiver and
//! seq) and every receiver that recorded it. An index of one receiver
//! folds its records in log order ([`Fold::record`]); an index of several
//! folds the merge's events in received order ([`Fold::event`]), so a
//! membership's records from two receivers apply once.
//!
//! A membership's state is folded by the log's own rule
//! ([`Members::apply`]); a record's event time is `log::roster`'s
//! ([`event_time`]), kept from going back in time within a membership, so
//! a membership's records apply in the fold's order. The batch keeps the
//! memberships it touched in memory and writes each back once per flush of
//! [`FLUSH`] records, and the rooms once per batch (or [`ROOMS`] of them);
//! every table but `membership`, `room` and `stay` is only appended to,
//! and `record`'s receivers, which a copy recorded later adds to.

use std::collections::{HashMap, HashSet};

use rusqlite::{Connection, OptionalExtension, params};

mod membership;

use membership::Place;

use crate::clock::Clock;
use crate::index::IndexError;
use crate::index::state::{self, Track};
use crate::index::statements::Statements;
use crate::index::text::Texts;
use crate::log::members::Members;
use crate::log::reader::RecordView;
use crate::log::record::Source;

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

/// The oldest row of the event with identity ?1, received since ?3, that
/// none of the receivers ?2 recorded.
pub(super) const COPY_OF: &str = "SELECT c.id, c.receivers FROM record_copy c
    JOIN record r ON r.id = c.id
    WHERE c.identity = ?1 AND c.receivers & ?2 = 0 AND r.received_at >= ?3
        AND (r.source <> 'webhook' OR r.received_at >= ?4)
    ORDER BY c.id LIMIT 1";

/// Which event a row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    /// Its place in the index's order.
    pub id: u64,
    /// The place of the receiver whose copy it is.
    pub receiver: usize,
    /// That copy's seq, when it is not `id` (an index of several).
    pub seq: Option<u64>,
    /// Every receiver that recorded it, one bit a place.
    pub receivers: u64,
    /// Its identity, while some receiver of the index has not recorded
    /// it.
    pub identity: Option<u128>,
}

impl Row {
    /// A record of the one receiver of an index: its seq is its place.
    pub fn single(seq: u64) -> Self {
        Row {
            id: seq,
            receiver: 0,
            seq: None,
            receivers: 1,
            identity: None,
        }
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
    first_row: u64,
    last_at: String,
    last_row: u64,
    baseline_at: Option<String>,
}

/// A catch-up's fold: one batch at a time, from [`Fold::begin`] to
/// [`Fold::commit`].
pub struct Fold<'c> {
    conn: &'c Connection,
    sql: Statements<'c>,
    texts: Texts<'c>,
    /// Where the batch has got to in each receiver's log, by place.
    pub tracks: Vec<Track>,
    /// The receivers' names, for the sets of them rows hold.
    names: Vec<String>,
    /// The sets of receivers known to have their names stored.
    sets: Vec<u64>,
    /// Records folded in this batch.
    pub pending: usize,
    /// Records folded since the memberships were written.
    unflushed: usize,
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
            // Read where each batch begins ([`Fold::begin`]).
            tracks: Vec::new(),
            names: state::names(conn)?,
            sets: Vec::new(),
            pending: 0,
            unflushed: 0,
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
        self.tracks = state::read(self.conn)?;
        Ok(())
    }

    /// The seq of receiver `place`'s newest record in the index.
    pub fn newest(&self, place: usize) -> u64 {
        self.tracks[place].at.seq
    }

    /// Folds in `r`, a record of the index's one receiver, whose line is
    /// at byte `offset` of `day` and has this hash.
    pub fn record(
        &mut self,
        r: &RecordView<'_>,
        hash: &str,
        day: &str,
        offset: u64,
    ) -> Result<(), IndexError> {
        self.fold(r, Row::single(r.seq))?;
        let track = &mut self.tracks[0];
        track.see(r.event, r.source, &r.received_at, r.not_before.as_deref());
        let at = &mut track.at;
        at.seq = r.seq;
        at.hash.clear();
        at.hash.push_str(hash);
        if at.day.as_deref() != Some(day) {
            at.day = Some(day.to_string());
        }
        at.offset = offset;
        self.counted()
    }

    /// Folds in `r`, an event the merge of several receivers gave out, as
    /// row `row`: the receivers' positions are the caller's to keep
    /// ([`Fold::tracks`]).
    pub fn event(&mut self, r: &RecordView<'_>, row: Row) -> Result<(), IndexError> {
        self.remember_set(row.receivers)?;
        self.fold(r, row)?;
        self.counted()
    }

    /// Adds the receivers `receivers` to row `id`, which holds `before`;
    /// `all` is every receiver of the index: once it has them all, no
    /// copy can be found for it any more.
    pub fn add_receivers(
        &mut self,
        id: u64,
        before: u64,
        receivers: u64,
        all: u64,
    ) -> Result<(), IndexError> {
        let after = before | receivers;
        self.remember_set(after)?;
        self.conn
            .prepare_cached(
                "UPDATE record_copy SET receivers = ?2,
                    identity = CASE WHEN ?2 = ?3 THEN NULL ELSE identity END
                 WHERE id = ?1",
            )?
            .execute(params![id, after as i64, all as i64])?;
        Ok(())
    }

    /// The oldest row of the event `identity` received since `since`
    /// (since `delivered_since` if it was a webhook delivery) that none of
    /// `receivers` recorded: its id and receivers.
    pub fn copy_of(
        &self,
        identity: u128,
        receivers: u64,
        (since, delivered_since): (&str, &str),
    ) -> Result<Option<(u64, u64)>, IndexError> {
        let found = self
            .conn
            .prepare_cached(COPY_OF)?
            .query_row(
                params![
                    &identity.to_le_bytes()[..],
                    receivers as i64,
                    since,
                    delivered_since
                ],
                |row| Ok((row.get(0)?, row.get::<_, i64>(1)? as u64)),
            )
            .optional()?;
        Ok(found)
    }

    /// Stores the names of a set of receivers a row holds.
    fn remember_set(&mut self, mask: u64) -> Result<(), IndexError> {
        if !self.sets.contains(&mask) {
            state::remember_set(self.conn, &self.names, mask)?;
            self.sets.push(mask);
        }
        Ok(())
    }

    /// Counts a record folded in, writing back what the batch holds in
    /// memory once it holds enough.
    fn counted(&mut self) -> Result<(), IndexError> {
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

    fn fold(&mut self, r: &RecordView<'_>, row: Row) -> Result<(), IndexError> {
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
            row.id,
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
        if let Some(seq) = row.seq {
            self.sql.copy.execute(params![
                row.id,
                row.receiver,
                seq,
                row.receivers as i64,
                row.identity.map(|id| id.to_le_bytes().to_vec()),
            ])?;
        }
        if r.event.is_membership() && !r.room_id.is_empty() {
            self.room(r, row.id, room, title)?;
        }
        if r.event.is_membership() && !r.membership_id.is_empty() {
            self.membership(r, row.receiver)?;
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

    /// The room's first and last record, latest title and baseline.
    fn room(
        &mut self,
        r: &RecordView<'_>,
        id: u64,
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
                    first_row: id,
                    last_at: r.received_at.to_string(),
                    last_row: id,
                    baseline_at: reconciled.then(|| r.received_at.to_string()),
                })
            }
            Some(seen) => {
                seen.title = title.or(seen.title);
                seen.last_at.clear();
                seen.last_at.push_str(&r.received_at);
                seen.last_row = id;
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

    /// Writes back what the batch changed, with every receiver's position,
    /// and commits; returns the newest seq (of several receivers, the sum
    /// of theirs).
    pub fn commit(&mut self, clock: &dyn Clock) -> Result<u64, IndexError> {
        self.flush_members()?;
        self.flush_rooms()?;
        state::write(self.conn, &mut self.tracks, clock)?;
        self.conn.execute_batch("COMMIT")?;
        self.pending = 0;
        Ok(self.tracks.iter().map(|t| t.at.seq).sum())
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
                    seen.first_row,
                    seen.last_at,
                    seen.last_row,
                    change.members,
                    seen.baseline_at,
                ])?,
                None => sql.room_members.execute((room, change.members))?,
            };
        }
        self.rooms.clear();
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
