//! One reconcile run and the periodic runs of `serve`: watched rooms,
//! then the backfill of the current gap, then each room's roster diff;
//! paced by the client, a failed room noted and left for the next run,
//! and a [`Summary`] of what was done.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::watch;

use super::EventsApi;
use super::backfill::{self, Gap};
use super::roster::{self, Finding};
use super::watched::{Room, Scope};
use crate::clock::Clock;
use crate::log::record::{Event, Source, format_timestamp};
use crate::log::writer::{Appended, LogWriter};
use crate::metrics::Metrics;
use crate::webex::client::{ApiError, Client};

/// Runs reconciliations against one log, remembering between runs when
/// each room was last checked.
pub struct Reconciler {
    /// Paced: reconciliation never competes with the request path.
    client: Client,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    scope: Scope,
    events_api: EventsApi,
    /// The gap that ended at this start: backfilled by the first run only.
    gap: Option<Gap>,
    /// When the log last covered every room: the start of that gap.
    gap_start: Option<String>,
    /// When each room was last checked in full: someone gone by the next
    /// run was there at least until then.
    checked: HashMap<String, String>,
    runs: watch::Sender<u64>,
}

/// What a run did, for the summary line.
#[derive(Debug, Default)]
pub struct Summary {
    /// The rooms to check.
    pub rooms: usize,
    /// Rooms whose roster was compared and whose findings were written.
    pub checked: usize,
    /// Rooms that could not be checked, with why; the next run retries them.
    pub failed: Vec<(String, String)>,
    /// Records written, by event.
    pub written: BTreeMap<&'static str, u64>,
    /// Of those, how many came from `GET /events`.
    pub from_events: u64,
    pub backfill: Backfill,
    /// Why the run could not start (the rooms could not be listed).
    pub error: Option<String>,
    pub api_calls: u64,
    pub took: Duration,
}

/// What became of the exact backfill.
#[derive(Debug, Default, PartialEq, Eq)]
pub enum Backfill {
    /// Not this run: no gap before it (an empty log, or a periodic run).
    #[default]
    NoGap,
    /// `GET /events` answered; this many events were in the gap.
    Done(usize),
    /// The token is not a compliance officer's; the roster diff alone ran.
    NotComplianceOfficer,
    Failed(String),
}

impl Summary {
    /// Every room checked, and the backfill done when it was asked for.
    pub fn is_complete(&self) -> bool {
        self.error.is_none()
            && self.failed.is_empty()
            && !matches!(self.backfill, Backfill::Failed(_))
    }

    fn count(&mut self, event: Event, source: Source) {
        *self.written.entry(event.as_str()).or_default() += 1;
        if source == Source::EventsApi {
            self.from_events += 1;
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(error) = &self.error {
            return write!(f, "reconcile could not run: {error}");
        }
        let total: u64 = self.written.values().sum();
        write!(
            f,
            "reconciled {} of {} rooms in {:.1}s: {total} records written",
            self.checked,
            self.rooms,
            self.took.as_secs_f64()
        )?;
        if total > 0 {
            let kinds: Vec<String> = self
                .written
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            write!(
                f,
                " ({}; {} from /events)",
                kinds.join(", "),
                self.from_events
            )?;
        }
        write!(f, ", {} API calls", self.api_calls)?;
        match &self.backfill {
            Backfill::NoGap => {}
            Backfill::Done(n) => write!(f, "; backfill: {n} events in the gap")?,
            Backfill::NotComplianceOfficer => write!(
                f,
                "; no exact backfill: not a compliance officer token (roster diff only)"
            )?,
            Backfill::Failed(error) => write!(f, "; backfill failed: {error}")?,
        }
        if !self.failed.is_empty() {
            let rooms: Vec<&str> = self.failed.iter().map(|(room, _)| room.as_str()).collect();
            write!(
                f,
                "; {} rooms failed, retried next run: {}",
                rooms.len(),
                rooms.join(", ")
            )?;
        }
        Ok(())
    }
}

impl Reconciler {
    /// A reconciler over `client` (pace it first), for the rooms `scope`
    /// names.
    pub fn new(
        client: Client,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        scope: Scope,
        events_api: EventsApi,
    ) -> Self {
        Self {
            client,
            clock,
            metrics,
            scope,
            events_api,
            gap: None,
            gap_start: None,
            checked: HashMap::new(),
            runs: watch::Sender::new(0),
        }
    }

    /// The coverage gap ends at `to` (this start) and began with the last
    /// record `writer` found when it opened the log: the first run
    /// backfills it, and dates leaves and role changes from it.
    pub fn after_gap(mut self, writer: &LogWriter, to: OffsetDateTime) -> Self {
        self.gap_start = writer
            .recovered_end()
            .and_then(|end| end.received_at.clone());
        self.gap = self
            .gap_start
            .as_deref()
            .and_then(|from| OffsetDateTime::parse(from, &Rfc3339).ok())
            .map(|from| Gap { from, to });
        self
    }

    /// How many runs have finished, to wait on.
    pub fn runs(&self) -> watch::Receiver<u64> {
        self.runs.subscribe()
    }

    /// One run; `progress` hears (rooms done, rooms in all) as it goes.
    pub async fn run(
        &mut self,
        writer: &LogWriter,
        progress: &mut (dyn FnMut(usize, usize) + Send),
    ) -> Summary {
        let started = Instant::now();
        let calls_before = self.client.api_calls();
        let mut summary = Summary::default();
        match self.scope.rooms(&self.client).await {
            Ok(rooms) => self.check(writer, &rooms, &mut summary, progress).await,
            Err(error) => summary.error = Some(error_chain(error)),
        }
        summary.api_calls = self.client.api_calls() - calls_before;
        summary.took = started.elapsed();
        self.metrics.reconcile_runs.fetch_add(1, Relaxed);
        self.metrics
            .reconcile_failed_rooms
            .fetch_add(summary.failed.len() as u64, Relaxed);
        self.runs.send_modify(|n| *n += 1);
        summary
    }

    /// A run at once, then one every `every` (`None`: no more), each
    /// summed up in rollcall's own log, until the task is dropped.
    pub async fn run_every(mut self, writer: &LogWriter, every: Option<Duration>) {
        loop {
            let summary = self.run(writer, &mut |_, _| {}).await;
            if summary.is_complete() {
                tracing::info!("{summary}");
            } else {
                tracing::warn!("{summary}");
                for (room, error) in &summary.failed {
                    tracing::warn!(room = %room, %error, "a room could not be reconciled; the next run retries it");
                }
            }
            match every {
                Some(every) => tokio::time::sleep(every).await,
                None => std::future::pending().await,
            }
        }
    }

    async fn check(
        &mut self,
        writer: &LogWriter,
        rooms: &[Room],
        summary: &mut Summary,
        progress: &mut (dyn FnMut(usize, usize) + Send),
    ) {
        summary.rooms = rooms.len();
        writer.members_ready().await;
        if let Some(gap) = self.gap.take() {
            summary.backfill = self.backfill(writer, gap, rooms, summary).await;
        }
        for (done, room) in rooms.iter().enumerate() {
            progress(done, rooms.len());
            let checked_at = format_timestamp(self.clock.now());
            let listed_from = writer.membership_seq();
            let listed = match self.client.list_memberships(&room.id).await {
                Ok(listed) => listed,
                Err(error) => {
                    summary.failed.push((room.id.clone(), error_chain(error)));
                    continue;
                }
            };
            let known_until = self
                .checked
                .get(&room.id)
                .or(self.gap_start.as_ref())
                .cloned();
            let findings = writer.members(|members| {
                roster::diff(room, listed, members, known_until.as_deref(), listed_from)
            });
            match self.write(writer, findings, summary).await {
                Ok(()) => {
                    summary.checked += 1;
                    self.checked.insert(room.id.clone(), checked_at);
                }
                Err(error) => summary.failed.push((room.id.clone(), error)),
            }
        }
        progress(rooms.len(), rooms.len());
    }

    /// Reads the gap's events page by page, keeping only the watched
    /// rooms' (a compliance officer sees the whole org's), and writes them
    /// once the last page is in: they are written in the order they
    /// happened, which the pages' order need not be, and a list that
    /// fails part-way writes nothing, so the gap is still whole for a
    /// retry.
    async fn backfill(
        &self,
        writer: &LogWriter,
        gap: Gap,
        rooms: &[Room],
        summary: &mut Summary,
    ) -> Backfill {
        let by_id: HashMap<&str, &Room> = rooms.iter().map(|r| (r.id.as_str(), r)).collect();
        let mut pages = self.client.membership_events(gap.from, gap.to);
        let (mut count, mut kept) = (0, Vec::new());
        loop {
            match pages.next().await {
                Ok(Some(page)) => {
                    count += page.len();
                    kept.extend(backfill::watched(page, &by_id));
                }
                Ok(None) => break,
                Err(ApiError::NotComplianceOfficer { .. })
                    if self.events_api == EventsApi::Detect =>
                {
                    return Backfill::NotComplianceOfficer;
                }
                Err(error) => return Backfill::Failed(error_chain(error)),
            }
        }
        match self
            .write(writer, backfill::findings(kept, &by_id), summary)
            .await
        {
            Ok(()) => Backfill::Done(count),
            Err(error) => Backfill::Failed(error),
        }
    }

    /// Appends each finding as its rule says, counting what was written.
    /// All are handed to the writer at once, so a room's findings share
    /// one fdatasync (a baseline of 50 members is one batch, not 50);
    /// `join_all` first polls them in the order given, so they queue, and
    /// are written, in that order.
    async fn write(
        &self,
        writer: &LogWriter,
        findings: Vec<Finding>,
        summary: &mut Summary,
    ) -> Result<(), String> {
        let appends = findings.into_iter().map(|Finding { record, rule }| {
            let (event, source) = (record.event, record.source);
            async move { (event, source, writer.append_if(record, rule).await) }
        });
        let mut failure = None;
        for (event, source, appended) in futures_util::future::join_all(appends).await {
            match appended {
                Ok(Appended::Recorded(_)) => {
                    summary.count(event, source);
                    let counter = match source {
                        Source::EventsApi => &self.metrics.reconcile_records_events_api,
                        _ => &self.metrics.reconcile_records_reconciled,
                    };
                    counter.fetch_add(1, Relaxed);
                }
                Ok(Appended::Duplicate(_) | Appended::Unchanged) => {}
                Err(error) => failure = Some(error.to_string()),
            }
        }
        failure.map_or(Ok(()), Err)
    }
}

/// An error with its causes, on one line.
fn error_chain(error: ApiError) -> String {
    format!("{:#}", anyhow::Error::new(error))
}
