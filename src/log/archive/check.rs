//! Content checks: reading an archive back (its compressed and
//! decompressed bytes hashed, every record and the chain between them
//! checked, on a thread of its own) and comparing it with its digest; and
//! [`check_archives`], which `verify` runs over every archive, digest and
//! the chains between them.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

use anyhow::Context;
use flate2::read::MultiGzDecoder;
use sha2::{Digest as _, Sha256};

use super::digest::{DayDigest, GENESIS_DIGEST, Hashing, digest_path, hash_file, list_archive_dir};
use super::retention::load_retired;
use super::{CHUNK, file_name};
use crate::log::chain::{Break, Chain};
use crate::log::days::{self, ARCHIVE_DIR};
use crate::log::fault::Fault;
use crate::log::record;

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
    let mut carried = Some(Chain::default());
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
        check_digest_link(path, &digest, previous.as_ref(), dir, &mut faults);
        if let (Some(carried), Some(first)) = (&carried, digest.first_seq) {
            let problem = match carried.check(first, &digest.chain_start) {
                Ok(()) => None,
                Err(Break::Repeated { .. }) => Some(format!(
                    "records {} are archived twice: seq {first} was already in an earlier day",
                    seq_range(digest.first_seq, digest.last_seq)
                )),
                Err(Break::Missing { from, to }) => {
                    Some(format!("seqs {from}..={to} are missing before this day"))
                }
                Err(Break::Unlinked { .. }) => Some(
                    "the day does not continue the hash chain of the day before it".to_string(),
                ),
            };
            if let Some(problem) = problem {
                faults.push(Fault::new(path, problem));
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
            carried = Some(Chain::after(last_seq, digest.last_hash.clone()));
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
fn check_digest_link(
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
    if found.decode_error.is_none() {
        faults.extend(found.content.fault);
    }
    Ok(())
}

/// An archive as read from disk.
pub(super) struct Found {
    pub compressed_bytes: u64,
    pub compressed_sha256: String,
    /// Why it could not be decompressed to the end, if so.
    pub decode_error: Option<String>,
    pub content: Content,
    pub depth: Depth,
}

impl Found {
    /// How this archive disagrees with `digest`, one phrase per field.
    pub fn disagreements(&self, digest: &DayDigest) -> Vec<String> {
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
pub(super) fn read_archive(path: &Path, depth: Depth) -> io::Result<Found> {
    let file = File::open(path)?;
    let mut compressed = Hashing::new(BufReader::with_capacity(CHUNK, file));
    let checker = CheckThread::start(path, depth)?;
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
pub(super) enum Depth {
    /// Hash and count them only.
    Bytes,
    /// Also check every record and the chain between them.
    #[default]
    Records,
}

/// What a day's bytes hold.
#[derive(Debug, Clone, Default)]
pub(super) struct Content {
    pub bytes: u64,
    pub sha256: String,
    pub records: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    pub chain_start: Option<String>,
    pub last_hash: Option<String>,
    /// The first thing wrong with the day's lines.
    pub fault: Option<Fault>,
}

/// Checks a day's bytes as they stream past: every line a whole record
/// with a good hash, seqs consecutive, each record chained to the one
/// before it.
#[derive(Default)]
struct ContentCheck {
    /// The file the bytes are from, for the fault.
    file: PathBuf,
    depth: Depth,
    hasher: Sha256,
    content: Content,
    /// Taken up at the day's first record.
    chain: Option<Chain>,
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
        let fault = |seq, problem: String| Fault {
            seq,
            ..Fault::new(&self.file, problem).at_line(self.lines)
        };
        let record = match record::parse_line(line) {
            Ok(record) => record,
            Err(e) => {
                self.content.fault = Some(fault(None, e.to_string()));
                return;
            }
        };
        let chain = self
            .chain
            .get_or_insert_with(|| Chain::joining(record.seq, record.prev_hash.clone()));
        if let Err(problem) = chain.check(record.seq, &record.prev_hash) {
            self.content.fault = Some(fault(Some(record.seq), problem.to_string()));
            return;
        }
        chain.take_checked(record.seq, record.hash);
        let c = &mut self.content;
        if c.first_seq.is_none() {
            c.first_seq = Some(record.seq);
            c.chain_start = Some(record.prev_hash);
        }
    }

    fn finish(mut self) -> Content {
        if !self.partial.is_empty() && self.content.fault.is_none() {
            self.content.fault = Some(
                Fault::new(&self.file, "the last line has no newline (a torn write)")
                    .at_line(self.lines + 1),
            );
        }
        if let Some(chain) = self.chain.filter(|chain| chain.records > 0) {
            self.content.records = chain.records;
            self.content.last_seq = Some(chain.next_seq - 1);
            self.content.last_hash = Some(chain.last_hash);
        }
        self.content.sha256 = hex::encode(self.hasher.finalize());
        self.content
    }
}

/// A [`ContentCheck`] on a thread of its own, so that checking records
/// and (de)compressing them use two cores.
pub(super) struct CheckThread {
    chunks: mpsc::SyncSender<Vec<u8>>,
    thread: JoinHandle<Content>,
}

impl CheckThread {
    /// Checks the bytes of `file` fed to it, as far as `depth` says.
    pub fn start(file: &Path, depth: Depth) -> io::Result<Self> {
        let file = file.to_path_buf();
        let (chunks, queue) = mpsc::sync_channel::<Vec<u8>>(4);
        let thread = std::thread::Builder::new()
            .name("archive-check".into())
            .spawn(move || {
                let mut check = ContentCheck {
                    file,
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

    pub fn feed(&self, chunk: Vec<u8>) {
        // Only fails if the thread died, which `finish` reports.
        let _ = self.chunks.send(chunk);
    }

    pub fn finish(self) -> Content {
        drop(self.chunks);
        self.thread.join().expect("checking lines never panics")
    }
}

/// Up to [`CHUNK`] bytes, fewer only at the end; empty at the end.
pub(super) fn read_chunk(reader: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut chunk = Vec::with_capacity(CHUNK);
    reader.take(CHUNK as u64).read_to_end(&mut chunk)?;
    Ok(chunk)
}

#[cfg(test)]
mod tests {
    use super::*;

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
