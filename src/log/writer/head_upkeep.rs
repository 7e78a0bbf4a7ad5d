//! Keeping the durable head (`DIR/.head`) up with the log: written at
//! start unless the one there is evidence of a cut, after durable batches
//! (at most every few milliseconds under load), fsync'd at most once a
//! second and at shutdown.

use std::sync::mpsc;
use std::time::Instant;

use super::{HEAD_STORE_EVERY, HEAD_SYNC_EVERY, Job, State};
use crate::log::head::Head;

impl State {
    /// The head at start: the recovered log's end, stored and synced,
    /// unless the head already there leads the log (it ends before the
    /// head, or disagrees with it). That head is evidence the log was
    /// cut, kept for `verify`, and no head is written over it.
    pub(super) fn start_head(&mut self) {
        let last = self.next_seq - 1;
        match Head::read(&self.dir) {
            Ok(Some(head))
                if head.seq > last || (head.seq == last && head.hash != self.last_hash) =>
            {
                tracing::error!(
                    head = %head,
                    log_ends_at = last,
                    "the log ends before its durable head or disagrees with it: records may have been cut; run `rollcall verify`. The head is kept as it is."
                );
                self.head_kept = true;
            }
            Ok(_) => self.store_head(true),
            Err(error) => {
                tracing::warn!(error = %format!("{error:#}"), "the durable head could not be read; writing a new one");
                self.store_head(true);
            }
        }
    }

    /// Stores the newest durable record as the head; fsync'd when `sync`
    /// or when the last fsync of it is [`HEAD_SYNC_EVERY`] old.
    pub(super) fn store_head(&mut self, sync: bool) {
        if self.head_kept || self.next_seq == 1 {
            self.head_behind = false;
            return;
        }
        let sync = sync
            || self
                .head_synced_at
                .is_none_or(|at| at.elapsed() >= HEAD_SYNC_EVERY);
        let head = Head {
            seq: self.next_seq - 1,
            hash: self.last_hash.clone(),
        };
        let stored = head.store(&self.dir, sync);
        if stored.is_ok() {
            self.head_stored_at = Some(Instant::now());
            self.head_behind = false;
        }
        match stored {
            Ok(()) if sync => {
                self.head_synced_at = Some(Instant::now());
                self.head_unsynced = false;
            }
            Ok(()) => self.head_unsynced = true,
            Err(error) => tracing::warn!(%error, "could not store the durable head"),
        }
    }

    /// After a durable batch, before its replies: stores the head when the
    /// queue is empty (nobody waits behind it, and a client that reads
    /// `.head` after its 200 finds its record there) or when the last store
    /// is [`HEAD_STORE_EVERY`] old; otherwise the next batch's commit does.
    pub(super) fn catch_up_head(&mut self, queue: &mpsc::Receiver<Job>) {
        if !self.head_behind {
            return;
        }
        if self.carry.is_none()
            && let Ok(job) = queue.try_recv()
        {
            self.carry = Some(job);
        }
        let due = self
            .head_stored_at
            .is_none_or(|at| at.elapsed() >= HEAD_STORE_EVERY);
        if self.carry.is_none() || due {
            self.store_head(false);
        }
    }
}
