//! Opening the index: one function for every open. Pragmas first and
//! outside any transaction (WAL, so readers never wait for the indexer),
//! the schema version in `PRAGMA user_version`, creation inside one
//! transaction. The index is derived, so an old or unknown version, a
//! corrupt file, or a newest record the log no longer has is not migrated
//! or repaired: it is rebuilt, and the caller is told why.

use std::io;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::build;
use super::schema::{Kind, SCHEMA_VERSION};
use super::{Index, IndexError, merged_path, path, state};
use crate::clock::Clock;
use crate::log::files;
use crate::receiver::{Receiver, Receivers};

/// How long a connection waits for another process's write (serve's
/// indexer, a read command catching up) before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The page cache of each connection: 32 MiB, whatever the index's size.
pub(super) const PAGE_CACHE_KIB: i64 = 32 * 1024;

/// What opening found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// The index was sound and is the log's.
    Kept,
    /// There was none: a new empty one was made (first use, or deleted).
    Created,
    /// It was (re)made empty, for this reason; catching up fills it.
    Rebuilt(String),
}

/// Which index of which receivers, and where: what every open is of.
pub(super) struct Of<'a> {
    pub kind: Kind,
    pub receivers: &'a [Receiver],
    /// The directory the index lives in.
    pub home: &'a Path,
}

impl Of<'_> {
    fn names(&self) -> Vec<&str> {
        self.receivers.iter().map(|r| r.name.as_str()).collect()
    }
}

impl Index {
    /// Opens `DIR/index.sqlite`, making or remaking it when it is missing,
    /// unreadable, of another schema version, or not of this log.
    pub fn open(dir: &Path, clock: &dyn Clock) -> Result<(Index, Opened), IndexError> {
        let receiver = one_receiver(dir)?;
        Self::open_for(&path(dir), &Of::single(&receiver), clock)
    }

    /// Opens the index of `receivers`: `DIR/index.sqlite` of one receiver
    /// whose directory is `home`, else `home/merged.sqlite`, which is
    /// remade when it holds another set of receivers (or in another
    /// order), or one of them no longer has the record the index last
    /// read of it.
    pub fn open_of(
        receivers: &Receivers,
        home: &Path,
        clock: &dyn Clock,
    ) -> Result<(Index, Opened), IndexError> {
        let of = Of::receivers(receivers, home);
        let file = match of.kind {
            Kind::Single => path(home),
            Kind::Merged => merged_path(home),
        };
        Self::open_for(&file, &of, clock)
    }

    /// Remakes the index empty, in place: a `serve` whose indexer has the
    /// file open sees the reset and refills it, where a new file would
    /// leave it writing to the old one.
    pub fn rebuild(dir: &Path, clock: &dyn Clock) -> Result<Index, IndexError> {
        let (index, _) = Self::open(dir, clock)?;
        index.reset(clock)?;
        Ok(index)
    }

    /// [`Index::rebuild`] of the index [`Index::open_of`] opens.
    pub fn rebuild_of(
        receivers: &Receivers,
        home: &Path,
        clock: &dyn Clock,
    ) -> Result<Index, IndexError> {
        let (index, _) = Self::open_of(receivers, home, clock)?;
        index.reset(clock)?;
        Ok(index)
    }

    fn reset(&self, clock: &dyn Clock) -> Result<(), IndexError> {
        let names: Vec<&str> = self.receivers.iter().map(|r| r.name.as_str()).collect();
        reset(&self.conn, self.kind, &names, clock)
    }

    /// [`Index::open`] of the index at `file`, of `of`: also a scratch
    /// index for `--check`.
    pub(super) fn open_for(
        file: &Path,
        of: &Of<'_>,
        clock: &dyn Clock,
    ) -> Result<(Index, Opened), IndexError> {
        let names = of.names();
        if !file.exists() {
            let conn = create(file, of.kind, &names, clock)?;
            return Ok((index(conn, of), Opened::Created));
        }
        let conn = match connect(file).and_then(|conn| version(&conn).map(|v| (conn, v))) {
            Ok((conn, version)) => {
                if version != SCHEMA_VERSION {
                    reset(&conn, of.kind, &names, clock)?;
                    let reason = format!(
                        "{} has schema version {version}, this rollcall uses {SCHEMA_VERSION}",
                        file.display()
                    );
                    return Ok((index(conn, of), Opened::Rebuilt(reason)));
                }
                conn
            }
            Err(error) => {
                remove(file)?;
                let conn = create(file, of.kind, &names, clock)?;
                let reason = format!("{} could not be read ({error})", file.display());
                return Ok((index(conn, of), Opened::Rebuilt(reason)));
            }
        };
        let why = match not_of(&conn, file, of) {
            Ok(why) => why,
            Err(error) => Some(format!(
                "{} has no readable state ({error})",
                file.display()
            )),
        };
        if let Some(why) = why {
            reset(&conn, of.kind, &names, clock)?;
            return Ok((index(conn, of), Opened::Rebuilt(why)));
        }
        let tracks = state::read(&conn)?;
        for (receiver, track) in of.receivers.iter().zip(&tracks) {
            if let Some(why) = build::still_in_log(&receiver.dir, &track.at)? {
                reset(&conn, of.kind, &names, clock)?;
                let why = match of.kind {
                    Kind::Single => why,
                    Kind::Merged => format!(
                        "receiver {} ({}): {why}",
                        receiver.name,
                        receiver.dir.display()
                    ),
                };
                return Ok((index(conn, of), Opened::Rebuilt(why)));
            }
        }
        Ok((index(conn, of), Opened::Kept))
    }
}

impl<'a> Of<'a> {
    pub(super) fn single(receiver: &'a Receiver) -> Self {
        Of {
            kind: Kind::Single,
            receivers: std::slice::from_ref(receiver),
            home: &receiver.dir,
        }
    }

    pub(super) fn receivers(receivers: &'a Receivers, home: &'a Path) -> Self {
        let kind = match receivers.single() {
            Some(one) if one.dir == home => Kind::Single,
            _ => Kind::Merged,
        };
        Of {
            kind,
            receivers: receivers.all(),
            home,
        }
    }
}

/// The receiver whose log is `dir`.
pub(super) fn one_receiver(dir: &Path) -> Result<Receiver, IndexError> {
    Receiver::of_dir(dir).map_err(|e| IndexError::Receiver(format!("{e:#}")))
}

/// Why the index in `conn` is not of `of`'s receivers, if it is not. An
/// index of one receiver keeps its name up to date instead: a log is the
/// same log whatever its directory is named.
fn not_of(conn: &Connection, file: &Path, of: &Of<'_>) -> rusqlite::Result<Option<String>> {
    let held = state::names(conn)?;
    let wanted = of.names();
    Ok(match of.kind {
        Kind::Single if held.len() != 1 => Some(format!(
            "{} holds {} receivers, where an index of one log holds one",
            file.display(),
            held.len()
        )),
        Kind::Single => {
            if held[0] != wanted[0] {
                state::rename(conn, &wanted)?;
            }
            None
        }
        Kind::Merged if held != wanted => Some(format!(
            "{} holds receivers {}, and these are {}",
            file.display(),
            held.join(", "),
            wanted.join(", ")
        )),
        Kind::Merged => None,
    })
}

pub(super) fn index(conn: Connection, of: &Of<'_>) -> Index {
    Index {
        conn,
        kind: of.kind,
        receivers: of.receivers.to_vec(),
        home: of.home.to_path_buf(),
        texts: super::text::SERVE_GENERATION,
        unanalyzed: 0,
    }
}

/// Opens the file with the pragmas every connection needs.
fn connect(file: &Path) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open_with_flags(
        file,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = wal", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "journal mode {mode} instead of wal"
        )));
    }
    // A crash may lose the last batches, never leave a torn one: the log
    // has them, and catching up writes them again.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // A bounded page cache (negative: KiB): the pages a batch touches
    // most stay in memory instead of being read again record by record.
    conn.pragma_update(None, "cache_size", -PAGE_CACHE_KIB)?;
    Ok(conn)
}

fn version(conn: &Connection) -> Result<i64, rusqlite::Error> {
    conn.query_row("PRAGMA user_version", [], |row| row.get(0))
}

/// A new, empty index at `file`, created with the log's file mode (SQLite
/// gives its `-wal` and `-shm` files the database file's mode).
fn create(
    file: &Path,
    kind: Kind,
    names: &[&str],
    clock: &dyn Clock,
) -> Result<Connection, IndexError> {
    files::create_new(file).map_err(|source| IndexError::Io {
        what: "creating the index",
        path: file.to_path_buf(),
        source,
    })?;
    let conn = connect(file)?;
    reset(&conn, kind, names, clock)?;
    Ok(conn)
}

/// Empties the index down to its schema, of these receivers, in one
/// transaction: a crash leaves the old index or the new empty one.
fn reset(
    conn: &Connection,
    kind: Kind,
    names: &[&str],
    clock: &dyn Clock,
) -> Result<(), IndexError> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let made = (|| {
        let objects: Vec<(String, String)> = conn
            .prepare(
                "SELECT type, name FROM sqlite_schema
                 WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%'",
            )?
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<Result<_, _>>()?;
        for (kind, name) in objects {
            let kind = if kind == "view" { "VIEW" } else { "TABLE" };
            conn.execute_batch(&format!("DROP {kind} IF EXISTS \"{name}\""))?;
        }
        conn.execute_batch(&kind.create())?;
        state::create(conn, names, SCHEMA_VERSION, clock)?;
        if kind == Kind::Single {
            // The one set of receivers every row of it holds.
            let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            state::remember_set(conn, &names, 1)?;
        }
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        Ok::<_, rusqlite::Error>(())
    })();
    match made {
        Ok(()) => conn.execute_batch("COMMIT")?,
        Err(error) => {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(error.into());
        }
    }
    Ok(())
}

/// Removes an unreadable index and its WAL files.
fn remove(file: &Path) -> Result<(), IndexError> {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = file.as_os_str().to_owned();
        name.push(suffix);
        match std::fs::remove_file(&name) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(IndexError::Io {
                    what: "removing the unreadable index",
                    path: name.into(),
                    source,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;

    #[test]
    fn a_new_index_is_wal_with_the_schema_version_and_mode_0640() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (index, opened) = Index::open(dir.path(), &SystemClock).unwrap();
        assert_eq!(opened, Opened::Created);
        let mode: String = index
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(version(&index.conn).unwrap(), SCHEMA_VERSION);
        let meta = std::fs::metadata(path(dir.path())).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o640);
        drop(index);
        let (_, again) = Index::open(dir.path(), &SystemClock).unwrap();
        assert_eq!(again, Opened::Kept);
    }

    #[test]
    fn an_index_of_another_version_is_rebuilt_saying_so() {
        let dir = tempfile::tempdir().unwrap();
        let (index, _) = Index::open(dir.path(), &SystemClock).unwrap();
        index
            .conn
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        drop(index);
        let (index, opened) = Index::open(dir.path(), &SystemClock).unwrap();
        let Opened::Rebuilt(why) = opened else {
            panic!("kept an index of another version")
        };
        assert!(why.contains("schema version"), "{why}");
        assert_eq!(version(&index.conn).unwrap(), SCHEMA_VERSION);
    }
}
