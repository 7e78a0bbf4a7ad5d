//! Head checkpoints: the durable head (`seq`, `hash`, time) as a small
//! locked object `checkpoints/SEQ.json`, uploaded by `serve` every
//! `--checkpoint-every` when the head has moved, and once more at
//! shutdown. The host cannot take one back, so a log later rewritten or
//! cut behind a checkpoint contradicts it.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::client::{Store, StoreError};
use super::ship::{Confirmed, alarm, put_confirmed};
use crate::log::head::Head;
use crate::log::record::format_timestamp;
use crate::metrics::Metrics;

pub const CHECKPOINT_DIR: &str = "checkpoints";
pub const DEFAULT_EVERY: Duration = Duration::from_secs(300);

/// One checkpoint object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub seq: u64,
    pub hash: String,
    /// When it was taken (RFC 3339, UTC).
    pub time: String,
}

impl Checkpoint {
    /// Zero-padded, so names sort by seq.
    pub fn name(seq: u64) -> String {
        format!("{CHECKPOINT_DIR}/{seq:020}.json")
    }
}

/// Uploads `head` as a checkpoint. A checkpoint of that seq already in the
/// bucket counts as done (the head did not move since) only if it names
/// the same hash; another is [`Confirmed::Differs`].
pub async fn upload(store: &Store, head: &Head) -> Result<Confirmed, StoreError> {
    let checkpoint = Checkpoint {
        seq: head.seq,
        hash: head.hash.clone(),
        time: format_timestamp(time::OffsetDateTime::now_utc()),
    };
    let mut body = serde_json::to_vec(&checkpoint).expect("a checkpoint always serialises");
    body.push(b'\n');
    let name = Checkpoint::name(head.seq);
    // Its time differs from run to run; the seq and hash are what it says.
    put_confirmed(store, &name, &body, |theirs| {
        serde_json::from_slice::<Checkpoint>(theirs)
            .is_ok_and(|theirs| theirs.seq == head.seq && theirs.hash == head.hash)
    })
    .await
}

/// Uploads the head of `dir` every `every` when it moved, until `shutdown`
/// resolves.
pub struct Checkpoints {
    pub dir: PathBuf,
    pub store: Arc<Store>,
    pub every: Duration,
    pub metrics: Arc<Metrics>,
    last: Option<Head>,
}

impl Checkpoints {
    pub fn new(dir: PathBuf, store: Arc<Store>, every: Duration, metrics: Arc<Metrics>) -> Self {
        Self {
            dir,
            store,
            every,
            metrics,
            last: None,
        }
    }

    /// Also warns when the bucket has no Object Lock, from a task of its
    /// own, so a slow store delays neither the server nor a checkpoint.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Self {
        let mut shutdown = std::pin::pin!(shutdown);
        let store = self.store.clone();
        tokio::spawn(async move { super::lock::warn_if_unlocked(&store).await });
        let mut ticks = tokio::time::interval(self.every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => self.take().await,
                () = &mut shutdown => return self,
            }
        }
    }

    /// Uploads the head if it moved since the last checkpoint; failures
    /// are logged and counted, and the next tick tries again.
    pub async fn take(&mut self) {
        let head = match Head::read(&self.dir) {
            Ok(Some(head)) => head,
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(error = %format!("{error:#}"), "no head to checkpoint");
                return;
            }
        };
        if self.last.as_ref() == Some(&head) {
            return;
        }
        match upload(&self.store, &head).await {
            Ok(Confirmed::Differs) => {
                alarm(
                    &self.metrics,
                    &self.store,
                    &Checkpoint::name(head.seq),
                    &format!("the head {head}"),
                );
                // Once per head: the next head gets a name of its own.
                self.last = Some(head);
            }
            Ok(Confirmed::Uploaded | Confirmed::Present) => {
                self.metrics
                    .checkpoints_uploaded
                    .fetch_add(1, Ordering::Relaxed);
                tracing::info!(seq = head.seq, "head checkpoint uploaded");
                self.last = Some(head);
            }
            Err(error) => {
                self.metrics
                    .checkpoint_failures
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%error, "head checkpoint not uploaded; retrying at the next one");
            }
        }
    }
}

/// Where restore keeps downloaded checkpoints: `DIR/checkpoints/`.
pub fn local_dir(dir: &Path) -> PathBuf {
    dir.join(CHECKPOINT_DIR)
}
