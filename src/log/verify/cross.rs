//! The cross-check of several receivers' logs ([`check`]): Webex delivers
//! every event to every receiver's webhooks, so a delivery one receiver
//! recorded while another was up should be in both logs. A `webhook`
//! record of receiver X with no copy at receiver Y within the merge's
//! window, at a time Y was surely receiving ([`Receiving::up_at`]: after
//! its first record, before its last, not in one of its own gaps, a
//! window's margin from each edge), is a [`Finding`]: a webhook of Y's
//! that failed or was disabled, or a record cut out of Y's chain and the
//! chain sealed again after it, which Y's own check cannot see.
//!
//! Each chain is checked on its own first; the cross-check reads only
//! the records of each that check out, through the same merge as every
//! merged read, so it holds only the merge's window and memory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::log::fault::display_path;
use crate::log::merge::{self, Merge, Mergeable, Merged, WINDOW_MS};
use crate::log::reader::{self, ReadError, Stream};
use crate::log::record::{Event, Source};
use crate::log::roster::coverage::Gap;

/// One receiver to check against the others.
pub struct Log<'a> {
    pub name: &'a str,
    pub dir: &'a Path,
    pub receiving: &'a Receiving,
}

/// A delivery one receiver recorded and another, up then, did not.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// The receiver whose record it is.
    pub receiver: String,
    #[serde(serialize_with = "display_path")]
    pub file: PathBuf,
    pub line: u64,
    pub seq: u64,
    pub event: Event,
    pub membership_id: String,
    pub received_at: String,
    /// The receiver that has no copy of it.
    pub lacking: String,
    /// A copy `lacking` made later, outside the window (reconciled, or
    /// backfilled from the events API).
    pub later: Option<Later>,
}

/// A copy made outside the merge's window: its seq and source.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Later {
    pub seq: u64,
    pub source: Source,
}

impl std::fmt::Display for Finding {
    /// `receiver A, FILE line N, seq S: ...`, as a fault is printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "receiver {}, {} line {}, seq {}: the {} of membership {} received at {} has no copy at receiver {}, which was receiving then (nothing within {} minutes)",
            self.receiver,
            self.file.display(),
            self.line,
            self.seq,
            self.event.as_str(),
            self.membership_id,
            self.received_at,
            self.lacking,
            WINDOW_MS / 60_000,
        )?;
        match self.later {
            Some(later) => write!(
                f,
                "; {} recorded it later, at seq {} ({}): its webhook missed the delivery",
                self.lacking,
                later.seq,
                later.source.as_str()
            ),
            None => write!(
                f,
                ": a delivery {} did not get, or a record removed from its chain",
                self.lacking
            ),
        }
    }
}

/// What the cross-check found.
#[derive(Debug, Clone, Default)]
pub struct CrossCheck {
    /// Deliveries (events whose first record is a `webhook` one) at a
    /// time when some other receiver was surely receiving.
    pub compared: u64,
    /// Of those, the ones every receiver receiving then had.
    pub matched: u64,
    /// Per receiver (in the order given), the deliveries it lacks.
    pub missing: Vec<u64>,
    pub findings: Vec<Finding>,
}

/// When a receiver was receiving, from its own records (those that
/// check out): from its first record to its last, except in its coverage
/// gaps. What the cross-check of several receivers compares against.
#[derive(Debug, Clone, Default)]
pub struct Receiving {
    pub first_at: Option<String>,
    pub last_at: Option<String>,
    pub gaps: Vec<Gap>,
    /// The seq of the last record that checks out (0: none).
    pub last_seq: u64,
}

impl Receiving {
    /// Whether the receiver was surely receiving at `at_ms` (ms since the
    /// epoch): at least `margin_ms` after its first record, before its
    /// last and from the edges of each of its gaps.
    pub fn up_at(&self, at_ms: i64, margin_ms: i64) -> bool {
        let ms = |at: &str| merge::millis(at);
        let (Some(first), Some(last)) = (
            self.first_at.as_deref().and_then(ms),
            self.last_at.as_deref().and_then(ms),
        ) else {
            return false;
        };
        let within = |from: i64, to: Option<i64>| {
            at_ms >= from.saturating_sub(margin_ms)
                && to.is_none_or(|to| at_ms <= to.saturating_add(margin_ms))
        };
        at_ms >= first.saturating_add(margin_ms)
            && at_ms <= last.saturating_sub(margin_ms)
            && !self.gaps.iter().any(|gap| {
                // A gap whose edges cannot be read is taken as never ending.
                let from = ms(&gap.from).unwrap_or(i64::MIN);
                within(from, gap.to.as_deref().map(|to| ms(to).unwrap_or(i64::MAX)))
            })
    }
}

/// Checks `logs` against each other; `Err` only when a log cannot be read.
pub fn check(logs: &[Log<'_>]) -> Result<CrossCheck, ReadError> {
    let mut streams = Vec::with_capacity(logs.len());
    for log in logs {
        let days = reader::days(log.dir)?;
        streams.push(Stream::open(days).until(Some(log.receiving.last_seq)));
    }
    let mut found = CrossCheck {
        missing: vec![0; logs.len()],
        ..CrossCheck::default()
    };
    // Findings by the event's first record, for a copy made later.
    let mut by_first: HashMap<(usize, u64), Vec<usize>> = HashMap::new();
    for merged in Merge::new(streams) {
        match merged? {
            Merged::Event {
                record,
                receiver,
                receivers,
            } => {
                if record.identity().is_none() || record.source() != Source::Webhook {
                    continue;
                }
                let Some(at_ms) = merge::millis(record.received_at()) else {
                    continue;
                };
                let up: Vec<usize> = (0..logs.len())
                    .filter(|&other| {
                        other != receiver && logs[other].receiving.up_at(at_ms, WINDOW_MS)
                    })
                    .collect();
                if up.is_empty() {
                    continue;
                }
                found.compared += 1;
                let lacking: Vec<usize> = up
                    .into_iter()
                    .filter(|&other| !receivers.contains(other))
                    .collect();
                if lacking.is_empty() {
                    found.matched += 1;
                    continue;
                }
                let parsed = record.record()?;
                for other in lacking {
                    found.missing[other] += 1;
                    by_first
                        .entry((receiver, record.seq()))
                        .or_default()
                        .push(found.findings.len());
                    found.findings.push(Finding {
                        receiver: logs[receiver].name.to_string(),
                        file: record.path().to_path_buf(),
                        line: record.number(),
                        seq: record.seq(),
                        event: record.event(),
                        membership_id: parsed.membership_id.to_string(),
                        received_at: record.received_at().to_string(),
                        lacking: logs[other].name.to_string(),
                        later: None,
                    });
                }
            }
            Merged::Late {
                copy,
                receiver,
                first,
            } => {
                let findings = by_first.get(&first).into_iter().flatten();
                for &finding in findings {
                    let finding = &mut found.findings[finding];
                    if finding.lacking == logs[receiver].name {
                        finding.later = Some(Later {
                            seq: copy.seq(),
                            source: copy.source(),
                        });
                    }
                }
            }
        }
    }
    Ok(found)
}
