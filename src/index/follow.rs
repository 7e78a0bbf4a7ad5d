//! `serve`'s indexer: opened at start ([`Opening`]), then a thread of its
//! own that keeps `DIR/index.sqlite` caught up with the durable head, one
//! batch at a time, off the request path. The writer never waits for it
//! and does not know it exists: it reads `DIR/.head` as any reader does.
//! A failure (a full disk, an index file made unreadable) is logged,
//! counted and retried after a backoff; deliveries go on being acked
//! meanwhile and `/healthz` stays 200, since the log, not the index, is
//! the record.
//!
//! Given other receivers' directories (`serve --dir own --dir other`),
//! the same thread also keeps `DIR/merged.sqlite` (this log and theirs,
//! merged) caught up with every receiver's durable head, at the same pace
//! and a step at a time, for the console's pages; its failures have a
//! backoff of their own, so they never hold up this log's index.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{Index, IndexError, Opened};
use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::receiver::Dirs;

/// Records folded in per step at most: one transaction, after which the
/// lag in `/metrics` is brought up to date and a stop is noticed. Near
/// the head a step is what came in since the last look; a long lag (a
/// start on a big log, a writer at its limit) is folded this many at a
/// time, so the pages a step rewrites are shared by more records. At
/// saturation (`cargo bench --bench ingest`, a slow disk), serve with
/// steps of 100,000 acked 4,083 deliveries/s against 3,707/s with steps of
/// 20,000, and 3,842/s against 3,664/s without the indexer.
const STEP: u64 = 100_000;
/// Records a step folds before the heap is trimmed after it: a step near
/// the head (a few records every look) frees too little to be worth it.
const TRIM_AFTER: u64 = 10_000;
/// How often an idle indexer looks at the durable head. Deliveries are
/// acked without it, so this is only how stale the index may be.
const IDLE_LOOK: Duration = Duration::from_millis(200);
/// The first wait after a failure, doubled each time up to [`MOST_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MOST_BACKOFF: Duration = Duration::from_secs(60);
/// The page cache of an indexer at most a [`STEP`] behind the head (what
/// SQLite gives by default): what folding a few records at a time needs,
/// where the 32 MiB the index opens
/// with (for a build's long catch-up) would be most of `serve`'s memory
/// once filled. A lag past a step gets the whole cache back until it is
/// closed.
const NEAR_PAGE_CACHE_KIB: i64 = 2 * 1024;

/// The index opened at start, not yet followed: [`Opening::spawn`]
/// starts the thread.
pub struct Opening {
    follow: Follow,
    stop: mpsc::Sender<()>,
    index: Option<Index>,
}

/// The merged index of this log and other receivers' logs, followed
/// beside this log's own.
struct Merging {
    /// Named each time the merged index is opened.
    dirs: Dirs,
    index: Option<Index>,
    /// Not before then after a failure, and the wait after the next one.
    retry_at: Option<Instant>,
    backoff: Duration,
}

/// The running indexer; [`Indexer::stop`] ends it between two steps.
pub struct Indexer {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl Opening {
    /// Opens the index of the log in `dir`, checking it and remaking it
    /// empty when it is not this log's, and with other receivers
    /// (`merged`: this one first) the merged index of all of them: done
    /// before the console listens, so no page reads an index of another
    /// log. A failure is logged and counted; the thread tries again.
    pub fn open(
        dir: PathBuf,
        merged: Option<Dirs>,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let (stop, stopped) = mpsc::channel();
        let mut follow = Follow {
            dir,
            clock,
            metrics,
            stopped,
            wide_cache: true,
            pace: Pace::default(),
            merged: merged.map(|dirs| Merging {
                dirs,
                index: None,
                retry_at: None,
                backoff: FIRST_BACKOFF,
            }),
        };
        let index = follow
            .open()
            .map_err(|error| follow.failed(error, FIRST_BACKOFF))
            .ok();
        // The merged index is opened by the thread, at its first step:
        // the other receivers' directories are never on this start's way.
        Opening {
            follow,
            stop,
            index,
        }
    }

    /// Starts the thread that keeps the index up to the durable head.
    pub fn spawn(self) -> std::io::Result<Indexer> {
        let Opening {
            follow,
            stop,
            index,
        } = self;
        let thread = std::thread::Builder::new()
            .name("rollcall-index".into())
            .spawn(move || {
                crate::background::lowest_priority();
                follow.run(index)
            })?;
        Ok(Indexer { stop, thread })
    }
}

impl Indexer {
    /// Stops the thread after its current step and waits for it.
    pub fn stop(self) {
        drop(self.stop);
        if self.thread.join().is_err() {
            tracing::error!("the indexer thread panicked");
        }
    }
}

struct Follow {
    dir: PathBuf,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    stopped: mpsc::Receiver<()>,
    /// Whether the open connection has its whole page cache.
    wide_cache: bool,
    pace: Pace,
    merged: Option<Merging>,
}

/// Deliveries per second above which the indexer leaves the disk to the
/// log: far above any organisation's membership traffic, reached in a
/// bulk change or a load test. The index's writes share the log's disk
/// and filesystem journal, so they slow each fdatasync of the log: at
/// saturation (`cargo bench --bench ingest`, a disk doing 3,281
/// fdatasyncs/s), serve acked 3,979 deliveries/s with an indexer that
/// always followed, 9,270/s for the build before the index.
const BUSY_RATE: f64 = 500.0;
/// How far behind a busy writer the indexer may fall before it folds
/// anyway: a few minutes at serve's saturation.
const MOST_DEFERRED: u64 = 1_000_000;

/// Whether the indexer folds now: the last look at the durable head.
#[derive(Debug, Clone, Copy, Default)]
struct Pace {
    last: Option<(u64, Instant)>,
}

impl Pace {
    /// Whether the head, now at `head`, moved faster than [`BUSY_RATE`]
    /// since the last look.
    fn busy(&mut self, head: u64, now: Instant) -> bool {
        let busy = self.last.is_some_and(|(seq, then)| {
            let seconds = now.saturating_duration_since(then).as_secs_f64();
            head.saturating_sub(seq) as f64 >= BUSY_RATE * seconds.max(1e-3)
        });
        self.last = Some((head, now));
        busy
    }
}

/// Whether to fold an index `lag` records behind now: not while
/// deliveries pour in (`busy`), unless it is [`MOST_DEFERRED`] behind.
fn fold_now(busy: bool, lag: u64) -> bool {
    lag > 0 && (!busy || lag >= MOST_DEFERRED)
}

impl Follow {
    fn run(mut self, mut index: Option<Index>) {
        // The planner's statistics, for an index this process did not
        // build (grown a few records at a time, or by an earlier
        // release): a catch-up refreshes them only after a long fold.
        if let Some(error) = index.as_mut().and_then(|index| index.optimize().err()) {
            tracing::warn!(
                error = %anyhow::Error::from(error),
                "the index's query statistics could not be refreshed; answers are unaffected"
            );
        }
        let mut backoff = FIRST_BACKOFF;
        loop {
            let now = Instant::now();
            // An unreadable head is the step's to report.
            let busy = super::durable_seq(&self.dir)
                .is_ok_and(|head| self.pace.busy(head.unwrap_or(0), now));
            let merged = self.step_merged(busy, now);
            let wait = match self.step(&mut index, busy) {
                // The merged index has more to fold: go on at once.
                Ok(Step::Idle) if merged == Step::More => Duration::ZERO,
                Ok(Step::More) => Duration::ZERO,
                Ok(Step::Idle) => {
                    backoff = FIRST_BACKOFF;
                    IDLE_LOOK
                }
                Err(error) => {
                    self.failed(error, backoff);
                    // Opened afresh on the retry: whatever went wrong may
                    // have left the connection unusable.
                    index = None;
                    let wait = backoff;
                    backoff = (backoff * 2).min(MOST_BACKOFF);
                    wait
                }
            };
            match self.stopped.recv_timeout(wait) {
                Err(RecvTimeoutError::Timeout) => {}
                // The only message is the sender going away.
                Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// Opens the index if it is not open, then folds in up to [`STEP`]
    /// records past it, unless deliveries are pouring in (`busy`).
    fn step(&mut self, index: &mut Option<Index>, busy: bool) -> Result<Step, IndexError> {
        let index = match index {
            Some(index) => index,
            None => index.insert(self.open()?),
        };
        let head = super::durable_seq(&self.dir)?.unwrap_or(0);
        let (at, _) = index.position()?;
        self.size_cache(index, head.saturating_sub(at))?;
        let (seq, step) = if fold_now(busy, head.saturating_sub(at)) {
            let caught = index.catch_up_to(head.min(at + STEP), self.clock.as_ref())?;
            // What a long step's fold held is freed now: hand it back, or
            // the indexer's heap keeps the most any step needed. Not after
            // every short step: a trim locks each of the heap's arenas in
            // turn, and the request path allocates from them too.
            if caught.records >= TRIM_AFTER {
                crate::heap::give_back();
            }
            // A step that folded nothing (the records past the index are
            // not in the files yet) waits like an idle one.
            let more = caught.records > 0 && caught.seq < head;
            (caught.seq, if more { Step::More } else { Step::Idle })
        } else {
            (at, Step::Idle)
        };
        self.metrics.index_seq.store(seq, Relaxed);
        self.metrics
            .index_lag_records
            .store(head.saturating_sub(seq), Relaxed);
        Ok(step)
    }

    fn failed(&self, error: IndexError, retry_in: Duration) {
        self.metrics.index_failures.fetch_add(1, Relaxed);
        tracing::error!(
            error = %anyhow::Error::from(error),
            retry_in_secs = retry_in.as_secs(),
            "the index could not be brought up to the log; deliveries are unaffected, and it is retried"
        );
    }

    /// A narrow page cache when the index is at most a [`STEP`] behind,
    /// the whole one for a longer catch-up; the memory a narrowed cache
    /// frees goes back to the system.
    fn size_cache(&mut self, index: &Index, lag: u64) -> Result<(), IndexError> {
        let wide = lag > STEP;
        if wide == self.wide_cache {
            return Ok(());
        }
        let kib = if wide {
            super::open::PAGE_CACHE_KIB
        } else {
            NEAR_PAGE_CACHE_KIB
        };
        index.connection().pragma_update(None, "cache_size", -kib)?;
        self.wide_cache = wide;
        if !wide {
            crate::heap::give_back();
        }
        Ok(())
    }

    /// Folds up to [`STEP`] records of the receivers into the merged
    /// index, opening it first if it is not open, at the pace this log's
    /// index keeps (`busy`); a failure is logged and retried after its own
    /// backoff.
    fn step_merged(&mut self, busy: bool, now: Instant) -> Step {
        let Some(merging) = self.merged.as_mut() else {
            return Step::Idle;
        };
        if merging.retry_at.is_some_and(|at| now < at) {
            return Step::Idle;
        }
        if merging.index.is_none() {
            self.open_merged(now);
        }
        let Some(merging) = self.merged.as_mut() else {
            return Step::Idle;
        };
        let Some(index) = merging.index.as_mut() else {
            return Step::Idle;
        };
        let stepped = index.heads().and_then(|heads| {
            let at: Vec<u64> = index.positions()?.iter().map(|at| at.seq).collect();
            // A log without a head file is read to its last whole line:
            // how far that is is known only by reading.
            let lag = heads
                .iter()
                .zip(&at)
                .map(|(&head, &at)| {
                    if head == u64::MAX {
                        1
                    } else {
                        head.saturating_sub(at)
                    }
                })
                .sum();
            if !fold_now(busy, lag) {
                return Ok(false);
            }
            let caught = index.catch_up_each(&heads, STEP, self.clock.as_ref())?;
            let left: Vec<u64> = index.positions()?.iter().map(|at| at.seq).collect();
            let more = heads
                .iter()
                .zip(&left)
                .any(|(&head, &at)| head != u64::MAX && at < head);
            Ok(caught.records > 0 && more)
        });
        match stepped {
            Ok(more) => {
                merging.backoff = FIRST_BACKOFF;
                if more { Step::More } else { Step::Idle }
            }
            Err(error) => {
                self.merged_failed(error, now);
                Step::Idle
            }
        }
    }

    /// Opens the merged index if there are other receivers; a failure is
    /// logged and retried after a backoff.
    fn open_merged(&mut self, now: Instant) {
        let Some(merging) = self.merged.as_mut() else {
            return;
        };
        let opened = merging
            .dirs
            .receivers()
            .map_err(|e| IndexError::Receiver(format!("{e:#}")))
            .and_then(|receivers| {
                Index::open_of(&receivers, merging.dirs.home(), self.clock.as_ref())
                    .map(|(index, opened)| (index, opened, receivers))
            });
        match opened {
            Ok((index, opened, receivers)) => {
                let file = index.file();
                match opened {
                    Opened::Kept => {}
                    Opened::Created => tracing::info!(
                        file = %file.display(),
                        receivers = %receivers.names().join(", "),
                        "building the merged index of the receivers' logs, for the console"
                    ),
                    Opened::Rebuilt(why) => tracing::warn!(
                        file = %file.display(),
                        reason = %why,
                        "rebuilding the merged index from the receivers' logs"
                    ),
                }
                merging.index = Some(index);
            }
            Err(error) => self.merged_failed(error, now),
        }
    }

    fn merged_failed(&mut self, error: IndexError, now: Instant) {
        let Some(merging) = self.merged.as_mut() else {
            return;
        };
        self.metrics.index_failures.fetch_add(1, Relaxed);
        tracing::error!(
            error = %anyhow::Error::from(error),
            retry_in_secs = merging.backoff.as_secs(),
            "the merged index could not be brought up to the receivers' logs; this log's index and the deliveries are unaffected, and it is retried"
        );
        // Opened afresh on the retry, as this log's index is.
        merging.index = None;
        merging.retry_at = Some(now + merging.backoff);
        merging.backoff = (merging.backoff * 2).min(MOST_BACKOFF);
    }

    fn open(&mut self) -> Result<Index, IndexError> {
        // A connection opens with the whole cache.
        self.wide_cache = true;
        let (index, opened) = Index::open(&self.dir, self.clock.as_ref())?;
        let file = super::path(&self.dir);
        match opened {
            Opened::Kept => {}
            Opened::Created => tracing::info!(
                file = %file.display(),
                "building the index from the log, on a thread of its own"
            ),
            Opened::Rebuilt(why) => {
                self.metrics.index_rebuilds.fetch_add(1, Relaxed);
                tracing::warn!(file = %file.display(), reason = %why, "rebuilding the index from the log");
            }
        }
        Ok(index)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Records are left to fold in: go on at once.
    More,
    /// Caught up with the head (or nothing could be folded): look again
    /// later.
    Idle,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A look at the head: whether an index at `at` folds now.
    fn look(pace: &mut Pace, head: u64, at: u64, now: Instant) -> bool {
        fold_now(pace.busy(head, now), head.saturating_sub(at))
    }

    #[test]
    fn the_indexer_waits_while_deliveries_pour_in_and_folds_once_they_slow() {
        let start = Instant::now();
        let after = |ms| start + Duration::from_millis(ms);
        let mut pace = Pace::default();
        // The first look folds whatever is there.
        assert!(look(&mut pace, 10, 0, after(0)));
        // 2,000 records in 200 ms: 10,000 a second.
        assert!(!look(&mut pace, 2_010, 10, after(200)));
        // 10 records in 200 ms: 50 a second.
        assert!(look(&mut pace, 2_020, 10, after(400)));
        // Nothing new past the index: nothing to fold.
        assert!(!look(&mut pace, 2_020, 2_020, after(600)));
    }

    #[test]
    fn a_busy_writer_is_followed_anyway_once_the_index_is_far_behind() {
        let start = Instant::now();
        let mut pace = Pace::default();
        assert!(!look(&mut pace, 0, 0, start));
        let head = MOST_DEFERRED + 5;
        assert!(!look(
            &mut pace,
            head - 1,
            5,
            start + Duration::from_secs(1)
        ));
        assert!(look(
            &mut pace,
            head + 10_000,
            5,
            start + Duration::from_secs(2)
        ));
    }
}
