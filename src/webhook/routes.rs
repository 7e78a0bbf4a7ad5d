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
use warp::http::{HeaderValue, StatusCode};
use warp::reply::{Reply, Response};
use warp::{Filter, Rejection};

use super::payload::{self, Delivery, Target};
use super::signature;
use crate::log::writer::{Appended, LogWriter, Rule};
use crate::metrics::{Metrics, Outcome};
use crate::secret::Secret;
use crate::webex::titles::TitleLookups;

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
    pub titles: TitleLookups,
}

/// All routes, with JSON errors.
pub fn routes(
    state: Arc<AppState>,
) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    hooks(state.clone())
        .or(healthz(state.clone()))
        .unify()
        .or(metrics(state))
        .unify()
        .recover(handle_rejection)
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
        .and(signature_header())
        .and(limited_body(MAX_BODY))
        .and(with_state(state))
        .then(
            |target: String,
             started: Instant,
             signature,
             body: Result<Bytes, BodyRefused>,
             state: Arc<AppState>| async move {
                let (outcome, status, answer) = deliver(&state, &target, signature, body).await;
                state.metrics.delivery(outcome, started.elapsed());
                warp::reply::with_status(warp::reply::json(&answer), status).into_response()
            },
        )
}

/// The raw `X-Spark-Signature` header: its bytes are checked, so a value
/// that is not text is a wrong signature (401), not a malformed request.
/// Only that one value is copied, not the request's whole header map.
fn signature_header() -> impl Filter<Extract = (Option<HeaderValue>,), Error = Infallible> + Clone {
    warp::header::value(SIGNATURE_HEADER)
        .map(Some)
        .or(warp::any().map(|| None))
        .unify()
}

/// The raw body, or why it was refused: 413 past `limit` bytes whether or
/// not the client sent a Content-Length (a chunked body is cut off as it
/// grows). Answered by the delivery handler, so a refusal is timed from
/// the request like any other answer.
fn limited_body(
    limit: u64,
) -> impl Filter<Extract = (Result<Bytes, BodyRefused>,), Error = Rejection> + Clone {
    warp::header::optional::<u64>("content-length")
        .and(warp::body::stream())
        .then(move |length: Option<u64>, stream| async move {
            match length {
                Some(length) if length > limit => Err(BodyRefused::TooLarge),
                _ => collect_limited(stream, limit).await,
            }
        })
}

async fn collect_limited<B: Buf>(
    stream: impl futures_util::Stream<Item = Result<B, warp::Error>>,
    limit: u64,
) -> Result<Bytes, BodyRefused> {
    let mut stream = std::pin::pin!(stream);
    let mut body = BytesMut::new();
    while let Some(chunk) = stream
        .try_next()
        .await
        .map_err(|_| BodyRefused::Unreadable)?
    {
        if (body.len() + chunk.remaining()) as u64 > limit {
            return Err(BodyRefused::TooLarge);
        }
        body.put(chunk);
    }
    Ok(body.freeze())
}

/// Why a delivery's body was not taken.
#[derive(Debug)]
enum BodyRefused {
    TooLarge,
    Unreadable,
}

/// GET /healthz
fn healthz(state: Arc<AppState>) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("healthz")
        .and(warp::get())
        .and(with_state(state))
        .then(|state: Arc<AppState>| async move {
            let probe = tokio::task::spawn_blocking(move || state.writer.probe())
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

/// A delivery's JSON answer, typed so a 200 is serialised straight into
/// its body, without building a `serde_json::Value` map first. Fields in
/// the order `json!` printed them (sorted), so the bytes are unchanged.
#[derive(Debug, serde::Serialize)]
#[serde(untagged)]
enum Answer {
    Status {
        #[serde(skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
        status: &'static str,
    },
    Error {
        error: String,
    },
}

/// The whole answer to one delivery. Nothing is written unless the answer
/// is `recorded`.
async fn deliver(
    state: &AppState,
    target: &str,
    signature: Option<HeaderValue>,
    body: Result<Bytes, BodyRefused>,
) -> (Outcome, StatusCode, Answer) {
    let body = match body {
        Ok(body) => body,
        Err(BodyRefused::TooLarge) => {
            return error_reply(
                Outcome::TooLarge,
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("body is larger than {MAX_BODY} bytes"),
            );
        }
        Err(BodyRefused::Unreadable) => {
            return error_reply(
                Outcome::BadRequest,
                StatusCode::BAD_REQUEST,
                "the request body could not be read",
            );
        }
    };
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
            Some(sig) if !signature::verify(secret, &body, sig.as_bytes()) => {
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
                Answer::Status {
                    seq: None,
                    status: "ignored",
                },
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
            || {
                state.writer.is_healthy()
                    && record
                        .dedup_key()
                        .is_none_or(|key| state.writer.recorded(&key).is_none())
            },
        )
        .await;
    // A role change is written only if it changes the flag the log holds:
    // any other `updated` is ignored.
    let rule = if record.event.moderator().is_some() {
        Rule::RoleChange
    } else {
        Rule::Always
    };
    match state.writer.append_if(record, rule).await {
        Ok(Appended::Recorded(seq)) => (
            Outcome::Recorded,
            StatusCode::OK,
            Answer::Status {
                seq: Some(seq),
                status: "recorded",
            },
        ),
        Ok(Appended::Duplicate(seq)) => (
            Outcome::Duplicate,
            StatusCode::OK,
            Answer::Status {
                seq: Some(seq),
                status: "duplicate",
            },
        ),
        Ok(Appended::Unchanged) => (
            Outcome::Ignored,
            StatusCode::OK,
            Answer::Status {
                seq: None,
                status: "ignored",
            },
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
) -> (Outcome, StatusCode, Answer) {
    (
        outcome,
        status,
        Answer::Error {
            error: error.into(),
        },
    )
}

fn json_reply(status: StatusCode, body: serde_json::Value) -> Response {
    warp::reply::with_status(warp::reply::json(&body), status).into_response()
}

async fn handle_rejection(rejection: Rejection) -> Result<Response, Infallible> {
    let (status, error) = if rejection.is_not_found() {
        (
            StatusCode::NOT_FOUND,
            "no such route: deliveries go to POST /hooks/{target}".to_string(),
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
