//! The console's access log, `DIR/access/console.jsonl`: one JSON line
//! per login (allowed or not), search, download and verify run, saying
//! who (session and client address), when, with which filters and how
//! many rows. Reading an audit log is itself audited, so a request whose
//! line cannot be written is refused.

use std::fs::File;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context;
use serde::Serialize;

use super::search::Query;
use crate::clock::Clock;
use crate::log::files;
use crate::log::record::format_timestamp;

pub const ACCESS_DIR: &str = "access";
pub const ACCESS_FILE: &str = "console.jsonl";

/// Who asked.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Who {
    /// The session's short name; none before login.
    pub session: Option<String>,
    pub client: Option<SocketAddr>,
}

/// One line of the access log.
#[derive(Debug, Default, Serialize)]
pub struct Entry<'a> {
    pub action: &'a str,
    /// `ok`, `wrong_password`, `rate_limited`, `refused`...
    pub outcome: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filters: Option<&'a Query>,
    /// What was looked at: a room or person id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    /// How a page was looked at: the roster's time and the history page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub view: Option<View<'a>>,
}

/// The roster time (`now` for the present) and the 0-based history page
/// a room page was asked for.
#[derive(Debug, Serialize)]
pub struct View<'a> {
    pub at: &'a str,
    pub page: usize,
}

impl<'a> Entry<'a> {
    /// A search or download with `filters`: the rows it gave, or `None`
    /// when the query was refused.
    pub fn query(action: &'a str, filters: &'a Query, rows: Option<u64>) -> Self {
        Entry {
            action,
            outcome: if rows.is_some() { "ok" } else { "refused" },
            filters: Some(filters),
            rows,
            ..Entry::default()
        }
    }
}

#[derive(Serialize)]
struct Line<'a> {
    at: String,
    #[serde(flatten)]
    who: &'a Who,
    #[serde(flatten)]
    entry: &'a Entry<'a>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot write the console access log {}: check the disk and its permissions", path.display())]
pub struct AccessError {
    path: PathBuf,
    source: std::io::Error,
}

pub struct AccessLog {
    path: PathBuf,
    file: Mutex<File>,
    clock: Arc<dyn Clock>,
}

impl AccessLog {
    pub fn open(dir: &Path, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let folder = dir.join(ACCESS_DIR);
        files::create_dir(&folder).with_context(|| format!("creating {}", folder.display()))?;
        let path = folder.join(ACCESS_FILE);
        let file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("opening the console access log {}", path.display()))?;
        Ok(Self {
            path,
            file: Mutex::new(file),
            clock,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line and makes it durable before the request goes on.
    pub fn record(&self, who: &Who, entry: &Entry<'_>) -> Result<(), AccessError> {
        let line = Line {
            at: format_timestamp(self.clock.now()),
            who,
            entry,
        };
        let mut bytes = serde_json::to_vec(&line).expect("an access line always serializes");
        bytes.push(b'\n');
        let file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        (&*file)
            .write_all(&bytes)
            .and_then(|()| file.sync_data())
            .map_err(|source| AccessError {
                path: self.path.clone(),
                source,
            })
    }
}
