//! Retention for the console access log: closed day files past
//! `--retain-days` are deleted with the archives (only those the bucket
//! holds, when shipping is on), each noted first in the chained
//! `DIR/access/retired.jsonl` with where its lines joined and left the
//! chain, so `verify` follows the chain across deleted days and a day
//! deleted by hand is still a gap.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use time::{Date, OffsetDateTime};

use super::check::Linked;
use super::{ACCESS_DIR, day_files};
use crate::log::archive::{Copies, ReadRetired, RetiredList, read_retired};
use crate::log::days;
use crate::log::fault::Fault;
use crate::log::files;
use crate::log::record::format_timestamp;

/// One line per access day deleted by retention, in `DIR/access`.
pub const RETIRED_FILE: &str = "retired.jsonl";

/// A line of the access log's `retired.jsonl`: the day's file, its hash,
/// and its first and last links, chained like the archives' list.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Retired {
    pub(super) day: String,
    file: String,
    sha256: String,
    /// The day's first line: where it joined the chain.
    pub(super) first_seq: u64,
    pub(super) first_prev_hash: String,
    /// The day's last line: where the next day must continue from.
    pub(super) last_seq: u64,
    pub(super) last_hash: String,
    deleted_at: String,
    previous_sha256: String,
}

/// The retirements, with faults for a broken list.
pub(super) fn load(
    dir: &Path,
    faults: &mut Vec<Fault>,
) -> anyhow::Result<Vec<ReadRetired<Retired>>> {
    read_retired(
        &dir.join(ACCESS_DIR).join(RETIRED_FILE),
        |r: &Retired| &r.previous_sha256,
        faults,
    )
}

/// Deletes the closed access days before `before` (never the newest file,
/// which may still be written), noting each in `retired.jsonl` first.
/// With `copies`, only days held there are deleted.
pub fn retire(
    dir: &Path,
    before: Date,
    now: OffsetDateTime,
    copies: Option<&dyn Copies>,
) -> anyhow::Result<Vec<PathBuf>> {
    let folder = dir.join(ACCESS_DIR);
    let mut closed = day_files(dir).with_context(|| format!("listing {}", folder.display()))?;
    closed.pop();
    closed.retain(|(day, _)| *day < before);
    if closed.is_empty() {
        return Ok(Vec::new());
    }
    let held = copies.map(|copies| copies.held(dir)).transpose()?;
    let already: BTreeSet<String> = load(dir, &mut Vec::new())?
        .into_iter()
        .map(|read| read.entry.day)
        .collect();
    let mut log = RetiredList::open(folder.join(RETIRED_FILE))?;
    let mut deleted = Vec::new();
    for (day, path) in closed {
        let file = path
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or_default()
            .to_string();
        if let Some(held) = &held
            && !held.contains(&format!("{ACCESS_DIR}/{file}"))
        {
            tracing::warn!(file = %path.display(), "kept a console access day past the retention period: no other copy of it is confirmed yet");
            continue;
        }
        // A run stopped between noting a day and deleting it left the
        // file: its line is already written.
        if !already.contains(&days::day_name(day)) {
            let bytes =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            let Some((first, last)) = ends(&bytes) else {
                tracing::warn!(file = %path.display(), "kept a console access day past the retention period: its first or last line is not a whole access line (run `rollcall verify`)");
                continue;
            };
            log.append(&Retired {
                day: days::day_name(day),
                file,
                sha256: hex::encode(Sha256::digest(&bytes)),
                first_seq: first.link.seq,
                first_prev_hash: first.prev_hash,
                last_seq: last.link.seq,
                last_hash: last.link.hash,
                deleted_at: format_timestamp(now),
                previous_sha256: log.tip().to_string(),
            })?;
        }
        std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        tracing::info!(file = %path.display(), "deleted a console access day past the retention period");
        deleted.push(path);
    }
    if !deleted.is_empty() {
        files::sync_dir(&folder)
            .with_context(|| format!("syncing directory {}", folder.display()))?;
    }
    Ok(deleted)
}

/// The first and last lines of a whole day file.
fn ends(bytes: &[u8]) -> Option<(Linked, Linked)> {
    let whole = bytes.strip_suffix(b"\n")?;
    let mut lines = whole.split(|&b| b == b'\n');
    let first = serde_json::from_slice(lines.next()?).ok()?;
    let last = serde_json::from_slice(lines.next_back().unwrap_or(whole)).ok()?;
    Some((first, last))
}
