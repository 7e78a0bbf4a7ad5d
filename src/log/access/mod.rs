//! The console's access log on disk, one file a UTC day
//! (`DIR/access/console-YYYY-MM-DD.jsonl`), hash-chained like the records:
//! the storage half, below the console that writes it
//! ([`crate::console::access`]) and beside the log that `verify`, archival
//! and shipping treat it with.
//!
//! - [`writer`]: the thread that owns the files: day files, reopening a
//!   removed file, the chain, group fdatasync, the per-minute summaries.
//! - [`check`]: the chain check `verify` runs.
//! - [`retention`]: deleting days past `--retain-days`, noted in a
//!   chained list the check follows.

pub mod check;
pub mod retention;
pub(crate) mod writer;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use time::{Date, OffsetDateTime};
use tokio::sync::oneshot;

use crate::log::days;

pub const ACCESS_DIR: &str = "access";
const FILE_PREFIX: &str = "console-";
const FILE_SUFFIX: &str = ".jsonl";

/// What the writer thread is handed.
pub enum Message {
    Line {
        at: OffsetDateTime,
        /// The JSON object of the line, without its link.
        content: Vec<u8>,
        /// Told once the line is durable, for a line that must be.
        durable: Option<oneshot::Sender<Result<(), String>>>,
    },
    /// One more refusal of this kind from `client`.
    Count {
        at: OffsetDateTime,
        client: IpAddr,
        action: &'static str,
        outcome: &'static str,
    },
    /// Write every pending summary now (at shutdown).
    Flush(oneshot::Sender<()>),
}

/// The day file for `day` in the access folder.
pub fn day_path(folder: &Path, day: Date) -> PathBuf {
    folder.join(format!("{FILE_PREFIX}{}{FILE_SUFFIX}", days::day_name(day)))
}

/// Every access day file in `DIR/access`, oldest first.
pub fn day_files(dir: &Path) -> std::io::Result<Vec<(Date, PathBuf)>> {
    let folder = dir.join(ACCESS_DIR);
    let entries = match std::fs::read_dir(&folder) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        entries => entries?,
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let day = name
            .to_str()
            .and_then(|n| n.strip_prefix(FILE_PREFIX))
            .and_then(|n| n.strip_suffix(FILE_SUFFIX))
            .and_then(days::parse_day_name);
        if let Some(day) = day {
            out.push((day, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// The closed access days (every one before the newest), as object
/// names and paths, for shipping with the archives.
pub fn closed_days(dir: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut files = day_files(dir)?;
    files.pop();
    Ok(files
        .into_iter()
        .filter_map(|(_, path)| {
            let name = path.file_name()?.to_str()?.to_string();
            Some((format!("{ACCESS_DIR}/{name}"), path))
        })
        .collect())
}
