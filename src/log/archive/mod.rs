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

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs::File;
use std::future::Future;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

use anyhow::{Context, bail};
use flate2::read::MultiGzDecoder;
use flate2::{Compression, GzBuilder};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use time::{Date, Duration, OffsetDateTime, Time};
use tokio::sync::watch;

use super::days::{self, ARCHIVE_DIR};
use super::files;
use super::record::{self, GENESIS_HASH, format_timestamp};
use super::writer::DEDUP_DAYS;
use crate::clock::Clock;
use crate::metrics::Metrics;

/// `previous_digest_sha256` of the first digest.
pub const GENESIS_DIGEST: &str = GENESIS_HASH;
/// gzip level: `gzip -6`, gzip's own default.
const LEVEL: u32 = 6;
const CHUNK: usize = 1 << 20;
const DIGEST_SUFFIX: &str = ".digest.json";
const DIGEST_VERSION: u32 = 1;
/// Held by whoever is archiving, so `rollcall archive` and a server's
/// nightly run never work on the same day at once.
/// One line per archive deleted by retention; its digest stays, so the
/// digest chain stays whole.
pub const RETIRED_FILE: &str = "retired.jsonl";
const TMP_SUFFIX: &str = ".tmp";

/// What archival is asked to do beyond archiving closed days.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Delete archives of days more than this many days before today.
    /// Never by default; at least [`MIN_RETAIN_DAYS`].
    pub retain_days: Option<u32>,
}

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

fn check_retain_days(days: u32) -> Result<(), String> {
    if days < MIN_RETAIN_DAYS {
        return Err(format!(
            "--retain-days {days} is below {MIN_RETAIN_DAYS}: duplicates are recognised over the last {MIN_RETAIN_DAYS} days, so those days must be kept; give {MIN_RETAIN_DAYS} or more"
        ));
    }
    Ok(())
}

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

/// Something wrong with an archive, a digest, or the chain between them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub file: PathBuf,
    pub line: Option<u64>,
    pub seq: Option<u64>,
    pub problem: String,
}

impl Fault {
    fn new(file: &Path, problem: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            line: None,
            seq: None,
            problem: problem.into(),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(seq) = self.seq {
            write!(f, " (seq {seq})")?;
        }
        write!(f, ": {}", self.problem)
    }
}

/// `DIR/archive/YYYY-MM-DD.digest.json`.
pub fn digest_path(dir: &Path, date: Date) -> PathBuf {
    dir.join(ARCHIVE_DIR)
        .join(format!("{}{DIGEST_SUFFIX}", days::day_name(date)))
}

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
        check_retain_days(keep).map_err(anyhow::Error::msg)?;
        summary.retired = retire(dir, today - Duration::days(keep.into()), now)?;
    }
    Ok(summary)
}

/// A digest as loaded: its fields and the hash of its exact bytes.
struct Stored {
    name: String,
    digest: DayDigest,
    sha256: String,
}

fn load_digests(dir: &Path) -> anyhow::Result<BTreeMap<Date, Stored>> {
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
        let expected = carried_seq.map_or(1, |s| s + 1);
        let chain_start = written.content.chain_start.as_deref().unwrap_or_default();
        if first != expected || chain_start != carried_hash {
            let _ = std::fs::remove_file(&temporary);
            bail!(
                "{} does not continue the log where {} ends (first seq {first}, expected {expected}); not archived; run rollcall verify",
                live.display(),
                previous.map_or("the start of the log", |p| p.name.as_str()),
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
    let checker = CheckThread::start(Depth::Records)?;
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
            fault.line,
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

/// An archive as read from disk.
struct Found {
    compressed_bytes: u64,
    compressed_sha256: String,
    /// Why it could not be decompressed to the end, if so.
    decode_error: Option<String>,
    content: Content,
    depth: Depth,
}

impl Found {
    /// How this archive disagrees with `digest`, one phrase per field.
    fn disagreements(&self, digest: &DayDigest) -> Vec<String> {
        let mut out = Vec::new();
        if self.compressed_sha256 != digest.compressed_sha256
            || self.compressed_bytes != digest.compressed_bytes
        {
            out.push(format!(
                "its bytes do not match the digest (sha256 {}, {} bytes; the digest says {}, {} bytes)",
                self.compressed_sha256,
                self.compressed_bytes,
                digest.compressed_sha256,
                digest.compressed_bytes
            ));
        }
        if let Some(error) = &self.decode_error {
            out.push(format!("it cannot be decompressed: {error}"));
            return out;
        }
        let c = &self.content;
        if c.sha256 != digest.uncompressed_sha256 || c.bytes != digest.uncompressed_bytes {
            out.push(
                "its decompressed content does not match the digest's uncompressed sha256 and size"
                    .into(),
            );
        }
        if self.depth == Depth::Bytes {
            return out;
        }
        if c.records != digest.records {
            out.push(format!(
                "it holds {} records, the digest says {}",
                c.records, digest.records
            ));
        }
        if c.first_seq != digest.first_seq || c.last_seq != digest.last_seq {
            out.push(format!(
                "it holds seqs {}, the digest says {}",
                seq_range(c.first_seq, c.last_seq),
                seq_range(digest.first_seq, digest.last_seq)
            ));
        }
        if c.records > 0
            && (c.chain_start.as_deref() != Some(&digest.chain_start)
                || c.last_hash.as_deref() != Some(&digest.last_hash))
        {
            out.push("its chain hashes do not match the digest".into());
        }
        out
    }
}

fn seq_range(first: Option<u64>, last: Option<u64>) -> String {
    match (first, last) {
        (Some(f), Some(l)) => format!("{f}..={l}"),
        _ => "none".into(),
    }
}

/// Reads a whole archive, hashing its compressed and decompressed bytes
/// and checking every record on the way. `Err` only if it cannot be opened.
fn read_archive(path: &Path, depth: Depth) -> io::Result<Found> {
    let file = File::open(path)?;
    let mut compressed = Hashing::new(BufReader::with_capacity(CHUNK, file));
    let checker = CheckThread::start(depth)?;
    let mut decoder = MultiGzDecoder::new(&mut compressed);
    let decode_error = loop {
        match read_chunk(&mut decoder) {
            Ok(chunk) if chunk.is_empty() => break None,
            Ok(chunk) => checker.feed(chunk),
            Err(e) => break Some(e.to_string()),
        }
    };
    drop(decoder);
    // After a decode error, still hash the rest so the size is the file's.
    io::copy(&mut compressed, &mut io::sink())?;
    let (_, compressed_bytes, compressed_sha256) = compressed.finish();
    Ok(Found {
        compressed_bytes,
        compressed_sha256,
        decode_error,
        content: checker.finish(),
        depth,
    })
}

/// How far to check a day's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Depth {
    /// Hash and count them only.
    Bytes,
    /// Also check every record and the chain between them.
    #[default]
    Records,
}

/// The first thing wrong with a day's lines.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LineFault {
    line: u64,
    seq: Option<u64>,
    problem: String,
}

/// What a day's bytes hold.
#[derive(Debug, Clone, Default)]
struct Content {
    bytes: u64,
    sha256: String,
    records: u64,
    first_seq: Option<u64>,
    last_seq: Option<u64>,
    chain_start: Option<String>,
    last_hash: Option<String>,
    fault: Option<LineFault>,
}

/// Checks a day's bytes as they stream past: every line a whole record
/// with a good hash, seqs consecutive, each record chained to the one
/// before it.
#[derive(Default)]
struct ContentCheck {
    depth: Depth,
    hasher: Sha256,
    content: Content,
    lines: u64,
    partial: Vec<u8>,
}

impl ContentCheck {
    fn feed(&mut self, mut bytes: &[u8]) {
        self.hasher.update(bytes);
        self.content.bytes += bytes.len() as u64;
        if self.depth == Depth::Bytes {
            return;
        }
        while let Some(end) = bytes.iter().position(|&b| b == b'\n') {
            if self.partial.is_empty() {
                self.line(&bytes[..end]);
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(&bytes[..end]);
                self.line(&line);
                line.clear();
                self.partial = line;
            }
            bytes = &bytes[end + 1..];
        }
        self.partial.extend_from_slice(bytes);
    }

    fn line(&mut self, line: &[u8]) {
        self.lines += 1;
        if self.content.fault.is_some() {
            return;
        }
        let c = &mut self.content;
        let record = match record::parse_line(line) {
            Ok(record) => record,
            Err(e) => {
                c.fault = Some(LineFault {
                    line: self.lines,
                    seq: None,
                    problem: e.to_string(),
                });
                return;
            }
        };
        let problem = match (&c.last_seq, &c.last_hash) {
            (Some(last), _) if record.seq != last + 1 => Some(format!(
                "seq {} follows seq {last}: records are missing or repeated",
                record.seq
            )),
            (_, Some(hash)) if &record.prev_hash != hash => {
                Some("its prev_hash is not the hash of the record before it".to_string())
            }
            _ => None,
        };
        if let Some(problem) = problem {
            c.fault = Some(LineFault {
                line: self.lines,
                seq: Some(record.seq),
                problem,
            });
            return;
        }
        if c.first_seq.is_none() {
            c.first_seq = Some(record.seq);
            c.chain_start = Some(record.prev_hash);
        }
        c.records += 1;
        c.last_seq = Some(record.seq);
        c.last_hash = Some(record.hash);
    }

    fn finish(mut self) -> Content {
        if !self.partial.is_empty() && self.content.fault.is_none() {
            self.content.fault = Some(LineFault {
                line: self.lines + 1,
                seq: None,
                problem: "the last line has no newline (a torn write)".into(),
            });
        }
        self.content.sha256 = hex::encode(self.hasher.finalize());
        self.content
    }
}

/// A [`ContentCheck`] on a thread of its own, so that checking records
/// and (de)compressing them use two cores.
struct CheckThread {
    chunks: mpsc::SyncSender<Vec<u8>>,
    thread: JoinHandle<Content>,
}

impl CheckThread {
    fn start(depth: Depth) -> io::Result<Self> {
        let (chunks, queue) = mpsc::sync_channel::<Vec<u8>>(4);
        let thread = std::thread::Builder::new()
            .name("archive-check".into())
            .spawn(move || {
                let mut check = ContentCheck {
                    depth,
                    ..ContentCheck::default()
                };
                for chunk in queue {
                    check.feed(&chunk);
                }
                check.finish()
            })?;
        Ok(Self { chunks, thread })
    }

    fn feed(&self, chunk: Vec<u8>) {
        // Only fails if the thread died, which `finish` reports.
        let _ = self.chunks.send(chunk);
    }

    fn finish(self) -> Content {
        drop(self.chunks);
        self.thread.join().expect("checking lines never panics")
    }
}

/// Up to [`CHUNK`] bytes, fewer only at the end; empty at the end.
fn read_chunk(reader: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut chunk = Vec::with_capacity(CHUNK);
    reader.take(CHUNK as u64).read_to_end(&mut chunk)?;
    Ok(chunk)
}

/// Counts and hashes the bytes that pass through.
struct Hashing<T> {
    inner: T,
    hasher: Sha256,
    bytes: u64,
}

impl<T> Hashing<T> {
    fn new(inner: T) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    fn finish(self) -> (T, u64, String) {
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

fn hash_file(path: &Path) -> anyhow::Result<(u64, String)> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hashing = Hashing::new(BufReader::with_capacity(CHUNK, file));
    io::copy(&mut hashing, &mut io::sink())
        .with_context(|| format!("reading {}", path.display()))?;
    let (_, bytes, sha256) = hashing.finish();
    Ok((bytes, sha256))
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

/// The hash the next line of `retired.jsonl` must name.
fn retired_chain_hash(lines: &str) -> String {
    lines.lines().last().map_or_else(
        || GENESIS_HASH.to_string(),
        |line| hex::encode(Sha256::digest(line)),
    )
}

/// Deletes the archives of days before `before` (keeping their digests, so
/// the chain stays checkable) and notes each in `retired.jsonl` first.
fn retire(dir: &Path, before: Date, now: OffsetDateTime) -> anyhow::Result<Vec<PathBuf>> {
    let listing = list_archive_dir(dir)?;
    let digests = load_digests(dir)?;
    let archive_dir = dir.join(ARCHIVE_DIR);
    let log_path = archive_dir.join(RETIRED_FILE);
    let mut previous_sha256 = match std::fs::read_to_string(&log_path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => GENESIS_HASH.to_string(),
        text => {
            retired_chain_hash(&text.with_context(|| format!("reading {}", log_path.display()))?)
        }
    };
    let mut log = None;
    let mut deleted = Vec::new();
    for (date, archive) in listing.archives.range(..before) {
        let Some(stored) = digests.get(date) else {
            continue;
        };
        if days::live_path(dir, *date).exists() {
            continue;
        }
        let line = Retired {
            day: days::day_name(*date),
            archive: file_name(archive),
            compressed_sha256: stored.digest.compressed_sha256.clone(),
            digest: stored.name.clone(),
            digest_sha256: stored.sha256.clone(),
            deleted_at: format_timestamp(now),
            previous_sha256,
        };
        let mut bytes = serde_json::to_vec(&line).expect("a retirement always serialises");
        previous_sha256 = hex::encode(Sha256::digest(&bytes));
        bytes.push(b'\n');
        // The record of the deletion, its name included, is durable before
        // anything is deleted.
        let log = match &mut log {
            Some(log) => log,
            None => {
                let opened = files::open_append(&log_path)
                    .and_then(|file| files::sync_dir(&archive_dir).map(|()| file))
                    .with_context(|| format!("opening {}", log_path.display()))?;
                log.insert(opened)
            }
        };
        log.write_all(&bytes)
            .and_then(|()| log.sync_data())
            .with_context(|| format!("writing {}", log_path.display()))?;
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

/// What `DIR/archive` holds, by day.
#[derive(Default)]
struct Listing {
    archives: BTreeMap<Date, PathBuf>,
    digests: BTreeMap<Date, PathBuf>,
}

fn list_archive_dir(dir: &Path) -> anyhow::Result<Listing> {
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

/// The retired days named in `retired.jsonl`, with faults for lines that
/// are not retirements or break its chain: a line that does not name the
/// hash of the line before it, or a digest that does not describe the
/// retired archive (so the line was not written by retention).
fn load_retired(dir: &Path, faults: &mut Vec<Fault>) -> anyhow::Result<BTreeSet<String>> {
    let path = dir.join(ARCHIVE_DIR).join(RETIRED_FILE);
    let text = match std::fs::read_to_string(&path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
        text => text.with_context(|| format!("reading {}", path.display()))?,
    };
    let mut out = BTreeSet::new();
    let mut previous_sha256 = GENESIS_HASH.to_string();
    for (n, line) in text.lines().enumerate() {
        let fault = |problem: String| Fault {
            line: Some(n as u64 + 1),
            ..Fault::new(&path, problem)
        };
        let expected = std::mem::replace(&mut previous_sha256, hex::encode(Sha256::digest(line)));
        let retired = match serde_json::from_str::<Retired>(line) {
            Ok(retired) => retired,
            Err(e) => {
                faults.push(fault(format!("not a retirement record: {e}")));
                continue;
            }
        };
        if retired.previous_sha256 != expected {
            faults.push(fault(
                "the line does not name the hash of the line before it: the retention log was edited (a line added, changed or removed)".to_string(),
            ));
        } else if let Some(problem) = retired_digest_problem(dir, &retired) {
            faults.push(fault(problem));
        }
        out.insert(retired.day);
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

/// Checks every archive against its digest and every digest against the
/// one before it. An empty list means all is well; `Err` means the check
/// could not run (the directory cannot be read).
///
/// Reported: an archive whose bytes or content disagree with its digest
/// (a flipped byte, a damaged or re-ordered record); a digest without its
/// archive (unless retention deleted it); an archive without a digest; a
/// digest that is missing, edited or out of place in the chain; records
/// archived twice or skipped between days; and a day that is still live
/// beside its archive.
pub fn check_archives(dir: &Path) -> anyhow::Result<Vec<Fault>> {
    let mut faults = Vec::new();
    let listing = list_archive_dir(dir)?;
    let retired = load_retired(dir, &mut faults)?;
    // The digest before the one being checked, and the chain as it stood
    // after the last non-empty day.
    let mut previous: Option<(PathBuf, String)> = None;
    let mut carried: Option<(u64, String)> = Some((0, GENESIS_HASH.to_string()));
    let mut kept_one = false;
    for (date, path) in &listing.digests {
        let name = file_name(path);
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let digest = match serde_json::from_slice::<DayDigest>(&bytes) {
            Ok(digest) => digest,
            Err(e) => {
                faults.push(Fault::new(path, format!("not a readable digest: {e}")));
                previous = Some((path.clone(), sha256));
                carried = None;
                continue;
            }
        };
        let day = days::day_name(*date);
        let archive = days::archive_path(dir, *date);
        if digest.day != day || digest.archive != file_name(&archive) {
            faults.push(Fault::new(
                path,
                format!(
                    "it describes day {} ({}), not the day its name says",
                    digest.day, digest.archive
                ),
            ));
        }
        check_link(path, &digest, previous.as_ref(), dir, &mut faults);
        if let (Some((last_seq, last_hash)), Some(first)) = (&carried, digest.first_seq) {
            if first <= *last_seq {
                faults.push(Fault::new(
                    path,
                    format!(
                        "records {} are archived twice: seq {first} was already in an earlier day",
                        seq_range(digest.first_seq, digest.last_seq)
                    ),
                ));
            } else if first != last_seq + 1 {
                faults.push(Fault::new(
                    path,
                    format!(
                        "seqs {}..={} are missing before this day",
                        last_seq + 1,
                        first - 1
                    ),
                ));
            } else if &digest.chain_start != last_hash {
                faults.push(Fault::new(
                    path,
                    "the day does not continue the hash chain of the day before it",
                ));
            }
        }
        match listing.archives.get(date) {
            Some(archive) => {
                check_one_archive(archive, &name, &digest, &mut faults)?;
                kept_one = true;
            }
            // Retention deletes the oldest archives first: a gap after a
            // kept archive was not its doing.
            None if retired.contains(&day) && kept_one => faults.push(Fault::new(
                &archive,
                format!(
                    "the archive is missing and named as retired, but an older archive is kept: retention deletes the oldest first (its digest {name} is still there)"
                ),
            )),
            None if retired.contains(&day) => {}
            None => faults.push(Fault::new(
                &archive,
                format!("the archive is missing (its digest {name} is still there)"),
            )),
        }
        let live = days::live_path(dir, *date);
        if live.exists() {
            let (bytes, sha) = hash_file(&live)?;
            let problem = if bytes == digest.uncompressed_bytes && sha == digest.uncompressed_sha256
            {
                "the day is archived but its live file is still there (an archival did not finish; rollcall archive finishes it)"
            } else {
                "the day is archived twice: the live file differs from the archived day"
            };
            faults.push(Fault::new(&live, problem));
        }
        if let Some(last_seq) = digest.last_seq {
            carried = Some((last_seq, digest.last_hash.clone()));
        }
        previous = Some((path.clone(), sha256));
    }
    for (date, archive) in &listing.archives {
        if !listing.digests.contains_key(date) {
            faults.push(Fault::new(
                archive,
                format!(
                    "the archive has no digest ({} is missing)",
                    file_name(&digest_path(dir, *date))
                ),
            ));
        }
    }
    Ok(faults)
}

/// Checks that `digest` names the digest before it and the hash of its
/// exact bytes.
fn check_link(
    path: &Path,
    digest: &DayDigest,
    previous: Option<&(PathBuf, String)>,
    dir: &Path,
    faults: &mut Vec<Fault>,
) {
    let name = file_name(path);
    let previous_name = previous.map(|(p, _)| file_name(p));
    if digest.previous_digest != previous_name {
        let problem = match &digest.previous_digest {
            Some(named) if !dir.join(ARCHIVE_DIR).join(named).exists() => {
                format!("the digest before it, {named}, is missing")
            }
            Some(named) => format!(
                "it names {named} as the digest before it, but that is {}",
                previous_name.as_deref().unwrap_or("nothing")
            ),
            None => format!(
                "it claims to be the first digest, but {} comes before it",
                previous_name.as_deref().unwrap_or("nothing")
            ),
        };
        faults.push(Fault::new(path, problem));
        return;
    }
    let expected = previous.map_or(GENESIS_DIGEST, |(_, sha)| sha.as_str());
    if digest.previous_digest_sha256 != expected {
        match previous {
            Some((previous_path, _)) => faults.push(Fault::new(
                previous_path,
                format!("the digest was changed after {name} recorded its hash"),
            )),
            None => faults.push(Fault::new(
                path,
                "the first digest does not link to the genesis value",
            )),
        }
    }
}

fn check_one_archive(
    archive: &Path,
    digest_name: &str,
    digest: &DayDigest,
    faults: &mut Vec<Fault>,
) -> anyhow::Result<()> {
    let found = read_archive(archive, Depth::Records)
        .with_context(|| format!("reading {}", archive.display()))?;
    for problem in found.disagreements(digest) {
        faults.push(Fault::new(archive, format!("{problem} ({digest_name})")));
    }
    if found.decode_error.is_none()
        && let Some(fault) = found.content.fault
    {
        faults.push(Fault {
            line: Some(fault.line),
            seq: fault.seq,
            ..Fault::new(archive, fault.problem)
        });
    }
    Ok(())
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

/// When the next nightly run after `now` is due: the first `at` (UTC)
/// strictly after `now`.
pub fn next_run_after(now: OffsetDateTime, at: Time) -> OffsetDateTime {
    let now = now.to_offset(time::UtcOffset::UTC);
    let today = now.replace_time(at);
    if today > now {
        today
    } else {
        today + Duration::days(1)
    }
}

/// Runs archival every day at a fixed UTC time, off the request path.
pub struct Nightly {
    dir: PathBuf,
    clock: Arc<dyn Clock>,
    at: Time,
    options: Options,
    metrics: Arc<Metrics>,
    runs: watch::Sender<u64>,
}

impl Nightly {
    pub fn new(dir: PathBuf, clock: Arc<dyn Clock>, at: Time, metrics: Arc<Metrics>) -> Self {
        Self {
            dir,
            clock,
            at,
            options: Options::default(),
            metrics,
            runs: watch::Sender::new(0),
        }
    }

    pub fn options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }

    /// The number of runs finished so far, to wait on.
    pub fn runs(&self) -> watch::Receiver<u64> {
        self.runs.subscribe()
    }

    /// Sleeps until each run is due, archives on the blocking pool, and
    /// returns once `shutdown` resolves (stopping a run in progress
    /// cleanly).
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let mut shutdown = std::pin::pin!(shutdown);
        let mut due = next_run_after(self.clock.now(), self.at);
        loop {
            let wait = due - self.clock.now();
            let wait = std::time::Duration::try_from(wait).unwrap_or_default();
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = &mut shutdown => return,
            }
            self.metrics.archive_runs.fetch_add(1, Ordering::Relaxed);
            let cancel = Arc::new(AtomicBool::new(false));
            let job = tokio::task::spawn_blocking({
                let (dir, clock, options, cancel) = (
                    self.dir.clone(),
                    self.clock.clone(),
                    self.options.clone(),
                    cancel.clone(),
                );
                move || archive_closed_days(&dir, &*clock, &options, &cancel)
            });
            let mut job = std::pin::pin!(job);
            let outcome = tokio::select! {
                outcome = &mut job => outcome,
                () = &mut shutdown => {
                    cancel.store(true, Ordering::Relaxed);
                    let _ = job.await;
                    return;
                }
            };
            match outcome {
                Ok(Ok(summary)) => tracing::info!(
                    archived = summary.archived.len(),
                    finished = summary.finished.len(),
                    retired = summary.retired.len(),
                    "nightly archival done"
                ),
                Ok(Err(error)) => {
                    self.metrics
                        .archive_failures
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::error!(error = %format!("{error:#}"), "nightly archival failed; the live files are kept");
                }
                Err(error) => {
                    self.metrics
                        .archive_failures
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::error!(%error, "nightly archival panicked; the live files are kept");
                }
            }
            self.runs.send_modify(|n| *n += 1);
            due = next_run_after(self.clock.now().max(due), self.at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{datetime, time};

    #[test]
    fn the_next_run_is_later_today_or_else_tomorrow() {
        let at = time!(00:05);
        assert_eq!(
            next_run_after(datetime!(2026-11-27 00:04:59 UTC), at),
            datetime!(2026-11-27 00:05 UTC)
        );
        assert_eq!(
            next_run_after(datetime!(2026-11-27 00:05 UTC), at),
            datetime!(2026-11-28 00:05 UTC)
        );
        assert_eq!(
            next_run_after(datetime!(2026-11-27 12:00 UTC), at),
            datetime!(2026-11-28 00:05 UTC)
        );
        assert_eq!(
            next_run_after(datetime!(2026-12-31 23:59 UTC), at),
            datetime!(2027-01-01 00:05 UTC)
        );
    }

    #[test]
    fn lines_split_across_chunks_are_checked_whole() {
        let mut record = crate::log::record::example();
        let mut bytes = record.seal();
        record.seq = 2;
        record.prev_hash = record.hash.clone();
        bytes.extend(record.seal());
        for split in [1, 50, bytes.len() / 2, bytes.len() - 1] {
            let mut check = ContentCheck::default();
            for chunk in [&bytes[..split], &bytes[split..]] {
                check.feed(chunk);
            }
            let content = check.finish();
            assert_eq!(content.fault, None, "split at {split}");
            assert_eq!(content.records, 2);
            assert_eq!(content.last_hash.as_deref(), Some(record.hash.as_str()));
        }
    }
}
