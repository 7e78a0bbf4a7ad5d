//! The `text` table's ids: each long text a record repeats is stored once,
//! and found again through a bounded cache of the texts used lately, then
//! through its key (a truncated SHA-256) and value in the table.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, Statement};
use sha2::{Digest, Sha256};

/// How many texts the cache holds before it starts again: enough for the
/// rooms, people and titles a busy stretch of the log names, at about
/// 100 bytes each (a 90-byte id, its box, its id and the map's slot):
/// about 13 MiB at most.
const CACHED: usize = 1 << 17;

/// Ids of texts, finding or adding each in `text`.
pub struct Texts<'c> {
    find: Statement<'c>,
    add: Statement<'c>,
    cached: HashMap<Box<str>, i64>,
}

impl<'c> Texts<'c> {
    pub fn new(conn: &'c Connection) -> rusqlite::Result<Self> {
        Ok(Texts {
            find: conn.prepare("SELECT id FROM text WHERE key = ?1 AND value = ?2")?,
            add: conn.prepare("INSERT INTO text (key, value) VALUES (?1, ?2)")?,
            cached: HashMap::with_capacity(CACHED),
        })
    }

    /// The id of `value`.
    pub fn id(&mut self, value: &str) -> rusqlite::Result<i64> {
        if let Some(&id) = self.cached.get(value) {
            return Ok(id);
        }
        let (id, _) = self.id_uncached(value)?;
        if self.cached.len() == CACHED {
            self.cached.clear();
        }
        self.cached.insert(value.into(), id);
        Ok(id)
    }

    /// The id of `value`, if there is one.
    pub fn id_of(&mut self, value: Option<&str>) -> rusqlite::Result<Option<i64>> {
        value.map(|v| self.id(v)).transpose()
    }

    /// The id of a text most likely used once, such as a membership id,
    /// without crowding the cache; and whether this call added it.
    pub fn id_uncached(&mut self, value: &str) -> rusqlite::Result<(i64, bool)> {
        let key = key(value);
        let found = self
            .find
            .query_row((key, value), |row| row.get(0))
            .optional()?;
        Ok(match found {
            Some(id) => (id, false),
            None => (self.add.insert((key, value))?, true),
        })
    }
}

/// The first 8 bytes of the text's SHA-256: any key would find a text by
/// key and value, but this one is the same on every machine and version,
/// as the stored keys must be.
fn key(value: &str) -> i64 {
    let digest = Sha256::digest(value.as_bytes());
    i64::from_be_bytes(digest[..8].try_into().expect("a SHA-256 has 32 bytes"))
}
