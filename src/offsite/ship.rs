//! Shipping: every archive and digest not yet confirmed in the bucket is
//! uploaded (never over an existing object), and what the bucket holds is
//! noted in `DIR/.offsite-shipped`, which retention reads before deleting
//! an archive. An object is confirmed only by its content: a name in the
//! bucket that holds something else is an alarm, and the local file stays. `archive/retired.jsonl` is not shipped: it grows in place,
//! and a locked object cannot; the archives it names stay in the bucket,
//! locked, whatever happens to the host's copies.

use std::collections::BTreeSet;
use std::future::Future;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use time::OffsetDateTime;

use super::client::{Put, Store, StoreError};
use crate::log::archive::Copies;
use crate::log::days::{self, ARCHIVE_DIR};
use crate::log::files;
use crate::metrics::Metrics;

/// The local record of the objects confirmed in the bucket, one name a line.
pub const SHIPPED_FILE: &str = ".offsite-shipped";
const ARCHIVE_SUFFIX: &str = ".jsonl.gz";
const DIGEST_SUFFIX: &str = ".digest.json";
/// Tries per request before a run gives up (the next run tries again).
const ATTEMPTS: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// A file that belongs in the bucket: its object name and local path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalObject {
    pub name: String,
    pub path: PathBuf,
}

/// What a shipping run did.
#[derive(Debug, Default)]
pub struct Shipped {
    /// Objects uploaded by this run.
    pub uploaded: Vec<String>,
    /// Objects found already in the bucket and now noted as confirmed.
    pub confirmed: Vec<String>,
    /// Archives still not confirmed in the bucket, oldest first.
    pub unshipped: Vec<String>,
    /// Local files whose name holds something else in the bucket: kept
    /// here, never counted as shipped.
    pub mismatched: Vec<LocalObject>,
    /// Why the run stopped early, if it did.
    pub failure: Option<StoreError>,
}

/// Every archive and digest in `DIR/archive`, in name order (so by day).
pub fn local_objects(dir: &Path) -> io::Result<Vec<LocalObject>> {
    let archive_dir = dir.join(ARCHIVE_DIR);
    let entries = match std::fs::read_dir(&archive_dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        entries => entries?,
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let day = name
            .strip_suffix(ARCHIVE_SUFFIX)
            .or_else(|| name.strip_suffix(DIGEST_SUFFIX));
        if day.and_then(days::parse_day_name).is_some() {
            out.push(LocalObject {
                name: format!("{ARCHIVE_DIR}/{name}"),
                path: entry.path(),
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The objects `DIR/.offsite-shipped` says the bucket holds.
pub fn confirmed(dir: &Path) -> io::Result<BTreeSet<String>> {
    match std::fs::read_to_string(dir.join(SHIPPED_FILE)) {
        Ok(text) => Ok(text.lines().map(str::to_string).collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeSet::new()),
        Err(e) => Err(e),
    }
}

/// For retention: the objects `DIR/.offsite-shipped` says the bucket
/// holds, so a file it does not is kept past the retention period.
#[derive(Debug)]
pub struct BucketCopies;

impl Copies for BucketCopies {
    fn held(&self, dir: &Path) -> anyhow::Result<BTreeSet<String>> {
        confirmed(dir).with_context(|| format!("reading {}", dir.display()))
    }
}

/// Retention's question, answered by the bucket's copies.
pub fn bucket_copies() -> Arc<dyn Copies> {
    Arc::new(BucketCopies)
}

fn note_confirmed(dir: &Path, name: &str) -> anyhow::Result<()> {
    let path = dir.join(SHIPPED_FILE);
    let mut file =
        files::open_append(&path).with_context(|| format!("opening {}", path.display()))?;
    file.write_all(format!("{name}\n").as_bytes())
        .and_then(|()| file.sync_data())
        .with_context(|| format!("writing {}", path.display()))
}

/// Runs `request` up to [`ATTEMPTS`] times, waiting twice as long after
/// each failure.
pub async fn with_backoff<T, F>(mut request: impl FnMut() -> F) -> Result<T, StoreError>
where
    F: Future<Output = Result<T, StoreError>>,
{
    let mut wait = FIRST_BACKOFF;
    let mut attempt = 1;
    loop {
        match request().await {
            Ok(value) => return Ok(value),
            Err(error) if attempt >= ATTEMPTS => return Err(error),
            Err(error) => {
                tracing::warn!(%error, attempt, "S3 request failed; retrying");
                tokio::time::sleep(wait).await;
                wait *= 2;
                attempt += 1;
            }
        }
    }
}

/// What the bucket holds under a name rollcall ships something to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmed {
    /// Uploaded now; the store checked its SHA-256 on the way in.
    Uploaded,
    /// There already, and the same.
    Present,
    /// There already, and something else.
    Differs,
}

/// Puts `body` under `name` unless something is there, and otherwise
/// confirms what is there: a name alone (a listing hit, a 412) proves
/// nothing. `same` says whether the stored bytes are what rollcall meant
/// to ship.
pub async fn put_confirmed(
    store: &Store,
    name: &str,
    body: &[u8],
    same: impl Fn(&[u8]) -> bool,
) -> Result<Confirmed, StoreError> {
    match with_backoff(|| store.put_new(name, body.to_vec())).await? {
        Put::Created => Ok(Confirmed::Uploaded),
        Put::Existed => confirm_present(store, name, same).await,
    }
}

/// Compares the oldest version under `name`, the one shipped first and
/// the one `verify --remote` and `restore` read, with `same`.
pub async fn confirm_present(
    store: &Store,
    name: &str,
    same: impl Fn(&[u8]) -> bool,
) -> Result<Confirmed, StoreError> {
    match with_backoff(|| store.get_oldest(name)).await? {
        Some(fetched) if same(&fetched.bytes) => Ok(Confirmed::Present),
        Some(_) => Ok(Confirmed::Differs),
        None => Err(StoreError::Garbled {
            what: format!("the object {}", store.location(name)),
            reason: "the store has the name but lists no version of it".to_string(),
        }),
    }
}

/// Logs and counts an object whose content is not what rollcall shipped
/// or meant to ship under its name.
pub fn alarm(metrics: &Metrics, store: &Store, name: &str, local: &str) {
    metrics.offsite_mismatches.fetch_add(1, Ordering::Relaxed);
    tracing::error!(
        object = %store.location(name),
        local,
        "the bucket holds something else under this name: the local copy is kept and not counted as shipped; find out who wrote the object"
    );
}

/// Uploads every archive and digest the bucket is not known to hold, and
/// confirms by content those it has a name for. A store that is down ends
/// the run with [`Shipped::failure`] set; local files are never touched.
/// Errors only for local trouble.
pub async fn ship(dir: &Path, store: &Store, metrics: &Metrics) -> anyhow::Result<Shipped> {
    let mut local = local_objects(dir).with_context(|| format!("listing {}", dir.display()))?;
    // Closed days of the console's access log go with the archives.
    let access = crate::log::access::closed_days(dir)
        .with_context(|| format!("listing {}/access", dir.display()))?;
    local.extend(
        access
            .into_iter()
            .map(|(name, path)| LocalObject { name, path }),
    );
    let mut confirmed = confirmed(dir).with_context(|| format!("reading {}", dir.display()))?;
    let pending: Vec<_> = local
        .iter()
        .filter(|object| !confirmed.contains(&object.name))
        .collect();
    let mut shipped = Shipped::default();
    if !pending.is_empty() {
        // With the slash: in the old layout, `archive` alone would list
        // the folder of a receiver named `archive-2` too.
        let under = format!("{ARCHIVE_DIR}/");
        match with_backoff(|| store.list(&under)).await {
            Err(error) => shipped.failure = Some(error),
            Ok(remote) => {
                let remote: BTreeSet<_> = remote.into_iter().map(|o| o.name).collect();
                for object in pending {
                    let body = std::fs::read(&object.path)
                        .with_context(|| format!("reading {}", object.path.display()))?;
                    let same = |theirs: &[u8]| theirs == body.as_slice();
                    let outcome = if remote.contains(&object.name) {
                        confirm_present(store, &object.name, same).await
                    } else {
                        put_confirmed(store, &object.name, &body, same).await
                    };
                    match outcome {
                        Ok(Confirmed::Uploaded) => shipped.uploaded.push(object.name.clone()),
                        Ok(Confirmed::Present) => shipped.confirmed.push(object.name.clone()),
                        Ok(Confirmed::Differs) => {
                            alarm(
                                metrics,
                                store,
                                &object.name,
                                &object.path.display().to_string(),
                            );
                            shipped.mismatched.push(object.clone());
                            continue;
                        }
                        Err(error) => {
                            shipped.failure = Some(error);
                            break;
                        }
                    }
                    note_confirmed(dir, &object.name)?;
                    confirmed.insert(object.name.clone());
                }
            }
        }
    }
    let unshipped: Vec<_> = local
        .iter()
        .filter(|o| o.name.ends_with(ARCHIVE_SUFFIX) && !confirmed.contains(&o.name))
        .collect();
    shipped.unshipped = unshipped.iter().map(|o| o.name.clone()).collect();
    record_metrics(
        metrics,
        &shipped,
        unshipped.first().map(|o| o.name.as_str()),
    );
    Ok(shipped)
}

fn record_metrics(metrics: &Metrics, shipped: &Shipped, oldest_unshipped: Option<&str>) {
    metrics
        .offsite_shipped_objects
        .fetch_add(shipped.uploaded.len() as u64, Ordering::Relaxed);
    if shipped.failure.is_some() {
        metrics
            .offsite_ship_failures
            .fetch_add(1, Ordering::Relaxed);
    }
    metrics
        .unshipped_archives
        .store(shipped.unshipped.len() as u64, Ordering::Relaxed);
    // An archive is waiting from the end of its day.
    let since = oldest_unshipped
        .and_then(|name| name.strip_prefix(&format!("{ARCHIVE_DIR}/")))
        .and_then(|name| name.strip_suffix(ARCHIVE_SUFFIX))
        .and_then(days::parse_day_name)
        .map(|date| (date + time::Duration::days(1)).midnight().assume_utc())
        .map_or(0, |end: OffsetDateTime| end.unix_timestamp().max(1) as u64);
    metrics
        .oldest_unshipped_since
        .store(since, Ordering::Relaxed);
}

/// How long `serve` waits before retrying a failed shipping run, doubling
/// up to [`MAX_RETRY_WAIT`].
const FIRST_RETRY_WAIT: Duration = Duration::from_secs(60);
const MAX_RETRY_WAIT: Duration = Duration::from_secs(3600);

/// For `serve`: ships, and while the store is down retries with backoff
/// until it takes everything or `give_up_after` has passed (the next
/// nightly run tries again). Local trouble is logged, not retried.
pub async fn ship_retrying(dir: &Path, store: &Store, metrics: &Metrics, give_up_after: Duration) {
    let started = tokio::time::Instant::now();
    let mut wait = FIRST_RETRY_WAIT;
    loop {
        match ship(dir, store, metrics).await {
            Ok(Shipped {
                failure: None,
                uploaded,
                ..
            }) => {
                tracing::info!(uploaded = uploaded.len(), "shipped to the S3 bucket");
                return;
            }
            Ok(Shipped {
                failure: Some(error),
                unshipped,
                ..
            }) => tracing::warn!(
                %error,
                unshipped = unshipped.len(),
                retry_in_secs = wait.as_secs(),
                "shipping to the S3 bucket failed; the archives are safe here and will be shipped later"
            ),
            Err(error) => {
                tracing::error!(error = %format!("{error:#}"), "shipping to the S3 bucket failed");
                return;
            }
        }
        if started.elapsed() + wait > give_up_after {
            return;
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(MAX_RETRY_WAIT);
    }
}
