//! Nightly jobs off the request path: [`Nightly`] runs archival (and
//! retention) every day at a fixed UTC time on the blocking pool, and
//! stops a run in progress cleanly at shutdown.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use time::{Duration, OffsetDateTime, Time};
use tokio::sync::watch;

use crate::clock::Clock;
use crate::log::archive::{Options, archive_closed_days};
use crate::metrics::Metrics;
use crate::offsite::{Store, ship};

/// When the next nightly run after `now` is due: the first `at` (UTC)
/// strictly after `now`.
pub fn next_run_after(now: OffsetDateTime, at: Time) -> OffsetDateTime {
    let now = now.to_offset(time::UtcOffset::UTC);
    let today = now.replace_time(at);
    if today > now {
        today
    } else {
        today + Duration::days(1)
    }
}

/// Runs archival every day at a fixed UTC time, off the request path.
pub struct Nightly {
    dir: PathBuf,
    clock: Arc<dyn Clock>,
    at: Time,
    options: Options,
    metrics: Arc<Metrics>,
    offsite: Option<Arc<Store>>,
    runs: watch::Sender<u64>,
}

impl Nightly {
    pub fn new(dir: PathBuf, clock: Arc<dyn Clock>, at: Time, metrics: Arc<Metrics>) -> Self {
        Self {
            dir,
            clock,
            at,
            options: Options::default(),
            metrics,
            offsite: None,
            runs: watch::Sender::new(0),
        }
    }

    pub fn options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }

    /// Ship to this bucket at start and after each run, and keep archives
    /// it does not hold yet past the retention period.
    pub fn offsite(mut self, store: Arc<Store>) -> Self {
        self.options.copies = Some(crate::offsite::ship::bucket_copies());
        self.offsite = Some(store);
        self
    }

    /// Ships what the bucket lacks, retrying until the next run is due.
    async fn ship(&self, due: OffsetDateTime) {
        if let Some(store) = &self.offsite {
            let until = std::time::Duration::try_from(due - self.clock.now()).unwrap_or_default();
            ship::ship_retrying(&self.dir, store, &self.metrics, until).await;
        }
    }

    /// The number of runs finished so far, to wait on.
    pub fn runs(&self) -> watch::Receiver<u64> {
        self.runs.subscribe()
    }

    /// Sleeps until each run is due, archives on the blocking pool, and
    /// returns once `shutdown` resolves (stopping a run in progress
    /// cleanly).
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let mut shutdown = std::pin::pin!(shutdown);
        let mut due = next_run_after(self.clock.now(), self.at);
        // What earlier runs could not ship goes first.
        tokio::select! {
            () = self.ship(due) => {}
            () = &mut shutdown => return,
        }
        loop {
            let wait = due - self.clock.now();
            let wait = std::time::Duration::try_from(wait).unwrap_or_default();
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = &mut shutdown => return,
            }
            self.metrics.archive_runs.fetch_add(1, Ordering::Relaxed);
            let cancel = Arc::new(AtomicBool::new(false));
            let job = tokio::task::spawn_blocking({
                let (dir, clock, options, cancel) = (
                    self.dir.clone(),
                    self.clock.clone(),
                    self.options.clone(),
                    cancel.clone(),
                );
                move || archive_closed_days(&dir, &*clock, &options, &cancel)
            });
            let mut job = std::pin::pin!(job);
            let outcome = tokio::select! {
                outcome = &mut job => outcome,
                () = &mut shutdown => {
                    cancel.store(true, Ordering::Relaxed);
                    let _ = job.await;
                    return;
                }
            };
            match outcome {
                Ok(Ok(summary)) => tracing::info!(
                    archived = summary.archived.len(),
                    finished = summary.finished.len(),
                    retired = summary.retired.len(),
                    "nightly archival done"
                ),
                Ok(Err(error)) => {
                    self.metrics
                        .archive_failures
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::error!(error = %format!("{error:#}"), "nightly archival failed; the live files are kept");
                }
                Err(error) => {
                    self.metrics
                        .archive_failures
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::error!(%error, "nightly archival panicked; the live files are kept");
                }
            }
            due = next_run_after(self.clock.now().max(due), self.at);
            tokio::select! {
                () = self.ship(due) => {}
                () = &mut shutdown => return,
            }
            self.runs.send_modify(|n| *n += 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{datetime, time};

    #[test]
    fn the_next_run_is_later_today_or_else_tomorrow() {
        let at = time!(00:05);
        assert_eq!(
            next_run_after(datetime!(2026-11-27 00:04:59 UTC), at),
            datetime!(2026-11-27 00:05 UTC)
        );
        assert_eq!(
            next_run_after(datetime!(2026-11-27 00:05 UTC), at),
            datetime!(2026-11-28 00:05 UTC)
        );
        assert_eq!(
            next_run_after(datetime!(2026-11-27 12:00 UTC), at),
            datetime!(2026-11-28 00:05 UTC)
        );
        assert_eq!(
            next_run_after(datetime!(2026-12-31 23:59 UTC), at),
            datetime!(2027-01-01 00:05 UTC)
        );
    }
}
