//! A day's digest (`DAY.digest.json`): what was archived, the hashes that
//! prove it, and the link to the digest before it; and the listing of
//! `DIR/archive` by day, which digests and archives are found through.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use time::Date;

use super::{CHUNK, file_name};
use crate::log::days::{self, ARCHIVE_DIR};
use crate::log::record::GENESIS_HASH;

/// `previous_digest_sha256` of the first digest.
pub const GENESIS_DIGEST: &str = GENESIS_HASH;
const DIGEST_SUFFIX: &str = ".digest.json";
pub(super) const DIGEST_VERSION: u32 = 1;

/// The digest of one archived day, as stored in `DAY.digest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DayDigest {
    pub version: u32,
    pub day: String,
    pub archive: String,
    pub records: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// The `prev_hash` of the day's first record: where the day joins the
    /// chain.
    pub chain_start: String,
    /// The `hash` of the day's last record (`chain_start` for an empty day).
    pub last_hash: String,
    pub uncompressed_bytes: u64,
    pub uncompressed_sha256: String,
    pub compressed_bytes: u64,
    pub compressed_sha256: String,
    /// File name of the previous digest, `null` for the first.
    pub previous_digest: Option<String>,
    /// SHA-256 of the previous digest file's bytes, or [`GENESIS_DIGEST`].
    pub previous_digest_sha256: String,
    pub archived_at: String,
}

/// `DIR/archive/YYYY-MM-DD.digest.json`.
pub fn digest_path(dir: &Path, date: Date) -> PathBuf {
    dir.join(ARCHIVE_DIR)
        .join(format!("{}{DIGEST_SUFFIX}", days::day_name(date)))
}

/// A digest as loaded: its fields and the hash of its exact bytes.
pub(super) struct Stored {
    pub name: String,
    pub digest: DayDigest,
    pub sha256: String,
}

pub(super) fn load_digests(dir: &Path) -> anyhow::Result<BTreeMap<Date, Stored>> {
    let mut out = BTreeMap::new();
    for (date, path) in list_archive_dir(dir)?.digests {
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let digest: DayDigest = serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "{} is not a readable digest; run rollcall verify",
                path.display()
            )
        })?;
        out.insert(
            date,
            Stored {
                name: file_name(&path),
                digest,
                sha256: hex::encode(Sha256::digest(&bytes)),
            },
        );
    }
    Ok(out)
}

/// What `DIR/archive` holds, by day.
#[derive(Default)]
pub(super) struct Listing {
    pub archives: BTreeMap<Date, PathBuf>,
    pub digests: BTreeMap<Date, PathBuf>,
}

pub(super) fn list_archive_dir(dir: &Path) -> anyhow::Result<Listing> {
    let mut listing = Listing::default();
    let archive_dir = dir.join(ARCHIVE_DIR);
    for day in days::list(dir).with_context(|| format!("listing {}", dir.display()))? {
        if let Some(archive) = day.archived {
            listing.archives.insert(day.date, archive);
        }
    }
    let entries = match std::fs::read_dir(&archive_dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(listing),
        entries => entries.with_context(|| format!("listing {}", archive_dir.display()))?,
    };
    for entry in entries {
        let path = entry
            .with_context(|| format!("listing {}", archive_dir.display()))?
            .path();
        if let Some(date) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(DIGEST_SUFFIX))
            .and_then(days::parse_day_name)
        {
            listing.digests.insert(date, path);
        }
    }
    Ok(listing)
}

/// Where the chain got to by the archived days: the last seq and hash of
/// the newest digest that holds records. The digests outlive retention,
/// so this holds when no day file is left at all; the writer continues
/// from the newer of this and the live days. A digest that cannot be read
/// is passed over (`verify` reports it) rather than stopping the server.
pub fn chain_end(dir: &Path) -> anyhow::Result<Option<(u64, String)>> {
    for path in list_archive_dir(dir)?.digests.values().rev() {
        let read = std::fs::read(path)
            .map_err(anyhow::Error::from)
            .and_then(|bytes| Ok(serde_json::from_slice::<DayDigest>(&bytes)?));
        match read {
            Ok(DayDigest {
                last_seq: Some(seq),
                last_hash,
                ..
            }) => return Ok(Some((seq, last_hash))),
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(digest = %path.display(), %error, "a digest cannot be read; run rollcall verify")
            }
        }
    }
    Ok(None)
}

/// Counts and hashes the bytes that pass through.
pub(super) struct Hashing<T> {
    inner: T,
    hasher: Sha256,
    bytes: u64,
}

impl<T> Hashing<T> {
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    pub fn finish(self) -> (T, u64, String) {
        (self.inner, self.bytes, hex::encode(self.hasher.finalize()))
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

pub(super) fn hash_file(path: &Path) -> anyhow::Result<(u64, String)> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hashing = Hashing::new(BufReader::with_capacity(CHUNK, file));
    io::copy(&mut hashing, &mut io::sink())
        .with_context(|| format!("reading {}", path.display()))?;
    let (_, bytes, sha256) = hashing.finish();
    Ok((bytes, sha256))
}
