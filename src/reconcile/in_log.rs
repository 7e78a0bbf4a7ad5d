//! Who the log has in a room, with their names and emails, for the roster
//! diff: the writer keeps only what its rules decide by, so the diff asks
//! the index, and the log itself when there is no index to trust.
//!
//! The index answers from its `records` view once it is caught up to the
//! listing's guard seq, so every record the guard lets the diff overrule
//! is in it; the catch-up is done here if the indexer has not got there
//! (on a first build, the run waits for it: one read of the log in all,
//! where reading it per room would be one per room). Without an index to
//! trust (serve runs with it off, or it is missing, of another schema or
//! log, or failing), the room's records are folded from the log: a read of
//! the whole log per room, affordable since reconciliation is paced and
//! off the request path, and holding only that room's memberships, for
//! that diff. Either way nothing of it stays in memory after the diff.

use std::path::Path;

use anyhow::Context;

use crate::clock::Clock;
use crate::index::build::{Position, still_in_log};
use crate::index::{Index, IndexError};
use crate::log::days;
use crate::log::members::Members;

/// Every membership of `room_id` the log holds, with every record up to
/// seq `through` (a durable one) in it: from the index when `use_index`
/// and it can answer, else from the log.
pub fn room_members(
    dir: &Path,
    room_id: &str,
    through: u64,
    use_index: bool,
    clock: &dyn Clock,
) -> anyhow::Result<Members> {
    if use_index {
        match from_index(dir, room_id, through, clock) {
            Ok(Some(members)) => return Ok(members),
            Ok(None) => {}
            Err(error) => tracing::warn!(
                room = room_id,
                error = format!("{:#}", anyhow::Error::new(error)),
                "the index could not tell who is in the room: reading the log instead"
            ),
        }
    }
    let all = days::list(dir).with_context(|| format!("listing {}", dir.display()))?;
    Members::load_room(&all, room_id).context("reading the room's records from the log")
}

/// `None` when the index cannot be used here: none yet, or of another
/// schema or log.
fn from_index(
    dir: &Path,
    room_id: &str,
    through: u64,
    clock: &dyn Clock,
) -> Result<Option<Members>, IndexError> {
    let Some(mut index) = Index::open_read(dir)? else {
        return Ok(None);
    };
    let at = Position::read(index.connection())?;
    if at.seq > 0 && still_in_log(dir, &at)?.is_some() {
        return Ok(None);
    }
    if at.seq < through && index.catch_up_to(through, clock)?.seq < through {
        return Ok(None);
    }
    index.room_members(room_id).map(Some)
}
