//! The download: a search as CSV, produced by `rollcall export`'s own
//! code for the same filters (so the bytes are the same, formula guard
//! included) and streamed to the browser as it is written, never held
//! whole in memory.

use std::io::{self, Write};
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use warp::http::{HeaderValue, header};
use warp::reply::{Reply, Response};

use crate::export::{self, Format};
use crate::listener::Closer;
use crate::log::head::Head;
use crate::log::reader::{Filter, SeqRange};

/// Chunks sent to the connection at a time.
const CHUNK: usize = 64 * 1024;
/// Chunks waiting for a slow connection before the export waits too.
const QUEUED: usize = 4;

/// How long a download waits for the browser to take its next chunk,
/// unless told otherwise; then it is dropped.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Streams the export of `filter` over the log in `dir`; a browser that
/// takes no chunk for `stall` loses the download, so a client that stops
/// reading cannot hold the blocking thread (which `/healthz`, archival and
/// shutdown also need) for ever.
pub fn csv(dir: PathBuf, filter: Filter, stall: Duration, closer: Option<Closer>) -> Response {
    let (sender, mut receiver) = mpsc::channel::<io::Result<Bytes>>(QUEUED);
    let runtime = tokio::runtime::Handle::current();
    let failed = sender.clone();
    let started = crate::background::spawn("rollcall-download", move || {
        let out = io::BufWriter::with_capacity(
            CHUNK,
            Sender {
                sender: sender.clone(),
                runtime,
                stall,
            },
        );
        // Only what is durable, as the search shows: bytes past the head
        // may belong to a batch that is about to be cut off again.
        let exported = Head::read(&dir).and_then(|head| {
            let durable = SeqRange {
                from: None,
                to: head.map(|head| head.seq),
            };
            let options = export::Options {
                format: Format::Csv,
                guard: true,
            };
            export::write(&dir, &filter, durable, options, out, |_, _| {})
        });
        if let Err(error) = exported {
            let stalled = error.chain().any(|cause| {
                cause
                    .downcast_ref::<io::Error>()
                    .is_some_and(|e| e.kind() == io::ErrorKind::TimedOut)
            });
            if stalled {
                // What is queued would never be taken either: close the
                // connection rather than leave it waiting to write.
                if let Some(closer) = &closer {
                    closer.close();
                }
                tracing::warn!(
                    ?stall,
                    "console download dropped: the browser took nothing for too long"
                );
            } else {
                tracing::error!(error = %format!("{error:#}"), "console download failed");
            }
            // The status line has gone out; cutting the body short is how
            // the browser learns the file is incomplete. Never waits: the
            // queue may be full of what a stalled browser did not take.
            let _ = sender.try_send(Err(io::Error::other(error.to_string())));
        }
    });
    if let Err(error) = started {
        tracing::error!(%error, "console download could not start");
        let _ = failed.try_send(Err(error));
    }
    let stream = futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx));
    let mut response = warp::reply::stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"rollcall-export.csv\""),
    );
    response
}

/// The export's output, handed to the connection chunk by chunk; waits
/// while the connection is behind, up to `stall` per chunk.
struct Sender {
    sender: mpsc::Sender<io::Result<Bytes>>,
    runtime: tokio::runtime::Handle,
    stall: Duration,
}

impl Write for Sender {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let send = self.sender.send(Ok(Bytes::copy_from_slice(bytes)));
        // On a blocking thread, so waiting here holds no runtime worker.
        match self
            .runtime
            .block_on(tokio::time::timeout(self.stall, send))
        {
            Ok(Ok(())) => Ok(bytes.len()),
            Ok(Err(_)) => Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the download was cancelled",
            )),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the browser stopped reading the download",
            )),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
