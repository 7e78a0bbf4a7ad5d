//! One reconcile run and the periodic runs of `serve`: watched rooms,
//! then the backfill of the current gap, then each room's roster diff;
//! paced by the client, a failed room noted and left for the next run,
//! and a [`Summary`] of what was done.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::watch;

use super::EventsApi;
use super::backfill;
use super::in_log;
use super::pending::{self, Gap};
use super::roster::{self, Finding};
use super::watched::{Room, Scope};
use crate::clock::Clock;
use crate::log::record::{Event, Source, format_timestamp};
use crate::log::writer::{Appended, LogWriter, Rule};
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
    /// The gaps whose backfill from `GET /events` is still to be done,
    /// oldest first: the one that ended at this start, and any an earlier
    /// run could not fill.
    gaps: Vec<Gap>,
    /// Where `gaps` are kept across restarts.
    pending_in: Option<PathBuf>,
    /// Whether the newest of `gaps` ended at this start and was not tried
    /// yet: it is written as deliveries are, since nothing came after it.
    fresh: bool,
    /// When the log last covered every room: the start of that gap.
    gap_start: Option<String>,
    /// When each room was last checked in full: someone gone by the next
    /// run was there at least until then.
    checked: HashMap<String, String>,
    runs: watch::Sender<u64>,
    /// Whether who is in a room is asked of the index first
    /// ([`in_log::room_members`]).
    use_index: bool,
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
    /// Gaps still to be backfilled after this run's try; the next run
    /// retries them.
    pub unfilled_gaps: usize,
    /// Roster-diff records written while a gap was unfilled: their times
    /// are bounded by the gap, and what came and went inside it is missing.
    pub without_backfill: u64,
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

    /// Counts a record written; says whether it is one written while a
    /// gap was unfilled.
    fn count(&mut self, event: Event, source: Source) -> bool {
        *self.written.entry(event.as_str()).or_default() += 1;
        if source == Source::EventsApi {
            self.from_events += 1;
        }
        let unfilled = source == Source::Reconciled && self.unfilled_gaps > 0;
        self.without_backfill += u64::from(unfilled);
        unfilled
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
        if self.unfilled_gaps > 0 {
            write!(
                f,
                "; {} gaps not backfilled yet, retried next run ({} records reconciled meanwhile, from the roster diff alone)",
                self.unfilled_gaps, self.without_backfill
            )?;
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
            gaps: Vec::new(),
            pending_in: None,
            fresh: false,
            gap_start: None,
            checked: HashMap::new(),
            runs: watch::Sender::new(0),
            use_index: true,
        }
    }

    /// Whether the roster diff asks the index who is in a room (else it
    /// reads the log): off when `serve` keeps no index, since one left
    /// over may be of another log.
    pub fn using_index(mut self, use_index: bool) -> Self {
        self.use_index = use_index;
        self
    }

    /// The coverage gap ends at `to` (this start) and began with the last
    /// record `writer` found when it opened the log: the first run
    /// backfills it, and dates leaves and role changes from it. Gaps an
    /// earlier run could not backfill are read from the log directory and
    /// retried first; this one is added to them there before any run, so
    /// a crash does not lose it either.
    pub fn after_gap(mut self, writer: &LogWriter, to: OffsetDateTime) -> Self {
        let end = writer.recovered_end();
        self.gap_start = end.and_then(|end| end.received_at.clone());
        let dir = writer.dir();
        self.gaps = pending::read(dir).unwrap_or_else(|error| {
            tracing::warn!(
                error = format!("{error:#}"),
                "the gaps still to be backfilled could not be read: only this start's is backfilled"
            );
            Vec::new()
        });
        self.pending_in = Some(dir.to_path_buf());
        if let (Some(from), Some(end)) = (self.gap_start.clone(), end) {
            let gap = Gap {
                from,
                to: format_timestamp(to),
                end_seq: end.seq,
            };
            if !self.gaps.contains(&gap) {
                self.gaps.push(gap);
                self.fresh = true;
                self.keep_gaps();
            }
        }
        self.metrics
            .reconcile_unfilled_gaps
            .store(self.gaps.len() as u64, Relaxed);
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
                if summary.without_backfill > 0 {
                    tracing::warn!(
                        records = summary.without_backfill,
                        gaps = summary.unfilled_gaps,
                        "records reconciled while a gap's backfill from /events is pending: their times are bounded by the gap, not exact, and what came and went inside it is missing until a later run fills it"
                    );
                }
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
        if !self.gaps.is_empty() {
            summary.backfill = self.backfill_pending(writer, rooms, summary).await;
        }
        summary.unfilled_gaps = self.gaps.len();
        self.metrics
            .reconcile_unfilled_gaps
            .store(self.gaps.len() as u64, Relaxed);
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
            let (dir, room_id) = (writer.dir().to_path_buf(), room.id.clone());
            let (use_index, clock) = (self.use_index, self.clock.clone());
            let members = tokio::task::spawn_blocking(move || {
                in_log::room_members(&dir, &room_id, listed_from, use_index, clock.as_ref())
            })
            .await
            .map_err(anyhow::Error::new)
            .and_then(|read| read);
            let members = match members {
                Ok(members) => members,
                Err(error) => {
                    summary.failed.push((room.id.clone(), format!("{error:#}")));
                    continue;
                }
            };
            let findings =
                roster::diff(room, listed, &members, known_until.as_deref(), listed_from);
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

    /// Backfills the pending gaps oldest first, each taken off the list
    /// (and the file) once its events are written; the first that fails
    /// stays, with every later one, for the next run.
    async fn backfill_pending(
        &mut self,
        writer: &LogWriter,
        rooms: &[Room],
        summary: &mut Summary,
    ) -> Backfill {
        let mut events = 0;
        while let Some(gap) = self.gaps.first().cloned() {
            let late = !(self.fresh && self.gaps.len() == 1);
            match self.backfill(writer, &gap, late, rooms, summary).await {
                Backfill::Done(n) => events += n,
                Backfill::NotComplianceOfficer => {
                    // This token can never fill them: the roster diff is all
                    // there is, as for a log with no gaps kept.
                    self.gaps.clear();
                    self.keep_gaps();
                    return Backfill::NotComplianceOfficer;
                }
                failed => {
                    self.fresh = false;
                    return failed;
                }
            }
            self.gaps.remove(0);
            self.keep_gaps();
        }
        self.fresh = false;
        Backfill::Done(events)
    }

    /// Writes the pending gaps down. Failing to is only warned of: a gap
    /// left on the list is backfilled again, which dedup makes harmless,
    /// and one missing from it is what happened before gaps were kept.
    fn keep_gaps(&self) {
        let Some(dir) = &self.pending_in else {
            return;
        };
        if let Err(error) = pending::store(dir, &self.gaps) {
            tracing::warn!(
                dir = %dir.display(),
                %error,
                "could not record which gaps are still to be backfilled"
            );
        }
    }

    /// Reads the gap's events page by page, keeping only the watched
    /// rooms' (a compliance officer sees the whole org's), and writes them
    /// once the last page is in: they are written in the order they
    /// happened, which the pages' order need not be, and a list that
    /// fails part-way writes nothing, so the gap is still whole for a
    /// retry. A `late` gap (not this start's, or tried before) is written
    /// under [`Rule::Replayed`].
    async fn backfill(
        &self,
        writer: &LogWriter,
        gap: &Gap,
        late: bool,
        rooms: &[Room],
        summary: &mut Summary,
    ) -> Backfill {
        let time = |at: &str| OffsetDateTime::parse(at, &Rfc3339);
        let (Ok(from), Ok(to)) = (time(&gap.from), time(&gap.to)) else {
            return Backfill::Failed(format!(
                "the gap from {} to {} does not read as two times",
                gap.from, gap.to
            ));
        };
        let by_id: HashMap<&str, &Room> = rooms.iter().map(|r| (r.id.as_str(), r)).collect();
        let mut pages = self.client.membership_events(from, to);
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
        let late = late.then(|| Rule::Replayed {
            gap_end: gap.end_seq,
            replay_from: writer.membership_seq(),
        });
        match self
            .write(writer, backfill::findings(kept, &by_id, late), summary)
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
                    if summary.count(event, source) {
                        self.metrics
                            .reconcile_records_without_backfill
                            .fetch_add(1, Relaxed);
                    }
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
