//! The index's tables (free to change with [`SCHEMA_VERSION`]) and the
//! public views over them, whose names and columns are a contract with
//! anyone who queries `DIR/index.sqlite` with a SQLite client.

/// Bumped whenever a table or view changes: an index of another version is
/// rebuilt, never migrated, since the log can always make it again.
pub const SCHEMA_VERSION: i64 = 1;

/// Every table, index and view, created in one transaction.
pub const CREATE: &str = r#"
CREATE TABLE record (
    seq INTEGER PRIMARY KEY,
    received_at TEXT NOT NULL,
    event TEXT NOT NULL,
    room_id TEXT NOT NULL,
    room_title TEXT,
    person_id TEXT NOT NULL,
    person_email TEXT,
    person_display_name TEXT,
    is_moderator INTEGER,
    is_monitor INTEGER,
    membership_id TEXT NOT NULL,
    membership_created TEXT,
    actor_id TEXT,
    org_id TEXT,
    webhook_id TEXT,
    webhook_name TEXT,
    target TEXT NOT NULL,
    source TEXT NOT NULL,
    not_before TEXT
);
-- The reconciled changes a roster may have to warn about.
CREATE INDEX record_uncertain ON record (room_id)
    WHERE source = 'reconciled' AND event <> 'joined' AND not_before IS NOT NULL;

-- One row per stay of a membership in a room (the presence view).
CREATE TABLE stay (
    id INTEGER PRIMARY KEY,
    room_id TEXT NOT NULL,
    membership_id TEXT NOT NULL,
    person_id TEXT NOT NULL,
    person_email TEXT,
    person_display_name TEXT,
    joined_at TEXT,
    joined_seq INTEGER,
    join_source TEXT,
    left_at TEXT,
    left_seq INTEGER,
    left_not_before TEXT,
    leave_source TEXT,
    is_moderator INTEGER
);
CREATE INDEX stay_person ON stay (person_id);
CREATE INDEX stay_room ON stay (room_id);

-- One row per state of a present membership, from the record that made
-- it (from_at/from_seq) to the next record of that membership (to_at;
-- NULL while it lasts): a roster at T is the spans of the room holding T.
CREATE TABLE span (
    id INTEGER PRIMARY KEY,
    room_id TEXT NOT NULL,
    person_id TEXT NOT NULL,
    person_email TEXT,
    person_display_name TEXT,
    is_moderator INTEGER,
    since TEXT,
    added_by TEXT,
    join_source TEXT NOT NULL,
    joined_seq INTEGER,
    from_at TEXT NOT NULL,
    from_seq INTEGER NOT NULL,
    to_at TEXT
);
CREATE INDEX span_until ON span (room_id, coalesce(to_at, '~'));

-- Each membership as the log leaves it, to go on folding from.
CREATE TABLE membership (
    membership_id TEXT PRIMARY KEY,
    room_id TEXT NOT NULL,
    person_id TEXT NOT NULL,
    person_email TEXT,
    person_display_name TEXT,
    present INTEGER NOT NULL,
    is_moderator INTEGER,
    since TEXT,
    added_by TEXT,
    join_source TEXT NOT NULL,
    last_seq INTEGER NOT NULL,
    last_at TEXT NOT NULL,
    -- The event time of its last record, never earlier than the one before.
    last_event_at TEXT NOT NULL,
    stay_id INTEGER,
    span_id INTEGER,
    joined_seq INTEGER
) WITHOUT ROWID;

CREATE TABLE room (
    room_id TEXT PRIMARY KEY,
    title TEXT,
    first_at TEXT NOT NULL,
    first_seq INTEGER NOT NULL,
    last_at TEXT NOT NULL,
    last_seq INTEGER NOT NULL,
    members_now INTEGER NOT NULL,
    baseline_at TEXT
) WITHOUT ROWID;

-- Every title a room was recorded with, by its lower case, for --room.
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

CREATE TABLE gap (
    id INTEGER PRIMARY KEY,
    from_at TEXT NOT NULL,
    to_at TEXT,
    after_crash INTEGER NOT NULL
);

CREATE TABLE state (
    only INTEGER PRIMARY KEY CHECK (only = 1),
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL,
    -- Where the record at seq is: its UTC day, and the byte offset of its
    -- line in that day's (uncompressed) file. Catching up reads on from
    -- there, and opening checks that line still has this hash.
    day TEXT,
    offset INTEGER NOT NULL,
    built_at TEXT NOT NULL,
    schema_version INTEGER NOT NULL
);

CREATE VIEW records AS
SELECT seq, received_at, event, room_id, room_title, person_id, person_email,
       person_display_name, is_moderator, is_monitor, membership_id,
       membership_created, actor_id, org_id, webhook_id, webhook_name, target,
       source, not_before, substr(received_at, 1, 10) AS day
FROM record;

CREATE VIEW presence AS
SELECT stay.room_id, room.title AS room_title, stay.membership_id,
       stay.person_id, stay.person_email, stay.person_display_name,
       stay.joined_at, stay.joined_seq, stay.join_source, stay.left_at,
       stay.left_seq, stay.left_not_before, stay.leave_source,
       stay.is_moderator
FROM stay LEFT JOIN room ON room.room_id = stay.room_id;

CREATE VIEW rooms AS
SELECT room_id, title, first_at AS first_record_at, last_at AS last_record_at,
       members_now, baseline_at
FROM room;

CREATE VIEW coverage_gaps AS
SELECT from_at, to_at, after_crash FROM gap;

CREATE VIEW index_state AS
SELECT seq, hash, built_at, schema_version FROM state;
"#;

/// The public views, and the columns `index --check` compares (all but
/// when the index was built).
pub const VIEWS: [(&str, &str); 5] = [
    ("records", "*"),
    ("presence", "*"),
    ("rooms", "*"),
    ("coverage_gaps", "*"),
    ("index_state", "seq, hash, schema_version"),
];
