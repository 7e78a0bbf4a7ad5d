//! Where in the bucket a log's objects go, and the receivers a prefix
//! holds.
//!
//! Each receiver ships to a folder of its own, `PREFIX/NAME/` (its
//! `archive/` and `checkpoints/` under it), so receivers sharing a bucket
//! and prefix never see each other's objects. A directory that shipped to
//! `PREFIX/` itself before receivers had names (it has a non-empty
//! `DIR/.offsite-shipped` and no layout recorded) keeps shipping there:
//! the old layout. Which one a directory ships with is decided at its
//! first shipping and kept in `DIR/.offsite-layout` ([`LAYOUT_FILE`]), so
//! that the decision never flips (its own `.offsite-shipped` would
//! otherwise turn a folder's log into an old-layout one the next day).
//! [`receivers`] finds every receiver's log under a prefix, for
//! `restore` and for the commands that read the bucket.

use std::path::Path;

use anyhow::Context;

use super::checkpoint::CHECKPOINT_DIR;
use super::client::{Store, StoreError};
use super::ship;
use crate::log::days::ARCHIVE_DIR;
use crate::log::files;
use crate::receiver::Name;

/// The file in a log directory that says where in the bucket it ships:
/// one line, `folder NAME` (`PREFIX/NAME/`) or `flat` (`PREFIX/` itself,
/// the old layout).
pub const LAYOUT_FILE: &str = ".offsite-layout";

/// Where a log's objects are, under the prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// `PREFIX/NAME/`: the receiver's own folder.
    Folder(Name),
    /// `PREFIX/` itself: a log that shipped before receivers had names.
    Flat,
}

impl Layout {
    /// The objects' key prefix under the store's: `NAME/`, or empty.
    pub fn folder(&self) -> String {
        match self {
            Layout::Folder(name) => format!("{name}/"),
            Layout::Flat => String::new(),
        }
    }

    /// The store of this log's objects, from the store of the prefix.
    pub fn store(&self, store: &Store) -> Store {
        store.under(&self.folder())
    }

    fn line(&self) -> String {
        match self {
            Layout::Folder(name) => format!("folder {name}\n"),
            Layout::Flat => "flat\n".to_string(),
        }
    }

    fn parse(text: &str) -> Option<Layout> {
        match text.trim().split_once(' ') {
            Some(("folder", name)) => name.trim().parse().ok().map(Layout::Folder),
            None if text.trim() == "flat" => Some(Layout::Flat),
            _ => None,
        }
    }
}

/// The layout `DIR/.offsite-layout` records, if any.
pub fn recorded(dir: &Path) -> anyhow::Result<Option<Layout>> {
    let path = dir.join(LAYOUT_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => Layout::parse(&text).map(Some).with_context(|| {
            format!(
                "{} does not say `folder NAME` or `flat`: write `folder NAME` into it if the bucket keeps this receiver's archives under PREFIX/NAME/archive/, or `flat` if under PREFIX/archive/",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// The layout `dir` ships with: the recorded one, else the old layout for
/// a directory that has shipped before (a non-empty `.offsite-shipped`),
/// else the folder of receiver `name`.
pub fn of_dir(dir: &Path, name: &Name) -> anyhow::Result<Layout> {
    if let Some(layout) = recorded(dir)? {
        return Ok(layout);
    }
    let shipped = ship::confirmed(dir).with_context(|| format!("reading {}", dir.display()))?;
    Ok(if shipped.is_empty() {
        Layout::Folder(name.clone())
    } else {
        Layout::Flat
    })
}

/// [`of_dir`], recorded (durably) if it was not: for whatever ships.
pub fn settle(dir: &Path, name: &Name) -> anyhow::Result<Layout> {
    if let Some(layout) = recorded(dir)? {
        return Ok(layout);
    }
    let layout = of_dir(dir, name)?;
    record(dir, &layout)?;
    Ok(layout)
}

/// Keeps `layout` in `DIR/.offsite-layout`.
pub fn record(dir: &Path, layout: &Layout) -> anyhow::Result<()> {
    files::replace(
        dir,
        LAYOUT_FILE,
        ".offsite-layout.tmp",
        layout.line().as_bytes(),
        true,
    )
    .with_context(|| format!("writing {}", dir.join(LAYOUT_FILE).display()))
}

/// One receiver's log in the bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// The receiver's name: its folder's; for an old-layout log, which
    /// has none, the last part of the prefix (else the bucket's name), as
    /// a log directory without a name is named after the directory.
    pub name: Name,
    pub layout: Layout,
}

impl Remote {
    /// The store of this receiver's objects, from the store of the prefix.
    pub fn store(&self, store: &Store) -> Store {
        self.layout.store(store)
    }

    /// Its objects' full key prefix, for messages: `s3://BUCKET/KEY/`.
    pub fn location(&self, store: &Store) -> String {
        store.location(&self.layout.folder())
    }
}

/// Whether the folder `under` (empty, or ending in `/`) holds a log: an
/// `archive/` or a `checkpoints/` folder right under it.
fn holds_a_log(folders: &[String], under: &str) -> bool {
    [ARCHIVE_DIR, CHECKPOINT_DIR]
        .iter()
        .any(|sub| folders.iter().any(|f| *f == format!("{under}{sub}/")))
}

/// Every receiver's log under the store's prefix, by name: each
/// `PREFIX/NAME/` folder holding `archive/` or `checkpoints/`, and an
/// old-layout log at `PREFIX/` itself. Lists folders, not objects, so it
/// costs a request per folder however long the logs are.
pub async fn receivers(store: &Store) -> Result<Vec<Remote>, StoreError> {
    let top = store.folders("").await?;
    let mut found = Vec::new();
    if holds_a_log(&top, "") {
        found.push(Remote {
            name: flat_name(store),
            layout: Layout::Flat,
        });
    }
    for folder in &top {
        let Ok(name) = folder.trim_end_matches('/').parse::<Name>() else {
            continue;
        };
        if holds_a_log(&store.folders(folder).await?, folder) {
            found.push(Remote {
                name: name.clone(),
                layout: Layout::Folder(name),
            });
        }
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// The name of an old-layout log: the prefix's last part, else the
/// bucket's name.
fn flat_name(store: &Store) -> Name {
    let key = store.key("");
    let last = key.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    Name::sanitized(if last.is_empty() {
        store.bucket_name()
    } else {
        last
    })
}

/// The receiver `wanted` names among those under the store's prefix, or
/// without `wanted`, the only one there; refused (naming those there) when
/// there is none or, without `wanted`, several.
pub async fn pick(store: &Store, wanted: Option<&Name>) -> anyhow::Result<Remote> {
    let found = receivers(store).await?;
    let names = || {
        found
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let here = store.location("");
    match (wanted, found.as_slice()) {
        (_, []) => anyhow::bail!(
            "there is no receiver's log under {here} (no archive/ or checkpoints/ there nor in a folder of it): check --s3-url"
        ),
        (Some(wanted), _) => {
            let mut named = found.iter().filter(|r| r.name == *wanted);
            let one = named.next().cloned().ok_or_else(|| {
                anyhow::anyhow!(
                    "there is no receiver {wanted} under {here}; the receivers there are: {}",
                    names()
                )
            })?;
            // An old-layout log is named after the prefix: a receiver's
            // folder may have the same name. Neither is taken for the other.
            anyhow::ensure!(
                named.next().is_none(),
                "two logs under {here} are named {wanted}: the folder {} and the old-layout log at {here} itself; restore one by moving the other, or with an --s3-url naming the folder itself",
                store.location(&format!("{wanted}/"))
            );
            Ok(one)
        }
        (None, [one]) => Ok(one.clone()),
        (None, _) => anyhow::bail!(
            "several receivers ship under {here}: {}; give --receiver NAME to pick one",
            names()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_layout_is_kept_as_one_line_and_read_back() {
        let site: Name = "site-a".parse().unwrap();
        for layout in [Layout::Folder(site), Layout::Flat] {
            assert_eq!(Layout::parse(&layout.line()), Some(layout));
        }
        for bad in ["", "folder", "folder a/b", "flat out", "site-a"] {
            assert_eq!(Layout::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_directory_that_shipped_flat_stays_flat_and_a_new_one_gets_a_folder_for_good() {
        let temp = tempfile::tempdir().unwrap();
        let (old, new) = (temp.path().join("old"), temp.path().join("new"));
        std::fs::create_dir_all(&old).unwrap();
        std::fs::create_dir_all(&new).unwrap();
        std::fs::write(
            old.join(ship::SHIPPED_FILE),
            "archive/2026-11-27.jsonl.gz\n",
        )
        .unwrap();
        let site: Name = "site-a".parse().unwrap();

        assert_eq!(settle(&old, &site).unwrap(), Layout::Flat);
        assert_eq!(settle(&new, &site).unwrap(), Layout::Folder(site.clone()));
        // Its own shipping, and a later name, change nothing.
        std::fs::write(
            new.join(ship::SHIPPED_FILE),
            "archive/2026-11-27.jsonl.gz\n",
        )
        .unwrap();
        let renamed: Name = "site-z".parse().unwrap();
        assert_eq!(of_dir(&new, &renamed).unwrap(), Layout::Folder(site));
        assert_eq!(of_dir(&old, &renamed).unwrap(), Layout::Flat);
        assert_eq!(Layout::Flat.folder(), "");
    }
}
