//! `rollcall restore`: every archive, digest and checkpoint of the bucket
//! into a new, empty directory, where `verify` and `export` work as on
//! the original. Records written after the last archival were never
//! shipped; the newest checkpoint says how far the log had got.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::{Context, bail};

use super::checkpoint::CHECKPOINT_DIR;
use super::client::Store;
use super::ship::with_backoff;
use crate::log::days::ARCHIVE_DIR;
use crate::log::files;

/// What a restore brought back.
#[derive(Debug, Default)]
pub struct Restored {
    pub objects: usize,
    pub bytes: u64,
    /// The newest checkpoint's object name, if any.
    pub newest_checkpoint: Option<String>,
}

/// Downloads every object of the log into `dir`, which must be empty or
/// not exist. Progress goes to stderr when it is a terminal.
pub async fn restore(dir: &Path, store: &Store) -> anyhow::Result<Restored> {
    if let Ok(mut entries) = std::fs::read_dir(dir)
        && entries.next().is_some()
    {
        bail!(
            "{} is not empty: restore into a new directory, so nothing there is overwritten",
            dir.display()
        );
    }
    let listed = with_backoff(|| store.list("")).await?;
    let wanted: Vec<_> = listed
        .into_iter()
        .filter(|o| {
            o.name.starts_with(&format!("{ARCHIVE_DIR}/"))
                || o.name.starts_with(&format!("{CHECKPOINT_DIR}/"))
        })
        .collect();
    let total = wanted.len();
    let progress = std::io::stderr().is_terminal();
    let mut restored = Restored::default();
    for sub in [ARCHIVE_DIR, CHECKPOINT_DIR] {
        let path = dir.join(sub);
        files::create_dir(&path).with_context(|| format!("creating {}", path.display()))?;
    }
    for (n, object) in wanted.iter().enumerate() {
        let relative = Path::new(&object.name);
        if relative
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
            || relative.components().count() != 2
        {
            tracing::warn!(object = %object.name, "skipped an object whose name is not a plain file name");
            continue;
        }
        let Some(bytes) = with_backoff(|| store.get(&object.name)).await? else {
            bail!(
                "{} vanished from the bucket during the restore; run it again",
                object.name
            );
        };
        let path = dir.join(relative);
        std::fs::write(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
        restored.objects += 1;
        restored.bytes += bytes.len() as u64;
        if object.name.starts_with(&format!("{CHECKPOINT_DIR}/")) {
            restored.newest_checkpoint = Some(object.name.clone());
        }
        if progress {
            eprint!(
                "\rrestored {}/{total} objects ({} bytes)",
                n + 1,
                restored.bytes
            );
        }
    }
    if progress {
        eprintln!();
    }
    for sub in [ARCHIVE_DIR, CHECKPOINT_DIR] {
        files::sync_dir(&dir.join(sub)).with_context(|| format!("syncing {}", dir.display()))?;
    }
    Ok(restored)
}
