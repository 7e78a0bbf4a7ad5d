//! Bounded answers for the console, read from the public views (`records`,
//! `presence`, `rooms`) with the index's own order beside them
//! (`record_rows`, `stay_rows`): records newest first and a person's
//! stays, each a page at a time with a keyset cursor (the place in that
//! order to go on below: the seq itself in an index of one receiver),
//! never an offset or a total; and a read connection opened without
//! building anything, caught up only when the index lags the durable
//! heads by at most one batch.
//!
//! A page asks for one row more than it shows, to know whether older
//! ones follow. A filter with a room or person id walks that id's
//! records by seq; any other filter (part of a name, a title, an
//! address) walks back through a window of at most [`SCAN_WINDOW`]
//! records and, when the window ends before the page is full, says
//! where it stopped so the next page goes on from there.

use std::path::Path;

use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row};

use super::open::Of;
use super::schema::{Kind, SCHEMA_VERSION};
use super::{Index, IndexError, merged_path, path, state};
use crate::clock::Clock;
use crate::log::record::{Event, Source};
use crate::receiver::Receivers;

/// Rows on one page.
pub const PAGE_ROWS: usize = 50;
/// Records a filter without an id looks through for one page.
pub const SCAN_WINDOW: u64 = 200_000;
/// The most a request catches the index up by itself, as one of
/// catch-up's own batches (`build`) folds at once; a larger lag is the
/// indexer's to close, and the page says how far it has got.
pub const CATCH_UP_AT_MOST: u64 = 20_000;

/// Who a search is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Person {
    /// A person id (the person page).
    Id(String),
    /// A whole address: that address only, any case, as `export --person`.
    Email(String),
    /// Part of an email or display name, already lowercase.
    Part(String),
}

/// Which room a search is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Room {
    /// This room id only (the room page).
    Id(String),
    /// A room id, or part of a title.
    Matching(String),
}

/// What records a search keeps; `None` for any.
#[derive(Debug, Clone, Default)]
pub struct Records {
    pub person: Option<Person>,
    pub room: Option<Room>,
    pub event: Option<Event>,
    pub source: Option<Source>,
    /// Inclusive, `received_at` form.
    pub from: Option<String>,
    /// Exclusive.
    pub to: Option<String>,
}

/// One record as a page lists it.
#[derive(Debug, Clone)]
pub struct RecordRow {
    /// Its place in the index's order: the page's cursor.
    pub key: u64,
    pub seq: u64,
    /// Of several receivers, the one whose seq `seq` is.
    pub receiver: Option<String>,
    pub received_at: String,
    pub event: String,
    pub room_id: String,
    /// The room's latest title (the `rooms` view), else this record's.
    pub room_title: Option<String>,
    pub person_id: String,
    pub person_email: Option<String>,
    pub person_display_name: Option<String>,
    pub source: String,
    pub not_before: Option<String>,
}

/// One page of matching records, newest first.
#[derive(Debug, Default)]
pub struct RecordPage {
    pub rows: Vec<RecordRow>,
    /// The cursor of the next older page, when older records may match.
    pub older: Option<u64>,
    /// The page's search window ended at this place in the index's
    /// order (a seq, of one receiver) before the page was full: older
    /// records are still to be searched.
    pub searched_to: Option<u64>,
    /// Its rows are of several receivers: a seq alone places none.
    pub merged: bool,
}

/// One stay of a person in a room, as the `presence` view has it.
#[derive(Debug, Clone)]
pub struct StayRow {
    /// When it began in the index's order: the page's cursor.
    pub key: u64,
    pub room_id: String,
    pub room_title: Option<String>,
    pub person_email: Option<String>,
    pub person_display_name: Option<String>,
    pub joined_at: Option<String>,
    pub joined_seq: Option<u64>,
    pub left_at: Option<String>,
    pub left_seq: Option<u64>,
    /// Of several receivers, the ones whose seqs the seqs are.
    pub joined_receiver: Option<String>,
    pub left_receiver: Option<String>,
}

/// A page of a person's stays, newest first.
#[derive(Debug, Default)]
pub struct StayPage {
    pub rows: Vec<StayRow>,
    pub older: Option<u64>,
}

/// How far the index is against the durable head at a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Standing {
    /// The newest record the index holds (0: none); of several
    /// receivers, the sum of their newest seqs.
    pub seq: u64,
    /// The durable head's seq (the index's own when the log has none);
    /// of several receivers, the sum of theirs.
    pub head: u64,
    /// It is an index of several receivers.
    pub merged: bool,
}

impl Standing {
    pub fn behind(&self) -> bool {
        self.seq < self.head
    }
}

impl Index {
    /// Opens `DIR/index.sqlite` for reading, building nothing: `None`
    /// when there is none yet, or it is of another schema version (being
    /// rebuilt). The connection may still catch up a small lag
    /// ([`Index::catch_up_near`]), so it is opened for writing too.
    pub fn open_read(dir: &Path) -> Result<Option<Index>, IndexError> {
        let receiver = super::open::one_receiver(dir)?;
        Self::open_read_for(&Of::single(&receiver))
    }

    /// [`Index::open_read`] of the index [`Index::open_of`] opens: also
    /// `None` when it holds other receivers (it is being rebuilt).
    pub fn open_read_of(receivers: &Receivers, home: &Path) -> Result<Option<Index>, IndexError> {
        Self::open_read_for(&Of::receivers(receivers, home))
    }

    fn open_read_for(of: &Of<'_>) -> Result<Option<Index>, IndexError> {
        let file = match of.kind {
            Kind::Single => path(of.home),
            Kind::Merged => merged_path(of.home),
        };
        let conn = match Connection::open_with_flags(
            &file,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        ) {
            Ok(conn) => conn,
            Err(_) if !file.exists() => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        // As long as a catch-up's batch may take, and no longer.
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
        if version != SCHEMA_VERSION {
            return Ok(None);
        }
        if of.kind == Kind::Merged {
            let held = state::names(&conn)?;
            if !held
                .iter()
                .map(String::as_str)
                .eq(of.receivers.iter().map(|r| r.name.as_str()))
            {
                return Ok(None);
            }
        }
        Ok(Some(super::open::index(conn, of)))
    }

    /// Catches up to the durable heads if they are at most
    /// [`CATCH_UP_AT_MOST`] records away; says where the index then is.
    pub fn catch_up_near(&mut self, clock: &dyn Clock) -> Result<Standing, IndexError> {
        let at: Vec<u64> = self.positions()?.iter().map(|at| at.seq).collect();
        let heads: Vec<u64> = self
            .heads()?
            .iter()
            .zip(&at)
            .map(|(&head, &seq)| if head == u64::MAX { seq } else { head })
            .collect();
        let (seq, head) = (at.iter().sum(), heads.iter().sum());
        let merged = self.kind == Kind::Merged;
        if seq < head && head - seq <= CATCH_UP_AT_MOST {
            let caught = self.catch_up_each(&heads, u64::MAX, clock)?;
            return Ok(Standing {
                seq: caught.seq,
                head,
                merged,
            });
        }
        Ok(Standing { seq, head, merged })
    }

    /// The page of records matching `wanted` with seqs below `before`
    /// (the newest page without it).
    pub fn records_page(
        &self,
        wanted: &Records,
        before: Option<u64>,
    ) -> Result<RecordPage, IndexError> {
        let mut sql = Conditions::of(self, wanted)?;
        let Some(sql) = sql.as_mut() else {
            return Ok(RecordPage::default());
        };
        if let Some(before) = before {
            sql.push("n < $1", [before as i64]);
        }
        // Without an id to walk, a window of seqs bounds the walk.
        let floor = if sql.anchored {
            None
        } else {
            let top = match before {
                Some(before) => before,
                None => self.conn.query_row(
                    "SELECT coalesce(max(id), 0) + 1 FROM record",
                    [],
                    |row| row.get(0),
                )?,
            };
            let floor = top.saturating_sub(SCAN_WINDOW).max(1);
            sql.push("n >= $1", [floor as i64]);
            Some(floor).filter(|&floor| floor > 1)
        };
        let mut rows = self.conn.prepare(&page_of(sql))?;
        let merged = self.kind == Kind::Merged;
        let mut found: Vec<RecordRow> = rows
            .query_map(rusqlite::params_from_iter(&sql.params), |row| {
                record_row(row, merged)
            })?
            .collect::<Result<_, _>>()?;
        let mut page = RecordPage {
            merged,
            ..RecordPage::default()
        };
        if found.len() > PAGE_ROWS {
            found.truncate(PAGE_ROWS);
            page.older = found.last().map(|r| r.key);
        } else if let Some(floor) = floor {
            page.older = Some(floor);
            page.searched_to = Some(floor);
        }
        self.latest_titles(&mut found)?;
        page.rows = found;
        Ok(page)
    }

    /// How many records match `wanted`, all of them: for a download,
    /// which reads them all anyway.
    pub fn count_records(&self, wanted: &Records) -> Result<u64, IndexError> {
        let Some(sql) = Conditions::of(self, wanted)? else {
            return Ok(0);
        };
        let count = self.conn.query_row(
            &format!("SELECT count(*) FROM record_rows WHERE {}", sql.clause()),
            rusqlite::params_from_iter(&sql.params),
            |row| row.get(0),
        )?;
        Ok(count)
    }

    /// Up to two rooms that `query` names: by id, or part of a title (any
    /// case); two means "more than one".
    pub fn rooms_matching(&self, query: &str) -> Result<Vec<String>, IndexError> {
        let ids = self
            .conn
            .prepare_cached(
                "SELECT room_id FROM rooms WHERE room_id = ?1 OR instr(lower(title), ?2)
                 ORDER BY +room_id LIMIT 2",
            )?
            .query_map((query, query.to_lowercase()), |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(ids)
    }

    /// Whether the index holds a record of this person.
    pub fn knows_person(&self, person_id: &str) -> Result<bool, IndexError> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM records WHERE person_id = ?1 LIMIT 1")?
            .query_row([person_id], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// The page of the person's stays begun below `before`, newest first.
    pub fn stays_page(&self, person_id: &str, before: Option<u64>) -> Result<StayPage, IndexError> {
        let merged = self.kind == Kind::Merged;
        let mut found: Vec<StayRow> = self
            .conn
            .prepare_cached(&format!(
                "SELECT n, room_id, room_title, person_email, person_display_name, joined_at,
                    joined_seq, left_at, left_seq, joined_receiver, left_receiver
                 FROM stay_rows
                 WHERE person_id = ?1 AND n < ?2
                 ORDER BY n DESC LIMIT {}",
                PAGE_ROWS + 1
            ))?
            // A range, never `?2 IS NULL OR`, so an index on the key
            // starts the walk at the cursor.
            .query_map((person_id, before.map_or(i64::MAX, |b| b as i64)), |row| {
                Ok(StayRow {
                    key: row.get(0)?,
                    room_id: row.get(1)?,
                    room_title: row.get(2)?,
                    person_email: row.get(3)?,
                    person_display_name: row.get(4)?,
                    joined_at: row.get(5)?,
                    joined_seq: row.get(6)?,
                    left_at: row.get(7)?,
                    left_seq: row.get(8)?,
                    joined_receiver: merged.then(|| row.get(9)).transpose()?.flatten(),
                    left_receiver: merged.then(|| row.get(10)).transpose()?.flatten(),
                })
            })?
            .collect::<Result<_, _>>()?;
        let mut page = StayPage::default();
        if found.len() > PAGE_ROWS {
            found.truncate(PAGE_ROWS);
            page.older = found.last().map(|stay| stay.key);
        }
        page.rows = found;
        Ok(page)
    }

    /// Each row's room under its latest title: one lookup per room shown.
    fn latest_titles(&self, rows: &mut [RecordRow]) -> Result<(), IndexError> {
        let mut title = self
            .conn
            .prepare_cached("SELECT title FROM rooms WHERE room_id = ?1")?;
        let mut known: Vec<(String, Option<String>)> = Vec::new();
        for row in rows.iter_mut().filter(|r| !r.room_id.is_empty()) {
            let latest = match known.iter().find(|(id, _)| *id == row.room_id) {
                Some((_, latest)) => latest.clone(),
                None => {
                    let latest: Option<String> = title
                        .query_row([&row.room_id], |r| r.get(0))
                        .optional()?
                        .flatten();
                    known.push((row.room_id.clone(), latest.clone()));
                    latest
                }
            };
            if latest.is_some() {
                row.room_title = latest;
            }
        }
        Ok(())
    }
}

fn record_row(row: &Row<'_>, merged: bool) -> rusqlite::Result<RecordRow> {
    Ok(RecordRow {
        seq: row.get(0)?,
        received_at: row.get(1)?,
        event: row.get(2)?,
        room_id: row.get(3)?,
        room_title: row.get(4)?,
        person_id: row.get(5)?,
        person_email: row.get(6)?,
        person_display_name: row.get(7)?,
        source: row.get(8)?,
        not_before: row.get(9)?,
        key: row.get(10)?,
        receiver: merged.then(|| row.get(11)).transpose()?,
    })
}

/// The newest page of the records `sql` keeps, and one more.
fn page_of(sql: &Conditions) -> String {
    format!(
        "SELECT seq, received_at, event, room_id, room_title, person_id, person_email,
            person_display_name, source, not_before, n, receiver
         FROM record_rows WHERE {} ORDER BY n DESC LIMIT {}",
        sql.clause(),
        PAGE_ROWS + 1
    )
}

/// A search's `WHERE` clause and its parameters, in order.
struct Conditions {
    conditions: Vec<String>,
    params: Vec<Value>,
    /// It names one room or person id: the walk follows that id's records.
    anchored: bool,
}

impl Conditions {
    /// `None` when nothing can match (no room is named by the query).
    fn of(index: &Index, wanted: &Records) -> Result<Option<Self>, IndexError> {
        let mut sql = Conditions {
            conditions: vec!["1".into()],
            params: Vec::new(),
            anchored: false,
        };
        match &wanted.person {
            None => {}
            Some(Person::Id(id)) => {
                sql.push("person_id = $1", [id.clone()]);
                sql.anchored = true;
            }
            // ASCII case folding, as SQLite's own. The walk follows the
            // records of the people ever recorded with the address (any
            // case folds to the same `email_key`), not a window of
            // everyone's: 1.5 s to 8 ms on a 1,000,000-record index.
            Some(Person::Email(address)) => {
                sql.push(
                    "person_id IN (SELECT person_id FROM person_email WHERE email_key = $1)
                        AND person_email = $2 COLLATE NOCASE",
                    [address.to_lowercase(), address.clone()],
                );
                sql.anchored = true;
            }
            Some(Person::Part(part)) => sql.push(
                "(instr(lower(person_email), $1) OR instr(lower(person_display_name), $1))",
                [part.clone()],
            ),
        }
        match &wanted.room {
            None => {}
            Some(Room::Id(id)) => {
                sql.push("room_id = $1", [id.clone()]);
                sql.anchored = true;
            }
            Some(Room::Matching(query)) => match index.rooms_matching(query)?.as_slice() {
                [] => return Ok(None),
                [one] => {
                    sql.push("room_id = $1", [one.clone()]);
                    sql.anchored = true;
                }
                _ => sql.push(
                    "room_id IN (SELECT room_id FROM rooms WHERE room_id = $1 OR instr(lower(title), $2))",
                    [query.clone(), query.to_lowercase()],
                ),
            },
        }
        if let Some(event) = wanted.event {
            sql.push("event = $1", [event.as_str().to_string()]);
        }
        if let Some(source) = wanted.source {
            sql.push("source = $1", [source.as_str().to_string()]);
        }
        if let Some(from) = &wanted.from {
            sql.push("received_at >= $1", [from.clone()]);
        }
        if let Some(to) = &wanted.to {
            sql.push("received_at < $1", [to.clone()]);
        }
        Ok(Some(sql))
    }

    /// Adds `condition`, whose `$1`, `$2`... are `values`.
    fn push<V: Into<Value>, const N: usize>(&mut self, condition: &str, values: [V; N]) {
        let mut condition = condition.to_string();
        for (i, value) in values.into_iter().enumerate() {
            self.params.push(value.into());
            condition =
                condition.replace(&format!("${}", i + 1), &format!("?{}", self.params.len()));
        }
        self.conditions.push(condition);
    }

    fn clause(&self) -> String {
        self.conditions.join(" AND ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::schema::query_plan;
    use rusqlite::types::Value;

    /// An empty index of this schema in `dir`, opened as a page opens it.
    fn empty(dir: &Path) -> Index {
        let conn = Connection::open(path(dir)).unwrap();
        conn.execute_batch(&Kind::Single.create()).unwrap();
        conn.execute_batch(&Kind::Single.indexes()).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)
            .unwrap();
        Index::open_read(dir).unwrap().unwrap()
    }

    fn plan(index: &Index, sql: &str, params: &[Value]) -> String {
        query_plan(&index.conn, sql, rusqlite::params_from_iter(params))
    }

    #[test]
    fn with_fresh_statistics_a_title_search_reads_the_rooms_not_every_text() {
        let temp = tempfile::tempdir().unwrap();
        let mut index = empty(temp.path());
        // A log's proportions: a few rooms, texts by the thousand.
        index
            .conn
            .execute_batch(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)
                 INSERT INTO text (id, key, value) SELECT i, i, 'text ' || i FROM n;
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20)
                 INSERT INTO room (id, title, first_at, first_row, last_at, last_row, members_now)
                 SELECT i, i + 20, '', 0, '', 0, 0 FROM n;",
            )
            .unwrap();
        let search = "SELECT room_id FROM rooms WHERE room_id = ?1 OR instr(lower(title), ?2)";
        let params = [Value::from("r".to_string()), Value::from("t".to_string())];
        let before = plan(&index, search, &params);
        index.optimize().unwrap();
        let after = plan(&index, search, &params);
        assert!(after.contains("SCAN r"), "{after}");
        assert!(!after.contains("SCAN id"), "{after}");
        assert_ne!(before, after, "the statistics changed nothing");
    }

    #[test]
    fn a_search_by_address_walks_that_persons_records_not_a_window_of_everyones() {
        let temp = tempfile::tempdir().unwrap();
        let index = empty(temp.path());
        let wanted = Records {
            person: Some(Person::Email("Ada@Example.com".into())),
            ..Records::default()
        };
        let sql = Conditions::of(&index, &wanted).unwrap().unwrap();
        assert!(sql.anchored);
        let plan = plan(&index, &page_of(&sql), &sql.params);
        assert!(plan.contains("USING INDEX record_person"), "{plan}");
    }
}
