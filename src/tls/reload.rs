//! Reloading the TLS pair while serving: on SIGHUP, and when anything
//! changes in the directory of either file. The directories, not the
//! files, are watched: certbot renews by pointing `live/DOMAIN/*.pem`
//! symlinks at new files, acme.sh and others write a temporary file and
//! rename it over the old one, and a watch on the old file would see
//! neither.
//!
//! A reload that fails (a file half written, the certificate renewed but
//! not yet its key) keeps the pair in force and logs why; the next change
//! or SIGHUP tries again.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::mpsc;

use super::{Reloaded, Tls};

/// A renewal touches the files several times in a row (a chain, then its
/// key; a write, then a rename): the reload waits until the directory has
/// been quiet this long, so it reads the finished pair.
const SETTLE: Duration = Duration::from_millis(250);
/// ...but not for ever, in a directory something writes to all the time.
const SETTLE_MAX: Duration = Duration::from_secs(2);

/// The watch and the SIGHUP handler, set up before serving starts: a
/// SIGHUP that arrives once the server is listening reloads the pair
/// rather than ending the process (SIGHUP's default).
pub struct Reloader {
    tls: Tls,
    changes: mpsc::UnboundedReceiver<()>,
    hangup: Signal,
    _watcher: Option<RecommendedWatcher>,
}

impl Reloader {
    /// Installs the SIGHUP handler and watches the files' directories. A
    /// watch that cannot be set up (inotify's limits reached, say) is
    /// warned about, not fatal: SIGHUP still reloads.
    pub fn new(tls: Tls) -> anyhow::Result<Self> {
        let hangup = signal(SignalKind::hangup()).context("installing a SIGHUP handler")?;
        let (changed, changes) = mpsc::unbounded_channel();
        let watcher = watch(&tls, changed)
            .map_err(|error| {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "the TLS files are not watched; send SIGHUP after renewing them"
                )
            })
            .ok();
        Ok(Self {
            tls,
            changes,
            hangup,
            _watcher: watcher,
        })
    }

    /// Reloads on every SIGHUP and every settled change, until dropped.
    pub async fn run(mut self) {
        loop {
            let asked = tokio::select! {
                Some(()) = self.hangup.recv() => Asked::Hangup,
                Some(()) = self.changes.recv() => {
                    self.settle().await;
                    Asked::Change
                }
                else => return,
            };
            self.reload(asked);
        }
    }

    /// Waits until no change has come for [`SETTLE`], at most
    /// [`SETTLE_MAX`].
    async fn settle(&mut self) {
        let deadline = tokio::time::Instant::now() + SETTLE_MAX;
        let _ = tokio::time::timeout_at(deadline, async {
            while let Ok(Some(())) = tokio::time::timeout(SETTLE, self.changes.recv()).await {}
        })
        .await;
        while self.changes.try_recv().is_ok() {}
    }

    fn reload(&self, asked: Asked) {
        let files = self.tls.files();
        let (cert, key) = (files.cert.display(), files.key.display());
        match self.tls.reload() {
            Ok(Reloaded::Swapped { previous }) => tracing::info!(
                %cert,
                %key,
                fingerprint = %self.tls.fingerprint(),
                previous = %previous,
                reason = asked.reason(),
                "reloaded the TLS certificate and key; new connections get them, open ones keep theirs"
            ),
            Ok(Reloaded::Unchanged) => match asked {
                Asked::Hangup => tracing::info!(
                    %cert,
                    fingerprint = %self.tls.fingerprint(),
                    "SIGHUP: the TLS files hold the pair already in force"
                ),
                Asked::Change => tracing::debug!(
                    %cert,
                    "a change beside the TLS files left the pair as it was"
                ),
            },
            Err(error) => tracing::error!(
                %error,
                fingerprint = %self.tls.fingerprint(),
                reason = asked.reason(),
                "reloading the TLS pair failed; still serving the pair in force (fix the files, then they are read again at their next change or SIGHUP)"
            ),
        }
    }
}

/// A watch on the directories of `tls`'s files that sends on `changed`
/// for every change in them.
fn watch(tls: &Tls, changed: mpsc::UnboundedSender<()>) -> anyhow::Result<RecommendedWatcher> {
    let mut watcher =
        notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
            Ok(event) if is_change(&event.kind) => {
                let _ = changed.send(());
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, "watching the TLS files; SIGHUP still reloads them")
            }
        })
        .context("watching the TLS files")?;
    for dir in directories(&[&tls.files().cert, &tls.files().key]) {
        watcher
            .watch(&dir, RecursiveMode::NonRecursive)
            .with_context(|| format!("watching {} for a renewed TLS pair", dir.display()))?;
    }
    Ok(watcher)
}

#[derive(Debug, Clone, Copy)]
enum Asked {
    Hangup,
    Change,
}

impl Asked {
    fn reason(self) -> &'static str {
        match self {
            Self::Hangup => "SIGHUP",
            Self::Change => "the files changed",
        }
    }
}

/// Everything but reads: a reload opening the files must not set off
/// another.
fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// The directories holding `files`, each once; `.` for a bare file name.
fn directories(files: &[&Path]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for file in files {
        let dir = match file.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_directory_is_watched_once_and_a_bare_name_is_in_the_current_one() {
        let live = Path::new("/etc/letsencrypt/live/audit.example.com");
        assert_eq!(
            directories(&[&live.join("fullchain.pem"), &live.join("privkey.pem")]),
            [live.to_path_buf()]
        );
        assert_eq!(
            directories(&[Path::new("cert.pem"), Path::new("/keys/key.pem")]),
            [PathBuf::from("."), PathBuf::from("/keys")]
        );
    }

    #[test]
    fn reading_the_files_is_not_a_change_and_finishing_a_write_is() {
        use notify::event::{CreateKind, ModifyKind, RenameMode};
        assert!(!is_change(&EventKind::Access(AccessKind::Open(
            AccessMode::Any
        ))));
        assert!(!is_change(&EventKind::Access(AccessKind::Close(
            AccessMode::Read
        ))));
        assert!(is_change(&EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
        assert!(is_change(&EventKind::Create(CreateKind::File)));
        assert!(is_change(&EventKind::Modify(ModifyKind::Name(
            RenameMode::To
        ))));
    }
}
