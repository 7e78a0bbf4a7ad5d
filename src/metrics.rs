//! Process-local counters for `GET /metrics`, in Prometheus text format.
//! They reset with the process but never lie while it runs.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds of the ack latency histogram, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// How a delivery was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Recorded,
    Duplicate,
    Ignored,
    BadRequest,
    Unauthorized,
    NotFound,
    TooLarge,
    Unavailable,
}

impl Outcome {
    const ALL: [Outcome; 8] = [
        Outcome::Recorded,
        Outcome::Duplicate,
        Outcome::Ignored,
        Outcome::BadRequest,
        Outcome::Unauthorized,
        Outcome::NotFound,
        Outcome::TooLarge,
        Outcome::Unavailable,
    ];

    fn label(self) -> &'static str {
        match self {
            Outcome::Recorded => "recorded",
            Outcome::Duplicate => "duplicate",
            Outcome::Ignored => "ignored",
            Outcome::BadRequest => "bad_request",
            Outcome::Unauthorized => "unauthorized",
            Outcome::NotFound => "not_found",
            Outcome::TooLarge => "too_large",
            Outcome::Unavailable => "unavailable",
        }
    }
}

#[derive(Debug, Default)]
pub struct Metrics {
    deliveries: [AtomicU64; 8],
    pub records_written: AtomicU64,
    pub syncs: AtomicU64,
    pub sync_failures: AtomicU64,
    pub room_lookups: AtomicU64,
    pub room_lookup_failures: AtomicU64,
    pub archive_runs: AtomicU64,
    pub archive_failures: AtomicU64,
    /// 1 when the newest record failed its hash at start (the chain went
    /// on from its stored hash), else 0.
    pub damaged_at_start: AtomicU64,
    /// Lines of the dedup window that a start found not to be records
    /// (a gauge): left out of dedup and the membership state.
    pub damaged_lines: AtomicU64,
    /// Durable heads kept in `DIR/quarantine/` because a start found the
    /// log ending before them (a gauge), and the newest one's seq.
    pub heads_quarantined: AtomicU64,
    pub head_quarantined_seq: AtomicU64,
    /// Archives and digests uploaded to the bucket.
    pub offsite_shipped_objects: AtomicU64,
    /// Shipping runs the store made stop early.
    pub offsite_ship_failures: AtomicU64,
    /// Archives not yet confirmed in the bucket (a gauge).
    pub unshipped_archives: AtomicU64,
    /// Unix time the oldest unshipped archive has waited since, 0 for none.
    pub oldest_unshipped_since: AtomicU64,
    pub checkpoints_uploaded: AtomicU64,
    pub checkpoint_failures: AtomicU64,
    /// Bucket objects found holding something else than the local file
    /// or checkpoint shipped under their name.
    pub offsite_mismatches: AtomicU64,
    pub reconcile_runs: AtomicU64,
    /// Rooms a reconcile run could not check (each run counts its own).
    pub reconcile_failed_rooms: AtomicU64,
    /// Records reconciliation wrote, by source.
    pub reconcile_records_reconciled: AtomicU64,
    pub reconcile_records_events_api: AtomicU64,
    /// Best-effort console access lines dropped at a full queue.
    pub console_access_dropped: AtomicU64,
    /// Coverage gaps whose backfill from `GET /events` has not succeeded.
    pub reconcile_unfilled_gaps: AtomicU64,
    /// Roster-diff records written while such a gap was pending.
    pub reconcile_records_without_backfill: AtomicU64,
    /// The newest record serve's indexer has folded into the index.
    pub index_seq: AtomicU64,
    /// Durable records the index does not hold yet.
    pub index_lag_records: AtomicU64,
    pub index_failures: AtomicU64,
    pub index_rebuilds: AtomicU64,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
}

impl Metrics {
    /// Counts one answered delivery and how long its answer took.
    pub fn delivery(&self, outcome: Outcome, took: Duration) {
        let index = Outcome::ALL.iter().position(|o| *o == outcome).unwrap_or(0);
        self.deliveries[index].fetch_add(1, Relaxed);
        // One bucket per answer; render() adds them up, as Prometheus
        // buckets are cumulative. One atomic instead of a dozen on every
        // request.
        let secs = took.as_secs_f64();
        if let Some(bucket) = LATENCY_BUCKETS.iter().position(|bound| secs <= *bound) {
            self.latency_buckets[bucket].fetch_add(1, Relaxed);
        }
        self.latency_count.fetch_add(1, Relaxed);
        self.latency_sum_micros
            .fetch_add(took.as_micros() as u64, Relaxed);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP rollcall_deliveries_total Webhook deliveries by outcome.\n");
        out.push_str("# TYPE rollcall_deliveries_total counter\n");
        for (outcome, count) in Outcome::ALL.iter().zip(&self.deliveries) {
            let _ = writeln!(
                out,
                "rollcall_deliveries_total{{outcome=\"{}\"}} {}",
                outcome.label(),
                count.load(Relaxed)
            );
        }
        for (name, help, value) in [
            (
                "rollcall_records_written_total",
                "Records made durable.",
                &self.records_written,
            ),
            (
                "rollcall_fdatasync_total",
                "fdatasync calls on the log.",
                &self.syncs,
            ),
            (
                "rollcall_fdatasync_failures_total",
                "Batches that could not be made durable.",
                &self.sync_failures,
            ),
            (
                "rollcall_room_lookups_total",
                "GET /rooms requests made.",
                &self.room_lookups,
            ),
            (
                "rollcall_room_lookup_failures_total",
                "Room lookups that failed or timed out.",
                &self.room_lookup_failures,
            ),
            (
                "rollcall_archive_runs_total",
                "Archival runs.",
                &self.archive_runs,
            ),
            (
                "rollcall_archive_failures_total",
                "Archival runs that failed.",
                &self.archive_failures,
            ),
            (
                "rollcall_offsite_shipped_objects_total",
                "Archives and digests uploaded to the S3 bucket.",
                &self.offsite_shipped_objects,
            ),
            (
                "rollcall_offsite_ship_failures_total",
                "Shipping runs the S3 store made stop early (retried later).",
                &self.offsite_ship_failures,
            ),
            (
                "rollcall_offsite_checkpoints_total",
                "Head checkpoints uploaded to the S3 bucket.",
                &self.checkpoints_uploaded,
            ),
            (
                "rollcall_offsite_checkpoint_failures_total",
                "Head checkpoints the S3 store did not take.",
                &self.checkpoint_failures,
            ),
            (
                "rollcall_offsite_mismatches_total",
                "Bucket objects holding something else than what rollcall shipped under their name.",
                &self.offsite_mismatches,
            ),
            (
                "rollcall_reconcile_runs_total",
                "Reconcile runs.",
                &self.reconcile_runs,
            ),
            (
                "rollcall_reconcile_failed_rooms_total",
                "Rooms a reconcile run could not check.",
                &self.reconcile_failed_rooms,
            ),
            (
                "rollcall_console_access_dropped_lines_total",
                "Best-effort console access lines (wrong passwords, counted refusals) dropped because the access log's queue was full.",
                &self.console_access_dropped,
            ),
            (
                "rollcall_reconcile_records_without_backfill_total",
                "Records the roster diff wrote while a gap's backfill from /events was pending.",
                &self.reconcile_records_without_backfill,
            ),
            (
                "rollcall_index_failures_total",
                "Steps of keeping DIR/index.sqlite up to the log that failed (retried; deliveries are unaffected).",
                &self.index_failures,
            ),
            (
                "rollcall_index_rebuilds_total",
                "Times the index was found not to be the log's (or unreadable, or of another version) and rebuilt.",
                &self.index_rebuilds,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                value.load(Relaxed)
            );
        }
        out.push_str(
            "# HELP rollcall_reconcile_records_total Records reconciliation wrote, by source.\n",
        );
        out.push_str("# TYPE rollcall_reconcile_records_total counter\n");
        for (source, value) in [
            ("reconciled", &self.reconcile_records_reconciled),
            ("events_api", &self.reconcile_records_events_api),
        ] {
            let _ = writeln!(
                out,
                "rollcall_reconcile_records_total{{source=\"{source}\"}} {}",
                value.load(Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP rollcall_reconcile_unfilled_gaps Coverage gaps whose backfill from /events has not succeeded yet (retried each run).\n# TYPE rollcall_reconcile_unfilled_gaps gauge\nrollcall_reconcile_unfilled_gaps {}",
            self.reconcile_unfilled_gaps.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP rollcall_damaged_records_at_start Whether the newest record failed its hash at start (run `rollcall verify`).\n# TYPE rollcall_damaged_records_at_start gauge\nrollcall_damaged_records_at_start {}",
            self.damaged_at_start.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP rollcall_damaged_lines Lines of the last 7 days (the dedup window) that the start found are not records: reported, left out of dedup and the membership state (run `rollcall verify`).\n# TYPE rollcall_damaged_lines gauge\nrollcall_damaged_lines {}",
            self.damaged_lines.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP rollcall_head_quarantined Durable heads kept in DIR/quarantine because a start found the log ending before them: records were cut (run `rollcall verify`).\n# TYPE rollcall_head_quarantined gauge\nrollcall_head_quarantined {}\n# HELP rollcall_head_quarantined_seq The seq of the newest quarantined head (0: none).\n# TYPE rollcall_head_quarantined_seq gauge\nrollcall_head_quarantined_seq {}",
            self.heads_quarantined.load(Relaxed),
            self.head_quarantined_seq.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP rollcall_index_lag_records Durable records DIR/index.sqlite does not hold yet (read commands catch up themselves).\n# TYPE rollcall_index_lag_records gauge\nrollcall_index_lag_records {}\n# HELP rollcall_index_seq The newest record the index holds.\n# TYPE rollcall_index_seq gauge\nrollcall_index_seq {}",
            self.index_lag_records.load(Relaxed),
            self.index_seq.load(Relaxed)
        );
        let since = self.oldest_unshipped_since.load(Relaxed);
        let age = if since == 0 {
            0
        } else {
            (time::OffsetDateTime::now_utc().unix_timestamp() as u64).saturating_sub(since)
        };
        let _ = writeln!(
            out,
            "# HELP rollcall_unshipped_archives Archives not yet confirmed in the S3 bucket.\n# TYPE rollcall_unshipped_archives gauge\nrollcall_unshipped_archives {}\n# HELP rollcall_oldest_unshipped_archive_age_seconds How long the oldest unshipped archive has waited (0: none).\n# TYPE rollcall_oldest_unshipped_archive_age_seconds gauge\nrollcall_oldest_unshipped_archive_age_seconds {age}",
            self.unshipped_archives.load(Relaxed)
        );
        out.push_str("# HELP rollcall_ack_seconds Time from request to answer.\n");
        out.push_str("# TYPE rollcall_ack_seconds histogram\n");
        let mut cumulative = 0;
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.latency_buckets) {
            cumulative += bucket.load(Relaxed);
            let _ = writeln!(
                out,
                "rollcall_ack_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        let count = self.latency_count.load(Relaxed);
        let _ = writeln!(out, "rollcall_ack_seconds_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "rollcall_ack_seconds_sum {}",
            self.latency_sum_micros.load(Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "rollcall_ack_seconds_count {count}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_buckets_are_cumulative() {
        let metrics = Metrics::default();
        metrics.delivery(Outcome::Recorded, Duration::from_micros(300));
        metrics.delivery(Outcome::Recorded, Duration::from_millis(3));
        metrics.delivery(Outcome::Recorded, Duration::from_secs(9));
        let text = metrics.render();
        for line in [
            "rollcall_ack_seconds_bucket{le=\"0.0005\"} 1",
            "rollcall_ack_seconds_bucket{le=\"0.005\"} 2",
            "rollcall_ack_seconds_bucket{le=\"2.5\"} 2",
            "rollcall_ack_seconds_bucket{le=\"+Inf\"} 3",
            "rollcall_deliveries_total{outcome=\"recorded\"} 3",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }
}
