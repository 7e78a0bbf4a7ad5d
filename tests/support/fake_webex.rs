//! A fake Webex API for the tests: a real HTTP server on 127.0.0.1:0, on
//! its own thread, so sync tests (running the binary) and async tests
//! (the in-process server) use it alike, through `WEBEX_API_URL`. It keeps
//! webhooks (paged with `Link: rel="next"`), rooms with titles, a log of
//! every request, and switches for 429s, slow answers, errors, and the
//! shapes of `Link` a hostile or unusual API might send.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::{Notify, oneshot};
use warp::Filter;
use warp::http::{Response, StatusCode};
use warp::path::FullPath;

/// The only token the fake accepts.
pub const TOKEN: &str = "fake-webex-token-7c2e91";

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Without the `/v1` prefix, e.g. `/rooms/R1`, as sent: ids still
    /// percent-encoded.
    pub path: String,
    pub query: String,
    pub authorized: bool,
    pub body: Option<Value>,
}

impl Request {
    pub fn is(&self, method: &str, path_prefix: &str) -> bool {
        self.method == method && self.path.starts_with(path_prefix)
    }
}

#[derive(Default)]
struct State {
    base: String,
    webhooks: Vec<Value>,
    rooms: HashMap<String, String>,
    log: Vec<Request>,
    page_size: usize,
    next_id: u32,
    /// How many more requests get a 429.
    rate_limited: u32,
    retry_after_secs: u64,
    delay: Duration,
    failing: bool,
    /// Where `Link: rel="next"` points instead of `base`.
    next_base: Option<String>,
    comma_cursors: bool,
}

struct Shared {
    state: Mutex<State>,
    requested: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub struct FakeWebex {
    /// The API base URL, `http://127.0.0.1:PORT/v1`: give it as
    /// `WEBEX_API_URL`.
    pub url: String,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeWebex {
    pub fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding the fake API");
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                base: url.clone(),
                page_size: 100,
                ..State::default()
            }),
            requested: Notify::new(),
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let routes = routes(shared.clone());
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let listener = {
                let _entered = runtime.enter();
                tokio::net::TcpListener::from_std(listener).unwrap()
            };
            runtime.spawn(warp::serve(routes).incoming(listener).run());
            // Dropping the runtime ends every answer still held by a delay.
            runtime.block_on(async {
                let _ = stopped.await;
            });
        });
        Self {
            url,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// A room `GET /rooms/{id}` knows.
    pub fn add_room(&self, id: &str, title: &str) {
        self.shared.lock().rooms.insert(id.into(), title.into());
    }

    /// Adds a webhook as if it had been registered earlier; returns its id
    /// (the one `webhook` names, else a new one). `webhook` holds at least
    /// `targetUrl`, `resource` and `event`.
    pub fn add_webhook(&self, mut webhook: Value) -> String {
        let mut state = self.shared.lock();
        state.next_id += 1;
        let id = match webhook["id"].as_str() {
            Some(id) => id.to_string(),
            None => format!("wh-{}", state.next_id),
        };
        let object = webhook.as_object_mut().expect("a webhook is an object");
        object.insert("id".into(), json!(id));
        object
            .entry("name")
            .or_insert(json!(format!("webhook {id}")));
        object.entry("status").or_insert(json!("active"));
        state.webhooks.push(webhook);
        id
    }

    pub fn webhooks(&self) -> Vec<Value> {
        self.shared.lock().webhooks.clone()
    }

    /// How many webhooks a page of `GET /webhooks` holds at most.
    pub fn set_page_size(&self, size: usize) {
        self.shared.lock().page_size = size;
    }

    /// Next-page links point at `base` (e.g. another fake's `url`) instead
    /// of this API.
    pub fn set_next_base(&self, base: &str) {
        self.shared.lock().next_base = Some(base.into());
    }

    /// Cursors in next-page links hold a comma, as `cursor=page,2`.
    pub fn set_comma_cursors(&self, on: bool) {
        self.shared.lock().comma_cursors = on;
    }

    /// The next `times` requests get 429 with `Retry-After: retry_after_secs`.
    pub fn rate_limit(&self, times: u32, retry_after_secs: u64) {
        let mut state = self.shared.lock();
        state.rate_limited = times;
        state.retry_after_secs = retry_after_secs;
    }

    /// Every answer waits this long first.
    pub fn set_delay(&self, delay: Duration) {
        self.shared.lock().delay = delay;
    }

    /// While on, every request gets a 500.
    pub fn set_failing(&self, failing: bool) {
        self.shared.lock().failing = failing;
    }

    /// What Webex does to a webhook after 100 failed deliveries.
    pub fn set_status(&self, id: &str, status: &str) {
        let mut state = self.shared.lock();
        let webhook = state
            .webhooks
            .iter_mut()
            .find(|w| w["id"] == id)
            .expect("a known webhook");
        webhook["status"] = json!(status);
    }

    /// Every request answered so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.lock().log.clone()
    }

    /// How many requests so far match `method` and start with `path_prefix`.
    pub fn count(&self, method: &str, path_prefix: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.is(method, path_prefix))
            .count()
    }

    /// Waits until the request log satisfies `done`; panics after 10 s.
    pub async fn wait_for(&self, what: &str, done: impl Fn(&[Request]) -> bool) {
        let wait = async {
            loop {
                let requested = self.shared.requested.notified();
                if done(&self.shared.lock().log) {
                    return;
                }
                requested.await;
            }
        };
        if tokio::time::timeout(Duration::from_secs(10), wait)
            .await
            .is_err()
        {
            panic!(
                "the fake Webex API never saw {what}; it saw {:#?}",
                self.requests()
            );
        }
    }
}

impl Drop for FakeWebex {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn routes(
    shared: Arc<Shared>,
) -> impl Filter<Extract = (Response<String>,), Error = warp::Rejection> + Clone {
    let query = warp::query::raw().or(warp::any().map(String::new)).unify();
    warp::method()
        .and(warp::path::full())
        .and(query)
        .and(warp::header::optional::<String>("authorization"))
        .and(warp::body::bytes())
        .then(
            move |method: warp::http::Method,
                  path: FullPath,
                  query: String,
                  auth: Option<String>,
                  body: Bytes| {
                let shared = shared.clone();
                async move {
                    let request = Request {
                        method: method.to_string(),
                        path: path.as_str().trim_start_matches("/v1").to_string(),
                        query,
                        authorized: auth.as_deref() == Some(&format!("Bearer {TOKEN}")),
                        body: serde_json::from_slice(&body).ok(),
                    };
                    answer(&shared, request).await
                }
            },
        )
}

/// Answers, then logs the request, so a test that saw a request in the
/// log also sees its effect.
async fn answer(shared: &Shared, request: Request) -> Response<String> {
    let delay = shared.lock().delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let response = {
        let mut state = shared.lock();
        let response = respond(&mut state, &request);
        state.log.push(request);
        response
    };
    shared.requested.notify_waiters();
    response
}

fn respond(state: &mut State, request: &Request) -> Response<String> {
    if state.rate_limited > 0 {
        state.rate_limited -= 1;
        return Response::builder()
            .status(StatusCode::TOO_MANY_REQUESTS)
            .header("retry-after", state.retry_after_secs.to_string())
            .body(json!({"message": "Too many requests"}).to_string())
            .unwrap();
    }
    if state.failing {
        return reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"message": "Server error"}),
        );
    }
    if !request.authorized {
        return reply(
            StatusCode::UNAUTHORIZED,
            json!({"message": "The request requires a valid access token"}),
        );
    }
    let segments: Vec<String> = request
        .path
        .trim_matches('/')
        .split('/')
        .map(percent_decode)
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    match (request.method.as_str(), segments.as_slice()) {
        ("GET", ["webhooks"]) => list_webhooks(state, &request.query),
        ("POST", ["webhooks"]) => {
            let body = request.body.clone().unwrap_or_default();
            state.next_id += 1;
            let mut webhook = json!({
                "id": format!("wh-{}", state.next_id),
                "name": body["name"],
                "targetUrl": body["targetUrl"],
                "resource": body["resource"],
                "event": body["event"],
                "secret": body["secret"],
                "status": "active",
                "created": "2026-11-27T12:00:00.000Z",
            });
            if let Some(filter) = body.get("filter") {
                webhook["filter"] = filter.clone();
            }
            state.webhooks.push(webhook.clone());
            reply(StatusCode::OK, webhook)
        }
        ("PUT", ["webhooks", id]) => {
            let body = request.body.clone().unwrap_or_default();
            match state.webhooks.iter_mut().find(|w| w["id"] == *id) {
                Some(webhook) => {
                    for field in ["name", "targetUrl", "secret", "status"] {
                        if let Some(value) = body.get(field) {
                            webhook[field] = value.clone();
                        }
                    }
                    reply(StatusCode::OK, webhook.clone())
                }
                None => reply(
                    StatusCode::NOT_FOUND,
                    json!({"message": "webhook not found"}),
                ),
            }
        }
        ("GET", ["rooms", id]) => match state.rooms.get(*id) {
            Some(title) => reply(
                StatusCode::OK,
                json!({"id": id, "title": title, "type": "group"}),
            ),
            None => reply(StatusCode::NOT_FOUND, json!({"message": "room not found"})),
        },
        _ => reply(
            StatusCode::NOT_FOUND,
            json!({"message": "no such endpoint"}),
        ),
    }
}

/// One page: `max` from the query (capped by the page size), from the
/// `cursor` offset, with a `Link` to the next page when there is one.
fn list_webhooks(state: &State, query: &str) -> Response<String> {
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            // A comma cursor's offset is its last part.
            .and_then(|v| percent_decode(v).rsplit(',').next()?.parse::<usize>().ok())
    };
    let max = param("max").unwrap_or(100).min(state.page_size).max(1);
    let from = param("cursor").unwrap_or(0).min(state.webhooks.len());
    let to = (from + max).min(state.webhooks.len());
    let mut response = Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json");
    if to < state.webhooks.len() {
        let base = state.next_base.as_deref().unwrap_or(&state.base);
        let cursor = if state.comma_cursors {
            format!("page,{to}")
        } else {
            to.to_string()
        };
        response = response.header(
            "link",
            format!("<{base}/webhooks?max={max}&cursor={cursor}>; rel=\"next\""),
        );
    }
    response
        .body(json!({"items": &state.webhooks[from..to]}).to_string())
        .unwrap()
}

fn reply(status: StatusCode, body: Value) -> Response<String> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(body.to_string())
        .unwrap()
}

/// One path segment as the API reads it: `%XX` escapes decoded.
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| segment.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                decoded.push(byte);
                i += 3;
            }
            None => {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}
