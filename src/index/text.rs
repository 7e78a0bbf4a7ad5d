//! The `text` table's ids: each long text a record repeats is stored once,
//! and found again through a bounded cache of the texts used lately, then
//! through its key (a truncated SHA-256) and value in the table.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher, RandomState};

use rusqlite::{Connection, OptionalExtension, Statement};
use sha2::{Digest, Sha256};

/// How many texts each of the cache's two generations holds in a command
/// that builds an index: the texts of a busy stretch of the log (a
/// million memberships, the people and rooms they name) at 24 bytes an
/// entry and its share of the map's free slots, about 25 to 50 MiB for a
/// generation that is full.
pub const BUILD_GENERATION: usize = 1 << 20;

/// The same in `serve`, whose memory must stay flat: what a step near
/// the head names many times over, about 2 to 4 MiB a generation.
pub const SERVE_GENERATION: usize = 1 << 16;

/// Ids of texts, finding or adding each in `text`.
pub struct Texts<'c> {
    find: Statement<'c>,
    add: Statement<'c>,
    /// The texts used since the last generation began, then the ones
    /// used in the generation before: a text used in both stays.
    recent: Cache,
    older: Cache,
    /// How many texts a generation holds.
    generation: usize,
    /// Where a text's cache key comes from: keys of this process only, so
    /// no text can be chosen to collide with another's.
    keys: [RandomState; 2],
    /// Whether the cache holds every text of the table: while it does, a
    /// text it does not hold is new, and is added without a look in the
    /// table. True of a fold that began on an empty table, until its
    /// first generation is dropped or another process adds a text.
    complete: bool,
    /// The newest id the cache knows the table to hold.
    newest: i64,
}

/// A text's 128-bit keyed hash and its id: 24 bytes. At 2^-128 a pair,
/// two of the texts one build can hold never collide.
type Cache = HashMap<Key, i64, BuildHasherDefault<Spread>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key(u64, u64);

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0);
    }
}

impl<'c> Texts<'c> {
    pub fn new(conn: &'c Connection, generation: usize) -> rusqlite::Result<Self> {
        Ok(Texts {
            find: conn.prepare("SELECT id FROM text WHERE key = ?1 AND value = ?2")?,
            add: conn.prepare("INSERT INTO text (key, value) VALUES (?1, ?2)")?,
            recent: Cache::default(),
            older: Cache::default(),
            generation,
            keys: [RandomState::new(), RandomState::new()],
            complete: true,
            newest: 0,
        })
    }

    /// At the start of a transaction: the cache is no longer complete if
    /// the table has texts it did not add (before this fold, or by
    /// another process's catch-up since its last transaction).
    pub fn begin(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        let newest: i64 = conn.query_row("SELECT coalesce(max(id), 0) FROM text", [], |row| {
            row.get(0)
        })?;
        self.complete &= newest == self.newest;
        Ok(())
    }

    /// The id of `value`.
    pub fn id(&mut self, value: &str) -> rusqlite::Result<i64> {
        self.id_new(value).map(|(id, _)| id)
    }

    /// The id of `value`, if there is one.
    pub fn id_of(&mut self, value: Option<&str>) -> rusqlite::Result<Option<i64>> {
        value.map(|v| self.id(v)).transpose()
    }

    /// The id of `value`, and whether this call added it to the table.
    pub fn id_new(&mut self, value: &str) -> rusqlite::Result<(i64, bool)> {
        let cached = Key(self.keys[0].hash_one(value), self.keys[1].hash_one(value));
        if let Some(&id) = self.recent.get(&cached) {
            return Ok((id, false));
        }
        let (id, new) = match self.older.get(&cached) {
            Some(&id) => (id, false),
            None => self.stored(value)?,
        };
        if self.recent.len() == self.generation {
            self.older = std::mem::take(&mut self.recent);
            self.complete = false;
        }
        self.recent.insert(cached, id);
        Ok((id, new))
    }

    /// The id of a text the cache does not hold: the table's, or a new one.
    fn stored(&mut self, value: &str) -> rusqlite::Result<(i64, bool)> {
        let key = key(value);
        let found = if self.complete {
            None
        } else {
            self.find
                .query_row((key, value), |row| row.get(0))
                .optional()?
        };
        Ok(match found {
            Some(id) => (id, false),
            None => {
                self.newest = self.add.insert((key, value))?;
                (self.newest, true)
            }
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

/// The cache's own hasher: its keys are keyed hashes already, so their
/// first word places them as well as hashing again would.
#[derive(Default)]
struct Spread(u64);

impl Hasher for Spread {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, _: &[u8]) {
        unreachable!("the cache hashes only its keys' first word")
    }

    fn write_u64(&mut self, word: u64) {
        self.0 = word;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::schema::Kind;

    #[test]
    fn a_text_another_connection_added_is_found_not_added_again() {
        let temp = tempfile::tempdir().unwrap();
        let file = temp.path().join("index.sqlite");
        let first = Connection::open(&file).unwrap();
        first.execute_batch(&Kind::Single.create()).unwrap();
        let second = Connection::open(&file).unwrap();
        // Both begin on an empty table, so both caches start complete.
        let mut mine = Texts::new(&first, SERVE_GENERATION).unwrap();
        let mut theirs = Texts::new(&second, SERVE_GENERATION).unwrap();

        first.execute_batch("BEGIN IMMEDIATE").unwrap();
        mine.begin(&first).unwrap();
        let (id, new) = mine.id_new("room-1").unwrap();
        assert!(new);
        first.execute_batch("COMMIT").unwrap();

        second.execute_batch("BEGIN IMMEDIATE").unwrap();
        theirs.begin(&second).unwrap();
        assert_eq!(theirs.id_new("room-1").unwrap(), (id, false));
        let (other, new) = theirs.id_new("room-2").unwrap();
        assert!(new && other != id);
        second.execute_batch("COMMIT").unwrap();

        first.execute_batch("BEGIN IMMEDIATE").unwrap();
        mine.begin(&first).unwrap();
        assert_eq!(mine.id_new("room-2").unwrap(), (other, false));
        assert_eq!(mine.id("room-1").unwrap(), id);
        first.execute_batch("COMMIT").unwrap();
        let texts: i64 = first
            .query_row("SELECT count(*) FROM text", [], |row| row.get(0))
            .unwrap();
        assert_eq!(texts, 2);
    }
}
