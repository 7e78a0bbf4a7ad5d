//! `rollcall restore`: every archive, digest and checkpoint of one
//! receiver's log in the bucket ([`super::layout`]) into a new, empty
//! directory, where `verify` and `export` work as on the original. Each
//! object is the oldest version of its name (what was shipped), each
//! archive is checked against its digest as it lands ([`download`], which
//! also brings a copy up to date), and everything goes into a sibling
//! directory renamed into place at the end, so a failed restore leaves
//! nothing at the target and can simply be run again. Records written
//! after the last archival were never shipped; the newest checkpoint says
//! how far the log had got.

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use sha2::{Digest as _, Sha256};

use super::checkpoint::CHECKPOINT_DIR;
use super::client::Store;
use super::layout::{self, Layout, Remote};
use super::ship::with_backoff;
use super::versions::Versions;
use crate::log::archive::DayDigest;
use crate::log::days::ARCHIVE_DIR;
use crate::log::files;
use crate::receiver;

const ARCHIVE_SUFFIX: &str = ".jsonl.gz";
const DIGEST_SUFFIX: &str = ".digest.json";

/// What a restore brought back.
#[derive(Debug, Default)]
pub struct Restored {
    pub objects: usize,
    pub bytes: u64,
    /// The newest checkpoint's object name, if any.
    pub newest_checkpoint: Option<String>,
}

/// Downloads every object of `log`, one receiver's log under the prefix
/// of `store`, into `dir`, which must be empty or not exist, and names
/// the directory after it (`DIR/.receiver`, `DIR/.offsite-layout`), so
/// that a `serve` there carries on that receiver's chain and folder.
/// Progress goes to stderr when it is a terminal.
pub async fn restore(dir: &Path, store: &Store, log: &Remote) -> anyhow::Result<Restored> {
    if let Ok(mut entries) = std::fs::read_dir(dir)
        && entries.next().is_some()
    {
        bail!(
            "{} is not empty: restore into a new directory, so nothing there is overwritten",
            dir.display()
        );
    }
    let partial = partial_dir(dir)?;
    // Only a restore writes there: what is left is an earlier one's.
    if partial.exists() {
        std::fs::remove_dir_all(&partial)
            .with_context(|| format!("removing {}", partial.display()))?;
    }
    let filled = fill(&partial, store, log).await;
    let restored = match filled {
        Ok(restored) => restored,
        Err(error) => {
            if let Err(e) = std::fs::remove_dir_all(&partial) {
                tracing::warn!(dir = %partial.display(), error = %e, "could not remove the partial restore");
            }
            return Err(error.context(format!("nothing was restored into {}", dir.display())));
        }
    };
    if dir.exists() {
        std::fs::remove_dir(dir).with_context(|| format!("replacing {}", dir.display()))?;
    }
    std::fs::rename(&partial, dir)
        .with_context(|| format!("renaming {} to {}", partial.display(), dir.display()))?;
    let parent = parent_of(dir);
    files::sync_dir(&parent).with_context(|| format!("syncing {}", parent.display()))?;
    Ok(restored)
}

/// The sibling a restore into `dir` fills first: `.NAME.restoring`.
fn partial_dir(dir: &Path) -> anyhow::Result<PathBuf> {
    let Some(name) = dir.file_name() else {
        bail!(
            "{} names no directory to restore into: give a new directory's path",
            dir.display()
        );
    };
    let mut partial = OsString::from(".");
    partial.push(name);
    partial.push(".restoring");
    Ok(parent_of(dir).join(partial))
}

fn parent_of(dir: &Path) -> PathBuf {
    match dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Downloads `log` into `dir` (made here) and names the directory after
/// it.
async fn fill(dir: &Path, store: &Store, log: &Remote) -> anyhow::Result<Restored> {
    files::create_dir(dir).with_context(|| format!("creating {}", dir.display()))?;
    let restored = download(dir, &log.store(store)).await?;
    if let Layout::Folder(name) = &log.layout {
        receiver::remember(dir, name)?;
    }
    layout::record(dir, &log.layout)?;
    Ok(restored)
}

/// Downloads into `dir` (which must exist) every archive, digest and
/// checkpoint of the log whose objects `store` holds (one receiver's:
/// see [`Remote::store`]) that `dir` does not have yet: the oldest
/// version of each, every archive checked against its digest (here or
/// brought in the same run) before it is kept, each file synced, then
/// the directories. What `dir` has already is left as it is, so running
/// it again over a copy brings only what was shipped since. New objects
/// land under temporary names and take their own only once every one of
/// them is in and checked: a download that fails (an archive that is not
/// what its digest says, named in the error; the store going away)
/// leaves `dir` as it was.
pub async fn download(dir: &Path, store: &Store) -> anyhow::Result<Restored> {
    let mut wanted: Vec<Versions> = Vec::new();
    for sub in [ARCHIVE_DIR, CHECKPOINT_DIR] {
        let under = format!("{sub}/");
        wanted.extend(with_backoff(|| store.list_versions(&under)).await?);
        let path = dir.join(sub);
        files::create_dir(&path).with_context(|| format!("creating {}", path.display()))?;
        remove_landing(&path)?;
    }
    let mut landed = Landed::default();
    let fetched = fetch(dir, store, &wanted, &mut landed).await;
    let restored = match fetched {
        Ok(restored) => restored,
        Err(error) => {
            landed.discard();
            return Err(error);
        }
    };
    landed.keep()?;
    for sub in [ARCHIVE_DIR, CHECKPOINT_DIR] {
        let path = dir.join(sub);
        files::sync_dir(&path).with_context(|| format!("syncing {}", path.display()))?;
    }
    files::sync_dir(dir).with_context(|| format!("syncing {}", dir.display()))?;
    Ok(restored)
}

/// Fetches each of `wanted` that `dir` lacks into `landed`, with progress
/// on stderr when it is a terminal.
async fn fetch(
    dir: &Path,
    store: &Store,
    wanted: &[Versions],
    landed: &mut Landed,
) -> anyhow::Result<Restored> {
    let total = wanted.len();
    let progress = std::io::stderr().is_terminal();
    let mut restored = Restored::default();
    for (n, object) in wanted.iter().enumerate() {
        if !is_plain_name(&object.name) {
            tracing::warn!(object = %object.name, "skipped an object whose name is not a plain file name");
            continue;
        }
        let path = dir.join(Path::new(&object.name));
        let Some(oldest) = object.oldest() else {
            continue;
        };
        if object.name.starts_with(&format!("{CHECKPOINT_DIR}/")) {
            restored.newest_checkpoint = Some(object.name.clone());
        }
        if path.exists() {
            continue;
        }
        let Some(fetched) = with_backoff(|| store.get_version(&object.name, &oldest.id)).await?
        else {
            bail!(
                "{} vanished from the bucket while it was being read; run this again",
                store.location(&object.name)
            );
        };
        // Names sort a day's digest before its archive, so it is here.
        if let Some(day) = object.name.strip_suffix(ARCHIVE_SUFFIX) {
            let digest = landed.path_of(&dir.join(format!("{day}{DIGEST_SUFFIX}")));
            check_archive(&digest, store, &object.name, &fetched.bytes)?;
        }
        landed.land(path, &fetched.bytes)?;
        restored.objects += 1;
        restored.bytes += fetched.bytes.len() as u64;
        if progress {
            eprint!(
                "\rfetched {}/{total} objects ({} bytes)",
                n + 1,
                restored.bytes
            );
        }
    }
    if progress && restored.objects > 0 {
        eprintln!();
    }
    Ok(restored)
}

/// The suffix of an object's file while it waits for the others of its
/// download: `.NAME.fetching`, beside where it goes.
const LANDING_SUFFIX: &str = ".fetching";

/// The objects of one download so far, each under its temporary name.
#[derive(Default)]
struct Landed(Vec<(PathBuf, PathBuf)>);

impl Landed {
    /// Writes `bytes` (synced) under the temporary name of `path`.
    fn land(&mut self, path: PathBuf, bytes: &[u8]) -> anyhow::Result<()> {
        let mut name = OsString::from(".");
        name.push(path.file_name().unwrap_or_default());
        name.push(LANDING_SUFFIX);
        let temporary = path.with_file_name(name);
        write_synced(&temporary, bytes)?;
        self.0.push((temporary, path));
        Ok(())
    }

    /// Where the file that goes to `path` is now: its temporary name if
    /// this download brought it.
    fn path_of(&self, path: &Path) -> PathBuf {
        self.0
            .iter()
            .find(|(_, kept)| kept == path)
            .map_or_else(|| path.to_path_buf(), |(temporary, _)| temporary.clone())
    }

    /// Gives every object its own name.
    fn keep(self) -> anyhow::Result<()> {
        for (temporary, path) in &self.0 {
            std::fs::rename(temporary, path).with_context(|| {
                format!("renaming {} to {}", temporary.display(), path.display())
            })?;
        }
        Ok(())
    }

    fn discard(self) {
        for (temporary, _) in &self.0 {
            if let Err(e) = std::fs::remove_file(temporary) {
                tracing::warn!(file = %temporary.display(), error = %e, "could not remove a fetched object");
            }
        }
    }
}

/// Removes what a download cut short (the process killed) left in
/// `folder`: only a download writes such names.
fn remove_landing(folder: &Path) -> anyhow::Result<()> {
    let entries =
        std::fs::read_dir(folder).with_context(|| format!("reading {}", folder.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", folder.display()))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.ends_with(LANDING_SUFFIX) {
            let path = entry.path();
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    Ok(())
}

/// Refuses an archive that is not the one its digest (at `digest_path`,
/// fetched already) describes.
fn check_archive(
    digest_path: &Path,
    store: &Store,
    name: &str,
    bytes: &[u8],
) -> anyhow::Result<()> {
    let digest = std::fs::read(digest_path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<DayDigest>(&bytes).ok());
    let Some(digest) = digest else {
        bail!(
            "{} has no digest in the bucket to check it against (or the digest is not one): the receiver ships a day's .digest.json beside its archive, so look for it in the bucket (a shipping cut short?); until it is there the archive is not read, and the other receivers can be read with their --dir alone",
            store.location(name)
        );
    };
    if hex::encode(Sha256::digest(bytes)) != digest.compressed_sha256 {
        bail!(
            "{} is not the archive its digest describes (its SHA-256 differs): the bucket's copy of that day is damaged or was replaced; compare it with that receiver's own archive of the day (`rollcall verify` on that receiver), and meanwhile read the other receivers with their --dir alone",
            store.location(name)
        );
    }
    Ok(())
}

fn write_synced(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut file =
        files::create_new(path).with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

/// Whether a bucket name is `FOLDER/FILE` exactly, as rollcall ships it.
/// Judged on the raw string, not on `Path::components`, which folds
/// `archive/./D.digest.json` and `archive//D.digest.json` into the same
/// file as `archive/D.digest.json`: such a name, put there by anyone
/// holding write access, would be restored first and shut out the real one.
fn is_plain_name(name: &str) -> bool {
    let parts: Vec<&str> = name.split('/').collect();
    parts.len() == 2
        && parts
            .iter()
            .all(|part| !part.is_empty() && *part != "." && *part != ".." && !part.contains('\\'))
}

#[cfg(test)]
mod tests {
    use super::is_plain_name;

    #[test]
    fn only_folder_slash_file_names_are_restored() {
        assert!(is_plain_name("archive/2026-11-27.digest.json"));
        assert!(is_plain_name("checkpoints/00000000000000000060.json"));
        for name in [
            "archive/./2026-11-27.digest.json",
            "archive//2026-11-27.digest.json",
            "archive/../.secret",
            "/archive/x",
            "archive/sub/x",
            "archive",
            "archive/",
            "archive/..",
        ] {
            assert!(!is_plain_name(name), "{name}");
        }
    }
}
