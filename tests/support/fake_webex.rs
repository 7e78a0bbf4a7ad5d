//! A fake Webex API for the tests: a real HTTP server on 127.0.0.1:0, on
//! its own thread, so sync tests (running the binary) and async tests
//! (the in-process server) use it alike, through `WEBEX_API_URL`. It keeps
//! webhooks, rooms with titles, each room's roster and membership events
//! (every list paged with `Link: rel="next"`), a log of every request,
//! and switches for 429s, slow answers, errors (all of them or one room's
//! roster), a compliance officer's token, the shapes of `Link` a
//! hostile or unusual API might send, and a request held until the test
//! lets it be answered ([`FakeWebex::hold`]).

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
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
    /// Title by id; ordered, so pages of `GET /rooms` are stable.
    rooms: BTreeMap<String, String>,
    /// Each room's memberships, in the order they were added.
    rosters: BTreeMap<String, Vec<Value>>,
    /// `GET /events?resource=memberships` entries, oldest first.
    events: Vec<Value>,
    /// Whether the token is a compliance officer's: else `/events` is 403.
    compliance: bool,
    /// Whether `GET /events` answers 500.
    events_failing: bool,
    /// Rooms whose `GET /memberships` answers 500.
    failing_rooms: HashSet<String>,
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
    /// Next-page links lead back to the page they came with.
    looping_next: bool,
    /// Requests to hold before answering them.
    holds: Vec<HoldSlot>,
    /// How far the `Date` header is from this host's clock, in seconds;
    /// `None`: the server's own header.
    date_offset: Option<i64>,
}

/// A request to hold: the first whose path starts with `path` and whose
/// query holds `query`.
struct HoldSlot {
    path: String,
    query: String,
    arrived: oneshot::Sender<()>,
    release: oneshot::Receiver<()>,
}

/// A request the fake holds (see [`FakeWebex::hold`]).
pub struct Held {
    arrived: Option<oneshot::Receiver<()>>,
    release: Option<oneshot::Sender<()>>,
}

impl Held {
    /// Resolves once the request has come in and is being held; panics
    /// after 10 s.
    pub async fn arrived(&mut self) {
        let arrived = self.arrived.take().expect("waited for once");
        tokio::time::timeout(Duration::from_secs(10), arrived)
            .await
            .expect("the held request never came")
            .expect("the fake API stopped");
    }

    /// Lets the held request be answered.
    pub fn release(&mut self) {
        if let Some(release) = self.release.take() {
            let _ = release.send(());
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.release();
    }
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
    /// Set instead of `thread` by [`FakeWebex::start_on_this_runtime`].
    task: Option<tokio::task::JoinHandle<()>>,
}

impl FakeWebex {
    pub fn start() -> Self {
        let (listener, url, shared) = Self::bind();
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
            task: None,
        }
    }

    /// The fake served by the test's own runtime rather than a thread of
    /// its own: for tests on paused time (`start_paused`). The runtime
    /// auto-advances the paused clock whenever it has nothing to do, and a
    /// request waiting on another thread's answer looks like nothing to do,
    /// so the client's request timeout would fire at once; answered on the
    /// same runtime over loopback, a request is always work in hand.
    pub fn start_on_this_runtime() -> Self {
        let (listener, url, shared) = Self::bind();
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let task = tokio::spawn(warp::serve(routes(shared.clone())).incoming(listener).run());
        Self {
            url,
            shared,
            stop: None,
            thread: None,
            task: Some(task),
        }
    }

    fn bind() -> (std::net::TcpListener, String, Arc<Shared>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding the fake API");
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                base: url.clone(),
                // The most Webex gives on a page of any list.
                page_size: 1000,
                ..State::default()
            }),
            requested: Notify::new(),
        });
        (listener, url, shared)
    }

    /// A room `GET /rooms/{id}` knows and `GET /rooms` lists.
    pub fn add_room(&self, id: &str, title: &str) {
        self.shared.lock().rooms.insert(id.into(), title.into());
    }

    /// Puts `person` in `room` (a room it does not know yet is added,
    /// titled `Room {room}`): membership id [`membership_id`], email
    /// `{person}@example.com`, display name `person`, not a moderator,
    /// `created` as given. Returns the membership as listed.
    pub fn add_member(&self, room: &str, person: &str, created: &str) -> Value {
        self.add_membership(member(room, person, created))
    }

    /// Puts a membership as written (at least `roomId`) in its room's
    /// roster, replacing that person's earlier one.
    pub fn add_membership(&self, membership: Value) -> Value {
        let room = membership["roomId"]
            .as_str()
            .expect("a membership has a roomId");
        self.add_membership_to(room, membership.clone());
        membership
    }

    /// Lists `membership` as written in `room`'s roster (fields may be
    /// missing, as a hostile or broken API might send), replacing the
    /// entry with its id or person.
    pub fn add_membership_to(&self, room: &str, membership: Value) {
        let mut state = self.shared.lock();
        state
            .rooms
            .entry(room.into())
            .or_insert_with(|| format!("Room {room}"));
        let roster = state.rosters.entry(room.into()).or_default();
        let same =
            |m: &Value, field: &str| !membership[field].is_null() && m[field] == membership[field];
        roster.retain(|m| !same(m, "personId") && !same(m, "id"));
        roster.push(membership);
    }

    /// Takes `person` out of `room`; returns the membership they had.
    pub fn remove_member(&self, room: &str, person: &str) -> Option<Value> {
        let mut state = self.shared.lock();
        let roster = state.rosters.get_mut(room)?;
        let at = roster.iter().position(|m| m["personId"] == person)?;
        Some(roster.remove(at))
    }

    /// Grants or revokes `person`'s moderator role in `room`; returns the
    /// membership as it now is.
    pub fn set_moderator(&self, room: &str, person: &str, moderator: bool) -> Value {
        let mut state = self.shared.lock();
        let membership = state
            .rosters
            .get_mut(room)
            .and_then(|roster| roster.iter_mut().find(|m| m["personId"] == person))
            .expect("a member of the room");
        membership["isModerator"] = json!(moderator);
        membership.clone()
    }

    /// Who is in `room` now.
    pub fn roster(&self, room: &str) -> Vec<Value> {
        self.shared
            .lock()
            .rosters
            .get(room)
            .cloned()
            .unwrap_or_default()
    }

    /// While on, `GET /memberships?roomId=room` answers 500 (other rooms
    /// answer as usual).
    pub fn set_room_failing(&self, room: &str, failing: bool) {
        let mut state = self.shared.lock();
        if failing {
            state.failing_rooms.insert(room.into());
        } else {
            state.failing_rooms.remove(room);
        }
    }

    /// Whether the token is a compliance officer's, which `GET /events`
    /// needs (else 403, as for a bot).
    pub fn set_compliance(&self, on: bool) {
        self.shared.lock().compliance = on;
    }

    /// Whether `GET /events` answers 500, as Webex does on a bad day.
    pub fn set_events_failing(&self, failing: bool) {
        self.shared.lock().events_failing = failing;
    }

    /// Records a membership event for `GET /events`: `kind` is `created`,
    /// `updated` or `deleted`, `membership` the membership as it was, `at`
    /// (RFC 3339) when it happened. Events are listed in the order added.
    /// Returns the event's id.
    pub fn add_event(&self, kind: &str, membership: &Value, at: &str) -> String {
        let mut state = self.shared.lock();
        state.next_id += 1;
        let id = format!("ev-{}", state.next_id);
        state.events.push(json!({
            "id": id,
            "resource": "memberships",
            "type": kind,
            "actorId": "person-admin",
            "orgId": "org-1",
            "created": at,
            "data": membership,
        }));
        id
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

    /// How many items a page of any list holds at most.
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

    /// Every next-page link leads to the page it came with, so a client
    /// that follows links blindly never gets to the end.
    pub fn set_looping_next(&self, on: bool) {
        self.shared.lock().looping_next = on;
    }

    /// The next `times` requests get 429 with `Retry-After: retry_after_secs`.
    pub fn rate_limit(&self, times: u32, retry_after_secs: u64) {
        let mut state = self.shared.lock();
        state.rate_limited = times;
        state.retry_after_secs = retry_after_secs;
    }

    /// Holds the next request whose path starts with `path` and whose
    /// query holds `query` (e.g. `cursor=1`: a list's second page) until
    /// [`Held::release`] (or the handle is dropped); it is then answered
    /// as the fake stands at that moment, a 429 from [`FakeWebex::rate_limit`]
    /// included.
    pub fn hold(&self, path: &str, query: &str) -> Held {
        let (arrived_tx, arrived) = oneshot::channel();
        let (release, release_rx) = oneshot::channel();
        self.shared.lock().holds.push(HoldSlot {
            path: path.into(),
            query: query.into(),
            arrived: arrived_tx,
            release: release_rx,
        });
        Held {
            arrived: Some(arrived),
            release: Some(release),
        }
    }

    /// Answers carry a `Date` this many seconds from this host's clock,
    /// as an API whose clock (or ours) is off would.
    pub fn set_date_offset(&self, seconds: i64) {
        self.shared.lock().date_offset = Some(seconds);
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
        self.set_webhook_field(id, "status", status);
    }

    /// As if the webhook had been registered (or updated) with `secret`.
    pub fn set_secret(&self, id: &str, secret: &str) {
        self.set_webhook_field(id, "secret", secret);
    }

    fn set_webhook_field(&self, id: &str, field: &str, value: &str) {
        let mut state = self.shared.lock();
        let webhook = state
            .webhooks
            .iter_mut()
            .find(|w| w["id"] == id)
            .expect("a known webhook");
        webhook[field] = json!(value);
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
        if let Some(task) = self.task.take() {
            task.abort();
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
    let (delay, held) = {
        let mut state = shared.lock();
        let held = state
            .holds
            .iter()
            .position(|h| request.path.starts_with(&h.path) && request.query.contains(&h.query))
            .map(|at| state.holds.remove(at));
        (state.delay, held)
    };
    if let Some(held) = held {
        let _ = held.arrived.send(());
        // A dropped handle releases the request too.
        let _ = held.release.await;
    }
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let response = {
        let mut state = shared.lock();
        let mut response = respond(&mut state, &request);
        if let Some(offset) = state.date_offset {
            let now = std::time::SystemTime::now();
            let by = Duration::from_secs(offset.unsigned_abs());
            let at = if offset < 0 { now - by } else { now + by };
            response.headers_mut().insert(
                "date",
                httpdate::fmt_http_date(at).parse().expect("a header value"),
            );
        }
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
        ("GET", ["webhooks"]) => page(state, "webhooks", &request.query, &state.webhooks),
        ("GET", ["rooms"]) => {
            let rooms: Vec<Value> = state
                .rooms
                .iter()
                .map(|(id, title)| json!({"id": id, "title": title, "type": "group"}))
                .collect();
            page(state, "rooms", &request.query, &rooms)
        }
        ("GET", ["memberships"]) => list_memberships(state, &request.query),
        ("GET", ["events"]) => list_events(state, &request.query),
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

/// `GET /memberships?roomId=`: 400 without a room, 404 for a room the
/// fake does not know, 500 for a room switched to failing.
fn list_memberships(state: &State, query: &str) -> Response<String> {
    let Some(room) = param(query, "roomId") else {
        return reply(
            StatusCode::BAD_REQUEST,
            json!({"message": "roomId is required"}),
        );
    };
    if state.failing_rooms.contains(&room) {
        return reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"message": "Server error"}),
        );
    }
    if !state.rooms.contains_key(&room) {
        return reply(StatusCode::NOT_FOUND, json!({"message": "room not found"}));
    }
    let roster = state.rosters.get(&room).map_or(&[][..], Vec::as_slice);
    page(state, "memberships", query, roster)
}

/// `GET /events?resource=memberships&from=&to=`: 403 unless the token is
/// a compliance officer's; events with `from <= created < to`.
fn list_events(state: &State, query: &str) -> Response<String> {
    if state.events_failing {
        return reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"message": "Server error"}),
        );
    }
    if !state.compliance {
        return reply(
            StatusCode::FORBIDDEN,
            json!({"message": "The server understood the request, but refused to fulfill it because the access token is missing required scopes or the user is missing required roles or licenses."}),
        );
    }
    let time =
        |name: &str| param(query, name).and_then(|t| OffsetDateTime::parse(&t, &Rfc3339).ok());
    let (from, to) = (time("from"), time("to"));
    let events: Vec<Value> = state
        .events
        .iter()
        .filter(|event| param(query, "resource").is_none_or(|r| event["resource"] == r.as_str()))
        .filter(|event| {
            let at = event["created"]
                .as_str()
                .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok());
            from.is_none_or(|from| at.is_some_and(|at| at >= from))
                && to.is_none_or(|to| at.is_some_and(|at| at < to))
        })
        .cloned()
        .collect();
    page(state, "events", query, &events)
}

/// One page of `items` at `/{list}`: `max` from the query (capped by the
/// page size), from the `cursor` offset, with a `Link` to the next page
/// (the same query, the next cursor) when there is one.
fn page(state: &State, list: &str, query: &str, items: &[Value]) -> Response<String> {
    let number = |name: &str| {
        // A comma cursor's offset is its last part.
        param(query, name).and_then(|v| v.rsplit(',').next()?.parse::<usize>().ok())
    };
    let max = number("max").unwrap_or(100).min(state.page_size).max(1);
    let from = number("cursor").unwrap_or(0).min(items.len());
    let to = (from + max).min(items.len());
    let mut response = Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json");
    if to < items.len() {
        let base = state.next_base.as_deref().unwrap_or(&state.base);
        let next = if state.looping_next { from } else { to };
        let cursor = if state.comma_cursors {
            format!("page,{next}")
        } else {
            next.to_string()
        };
        let kept = query
            .split('&')
            .filter(|kv| !kv.is_empty() && !kv.starts_with("max=") && !kv.starts_with("cursor="))
            .map(|kv| format!("&{kv}"))
            .collect::<String>();
        response = response.header(
            "link",
            format!("<{base}/{list}?max={max}{kept}&cursor={cursor}>; rel=\"next\""),
        );
    }
    response
        .body(json!({"items": &items[from..to]}).to_string())
        .unwrap()
}

/// The first `name=value` of a query, percent-decoded (`+` is a space).
fn param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        .map(|v| percent_decode(&v.replace('+', " ")))
}

/// The membership [`FakeWebex::add_member`] lists, as a delivery's `data`
/// holds it too.
pub fn member(room: &str, person: &str, created: &str) -> Value {
    json!({
        "id": membership_id(room, person),
        "roomId": room,
        "roomType": "group",
        "personId": person,
        "personEmail": format!("{person}@example.com"),
        "personDisplayName": person,
        "personOrgId": "org-1",
        "isModerator": false,
        "isMonitor": false,
        "isRoomHidden": false,
        "created": created,
    })
}

/// The membership id the fake gives `person` in `room`: like Webex's, the
/// same each time they join.
pub fn membership_id(room: &str, person: &str) -> String {
    format!("membership-{person}-{room}")
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
