//! This receiver's webhook registrations in Webex: making sure they exist
//! and are active (`subscribe`, and `serve` at start and on each recheck),
//! telling this receiver's webhooks from other receivers' ([`is_ours`]),
//! and reading which of our targets a webhook list points at.
//!
//! Several receivers may register webhooks for the same rooms, each its
//! own set (Webex delivers every event to each). A webhook's name says
//! whose it is: `rollcall@NAME TARGET EVENT [FILTER]`. A webhook is this
//! receiver's when it points at this receiver's URL and its name is this
//! receiver's, or names no receiver (made before receivers had names, or
//! by hand): such a one is adopted, renamed for this receiver the first
//! time it is touched, so that no other receiver adopts it too.

use std::collections::{HashMap, HashSet};

use super::client::{ApiError, Client, NewWebhook, Webhook, WebhookUpdate};
use crate::receiver::Name;
use crate::secret::Secret;
use crate::webhook::payload::Target;

/// The memberships events rollcall logs, each needing its own webhook:
/// joins, leaves, and updates (moderator granted or revoked).
const EVENTS: [&str; 3] = ["created", "deleted", "updated"];
const RESOURCE: &str = "memberships";
/// What a webhook's name begins with, `@` and the receiver's name after it.
const NAMED_BY: &str = "rollcall@";
/// How webhook names began before receivers had names.
const OLD_PREFIX: &str = "rollcall ";

/// What should be registered for `receiver`: `PUBLIC_URL/hooks/TARGET`,
/// one set of webhooks per room, or one unfiltered set when `rooms` is
/// empty.
#[derive(Debug, Clone)]
pub struct Registration {
    pub receiver: Name,
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
                    receiver: self.receiver.clone(),
                    name: match filter {
                        Some(filter) => format!(
                            "{NAMED_BY}{} {} {event} {filter}",
                            self.receiver, self.target
                        ),
                        None => format!("{NAMED_BY}{} {} {event}", self.receiver, self.target),
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
    /// The receiver it is for.
    pub receiver: Name,
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

    /// Where this webhook stands in `webhooks`, for a receiver whose
    /// secret is `secret` (see [`standing_of`]). Another receiver's
    /// webhook never stands for it, even at the same URL.
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
            && named_for(&webhook.name, &self.receiver)
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

/// Whether a webhook named `name` may be `receiver`'s: it names
/// `receiver`, or no receiver at all (see the module's doc).
fn named_for(name: &str, receiver: &Name) -> bool {
    receiver_named(name).is_none_or(|named| named == receiver.as_str())
}

/// The receiver a webhook's name names: `NAME` of `rollcall@NAME ...`.
pub fn receiver_named(name: &str) -> Option<&str> {
    name.split_whitespace().next()?.strip_prefix(NAMED_BY)
}

/// `name` as `receiver`'s: unchanged if it names a receiver already,
/// else with `rollcall@NAME` in front (in place of the `rollcall` an old
/// name begins with).
fn claimed_name(name: &str, receiver: &Name) -> String {
    if receiver_named(name).is_some() {
        name.to_string()
    } else if let Some(rest) = name.strip_prefix(OLD_PREFIX) {
        format!("{NAMED_BY}{receiver} {rest}")
    } else if name.is_empty() {
        format!("{NAMED_BY}{receiver}")
    } else {
        format!("{NAMED_BY}{receiver} {name}")
    }
}

/// The target `webhook` delivers to, if it is `receiver`'s: it points at
/// one of this server's targets (under `public_url` when known, see
/// [`target_of`]) and its name is `receiver`'s or names no receiver. The
/// one rule `subscribe`, the recheck, `webhooks` and `doctor` follow.
pub fn is_ours(webhook: &Webhook, receiver: &Name, public_url: Option<&str>) -> Option<Target> {
    target_of(&webhook.target_url, public_url).filter(|_| named_for(&webhook.name, receiver))
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
    /// Active and working, but named for no receiver (made before
    /// receivers had names): renamed for this one, so that no other
    /// receiver takes it for its own.
    Adopted,
}

impl Action {
    pub fn label(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Kept => "kept",
            Action::Reactivated => "re-activated",
            Action::SecretUpdated => "secret updated",
            Action::Adopted => "adopted",
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

/// Makes sure every webhook `registration` needs exists, is active,
/// carries `secret` and the receiver's name. Identical webhooks are kept,
/// inactive ones switched back on with `PUT`, missing ones created;
/// nothing is duplicated, and other receivers' webhooks are left alone.
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
            Standing::Ready(at) if webhooks[at].name == wanted.name => {
                actions.push((Action::Kept, webhooks[at].clone()));
                continue;
            }
            Standing::Ready(at) => (Action::Adopted, at),
            Standing::Inactive(at) => (Action::Reactivated, at),
            Standing::OtherSecret(at) => (Action::SecretUpdated, at),
        };
        let updated = switch_on(client, &webhooks[at], &wanted.name, secret).await?;
        webhooks[at] = updated.clone();
        actions.push((action, updated));
    }
    Ok(Ensured { actions, webhooks })
}

/// Re-activates every disabled webhook of `receiver` that points at
/// `public_url`'s targets (including ones `subscribe` made for other
/// targets or rooms than `serve` registers itself), and returns them.
pub async fn reactivate_inactive(
    client: &Client,
    webhooks: &mut [Webhook],
    receiver: &Name,
    public_url: &str,
    secret: &Secret,
) -> Result<Vec<Webhook>, ApiError> {
    let mut reactivated = Vec::new();
    for webhook in webhooks.iter_mut() {
        if !webhook.is_active() && is_ours(webhook, receiver, Some(public_url)).is_some() {
            let name = claimed_name(&webhook.name, receiver);
            *webhook = switch_on(client, webhook, &name, secret).await?;
            reactivated.push(webhook.clone());
        }
    }
    Ok(reactivated)
}

/// `PUT /webhooks/{id}` with `status: active`, this receiver's secret and
/// `name`.
async fn switch_on(
    client: &Client,
    webhook: &Webhook,
    name: &str,
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
        name,
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
    fn a_webhook_is_ours_by_its_url_and_a_name_that_is_ours_or_names_no_receiver() {
        let a: Name = "site-a".parse().unwrap();
        let named = |name: &str, url: &str| Webhook {
            name: name.into(),
            ..webhook(url, None)
        };
        let ours = "https://a.example/hooks/team";
        let team = Some("team".parse::<Target>().unwrap());
        for name in [
            "rollcall@site-a team created",
            "rollcall team created",
            "Team roster",
            "",
        ] {
            let hook = named(name, ours);
            assert_eq!(
                is_ours(&hook, &a, Some("https://a.example")),
                team,
                "{name}"
            );
        }
        for name in ["rollcall@site-b team created", "rollcall@site-ab team"] {
            let hook = named(name, ours);
            assert_eq!(
                is_ours(&hook, &a, Some("https://a.example")),
                None,
                "{name}"
            );
            assert_eq!(is_ours(&hook, &a, None), None, "{name}");
        }
        let elsewhere = named(
            "rollcall@site-a team created",
            "https://b.example/hooks/team",
        );
        assert_eq!(is_ours(&elsewhere, &a, Some("https://a.example")), None);
    }

    #[test]
    fn an_adopted_webhook_is_renamed_for_its_receiver_keeping_what_its_name_said() {
        let a: Name = "site-a".parse().unwrap();
        assert_eq!(
            claimed_name("rollcall team created roomId=R1", &a),
            "rollcall@site-a team created roomId=R1"
        );
        assert_eq!(
            claimed_name("Team roster", &a),
            "rollcall@site-a Team roster"
        );
        assert_eq!(claimed_name("", &a), "rollcall@site-a");
        assert_eq!(
            claimed_name("rollcall@site-a team created", &a),
            "rollcall@site-a team created"
        );
        let wanted = Registration {
            receiver: a,
            public_url: "https://a.example".into(),
            target: "team".parse().unwrap(),
            rooms: vec!["R1".into()],
        }
        .wanted();
        assert_eq!(wanted[0].name, "rollcall@site-a team created roomId=R1");
        assert_eq!(receiver_named(&wanted[0].name), Some("site-a"));
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
