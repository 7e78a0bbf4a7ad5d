//! Retention: deleting archives past `--retain-days`, oldest first, and
//! `retired.jsonl`, the hash-chained log of what it deleted, which
//! `verify` checks so that a deleted archive cannot pass as retention.

use std::collections::BTreeSet;
use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use time::{Date, OffsetDateTime};

use super::digest::{DayDigest, digest_path, list_archive_dir, load_digests};
use super::file_name;
use crate::log::days::DEDUP_DAYS;
use crate::log::days::{self, ARCHIVE_DIR};
use crate::log::fault::Fault;
use crate::log::files;
use crate::log::record::{GENESIS_HASH, format_timestamp};

/// One line per archive deleted by retention; its digest stays, so the
/// digest chain stays whole.
pub const RETIRED_FILE: &str = "retired.jsonl";

/// Retention keeps at least the days the writer reads at start to
/// recognise a retried delivery: fewer, and a retry is logged twice.
pub const MIN_RETAIN_DAYS: u32 = DEDUP_DAYS as u32;

/// `--retain-days N`, for `archive` and `serve` alike.
pub fn parse_retain_days(text: &str) -> Result<u32, String> {
    let days: u32 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of days"))?;
    check_retain_days(days)?;
    Ok(days)
}

pub(super) fn check_retain_days(days: u32) -> Result<(), String> {
    if days < MIN_RETAIN_DAYS {
        return Err(format!(
            "--retain-days {days} is below {MIN_RETAIN_DAYS}: duplicates are recognised over the last {MIN_RETAIN_DAYS} days, so those days must be kept; give {MIN_RETAIN_DAYS} or more"
        ));
    }
    Ok(())
}

/// A line of `retired.jsonl`. The lines form a chain, like the digests:
/// each names the digest of the archive it deleted, with that digest's
/// hash, and the hash of the line before it, so a line cannot be slipped
/// in, changed or dropped without `verify` seeing it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Retired {
    day: String,
    archive: String,
    compressed_sha256: String,
    digest: String,
    digest_sha256: String,
    deleted_at: String,
    /// SHA-256 of the line before (without its newline), or
    /// [`GENESIS_HASH`] for the first.
    previous_sha256: String,
}

/// A hash-chained list of deletions (`retired.jsonl`, and the console
/// access log's): each line names the SHA-256 of the line before it, so a
/// line cannot be slipped in, changed or dropped without `verify` seeing
/// it. Opened lazily: a run that deletes nothing writes nothing.
pub(crate) struct RetiredList {
    path: PathBuf,
    file: Option<std::fs::File>,
    tip: String,
}

impl RetiredList {
    pub(crate) fn open(path: PathBuf) -> anyhow::Result<Self> {
        let tip = match std::fs::read_to_string(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => GENESIS_HASH.to_string(),
            text => text
                .with_context(|| format!("reading {}", path.display()))?
                .lines()
                .last()
                .map_or_else(
                    || GENESIS_HASH.to_string(),
                    |line| hex::encode(Sha256::digest(line)),
                ),
        };
        Ok(Self {
            path,
            file: None,
            tip,
        })
    }

    /// The hash the next line must name.
    pub(crate) fn tip(&self) -> &str {
        &self.tip
    }

    /// Appends `line` (naming [`RetiredList::tip`]) and makes it durable:
    /// the record of a deletion, its name included, is on disk before
    /// anything is deleted.
    pub(crate) fn append(&mut self, line: &impl Serialize) -> anyhow::Result<()> {
        let mut bytes = serde_json::to_vec(line).context("serialising a retirement")?;
        let tip = hex::encode(Sha256::digest(&bytes));
        bytes.push(b'\n');
        let folder = self.path.parent().unwrap_or(Path::new("."));
        let file = match &mut self.file {
            Some(file) => file,
            None => {
                let opened = files::open_append(&self.path)
                    .and_then(|file| files::sync_dir(folder).map(|()| file))
                    .with_context(|| format!("opening {}", self.path.display()))?;
                self.file.insert(opened)
            }
        };
        file.write_all(&bytes)
            .and_then(|()| file.sync_data())
            .with_context(|| format!("writing {}", self.path.display()))?;
        self.tip = tip;
        Ok(())
    }
}

/// A line of a retired list as read back.
pub(crate) struct ReadRetired<T> {
    pub(crate) line: u64,
    /// It names the hash of the line before it.
    pub(crate) linked: bool,
    pub(crate) entry: T,
}

/// The lines of the retired list at `path`, and faults for lines that are
/// not `T` or do not name (by `previous`) the hash of the line before
/// them. A missing list is an empty one.
pub(crate) fn read_retired<T: DeserializeOwned>(
    path: &Path,
    previous: impl Fn(&T) -> &str,
    faults: &mut Vec<Fault>,
) -> anyhow::Result<Vec<ReadRetired<T>>> {
    let text = match std::fs::read_to_string(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        text => text.with_context(|| format!("reading {}", path.display()))?,
    };
    let mut out = Vec::new();
    let mut previous_sha256 = GENESIS_HASH.to_string();
    for (n, line) in text.lines().enumerate() {
        let number = n as u64 + 1;
        let fault = |problem: String| Fault::new(path, problem).at_line(number);
        let expected = std::mem::replace(&mut previous_sha256, hex::encode(Sha256::digest(line)));
        match serde_json::from_str::<T>(line) {
            Err(e) => faults.push(fault(format!("not a retirement record: {e}"))),
            Ok(entry) => {
                let linked = previous(&entry) == expected;
                if !linked {
                    faults.push(fault(
                        "the line does not name the hash of the line before it: the retention log was edited (a line added, changed or removed)".to_string(),
                    ));
                }
                out.push(ReadRetired {
                    line: number,
                    linked,
                    entry,
                });
            }
        }
    }
    Ok(out)
}

/// Another copy of the archives, which retention asks before deleting
/// one: an archive it does not hold is kept whatever its age, as it may be
/// the only copy.
pub trait Copies: fmt::Debug + Send + Sync {
    /// The object names held elsewhere (`archive/DAY.jsonl.gz`,
    /// `access/console-DAY.jsonl`); read once per retention run.
    fn held(&self, dir: &Path) -> anyhow::Result<BTreeSet<String>>;
}

/// Deletes the archives of days before `before` (keeping their digests, so
/// the chain stays checkable) and notes each in `retired.jsonl` first.
/// With `copies`, only archives held there are deleted.
pub(super) fn retire(
    dir: &Path,
    before: Date,
    now: OffsetDateTime,
    copies: Option<&dyn Copies>,
) -> anyhow::Result<Vec<PathBuf>> {
    let listing = list_archive_dir(dir)?;
    let held = copies.map(|copies| copies.held(dir)).transpose()?;
    let digests = load_digests(dir)?;
    let archive_dir = dir.join(ARCHIVE_DIR);
    let mut log = RetiredList::open(archive_dir.join(RETIRED_FILE))?;
    let mut deleted = Vec::new();
    for (date, archive) in listing.archives.range(..before) {
        let Some(stored) = digests.get(date) else {
            continue;
        };
        if days::live_path(dir, *date).exists() {
            continue;
        }
        if let Some(held) = &held
            && !held.contains(&format!("{ARCHIVE_DIR}/{}", file_name(archive)))
        {
            tracing::warn!(archive = %archive.display(), "kept an archive past the retention period: no other copy of it is confirmed yet");
            continue;
        }
        let line = Retired {
            day: days::day_name(*date),
            archive: file_name(archive),
            compressed_sha256: stored.digest.compressed_sha256.clone(),
            digest: stored.name.clone(),
            digest_sha256: stored.sha256.clone(),
            deleted_at: format_timestamp(now),
            previous_sha256: log.tip().to_string(),
        };
        log.append(&line)?;
        std::fs::remove_file(archive).with_context(|| format!("removing {}", archive.display()))?;
        tracing::info!(archive = %archive.display(), "deleted an archive past the retention period");
        deleted.push(archive.clone());
    }
    if !deleted.is_empty() {
        files::sync_dir(&archive_dir)
            .with_context(|| format!("syncing directory {}", archive_dir.display()))?;
    }
    Ok(deleted)
}

/// The retired days named in `retired.jsonl`, with faults for lines that
/// are not retirements or break its chain: a line that does not name the
/// hash of the line before it, or a digest that does not describe the
/// retired archive (so the line was not written by retention).
pub(super) fn load_retired(
    dir: &Path,
    faults: &mut Vec<Fault>,
) -> anyhow::Result<BTreeSet<String>> {
    let path = dir.join(ARCHIVE_DIR).join(RETIRED_FILE);
    let mut out = BTreeSet::new();
    for read in read_retired(&path, |r: &Retired| &r.previous_sha256, faults)? {
        if read.linked
            && let Some(problem) = retired_digest_problem(dir, &read.entry)
        {
            faults.push(Fault::new(&path, problem).at_line(read.line));
        }
        out.insert(read.entry.day);
    }
    Ok(out)
}

/// What is wrong with the digest a retirement names, if anything.
fn retired_digest_problem(dir: &Path, retired: &Retired) -> Option<String> {
    let date = days::parse_day_name(&retired.day)?;
    let path = digest_path(dir, date);
    if retired.digest != file_name(&path) {
        return Some(format!(
            "it retires day {} but names the digest {}",
            retired.day, retired.digest
        ));
    }
    let Ok(bytes) = std::fs::read(&path) else {
        return Some(format!(
            "the digest it names, {}, is missing",
            retired.digest
        ));
    };
    let digest = serde_json::from_slice::<DayDigest>(&bytes).ok();
    let matches = hex::encode(Sha256::digest(&bytes)) == retired.digest_sha256
        && digest.is_some_and(|d| d.compressed_sha256 == retired.compressed_sha256);
    (!matches).then(|| {
        format!(
            "the digest {} is not the one whose archive was retired (its hash differs)",
            retired.digest
        )
    })
}

/// For readers of a log whose oldest archives retention has deleted: the
/// seq and hash of the last deleted record, which the oldest record still
/// present continues from. `None` when nothing was deleted.
pub fn retired_chain_end(dir: &Path) -> anyhow::Result<Option<(u64, String)>> {
    let mut ignored = Vec::new();
    let retired = load_retired(dir, &mut ignored)?;
    let listing = list_archive_dir(dir)?;
    let mut end = None;
    for (date, stored) in load_digests(dir)? {
        if !retired.contains(&stored.digest.day) || listing.archives.contains_key(&date) {
            break;
        }
        if let Some(seq) = stored.digest.last_seq {
            end = Some((seq, stored.digest.last_hash));
        }
    }
    Ok(end)
}
