//! The statements a catch-up's fold runs, prepared once: one per way a
//! row of the index is written.

use rusqlite::{Connection, Statement};

/// The statements a fold runs, prepared once per catch-up.
pub struct Statements<'c> {
    pub record: Statement<'c>,
    pub copy: Statement<'c>,
    pub load: Statement<'c>,
    pub stay_open: Statement<'c>,
    pub stay_update: Statement<'c>,
    pub span: Statement<'c>,
    pub membership: Statement<'c>,
    pub room: Statement<'c>,
    pub room_members: Statement<'c>,
    pub room_title: Statement<'c>,
    pub person_email: Statement<'c>,
}

impl<'c> Statements<'c> {
    pub fn prepare(conn: &'c Connection) -> rusqlite::Result<Self> {
        Ok(Statements {
            record: conn.prepare(
                "INSERT INTO record VALUES
                 (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
            )?,
            copy: conn.prepare("INSERT INTO record_copy VALUES (?1, ?2, ?3, ?4, ?5)")?,
            load: conn.prepare(
                "SELECT room.value, person.value, email.value, name.value, m.present,
                    m.is_moderator, m.since, added.value, m.join_source, m.joined_seq,
                    m.last_seq, m.last_event_at, m.stay, m.room, m.person, m.person_email,
                    m.person_display_name, m.added_by, m.joined_receiver, m.last_receiver
                 FROM membership m
                 JOIN text room ON room.id = m.room
                 JOIN text person ON person.id = m.person
                 LEFT JOIN text email ON email.id = m.person_email
                 LEFT JOIN text name ON name.id = m.person_display_name
                 LEFT JOIN text added ON added.id = m.added_by
                 WHERE m.id = ?1",
            )?,
            stay_open: conn.prepare(
                "INSERT INTO stay (room, membership, person, person_email, person_display_name,
                    joined_at, joined_seq, join_source, left_at, left_seq, left_not_before,
                    leave_source, is_moderator, joined_receiver, left_receiver)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
            )?,
            stay_update: conn.prepare(
                "UPDATE stay SET person_email = ?2, person_display_name = ?3, is_moderator = ?4,
                    left_at = ?5, left_seq = ?6, left_not_before = ?7, leave_source = ?8,
                    left_receiver = ?9
                 WHERE id = ?1",
            )?,
            span: conn.prepare(
                "INSERT INTO span (room, person, person_email, person_display_name, is_moderator,
                    since, added_by, join_source, joined_seq, from_at, from_seq, to_at,
                    joined_receiver, from_receiver)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            )?,
            membership: conn.prepare(
                "INSERT INTO membership VALUES
                 (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
                 ON CONFLICT (id) DO UPDATE SET
                    person_email = excluded.person_email,
                    person_display_name = excluded.person_display_name,
                    present = excluded.present, is_moderator = excluded.is_moderator,
                    since = excluded.since, added_by = excluded.added_by,
                    join_source = excluded.join_source, joined_seq = excluded.joined_seq,
                    last_seq = excluded.last_seq, last_event_at = excluded.last_event_at,
                    stay = excluded.stay, joined_receiver = excluded.joined_receiver,
                    last_receiver = excluded.last_receiver",
            )?,
            room: conn.prepare(
                "INSERT INTO room VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (id) DO UPDATE SET
                    title = coalesce(excluded.title, title),
                    last_at = excluded.last_at,
                    last_row = excluded.last_row,
                    members_now = members_now + excluded.members_now,
                    baseline_at = coalesce(baseline_at, excluded.baseline_at)",
            )?,
            room_members: conn
                .prepare("UPDATE room SET members_now = members_now + ?2 WHERE id = ?1")?,
            room_title: conn.prepare("INSERT OR IGNORE INTO room_title VALUES (?1, ?2)")?,
            person_email: conn.prepare("INSERT OR IGNORE INTO person_email VALUES (?1, ?2)")?,
        })
    }
}
