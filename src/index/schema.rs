//! The index's tables (free to change with [`SCHEMA_VERSION`]) and the
//! public views over them, whose names and columns are a contract with
//! anyone who queries `DIR/index.sqlite` (or `DIR/merged.sqlite`) with a
//! SQLite client.
//!
//! Every long text a record repeats (room, person, membership, webhook,
//! org and actor ids, emails, names, titles, targets) is kept once in
//! `text`, and the other tables hold its integer id: a Webex id is about
//! 90 bytes, its id two or three. The views join the texts back, so a
//! query of a view by `room_id`, `person_id` or `membership_id` finds the
//! text by its value, then the rows by its id, both through indexes.
//!
//! An index holds one receiver's log ([`Kind::Single`]) or several
//! receivers' logs merged ([`Kind::Merged`]). The tables are the same;
//! a row of `record` is one event, keyed by the index's own order: the
//! seq itself in an index of one receiver (whose `records` view reads
//! its seq from that key, through the table's own b-tree), the order the
//! merge gave the events out in an index of several, where `record_copy`
//! says which receiver's copy (and seq) each is and which receivers
//! recorded it. An index of one receiver leaves `record_copy` empty, so
//! its rows are as small, and its build as fast, as before it had
//! receivers. A receiver is a small integer, its place among the index's
//! receivers; a set of receivers a bitmask of places.

/// Bumped whenever a table or view changes: an index of another version is
/// rebuilt, never migrated, since the log can always make it again.
pub const SCHEMA_VERSION: i64 = 4;

/// What an index holds: one receiver's log, or several merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `DIR/index.sqlite`: one receiver, every record a row keyed by its
    /// seq.
    Single,
    /// `FIRSTDIR/merged.sqlite`: several receivers, every event one row
    /// whichever receivers recorded it.
    Merged,
}

impl Kind {
    /// Every table and view of an index of this kind, created in one
    /// transaction.
    pub fn create(self) -> String {
        // Where `record_rows` reads a row's seq, its receiver and the
        // receivers that recorded it from: of one receiver, the row's key,
        // the first receiver and the set of it alone.
        let (seq, copy, receiver, receivers) = match self {
            Kind::Single => ("r.id", "", "0", "1"),
            Kind::Merged => (
                "c.seq",
                "JOIN record_copy c ON c.id = r.id",
                "c.receiver",
                "c.receivers",
            ),
        };
        CREATE
            .replace("{seq}", seq)
            .replace("{copy}", copy)
            .replace("{receiver}", receiver)
            .replace("{receivers}", receivers)
    }

    /// The indexes only answers read ([`INDEXES`]), and for an index of
    /// several receivers the one that finds a copy's seq.
    pub fn indexes(self) -> String {
        match self {
            Kind::Single => INDEXES.to_string(),
            Kind::Merged => format!("{INDEXES}{MERGED_INDEXES}"),
        }
    }
}

/// Every table and view; `{seq}`, `{copy}`, `{receiver}` and
/// `{receivers}` are where `record_rows` reads a row's copy from
/// ([`Kind::create`]). The indexes the fold does not read while building
/// are in [`INDEXES`].
const CREATE: &str = r#"
-- `key` is the text's SHA-256 truncated to 64 bits: the fold finds a text
-- by key and value, so a build needs no index of the long values.
CREATE TABLE text (
    id INTEGER PRIMARY KEY,
    key INTEGER NOT NULL,
    value TEXT NOT NULL
);
CREATE INDEX text_key ON text (key);

-- One row per event, by the index's own order (`id`: the seq in an index
-- of one receiver). The columns named like the CSV's but ending in their
-- kind (room, person, membership, ...) are `text` ids.
CREATE TABLE record (
    id INTEGER PRIMARY KEY,
    received_at TEXT NOT NULL,
    event TEXT NOT NULL,
    room INTEGER NOT NULL,
    room_title INTEGER,
    person INTEGER NOT NULL,
    person_email INTEGER,
    person_display_name INTEGER,
    is_moderator INTEGER,
    is_monitor INTEGER,
    membership INTEGER NOT NULL,
    membership_created TEXT,
    actor INTEGER,
    org INTEGER,
    webhook INTEGER,
    webhook_name INTEGER,
    target INTEGER NOT NULL,
    source TEXT NOT NULL,
    not_before TEXT
);

-- Of an index of several receivers, by `record` id: the row is the copy
-- receiver `receiver` recorded as `seq`, and `receivers` every receiver
-- that recorded the event, one bit a receiver. `identity` is the event's
-- (`log::merge::identity`, 16 bytes) while some receiver of the index has
-- not recorded it: a copy that receiver records later (a reconciliation
-- after it was down) finds the row by it. NULL once every receiver has.
CREATE TABLE record_copy (
    id INTEGER PRIMARY KEY,
    receiver INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    receivers INTEGER NOT NULL,
    identity BLOB
);
CREATE INDEX record_copy_identity ON record_copy (identity) WHERE identity IS NOT NULL;

-- One row per stay of a membership in a room (the presence view).
CREATE TABLE stay (
    id INTEGER PRIMARY KEY,
    room INTEGER NOT NULL,
    membership INTEGER NOT NULL,
    person INTEGER NOT NULL,
    person_email TEXT,
    person_display_name TEXT,
    joined_at TEXT,
    joined_seq INTEGER,
    join_source TEXT,
    left_at TEXT,
    left_seq INTEGER,
    left_not_before TEXT,
    leave_source TEXT,
    is_moderator INTEGER,
    -- The receivers whose seqs `joined_seq` and `left_seq` are.
    joined_receiver INTEGER,
    left_receiver INTEGER
);

-- Each membership as the log leaves it, by the `text` id of its
-- membership id, to go on folding from. A present one is also the state
-- that lasts: the open span of a roster, from the event time of its last
-- record (`last_event_at`, never earlier than the one before) on.
CREATE TABLE membership (
    id INTEGER PRIMARY KEY,
    room INTEGER NOT NULL,
    person INTEGER NOT NULL,
    person_email INTEGER,
    person_display_name INTEGER,
    present INTEGER NOT NULL,
    is_moderator INTEGER,
    since TEXT,
    added_by INTEGER,
    join_source TEXT NOT NULL,
    joined_seq INTEGER,
    last_seq INTEGER NOT NULL,
    last_event_at TEXT NOT NULL,
    stay INTEGER,
    joined_receiver INTEGER,
    last_receiver INTEGER NOT NULL
);

-- One row per state of a membership that has ended: from the record that
-- made it (from_at/from_seq) to the next record of that membership
-- (to_at). A roster at T is the spans of the room holding T, and the
-- present memberships whose last record is at or before T.
CREATE TABLE span (
    id INTEGER PRIMARY KEY,
    room INTEGER NOT NULL,
    person INTEGER NOT NULL,
    person_email INTEGER,
    person_display_name INTEGER,
    is_moderator INTEGER,
    since TEXT,
    added_by INTEGER,
    join_source TEXT NOT NULL,
    joined_seq INTEGER,
    from_at TEXT NOT NULL,
    from_seq INTEGER NOT NULL,
    to_at TEXT NOT NULL,
    joined_receiver INTEGER,
    from_receiver INTEGER NOT NULL
);

-- By the `text` id of its room id; `first_row` and `last_row` are `record`
-- ids.
CREATE TABLE room (
    id INTEGER PRIMARY KEY,
    title INTEGER,
    first_at TEXT NOT NULL,
    first_row INTEGER NOT NULL,
    last_at TEXT NOT NULL,
    last_row INTEGER NOT NULL,
    members_now INTEGER NOT NULL,
    baseline_at TEXT
);

-- Every title a room was recorded with, by its lower case, for --room
-- and a title search (`WHERE title_key >= ?1 AND title_key < ?2` for a
-- prefix).
CREATE TABLE room_title (
    title_key TEXT NOT NULL,
    room_id TEXT NOT NULL,
    PRIMARY KEY (title_key, room_id)
) WITHOUT ROWID;

-- Every person id an email was recorded for, by its lower case.
CREATE TABLE person_email (
    email_key TEXT NOT NULL,
    person_id TEXT NOT NULL,
    PRIMARY KEY (email_key, person_id)
) WITHOUT ROWID;

-- Each receiver's own coverage gaps, from its own start and stop records.
CREATE TABLE gap (
    id INTEGER PRIMARY KEY,
    receiver INTEGER NOT NULL,
    from_at TEXT NOT NULL,
    to_at TEXT,
    after_crash INTEGER NOT NULL
);

-- The index's coverage gaps: the receiver's own in an index of one, the
-- ones every receiver shares in an index of several; rewritten from
-- `gap` whenever a receiver's change.
CREATE TABLE coverage_gap (
    id INTEGER PRIMARY KEY,
    from_at TEXT NOT NULL,
    to_at TEXT,
    after_crash INTEGER NOT NULL
);

-- One row per receiver, by its place among the index's receivers.
CREATE TABLE state (
    receiver INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL,
    -- Where the record at seq is: its UTC day, and the byte offset of its
    -- line in that day's (uncompressed) file. Catching up reads on from
    -- there, and opening checks that line still has this hash.
    day TEXT,
    offset INTEGER NOT NULL,
    -- `received_at` of the receiver's first record: it was down before.
    first_at TEXT,
    -- `received_at` of its last record, and of its last webhook delivery
    -- of a membership event: of several receivers, one whose log ends
    -- without a stop before another's delivery was down after it.
    last_at TEXT,
    last_delivery_at TEXT,
    built_at TEXT NOT NULL,
    schema_version INTEGER NOT NULL
);

-- The names of each set of receivers a row holds, as a JSON array.
CREATE TABLE receiver_set (
    mask INTEGER PRIMARY KEY,
    names TEXT NOT NULL
);

-- `records` with the index's own order (`n`), for the console's pages.
CREATE VIEW record_rows AS
SELECT r.id AS n, {seq} AS seq, r.received_at, r.event, room.value AS room_id,
       title.value AS room_title, person.value AS person_id,
       email.value AS person_email, name.value AS person_display_name,
       r.is_moderator, r.is_monitor, membership.value AS membership_id,
       r.membership_created, actor.value AS actor_id, org.value AS org_id,
       webhook.value AS webhook_id, webhook_name.value AS webhook_name,
       target.value AS target, r.source, r.not_before,
       substr(r.received_at, 1, 10) AS day, holder.name AS receiver,
       held.names AS receivers
FROM record r
{copy}
JOIN text room ON room.id = r.room
JOIN text person ON person.id = r.person
JOIN text membership ON membership.id = r.membership
JOIN text target ON target.id = r.target
LEFT JOIN text title ON title.id = r.room_title
LEFT JOIN text email ON email.id = r.person_email
LEFT JOIN text name ON name.id = r.person_display_name
LEFT JOIN text actor ON actor.id = r.actor
LEFT JOIN text org ON org.id = r.org
LEFT JOIN text webhook ON webhook.id = r.webhook
LEFT JOIN text webhook_name ON webhook_name.id = r.webhook_name
LEFT JOIN state holder ON holder.receiver = {receiver}
LEFT JOIN receiver_set held ON held.mask = {receivers};

CREATE VIEW records AS
SELECT seq, received_at, event, room_id, room_title, person_id, person_email,
       person_display_name, is_moderator, is_monitor, membership_id,
       membership_created, actor_id, org_id, webhook_id, webhook_name, target,
       source, not_before, day, receiver, receivers
FROM record_rows;

-- `presence` with the order the stays began in (`n`), for the console.
CREATE VIEW stay_rows AS
SELECT s.id AS n, room.value AS room_id, title.value AS room_title,
       membership.value AS membership_id, person.value AS person_id,
       s.person_email, s.person_display_name, s.joined_at, s.joined_seq,
       joined.name AS joined_receiver, s.join_source, s.left_at, s.left_seq,
       left_by.name AS left_receiver, s.left_not_before, s.leave_source,
       s.is_moderator
FROM stay s
JOIN text room ON room.id = s.room
JOIN text membership ON membership.id = s.membership
JOIN text person ON person.id = s.person
LEFT JOIN room r ON r.id = s.room
LEFT JOIN text title ON title.id = r.title
LEFT JOIN state joined ON joined.receiver = s.joined_receiver
LEFT JOIN state left_by ON left_by.receiver = s.left_receiver;

CREATE VIEW presence AS
SELECT room_id, room_title, membership_id, person_id, person_email,
       person_display_name, joined_at, joined_seq, joined_receiver, join_source,
       left_at, left_seq, left_receiver, left_not_before, leave_source,
       is_moderator
FROM stay_rows;

CREATE VIEW rooms AS
SELECT id.value AS room_id, title.value AS title, r.first_at AS first_record_at,
       r.last_at AS last_record_at, r.members_now, r.baseline_at
FROM room r
JOIN text id ON id.id = r.id
LEFT JOIN text title ON title.id = r.title;

CREATE VIEW coverage_gaps AS
SELECT from_at, to_at, after_crash FROM coverage_gap;

CREATE VIEW index_state AS
SELECT name AS receiver, seq, hash, built_at, schema_version FROM state
ORDER BY state.receiver;
"#;

/// The indexes that only answers read. Maintaining them record by record
/// would make a first build write each of their pages many times over, so
/// a catch-up creates whichever are missing when it ends, each from one
/// sort of its table; from then on they are kept current with the tables.
/// A view queried before then (a first build still under way) is answered
/// the same, only more slowly.
const INDEXES: &str = r#"
CREATE UNIQUE INDEX IF NOT EXISTS text_value ON text (value);
CREATE INDEX IF NOT EXISTS record_room ON record (room);
CREATE INDEX IF NOT EXISTS record_person ON record (person);
CREATE INDEX IF NOT EXISTS record_membership ON record (membership);
-- The reconciled changes a roster may have to warn about.
CREATE INDEX IF NOT EXISTS record_uncertain ON record (room)
    WHERE source = 'reconciled' AND event <> 'joined' AND not_before IS NOT NULL;
CREATE INDEX IF NOT EXISTS stay_room ON stay (room);
CREATE INDEX IF NOT EXISTS stay_person ON stay (person);
CREATE INDEX IF NOT EXISTS span_room ON span (room, to_at);
CREATE INDEX IF NOT EXISTS membership_present ON membership (room) WHERE present;
"#;

/// An index of several receivers finds a copy by its seq (`records WHERE
/// seq = N`, what `rollcall export --dir D --seq N` prints). An index of
/// one has its seqs in `record`'s own b-tree, and no such index to make.
const MERGED_INDEXES: &str = r#"
CREATE INDEX IF NOT EXISTS record_copy_seq ON record_copy (seq, receiver);
"#;

/// The public views, and the columns `index --check` compares (all but
/// when the index was built).
pub const VIEWS: [(&str, &str); 5] = [
    ("records", "*"),
    ("presence", "*"),
    ("rooms", "*"),
    ("coverage_gaps", "*"),
    ("index_state", "receiver, seq, hash, schema_version"),
];

/// SQLite's plan for `sql` with `params`, a step a line: for the tests
/// that hold the queries to their indexes.
#[cfg(test)]
pub(super) fn query_plan(
    conn: &rusqlite::Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> String {
    let mut explained = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let steps: Vec<String> = explained
        .query_map(params, |row| row.get(3))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    steps.join("\n")
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;

    fn plan(conn: &Connection, sql: &str) -> String {
        query_plan(conn, sql, [])
    }

    fn empty(kind: Kind) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(&kind.create()).unwrap();
        conn.execute_batch(&kind.indexes()).unwrap();
        conn
    }

    /// Through an index, without sorting: what a query of a long log
    /// must stay.
    fn indexed(conn: &Connection, sql: &str) {
        let plan = plan(conn, sql);
        assert!(
            !plan.contains("SCAN") && !plan.contains("TEMP B-TREE"),
            "{sql}\n{plan}"
        );
    }

    #[test]
    fn the_views_are_searched_by_id_and_paged_in_the_index_order_through_indexes() {
        for kind in [Kind::Single, Kind::Merged] {
            let conn = empty(kind);
            for sql in [
                "SELECT * FROM record_rows WHERE room_id = 'r' AND n < 9 ORDER BY n DESC LIMIT 50",
                "SELECT * FROM record_rows WHERE person_id = 'p' AND n < 9 ORDER BY n DESC LIMIT 50",
                "SELECT * FROM record_rows WHERE n BETWEEN 3 AND 9",
                "SELECT * FROM records WHERE membership_id = 'm'",
                "SELECT * FROM presence WHERE room_id = 'r'",
                "SELECT * FROM presence WHERE person_id = 'p'",
                "SELECT * FROM stay_rows WHERE person_id = 'p' AND n < 9 ORDER BY n DESC LIMIT 50",
                "SELECT * FROM rooms WHERE room_id = 'r'",
                "SELECT * FROM records WHERE seq = 7",
            ] {
                indexed(&conn, sql);
            }
            let newest = plan(&conn, "SELECT * FROM record_rows ORDER BY n DESC LIMIT 50");
            assert!(!newest.contains("TEMP B-TREE"), "{newest}");
        }
    }

    #[test]
    fn an_index_of_one_receiver_pages_its_records_by_seq_through_its_own_key() {
        let conn = empty(Kind::Single);
        for sql in [
            "SELECT * FROM records WHERE room_id = 'r' AND seq < 9 ORDER BY seq DESC LIMIT 50",
            "SELECT * FROM records WHERE person_id = 'p' AND seq < 9 ORDER BY seq DESC LIMIT 50",
            "SELECT * FROM records WHERE membership_id = 'm' ORDER BY seq",
            "SELECT * FROM records WHERE seq BETWEEN 3 AND 9",
        ] {
            indexed(&conn, sql);
        }
        let newest = plan(&conn, "SELECT * FROM records ORDER BY seq DESC LIMIT 50");
        assert!(!newest.contains("TEMP B-TREE"), "{newest}");
    }

    #[test]
    fn a_copy_is_found_by_its_identity_and_a_receivers_record_by_its_seq() {
        let conn = empty(Kind::Merged);
        let copy_of = query_plan(
            &conn,
            super::super::fold::COPY_OF,
            rusqlite::params![&[0u8; 16][..], 2, "", ""],
        );
        assert!(
            !copy_of.contains("SCAN") && !copy_of.contains("TEMP B-TREE"),
            "{copy_of}"
        );
        indexed(
            &conn,
            "SELECT * FROM records WHERE seq = 7 AND receiver = 'a'",
        );
    }

    #[test]
    fn every_room_is_read_from_the_rooms_not_along_every_text() {
        let conn = empty(Kind::Single);
        let every = plan(&conn, &super::super::query::every_room());
        assert!(every.contains("SCAN r"), "{every}");
        assert!(!every.contains("SCAN id"), "{every}");
    }
}
