//! The Webex REST API client: webhooks and rooms, with a bearer token that
//! never leaves [`Secret`], request timeouts, `Link: rel="next"` paging and
//! bounded 429 `Retry-After` handling.

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderMap, LINK, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::secret::Secret;

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
/// Page size asked for when listing.
const PAGE_SIZE: u32 = 100;

/// What went wrong talking to Webex. None of the variants carries the token.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
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

/// A webhook registration as Webex lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    pub id: String,
    #[serde(default)]
    pub name: String,
    pub target_url: String,
    pub resource: String,
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    #[serde(default, skip_serializing)]
    pub secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

impl Webhook {
    /// Webex disables a webhook after too many failed deliveries; a
    /// missing status means active.
    pub fn is_active(&self) -> bool {
        self.status.as_deref().is_none_or(|s| s == "active")
    }
}

/// The body of `POST /webhooks`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewWebhook<'a> {
    pub name: &'a str,
    pub target_url: &'a str,
    pub resource: &'a str,
    pub event: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<&'a str>,
    pub secret: &'a str,
}

/// The body of `PUT /webhooks/{id}`: resource, event and filter cannot
/// change.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookUpdate<'a> {
    pub name: &'a str,
    pub target_url: &'a str,
    pub secret: &'a str,
    pub status: &'a str,
}

/// The part of `GET /rooms/{id}` rollcall uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Room {
    pub title: Option<String>,
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

/// A Webex API client. Cheap to clone; clones share connections.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Secret,
}

impl Client {
    /// A client for `base` (e.g. [`DEFAULT_API_URL`]) that authenticates
    /// with `token`.
    pub fn new(base: &str, token: Secret) -> Result<Self, ApiError> {
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
            base: base.trim_end_matches('/').to_string(),
            token,
        })
    }

    /// Every webhook of the token, across all pages.
    pub async fn list_webhooks(&self) -> Result<Vec<Webhook>, ApiError> {
        let mut url = format!("{}/webhooks?max={PAGE_SIZE}", self.base);
        let mut all = Vec::new();
        loop {
            let response = self.send(Method::GET, &url, None).await?;
            let next = next_link(response.headers());
            let page: Items<Webhook> = decode(response, "/webhooks").await?;
            all.extend(page.items);
            match next {
                Some(next) => url = next,
                None => return Ok(all),
            }
        }
    }

    /// `POST /webhooks`.
    pub async fn create_webhook(&self, request: &NewWebhook<'_>) -> Result<Webhook, ApiError> {
        let body = serde_json::to_value(request).expect("a webhook request serialises");
        let url = format!("{}/webhooks", self.base);
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
        let url = format!("{}/webhooks/{id}", self.base);
        decode(
            self.send(Method::PUT, &url, Some(&body)).await?,
            "/webhooks/{id}",
        )
        .await
    }

    /// `GET /rooms/{id}`.
    pub async fn room(&self, id: &str) -> Result<Room, ApiError> {
        let url = format!("{}/rooms/{id}", self.base);
        decode(self.send(Method::GET, &url, None).await?, "/rooms/{id}").await
    }

    /// Sends one request, waiting out up to `MAX_ATTEMPTS - 1` 429s.
    async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<reqwest::Response, ApiError> {
        let mut attempt = 1;
        loop {
            let mut request = self
                .http
                .request(method.clone(), url)
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

async fn decode<T: DeserializeOwned>(
    response: reqwest::Response,
    path: &str,
) -> Result<T, ApiError> {
    response.json().await.map_err(|source| ApiError::Decode {
        path: path.to_string(),
        source: source.without_url(),
    })
}

/// The URL without its query, for messages: cursors are noise.
fn path_of(url: &str) -> String {
    url.split('?').next().unwrap_or(url).to_string()
}

/// `Retry-After` in seconds (Webex never sends the HTTP-date form).
fn retry_after(headers: &HeaderMap) -> Duration {
    headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(DEFAULT_RETRY_AFTER, Duration::from_secs)
}

/// The `rel="next"` target of an RFC 5988 `Link` header, if any.
fn next_link(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|link| {
            let (target, params) = link.trim().split_once(';')?;
            let is_next = params.split(';').any(|p| {
                let p = p.trim().replace(' ', "");
                p == "rel=\"next\"" || p == "rel=next"
            });
            let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
            is_next.then(|| target.to_string())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(LINK, value.parse().unwrap());
        headers
    }

    #[test]
    fn the_next_link_is_found_among_others() {
        let headers = link(
            r#"<https://x/v1/webhooks?max=2&cursor=a>; rel="prev", <https://x/v1/webhooks?max=2&cursor=b>; rel="next""#,
        );
        assert_eq!(
            next_link(&headers).as_deref(),
            Some("https://x/v1/webhooks?max=2&cursor=b")
        );
        assert_eq!(next_link(&link(r#"<https://x/a>; rel="first""#)), None);
        assert_eq!(next_link(&HeaderMap::new()), None);
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
