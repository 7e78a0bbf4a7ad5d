//! `verify --remote`: the local log against the bucket. Every local
//! archive and digest must be its object byte for byte; objects with no
//! local counterpart are listed; and the local chain must hold the hash
//! every checkpoint names at its seq and reach the newest one, so a log
//! rewritten or cut on the host, however consistently, is caught.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::Context;
use serde::Deserialize;

use super::checkpoint::{CHECKPOINT_DIR, Checkpoint};
use super::client::Store;
use super::ship::local_objects;
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

/// Checks `dir` against the bucket. Errors when the store cannot be read
/// (exit 2: nothing was verified), not for what it finds.
pub async fn verify_remote(dir: &Path, store: &Store) -> anyhow::Result<RemoteReport> {
    let mut report = RemoteReport::default();
    let remote = store.list("").await?;
    let local = local_objects(dir).with_context(|| format!("listing {}", dir.display()))?;
    let remote_names: BTreeSet<_> = remote.iter().map(|o| o.name.as_str()).collect();
    let local_names: BTreeSet<_> = local.iter().map(|o| o.name.as_str()).collect();
    for object in &local {
        let path = object.path.display();
        if !remote_names.contains(object.name.as_str()) {
            report.faults.push(format!(
                "{path}: not in the bucket (not shipped yet: run `rollcall archive` with --s3-url)"
            ));
            continue;
        }
        let bytes = std::fs::read(&object.path).with_context(|| format!("reading {path}"))?;
        let Some(theirs) = store.get(&object.name).await? else {
            report.faults.push(format!(
                "{path}: its object {} vanished while verifying",
                object.name
            ));
            continue;
        };
        if theirs.as_ref() == bytes.as_slice() {
            report.matched += 1;
        } else {
            report.faults.push(format!(
                "{path}: differs from its object {} in the bucket: the local copy was changed after it was shipped (`rollcall restore` gives the shipped one)",
                object.name
            ));
        }
    }
    for object in &remote {
        let name = object.name.as_str();
        if local_names.contains(name) || name.starts_with(&format!("{CHECKPOINT_DIR}/")) {
            continue;
        }
        let day = name
            .strip_prefix(&format!("{ARCHIVE_DIR}/"))
            .and_then(|n| n.strip_suffix(".jsonl.gz"))
            .and_then(days::parse_day_name);
        match day {
            Some(date) if crate::log::archive::digest_path(dir, date).exists() => report
                .notes
                .push(format!("only in the bucket: {name} (deleted here by retention)")),
            Some(_) => report.faults.push(format!(
                "only in the bucket: {name}: there is no local copy nor its digest (deleted on this host?)"
            )),
            None => report.notes.push(format!("only in the bucket: {name}")),
        }
    }
    check_checkpoints(dir, store, &remote, &mut report).await?;
    Ok(report)
}

async fn check_checkpoints(
    dir: &Path,
    store: &Store,
    remote: &[super::client::Listed],
    report: &mut RemoteReport,
) -> anyhow::Result<()> {
    // seq -> (object name, checkpoint)
    let mut wanted: BTreeMap<u64, Vec<(String, Checkpoint)>> = BTreeMap::new();
    for object in remote
        .iter()
        .filter(|o| o.name.starts_with(&format!("{CHECKPOINT_DIR}/")))
    {
        let Some(bytes) = store.get(&object.name).await? else {
            continue;
        };
        match serde_json::from_slice::<Checkpoint>(&bytes) {
            Ok(checkpoint) => wanted
                .entry(checkpoint.seq)
                .or_default()
                .push((object.name.clone(), checkpoint)),
            Err(e) => report.faults.push(format!(
                "checkpoint {} is not a checkpoint: {e}",
                object.name
            )),
        }
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
