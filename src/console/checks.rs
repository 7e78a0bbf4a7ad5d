//! The integrity page's `verify` runs: one at the console's start and one
//! per press of its button, in the background, one at a time; the last
//! result is kept for the page.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use tokio::sync::watch;

use crate::clock::Clock;
use crate::log::head::Head;
use crate::log::record::format_timestamp;
use crate::log::verify::{self, Heads, Report};

/// What a finished run found.
#[derive(Debug, Clone)]
pub struct Finding {
    pub intact: bool,
    pub records: u64,
    pub days: usize,
    pub archived: usize,
    pub head: Option<Head>,
    /// Faults, quarantined files and notes, as `verify` prints them.
    pub faults: Vec<String>,
    pub quarantined: Vec<String>,
    pub notes: Vec<String>,
}

impl From<&Report> for Finding {
    fn from(report: &Report) -> Self {
        Finding {
            intact: report.intact(),
            records: report.records,
            days: report.days,
            archived: report.archived,
            head: report.head.clone(),
            faults: report
                .archive_faults
                .iter()
                .chain(&report.chain_fault)
                .map(ToString::to_string)
                .collect(),
            quarantined: report.quarantine.iter().map(ToString::to_string).collect(),
            notes: report.notes.clone(),
        }
    }
}

/// A finished run.
#[derive(Debug, Clone)]
pub struct Run {
    pub started_at: String,
    pub millis: u128,
    /// What it found, or why it could not run.
    pub result: Result<Finding, String>,
}

/// The runs so far: the last finished one, and since when one is running.
#[derive(Debug, Clone, Default)]
pub struct Status {
    pub last: Option<Run>,
    pub running_since: Option<String>,
}

pub struct Checks {
    dir: PathBuf,
    clock: Arc<dyn Clock>,
    status: Mutex<Status>,
    /// Counts finished runs, for whoever waits on one.
    finished: watch::Sender<u64>,
}

impl Checks {
    pub fn new(dir: PathBuf, clock: Arc<dyn Clock>) -> Self {
        Self {
            dir,
            clock,
            status: Mutex::default(),
            finished: watch::Sender::new(0),
        }
    }

    fn status_lock(&self) -> MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn status(&self) -> Status {
        self.status_lock().clone()
    }

    /// Starts a run unless one is running; says whether it started one.
    pub fn start(self: &Arc<Self>) -> bool {
        let started_at = format_timestamp(self.clock.now());
        {
            let mut status = self.status_lock();
            if status.running_since.is_some() {
                return false;
            }
            status.running_since = Some(started_at.clone());
        }
        let checks = self.clone();
        let started = crate::background::spawn("rollcall-verify", move || {
            let began = Instant::now();
            let result = Head::read(&checks.dir)
                .and_then(|durable| {
                    let heads = Heads {
                        durable,
                        expected: None,
                    };
                    verify::verify(&checks.dir, &heads)
                })
                .map(|report| Finding::from(&report))
                .map_err(|e| format!("{e:#}"));
            let mut status = checks.status_lock();
            status.running_since = None;
            status.last = Some(Run {
                started_at,
                millis: began.elapsed().as_millis(),
                result,
            });
            drop(status);
            checks.finished.send_modify(|n| *n += 1);
        });
        if let Err(error) = started {
            tracing::error!(%error, "the integrity check could not start");
            let mut status = self.status_lock();
            status.last = Some(Run {
                started_at: status.running_since.take().unwrap_or_default(),
                millis: 0,
                result: Err(format!("the check could not start: {error}")),
            });
            drop(status);
            self.finished.send_modify(|n| *n += 1);
        }
        true
    }

    /// Waits until no run is going on.
    pub async fn settled(&self) {
        let mut finished = self.finished.subscribe();
        while self.status_lock().running_since.is_some() {
            if finished.changed().await.is_err() {
                return;
            }
        }
    }
}
