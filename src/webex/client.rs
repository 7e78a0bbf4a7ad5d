//! The Webex REST API client: webhooks, rooms, memberships and membership
//! events, with a bearer token that never leaves [`Secret`] nor the API's
//! own origin, ids sent as single path segments, request timeouts,
//! `Link: rel="next"` paging ([`link`], [`pages`]: bounded, loops
//! refused), bounded 429 `Retry-After`
//! handling, optional pacing ([`pace`]), one-item probes for `doctor`
//! ([`probe`]) and a count of the calls made.
//! The shapes sent and received are in [`model`].

mod link;
mod model;
mod pace;
mod pages;
mod probe;

pub use model::{EventKind, Membership, MembershipEvent, NewWebhook, Room, Webhook, WebhookUpdate};
pub use pages::{MAX_PAGES, Pages};
pub use probe::Probe;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderMap, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::secret::Secret;
use link::next_link;
use pace::Pacer;

/// Where the real API lives; `WEBEX_API_URL` overrides it.
pub const DEFAULT_API_URL: &str = "https://webexapis.com/v1";
/// How long one request may take, connection included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts per request when Webex answers 429.
const MAX_ATTEMPTS: u32 = 4;
/// A `Retry-After` longer than this is not waited out: the caller hears
/// about it instead of hanging.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// Used when a 429 carries no usable `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);
/// Page size asked for when listing webhooks.
const PAGE_SIZE: u32 = 100;
/// Page size asked for when listing rooms, memberships and events: the
/// most Webex gives, so a large room costs the fewest calls.
const LARGE_PAGE_SIZE: u32 = 1000;

/// What went wrong talking to Webex. None of the variants carries the token.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(
        "the Webex API URL {url:?} is not usable ({reason}): give an http(s) URL such as https://webexapis.com/v1 in WEBEX_API_URL, or leave it unset"
    )]
    BaseUrl { url: String, reason: String },
    #[error("could not reach the Webex API at {url}: check the network, and WEBEX_API_URL if set")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error(
        "the Webex API is rate limiting us (429, Retry-After {}s) after {attempts} attempts: try again later",
        retry_after.as_secs()
    )]
    RateLimited {
        retry_after: Duration,
        attempts: u32,
    },
    #[error("{method} {path} answered {status}: {message}{hint}", hint = status_hint(*status))]
    Status {
        method: Method,
        path: String,
        status: StatusCode,
        message: String,
    },
    #[error(
        "GET {path} answered 403: the token is not a compliance officer's (it lacks spark-compliance:events_read), so membership events cannot be read exactly; use a compliance officer's token for --events-api, or leave it off and rely on roster reconciliation"
    )]
    NotComplianceOfficer { path: String },
    #[error(
        "the Webex API's next page of {path} is on {origin}, not on the API's own {api}: not following it, so the token is not sent there; if the API is reached through a proxy, set WEBEX_API_URL to the address its links name"
    )]
    ForeignNextPage {
        path: String,
        origin: String,
        api: String,
    },
    #[error(
        "the Webex API's next page of {path} is not a URL ({link:?}): is WEBEX_API_URL the Webex API (https://webexapis.com/v1)?"
    )]
    BadNextPage { path: String, link: String },
    #[error(
        "the Webex API's next page of {path} is {link}, a page already followed: stopping rather than loop; the API is not paging as Webex does (is WEBEX_API_URL the Webex API?)"
    )]
    RepeatedNextPage { path: String, link: String },
    #[error(
        "the Webex API's list {path} goes on past {pages} pages: stopping; no Webex list is that long, so the API is not paging as Webex does"
    )]
    TooManyPages { path: String, pages: usize },
    #[error(
        "the Webex API answered {path} with something unexpected: is WEBEX_API_URL the Webex API (https://webexapis.com/v1)?"
    )]
    Decode {
        path: String,
        #[source]
        source: reqwest::Error,
    },
}

impl ApiError {
    /// How long Webex asked us to wait, if this was a 429.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::RateLimited { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }
}

fn status_hint(status: StatusCode) -> &'static str {
    match status {
        StatusCode::UNAUTHORIZED => {
            " (is WEBEX_TOKEN a valid, unexpired bot or integration token?)"
        }
        StatusCode::FORBIDDEN => " (the token lacks the scope for this call)",
        _ => "",
    }
}

#[derive(Deserialize)]
struct Items<T> {
    items: Vec<T>,
}

#[derive(Deserialize)]
struct ErrorBody {
    message: Option<String>,
}

/// `WEBEX_TOKEN`, read from the environment only: a flag would show the
/// token to everyone who can list processes.
pub fn token_from_env() -> Option<Secret> {
    std::env::var("WEBEX_TOKEN")
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .map(Secret::new)
}

/// A Webex API client. Cheap to clone; clones share connections, the
/// pace and the count of calls.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    /// An http(s) URL with a path to append to (checked in [`Client::new`]).
    base: Url,
    token: Secret,
    /// `None`: requests go out as fast as they are made.
    pacer: Option<Arc<Pacer>>,
    calls: Arc<AtomicU64>,
}

impl Client {
    /// A client for `base` (e.g. [`DEFAULT_API_URL`]) that authenticates
    /// with `token`.
    pub fn new(base: &str, token: Secret) -> Result<Self, ApiError> {
        let base = api_base(base)?;
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("rollcall/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|source| ApiError::Transport {
                url: base.to_string(),
                source,
            })?;
        Ok(Self {
            http,
            base,
            token,
            pacer: None,
            calls: Arc::new(AtomicU64::new(0)),
        })
    }

    /// This client (and its clones from now on) sends at most
    /// `per_second` requests a second, 429 retries included: bulk work
    /// such as reconciliation stays well inside Webex's limits instead of
    /// leaning on 429s. Without it, requests are not paced.
    pub fn paced(mut self, per_second: NonZeroU32) -> Self {
        self.pacer = Some(Arc::new(Pacer::new(per_second)));
        self
    }

    /// How many HTTP requests this client and its clones have sent,
    /// 429 retries and every page included: what a summary line reports
    /// as API calls.
    pub fn api_calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Every webhook of the token, across all pages.
    pub async fn list_webhooks(&self) -> Result<Vec<Webhook>, ApiError> {
        self.pages(self.endpoint(&["webhooks"]), PAGE_SIZE, &[], "/webhooks")
            .all()
            .await
    }

    /// `GET /rooms`, all pages: every room the token's account is in.
    pub async fn list_rooms(&self) -> Result<Vec<Room>, ApiError> {
        self.pages(self.endpoint(&["rooms"]), LARGE_PAGE_SIZE, &[], "/rooms")
            .all()
            .await
    }

    /// `GET /memberships?roomId=`, all pages: who is in `room_id` now.
    pub async fn list_memberships(&self, room_id: &str) -> Result<Vec<Membership>, ApiError> {
        self.pages(
            self.endpoint(&["memberships"]),
            LARGE_PAGE_SIZE,
            &[("roomId", room_id)],
            "/memberships",
        )
        .all()
        .await
    }

    /// `GET /events?resource=memberships&from=&to=`, page by page (a
    /// compliance officer sees the whole org's: filter each page): every
    /// membership change Webex kept between `from` and `to`. Only a
    /// compliance officer's token may read them; any other gets
    /// [`ApiError::NotComplianceOfficer`], so the caller can fall back to
    /// reconciliation.
    pub fn membership_events(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Pages<MembershipEvent> {
        let (from, to) = (api_time(from), api_time(to));
        self.pages(
            self.endpoint(&["events"]),
            LARGE_PAGE_SIZE,
            &[("resource", "memberships"), ("from", &from), ("to", &to)],
            "/events",
        )
        .explained(compliance_refusal)
    }

    /// [`Client::membership_events`], every page at once.
    pub async fn list_membership_events(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Vec<MembershipEvent>, ApiError> {
        self.membership_events(from, to).all().await
    }

    /// The pages of `GET url?max=page_size&query...`, following
    /// `rel="next"`.
    fn pages<T: DeserializeOwned>(
        &self,
        mut url: Url,
        page_size: u32,
        query: &[(&str, &str)],
        path: &str,
    ) -> Pages<T> {
        url.query_pairs_mut()
            .append_pair("max", &page_size.to_string())
            .extend_pairs(query);
        Pages::new(self.clone(), url, path)
    }

    /// `POST /webhooks`.
    pub async fn create_webhook(&self, request: &NewWebhook<'_>) -> Result<Webhook, ApiError> {
        let body = serde_json::to_value(request).expect("a webhook request serialises");
        let url = self.endpoint(&["webhooks"]);
        decode(
            self.send(Method::POST, &url, Some(&body)).await?,
            "/webhooks",
        )
        .await
    }

    /// `PUT /webhooks/{id}`: how an inactive webhook is switched back on.
    pub async fn update_webhook(
        &self,
        id: &str,
        request: &WebhookUpdate<'_>,
    ) -> Result<Webhook, ApiError> {
        let body = serde_json::to_value(request).expect("a webhook request serialises");
        let url = self.endpoint(&["webhooks", id]);
        decode(
            self.send(Method::PUT, &url, Some(&body)).await?,
            "/webhooks/{id}",
        )
        .await
    }

    /// `GET /rooms/{id}`.
    pub async fn room(&self, id: &str) -> Result<Room, ApiError> {
        let url = self.endpoint(&["rooms", id]);
        decode(self.send(Method::GET, &url, None).await?, "/rooms/{id}").await
    }

    /// The base URL with `segments` appended, each percent-encoded as one
    /// path segment: an id holding `/`, `?` or `#` stays one id.
    fn endpoint(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("Client::new accepts only a base with a path")
            .pop_if_empty()
            .extend(segments);
        url
    }

    /// Where the `rel="next"` link of the page at `current` leads, if
    /// anywhere. Only the API's own origin (scheme, host and port) is
    /// followed: the token goes with every request, and a response must
    /// not be able to send it elsewhere.
    fn next_page(&self, current: &Url, headers: &HeaderMap) -> Result<Option<Url>, ApiError> {
        let Some(link) = next_link(headers) else {
            return Ok(None);
        };
        let next = current.join(&link).map_err(|_| ApiError::BadNextPage {
            path: path_of(current),
            link: link.clone(),
        })?;
        if next.origin() != self.base.origin() {
            return Err(ApiError::ForeignNextPage {
                path: path_of(current),
                origin: next.origin().ascii_serialization(),
                api: self.base.origin().ascii_serialization(),
            });
        }
        Ok(Some(next))
    }

    /// Sends one request, waiting out up to `MAX_ATTEMPTS - 1` 429s.
    async fn send(
        &self,
        method: Method,
        url: &Url,
        body: Option<&serde_json::Value>,
    ) -> Result<reqwest::Response, ApiError> {
        let mut attempt = 1;
        loop {
            if let Some(pacer) = &self.pacer {
                pacer.wait().await;
            }
            self.calls.fetch_add(1, Ordering::Relaxed);
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .header(AUTHORIZATION, format!("Bearer {}", self.token.expose()));
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request.send().await.map_err(|source| ApiError::Transport {
                url: path_of(url),
                source: source.without_url(),
            })?;
            let status = response.status();
            if status == StatusCode::TOO_MANY_REQUESTS {
                let retry_after = retry_after(response.headers());
                if attempt >= MAX_ATTEMPTS || retry_after > MAX_RETRY_AFTER {
                    return Err(ApiError::RateLimited {
                        retry_after,
                        attempts: attempt,
                    });
                }
                tracing::debug!(
                    path = %path_of(url),
                    wait_secs = retry_after.as_secs(),
                    "Webex API answered 429; waiting as asked"
                );
                tokio::time::sleep(retry_after).await;
                attempt += 1;
                continue;
            }
            if !status.is_success() {
                let message = response
                    .json::<ErrorBody>()
                    .await
                    .ok()
                    .and_then(|b| b.message)
                    .unwrap_or_else(|| "no message".into());
                return Err(ApiError::Status {
                    method,
                    path: path_of(url),
                    status,
                    message,
                });
            }
            return Ok(response);
        }
    }
}

/// A 403 from `/events` means the token is not a compliance officer's.
fn compliance_refusal(error: ApiError) -> ApiError {
    match error {
        ApiError::Status {
            status: StatusCode::FORBIDDEN,
            path,
            ..
        } => ApiError::NotComplianceOfficer { path },
        error => error,
    }
}

async fn decode<T: DeserializeOwned>(
    response: reqwest::Response,
    path: &str,
) -> Result<T, ApiError> {
    response.json().await.map_err(|source| ApiError::Decode {
        path: path.to_string(),
        source: source.without_url(),
    })
}

/// `base` (a `WEBEX_API_URL`) checked to be an http(s) URL whose path
/// endpoints can be appended to.
fn api_base(base: &str) -> Result<Url, ApiError> {
    let refuse = |reason: &str| ApiError::BaseUrl {
        url: base.to_string(),
        reason: reason.to_string(),
    };
    let mut url = Url::parse(base).map_err(|e| refuse(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(refuse("not http or https"));
    }
    if url.cannot_be_a_base() || url.host().is_none() {
        return Err(refuse("no host and path"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(refuse("it has a query or fragment"));
    }
    url.path_segments_mut()
        .map_err(|()| refuse("no path"))?
        .pop_if_empty();
    Ok(url)
}

/// The URL without its query, for messages: cursors are noise.
fn path_of(url: &Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.to_string()
}

/// A time as the API's `from`/`to` parameters take it: RFC 3339 in UTC.
fn api_time(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .expect("a time between years 0 and 9999 formats as RFC 3339")
}

/// `Retry-After` in seconds (Webex never sends the HTTP-date form).
fn retry_after(headers: &HeaderMap) -> Duration {
    headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(DEFAULT_RETRY_AFTER, Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use link::header as link;

    fn client(base: &str) -> Client {
        Client::new(base, Secret::new("tok".into())).unwrap()
    }

    #[test]
    fn ids_go_into_the_path_as_one_encoded_segment_with_or_without_a_trailing_slash() {
        for base in ["https://webexapis.com/v1", "https://webexapis.com/v1/"] {
            assert_eq!(
                client(base).endpoint(&["rooms", "a/b?c#d e%"]).as_str(),
                "https://webexapis.com/v1/rooms/a%2Fb%3Fc%23d%20e%25"
            );
        }
        assert_eq!(
            client("http://127.0.0.1:8080")
                .endpoint(&["webhooks"])
                .as_str(),
            "http://127.0.0.1:8080/webhooks"
        );
    }

    #[test]
    fn an_api_url_that_is_not_an_http_base_is_refused_saying_which() {
        for bad in [
            "webexapis.com/v1",
            "ftp://webexapis.com/v1",
            "mailto:ops@example.com",
            "https://webexapis.com/v1?x=1",
        ] {
            let error = Client::new(bad, Secret::new("tok".into())).unwrap_err();
            assert!(matches!(error, ApiError::BaseUrl { .. }), "{bad}: {error}");
            assert!(error.to_string().contains("WEBEX_API_URL"), "{error}");
        }
    }

    #[test]
    fn a_next_page_is_followed_only_on_the_apis_own_scheme_host_and_port() {
        let client = client("https://webexapis.com/v1");
        let page = client.endpoint(&["webhooks"]);
        let next = |target: &str| client.next_page(&page, &link(&format!("<{target}>; rel=next")));

        assert_eq!(
            next("https://webexapis.com:443/v1/webhooks?cursor=2")
                .unwrap()
                .map(String::from),
            Some("https://webexapis.com/v1/webhooks?cursor=2".into())
        );
        assert_eq!(
            next("/v1/webhooks?cursor=3").unwrap().map(String::from),
            Some("https://webexapis.com/v1/webhooks?cursor=3".into()),
            "a relative link resolves against the page"
        );
        for foreign in [
            "https://attacker.example/v1/webhooks",
            "http://webexapis.com/v1/webhooks",
            "https://webexapis.com:8443/v1/webhooks",
            "//attacker.example/v1/webhooks",
        ] {
            let error = next(foreign).unwrap_err();
            assert!(
                matches!(error, ApiError::ForeignNextPage { .. }),
                "{foreign}: {error}"
            );
        }
        assert!(
            client
                .next_page(&page, &HeaderMap::new())
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_missing_or_unreadable_retry_after_means_one_second() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), Duration::from_secs(1));
        headers.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&headers), Duration::from_secs(7));
    }

    #[test]
    fn the_client_debug_output_hides_the_token() {
        let client = Client::new(DEFAULT_API_URL, Secret::new("tok-123".into())).unwrap();
        assert!(!format!("{client:?}").contains("tok-123"));
    }
}
