//! The warp routes: `POST /hooks/{target}`, `GET /healthz`, `GET /metrics`,
//! and the one rejection handler that turns everything else into a JSON
//! error.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures_util::TryStreamExt;
use serde_json::json;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};
use warp::{Filter, Rejection};

use super::payload::{self, Delivery, Target};
use super::signature;
use crate::log::writer::{Appended, LogWriter};
use crate::metrics::{Metrics, Outcome};
use crate::secret::Secret;
use crate::webex::titles::RoomTitles;

/// Largest delivery body accepted.
pub const MAX_BODY: u64 = 64 * 1024;
const SIGNATURE_HEADER: &str = "x-spark-signature";

/// What the routes share.
pub struct AppState {
    pub dir: PathBuf,
    pub writer: LogWriter,
    /// `None` only with `--insecure-accept-unsigned`.
    pub secret: Option<Secret>,
    pub metrics: Arc<Metrics>,
    pub titles: RoomTitles,
}

/// All routes, with JSON errors.
pub fn routes(
    state: Arc<AppState>,
) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    hooks(state.clone())
        .or(healthz(state.clone()))
        .unify()
        .or(metrics(state.clone()))
        .unify()
        .recover(move |rejection| handle_rejection(state.clone(), rejection))
        .unify()
}

fn with_state(
    state: Arc<AppState>,
) -> impl Filter<Extract = (Arc<AppState>,), Error = Infallible> + Clone {
    warp::any().map(move || state.clone())
}

/// POST /hooks/{target}
fn hooks(state: Arc<AppState>) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("hooks" / String)
        .and(warp::post())
        .and(warp::any().map(Instant::now))
        .and(warp::header::optional::<String>(SIGNATURE_HEADER))
        .and(limited_body(MAX_BODY))
        .and(with_state(state))
        .then(
            |target: String, started: Instant, signature, body, state: Arc<AppState>| async move {
                let (outcome, status, reply) = deliver(&state, &target, signature, body).await;
                state.metrics.delivery(outcome, started.elapsed());
                warp::reply::with_status(warp::reply::json(&reply), status).into_response()
            },
        )
}

/// The raw body, refused with 413 past `limit` bytes whether or not the
/// client sent a Content-Length: a chunked body is cut off as it grows.
fn limited_body(limit: u64) -> impl Filter<Extract = (Bytes,), Error = Rejection> + Clone {
    warp::header::optional::<u64>("content-length")
        .and_then(move |length: Option<u64>| async move {
            match length {
                Some(length) if length > limit => Err(warp::reject::custom(TooLarge)),
                _ => Ok(()),
            }
        })
        .untuple_one()
        .and(warp::body::stream())
        .and_then(move |stream| collect_limited(stream, limit))
}

async fn collect_limited<B: Buf>(
    stream: impl futures_util::Stream<Item = Result<B, warp::Error>>,
    limit: u64,
) -> Result<Bytes, Rejection> {
    let mut stream = std::pin::pin!(stream);
    let mut body = BytesMut::new();
    while let Some(chunk) = stream
        .try_next()
        .await
        .map_err(|_| warp::reject::custom(UnreadableBody))?
    {
        if (body.len() + chunk.remaining()) as u64 > limit {
            return Err(warp::reject::custom(TooLarge));
        }
        body.put(chunk);
    }
    Ok(body.freeze())
}

#[derive(Debug)]
struct TooLarge;
impl warp::reject::Reject for TooLarge {}

#[derive(Debug)]
struct UnreadableBody;
impl warp::reject::Reject for UnreadableBody {}

/// GET /healthz
fn healthz(state: Arc<AppState>) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("healthz")
        .and(warp::get())
        .and(with_state(state))
        .then(|state: Arc<AppState>| async move {
            let probe = tokio::task::spawn_blocking({
                let state = state.clone();
                move || probe_writable(&state)
            })
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
            match probe {
                Ok(()) => json_reply(StatusCode::OK, json!({"status": "ok"})),
                Err(error) => json_reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    json!({"status": "unavailable", "error": error}),
                ),
            }
        })
}

/// GET /metrics
fn metrics(state: Arc<AppState>) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("metrics")
        .and(warp::get())
        .and(with_state(state))
        .map(|state: Arc<AppState>| {
            warp::reply::with_header(
                state.metrics.render(),
                "content-type",
                "text/plain; version=0.0.4",
            )
            .into_response()
        })
}

/// The whole answer to one delivery. Nothing is written unless the answer
/// is `recorded`.
async fn deliver(
    state: &AppState,
    target: &str,
    signature: Option<String>,
    body: Bytes,
) -> (Outcome, StatusCode, serde_json::Value) {
    let target: Target = match target.parse() {
        Ok(target) => target,
        Err(error) => return error_reply(Outcome::NotFound, StatusCode::NOT_FOUND, error),
    };
    if let Some(secret) = &state.secret {
        match signature {
            None => {
                return error_reply(
                    Outcome::Unauthorized,
                    StatusCode::UNAUTHORIZED,
                    "missing X-Spark-Signature header: register the webhook with this server's secret",
                );
            }
            Some(sig) if !signature::verify(secret, &body, &sig) => {
                return error_reply(
                    Outcome::Unauthorized,
                    StatusCode::UNAUTHORIZED,
                    "X-Spark-Signature does not match the body: the webhook's secret differs from this server's",
                );
            }
            Some(_) => {}
        }
    }
    let membership = match payload::parse(&body, &target) {
        Ok(Delivery::Membership(membership)) => membership,
        Ok(Delivery::Ignored) => {
            return (
                Outcome::Ignored,
                StatusCode::OK,
                json!({"status": "ignored"}),
            );
        }
        Err(error) => return error_reply(Outcome::BadRequest, StatusCode::BAD_REQUEST, error),
    };
    let mut record = membership.record;
    record.room_title = state
        .titles
        .title_for(
            &target,
            membership.webhook_filter.as_deref(),
            &record.room_id,
        )
        .await;
    match state.writer.append(record).await {
        Ok(Appended::Recorded(seq)) => (
            Outcome::Recorded,
            StatusCode::OK,
            json!({"status": "recorded", "seq": seq}),
        ),
        Ok(Appended::Duplicate(seq)) => (
            Outcome::Duplicate,
            StatusCode::OK,
            json!({"status": "duplicate", "seq": seq}),
        ),
        Err(error) => error_reply(
            Outcome::Unavailable,
            StatusCode::SERVICE_UNAVAILABLE,
            error.to_string(),
        ),
    }
}

fn error_reply(
    outcome: Outcome,
    status: StatusCode,
    error: impl Into<String>,
) -> (Outcome, StatusCode, serde_json::Value) {
    (outcome, status, json!({"error": error.into()}))
}

fn json_reply(status: StatusCode, body: serde_json::Value) -> Response {
    warp::reply::with_status(warp::reply::json(&body), status).into_response()
}

/// The writer is healthy and a new file can be made durable in the log
/// directory (the next day file will need that).
fn probe_writable(state: &AppState) -> Result<(), String> {
    if !state.writer.is_healthy() {
        return Err("the last write to the audit log failed".into());
    }
    let probe = state.dir.join(".healthz");
    let result = crate::log::files::open_append(&probe)
        .and_then(|file| file.sync_all())
        .and_then(|()| std::fs::remove_file(&probe));
    result.map_err(|e| format!("cannot write in {}: {e}", state.dir.display()))
}

async fn handle_rejection(
    state: Arc<AppState>,
    rejection: Rejection,
) -> Result<Response, Infallible> {
    let (status, error) = if rejection.is_not_found() {
        (
            StatusCode::NOT_FOUND,
            "no such route: deliveries go to POST /hooks/{target}".to_string(),
        )
    } else if rejection.find::<TooLarge>().is_some() {
        state
            .metrics
            .delivery(Outcome::TooLarge, std::time::Duration::ZERO);
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body is larger than {MAX_BODY} bytes"),
        )
    } else if rejection.find::<UnreadableBody>().is_some() {
        (
            StatusCode::BAD_REQUEST,
            "the request body could not be read".to_string(),
        )
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed: deliveries are POSTed, health and metrics are GET".to_string(),
        )
    } else {
        (
            StatusCode::BAD_REQUEST,
            format!("bad request: {rejection:?}"),
        )
    };
    Ok(json_reply(status, json!({"error": error})))
}
