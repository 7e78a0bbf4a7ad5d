//! `verify --remote`: the local log against the bucket. The evidence is
//! the oldest version of each object (a name written again is a finding):
//! every local archive and digest must be it byte for byte, an archive
//! retention deleted here must be what its kept digest describes, each
//! must be locked as configured, and the local chain must hold the hash
//! every checkpoint names at its seq and reach the newest one, so a log
//! rewritten or cut on the host, however consistently, is caught. The
//! bucket's side is this directory's own folder ([`super::layout`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::Context;
use serde::Deserialize;

use sha2::{Digest as _, Sha256};

use super::checkpoint::{CHECKPOINT_DIR, Checkpoint};
use super::client::Store;
use super::layout;
use super::lock;
use super::ship::{LocalObject, local_objects};
use super::versions::{BucketLock, Versions};
use crate::log::archive::DayDigest;
use crate::log::days::{self, ARCHIVE_DIR};

/// What the bucket says about the local log.
#[derive(Debug, Default)]
pub struct RemoteReport {
    pub faults: Vec<String>,
    pub notes: Vec<String>,
    /// Local archives and digests identical to their objects.
    pub matched: usize,
    /// Checkpoints the local chain agrees with.
    pub checkpoints: usize,
}

/// Only `seq` and `hash` of a record.
#[derive(Deserialize)]
struct Link {
    seq: u64,
    hash: String,
}

/// Checks `dir` against its folder of the bucket whose prefix `store`
/// is. Errors when the store cannot be read (exit 2: nothing was
/// verified), not for what it finds.
pub async fn verify_remote(dir: &Path, store: &Store) -> anyhow::Result<RemoteReport> {
    let name = crate::receiver::resolve(dir, None)?;
    let store = &layout::of_dir(dir, &name)?.store(store);
    let mut report = RemoteReport::default();
    let bucket_lock = store.object_lock().await?;
    if bucket_lock == BucketLock::Off {
        report.faults.push(lock::unlocked_bucket(store));
    }
    let expected = lock::expected(store, bucket_lock);
    let mut remote = store.list_versions("").await?;
    // In the old layout, other receivers' folders are under this log's
    // prefix: theirs to verify.
    remote.retain(|key| !in_a_receivers_folder(&key.name));
    let local = local_objects(dir).with_context(|| format!("listing {}", dir.display()))?;
    // A key whose every version is a delete marker holds nothing: the
    // local file it names is as unshipped as one the bucket never had.
    let remote_names: BTreeSet<_> = remote
        .iter()
        .filter(|o| o.oldest().is_some())
        .map(|o| o.name.as_str())
        .collect();
    let local_by_name: BTreeMap<_, _> = local.iter().map(|o| (o.name.as_str(), o)).collect();
    for object in &local {
        if !remote_names.contains(object.name.as_str()) {
            report.faults.push(format!(
                "{}: not in the bucket (not shipped yet: run `rollcall archive` with --s3-url)",
                object.path.display()
            ));
        }
    }
    let mut checkpoints = BTreeMap::new();
    let mut unlocked = 0;
    for key in &remote {
        let name = key.name.as_str();
        check_versions(key, &mut report);
        let Some(oldest) = key.oldest() else {
            report.faults.push(format!(
                "{name}: only delete markers in the bucket: what was shipped under this name was deleted"
            ));
            continue;
        };
        let Some(evidence) = store.get_version(name, &oldest.id).await? else {
            report.faults.push(format!(
                "{name}: its oldest version {} vanished while verifying",
                oldest.id
            ));
            continue;
        };
        match expected {
            Some(expected) => {
                if let Some(problem) =
                    lock::shortfall(evidence.retention.as_ref(), expected, oldest.modified)
                {
                    report.faults.push(format!("{name}: {problem}"));
                }
            }
            None if evidence.retention.is_none() => unlocked += 1,
            None => {}
        }
        if let Some(object) = local_by_name.get(name) {
            compare_local(object, &evidence.bytes, &mut report)?;
        } else if name.starts_with(&format!("{CHECKPOINT_DIR}/")) {
            match serde_json::from_slice::<Checkpoint>(&evidence.bytes) {
                Ok(checkpoint) => checkpoints.insert(name.to_string(), checkpoint),
                Err(e) => {
                    report
                        .faults
                        .push(format!("checkpoint {name} is not a checkpoint: {e}"));
                    None
                }
            };
        } else {
            only_remote(dir, name, &evidence.bytes, &mut report)?;
        }
    }
    if unlocked > 0 {
        report.notes.push(format!(
            "{unlocked} objects are not locked, and neither --s3-lock-days nor the bucket's default retention says they should be"
        ));
    }
    check_checkpoints(dir, checkpoints, &mut report)?;
    Ok(report)
}

/// Whether an object name is in another receiver's folder: `NAME/FOLDER/...`,
/// `NAME` not one of a log's own folders.
fn in_a_receivers_folder(name: &str) -> bool {
    name.split_once('/').is_some_and(|(first, rest)| {
        !crate::receiver::RESERVED.contains(&first) && rest.contains('/')
    })
}

/// A name with more than one version was written again after rollcall
/// shipped it, which rollcall never does: only the oldest is evidence.
fn check_versions(key: &Versions, report: &mut RemoteReport) {
    let count = key.versions.len();
    if count < 2 {
        return;
    }
    let deleted = key.versions.iter().filter(|v| v.deleted).count();
    let marked = if deleted > 0 {
        format!(" ({deleted} of them delete markers)")
    } else {
        String::new()
    };
    report.faults.push(format!(
        "{}: {count} versions in the bucket{marked}: it was written again after it was shipped, and rollcall never overwrites; only the oldest is checked here",
        key.name
    ));
}

/// A local archive or digest against the oldest version of its object.
fn compare_local(
    object: &LocalObject,
    theirs: &[u8],
    report: &mut RemoteReport,
) -> anyhow::Result<()> {
    let path = object.path.display();
    let bytes = std::fs::read(&object.path).with_context(|| format!("reading {path}"))?;
    if theirs == bytes.as_slice() {
        report.matched += 1;
    } else {
        report.faults.push(format!(
            "{path}: differs from its object {} in the bucket: the local copy was changed after it was shipped, or the bucket's is not what was shipped (`rollcall restore` gives the bucket's)",
            object.name
        ));
    }
    Ok(())
}

/// An object with no local file: an archive retention deleted here must
/// be the one its kept digest describes.
fn only_remote(
    dir: &Path,
    name: &str,
    theirs: &[u8],
    report: &mut RemoteReport,
) -> anyhow::Result<()> {
    let day = name
        .strip_prefix(&format!("{ARCHIVE_DIR}/"))
        .and_then(|n| n.strip_suffix(".jsonl.gz"))
        .and_then(days::parse_day_name);
    let Some(date) = day else {
        report.notes.push(format!("only in the bucket: {name}"));
        return Ok(());
    };
    let path = crate::log::archive::digest_path(dir, date);
    let digest = match std::fs::read(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            report.faults.push(format!(
                "only in the bucket: {name}: there is no local copy nor its digest (deleted on this host?)"
            ));
            return Ok(());
        }
        bytes => bytes.with_context(|| format!("reading {}", path.display()))?,
    };
    let Ok(digest) = serde_json::from_slice::<DayDigest>(&digest) else {
        report.faults.push(format!(
            "{}: not a digest, so {name} cannot be checked against it",
            path.display()
        ));
        return Ok(());
    };
    if hex::encode(Sha256::digest(theirs)) == digest.compressed_sha256 {
        report.matched += 1;
        report.notes.push(format!(
            "only in the bucket: {name} (deleted here by retention)"
        ));
    } else {
        report.faults.push(format!(
            "{name}, deleted here by retention, is not the archive its digest {} describes (its SHA-256 differs): the bucket does not hold that day",
            path.display()
        ));
    }
    Ok(())
}

fn check_checkpoints(
    dir: &Path,
    checkpoints: BTreeMap<String, Checkpoint>,
    report: &mut RemoteReport,
) -> anyhow::Result<()> {
    // seq -> (object name, checkpoint)
    let mut wanted: BTreeMap<u64, Vec<(String, Checkpoint)>> = BTreeMap::new();
    for (name, checkpoint) in checkpoints {
        wanted
            .entry(checkpoint.seq)
            .or_default()
            .push((name, checkpoint));
    }
    if wanted.is_empty() {
        report
            .notes
            .push("no head checkpoints in the bucket yet".to_string());
        return Ok(());
    }
    // Records retention deleted here: the chain is known up to this seq
    // only by the last one's hash.
    let retired = crate::log::archive::retired_chain_end(dir)?;
    if let Some((seq, hash)) = &retired {
        for (name, checkpoint) in wanted.remove(seq).unwrap_or_default() {
            if &checkpoint.hash == hash {
                report.checkpoints += 1;
            } else {
                report.faults.push(format!(
                    "seq {seq}, the last record retention deleted, had hash {hash}, but checkpoint {name} (taken {}) says {}: the log was rewritten after that checkpoint",
                    checkpoint.time, checkpoint.hash
                ));
            }
        }
    }
    let mut first_seq = retired.as_ref().map(|(seq, _)| seq + 1);
    let mut last_seq = retired.as_ref().map_or(0, |(seq, _)| *seq);
    for day in days::list(dir).with_context(|| format!("listing {}", dir.display()))? {
        let mut lines = day
            .lines()
            .with_context(|| format!("reading {}", day.path().display()))?;
        while let Some((line, _)) = lines
            .next_line()
            .with_context(|| format!("reading {}", day.path().display()))?
        {
            let Ok(link) = serde_json::from_slice::<Link>(line) else {
                continue;
            };
            first_seq.get_or_insert(link.seq);
            last_seq = last_seq.max(link.seq);
            for (name, checkpoint) in wanted.remove(&link.seq).unwrap_or_default() {
                if checkpoint.hash == link.hash {
                    report.checkpoints += 1;
                } else {
                    report.faults.push(format!(
                        "{}: seq {} has hash {}, but checkpoint {name} (taken {}) says {}: the log was rewritten after that checkpoint",
                        day.path().display(),
                        link.seq,
                        link.hash,
                        checkpoint.time,
                        checkpoint.hash
                    ));
                }
            }
        }
    }
    for (seq, found) in wanted {
        for (name, checkpoint) in found {
            if first_seq.is_some_and(|first| seq < first) {
                report.notes.push(format!(
                    "checkpoint {name} (seq {seq}) is before the oldest record kept here"
                ));
            } else {
                report.faults.push(format!(
                    "the log ends at seq {last_seq}, but checkpoint {name} (taken {}) says seq {seq} was written: records were cut from its end",
                    checkpoint.time
                ));
            }
        }
    }
    Ok(())
}
