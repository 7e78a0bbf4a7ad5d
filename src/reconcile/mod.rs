//! Reconciliation: recovering what the log missed from Webex's own APIs.
//! A run finds the rooms this server watches ([`watched`]), backfills the
//! coverage gap that ended at this start exactly from `GET /events` when
//! the token is a compliance officer's ([`backfill`]; a gap it could not
//! fill is kept, [`pending`], and retried by later runs), then compares each
//! room's `GET /memberships` with the log's roster (who is in the room
//! from the index, or the log: [`in_log`]) and records the differences
//! ([`roster`]). [`run`] drives a run, paces it, counts what it
//! did, and repeats it for `serve`.

mod backfill;
mod in_log;
pub mod pending;
mod roster;
mod run;
mod watched;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use time::OffsetDateTime;

pub use run::{Backfill, Reconciler, Summary};
pub use watched::Scope;

use crate::clock::Clock;
use crate::log::writer::LogWriter;
use crate::metrics::Metrics;
use crate::webex::WebexSettings;
use crate::webex::client::Client;

/// Requests a second a reconcile sends by default: well inside Webex's
/// limits, so a large org is reconciled without leaning on 429s.
pub const DEFAULT_API_RATE: NonZeroU32 = NonZeroU32::new(5).expect("5 is not zero");
/// How often `serve` reconciles by default.
pub const DEFAULT_EVERY: Duration = Duration::from_secs(60 * 60);

/// How `serve` reconciles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Between runs after the one at start; `None`: only at start.
    pub every: Option<Duration>,
    /// At most this many API requests a second.
    pub api_rate: NonZeroU32,
    /// Whether to use `GET /events`.
    pub events_api: EventsApi,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            every: Some(DEFAULT_EVERY),
            api_rate: DEFAULT_API_RATE,
            events_api: EventsApi::Detect,
        }
    }
}

/// Whether a run backfills from `GET /events`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventsApi {
    /// Try it once: a 403 (not a compliance officer's token) is noted and
    /// the run goes on with the roster diff alone.
    Detect,
    /// Asked for (`--events-api`): a 403 is a failure of the run.
    Required,
}

/// What `serve` reconciles with, when it has a token and `settings`:
/// a client of its own, paced, so title lookups never queue behind a
/// reconcile; the rooms of its webhooks; and the gap that ended at
/// `started` (this start).
pub fn for_serve(
    settings: Option<Settings>,
    webex: &WebexSettings,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    writer: &LogWriter,
    started: OffsetDateTime,
) -> anyhow::Result<Option<(Reconciler, Option<Duration>)>> {
    let (Some(settings), Some(token)) = (settings, webex.token.clone()) else {
        return Ok(None);
    };
    let client = Client::new(&webex.api_url, token)
        .context("setting up the Webex API client for reconciliation")?
        .paced(settings.api_rate);
    let scope = Scope {
        public_url: webex.public_url.clone(),
        registered: Some((webex.target.clone(), webex.rooms.clone())),
        only: Vec::new(),
    };
    let reconciler = Reconciler::new(client, clock, metrics, scope, settings.events_api)
        .after_gap(writer, started);
    Ok(Some((reconciler, settings.every)))
}

/// How often `serve` reconciles after its start; `None`: never.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Every(pub Option<Duration>);

/// `--reconcile-every`: `90s`, `30m`, `1h` (a bare number is seconds);
/// `0` or `off` turns the periodic runs off.
pub fn parse_every(text: &str) -> Result<Every, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("off") {
        return Ok(Every(None));
    }
    let unit_at = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(unit_at);
    let bad = || format!("{text:?} is not an interval: give e.g. 90s, 30m or 1h (0 or off: never)");
    let number: u64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "" | "s" => number,
        "m" => number.checked_mul(60).ok_or_else(bad)?,
        "h" => number.checked_mul(3600).ok_or_else(bad)?,
        _ => return Err(bad()),
    };
    Ok(Every((seconds > 0).then(|| Duration::from_secs(seconds))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_read_as_seconds_minutes_or_hours_and_zero_or_off_mean_never() {
        let every = |text| parse_every(text).map(|Every(every)| every);
        assert_eq!(every("90s"), Ok(Some(Duration::from_secs(90))));
        assert_eq!(every("30m"), Ok(Some(Duration::from_secs(1800))));
        assert_eq!(every("1h"), Ok(Some(Duration::from_secs(3600))));
        assert_eq!(every("45"), Ok(Some(Duration::from_secs(45))));
        assert_eq!(every("0"), Ok(None));
        assert_eq!(every("off"), Ok(None));
        for bad in ["", "1d", "h", "-5m", "1.5h"] {
            assert!(parse_every(bad).is_err(), "{bad}");
        }
    }
}
