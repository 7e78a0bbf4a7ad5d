//! What the writer thread does between batches: waits for the next
//! delivery, waking to fsync the head a second after the last batch, and
//! pings systemd's watchdog from this loop, so a writer wedged in a write
//! or an fdatasync is restarted while one that merely has nothing to do
//! is not.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{HEAD_SYNC_EVERY, Job, State};

/// The writer's pings to systemd's watchdog (WATCHDOG=1).
pub(super) struct Watchdog {
    every: Duration,
    next: Instant,
}

impl Watchdog {
    /// Pings every `every`, the first time at the first [`Watchdog::tick`].
    pub(super) fn new(every: Duration) -> Self {
        Self {
            every,
            next: Instant::now(),
        }
    }

    /// Pings when a ping is due; returns how long until the next one is.
    pub(super) fn tick(&mut self) -> Duration {
        let now = Instant::now();
        if now >= self.next {
            crate::systemd::watchdog();
            self.next = now + self.every;
        }
        self.next - now
    }
}

/// What a wait between batches ended with.
// The job moves on into the batch: boxing it would cost an allocation
// per delivery.
#[allow(clippy::large_enum_variant)]
pub(super) enum Wake {
    /// The first job of the next batch.
    Job(Job),
    /// Woken to sync the head or ping the watchdog: wait again.
    Timer,
    /// Every sender is gone: the writer stops.
    Closed,
}

impl State {
    /// Waits for the next job. A head stored but not yet fsync'd (or not
    /// yet stored) is stored and fsync'd [`HEAD_SYNC_EVERY`] after the
    /// wait began if no job came; with a watchdog, the wait also ends
    /// when its next ping is due (`ping_in`).
    pub(super) fn next_job(
        &mut self,
        queue: &mpsc::Receiver<Job>,
        ping_in: Option<Duration>,
    ) -> Wake {
        let now = Instant::now();
        self.head_due = (self.head_unsynced || self.head_behind)
            .then(|| *self.head_due.get_or_insert(now + HEAD_SYNC_EVERY));
        let head_in = self.head_due.map(|due| due.saturating_duration_since(now));
        let wait = match (head_in, ping_in) {
            (Some(head), Some(ping)) => Some(head.min(ping)),
            (head, ping) => head.or(ping),
        };
        let Some(wait) = wait else {
            return queue.recv().map_or(Wake::Closed, Wake::Job);
        };
        match queue.recv_timeout(wait) {
            Ok(job) => {
                // The next idle wait starts its own second.
                self.head_due = None;
                Wake::Job(job)
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if self.head_due.is_some_and(|due| due <= Instant::now()) {
                    self.head_due = None;
                    self.store_head(true);
                }
                Wake::Timer
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => Wake::Closed,
        }
    }
}
