//! The Webex REST API client: webhooks and rooms, with a bearer token that
//! never leaves [`Secret`] nor the API's own origin, ids sent as single
//! path segments, request timeouts, `Link: rel="next"` paging and bounded
//! 429 `Retry-After` handling.

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderMap, LINK, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
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
    /// An http(s) URL with a path to append to (checked in [`Client::new`]).
    base: Url,
    token: Secret,
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
        Ok(Self { http, base, token })
    }

    /// Every webhook of the token, across all pages.
    pub async fn list_webhooks(&self) -> Result<Vec<Webhook>, ApiError> {
        let mut url = self.endpoint(&["webhooks"]);
        url.query_pairs_mut()
            .append_pair("max", &PAGE_SIZE.to_string());
        let mut all = Vec::new();
        loop {
            let response = self.send(Method::GET, &url, None).await?;
            let next = self.next_page(&url, response.headers())?;
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

/// `Retry-After` in seconds (Webex never sends the HTTP-date form).
fn retry_after(headers: &HeaderMap) -> Duration {
    headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(DEFAULT_RETRY_AFTER, Duration::from_secs)
}

/// The `rel="next"` target of the `Link` headers, if any, as written
/// (maybe relative to the page's URL).
fn next_link(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(links)
        .find(|link| {
            link.params.iter().any(|(name, value)| {
                name.eq_ignore_ascii_case("rel")
                    && value
                        .split_ascii_whitespace()
                        .any(|rel| rel.eq_ignore_ascii_case("next"))
            })
        })
        .map(|link| link.target.to_string())
}

/// One entry of a `Link` header: `<target>; name=value; ...`.
#[derive(Debug, PartialEq)]
struct Link<'a> {
    target: &'a str,
    /// Names as written, values unquoted.
    params: Vec<(&'a str, String)>,
}

/// The entries of one `Link` header value (RFC 8288, section 3). A comma
/// separates entries only outside `<...>` and quoted strings, since a
/// target's query (a paging cursor) may hold one. An entry that does not
/// start with `<` is skipped up to the next comma. No crate in the tree
/// parses `Link`, and this is all of the grammar the API uses.
fn links(value: &str) -> Vec<Link<'_>> {
    let mut found = Vec::new();
    let mut rest = value;
    loop {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_ascii_whitespace());
        if rest.is_empty() {
            return found;
        }
        let Some((target, after)) = rest
            .strip_prefix('<')
            .and_then(|inner| inner.split_once('>'))
        else {
            match rest.find(',') {
                Some(comma) => {
                    rest = &rest[comma..];
                    continue;
                }
                None => return found,
            }
        };
        rest = after;
        let mut params = Vec::new();
        while let Some(after) = rest.trim_start().strip_prefix(';') {
            let (param, after) = link_param(after);
            params.extend(param);
            rest = after;
        }
        found.push(Link { target, params });
    }
}

/// One `name[=value]` after a `;`, and what follows it. The value is a
/// token or a quoted string, whose `\` escapes are undone.
fn link_param(text: &str) -> (Option<(&str, String)>, &str) {
    let end = text.find([';', ',', '=']).unwrap_or(text.len());
    let name = text[..end].trim();
    let rest = &text[end..];
    let Some(value) = rest.strip_prefix('=').map(str::trim_start) else {
        return ((!name.is_empty()).then(|| (name, String::new())), rest);
    };
    if let Some(quoted) = value.strip_prefix('"') {
        let mut unquoted = String::new();
        let mut chars = quoted.char_indices();
        while let Some((at, c)) = chars.next() {
            match c {
                '"' => return (Some((name, unquoted)), &quoted[at + 1..]),
                '\\' => unquoted.extend(chars.next().map(|(_, c)| c)),
                c => unquoted.push(c),
            }
        }
        return (Some((name, unquoted)), "");
    }
    let end = value
        .find(|c: char| c == ';' || c == ',' || c.is_ascii_whitespace())
        .unwrap_or(value.len());
    (Some((name, value[..end].to_string())), &value[end..])
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
    fn a_comma_inside_a_link_target_or_quoted_parameter_does_not_split_the_entry() {
        let headers = link(
            r#"<https://x/v1/webhooks?cursor=a,b>; title="one, two"; rel="next", <https://x/v1/webhooks?cursor=c,d>; rel=prev"#,
        );
        assert_eq!(
            next_link(&headers).as_deref(),
            Some("https://x/v1/webhooks?cursor=a,b")
        );
        assert_eq!(
            links(r#"<a,b>; title="one, \"two\""; rel="next", <c>; rel=prev"#),
            [
                Link {
                    target: "a,b",
                    params: vec![("title", r#"one, "two""#.into()), ("rel", "next".into())],
                },
                Link {
                    target: "c",
                    params: vec![("rel", "prev".into())],
                },
            ]
        );
    }

    #[test]
    fn next_is_found_among_several_relations_in_any_case_and_after_a_malformed_entry() {
        assert_eq!(
            next_link(&link(r#"<https://x/a>; rel="last NEXT""#)).as_deref(),
            Some("https://x/a")
        );
        assert_eq!(
            next_link(&link(r#"garbage; rel="next", <https://x/b>; REL=next"#)).as_deref(),
            Some("https://x/b")
        );
        assert_eq!(next_link(&link(r#"<https://x/c; rel="next""#)), None);
        assert_eq!(next_link(&link(r#"<https://x/d>; rel="nextpage""#)), None);
    }

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
