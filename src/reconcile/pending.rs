//! `DIR/.backfill-pending.json`: the coverage gaps whose exact backfill
//! from `GET /events` has not succeeded yet. Kept across restarts, so a
//! 500, a timeout or exhausted 429s leave the gap for the next run instead
//! of losing it, and `verify` and `rooms` can say the log is incomplete.

use std::fmt;
use std::io;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::log::files;

pub const PENDING_FILE: &str = ".backfill-pending.json";
const PENDING_TEMPORARY: &str = ".backfill-pending.json.tmp";

/// A span the receiver was not listening, still to be backfilled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    /// The last record before the gap, as the log writes times.
    pub from: String,
    /// The start that ended it.
    pub to: String,
    /// The seq of the last record before the start that ended the gap:
    /// a backfill on a later run writes nothing for a membership with a
    /// record after it, which knows better than the gap's old events.
    pub end_seq: u64,
}

impl fmt::Display for Gap {
    /// The line `verify` and `rooms` print.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unfilled gap from {} to {}: its exact backfill from /events has not succeeded yet (the next reconcile retries it); joins and leaves in it are known only from the roster diff",
            self.from, self.to
        )
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Stored {
    gaps: Vec<Gap>,
}

/// The gaps still pending in `dir`, oldest first (none when the file was
/// never written).
pub fn read(dir: &Path) -> anyhow::Result<Vec<Gap>> {
    let path = dir.join(PENDING_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let stored: Stored = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a list of pending gaps", path.display()))?;
    Ok(stored.gaps)
}

/// Replaces the pending gaps in `dir` with `gaps`, durably: a gap taken
/// off the list is gone for good, one put on it must survive a crash.
pub fn store(dir: &Path, gaps: &[Gap]) -> io::Result<()> {
    let stored = Stored {
        gaps: gaps.to_vec(),
    };
    let mut bytes = serde_json::to_vec(&stored).expect("gaps always serialise");
    bytes.push(b'\n');
    files::replace(dir, PENDING_FILE, PENDING_TEMPORARY, &bytes, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_gaps_read_back_and_an_unwritten_file_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), []);
        let gaps = [Gap {
            from: "2026-11-27T12:00:00.000Z".into(),
            to: "2026-11-27T13:00:00.000Z".into(),
            end_seq: 7,
        }];
        store(dir.path(), &gaps).unwrap();
        assert_eq!(read(dir.path()).unwrap(), gaps);
        store(dir.path(), &[]).unwrap();
        assert_eq!(read(dir.path()).unwrap(), []);
    }
}
