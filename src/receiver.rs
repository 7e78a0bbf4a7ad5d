//! A receiver's name, and the receivers a read command reads.
//!
//! Each `serve` is a receiver: it keeps its own chain in its own
//! directory, registers its own webhooks, and ships to its own folder of
//! a shared bucket. Its name ([`Name`]) comes from `--receiver`
//! (`ROLLCALL_RECEIVER`), else `DIR/.receiver`, else the host name
//! ([`resolve`]), and is kept in `DIR/.receiver`. A read command given
//! several `--dir`s reads them as one record ([`crate::log::merge`]),
//! each directory one receiver ([`Receivers`]).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::Context;

use crate::log::files;

/// The file in a log directory that names its receiver.
pub const RECEIVER_FILE: &str = ".receiver";

/// A receiver's name: 1 to 64 of `A-Z a-z 0-9 _ . -`, not starting with
/// a dot, so that it can name a bucket folder, a file and a webhook as it
/// is, and not one of the folders of a log ([`RESERVED`]), which a
/// receiver's folder in the bucket holds and which a log from before
/// receivers had names has right under the prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "{0:?} is not a receiver name: use 1 to 64 letters, digits, '_', '.' or '-', not starting with '.', and none of archive, checkpoints, access"
)]
pub struct BadName(String);

/// The folders of a log, in a directory and in the bucket: no receiver is
/// named after one.
pub const RESERVED: [&str; 3] = ["archive", "checkpoints", "access"];

impl FromStr for Name {
    type Err = BadName;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let ok = (1..=64).contains(&text.len())
            && !text.starts_with('.')
            && !RESERVED.contains(&text)
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if ok {
            Ok(Name(text.to_string()))
        } else {
            Err(BadName(text.to_string()))
        }
    }
}

impl Name {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A name made from any text (a host or directory name): what is not
    /// allowed becomes `-`, and it is cut to 64 bytes.
    pub fn sanitized(text: &str) -> Name {
        let mut name: String = text
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                    c
                } else {
                    '-'
                }
            })
            .take(64)
            .collect();
        while name.starts_with('.') {
            name.replace_range(..1, "-");
        }
        if name.is_empty() {
            name.push_str("receiver");
        } else if RESERVED.contains(&name.as_str()) {
            name.push_str("-receiver");
        }
        Name(name)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The name in `DIR/.receiver`, if the file exists.
pub fn read(dir: &Path) -> anyhow::Result<Option<Name>> {
    let path = dir.join(RECEIVER_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let name = text.trim();
            name.parse()
                .map(Some)
                .with_context(|| format!("{} does not hold a receiver name", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// This machine's host name, as a receiver name.
pub fn host_name() -> Name {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    Name::sanitized(&name)
}

/// The name of the receiver whose log is `dir`, for a command that runs
/// it (`serve`, `subscribe`): `given` (`--receiver`), else `DIR/.receiver`,
/// else the host name. A log is one receiver's: a `given` name other than
/// the one `DIR/.receiver` holds is refused.
pub fn resolve(dir: &Path, given: Option<&Name>) -> anyhow::Result<Name> {
    let kept = read(dir)?;
    match (given, kept) {
        (Some(given), Some(kept)) if *given != kept => anyhow::bail!(
            "{} names this log's receiver {kept:?}, and --receiver (or ROLLCALL_RECEIVER) is {given:?}: a log directory is one receiver's; give this receiver a directory of its own, or change {} to rename it",
            dir.join(RECEIVER_FILE).display(),
            dir.join(RECEIVER_FILE).display(),
        ),
        (Some(given), _) => Ok(given.clone()),
        (None, Some(kept)) => Ok(kept),
        (None, None) => Ok(host_name()),
    }
}

/// Keeps `name` in `DIR/.receiver` (durably, 0640) unless it is there.
pub fn remember(dir: &Path, name: &Name) -> anyhow::Result<()> {
    if read(dir)?.as_ref() == Some(name) {
        return Ok(());
    }
    files::replace(
        dir,
        RECEIVER_FILE,
        ".receiver.tmp",
        format!("{name}\n").as_bytes(),
        true,
    )
    .with_context(|| format!("writing {}", dir.join(RECEIVER_FILE).display()))
}

/// One receiver a read command reads: its name and its log directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receiver {
    pub name: Name,
    pub dir: PathBuf,
}

impl Receiver {
    /// The receiver whose log is `dir`: named by `DIR/.receiver`, else
    /// (a log from before receivers had names) by the directory's own
    /// name.
    pub fn of_dir(dir: &Path) -> anyhow::Result<Receiver> {
        let name = match read(dir)? {
            Some(name) => name,
            None => {
                let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
                Name::sanitized(
                    &absolute
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                )
            }
        };
        Ok(Receiver {
            name,
            dir: dir.to_path_buf(),
        })
    }
}

/// The receivers a read command reads, in the order given: a receiver's
/// place here is its place in a merge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receivers(Vec<Receiver>);

impl Receivers {
    /// The receivers of these log directories. Two directories of one
    /// name are refused: a merge tells receivers apart by name.
    pub fn of_dirs(dirs: &[PathBuf]) -> anyhow::Result<Receivers> {
        let mut receivers: Vec<Receiver> = Vec::with_capacity(dirs.len());
        for dir in dirs {
            let receiver = Receiver::of_dir(dir)?;
            if let Some(other) = receivers.iter().find(|r| r.name == receiver.name) {
                anyhow::bail!(
                    "{} and {} are both receiver {:?}: each --dir must be a different receiver's log (its name is in DIR/{RECEIVER_FILE}, else the directory's name)",
                    other.dir.display(),
                    receiver.dir.display(),
                    receiver.name.as_str()
                );
            }
            receivers.push(receiver);
        }
        anyhow::ensure!(
            receivers.len() <= crate::log::merge::MAX_RECEIVERS,
            "at most {} receivers can be read together",
            crate::log::merge::MAX_RECEIVERS
        );
        Ok(Receivers(receivers))
    }

    pub fn all(&self) -> &[Receiver] {
        &self.0
    }

    /// The one receiver, when there is only one: a read as before
    /// receivers had names.
    pub fn single(&self) -> Option<&Receiver> {
        match self.0.as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The receivers' names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.0.iter().map(|r| r.name.as_str()).collect()
    }
}

/// Receivers known by their directories, named afresh each time they are
/// read: what `serve`'s console and indexer read beside its own log
/// (this receiver first). Another receiver's directory is a mount or a
/// copy this machine does not own; its name going missing or wrong
/// fails the reads of it, never this receiver's start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dirs(Vec<PathBuf>);

impl Dirs {
    /// `own` first, then `others`.
    pub fn new(own: PathBuf, others: impl IntoIterator<Item = PathBuf>) -> Dirs {
        Dirs(std::iter::once(own).chain(others).collect())
    }

    /// The receivers as their directories name them now.
    pub fn receivers(&self) -> anyhow::Result<Receivers> {
        Receivers::of_dirs(&self.0)
    }

    /// This receiver's directory, where the merged index lives.
    pub fn home(&self) -> &Path {
        &self.0[0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_can_name_a_folder_a_file_and_a_webhook() {
        for good in ["a", "site-b", "eu_west.1", &"x".repeat(64)] {
            assert!(good.parse::<Name>().is_ok(), "{good}");
        }
        for bad in ["", ".hidden", "a/b", "a b", "é", &"x".repeat(65), "archive"] {
            assert!(bad.parse::<Name>().is_err(), "{bad}");
        }
        assert_eq!(
            Name::sanitized("host.example.com").as_str(),
            "host.example.com"
        );
        assert_eq!(Name::sanitized(".odd name/").as_str(), "-odd-name-");
        assert_eq!(Name::sanitized("").as_str(), "receiver");
        assert_eq!(Name::sanitized("access").as_str(), "access-receiver");
    }

    #[test]
    fn the_name_given_wins_then_the_kept_one_then_the_host_name() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path();
        assert_eq!(resolve(dir, None).unwrap(), host_name());
        let a: Name = "a".parse().unwrap();
        assert_eq!(resolve(dir, Some(&a)).unwrap(), a);
        remember(dir, &a).unwrap();
        assert_eq!(resolve(dir, None).unwrap(), a);
        let b: Name = "b".parse().unwrap();
        let refused = resolve(dir, Some(&b)).unwrap_err().to_string();
        assert!(refused.contains("one receiver's"), "{refused}");
    }

    #[test]
    fn a_log_without_a_name_is_named_by_its_directory_and_two_of_one_name_are_refused() {
        let temp = tempfile::tempdir().unwrap();
        let (one, two) = (temp.path().join("site-a"), temp.path().join("other"));
        std::fs::create_dir_all(&one).unwrap();
        std::fs::create_dir_all(&two).unwrap();
        assert_eq!(Receiver::of_dir(&one).unwrap().name.as_str(), "site-a");
        remember(&two, &"site-a".parse().unwrap()).unwrap();
        let refused = Receivers::of_dirs(&[one.clone(), two.clone()])
            .unwrap_err()
            .to_string();
        assert!(refused.contains("both receiver"), "{refused}");
        remember(&two, &"site-b".parse().unwrap()).unwrap();
        let both = Receivers::of_dirs(&[one, two]).unwrap();
        assert_eq!(both.names(), ["site-a", "site-b"]);
    }
}
