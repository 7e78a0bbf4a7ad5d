//! The console's routes: one function per route filter, a session check
//! on every page (no session: a redirect to the login form), the CSRF
//! check on every POST form after login, and one rejection handler.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use maud::Markup;
use serde::Deserialize;
use warp::http::{HeaderMap, HeaderValue, StatusCode, header};
use warp::reply::{Reply, Response};
use warp::{Filter, Rejection};

use super::access::{Entry, Who};
use super::auth::{self, Login, Session, Visitor};
use super::pages::{self, Found, Frame};
use super::reading::with_index;
use super::search::{self as searching, Query};
use super::{State, download, rooms};
use crate::listener;
use crate::log::head::Head;
use crate::log::reader;

/// The largest form body accepted.
const MAX_FORM: u64 = 4 * 1024;
const STYLESHEET: &str = include_str!("assets/console.css");

/// Every route, with the security headers on every answer.
pub(super) fn routes(
    state: Arc<State>,
) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    let mut headers = HeaderMap::new();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    let pages = stylesheet()
        .or(login_form(state.clone()))
        .unify()
        .or(login(state.clone()))
        .unify()
        .or(logout(state.clone()))
        .unify()
        .or(search(state.clone()))
        .unify()
        .or(rooms::room(state.clone()))
        .unify()
        .or(rooms::person(state.clone()))
        .unify()
        .or(integrity(state.clone()))
        .unify()
        .or(verify(state.clone()))
        .unify()
        .or(download(state.clone()))
        .unify()
        .recover(rejected)
        .unify();
    renewed_cookie(state)
        .and(pages)
        .map(|cookie: Option<HeaderValue>, mut answer: Answer| {
            // An answer that sets the cookie itself (login, logout) wins.
            if let Some(cookie) = cookie
                && !answer.headers().contains_key(header::SET_COOKIE)
            {
                answer.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            answer
        })
        .with(warp::reply::with::headers(headers))
        .map(Reply::into_response)
}

/// The cookie that keeps a used session from expiring in the browser
/// while the server still holds it live.
fn renewed_cookie(
    state: Arc<State>,
) -> impl Filter<Extract = (Option<HeaderValue>,), Error = Infallible> + Clone {
    warp::header::headers_cloned().and(peer(state.clone())).map(
        move |headers: HeaderMap, peer: Peer| {
            let cookie = state.auth.renewed_cookie(&headers, peer.https)?;
            HeaderValue::from_str(&cookie).ok()
        },
    )
}

/// How a request reached the console.
#[derive(Debug, Clone, Copy)]
pub(super) struct Peer {
    /// The connection's own peer address (never a forwarded one).
    pub(super) client: Option<SocketAddr>,
    /// The browser came over HTTPS, as far as the console can trust.
    https: bool,
}

fn peer(state: Arc<State>) -> impl Filter<Extract = (Peer,), Error = Infallible> + Clone {
    warp::header::headers_cloned().and(listener::remote()).map(
        move |headers: HeaderMap, client: Option<SocketAddr>| Peer {
            client,
            https: state.auth.over_https(&headers, client.map(|c| c.ip())),
        },
    )
}

pub(super) type Answer = Response;
/// An answer given instead of the page: boxed, as it is the rare path.
type Refused = Box<Answer>;

pub(super) fn with_state(
    state: Arc<State>,
) -> impl Filter<Extract = (Arc<State>,), Error = Infallible> + Clone {
    warp::any().map(move || state.clone())
}

/// Who the request is from (see [`auth::Auth::visitor`]), and from where.
fn visitor(
    state: Arc<State>,
) -> impl Filter<Extract = (Visitor, Option<SocketAddr>), Error = Infallible> + Clone {
    warp::header::headers_cloned()
        .and(listener::remote())
        .map(move |headers: HeaderMap, client: Option<SocketAddr>| {
            (state.auth.visitor(&headers, client.map(|c| c.ip())), client)
        })
        .untuple_one()
}

/// Who is asking: a live session, from this address.
pub(super) struct Viewer {
    pub(super) session: Session,
    pub(super) client: Option<SocketAddr>,
}

/// No live session: answered with a redirect to the login form.
#[derive(Debug)]
struct SignedOut;

impl warp::reject::Reject for SignedOut {}

/// The request's live session, else [`SignedOut`].
pub(super) fn signed_in(
    state: Arc<State>,
) -> impl Filter<Extract = (Viewer,), Error = Rejection> + Clone {
    visitor(state.clone()).and_then(move |visitor: Visitor, client| {
        let state = state.clone();
        async move {
            match visitor {
                Visitor::Signed(session) => Ok(Viewer { session, client }),
                Visitor::Anonymous => Err(warp::reject::custom(SignedOut)),
                Visitor::UntrustedHeader => {
                    note_untrusted(&state, client);
                    Err(warp::reject::custom(SignedOut))
                }
            }
        }
    })
}

/// A proxy's user header from a peer that is not a trusted proxy: someone
/// tried to be whoever they named.
/// Counted, not written each time: anyone can repeat it at will.
fn note_untrusted(state: &State, client: Option<SocketAddr>) {
    state.access.count(client, "proxy_header", "untrusted_peer");
}

fn form<T: for<'de> Deserialize<'de> + Send>()
-> impl Filter<Extract = (T,), Error = Rejection> + Clone {
    warp::body::content_length_limit(MAX_FORM).and(warp::body::form())
}

pub(super) fn html(status: StatusCode, page: Markup) -> Answer {
    warp::reply::with_status(warp::reply::html(page.into_string()), status).into_response()
}

fn see_other(to: &str) -> Answer {
    let mut answer = StatusCode::SEE_OTHER.into_response();
    answer.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(to).unwrap_or(HeaderValue::from_static("/")),
    );
    answer
}

fn to_login() -> Answer {
    see_other("/login")
}

pub(super) fn who(session: &Session, client: Option<SocketAddr>) -> Who {
    Who {
        session: Some(session.id.clone()),
        client,
    }
}

/// Makes the access line durable first: a request that cannot be
/// audited is not answered.
pub(super) async fn audited(state: &State, who: &Who, entry: &Entry<'_>) -> Result<(), Refused> {
    state.access.record(who, entry).await.map_err(|error| {
        tracing::error!(%error, "console request refused");
        Box::new(html(
            StatusCode::SERVICE_UNAVAILABLE,
            pages::message(None, "Not available", &error.to_string()),
        ))
    })
}

/// GET /assets/console.css
fn stylesheet() -> impl Filter<Extract = (Answer,), Error = Rejection> + Clone {
    warp::path!("assets" / "console.css")
        .and(warp::get())
        .map(|| {
            warp::reply::with_header(STYLESHEET, header::CONTENT_TYPE, "text/css; charset=utf-8")
                .into_response()
        })
}

/// GET /login
fn login_form(state: Arc<State>) -> impl Filter<Extract = (Answer,), Error = Rejection> + Clone {
    warp::path!("login")
        .and(warp::get())
        .and(visitor(state))
        .map(|visitor: Visitor, _| match visitor.session() {
            Some(_) => see_other("/"),
            None => html(StatusCode::OK, pages::login(None)),
        })
}

#[derive(Deserialize)]
struct Password {
    password: String,
}

/// POST /login
fn login(state: Arc<State>) -> impl Filter<Extract = (Answer,), Error = Rejection> + Clone {
    warp::path!("login")
        .and(warp::post())
        .and(peer(state.clone()))
        .and(form::<Password>())
        .and(with_state(state))
        .then(|peer: Peer, form: Password, state: Arc<State>| async move {
            let client = peer.client;
            let attempt = state.auth.login(client.map(|c| c.ip()), &form.password);
            let entry = |outcome| Entry {
                action: "login",
                outcome,
                ..Entry::default()
            };
            // Only a login that starts a session waits for its line; a
            // refusal shows nothing, and a limited one is only counted.
            match &attempt {
                Login::Allowed { session, .. } => {
                    let who = Who {
                        session: Some(session.clone()),
                        client,
                    };
                    if let Err(refused) = audited(&state, &who, &entry("ok")).await {
                        return *refused;
                    }
                }
                Login::Wrong => state
                    .access
                    .note(&Who::default_from(client), &entry("wrong_password")),
                Login::Limited(_) => state.access.count(client, "login", "rate_limited"),
            }
            match attempt {
                Login::Allowed { token, .. } => {
                    let mut answer = see_other("/");
                    if let Ok(cookie) =
                        HeaderValue::from_str(&state.auth.set_cookie(&token, peer.https))
                    {
                        answer.headers_mut().insert(header::SET_COOKIE, cookie);
                    }
                    answer
                }
                Login::Wrong => html(
                    StatusCode::UNAUTHORIZED,
                    pages::login(Some("Wrong password.")),
                ),
                Login::Limited(wait) => {
                    let seconds = wait.whole_seconds().max(1);
                    let mut answer = html(
                        StatusCode::TOO_MANY_REQUESTS,
                        pages::login(Some(&format!(
                            "Too many failed logins from your address: try again in {seconds} s."
                        ))),
                    );
                    answer
                        .headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
                    answer
                }
            }
        })
}

#[derive(Deserialize)]
struct Csrf {
    #[serde(default)]
    csrf: String,
}

/// Whether the form carries its session's CSRF token; else the answer.
fn checked(session: &Session, form: &Csrf) -> Result<(), Refused> {
    if auth::same_token(&form.csrf, &session.csrf) {
        Ok(())
    } else {
        Err(Box::new(html(
            StatusCode::FORBIDDEN,
            pages::message(
                None,
                "Form expired",
                "This form does not belong to your session (CSRF check): reload the page and try again.",
            ),
        )))
    }
}

/// POST /logout
fn logout(state: Arc<State>) -> impl Filter<Extract = (Answer,), Error = Rejection> + Clone {
    warp::path!("logout")
        .and(warp::post())
        .and(signed_in(state.clone()))
        .and(peer(state.clone()))
        .and(warp::header::optional::<String>("cookie"))
        .and(form::<Csrf>())
        .and(with_state(state))
        .map(
            |viewer: Viewer, peer: Peer, cookies: Option<String>, form: Csrf, state: Arc<State>| {
                if let Err(refused) = checked(&viewer.session, &form) {
                    return *refused;
                }
                state.auth.logout(cookies.as_deref());
                let mut answer = to_login();
                if let Ok(cookie) = HeaderValue::from_str(&state.auth.clear_cookie(peer.https)) {
                    answer.headers_mut().insert(header::SET_COOKIE, cookie);
                }
                answer
            },
        )
}

/// GET /?person=&room=&event=&source=&from=&to=&before=&page=
fn search(state: Arc<State>) -> impl Filter<Extract = (Answer,), Error = Rejection> + Clone {
    warp::path::end()
        .and(warp::get())
        .and(signed_in(state.clone()))
        .and(warp::query::<Query>())
        .and(with_state(state))
        .then(
            |viewer: Viewer, query: Query, state: Arc<State>| async move {
                let Viewer { session, client } = viewer;
                let frame = Frame {
                    csrf: &session.csrf,
                };
                let shown = match query.parse() {
                    Err(error) => Err(error),
                    Ok(search) => {
                        let before = query.before;
                        let found = with_index(&state, move |index| {
                            let page = index.records_page(&search, before)?;
                            let download = searching::export_filter(&search, index)?.map(|_| ());
                            Ok((page, download))
                        })
                        .await;
                        match found {
                            Ok(found) => Ok(found),
                            Err(answer) => return answer,
                        }
                    }
                };
                let rows = shown
                    .as_ref()
                    .ok()
                    .map(|(found, _)| found.as_ref().map_or(0, |(page, _)| page.rows.len() as u64));
                let entry = Entry::query("search", &query, rows);
                if let Err(refused) = audited(&state, &who(&session, client), &entry).await {
                    return *refused;
                }
                let (status, page) = match &shown {
                    Ok((found, standing)) => {
                        let empty = (Default::default(), Ok(()));
                        let (page, download) = found.as_ref().unwrap_or(&empty);
                        let found = Found {
                            shown: page,
                            standing,
                        };
                        let download = download.as_ref().map(|_| ()).map_err(String::as_str);
                        (
                            StatusCode::OK,
                            pages::search(&frame, &query, Ok(found), download),
                        )
                    }
                    Err(error) => (
                        StatusCode::BAD_REQUEST,
                        pages::search(&frame, &query, Err(error), Ok(())),
                    ),
                };
                html(status, page)
            },
        )
}

#[derive(Deserialize)]
struct Wait {
    #[serde(default)]
    wait: Option<String>,
}

/// GET /integrity (`?wait=1` answers once a running verify is done)
fn integrity(state: Arc<State>) -> impl Filter<Extract = (Answer,), Error = Rejection> + Clone {
    warp::path!("integrity")
        .and(warp::get())
        .and(signed_in(state.clone()))
        .and(warp::query::<Wait>())
        .and(with_state(state))
        .then(|viewer: Viewer, wait: Wait, state: Arc<State>| async move {
            let session = viewer.session;
            if wait.wait.is_some() {
                state.checks.settled().await;
            }
            let head = Head::read(&state.dir).ok().flatten();
            let days = reader::days(&state.dir).unwrap_or_default();
            let live = days.iter().filter(|d| d.live.is_some()).count();
            let archived = days.iter().filter(|d| d.archived.is_some()).count();
            let frame = Frame {
                csrf: &session.csrf,
            };
            html(
                StatusCode::OK,
                pages::integrity(
                    &frame,
                    &state.checks.status(),
                    head.as_ref(),
                    (live, archived),
                ),
            )
        })
}

/// POST /integrity/verify
fn verify(state: Arc<State>) -> impl Filter<Extract = (Answer,), Error = Rejection> + Clone {
    warp::path!("integrity" / "verify")
        .and(warp::post())
        .and(signed_in(state.clone()))
        .and(form::<Csrf>())
        .and(with_state(state))
        .then(|viewer: Viewer, form: Csrf, state: Arc<State>| async move {
            let Viewer { session, client } = viewer;
            if let Err(refused) = checked(&session, &form) {
                return *refused;
            }
            let started = state.checks.start();
            let entry = Entry {
                action: "verify",
                outcome: if started {
                    "started"
                } else {
                    "already_running"
                },
                ..Entry::default()
            };
            if let Err(refused) = audited(&state, &who(&session, client), &entry).await {
                return *refused;
            }
            see_other("/integrity")
        })
}

/// GET /download?person=&room=&event=&source=&from=&to=
fn download(state: Arc<State>) -> impl Filter<Extract = (Answer,), Error = Rejection> + Clone {
    warp::path!("download")
        .and(warp::get())
        .and(signed_in(state.clone()))
        .and(warp::query::<Query>())
        .and(listener::closer())
        .and(with_state(state))
        .then(
            |viewer: Viewer, query: Query, closer, state: Arc<State>| async move {
                let Viewer { session, client } = viewer;
                let found = match query.parse() {
                    Err(error) => Err(error),
                    Ok(search) => {
                        let found = with_index(&state, move |index| {
                            Ok(match searching::export_filter(&search, index)? {
                                Ok(filter) => Ok((filter, index.count_records(&search)?)),
                                Err(why) => Err(why),
                            })
                        })
                        .await;
                        match found {
                            Ok((Some(found), _)) => found,
                            Ok((None, _)) => {
                                Err("the index is still being built: try again shortly".into())
                            }
                            Err(answer) => return answer,
                        }
                    }
                };
                let rows = found.as_ref().ok().map(|(_, rows)| *rows);
                let entry = Entry::query("download", &query, rows);
                if let Err(refused) = audited(&state, &who(&session, client), &entry).await {
                    return *refused;
                }
                match found {
                    Ok((filter, _)) => {
                        download::csv(state.dir.clone(), filter, state.download_stall, closer)
                    }
                    Err(why) => html(
                        StatusCode::BAD_REQUEST,
                        pages::message(
                            Some(&Frame {
                                csrf: &session.csrf,
                            }),
                            "No download",
                            &why,
                        ),
                    ),
                }
            },
        )
}

async fn rejected(rejection: Rejection) -> Result<Answer, Infallible> {
    if rejection.find::<SignedOut>().is_some() {
        return Ok(to_login());
    }
    let (status, text) = if rejection.is_not_found() {
        (StatusCode::NOT_FOUND, "There is no such page.")
    } else if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        (StatusCode::PAYLOAD_TOO_LARGE, "The form is too large.")
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            "That method is not allowed here.",
        )
    } else if rejection.find::<warp::reject::InvalidQuery>().is_some()
        || rejection.find::<warp::reject::LengthRequired>().is_some()
        || rejection
            .find::<warp::reject::UnsupportedMediaType>()
            .is_some()
    {
        (
            StatusCode::BAD_REQUEST,
            "The request is not one this page understands.",
        )
    } else {
        tracing::warn!(?rejection, "console request rejected");
        (
            StatusCode::BAD_REQUEST,
            "The request is not one this page understands.",
        )
    };
    Ok(html(
        status,
        pages::message(None, status.canonical_reason().unwrap_or("Error"), text),
    ))
}
