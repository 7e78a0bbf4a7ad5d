//! Keeping the durable head (`DIR/.head`) up with the log: written at
//! start unless the one there is evidence of a cut (then kept aside, and
//! written again from the first new durable batch), after durable batches
//! (at most every few milliseconds under load), fsync'd at most once a
//! second and at shutdown.

use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Instant;

use super::{HEAD_STORE_EVERY, HEAD_SYNC_EVERY, Job, State};
use crate::log::chain::missing;
use crate::log::head::{Head, KeptHead};
use crate::log::record::format_timestamp;

impl State {
    /// The head at start: the recovered log's end, stored and synced,
    /// unless the head already there leads the log (it ends before the
    /// head, or disagrees with it). That head is evidence the log was
    /// cut: it is kept aside (see [`State::keep_head`]) and the head
    /// follows the log again from the first record this run makes
    /// durable.
    pub(super) fn start_head(&mut self) {
        let last = self.next_seq - 1;
        match Head::read(&self.dir) {
            Ok(Some(head))
                if head.seq > last || (head.seq == last && head.hash != self.last_hash) =>
            {
                self.keep_head(head);
            }
            Ok(_) => self.store_head(true),
            Err(error) => {
                tracing::warn!(error = %format!("{error:#}"), "the durable head could not be read; writing a new one");
                self.store_head(true);
            }
        }
        self.count_kept_heads();
    }

    /// Keeps `head`, which leads the log, in `DIR/quarantine/` and goes on
    /// past it.
    ///
    /// Every seq up to the head's was made durable and acknowledged once,
    /// and may live on elsewhere (a checkpoint in the bucket, a SIEM fed by
    /// `tail -f`): the next record takes the seq after the head's, so no
    /// seq ever names two records. The chain goes on from the log's last
    /// record, so the cut stays visible as missing seqs, which `verify`
    /// reports beside the kept head. `.head` itself is left as it is until
    /// a record past it is durable: a crash before then finds the same
    /// cut again, and the same head is not kept twice.
    fn keep_head(&mut self, head: Head) {
        let last = self.next_seq - 1;
        let kept = KeptHead {
            seq: head.seq,
            hash: head.hash.clone(),
            kept_at: format_timestamp(self.clock.now()),
            log_end_seq: last,
            log_end_hash: self.last_hash.clone(),
        };
        self.next_seq = self.next_seq.max(head.seq + 1);
        let cut = if head.seq > last {
            missing(last + 1, head.seq)
        } else {
            format!("the record at seq {last} is not the one that was made durable")
        };
        match kept.keep(&self.dir) {
            Ok(file) => {
                self.head_held = Some(head.seq);
                tracing::error!(
                    head = %head,
                    log_ends_at = last,
                    kept_in = %file.display(),
                    "the log ends at seq {last} before its durable head (seq {}) or disagrees with it: {cut}; records were cut. \
                     The head is kept in {}; new records go on at seq {} and the head follows them. Run `rollcall verify`",
                    head.seq,
                    file.display(),
                    self.next_seq
                );
            }
            Err(error) => {
                // Then `.head` is the only copy of the evidence: it is not
                // written over in this run.
                self.head_held = Some(u64::MAX);
                tracing::error!(
                    head = %head,
                    log_ends_at = last,
                    error = %format!("{error:#}"),
                    "the log ends at seq {last} before its durable head (seq {}) or disagrees with it: {cut}; records were cut. \
                     The head could not be kept aside, so it is left as it is in this run. Run `rollcall verify`",
                    head.seq
                );
            }
        }
    }

    /// Puts the heads kept in `DIR/quarantine/` into the metrics, and
    /// says at every start that they are there.
    fn count_kept_heads(&self) {
        let kept = match KeptHead::list(&self.dir) {
            Ok(kept) => kept,
            Err(error) => {
                tracing::warn!(error = %format!("{error:#}"), "could not list the durable heads kept in quarantine");
                return;
            }
        };
        let newest = kept.iter().map(|(_, head)| head.seq).max().unwrap_or(0);
        self.metrics
            .heads_quarantined
            .store(kept.len() as u64, Ordering::Relaxed);
        self.metrics
            .head_quarantined_seq
            .store(newest, Ordering::Relaxed);
        if !kept.is_empty() {
            tracing::warn!(
                kept = kept.len(),
                newest_seq = newest,
                "the quarantine holds {} durable head(s) a start found the log ending before: evidence of a cut; run `rollcall verify`",
                kept.len()
            );
        }
    }

    /// Stores the newest durable record as the head; fsync'd when `sync`
    /// or when the last fsync of it is [`HEAD_SYNC_EVERY`] old.
    pub(super) fn store_head(&mut self, sync: bool) {
        let held = self.head_held.is_some_and(|held| self.next_seq - 1 <= held);
        if held || self.next_seq == 1 {
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
