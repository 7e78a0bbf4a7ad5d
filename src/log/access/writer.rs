//! The access log's writer thread: the only owner of the day files. It
//! numbers and links each line (the records' sealing rule), writes a
//! batch and makes it durable with one fdatasync before telling the
//! requests that wait, reopens a file whose path no longer names it, and
//! turns counted refusals into one line per client a minute.
//!
//! A thread of its own, not the runtime's: an fsync under a login flood
//! must not hold a worker thread the webhook path needs.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use super::{Message, day_files, day_path};
use crate::clock::Clock;
use crate::log::files;
use crate::log::record::{self, GENESIS_HASH, format_timestamp};

/// How often a quiet writer looks for minutes that are over.
const TICK: Duration = Duration::from_secs(1);
/// Messages taken into one batch (one fdatasync).
const BATCH: usize = 256;
/// Clients whose refusals are being counted at once; past it the oldest
/// window is written out early, so a spray of addresses cannot grow it.
const MAX_WINDOWS: usize = 4096;
/// Access lines name sessions and client addresses: the owner only.
const MODE: u32 = 0o600;

/// The refusals of one kind from one client in one minute.
struct Window {
    minute: OffsetDateTime,
    count: u64,
}

#[derive(Serialize)]
struct Counted<'a> {
    at: String,
    client: IpAddr,
    action: &'a str,
    outcome: &'a str,
    /// In a summary: the minute's refusals, the one written at once
    /// included.
    #[serde(skip_serializing_if = "Option::is_none")]
    count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    since: Option<String>,
}

/// Only the link of a line.
#[derive(Deserialize)]
pub(super) struct Link {
    pub(super) seq: u64,
    pub(super) hash: String,
}

struct Open {
    day: Date,
    path: PathBuf,
    file: File,
}

struct Writer {
    folder: PathBuf,
    clock: Arc<dyn Clock>,
    open: Option<Open>,
    seq: u64,
    hash: String,
    windows: HashMap<(IpAddr, &'static str, &'static str), Window>,
    /// The first write of the current batch that failed, whichever line it
    /// was (a counted line's failure drops the open file too): no waiter
    /// of that batch is told its line is durable.
    batch_failure: Option<String>,
}

/// Starts the writer for `DIR/access`, taking up the chain where the
/// newest day file ends.
pub(crate) fn start(
    folder: &Path,
    clock: Arc<dyn Clock>,
    queue: usize,
) -> anyhow::Result<SyncSender<Message>> {
    files::create_dir(folder).with_context(|| format!("creating {}", folder.display()))?;
    let dir = folder.parent().unwrap_or(Path::new(".")).to_path_buf();
    let (seq, hash) = last_link(&dir)?;
    let (sender, receiver) = sync_channel(queue);
    let writer = Writer {
        folder: folder.to_path_buf(),
        clock,
        open: None,
        seq,
        hash,
        windows: HashMap::new(),
        batch_failure: None,
    };
    std::thread::Builder::new()
        .name("console-access".into())
        .spawn(move || writer.run(receiver))
        .context("starting the console access log's writer")?;
    Ok(sender)
}

/// The seq and hash of the newest whole line, or the chain's start.
fn last_link(dir: &Path) -> anyhow::Result<(u64, String)> {
    for (_, path) in day_files(dir)?.iter().rev() {
        let mut text = String::new();
        File::open(path)
            .and_then(|mut f| f.read_to_string(&mut text))
            .with_context(|| format!("reading {}", path.display()))?;
        let whole = text.rsplit_once('\n').map_or("", |(whole, _)| whole);
        if let Some(last) = whole.lines().next_back() {
            // A damaged last line must not keep the server from starting:
            // the chain starts again, and `verify` shows both the damage
            // and the restart.
            return Ok(match serde_json::from_str::<Link>(last) {
                Ok(link) => (link.seq, link.hash),
                Err(error) => {
                    tracing::warn!(
                        file = %path.display(),
                        %error,
                        "the console access log's last line is not an access line; its chain starts again (run `rollcall verify`)"
                    );
                    (0, GENESIS_HASH.to_string())
                }
            });
        }
    }
    Ok((0, GENESIS_HASH.to_string()))
}

impl Writer {
    fn run(mut self, queue: Receiver<Message>) {
        loop {
            let first = match queue.recv_timeout(TICK) {
                Ok(message) => Some(message),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let mut batch: Vec<Message> = first.into_iter().collect();
            while batch.len() < BATCH {
                match queue.try_recv() {
                    Ok(message) => batch.push(message),
                    Err(_) => break,
                }
            }
            self.handle(batch);
        }
        self.close_windows(None);
        if let Err(error) = self.sync() {
            tracing::error!(%error, "could not sync the console access log at shutdown");
        }
    }

    fn handle(&mut self, batch: Vec<Message>) {
        let mut waiting = Vec::new();
        let mut flushed = Vec::new();
        self.batch_failure = None;
        for message in batch {
            match message {
                Message::Line {
                    at,
                    content,
                    durable,
                } => {
                    if let Err(error) = self.append(at, &content) {
                        self.failure(error);
                    }
                    waiting.extend(durable);
                }
                Message::Count {
                    at,
                    client,
                    action,
                    outcome,
                } => self.count(at, client, action, outcome),
                Message::Flush(done) => {
                    self.close_windows(None);
                    flushed.push(done);
                }
            }
        }
        let now = self.clock.now();
        self.close_windows(Some(minute_of(now)));
        if let Err(error) = self.sync() {
            self.failure(error);
        }
        let failed = self.batch_failure.take();
        for done in waiting {
            let _ = done.send(failed.clone().map_or(Ok(()), Err));
        }
        for done in flushed {
            let _ = done.send(());
        }
    }

    fn failure(&mut self, error: io::Error) {
        tracing::error!(%error, "could not write the console access log");
        // The file may hold part of a line: start afresh on the next one.
        self.open = None;
        self.batch_failure.get_or_insert_with(|| error.to_string());
    }

    /// Numbers, links, seals and writes one line (not yet synced).
    fn append(&mut self, at: OffsetDateTime, content: &[u8]) -> io::Result<()> {
        let seq = self.seq + 1;
        let inner = content
            .strip_prefix(b"{")
            .and_then(|c| c.strip_suffix(b"}"))
            .ok_or_else(|| io::Error::other("an access line is not a JSON object"))?;
        let mut object = format!("{{\"seq\":{seq},").into_bytes();
        object.extend_from_slice(inner);
        object.extend_from_slice(format!(",\"prev_hash\":\"{}\"}}", self.hash).as_bytes());
        let (hash, line) = record::seal(object);
        self.file_for(at.date())?.write_all(&line)?;
        self.seq = seq;
        self.hash = hash;
        Ok(())
    }

    /// The open file for `day`: a new day's file after midnight (the old
    /// one synced first), and the path's file again when it no longer
    /// names the open one (removed, or moved away by logrotate).
    fn file_for(&mut self, day: Date) -> io::Result<&mut File> {
        let reusable = match &self.open {
            Some(open) if open.day == day => {
                let named = files::still_named(&open.file, &open.path)?;
                if !named {
                    tracing::warn!(
                        file = %open.path.display(),
                        "the console access log was removed or replaced; writing a new one"
                    );
                    // Lines of this batch already went to the old file:
                    // they are answered as durable only once it is synced.
                    open.file.sync_data()?;
                }
                named
            }
            Some(_) => {
                self.sync()?;
                false
            }
            None => false,
        };
        if !reusable {
            self.open = Some(open_day(&self.folder, day)?);
        }
        Ok(&mut self.open.as_mut().expect("a day file was just opened").file)
    }

    fn sync(&self) -> io::Result<()> {
        match &self.open {
            Some(open) => open.file.sync_data(),
            None => Ok(()),
        }
    }

    fn count(
        &mut self,
        at: OffsetDateTime,
        client: IpAddr,
        action: &'static str,
        outcome: &'static str,
    ) {
        let minute = minute_of(at);
        let key = (client, action, outcome);
        if let Some(window) = self.windows.get_mut(&key) {
            if window.minute == minute {
                window.count += 1;
                return;
            }
            let window = self.windows.remove(&key).expect("just found");
            self.summarize(key, window);
        }
        if self.windows.len() >= MAX_WINDOWS {
            let oldest = self
                .windows
                .iter()
                .min_by_key(|(_, w)| w.minute)
                .map(|(key, _)| *key);
            if let Some(oldest) = oldest {
                let window = self.windows.remove(&oldest).expect("just found");
                self.summarize(oldest, window);
            }
        }
        self.windows.insert(key, Window { minute, count: 1 });
        self.counted(at, key, None);
    }

    /// Writes the summaries of the windows before `minute` (all: `None`).
    fn close_windows(&mut self, before: Option<OffsetDateTime>) {
        let over: Vec<_> = self
            .windows
            .iter()
            .filter(|(_, w)| before.is_none_or(|m| w.minute < m))
            .map(|(key, _)| *key)
            .collect();
        for key in over {
            let window = self.windows.remove(&key).expect("just listed");
            self.summarize(key, window);
        }
    }

    /// One line for a window of more than the refusal written at once.
    fn summarize(&mut self, key: (IpAddr, &'static str, &'static str), window: Window) {
        if window.count > 1 {
            let end = window.minute + time::Duration::minutes(1);
            let at = end.min(self.clock.now().max(window.minute));
            self.counted(at, key, Some(window));
        }
    }

    fn counted(
        &mut self,
        at: OffsetDateTime,
        (client, action, outcome): (IpAddr, &'static str, &'static str),
        window: Option<Window>,
    ) {
        let line = Counted {
            at: format_timestamp(at),
            client,
            action,
            outcome,
            count: window.as_ref().map(|w| w.count),
            since: window.map(|w| format_timestamp(w.minute)),
        };
        let content = serde_json::to_vec(&line).expect("an access line always serializes");
        if let Err(error) = self.append(at, &content) {
            self.failure(error);
        }
    }
}

fn minute_of(at: OffsetDateTime) -> OffsetDateTime {
    at.replace_second(0)
        .and_then(|t| t.replace_nanosecond(0))
        .unwrap_or(at)
}

/// Opens (or creates, durably) the day file, and ends a torn last line
/// so the next line is whole (the fragment stays, for `verify` to show).
fn open_day(folder: &Path, day: Date) -> io::Result<Open> {
    files::create_dir(folder)?;
    let path = day_path(folder, day);
    let existed = path.exists();
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(MODE)
        .open(&path)?;
    if !existed {
        files::sync_dir(folder)?;
    }
    let len = file.metadata()?.len();
    if len > 0 {
        let mut last = [0u8];
        file.seek(SeekFrom::Start(len - 1))?;
        file.read_exact(&mut last)?;
        if last[0] != b'\n' {
            file.write_all(b"\n")?;
        }
    }
    Ok(Open { day, path, file })
}
