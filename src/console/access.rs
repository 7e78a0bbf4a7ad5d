//! The console's access log, one file a UTC day
//! (`DIR/access/console-YYYY-MM-DD.jsonl`): one JSON line per login,
//! search, download, page and verify run, saying who (session and client
//! address), when, with which filters and how many rows. Reading an audit
//! log is itself audited, so its lines are hash-chained like the records
//! (`seq`, `prev_hash`, `hash`; checked by `verify`).
//!
//! The files themselves, their chain, its check and their retention are
//! the storage layer's ([`crate::log::access`]); this is what the console
//! writes to them and when it waits.
//!
//! Which lines must be durable before the answer: every line for a
//! request that shows or exports records, starts a verify, or signs
//! someone in ([`AccessLog::record`]: it waits for room in the queue and
//! for the fdatasync, and a line that cannot be written refuses the
//! request). Lines for requests that showed nothing (a wrong password)
//! are best effort ([`AccessLog::note`]), and refusals a client can
//! repeat at will (rate-limited logins, a proxy header from an untrusted
//! peer) are counted into one line per client a minute
//! ([`AccessLog::count`]): a flood neither fills the disk nor waits on
//! it. Best-effort lines that find the queue full are dropped and
//! counted in `rollcall_console_access_dropped_lines_total`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{SyncSender, TrySendError};

use serde::Serialize;
use tokio::sync::oneshot;

use super::search::Query;
use crate::clock::Clock;
use crate::log::access::{ACCESS_DIR, Message, writer};
use crate::log::record::format_timestamp;
use crate::metrics::Metrics;

/// Lines waiting for the writer thread. A durable line waits for room; a
/// best-effort one finding it full is dropped (and counted).
const QUEUE: usize = 1024;

/// Who asked.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Who {
    /// The session's short name; none before login.
    pub session: Option<String>,
    pub client: Option<SocketAddr>,
}

impl Who {
    /// Nobody signed in, from `client`.
    pub fn default_from(client: Option<SocketAddr>) -> Self {
        Who {
            session: None,
            client,
        }
    }
}

/// One line of the access log.
#[derive(Debug, Default, Serialize)]
pub struct Entry<'a> {
    pub action: &'a str,
    /// `ok`, `wrong_password`, `rate_limited`, `refused`...
    pub outcome: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filters: Option<&'a Query>,
    /// What was looked at: a room or person id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    /// How a page was looked at: the roster's time and the history page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub view: Option<View<'a>>,
}

/// The roster time (`now` for the present) and the 0-based history page
/// a room page was asked for, with the seq its records were below.
#[derive(Debug, Serialize)]
pub struct View<'a> {
    pub at: &'a str,
    pub page: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<u64>,
}

impl<'a> Entry<'a> {
    /// A search or download with `filters`: the rows it gave, or `None`
    /// when the query was refused.
    pub fn query(action: &'a str, filters: &'a Query, rows: Option<u64>) -> Self {
        Entry {
            action,
            outcome: if rows.is_some() { "ok" } else { "refused" },
            filters: Some(filters),
            rows,
            ..Entry::default()
        }
    }
}

/// A line's content before the writer numbers, links and seals it.
#[derive(Serialize)]
struct Content<'a> {
    at: String,
    #[serde(flatten)]
    who: &'a Who,
    #[serde(flatten)]
    entry: &'a Entry<'a>,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot write the console access log in {}: {reason}; check the disk and its permissions", dir.display())]
pub struct AccessError {
    dir: PathBuf,
    reason: String,
}

pub struct AccessLog {
    dir: PathBuf,
    queue: SyncSender<Message>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
}

impl AccessLog {
    /// Creates `DIR/access`, takes up the chain where its newest file
    /// ends, and starts the writer thread.
    pub fn open(dir: &Path, clock: Arc<dyn Clock>, metrics: Arc<Metrics>) -> anyhow::Result<Self> {
        let folder = dir.join(ACCESS_DIR);
        let queue = writer::start(&folder, clock.clone(), QUEUE)?;
        Ok(Self {
            dir: folder,
            queue,
            clock,
            metrics,
        })
    }

    /// The folder of the day files.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Appends one line and waits until it is durable; an error refuses
    /// the request. Waits for room in the queue off the runtime's worker
    /// threads rather than drop the line.
    pub async fn record(&self, who: &Who, entry: &Entry<'_>) -> Result<(), AccessError> {
        let (done, durable) = oneshot::channel();
        let message = self.line(who, entry, Some(done));
        let failed = |reason: String| AccessError {
            dir: self.dir.clone(),
            reason,
        };
        match self.queue.try_send(message) {
            Ok(()) => {}
            Err(TrySendError::Full(message)) => {
                let queue = self.queue.clone();
                tokio::task::spawn_blocking(move || queue.send(message).map_err(|_| ()))
                    .await
                    .map_err(|e| failed(e.to_string()))?
                    .map_err(|()| failed("its writer has stopped".into()))?;
            }
            Err(TrySendError::Disconnected(_)) => {
                return Err(failed("its writer has stopped".into()));
            }
        }
        durable
            .await
            .map_err(|_| failed("its writer has stopped".into()))?
            .map_err(failed)
    }

    /// Appends one line without waiting for it (see the module's doc).
    pub fn note(&self, who: &Who, entry: &Entry<'_>) {
        let message = self.line(who, entry, None);
        self.offer(message);
    }

    /// Counts one refusal from `client`: the first of a minute is written
    /// at once, the minute's total in one summary line once it is over.
    pub fn count(&self, client: Option<SocketAddr>, action: &'static str, outcome: &'static str) {
        let Some(client) = client else {
            return self.note(
                &Who::default(),
                &Entry {
                    action,
                    outcome,
                    ..Entry::default()
                },
            );
        };
        self.offer(Message::Count {
            at: self.clock.now(),
            client: client.ip().to_canonical(),
            action,
            outcome,
        });
    }

    /// Writes the pending summaries; for a clean stop.
    pub async fn flush(&self) {
        let (done, flushed) = oneshot::channel();
        if self.queue.try_send(Message::Flush(done)).is_ok() {
            let _ = flushed.await;
        }
    }

    fn line(
        &self,
        who: &Who,
        entry: &Entry<'_>,
        durable: Option<oneshot::Sender<Result<(), String>>>,
    ) -> Message {
        let at = self.clock.now();
        let content = Content {
            at: format_timestamp(at),
            who,
            entry,
        };
        Message::Line {
            at,
            content: serde_json::to_vec(&content).expect("an access line always serializes"),
            durable,
        }
    }

    fn offer(&self, message: Message) {
        if self.queue.try_send(message).is_err() {
            self.metrics
                .console_access_dropped
                .fetch_add(1, Ordering::Relaxed);
        }
    }
}
