//! `DIR/.head`: the durable-head witness. After a batch is durable the
//! writer records the newest `seq` and `hash` here, replacing the file
//! atomically, so a log whose end was cut shows: it ends before the head,
//! or the record at the head's seq has another hash. The file may lag the
//! log (it is synced at most about once a second) but never leads it.
//! A head a start finds leading the log is the evidence of a cut: it is
//! kept in `DIR/quarantine/` ([`KeptHead`]) before the writer goes on.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::files;

pub const HEAD_FILE: &str = ".head";
const HEAD_TEMPORARY: &str = ".head.tmp";
/// Kept heads are `DIR/quarantine/head-*.json`.
const KEPT_PREFIX: &str = "head-";

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

/// A durable head that a start found leading the log (the log ended
/// before it, or disagreed with it), with where the log ended then: the
/// evidence that records were cut, kept in `DIR/quarantine/`, never
/// overwritten, for `verify` and `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptHead {
    pub seq: u64,
    pub hash: String,
    /// When the start kept it aside (RFC 3339).
    pub kept_at: String,
    /// The log's last record at that start (seq 0: none).
    pub log_end_seq: u64,
    pub log_end_hash: String,
}

impl KeptHead {
    pub fn head(&self) -> Head {
        Head {
            seq: self.seq,
            hash: self.hash.clone(),
        }
    }

    /// Stores this head in `DIR/quarantine/`, fsync'd, under a new name;
    /// a head kept there already (a start that stopped before it wrote
    /// anything found the same cut again) is not stored twice. Returns
    /// the file that holds it.
    pub fn keep(&self, dir: &Path) -> anyhow::Result<PathBuf> {
        let head = self.head();
        if let Some((path, _)) = Self::list(dir)?
            .into_iter()
            .find(|(_, kept)| kept.head() == head)
        {
            return Ok(path);
        }
        let mut bytes = serde_json::to_vec(self).expect("a kept head always serialises");
        bytes.push(b'\n');
        let stamp: String = self
            .kept_at
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect();
        let folder = quarantine(dir);
        files::keep_aside(
            &folder,
            |n| format!("{KEPT_PREFIX}{stamp}-seq{}.{n}.json", self.seq),
            &bytes,
        )
        .with_context(|| format!("keeping the durable head in {}", folder.display()))
    }

    /// Whether `path` is named as a kept head is.
    pub fn is_named(path: &Path) -> bool {
        path.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(KEPT_PREFIX) && n.ends_with(".json"))
    }

    /// Every head kept in `DIR/quarantine/`, oldest name first. A file
    /// there that does not read as one is left to `verify`'s listing.
    pub fn list(dir: &Path) -> anyhow::Result<Vec<(PathBuf, KeptHead)>> {
        let folder = quarantine(dir);
        let paths =
            files::entries(&folder).with_context(|| format!("listing {}", folder.display()))?;
        let mut kept = Vec::new();
        for path in paths {
            if !Self::is_named(&path) {
                continue;
            }
            let bytes =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            if let Ok(head) = serde_json::from_slice(&bytes) {
                kept.push((path, head));
            }
        }
        kept.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(kept)
    }
}

/// Where the evidence of a cut is kept: heads the log ended before, and
/// the lines a start found damaged.
pub const QUARANTINE_DIR: &str = "quarantine";

fn quarantine(dir: &Path) -> PathBuf {
    dir.join(QUARANTINE_DIR)
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
    fn a_kept_head_is_stored_once_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let kept = |seq| KeptHead {
            seq,
            hash: "ab".repeat(32),
            kept_at: "2026-11-27T12:00:00.000Z".into(),
            log_end_seq: 90,
            log_end_hash: "cd".repeat(32),
        };
        let first = kept(100).keep(dir.path()).unwrap();
        assert_eq!(kept(100).keep(dir.path()).unwrap(), first);
        let other = kept(101).keep(dir.path()).unwrap();
        assert_ne!(other, first);
        let listed: Vec<KeptHead> = KeptHead::list(dir.path())
            .unwrap()
            .into_iter()
            .map(|(_, head)| head)
            .collect();
        assert_eq!(listed, [kept(100), kept(101)]);
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
