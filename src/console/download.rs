//! The download: a search as CSV, produced by `rollcall export`'s own
//! code for the same filters (so the bytes are the same, formula guard
//! included) and streamed to the browser as it is written, never held
//! whole in memory.

use std::io::{self, Write};
use std::path::PathBuf;

use bytes::Bytes;
use tokio::sync::mpsc;
use warp::http::{HeaderValue, header};
use warp::reply::{Reply, Response};

use crate::cmd::args::FilterArgs;
use crate::cmd::export::{self, Format};
use crate::log::reader::Filter;

/// Chunks sent to the connection at a time.
const CHUNK: usize = 64 * 1024;
/// Chunks waiting for a slow connection before the export waits too.
const QUEUED: usize = 4;

/// Streams the export of `filter` over the log in `dir`.
pub fn csv(dir: PathBuf, filter: Filter) -> Response {
    let (sender, mut receiver) = mpsc::channel::<io::Result<Bytes>>(QUEUED);
    tokio::task::spawn_blocking(move || {
        let args = export::Args {
            filter: FilterArgs {
                from: None,
                to: None,
                room: None,
                person: None,
                events: Vec::new(),
                source: None,
            },
            format: Format::Csv,
            output: None,
            raw: false,
        };
        let out = io::BufWriter::with_capacity(
            CHUNK,
            Sender {
                sender: sender.clone(),
            },
        );
        if let Err(error) = export::export(&dir, &filter, &args, out) {
            // The status line has gone out; cutting the body short is how
            // the browser learns the file is incomplete.
            tracing::error!(error = %format!("{error:#}"), "console download failed");
            let _ = sender.blocking_send(Err(io::Error::other(error.to_string())));
        }
    });
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
/// while the connection is behind.
struct Sender {
    sender: mpsc::Sender<io::Result<Bytes>>,
}

impl Write for Sender {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.sender
            .blocking_send(Ok(Bytes::copy_from_slice(bytes)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the download was cancelled"))?;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
