//! This server's webhook registrations in Webex: making sure they exist
//! and are active (`subscribe`, and `serve` at start and on each recheck),
//! and reading which of our targets a webhook list points at.

use std::collections::{HashMap, HashSet};

use super::client::{ApiError, Client, NewWebhook, Webhook, WebhookUpdate};
use crate::secret::Secret;
use crate::webhook::payload::Target;

/// The memberships events rollcall logs, each needing its own webhook:
/// joins, leaves, and updates (moderator granted or revoked).
const EVENTS: [&str; 3] = ["created", "deleted", "updated"];
const RESOURCE: &str = "memberships";

/// What should be registered: `PUBLIC_URL/hooks/TARGET`, one set of
/// webhooks per room, or one unfiltered set when `rooms` is empty.
#[derive(Debug, Clone)]
pub struct Registration {
    pub public_url: String,
    pub target: Target,
    pub rooms: Vec<String>,
}

impl Registration {
    /// The URL Webex is to call.
    pub fn target_url(&self) -> String {
        hook_url(&self.public_url, &self.target)
    }

    /// Every webhook this registration needs.
    pub fn wanted(&self) -> Vec<Wanted> {
        let filters: Vec<Option<String>> = if self.rooms.is_empty() {
            vec![None]
        } else {
            self.rooms
                .iter()
                .map(|r| Some(format!("roomId={r}")))
                .collect()
        };
        let target_url = self.target_url();
        filters
            .iter()
            .flat_map(|filter| {
                EVENTS.iter().map(|event| Wanted {
                    name: match filter {
                        Some(filter) => format!("rollcall {} {event} {filter}", self.target),
                        None => format!("rollcall {} {event}", self.target),
                    },
                    target_url: target_url.clone(),
                    event,
                    filter: filter.clone(),
                })
            })
            .collect()
    }
}

/// One webhook a [`Registration`] needs.
#[derive(Debug, Clone)]
pub struct Wanted {
    pub name: String,
    pub target_url: String,
    pub event: &'static str,
    pub filter: Option<String>,
}

/// Where a [`Wanted`] webhook stands in a webhook list: each variant but
/// `Missing` holds the index of the one that matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Missing,
    /// Disabled (by Webex, after failed deliveries): nothing is delivered.
    Inactive(usize),
    /// Active, but registered with another secret: its deliveries would be
    /// refused.
    OtherSecret(usize),
    Ready(usize),
}

impl Wanted {
    /// `memberships/created (every room)`, `memberships/deleted roomId=R1`.
    pub fn label(&self) -> String {
        format!(
            "{RESOURCE}/{} {}",
            self.event,
            self.filter.as_deref().unwrap_or("(every room)")
        )
    }

    /// Where this webhook stands in `webhooks`, for a server whose secret
    /// is `secret` (see [`standing_of`]).
    pub fn standing(&self, webhooks: &[Webhook], secret: &Secret) -> Standing {
        match webhooks.iter().position(|w| self.matches(w)) {
            Some(at) => standing_of(&webhooks[at], at, secret),
            None => Standing::Missing,
        }
    }

    fn matches(&self, webhook: &Webhook) -> bool {
        webhook.resource == RESOURCE
            && webhook.event == self.event
            && same_url(&webhook.target_url, &self.target_url)
            && webhook.filter.as_deref().filter(|f| !f.is_empty()) == self.filter.as_deref()
    }

    fn request<'a>(&'a self, secret: &'a Secret) -> NewWebhook<'a> {
        NewWebhook {
            name: &self.name,
            target_url: &self.target_url,
            resource: RESOURCE,
            event: self.event,
            filter: self.filter.as_deref(),
            secret: secret.expose(),
        }
    }
}

/// How `webhook`, at `at` in its list, stands for a server whose secret is
/// `secret`. A webhook whose secret the list does not show counts as ours.
pub fn standing_of(webhook: &Webhook, at: usize, secret: &Secret) -> Standing {
    if !webhook.is_active() {
        Standing::Inactive(at)
    } else if webhook
        .secret
        .as_deref()
        .is_some_and(|s| s != secret.expose())
    {
        Standing::OtherSecret(at)
    } else {
        Standing::Ready(at)
    }
}

/// What [`ensure`] did to each webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Created,
    Kept,
    Reactivated,
    /// Active, but registered with another secret: its deliveries would be
    /// refused, so the secret was replaced.
    SecretUpdated,
}

impl Action {
    pub fn label(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Kept => "kept",
            Action::Reactivated => "re-activated",
            Action::SecretUpdated => "secret updated",
        }
    }
}

/// The outcome of [`ensure`]: one entry per needed webhook, and the
/// token's whole webhook list as it stands afterwards.
#[derive(Debug)]
pub struct Ensured {
    pub actions: Vec<(Action, Webhook)>,
    pub webhooks: Vec<Webhook>,
}

/// Makes sure every webhook `registration` needs exists, is active and
/// carries `secret`. Identical webhooks are kept, inactive ones switched
/// back on with `PUT`, missing ones created; nothing is duplicated.
pub async fn ensure(
    client: &Client,
    registration: &Registration,
    secret: &Secret,
) -> Result<Ensured, ApiError> {
    let mut webhooks = client.list_webhooks().await?;
    let mut actions = Vec::new();
    for wanted in registration.wanted() {
        let (action, at) = match wanted.standing(&webhooks, secret) {
            Standing::Missing => {
                let created = client.create_webhook(&wanted.request(secret)).await?;
                webhooks.push(created.clone());
                actions.push((Action::Created, created));
                continue;
            }
            Standing::Ready(at) => {
                actions.push((Action::Kept, webhooks[at].clone()));
                continue;
            }
            Standing::Inactive(at) => (Action::Reactivated, at),
            Standing::OtherSecret(at) => (Action::SecretUpdated, at),
        };
        let updated = switch_on(client, &webhooks[at], secret).await?;
        webhooks[at] = updated.clone();
        actions.push((action, updated));
    }
    Ok(Ensured { actions, webhooks })
}

/// Re-activates every disabled webhook that points at `public_url`'s
/// targets (including ones `subscribe` made for other targets or rooms
/// than `serve` registers itself), and returns them.
pub async fn reactivate_inactive(
    client: &Client,
    webhooks: &mut [Webhook],
    public_url: &str,
    secret: &Secret,
) -> Result<Vec<Webhook>, ApiError> {
    let mut reactivated = Vec::new();
    for webhook in webhooks.iter_mut() {
        if !webhook.is_active() && target_of(&webhook.target_url, Some(public_url)).is_some() {
            *webhook = switch_on(client, webhook, secret).await?;
            reactivated.push(webhook.clone());
        }
    }
    Ok(reactivated)
}

/// `PUT /webhooks/{id}` with `status: active` and this server's secret.
async fn switch_on(
    client: &Client,
    webhook: &Webhook,
    secret: &Secret,
) -> Result<Webhook, ApiError> {
    if !webhook.is_active() {
        tracing::error!(
            name = %webhook.name,
            id = %webhook.id,
            target_url = %webhook.target_url,
            status = webhook.status.as_deref().unwrap_or(""),
            "Webex had disabled this webhook after failed deliveries (events were lost meanwhile); re-activating it"
        );
    }
    let update = WebhookUpdate {
        name: &webhook.name,
        target_url: &webhook.target_url,
        secret: secret.expose(),
        status: "active",
    };
    client.update_webhook(&webhook.id, &update).await
}

/// Which rooms the webhooks point at each target: the `roomId` filters,
/// or `None` in the set for a webhook that covers every room. Only
/// memberships (or firehose `all`) webhooks count. A targetUrl is matched
/// by its path `/hooks/{target}`, and when `public_url` is known, only if
/// it starts with it.
pub fn rooms_by_target(
    webhooks: &[Webhook],
    public_url: Option<&str>,
) -> HashMap<Target, HashSet<Option<String>>> {
    let mut by_target: HashMap<Target, HashSet<Option<String>>> = HashMap::new();
    for webhook in webhooks {
        if webhook.resource != RESOURCE && webhook.resource != "all" {
            continue;
        }
        if let Some(target) = target_of(&webhook.target_url, public_url) {
            by_target
                .entry(target)
                .or_default()
                .insert(room_filter(webhook.filter.as_deref()).map(str::to_string));
        }
    }
    by_target
}

/// The target a webhook's URL delivers to, if it is one of this server's.
pub fn target_of(target_url: &str, public_url: Option<&str>) -> Option<Target> {
    let url = target_url.split(['?', '#']).next().unwrap_or(target_url);
    if let Some(public) = public_url {
        let prefix = format!("{}/hooks/", public.trim_end_matches('/'));
        let name = url.strip_prefix(&prefix)?;
        return name.trim_end_matches('/').parse().ok();
    }
    let (_, name) = url.trim_end_matches('/').rsplit_once("/hooks/")?;
    name.parse().ok()
}

/// The room a webhook filter limits deliveries to; `None` when the filter
/// has no `roomId` (the webhook covers every room).
pub fn room_filter(filter: Option<&str>) -> Option<&str> {
    filter?
        .split('&')
        .find_map(|part| part.strip_prefix("roomId="))
        .filter(|room| !room.is_empty())
}

fn hook_url(public_url: &str, target: &Target) -> String {
    format!("{}/hooks/{target}", public_url.trim_end_matches('/'))
}

fn same_url(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// A warning for a public URL that is not HTTPS: deliveries, with the
/// people in them, would cross the network in clear.
pub fn cleartext_warning(public_url: &str) -> Option<String> {
    public_url.starts_with("http://").then(|| {
        format!(
            "{public_url} is not HTTPS; webhook deliveries (with the people in them) would cross the network in clear: serve it with --tls-cert and --tls-key, or put a TLS reverse proxy in front (see docs/service.md)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn webhook(url: &str, filter: Option<&str>) -> Webhook {
        Webhook {
            id: "w".into(),
            name: "n".into(),
            target_url: url.into(),
            resource: RESOURCE.into(),
            event: "created".into(),
            filter: filter.map(str::to_string),
            secret: None,
            status: None,
        }
    }

    #[test]
    fn a_room_filter_is_found_among_other_conditions() {
        assert_eq!(room_filter(Some("personEmail=a@b.c&roomId=R1")), Some("R1"));
        assert_eq!(room_filter(Some("personEmail=a@b.c")), None);
        assert_eq!(room_filter(None), None);
    }

    #[test]
    fn targets_are_matched_by_path_or_by_the_public_url() {
        let team: Target = "team".parse().unwrap();
        assert_eq!(
            target_of("https://a.example/hooks/team", None),
            Some(team.clone())
        );
        assert_eq!(
            target_of("https://a.example/hooks/team", Some("https://a.example/")),
            Some(team)
        );
        assert_eq!(
            target_of("https://b.example/hooks/team", Some("https://a.example")),
            None
        );
        assert_eq!(target_of("https://a.example/other", None), None);
    }

    #[test]
    fn rooms_are_gathered_per_target() {
        let hooks = [
            webhook("https://a/hooks/team", Some("roomId=R1")),
            webhook("https://a/hooks/team", Some("roomId=R2")),
            webhook("https://a/hooks/all", None),
        ];
        let rooms = rooms_by_target(&hooks, None);
        assert_eq!(rooms[&"team".parse().unwrap()].len(), 2);
        assert!(rooms[&"all".parse().unwrap()].contains(&None));
    }
}
