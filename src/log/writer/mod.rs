//! The one writer of the log. It owns the day file, gives each record its
//! `seq` and chain link, drops retried events, and acknowledges a record
//! only once it is on disk.
//!
//! Deliveries queue on a channel; a dedicated thread takes everything that
//! has queued up, appends it with one `write`, makes it durable with one
//! `fdatasync`, and only then answers every waiting delivery (group commit).
//! A batch that cannot be made durable is cut off the file again and every
//! delivery in it is answered with an error, so nothing unacknowledged
//! stays in the chain.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::thread::JoinHandle;
use std::time::Instant;

use anyhow::Context;
use time::{Date, Duration, OffsetDateTime};
use tokio::sync::oneshot;

mod compact;
mod disk;
mod head_upkeep;
mod idle;
mod known;
mod recover;
mod rule;
mod seen;

pub use disk::{Disk, RealDisk};
pub use rule::Rule;

use idle::{Wake, Watchdog};

use super::days;
use super::days::DEDUP_DAYS;
use super::files;
use super::record::{DedupKey, Event, Record, format_timestamp};
use crate::clock::Clock;
use crate::metrics::Metrics;

/// Most deliveries one fdatasync covers.
const MAX_BATCH: usize = 4096;
/// The durable head is fsync'd at most this often (and at shutdown): it
/// may lag the log, so it needs no fdatasync of its own per batch.
const HEAD_SYNC_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// While deliveries keep coming, the head is rewritten at most this often
/// (a create, a write and a rename each time), so `tail` lags the log by
/// no more than this and one batch. An idle writer stores it at once.
const HEAD_STORE_EVERY: std::time::Duration = std::time::Duration::from_millis(2);

/// What became of an appended record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Written and durable under this seq.
    Recorded(u64),
    /// The same event was already recorded under this seq; nothing written.
    Duplicate(u64),
    /// The log already says what the record would say, or has learned
    /// more about the membership since the record was made; nothing
    /// written.
    Unchanged,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum AppendError {
    #[error("the audit log could not be made durable: {0}")]
    Io(String),
    #[error("the audit log writer has stopped")]
    Stopped,
}

struct Job {
    record: Record,
    rule: Rule,
    reply: oneshot::Sender<Result<Appended, AppendError>>,
}

/// Handle to the writer thread. [`LogWriter::shutdown`] (or dropping it)
/// finishes the queued work, syncs and stops the thread.
pub struct LogWriter {
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    healthy: Arc<AtomicBool>,
    seen: Seen,
    members: Arc<Known>,
    /// The last record found at start, if any.
    recovered_end: Option<LogEnd>,
    dir: PathBuf,
    disk: Arc<dyn Disk>,
}

/// The last record of the log as a start found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEnd {
    pub seq: u64,
    /// Unknown only for a damaged line.
    pub event: Option<Event>,
    pub received_at: Option<String>,
}

use known::Known;

/// The dedup keys of the recent records, with their seq: the writer's,
/// shared so a delivery can learn cheaply that it is a retry.
type Seen = Arc<Mutex<seen::Seen>>;

/// A poisoned lock still guards consistent data here: every holder
/// changes it in single statements.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl LogWriter {
    /// Recovers the log in `dir` (moving a torn last line aside) and starts
    /// the writer thread.
    pub fn open(dir: &Path, clock: Arc<dyn Clock>, metrics: Arc<Metrics>) -> anyhow::Result<Self> {
        Self::open_on(dir, clock, metrics, Arc::new(RealDisk))
    }

    /// [`LogWriter::open`], with the write and fdatasync calls of `disk`.
    pub fn open_on(
        dir: &Path,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        disk: Arc<dyn Disk>,
    ) -> anyhow::Result<Self> {
        Self::open_watched(dir, clock, metrics, disk, None)
    }

    /// [`LogWriter::open_on`], with the writer thread pinging systemd's
    /// watchdog every `watchdog`, idle or not.
    pub fn open_watched(
        dir: &Path,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        disk: Arc<dyn Disk>,
        watchdog: Option<std::time::Duration>,
    ) -> anyhow::Result<Self> {
        let healthy = Arc::new(AtomicBool::new(true));
        let mut state = State::recover(dir, clock, metrics, healthy.clone(), disk.clone())?;
        state.watchdog = watchdog.map(Watchdog::new);
        state.start_head();
        state.load_members()?;
        let seen = state.seen.clone();
        let members = state.members.clone();
        let recovered_end = state.recovered_end.clone();
        let (jobs, queue) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || {
                loop {
                    let ping_in = state.watchdog.as_mut().map(Watchdog::tick);
                    let first = if let Some(job) = state.carry.take() {
                        job
                    } else {
                        match state.next_job(&queue, ping_in) {
                            Wake::Job(job) => job,
                            Wake::Timer => continue,
                            Wake::Closed => break,
                        }
                    };
                    let mut batch = vec![first];
                    while batch.len() < MAX_BATCH {
                        match queue.try_recv() {
                            Ok(job) => batch.push(job),
                            Err(_) => break,
                        }
                    }
                    state.commit(batch, &queue);
                }
                state.store_head(true);
            })
            .context("starting the log writer thread")?;
        Ok(Self {
            jobs: Mutex::new(Some(jobs)),
            thread: Mutex::new(Some(thread)),
            healthy,
            seen,
            members,
            recovered_end,
            dir: dir.to_path_buf(),
            disk,
        })
    }

    /// Appends `record` (its seq, received_at and hashes are filled in
    /// here) and resolves once it is durable, or known to be a duplicate.
    pub async fn append(&self, record: Record) -> Result<Appended, AppendError> {
        self.append_if(record, Rule::Always).await
    }

    /// [`LogWriter::append`], written only as `rule` says.
    pub async fn append_if(&self, record: Record, rule: Rule) -> Result<Appended, AppendError> {
        let (reply, answer) = oneshot::channel();
        lock(&self.jobs)
            .as_ref()
            .ok_or(AppendError::Stopped)?
            .send(Job {
                record,
                rule,
                reply,
            })
            .map_err(|_| AppendError::Stopped)?;
        answer.await.map_err(|_| AppendError::Stopped)?
    }

    /// The last record the log held when the writer started.
    pub fn recovered_end(&self) -> Option<&LogEnd> {
        self.recovered_end.as_ref()
    }

    /// The log directory written to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Resolves once every membership's state has been read from disk,
    /// so a rule that decides by it does not wait.
    pub async fn members_ready(&self) {
        self.members.ready().await;
    }

    /// The seq of the log's last durable membership record: taken before
    /// a listing's first request, it is what the findings from that
    /// listing are guarded by ([`Rule::IfUnchangedSince`]).
    pub fn membership_seq(&self) -> u64 {
        self.members.last_seq()
    }

    /// The seq the event with `key` was recorded under, if the writer has
    /// it: a cheap look before work a retry would waste. The answer to
    /// the delivery still comes from [`LogWriter::append`].
    pub fn recorded(&self, key: &DedupKey) -> Option<u64> {
        lock(&self.seen).get(key)
    }

    /// False after a batch failed to become durable, until one succeeds.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Whether the log directory takes a new file, written and synced by
    /// the same calls the writer uses: a real probe, run afresh each time,
    /// so health comes back by itself when the disk does.
    pub fn probe(&self) -> Result<(), String> {
        // A name per probe: concurrent health checks do not remove each
        // other's file.
        static PROBES: AtomicUsize = AtomicUsize::new(0);
        let n = PROBES.fetch_add(1, Ordering::Relaxed);
        let probe = self.dir.join(format!(".healthz.{n}"));
        let written = files::create_truncate(&probe).and_then(|mut file| {
            self.disk.write(&mut file, b"ok\n")?;
            self.disk.sync(&file)
        });
        let removed = std::fs::remove_file(&probe);
        written
            .and(removed)
            .map_err(|e| format!("cannot write and sync in {}: {e}", self.dir.display()))
    }

    /// Finishes the queued work, syncs the head and stops the thread.
    /// Later appends get [`AppendError::Stopped`]. Needs no exclusive
    /// handle, so a shutdown stops the writer even while a slow connection
    /// still holds on to it.
    pub fn shutdown(&self) {
        lock(&self.jobs).take();
        let thread = lock(&self.thread).take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The day file records are being appended to.
struct OpenDay {
    date: Date,
    path: PathBuf,
    file: File,
    len: u64,
}

/// Everything the writer thread owns.
struct State {
    dir: PathBuf,
    disk: Arc<dyn Disk>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    healthy: Arc<AtomicBool>,
    day: Option<OpenDay>,
    next_seq: u64,
    last_hash: String,
    last_received: OffsetDateTime,
    recovered_end: Option<LogEnd>,
    seen: Seen,
    /// Every membership's state, kept current by the writer (changed with
    /// the records of a batch, put back if the batch fails).
    members: Arc<Known>,
    /// The file may hold bytes the state does not account for: recover
    /// from disk before the next write.
    broken: bool,
    /// A head was stored without fsync; it gets one within
    /// [`HEAD_SYNC_EVERY`].
    head_unsynced: bool,
    head_synced_at: Option<Instant>,
    /// When the head was last stored, and whether records made durable
    /// since are not in it yet.
    head_stored_at: Option<Instant>,
    head_behind: bool,
    /// A delivery taken off the queue to learn that more work waits: the
    /// first of the next batch.
    carry: Option<Job>,
    /// The head found at start led the log (the evidence of a cut, kept
    /// aside): no head is stored until a record past this seq is durable.
    head_held: Option<u64>,
    /// When an idle writer stores and fsyncs the head it still owes.
    head_due: Option<Instant>,
    /// Under systemd with `WatchdogSec=`: the pings from this thread.
    watchdog: Option<Watchdog>,
}

impl State {
    /// Starts reading every membership's state from the log as it is now
    /// (in the background: see [`known`]).
    fn load_members(&self) -> anyhow::Result<()> {
        let all_days =
            days::list(&self.dir).with_context(|| format!("listing {}", self.dir.display()))?;
        self.members.load(all_days, self.next_seq - 1);
        Ok(())
    }

    fn seen(&self) -> MutexGuard<'_, seen::Seen> {
        lock(&self.seen)
    }

    fn commit(&mut self, batch: Vec<Job>, queue: &mpsc::Receiver<Job>) {
        if let Err((jobs, error)) = self.try_commit(batch, queue) {
            self.healthy.store(false, Ordering::Relaxed);
            self.metrics.sync_failures.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %error, "a batch of {} deliveries could not be made durable", jobs.len());
            for reply in jobs {
                let _ = reply.send(Err(AppendError::Io(error.clone())));
            }
        }
    }

    /// Writes and syncs one batch. On failure, the state and the file are as
    /// before the batch, and the replies still owed are handed back.
    #[allow(clippy::type_complexity)]
    fn try_commit(
        &mut self,
        batch: Vec<Job>,
        queue: &mpsc::Receiver<Job>,
    ) -> Result<(), (Vec<oneshot::Sender<Result<Appended, AppendError>>>, String)> {
        if self.broken
            && let Err(e) = self.reload()
        {
            return Err((
                batch.into_iter().map(|j| j.reply).collect(),
                format!("{e:#}"),
            ));
        }
        let now = self.clock.now().max(self.last_received);
        let date = now.date();
        if self.day.as_ref().is_none_or(|d| d.date != date)
            && let Err(e) = self.open_day(date)
        {
            return Err((
                batch.into_iter().map(|j| j.reply).collect(),
                format!("{e:#}"),
            ));
        }
        let received_at = format_timestamp(now);
        let first_seq = self.next_seq;
        let first_hash = self.last_hash.clone();
        let mut buf = Vec::new();
        let mut added = Vec::new();
        let mut written = 0;
        let mut owed = Vec::new();
        let mut seen = lock(&self.seen);
        let mut members = self.members.lock();
        // What the batch changed in `members`, to put back if it fails.
        let mut undo = Vec::new();
        for Job {
            mut record,
            rule,
            reply,
        } in batch
        {
            let key = record.dedup_key();
            let retry_of = match rule {
                Rule::IfUnchangedSince(_) => None,
                _ => key.as_ref().and_then(|key| seen.get(key)),
            };
            if let Some(seq) = retry_of {
                if seq < first_seq {
                    let _ = reply.send(Ok(Appended::Duplicate(seq)));
                } else {
                    owed.push((reply, Appended::Duplicate(seq)));
                }
                continue;
            }
            if rule != Rule::Always {
                members = self.members.wait(members, self.watchdog.as_mut());
            }
            if !rule.allows(&record, members.get(&record.membership_id)) {
                owed.push((reply, Appended::Unchanged));
                continue;
            }
            record.seq = self.next_seq;
            record.received_at.clone_from(&received_at);
            record.prev_hash = std::mem::take(&mut self.last_hash);
            buf.extend_from_slice(&record.seal());
            if record.event.is_membership() {
                undo.push(members.apply(&record));
            }
            self.last_hash = record.hash;
            self.next_seq += 1;
            if let Some(key) = key {
                seen.insert(key, record.seq, date);
                added.push(key);
            }
            written += 1;
            owed.push((reply, Appended::Recorded(record.seq)));
        }
        drop(seen);
        if written == 0 {
            drop(members);
            self.catch_up_head(queue);
            for (reply, outcome) in owed {
                let _ = reply.send(Ok(outcome));
            }
            return Ok(());
        }
        let day = self.day.as_mut().expect("opened above");
        let durable = durable_append(self.disk.as_ref(), day, &buf);
        self.metrics.syncs.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = durable {
            self.next_seq = first_seq;
            self.last_hash = first_hash;
            let mut seen = lock(&self.seen);
            for key in added {
                seen.remove(&key);
            }
            seen.settle();
            drop(seen);
            for change in undo.into_iter().rev() {
                members.undo(change);
            }
            members.settle();
            drop(members);
            if self
                .disk
                .truncate(&day.file, day.len)
                .and_then(|()| self.disk.sync(&day.file))
                .is_err()
            {
                self.broken = true;
            }
            let error = format!("appending to {}: {e}", day.path.display());
            // Reopen by name next time: the file may have been removed, and
            // the directory may come back.
            self.day = None;
            return Err((owed.into_iter().map(|(reply, _)| reply).collect(), error));
        }
        members.settle();
        drop(members);
        lock(&self.seen).settle();
        day.len += buf.len() as u64;
        self.last_received = now;
        self.head_behind = true;
        self.catch_up_head(queue);
        // Healthy before anyone hears of the success.
        self.healthy.store(true, Ordering::Relaxed);
        self.metrics
            .records_written
            .fetch_add(written, Ordering::Relaxed);
        for (reply, outcome) in owed {
            let _ = reply.send(Ok(outcome));
        }
        Ok(())
    }

    fn open_day(&mut self, date: Date) -> anyhow::Result<()> {
        self.day = None;
        let path = days::live_path(&self.dir, date);
        let file =
            files::open_append(&path).with_context(|| format!("opening {}", path.display()))?;
        files::sync_dir(&self.dir)
            .with_context(|| format!("syncing directory {}", self.dir.display()))?;
        let len = file.metadata()?.len();
        let oldest = date - Duration::days(DEDUP_DAYS + 1);
        self.seen().expire(oldest);
        self.day = Some(OpenDay {
            date,
            path,
            file,
            len,
        });
        Ok(())
    }
}

/// One write and one fdatasync; fails if the file is no longer the one at
/// its path (the directory was removed or the file replaced), since bytes
/// written to an unlinked file are not in the log.
fn durable_append(disk: &dyn Disk, day: &mut OpenDay, buf: &[u8]) -> io::Result<()> {
    if !files::still_named(&day.file, &day.path)? {
        return Err(io::Error::other("the day file was removed or replaced"));
    }
    disk.write(&mut day.file, buf)?;
    disk.sync(&day.file)
}
