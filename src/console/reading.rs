//! Reading the index for a page: on a blocking thread, through a
//! connection of the request's own, this receiver's index or, with other
//! receivers, the merged one of all their logs.

use std::sync::Arc;

use warp::http::StatusCode;

use super::State;
use super::pages;
use super::routes::{Answer, html};
use crate::index::pages::Standing;
use crate::index::{Index, IndexError};
use crate::log::head::Head;

/// Reads the index on a blocking thread, through a connection of this
/// request's own, after catching it up if it lags the durable head by
/// at most a batch: what `read` found (`None`: there is no index yet)
/// and how far the index was.
pub(super) async fn with_index<T: Send + 'static>(
    state: &Arc<State>,
    read: impl FnOnce(&Index) -> Result<T, IndexError> + Send + 'static,
) -> Result<(Option<T>, Standing), Answer> {
    let shared = state.clone();
    let done = crate::background::spawn("rollcall-page", move || {
        let opened = match &shared.merged {
            Some(dirs) => {
                let receivers = dirs
                    .receivers()
                    .map_err(|e| IndexError::Receiver(format!("{e:#}")))?;
                Index::open_read_of(&receivers, &shared.dir)?
            }
            None => Index::open_read(&shared.dir)?,
        };
        let Some(mut index) = opened else {
            let head = Head::read(&shared.dir).ok().flatten().map_or(0, |h| h.seq);
            return Ok((
                None,
                Standing {
                    seq: 0,
                    head,
                    ..Standing::default()
                },
            ));
        };
        let standing = index.catch_up_near(shared.clock.as_ref())?;
        Ok::<_, IndexError>((Some(read(&index)?), standing))
    });
    let error = match done {
        Ok(reading) => match reading.await {
            Ok(Ok(found)) => return Ok(found),
            Ok(Err(error)) => format!("{:#}", anyhow::Error::from(error)),
            Err(_) => "the page's reader stopped".to_string(),
        },
        Err(error) => format!("starting the page's reader: {error}"),
    };
    tracing::error!(%error, "the console could not read the index");
    Err(html(
        StatusCode::SERVICE_UNAVAILABLE,
        pages::message(
            None,
            "Cannot read the index",
            &format!("{error}; `rollcall index --check` compares it with the log"),
        ),
    ))
}
