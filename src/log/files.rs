//! File-system steps shared by everything that writes under `DIR`: the
//! modes audit data is kept with, and the fsyncs that make a new name
//! durable.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Audit files are readable by the owner's group (auditors), nobody else.
pub const FILE_MODE: u32 = 0o640;
pub const DIR_MODE: u32 = 0o750;

/// Creates `dir` (and its parents) with [`DIR_MODE`] if missing, and
/// tightens `dir` itself if it already existed looser (see
/// [`tighten_dir`]).
pub fn create_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)?;
    tighten_dir(dir);
    Ok(())
}

/// Opens `path` for appending, creating it with [`FILE_MODE`].
pub fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(FILE_MODE)
        .open(path)
}

/// Creates `path` new (failing if it exists) with [`FILE_MODE`].
pub fn create_new(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
}

/// Creates or empties `path`, with [`FILE_MODE`] when new.
pub fn create_truncate(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)
}

/// The paths of the entries of `folder`, in no order; none when it does
/// not exist (nothing was ever put there).
pub fn entries(folder: &Path) -> io::Result<Vec<std::path::PathBuf>> {
    match std::fs::read_dir(folder) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        entries => entries?.map(|entry| Ok(entry?.path())).collect(),
    }
}

/// Stores `bytes` as a new file in `folder` (created if missing) under the
/// first free name `name(1)`, `name(2)`, ..., with the file and its name
/// fsync'd: what is put aside as evidence is never overwritten and
/// survives a crash. Returns the file's path.
pub fn keep_aside(
    folder: &Path,
    name: impl Fn(u32) -> String,
    bytes: &[u8],
) -> io::Result<std::path::PathBuf> {
    use std::io::Write as _;
    create_dir(folder)?;
    let (path, mut file) = (1..)
        .map(|n| folder.join(name(n)))
        .find_map(|path| match create_new(&path) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => None,
            opened => Some(opened.map(|f| (path, f))),
        })
        .expect("an unbounded range always finds a free name")?;
    file.write_all(bytes)?;
    file.sync_all()?;
    sync_dir(folder)?;
    Ok(path)
}

/// Whether `path` still names the open `file`: not when it was removed
/// or replaced (logrotate's move-and-create), since bytes written to the
/// old file are then in no file anyone reads.
pub fn still_named(file: &File, path: &Path) -> io::Result<bool> {
    let ours = file.metadata()?;
    match std::fs::metadata(path) {
        Ok(named) => Ok(ours.ino() == named.ino() && ours.dev() == named.dev()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// The lock file that keeps two writers out of one directory.
pub const LOCK_FILE: &str = ".lock";

/// Takes the exclusive lock on `DIR/.lock`, held until the file is
/// dropped (the kernel drops it if the process dies); `None` when another
/// process holds it.
pub fn try_lock(dir: &Path) -> io::Result<Option<File>> {
    take_lock(open_append(&dir.join(LOCK_FILE))?)
}

/// Takes the exclusive lock on `DIR/.lock`, waiting for whoever holds
/// it: for work that another process may be doing on the same directory
/// at once and that takes turns (updating a mirror of the bucket).
pub fn lock(dir: &Path) -> io::Result<File> {
    let file = open_append(&dir.join(LOCK_FILE))?;
    file.lock()?;
    Ok(file)
}

/// Whether a process holds the lock on `DIR/.lock`, found without
/// creating or writing anything (`doctor` may run as another user than
/// `serve`, and a lock file it made would be one `serve` cannot open).
/// No lock file means no `serve` ever ran here.
pub fn lock_held(dir: &Path) -> io::Result<bool> {
    let file = match File::open(dir.join(LOCK_FILE)) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        opened => opened?,
    };
    // Taken and at once released by the drop: a serve starting meanwhile
    // waits for it (see `startup`).
    Ok(take_lock(file)?.is_none())
}

fn take_lock(file: File) -> io::Result<Option<File>> {
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// Replaces `dir/name` with `bytes`: written to `dir/temporary` first and
/// renamed over the old, so a reader sees the old content or the new, never
/// half of either. With `sync`, the file and the rename are made durable too.
pub fn replace(
    dir: &Path,
    name: &str,
    temporary: &str,
    bytes: &[u8],
    sync: bool,
) -> io::Result<()> {
    let temporary = dir.join(temporary);
    let mut file = create_truncate(&temporary)?;
    file.write_all(bytes)?;
    if sync {
        file.sync_data()?;
    }
    std::fs::rename(&temporary, dir.join(name))?;
    if sync {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Makes the directory's entries (a created, renamed or removed name)
/// durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Takes from an existing `dir` every permission [`DIR_MODE`] does not
/// grant: a checkout's 0755 becomes 0750, a stricter 0700 stays, and
/// setgid or sticky bits are kept. Says so when it changes anything, which
/// happens once since the next call finds the directory tight. Only warns
/// when it cannot (a directory owned by someone else): the log is still
/// better written than refused.
pub fn tighten_dir(dir: &Path) {
    let mode = match std::fs::metadata(dir) {
        Ok(meta) => meta.permissions().mode() & 0o7777,
        Err(error) => {
            tracing::warn!(dir = %dir.display(), %error, "could not read the directory's permissions");
            return;
        }
    };
    let tight = mode & !(0o777 & !DIR_MODE);
    if tight == mode {
        return;
    }
    match std::fs::set_permissions(dir, std::fs::Permissions::from_mode(tight)) {
        Ok(()) => tracing::warn!(
            dir = %dir.display(),
            "tightened the directory from {mode:04o} to {tight:04o}: audit data is for its owner and group only"
        ),
        Err(error) => tracing::warn!(
            dir = %dir.display(),
            %error,
            "the directory is {mode:04o}, open to more than its owner and group; run `chmod {tight:o} {}` as its owner",
            dir.display()
        ),
    }
}
