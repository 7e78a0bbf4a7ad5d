//! The checks that talk to Webex: the token and what it may read (rooms,
//! memberships, compliance events), this host's clock against the API's
//! `Date`, the public URL, and each webhook this server needs.

use std::net::IpAddr;
use std::time::Duration;

use reqwest::StatusCode;

use super::{Bounded, Check, Settings, bounded};
use crate::cmd::args::parse_public_url;
use crate::receiver::Name;
use crate::secret::Secret;
use crate::webex::client::{ApiError, Client, Probe, Room, Webhook};
use crate::webex::registration::{self, Registration, Standing};

/// How far this host's clock may be from Webex's before a warning:
/// `received_at` is evidence.
const CLOCK_TOLERANCE: Duration = Duration::from_secs(2);

const SCOPE_ROOMS: &str = "scope rooms";
const SCOPE_MEMBERSHIPS: &str = "scope memberships";
const SCOPE_EVENTS: &str = "scope compliance events";

/// `token`, the three scopes, `clock`, `public url` and the webhooks.
pub async fn checks(
    settings: &Settings,
    receiver: Option<&Name>,
    secret: Option<&Secret>,
) -> Vec<Check> {
    let ((mut checks, client), (url_check, public_url)) = tokio::join!(
        token_checks(settings),
        public_url(settings.public_url.as_deref()),
    );
    checks.push(url_check);
    checks.extend(
        webhooks(
            settings,
            client.as_ref(),
            public_url.as_deref(),
            receiver,
            secret,
        )
        .await,
    );
    checks
}

/// `token`, the scopes and `clock`; the client when the token works.
async fn token_checks(settings: &Settings) -> (Vec<Check>, Option<Client>) {
    let skip_all = |why: &str| {
        [
            "token",
            SCOPE_ROOMS,
            SCOPE_MEMBERSHIPS,
            SCOPE_EVENTS,
            "clock",
        ]
        .map(|check| Check::skipped(check, why))
        .to_vec()
    };
    let Some(token) = settings.token.clone() else {
        return (
            skip_all("WEBEX_TOKEN is not set (serve then sends nothing to Webex)"),
            None,
        );
    };
    let client = match Client::new(&settings.api_url, token) {
        Ok(client) => client,
        Err(e) => {
            let mut checks = skip_all("the token could not be tried");
            checks[0] = Check::fail("token", e.to_string(), "fix WEBEX_API_URL");
            return (checks, None);
        }
    };
    let rooms = match bounded(client.probe_rooms()).await {
        Ok(probe) => probe,
        Err(Bounded::Error(ApiError::Status {
            status: StatusCode::FORBIDDEN,
            ..
        })) => {
            let mut checks = skip_all("the token may not list rooms");
            checks[0] = Check::ok("token", "accepted by Webex");
            checks[1] = Check::fail(
                SCOPE_ROOMS,
                "GET /rooms answered 403: the token lacks spark:rooms_read",
                "use a bot's token, or an integration's with spark:rooms_read and spark:memberships_read",
            );
            return (checks, None);
        }
        Err(e) => {
            let refused = matches!(
                e,
                Bounded::Error(ApiError::Status {
                    status: StatusCode::UNAUTHORIZED,
                    ..
                })
            );
            let mut checks = skip_all("the token did not work");
            checks[0] = if refused {
                Check::fail(
                    "token",
                    format!("Webex refused WEBEX_TOKEN: {e}"),
                    "set WEBEX_TOKEN to a valid, unexpired bot or integration token (a personal access token expires after 12 hours)",
                )
            } else {
                Check::fail(
                    "token",
                    format!("could not be tried: {e}"),
                    "check the network, and WEBEX_API_URL if set",
                )
            };
            return (checks, None);
        }
    };
    let checks = vec![
        Check::ok("token", "accepted by Webex"),
        Check::ok(SCOPE_ROOMS, "can list the account's rooms"),
        memberships(&client, rooms.first.as_ref()).await,
        events(&client, settings.events_api).await,
        clock(&rooms),
    ];
    (checks, Some(client))
}

async fn memberships(client: &Client, room: Option<&Room>) -> Check {
    let Some(room) = room else {
        return Check::warn(
            SCOPE_MEMBERSHIPS,
            "the token's account is in no room, so reading members could not be tried",
            "add the bot (the token's account) to every room to audit",
        );
    };
    match bounded(client.probe_memberships(&room.id)).await {
        Ok(_) => Check::ok(SCOPE_MEMBERSHIPS, "can list a room's members"),
        Err(Bounded::Error(ApiError::Status {
            status: StatusCode::FORBIDDEN,
            ..
        })) => Check::fail(
            SCOPE_MEMBERSHIPS,
            "GET /memberships answered 403: the token lacks spark:memberships_read",
            "use a bot's token, or an integration's with spark:memberships_read",
        ),
        Err(e) => Check::fail(
            SCOPE_MEMBERSHIPS,
            format!("GET /memberships failed: {e}"),
            "try again; if it persists, check the token's scopes",
        ),
    }
}

/// Only `--events-api` needs a compliance officer's token: without it,
/// lacking one is how most receivers run.
async fn events(client: &Client, required: bool) -> Check {
    match bounded(client.probe_membership_events()).await {
        Ok(_) => Check::ok(
            SCOPE_EVENTS,
            "a compliance officer's token: gaps are backfilled exactly from GET /events",
        ),
        Err(Bounded::Error(ApiError::NotComplianceOfficer { .. })) if required => Check::fail(
            SCOPE_EVENTS,
            "GET /events answered 403, and --events-api needs it: the token is not a compliance officer's (spark-compliance:events_read)",
            "use a compliance officer's token, or leave --events-api off and rely on roster reconciliation",
        ),
        Err(Bounded::Error(ApiError::NotComplianceOfficer { .. })) => Check::ok(
            SCOPE_EVENTS,
            "not a compliance officer's token: gaps are recovered by roster reconciliation, not exactly from GET /events",
        ),
        Err(e) => Check::warn(
            SCOPE_EVENTS,
            format!("GET /events failed: {e}"),
            "try again; reconciliation falls back to rosters meanwhile",
        ),
    }
}

/// The API's `Date` has whole seconds: its clock read somewhere in
/// `[date, date + 1 s)` while ours went from `sent` to `received`.
fn clock<T>(probe: &Probe<T>) -> Check {
    let Some(date) = probe.date else {
        return Check::warn(
            "clock",
            "the Webex API sent no readable Date header to compare with",
            "check the clock with chrony or timedatectl",
        );
    };
    let ahead = probe
        .sent
        .duration_since(date + Duration::from_secs(1))
        .unwrap_or_default();
    let behind = date.duration_since(probe.received).unwrap_or_default();
    let fix = "sync it (chrony, or systemd-timesyncd: `timedatectl set-ntp true`): every record's received_at is evidence";
    if ahead > CLOCK_TOLERANCE {
        Check::warn(
            "clock",
            format!("{} s ahead of Webex's", ahead.as_secs()),
            fix,
        )
    } else if behind > CLOCK_TOLERANCE {
        Check::warn(
            "clock",
            format!("{} s behind Webex's", behind.as_secs()),
            fix,
        )
    } else {
        Check::ok(
            "clock",
            format!("within {} s of Webex's", CLOCK_TOLERANCE.as_secs()),
        )
    }
}

/// `public url`, and the URL when it is usable.
async fn public_url(given: Option<&str>) -> (Check, Option<String>) {
    const CHECK: &str = "public url";
    let Some(given) = given else {
        return (
            Check::skipped(
                CHECK,
                "ROLLCALL_PUBLIC_URL is not set: serve does not register its webhooks itself",
            ),
            None,
        );
    };
    let url = match parse_public_url(given) {
        Ok(url) => url,
        Err(e) => {
            return (
                Check::fail(
                    CHECK,
                    format!("{given:?}: {e}"),
                    "set ROLLCALL_PUBLIC_URL to the HTTPS base URL Webex calls",
                ),
                None,
            );
        }
    };
    let parsed = reqwest::Url::parse(&url).expect("checked by parse_public_url");
    let host = parsed.host_str().unwrap_or_default().to_string();
    let port = parsed.port_or_known_default().unwrap_or(443);
    let lookup = bounded(async {
        tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
            .await
            .map(|addresses| addresses.map(|a| a.ip()).collect::<Vec<_>>())
    })
    .await;
    let addresses = match lookup {
        Ok(addresses) if !addresses.is_empty() => addresses,
        failed => {
            let why = match failed {
                Err(e) => format!("does not resolve: {e}"),
                Ok(_) => "resolves to no address".to_string(),
            };
            return (
                Check::fail(
                    CHECK,
                    format!("{host} {why}"),
                    "check the name in ROLLCALL_PUBLIC_URL and its DNS record",
                ),
                Some(url),
            );
        }
    };
    let shown = addresses
        .iter()
        .map(IpAddr::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let check = if let Some(warning) = registration::cleartext_warning(&url) {
        Check::warn(
            CHECK,
            format!("resolves to {shown}, but {warning}"),
            "use an https:// URL",
        )
    } else if addresses.iter().all(|ip| !is_public(ip)) {
        Check::warn(
            CHECK,
            format!(
                "{url} resolves only to {shown}: not an address Webex can reach from the internet"
            ),
            "publish the server under a public name (a TLS reverse proxy, or serve --tls-cert)",
        )
    } else {
        Check::ok(CHECK, format!("{url}: HTTPS, resolves to {shown}"))
    };
    (check, Some(url))
}

fn is_public(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => {
            !(ip.is_private() || ip.is_loopback() || ip.is_link_local() || ip.is_unspecified())
        }
        IpAddr::V6(ip) => {
            !(ip.is_loopback()
                || ip.is_unique_local()
                || ip.is_unicast_link_local()
                || ip.is_unspecified())
        }
    }
}

/// One line for each webhook this receiver needs, then one for each other
/// webhook of its that points at it (other receivers' are theirs to check).
async fn webhooks(
    settings: &Settings,
    client: Option<&Client>,
    public_url: Option<&str>,
    receiver: Option<&Name>,
    secret: Option<&Secret>,
) -> Vec<Check> {
    const CHECK: &str = "webhooks";
    let Some(client) = client else {
        let why = match settings.token {
            None => "WEBEX_TOKEN is not set",
            Some(_) => "the token did not work",
        };
        return vec![Check::skipped(CHECK, why)];
    };
    let Some(public_url) = public_url else {
        return vec![Check::skipped(
            CHECK,
            "no usable ROLLCALL_PUBLIC_URL: which webhooks are this server's is not known",
        )];
    };
    let Some(secret) = secret else {
        return vec![Check::skipped(CHECK, "no webhook secret to compare with")];
    };
    let Some(receiver) = receiver else {
        return vec![Check::skipped(
            CHECK,
            "no receiver name: which webhooks are this receiver's is not known",
        )];
    };
    let listed = match bounded(client.list_webhooks()).await {
        Ok(listed) => listed,
        Err(e) => {
            return vec![Check::fail(
                CHECK,
                format!("could not be listed: {e}"),
                "try again; `rollcall webhooks` lists them too",
            )];
        }
    };
    let registration = Registration {
        receiver: receiver.clone(),
        public_url: public_url.to_string(),
        target: settings.target.clone(),
        rooms: settings.rooms.clone(),
    };
    let mut seen = Vec::new();
    let mut checks = Vec::new();
    for wanted in registration.wanted() {
        let check = format!("webhook {}", wanted.label());
        let standing = wanted.standing(&listed, secret);
        checks.push(match standing {
            Standing::Missing => {
                let elsewhere = listed.iter().find(|w| w.name == wanted.name);
                let found = match elsewhere {
                    Some(other) => format!(
                        "not registered for {}: {:?} points at {} instead",
                        wanted.target_url, other.name, other.target_url
                    ),
                    None => format!("not registered for {}", wanted.target_url),
                };
                Check::fail(
                    check,
                    found,
                    "run `rollcall subscribe` (serve does it at start with ROLLCALL_PUBLIC_URL)",
                )
            }
            Standing::Inactive(at) | Standing::OtherSecret(at) | Standing::Ready(at) => {
                seen.push(at);
                judged(check, &listed[at], standing)
            }
        });
    }
    for (at, webhook) in listed.iter().enumerate() {
        if seen.contains(&at)
            || registration::is_ours(webhook, receiver, Some(public_url)).is_none()
        {
            continue;
        }
        let standing = registration::standing_of(webhook, at, secret);
        checks.push(judged(
            format!("webhook {:?}", webhook.name),
            webhook,
            standing,
        ));
    }
    checks
}

fn judged(check: String, webhook: &Webhook, standing: Standing) -> Check {
    let fix =
        "run `rollcall subscribe` (serve also does it within 10 minutes with ROLLCALL_PUBLIC_URL)";
    match standing {
        Standing::Inactive(_) => Check::fail(
            check,
            format!(
                "{} is {} (Webex disables a webhook after 100 failed deliveries in 5 minutes): nothing is delivered",
                webhook.id,
                webhook.status.as_deref().unwrap_or("inactive")
            ),
            format!("{fix} to re-activate it, and find why deliveries failed"),
        ),
        Standing::OtherSecret(_) => Check::fail(
            check,
            format!(
                "{} is signed with another secret than this server's: its deliveries are refused (401)",
                webhook.id
            ),
            format!("{fix} to give it this server's secret"),
        ),
        Standing::Ready(_) | Standing::Missing => Check::ok(
            check,
            format!(
                "{} active, signed with this server's secret, to {}",
                webhook.id, webhook.target_url
            ),
        ),
    }
}
