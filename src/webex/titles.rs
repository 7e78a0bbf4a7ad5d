//! Room titles for records on targets that serve several rooms: when to
//! look one up, the cache, and the bound on how long a delivery waits.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use tokio::time::Instant;

use super::client::{Client, Webhook};
use super::registration::{room_filter, rooms_by_target};
use crate::metrics::Metrics;
use crate::webhook::payload::Target;

/// How long a delivery waits for a title before it is written without.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(2);
/// How long a title is trusted: rooms get renamed.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60 * 60);
/// After a failed lookup, the room is not asked about again for this
/// long (or for as long as a 429 asked): a down API is not hammered.
const FAILURE_BACKOFF: Duration = Duration::from_secs(30);
/// Past this many cached rooms, expired entries are dropped.
const CACHE_SWEEP_AT: usize = 10_000;

/// How titles are looked up.
#[derive(Debug, Clone, Copy)]
pub struct TitleSettings {
    /// The longest a delivery waits for a title.
    pub wait: Duration,
    /// How long a looked-up title is reused.
    pub ttl: Duration,
}

impl Default for TitleSettings {
    fn default() -> Self {
        Self {
            wait: DEFAULT_WAIT,
            ttl: DEFAULT_TTL,
        }
    }
}

/// Looks up room titles for targets that serve several rooms.
///
/// A record gets a `room_title` only when its target serves several
/// rooms, which is the case when either
/// - the token's webhook list (read at start and on every recheck) has,
///   pointing at `/hooks/{target}`, a memberships webhook without a
///   `roomId` filter, or webhooks for two or more different rooms; or
/// - a delivery on the target came from a webhook without a `roomId`
///   filter, or deliveries on it have shown two or more rooms (learned
///   for the life of the process).
///
/// A target serving one room never costs an API call. Titles are cached
/// for [`TitleSettings::ttl`]; concurrent deliveries for one room share a
/// single `GET /rooms/{id}`; a delivery waits at most
/// [`TitleSettings::wait`] and is then written without a title while the
/// lookup carries on to fill the cache. A failed lookup is counted in
/// `rollcall_room_lookup_failures_total` and never fails a delivery.
/// Without a token ([`TitleLookups::disabled`]) nothing is looked up.
#[derive(Debug, Clone, Default)]
pub struct TitleLookups {
    inner: Option<Arc<Inner>>,
}

#[derive(Debug)]
struct Inner {
    client: Client,
    metrics: Arc<Metrics>,
    settings: TitleSettings,
    state: Mutex<State>,
}

type Lookup = Shared<BoxFuture<'static, Option<String>>>;

#[derive(Default)]
struct State {
    /// Targets the latest webhook list shows serving several rooms.
    listed: HashSet<Target>,
    /// What deliveries have shown, per target.
    seen: HashMap<Target, Seen>,
    cache: HashMap<String, Cached>,
    in_flight: HashMap<String, Lookup>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("listed", &self.listed)
            .field("cached", &self.cache.len())
            .field("in_flight", &self.in_flight.len())
            .finish()
    }
}

enum Seen {
    One(String),
    Several,
}

struct Cached {
    title: Option<String>,
    until: Instant,
}

impl TitleLookups {
    /// No token: no titles, no calls.
    pub fn disabled() -> Self {
        Self::default()
    }

    pub fn new(client: Client, metrics: Arc<Metrics>, settings: TitleSettings) -> Self {
        Self {
            inner: Some(Arc::new(Inner {
                client,
                metrics,
                settings,
                state: Mutex::new(State::default()),
            })),
        }
    }

    /// The title to record for `room_id` delivered on `target` by a webhook
    /// with `webhook_filter`, or `None`. Never waits longer than the bound.
    /// `worth_a_lookup` is asked only when a title is wanted and not
    /// cached: a delivery that will not be written (a retry, a failing
    /// writer) says no, and costs no API call.
    pub async fn title_for(
        &self,
        target: &Target,
        webhook_filter: Option<&str>,
        room_id: &str,
        worth_a_lookup: impl FnOnce() -> bool,
    ) -> Option<String> {
        let inner = self.inner.as_ref()?;
        let lookup = {
            let mut state = inner.lock();
            if !state.serves_several(target, webhook_filter, room_id) {
                return None;
            }
            if let Some(cached) = state.cache.get(room_id)
                && cached.until > Instant::now()
            {
                return cached.title.clone();
            }
            match state.in_flight.get(room_id) {
                Some(lookup) => lookup.clone(),
                None if !worth_a_lookup() => return None,
                None => {
                    let lookup = spawn_lookup(inner.clone(), room_id.to_string());
                    state.in_flight.insert(room_id.to_string(), lookup.clone());
                    lookup
                }
            }
        };
        match tokio::time::timeout(inner.settings.wait, lookup).await {
            Ok(title) => title,
            Err(_) => {
                tracing::debug!(
                    room = room_id,
                    "room title lookup is slow; recording without a title"
                );
                None
            }
        }
    }

    /// Learns from the token's webhook list which targets serve several
    /// rooms. Replaces what the previous list said; what deliveries showed
    /// stays.
    pub fn learn_from_webhooks(&self, webhooks: &[Webhook], public_url: Option<&str>) {
        let Some(inner) = &self.inner else { return };
        let listed: HashSet<Target> = rooms_by_target(webhooks, public_url)
            .into_iter()
            .filter(|(_, rooms)| rooms.len() >= 2 || rooms.contains(&None))
            .map(|(target, _)| target)
            .collect();
        let mut state = inner.lock();
        if state.listed != listed {
            let mut names: Vec<&str> = listed.iter().map(Target::as_str).collect();
            names.sort_unstable();
            tracing::info!(
                targets = %names.join(","),
                "targets serving several rooms per the webhook list: their records get room titles"
            );
            state.listed = listed;
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent between statements, so a panic
        // elsewhere while holding the lock leaves nothing half-done.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    /// Records what this delivery shows about `target`, then answers
    /// whether the target serves several rooms.
    fn serves_several(&mut self, target: &Target, filter: Option<&str>, room_id: &str) -> bool {
        let unfiltered = room_filter(filter).is_none();
        // Every delivery passes here: allocate only for a target's first.
        let several = match self.seen.get_mut(target) {
            Some(Seen::Several) => true,
            Some(seen @ Seen::One(_)) => {
                let several = unfiltered || !matches!(seen, Seen::One(first) if first == room_id);
                if several {
                    *seen = Seen::Several;
                }
                several
            }
            None => {
                let seen = if unfiltered {
                    Seen::Several
                } else {
                    Seen::One(room_id.to_string())
                };
                self.seen.insert(target.clone(), seen);
                unfiltered
            }
        };
        several || self.listed.contains(target)
    }

    fn remember(&mut self, room_id: String, title: Option<String>, until: Instant) {
        if self.cache.len() >= CACHE_SWEEP_AT {
            let now = Instant::now();
            self.cache.retain(|_, cached| cached.until > now);
        }
        self.cache.insert(room_id.clone(), Cached { title, until });
        self.in_flight.remove(&room_id);
    }
}

/// Starts the one lookup of `room_id`; it runs to the end even when every
/// delivery waiting on it has given up, so the cache still fills.
fn spawn_lookup(inner: Arc<Inner>, room_id: String) -> Lookup {
    let task = tokio::spawn(async move {
        let started = Instant::now();
        inner.metrics.room_lookups.fetch_add(1, Relaxed);
        let result = inner.client.room(&room_id).await;
        let (title, keep_for) = match result {
            Ok(room) => {
                if started.elapsed() > inner.settings.wait {
                    // The deliveries that waited went without it.
                    inner.metrics.room_lookup_failures.fetch_add(1, Relaxed);
                }
                (room.title, inner.settings.ttl)
            }
            Err(error) => {
                inner.metrics.room_lookup_failures.fetch_add(1, Relaxed);
                let backoff = error.retry_after().unwrap_or(FAILURE_BACKOFF);
                tracing::warn!(
                    room = %room_id,
                    error = %format!("{:#}", anyhow::Error::new(error)),
                    retry_in_secs = backoff.as_secs(),
                    "room title lookup failed; recording without a title"
                );
                (None, backoff)
            }
        };
        inner
            .lock()
            .remember(room_id, title.clone(), Instant::now() + keep_for);
        title
    });
    task.map(|joined| joined.ok().flatten()).boxed().shared()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn team() -> Target {
        "team".parse().unwrap()
    }

    #[test]
    fn one_room_on_a_target_is_not_several_until_a_second_shows_up() {
        let mut state = State::default();
        assert!(!state.serves_several(&team(), Some("roomId=R1"), "R1"));
        assert!(!state.serves_several(&team(), Some("roomId=R1"), "R1"));
        assert!(state.serves_several(&team(), Some("roomId=R2"), "R2"));
        assert!(state.serves_several(&team(), Some("roomId=R1"), "R1"));
    }

    #[test]
    fn an_unfiltered_delivery_means_several_rooms() {
        let mut state = State::default();
        assert!(state.serves_several(&team(), None, "R1"));
        assert!(state.serves_several(&team(), Some("personEmail=a@b.c"), "R1"));
    }
}
