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

use super::build::{self, Position};
use super::schema::{CREATE, SCHEMA_VERSION};
use super::{Index, IndexError, path};
use crate::clock::Clock;
use crate::log::files;
use crate::log::record::format_timestamp;

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

impl Index {
    /// Opens `DIR/index.sqlite`, making or remaking it when it is missing,
    /// unreadable, of another schema version, or not of this log.
    pub fn open(dir: &Path, clock: &dyn Clock) -> Result<(Index, Opened), IndexError> {
        Self::open_for(dir, dir, clock)
    }

    /// Remakes the index empty, in place: a `serve` whose indexer has the
    /// file open sees the reset and refills it, where a new file would
    /// leave it writing to the old one.
    pub fn rebuild(dir: &Path, clock: &dyn Clock) -> Result<Index, IndexError> {
        let (index, _) = Self::open(dir, clock)?;
        reset(&index.conn, clock)?;
        Ok(index)
    }

    /// [`Index::open`] of an index kept in `index_dir` for the log in
    /// `dir`: a scratch index for `--check`.
    pub(super) fn open_for(
        index_dir: &Path,
        dir: &Path,
        clock: &dyn Clock,
    ) -> Result<(Index, Opened), IndexError> {
        let file = path(index_dir);
        if !file.exists() {
            let conn = create(&file, clock)?;
            return Ok((index(conn, dir), Opened::Created));
        }
        let conn = match connect(&file).and_then(|conn| version(&conn).map(|v| (conn, v))) {
            Ok((conn, version)) => {
                if version != SCHEMA_VERSION {
                    reset(&conn, clock)?;
                    let reason = format!(
                        "{} has schema version {version}, this rollcall uses {SCHEMA_VERSION}",
                        file.display()
                    );
                    return Ok((index(conn, dir), Opened::Rebuilt(reason)));
                }
                conn
            }
            Err(error) => {
                remove(&file)?;
                let conn = create(&file, clock)?;
                let reason = format!("{} could not be read ({error})", file.display());
                return Ok((index(conn, dir), Opened::Rebuilt(reason)));
            }
        };
        let at = match Position::read(&conn) {
            Ok(at) => at,
            Err(error) => {
                reset(&conn, clock)?;
                let reason = format!("{} has no readable state ({error})", file.display());
                return Ok((index(conn, dir), Opened::Rebuilt(reason)));
            }
        };
        match build::still_in_log(dir, &at)? {
            None => Ok((index(conn, dir), Opened::Kept)),
            Some(why) => {
                reset(&conn, clock)?;
                Ok((index(conn, dir), Opened::Rebuilt(why)))
            }
        }
    }
}

pub(super) fn index(conn: Connection, dir: &Path) -> Index {
    Index {
        conn,
        dir: dir.to_path_buf(),
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
fn create(file: &Path, clock: &dyn Clock) -> Result<Connection, IndexError> {
    files::create_new(file).map_err(|source| IndexError::Io {
        what: "creating the index",
        path: file.to_path_buf(),
        source,
    })?;
    let conn = connect(file)?;
    reset(&conn, clock)?;
    Ok(conn)
}

/// Empties the index down to its schema, in one transaction: a crash
/// leaves the old index or the new empty one.
fn reset(conn: &Connection, clock: &dyn Clock) -> Result<(), IndexError> {
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
        conn.execute_batch(CREATE)?;
        conn.execute(
            "INSERT INTO state (only, seq, hash, day, offset, built_at, schema_version)
             VALUES (1, 0, '', NULL, 0, ?1, ?2)",
            (format_timestamp(clock.now()), SCHEMA_VERSION),
        )?;
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
