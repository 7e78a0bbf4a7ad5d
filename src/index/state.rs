//! Each receiver of an index: its name, where the index has got to in
//! its log, and when it was not receiving. A catch-up reads these when a
//! batch begins ([`read`]) and writes them back with it ([`write`]), so a
//! crash leaves every receiver's position, and the gaps, as of one
//! commit. The index's own coverage gaps (`coverage_gap`) are rewritten
//! from every receiver's whenever one changes: one receiver's own, or
//! where every receiver was down ([`coverage::shared`]).

use rusqlite::{Connection, OptionalExtension, params};

use super::build::Position;
use crate::clock::Clock;
use crate::log::record::{Event, Source, format_timestamp};
use crate::log::roster::coverage::{self, Coverage, Gap, Heard};

/// One receiver, as a catch-up follows it.
#[derive(Debug, Clone)]
pub struct Track {
    /// The newest record of it the index holds.
    pub at: Position,
    /// Its starts and stops since the batch began.
    pub coverage: Coverage,
    /// `received_at` of its first record.
    pub first_at: Option<String>,
    /// `received_at` of its last record.
    last_at: Option<String>,
    /// `received_at` of its last webhook delivery of a membership event.
    last_delivery_at: Option<String>,
    /// Its last record came in this batch.
    moved: bool,
    /// Its clean stop not followed by a start, as the batch found it.
    stopped_at: Option<String>,
    /// Its first record came in this batch.
    began: bool,
}

impl Track {
    /// Takes the receiver's next record, in its log's order.
    pub fn see(
        &mut self,
        event: Event,
        source: Source,
        received_at: &str,
        not_before: Option<&str>,
    ) {
        self.coverage.see(event, received_at, not_before);
        self.last_at = Some(received_at.to_string());
        if event.is_membership() && source == Source::Webhook {
            self.last_delivery_at = Some(received_at.to_string());
        }
        self.moved = true;
        if self.first_at.is_none() {
            self.first_at = Some(received_at.to_string());
            self.began = true;
        }
    }
}

/// Every receiver's track, by place, as the last commit left them.
pub fn read(conn: &Connection) -> rusqlite::Result<Vec<Track>> {
    let mut rows = conn.prepare_cached(
        "SELECT receiver, seq, hash, day, offset, first_at, last_at, last_delivery_at,
            (SELECT from_at FROM gap WHERE gap.receiver = state.receiver AND to_at IS NULL
             ORDER BY id DESC LIMIT 1)
         FROM state ORDER BY receiver",
    )?;
    let tracks = rows
        .query_map([], |row| {
            let at = Position {
                seq: row.get(1)?,
                hash: row.get(2)?,
                day: row.get(3)?,
                offset: row.get(4)?,
            };
            let stopped_at: Option<String> = row.get(8)?;
            Ok(Track {
                coverage: Coverage::resume(at.seq > 0, stopped_at.clone()),
                at,
                first_at: row.get(5)?,
                last_at: row.get(6)?,
                last_delivery_at: row.get(7)?,
                moved: false,
                stopped_at,
                began: false,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(tracks)
}

/// Writes every receiver's position and gaps, and the index's gaps when
/// a receiver's changed.
pub fn write(conn: &Connection, tracks: &mut [Track], clock: &dyn Clock) -> rusqlite::Result<()> {
    let built_at = format_timestamp(clock.now());
    // Of several receivers, where each log ends moves the shared gaps
    // ([`coverage::shared`]).
    let mut changed = tracks.len() > 1 && tracks.iter().any(|t| t.moved);
    for (place, track) in tracks.iter_mut().enumerate() {
        track.moved = false;
        let closed = track.coverage.take_closed();
        let stopped_at = track.coverage.stopped_at().map(str::to_string);
        if !closed.is_empty() || stopped_at != track.stopped_at || track.began {
            changed = true;
            for gap in &closed {
                conn.prepare_cached(
                    "INSERT INTO gap (receiver, from_at, to_at, after_crash)
                     VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![place, gap.from, gap.to, gap.after_crash])?;
            }
            conn.prepare_cached("DELETE FROM gap WHERE receiver = ?1 AND to_at IS NULL")?
                .execute([place])?;
            if let Some(from) = &stopped_at {
                conn.prepare_cached(
                    "INSERT INTO gap (receiver, from_at, to_at, after_crash)
                     VALUES (?1, ?2, NULL, 0)",
                )?
                .execute(params![place, from])?;
            }
            track.stopped_at = stopped_at;
            track.began = false;
        }
        conn.prepare_cached(
            "UPDATE state SET seq = ?2, hash = ?3, day = ?4, offset = ?5, first_at = ?6,
                last_at = ?7, last_delivery_at = ?8, built_at = ?9
             WHERE receiver = ?1",
        )?
        .execute(params![
            place,
            track.at.seq,
            track.at.hash,
            track.at.day,
            track.at.offset,
            track.first_at,
            track.last_at,
            track.last_delivery_at,
            built_at
        ])?;
    }
    if changed {
        shared_gaps(conn)?;
    }
    Ok(())
}

/// Rewrites `coverage_gap` from every receiver's first and last records,
/// last delivery and gaps.
fn shared_gaps(conn: &Connection) -> rusqlite::Result<()> {
    type Spans = (Option<String>, Option<String>, Option<String>, Vec<Gap>);
    let mut receivers: Vec<Spans> = conn
        .prepare_cached("SELECT first_at, last_at, last_delivery_at FROM state ORDER BY receiver")?
        .query_map([], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, Vec::new()))
        })?
        .collect::<Result<_, _>>()?;
    let mut gaps = conn.prepare_cached(
        "SELECT receiver, from_at, to_at, after_crash FROM gap ORDER BY receiver, id",
    )?;
    let mut rows = gaps.query([])?;
    while let Some(row) = rows.next()? {
        let place: usize = row.get(0)?;
        if let Some((_, _, _, gaps)) = receivers.get_mut(place) {
            gaps.push(Gap {
                from: row.get(1)?,
                to: row.get(2)?,
                after_crash: row.get(3)?,
            });
        }
    }
    let of: Vec<Heard<'_>> = receivers
        .iter_mut()
        .map(|(first_at, last_at, last_delivery_at, gaps)| Heard {
            first_at: first_at.as_deref(),
            last_at: last_at.as_deref(),
            last_delivery_at: last_delivery_at.as_deref(),
            gaps: std::mem::take(gaps),
        })
        .collect();
    conn.execute("DELETE FROM coverage_gap", [])?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO coverage_gap (from_at, to_at, after_crash) VALUES (?1, ?2, ?3)",
    )?;
    for gap in coverage::shared(&of) {
        insert.execute(params![gap.from, gap.to, gap.after_crash])?;
    }
    Ok(())
}

/// Makes the state of a new, empty index of these receivers, in order.
pub fn create(
    conn: &Connection,
    names: &[&str],
    version: i64,
    clock: &dyn Clock,
) -> rusqlite::Result<()> {
    let built_at = format_timestamp(clock.now());
    for (place, name) in names.iter().enumerate() {
        conn.execute(
            "INSERT INTO state (receiver, name, seq, hash, day, offset, first_at, last_at,
                last_delivery_at, built_at, schema_version)
             VALUES (?1, ?2, 0, '', NULL, 0, NULL, NULL, NULL, ?3, ?4)",
            params![place, name, built_at, version],
        )?;
    }
    Ok(())
}

/// The receivers' names, by place.
pub fn names(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    conn.prepare_cached("SELECT name FROM state ORDER BY receiver")?
        .query_map([], |row| row.get(0))?
        .collect()
}

/// Names the receivers anew (an index of one receiver whose directory
/// got a name since), with every set of them the index holds.
pub fn rename(conn: &Connection, names: &[&str]) -> rusqlite::Result<()> {
    for (place, name) in names.iter().enumerate() {
        conn.execute(
            "UPDATE state SET name = ?2 WHERE receiver = ?1",
            params![place, name],
        )?;
    }
    let masks: Vec<i64> = conn
        .prepare("SELECT mask FROM receiver_set")?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    for mask in masks {
        conn.execute(
            "UPDATE receiver_set SET names = ?2 WHERE mask = ?1",
            params![mask, set_names(names, mask as u64)],
        )?;
    }
    Ok(())
}

/// The names of the receivers in `mask`, as the JSON array the `records`
/// view shows.
pub fn set_names(names: &[impl AsRef<str>], mask: u64) -> String {
    let chosen: Vec<&str> = names
        .iter()
        .enumerate()
        .filter(|(place, _)| mask & (1 << place) != 0)
        .map(|(_, name)| name.as_ref())
        .collect();
    serde_json::to_string(&chosen).expect("names always serialise")
}

/// Stores the names of the set `mask` unless they are stored.
pub fn remember_set(conn: &Connection, names: &[String], mask: u64) -> rusqlite::Result<()> {
    let known = conn
        .prepare_cached("SELECT 1 FROM receiver_set WHERE mask = ?1")?
        .query_row([mask as i64], |_| Ok(()))
        .optional()?
        .is_some();
    if !known {
        conn.prepare_cached("INSERT INTO receiver_set (mask, names) VALUES (?1, ?2)")?
            .execute(params![mask as i64, set_names(names, mask)])?;
    }
    Ok(())
}
