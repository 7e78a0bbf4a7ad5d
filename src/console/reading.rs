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
    // What to do about it: a receiver's directory is the operator's to
    // mend; anything else, the index's check finds.
    let check = "`rollcall index --check` (with every receiver's --dir, for the index of several) compares the index with the logs";
    let (error, what_to_do) = match done {
        Ok(reading) => match reading.await {
            Ok(Ok(found)) => return Ok(found),
            Ok(Err(error @ IndexError::Receiver(_))) => (
                format!("{:#}", anyhow::Error::from(error)),
                "check that each receiver's directory is there (mounted, readable) and holds its .receiver file; the page reads again at the next request",
            ),
            Ok(Err(error)) => (format!("{:#}", anyhow::Error::from(error)), check),
            Err(_) => ("the page's reader stopped".to_string(), check),
        },
        Err(error) => (format!("starting the page's reader: {error}"), check),
    };
    tracing::error!(%error, "the console could not read the index");
    Err(html(
        StatusCode::SERVICE_UNAVAILABLE,
        pages::message(
            None,
            "Cannot read the index",
            &format!("{error}; {what_to_do}"),
        ),
    ))
}
