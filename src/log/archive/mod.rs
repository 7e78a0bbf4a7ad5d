//! Closed days as compressed, digested archives: `DIR/archive/DAY.jsonl.gz`
//! beside `DIR/archive/DAY.digest.json`, and the checks that prove an
//! archive is still what was archived.
//!
//! The model is CloudTrail's log file integrity validation. Each digest
//! records the day's record count, first and last seq, the chain hash the
//! day starts from and ends with, the SHA-256 and size of the uncompressed
//! and of the compressed bytes, and the SHA-256 of the previous digest's
//! exact bytes (a fixed genesis value for the first). So an archive cannot
//! change without disagreeing with its digest, and a digest cannot change
//! or vanish without breaking the digest after it.
//!
//! Archival of a day is: compress the live file to a temporary name,
//! fsync, rename, fsync the directory, read the archive back and check it
//! against what was compressed, write the digest the same way, and only
//! then remove the live file. The digest is the commit point: an archive
//! without a digest was never finished and is simply rewritten by the next
//! run (the live file is still there); a digest with the live file still
//! beside it means only the removal was missed, and the next run removes
//! the live file once it matches the digest. A crash therefore leaves the
//! live file or a complete archive, never neither.
//!
//! This module archives a day and finishes an interrupted run; the digest
//! format is in [`digest`], the checks that read archives back in
//! [`check`], and retention with its chained log in [`retention`].

mod check;
mod digest;
mod retention;

pub use check::check_archives;
pub use digest::{DayDigest, GENESIS_DIGEST, chain_end, digest_path};
pub use retention::{Copies, MIN_RETAIN_DAYS, RETIRED_FILE, parse_retain_days, retired_chain_end};
pub(crate) use retention::{ReadRetired, RetiredList, read_retired};

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, bail};
use flate2::{Compression, GzBuilder};
use sha2::{Digest as _, Sha256};
use time::{Date, Duration, OffsetDateTime};

use self::check::{CheckThread, Content, Depth, read_archive, read_chunk};
use self::digest::{DIGEST_VERSION, Hashing, Stored, hash_file, load_digests};
use super::chain::Chain;
use super::days::{self, ARCHIVE_DIR};
use super::files;
use super::record::{GENESIS_HASH, format_timestamp};
use crate::clock::Clock;

/// gzip level: `gzip -6`, gzip's own default.
const LEVEL: u32 = 6;
/// How much is read, compressed and checked at a time.
const CHUNK: usize = 1 << 20;
const TMP_SUFFIX: &str = ".tmp";

/// What archival is asked to do beyond archiving closed days.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Delete archives of days more than this many days before today.
    /// Never by default; at least [`MIN_RETAIN_DAYS`].
    pub retain_days: Option<u32>,
    /// Retention deletes only archives held there (the S3 bucket, when
    /// shipping is configured).
    pub copies: Option<std::sync::Arc<dyn Copies>>,
}

/// One day archived by a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archived {
    pub date: Date,
    pub archive: PathBuf,
    pub records: u64,
    pub uncompressed_bytes: u64,
    pub compressed_bytes: u64,
}

/// What one archival run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub archived: Vec<Archived>,
    /// Days whose archive was complete but whose live file an interrupted
    /// run had not removed yet; removed now.
    pub finished: Vec<Date>,
    /// Archives deleted by retention.
    pub retired: Vec<PathBuf>,
}

/// Archival was stopped (the server is shutting down); nothing half done
/// is left behind.
#[derive(Debug, thiserror::Error)]
#[error("archival was stopped before it finished")]
pub struct Cancelled;

/// Archives every closed day (a UTC date before `clock`'s today) that
/// still has a live file, oldest first, then applies retention. Setting
/// `cancel` stops the run between chunks with [`Cancelled`], leaving each
/// day live or completely archived.
pub fn archive_closed_days(
    dir: &Path,
    clock: &dyn Clock,
    options: &Options,
    cancel: &AtomicBool,
) -> anyhow::Result<Summary> {
    let now = clock.now();
    let today = now.date();
    days::ensure_log_dir(dir)?;
    let archive_dir = dir.join(ARCHIVE_DIR);
    files::create_dir(&archive_dir)
        .with_context(|| format!("creating {}", archive_dir.display()))?;
    let _lock = lock(&archive_dir)?;
    remove_temporaries(&archive_dir)?;
    let mut digests = load_digests(dir)?;
    let mut summary = Summary::default();
    let all_days = days::list(dir).with_context(|| format!("listing {}", dir.display()))?;
    for day in all_days.iter().filter(|d| d.date < today) {
        let Some(live) = &day.live else { continue };
        if cancel.load(Ordering::Relaxed) {
            return Err(Cancelled.into());
        }
        if let Some(stored) = digests.get(&day.date) {
            finish_interrupted(dir, day.date, live, &stored.digest)?;
            summary.finished.push(day.date);
            continue;
        }
        if let Some((later, _)) = digests.range(day.date..).next() {
            bail!(
                "{} cannot be archived: the later day {later} is already archived, and the digest chain only grows at its end",
                live.display()
            );
        }
        let previous = digests.last_key_value().map(|(_, stored)| stored);
        let stored = archive_day(dir, day.date, live, previous, now, cancel)?;
        summary.archived.push(Archived {
            date: day.date,
            archive: days::archive_path(dir, day.date),
            records: stored.digest.records,
            uncompressed_bytes: stored.digest.uncompressed_bytes,
            compressed_bytes: stored.digest.compressed_bytes,
        });
        digests.insert(day.date, stored);
    }
    if let Some(keep) = options.retain_days {
        retention::check_retain_days(keep).map_err(anyhow::Error::msg)?;
        let before = today - Duration::days(keep.into());
        let copies = options.copies.as_deref();
        summary.retired = retention::retire(dir, before, now, copies)?;
        // The console's access days go with the archives, by the same rule.
        summary
            .retired
            .extend(crate::log::access::retention::retire(
                dir, before, now, copies,
            )?);
    }
    Ok(summary)
}

/// The archive and digest were written but the live file was not removed:
/// remove it now, if it is exactly what was archived.
fn finish_interrupted(
    dir: &Path,
    date: Date,
    live: &Path,
    digest: &DayDigest,
) -> anyhow::Result<()> {
    let archive = days::archive_path(dir, date);
    let found = read_archive(&archive, Depth::Bytes).with_context(|| {
        format!(
            "checking {} before removing {}",
            archive.display(),
            live.display()
        )
    })?;
    let mismatches = found.disagreements(digest);
    if !mismatches.is_empty() {
        bail!(
            "{} is archived, but {} does not match its digest ({}); left both in place; run rollcall verify",
            live.display(),
            archive.display(),
            mismatches.join("; ")
        );
    }
    let (bytes, sha256) = hash_file(live)?;
    if bytes != digest.uncompressed_bytes || sha256 != digest.uncompressed_sha256 {
        bail!(
            "{} is both live and archived, and the two differ; left both in place; run rollcall verify",
            live.display()
        );
    }
    remove_live(dir, live)?;
    tracing::info!(day = %days::day_name(date), "finished an interrupted archival: removed the live file");
    Ok(())
}

fn archive_day(
    dir: &Path,
    date: Date,
    live: &Path,
    previous: Option<&Stored>,
    now: OffsetDateTime,
    cancel: &AtomicBool,
) -> anyhow::Result<Stored> {
    let archive_dir = dir.join(ARCHIVE_DIR);
    let archive = days::archive_path(dir, date);
    let temporary = temporary_path(&archive);
    let written = match compress(live, &temporary, cancel) {
        Ok(written) => written,
        Err(e) => {
            let _ = std::fs::remove_file(&temporary);
            return Err(e);
        }
    };
    let (carried_seq, carried_hash) = match previous {
        Some(p) => (p.digest.last_seq, p.digest.last_hash.as_str()),
        None => (None, GENESIS_HASH),
    };
    if let Some(first) = written.content.first_seq {
        let carried = Chain::after(carried_seq.unwrap_or(0), carried_hash.to_string());
        let chain_start = written.content.chain_start.as_deref().unwrap_or_default();
        if carried.check(first, chain_start).is_err() {
            let _ = std::fs::remove_file(&temporary);
            bail!(
                "{} does not continue the log where {} ends (first seq {first}, expected {}); not archived; run rollcall verify",
                live.display(),
                previous.map_or("the start of the log", |p| p.name.as_str()),
                carried.next_seq,
            );
        }
    }
    std::fs::rename(&temporary, &archive)
        .with_context(|| format!("renaming {} to {}", temporary.display(), archive.display()))?;
    files::sync_dir(&archive_dir)
        .with_context(|| format!("syncing directory {}", archive_dir.display()))?;

    let digest = DayDigest {
        version: DIGEST_VERSION,
        day: days::day_name(date),
        archive: file_name(&archive),
        records: written.content.records,
        first_seq: written.content.first_seq,
        last_seq: written.content.last_seq,
        chain_start: written
            .content
            .chain_start
            .clone()
            .unwrap_or_else(|| carried_hash.to_string()),
        last_hash: written
            .content
            .last_hash
            .clone()
            .unwrap_or_else(|| carried_hash.to_string()),
        uncompressed_bytes: written.content.bytes,
        uncompressed_sha256: written.content.sha256.clone(),
        compressed_bytes: written.compressed_bytes,
        compressed_sha256: written.compressed_sha256.clone(),
        previous_digest: previous.map(|p| p.name.clone()),
        previous_digest_sha256: previous.map_or(GENESIS_DIGEST.to_string(), |p| p.sha256.clone()),
        archived_at: format_timestamp(now),
    };
    // Read the archive back from disk: only what can be read back counts.
    // Matching the uncompressed SHA-256 proves the archive holds exactly the
    // bytes whose records were checked on the way in.
    let found = read_archive(&archive, Depth::Bytes)
        .with_context(|| format!("reading back {}", archive.display()))?;
    let mismatches = found.disagreements(&digest);
    if !mismatches.is_empty() {
        bail!(
            "{} did not read back as written ({}); {} was kept",
            archive.display(),
            mismatches.join("; "),
            live.display()
        );
    }

    let mut bytes = serde_json::to_vec_pretty(&digest).expect("a digest always serialises");
    bytes.push(b'\n');
    let path = digest_path(dir, date);
    write_durably(&path, &bytes)?;

    let still = std::fs::metadata(live).with_context(|| format!("reading {}", live.display()))?;
    // Only a regular file can have grown; the writer never appends to a
    // closed day, so this is someone else's doing.
    if still.is_file() && still.len() != digest.uncompressed_bytes {
        bail!(
            "{} changed while it was being archived; left it in place",
            live.display()
        );
    }
    remove_live(dir, live)?;
    tracing::info!(
        day = %digest.day,
        records = digest.records,
        uncompressed_bytes = digest.uncompressed_bytes,
        compressed_bytes = digest.compressed_bytes,
        "archived a closed day"
    );
    Ok(Stored {
        name: file_name(&path),
        digest,
        sha256: hex::encode(Sha256::digest(&bytes)),
    })
}

/// What compressing a live file produced.
struct Written {
    content: Content,
    compressed_bytes: u64,
    compressed_sha256: String,
}

/// Compresses `live` into a new `temporary`, checking every line on the
/// way, and makes the result durable.
fn compress(live: &Path, temporary: &Path, cancel: &AtomicBool) -> anyhow::Result<Written> {
    let mut input = File::open(live).with_context(|| format!("opening {}", live.display()))?;
    let output = files::create_new(temporary)
        .with_context(|| format!("creating {}", temporary.display()))?;
    let inner_name = file_name(live);
    let mut gz = GzBuilder::new().filename(inner_name.as_bytes()).write(
        Hashing::new(BufWriter::with_capacity(CHUNK, output)),
        Compression::new(LEVEL),
    );
    let checker = CheckThread::start(live, Depth::Records)?;
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(Cancelled.into());
        }
        let chunk =
            read_chunk(&mut input).with_context(|| format!("reading {}", live.display()))?;
        if chunk.is_empty() {
            break;
        }
        gz.write_all(&chunk)
            .with_context(|| format!("writing {}", temporary.display()))?;
        checker.feed(chunk);
    }
    let content = checker.finish();
    if let Some(fault) = &content.fault {
        bail!(
            "{}:{}: {}; not archived; run rollcall verify",
            live.display(),
            fault.line.unwrap_or_default(),
            fault.problem
        );
    }
    let hashing = gz
        .finish()
        .with_context(|| format!("writing {}", temporary.display()))?;
    let (buffered, compressed_bytes, compressed_sha256) = hashing.finish();
    let file = buffered
        .into_inner()
        .map_err(|e| e.into_error())
        .with_context(|| format!("writing {}", temporary.display()))?;
    file.sync_all()
        .with_context(|| format!("syncing {}", temporary.display()))?;
    Ok(Written {
        content,
        compressed_bytes,
        compressed_sha256,
    })
}

/// Writes `bytes` to a new file at `path` through a temporary name, with
/// the file and the directory fsync'd.
fn write_durably(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let temporary = temporary_path(path);
    let _ = std::fs::remove_file(&temporary);
    let mut file = files::create_new(&temporary)
        .with_context(|| format!("creating {}", temporary.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", temporary.display()))?;
    std::fs::rename(&temporary, path)
        .with_context(|| format!("renaming {} to {}", temporary.display(), path.display()))?;
    let parent = path.parent().expect("an archive path has a directory");
    files::sync_dir(parent).with_context(|| format!("syncing directory {}", parent.display()))
}

fn remove_live(dir: &Path, live: &Path) -> anyhow::Result<()> {
    std::fs::remove_file(live).with_context(|| format!("removing {}", live.display()))?;
    files::sync_dir(dir).with_context(|| format!("syncing directory {}", dir.display()))
}

/// `archive/.NAME.tmp`: never a name [`days::list`] or a digest lookup
/// would take for a finished file.
fn temporary_path(path: &Path) -> PathBuf {
    path.with_file_name(format!(".{}{TMP_SUFFIX}", file_name(path)))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Left over by a run that crashed or was stopped: never authoritative.
fn remove_temporaries(archive_dir: &Path) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(archive_dir)
        .with_context(|| format!("listing {}", archive_dir.display()))?
    {
        let path = entry?.path();
        let name = file_name(&path);
        if name.starts_with('.') && name.ends_with(TMP_SUFFIX) {
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    Ok(())
}

fn lock(archive_dir: &Path) -> anyhow::Result<File> {
    let path = archive_dir.join(files::LOCK_FILE);
    files::try_lock(archive_dir)
        .with_context(|| format!("locking {}", path.display()))?
        .with_context(|| {
            format!(
                "another archival is running in {} (it holds {}): serve's nightly run or another `rollcall archive`; let it finish, then run this again",
                archive_dir.display(),
                path.display()
            )
        })
}
