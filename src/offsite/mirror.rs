//! Receivers known only by their bucket prefix: the read commands'
//! `--remote s3://BUCKET/PREFIX`. Each receiver's log under the prefix
//! ([`layout::receivers`]) is mirrored into the home directory (the first
//! `--dir`) at `HOME/remote/BUCKET/PREFIX/NAME/` ([`path`]) by restore's
//! [`download`] (only what is new, each archive checked against its
//! digest, nothing kept of a download that fails), then read as a log
//! directory. [`resolve`] says which receivers a read command reads: each
//! `--dir` holding a log, then each mirror, a receiver's own `--dir`
//! read instead of its mirror. A mirror holds [`MIRROR_FILE`], naming
//! where it came from, so that no command that writes a log takes it for
//! its own ([`refuse_to_write`]): its receiver is live elsewhere.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::client::Store;
use super::layout::{self, Remote};
use super::restore::{Restored, download};
use super::ship::with_backoff;
use crate::log::{days, files};
use crate::receiver::{self, Name, Receiver, Receivers};

/// The folder of the home directory that holds the mirrors.
pub const REMOTE_DIR: &str = "remote";

/// The file that makes a directory a mirror: one line, the bucket folder
/// it mirrors (`s3://BUCKET/PREFIX/NAME/`).
pub const MIRROR_FILE: &str = ".mirror";

/// What a read command reads, and where its index lives.
#[derive(Debug)]
pub struct Reading {
    pub receivers: Receivers,
    /// The first `--dir`: the index's directory (`index.sqlite` of a lone
    /// receiver there, else `merged.sqlite`) and the mirrors' home.
    pub home: PathBuf,
}

/// The receivers of `dirs` (each `--dir`) and of `remotes` (each
/// `--remote` prefix's store). Without remotes, every `--dir` is a
/// receiver, as ever. With them, the home (created if missing) and every
/// other `--dir` are receivers only if they hold a log; each receiver
/// under each prefix is mirrored, a line on stderr each, and read after
/// them, unless a `--dir` is the same receiver (by name), which is read
/// instead: it has the live days too.
pub fn resolve(dirs: &[PathBuf], remotes: &[Store]) -> anyhow::Result<Reading> {
    let Some(home) = dirs.first().cloned() else {
        bail!("no --dir given");
    };
    if remotes.is_empty() {
        for dir in dirs {
            days::ensure_log_dir(dir)?;
        }
        // An officer's home read without --remote: its own log is empty.
        if dirs.len() == 1 && home.join(REMOTE_DIR).is_dir() && !days::holds_a_log(&home)? {
            eprintln!(
                "note: {} holds no log of its own, only mirrors of the bucket ({REMOTE_DIR}/): add --remote s3://BUCKET/PREFIX (or set ROLLCALL_REMOTE_URL) to read them",
                home.display()
            );
        }
        let receivers = Receivers::of_dirs(dirs)?;
        return Ok(Reading { receivers, home });
    }
    files::create_dir(&home).with_context(|| format!("creating {}", home.display()))?;
    let mut read = Vec::new();
    let mut local = Vec::new();
    for (n, dir) in dirs.iter().enumerate() {
        days::ensure_log_dir(dir)?;
        let holds = days::holds_a_log(dir).with_context(|| format!("reading {}", dir.display()))?;
        if holds {
            local.push(Receiver::of_dir(dir)?);
            read.push(dir.clone());
        } else if n > 0 {
            eprintln!("note: {} holds no log: not read", dir.display());
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    read.extend(runtime.block_on(mirror_all(&home, remotes, &local))?);
    let receivers = Receivers::of_dirs(&read)?;
    Ok(Reading { receivers, home })
}

/// Brings the mirror of every receiver under `remotes` up to date, but
/// those `local` has; their directories, in order.
async fn mirror_all(
    home: &Path,
    remotes: &[Store],
    local: &[Receiver],
) -> anyhow::Result<Vec<PathBuf>> {
    // Each mirrored receiver's name, bucket folder and directory.
    let mut mirrors: Vec<(Name, String, PathBuf)> = Vec::new();
    for store in remotes {
        let here = store.location("");
        let found = with_backoff(|| layout::receivers(store))
            .await
            .with_context(|| format!("listing the receivers under {here}"))?;
        if found.is_empty() {
            bail!(
                "there is no receiver's log under {here} (no archive/ or checkpoints/ there nor in a folder of it): check --remote"
            );
        }
        for remote in found {
            let location = remote.location(store);
            if let Some(own) = local.iter().find(|r| r.name == remote.name) {
                eprintln!(
                    "receiver {} from {location}: read from {} instead, its own log (which has the live days too)",
                    remote.name,
                    own.dir.display()
                );
                continue;
            }
            match mirrors.iter().find(|(name, _, _)| *name == remote.name) {
                // The same prefix given twice.
                Some((_, other, _)) if *other == location => continue,
                Some((_, other, _)) => bail!(
                    "two receivers named {} are under --remote, {other} and {location}: a merged read tells receivers apart by name, so read one of them at a time",
                    remote.name,
                ),
                None => {}
            }
            let dir = path(home, store, &remote);
            let fetched = update(&dir, store, &remote).await?;
            if fetched.objects == 0 {
                eprintln!("receiver {} from {location}: up to date", remote.name);
            } else {
                eprintln!(
                    "fetched {} objects ({}) of receiver {} from {location}",
                    fetched.objects,
                    size(fetched.bytes),
                    remote.name
                );
            }
            mirrors.push((remote.name, location, dir));
        }
    }
    Ok(mirrors.into_iter().map(|(_, _, dir)| dir).collect())
}

/// Where the mirror of `remote`, under the prefix of `store`, is kept:
/// `HOME/remote/BUCKET/PREFIX/NAME`, the prefix as one folder name
/// ([`prefix_folder`]), so that no two receivers' mirrors share a
/// directory or nest, whatever the prefixes.
pub fn path(home: &Path, store: &Store, remote: &Remote) -> PathBuf {
    home.join(REMOTE_DIR)
        .join(store.bucket_name())
        .join(prefix_folder(&store.key("")))
        .join(remote.name.as_str())
}

/// A key prefix as one folder name: letters, digits, `_`, `-` and `.`
/// (not first) as they are, every other byte `%XX` (so `rollcall/prod/`
/// is `rollcall%2Fprod`, and no prefix can name `..` or a hidden folder);
/// the empty prefix, the bucket's top, is `%2F`, which no other prefix
/// gives (a prefix never starts or ends with `/`).
fn prefix_folder(prefix: &str) -> String {
    let prefix = prefix.trim_end_matches('/');
    if prefix.is_empty() {
        return "%2F".to_string();
    }
    let mut folder = String::with_capacity(prefix.len());
    for (i, byte) in prefix.bytes().enumerate() {
        if byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-' || (byte == b'.' && i > 0) {
            folder.push(byte as char);
        } else {
            folder.push_str(&format!("%{byte:02X}"));
        }
    }
    folder
}

/// Brings the mirror in `dir` of `remote` (under the prefix of `store`)
/// up to date: a new one is marked as a mirror and named after its
/// receiver before anything is fetched into it. Two reads at once take
/// turns.
pub async fn update(dir: &Path, store: &Store, remote: &Remote) -> anyhow::Result<Restored> {
    let location = remote.location(store);
    files::create_dir(dir).with_context(|| format!("creating {}", dir.display()))?;
    let locking = || format!("locking {}", dir.join(files::LOCK_FILE).display());
    let _turn = match files::try_lock(dir).with_context(locking)? {
        Some(turn) => turn,
        None => {
            eprintln!(
                "waiting for another read to finish updating {}",
                dir.display()
            );
            files::lock(dir).with_context(locking)?
        }
    };
    match mirrored(dir)? {
        Some(from) if from == location => {}
        Some(from) => bail!(
            "{} is the mirror of {from}, not of {location}: two logs in the bucket are named {}; read one of them at a time, or move that mirror away",
            dir.display(),
            remote.name
        ),
        None => {
            let unexpected = std::fs::read_dir(dir)
                .with_context(|| format!("reading {}", dir.display()))?
                .filter_map(Result::ok)
                .any(|entry| {
                    let name = entry.file_name();
                    !matches!(name.to_str(), Some(files::LOCK_FILE | MIRROR_TEMPORARY))
                });
            if unexpected {
                bail!(
                    "{} holds files and is not a mirror (it has no {MIRROR_FILE}): move it away, and the next read mirrors {location} there",
                    dir.display()
                );
            }
            files::replace(
                dir,
                MIRROR_FILE,
                MIRROR_TEMPORARY,
                format!("{location}\n").as_bytes(),
                true,
            )
            .with_context(|| format!("writing {}", dir.join(MIRROR_FILE).display()))?;
        }
    }
    receiver::remember(dir, &remote.name)?;
    // Recorded as restore records it, so `verify --remote` of the mirror
    // checks the folder it came from.
    if layout::recorded(dir)?.as_ref() != Some(&remote.layout) {
        layout::record(dir, &remote.layout)?;
    }
    download(dir, &remote.store(store))
        .await
        .with_context(|| format!("nothing new was kept in the mirror {}", dir.display()))
}

const MIRROR_TEMPORARY: &str = ".mirror.tmp";

/// The bucket folder `dir` mirrors, if it is a mirror.
pub fn mirrored(dir: &Path) -> anyhow::Result<Option<String>> {
    let path = dir.join(MIRROR_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text.trim().to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Refuses to let `command` write to `dir` when it is a mirror: its
/// receiver runs elsewhere, and a second writer of its name would fork
/// its chain and take its webhooks for its own.
pub fn refuse_to_write(dir: &Path, command: &str) -> anyhow::Result<()> {
    if let Some(from) = mirrored(dir)? {
        bail!(
            "{} is a mirror of {from} (a copy a read with --remote keeps), not a receiver's own log: `rollcall {command}` never writes to it; give a directory of its own",
            dir.display()
        );
    }
    Ok(())
}

/// `12.3 MB`, or `4.5 kB` below a tenth of a megabyte.
fn size(bytes: u64) -> String {
    if bytes >= 100_000 {
        format!("{:.1} MB", bytes as f64 / 1e6)
    } else {
        format!("{:.1} kB", bytes as f64 / 1e3)
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_folder;

    #[test]
    fn a_prefix_is_one_folder_name_that_no_other_prefix_gives() {
        assert_eq!(prefix_folder("prod/"), "prod");
        assert_eq!(prefix_folder("rollcall/prod/"), "rollcall%2Fprod");
        assert_eq!(prefix_folder(""), "%2F");
        assert_eq!(prefix_folder("../x/"), "%2E.%2Fx");
        assert_eq!(prefix_folder(".hidden/"), "%2Ehidden");
        assert_eq!(prefix_folder("a%2Fb/"), "a%252Fb");
        assert_eq!(prefix_folder("é/"), "%C3%A9");
    }
}
