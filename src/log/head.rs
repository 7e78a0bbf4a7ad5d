//! `DIR/.head`: the durable-head witness. After a batch is durable the
//! writer records the newest `seq` and `hash` here, replacing the file
//! atomically, so a log whose end was cut shows: it ends before the head,
//! or the record at the head's seq has another hash. The file may lag the
//! log (it is synced at most about once a second) but never leads it.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::files;

pub const HEAD_FILE: &str = ".head";
const HEAD_TEMPORARY: &str = ".head.tmp";

/// The newest record known durable: where the chain had got to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub seq: u64,
    pub hash: String,
}

pub fn path(dir: &Path) -> PathBuf {
    dir.join(HEAD_FILE)
}

impl Head {
    /// The head recorded in `dir`, or `None` if no head was ever written
    /// (a log from before the witness, or an empty one).
    pub fn read(dir: &Path) -> anyhow::Result<Option<Head>> {
        let path = path(dir);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let head = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a head record", path.display()))?;
        Ok(Some(head))
    }

    /// Replaces `DIR/.head` with this head: a new file renamed over the
    /// old, so a reader sees the old head or the new, never half of one.
    /// With `sync`, the file and the rename are made durable too.
    pub fn store(&self, dir: &Path, sync: bool) -> io::Result<()> {
        let mut line = serde_json::to_vec(self).expect("a head always serialises");
        line.push(b'\n');
        files::replace(dir, HEAD_FILE, HEAD_TEMPORARY, &line, sync)
    }
}

impl fmt::Display for Head {
    /// `seq N hash H`, as `verify` prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "seq {} hash {}", self.seq, self.hash)
    }
}

impl FromStr for Head {
    type Err = String;

    /// `SEQ:HASH`, as `verify --expect-head` takes it.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!(
                "{text:?} is not SEQ:HASH (e.g. 1234:9f86d081...), as `verify` prints after \"head:\""
            )
        };
        let (seq, hash) = text.split_once(':').ok_or_else(bad)?;
        let seq = seq.trim().parse().map_err(|_| bad())?;
        let hash = hash.trim().to_ascii_lowercase();
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        Ok(Head { seq, hash })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_head_reads_back_and_replaces_the_last() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Head::read(dir.path()).unwrap(), None);
        for (seq, sync) in [(1, false), (2, true)] {
            let head = Head {
                seq,
                hash: "ab".repeat(32),
            };
            head.store(dir.path(), sync).unwrap();
            assert_eq!(Head::read(dir.path()).unwrap(), Some(head));
        }
        assert!(!dir.path().join(HEAD_TEMPORARY).exists());
    }

    #[test]
    fn expect_head_takes_what_verify_prints() {
        let hash = "AB".repeat(32);
        let head: Head = format!("42:{hash}").parse().unwrap();
        assert_eq!(head.seq, 42);
        assert_eq!(head.hash, hash.to_ascii_lowercase());
        for bad in ["42", "x:ab", &format!("42:{}", "ab".repeat(31)), "42:zz"] {
            assert!(bad.parse::<Head>().is_err(), "{bad}");
        }
    }
}
