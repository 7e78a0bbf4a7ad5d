//! The checks on the S3 bucket, when shipping is configured: it answers,
//! it has Object Lock, and it refuses to write over an object.

use super::{Check, bounded};
use crate::offsite::Store;
use crate::offsite::client::Put;
use crate::offsite::lock;
use crate::offsite::versions::BucketLock;

/// The one object `doctor` writes, under the log's prefix. It is written
/// once (the later runs' writes are refused, which is the point) and,
/// not being an archive or a checkpoint, `verify --remote` only notes it
/// and `restore` leaves it.
pub const PROBE: &str = "doctor/probe";
const PROBE_BODY: &[u8] =
    b"written by rollcall doctor to check that the store refuses to overwrite an object\n";

/// `bucket` and `bucket write`.
pub async fn checks(store: &anyhow::Result<Option<Store>>) -> Vec<Check> {
    let store = match store {
        Ok(Some(store)) => store,
        Ok(None) => {
            let why = "shipping is not configured (no --s3-url)";
            return vec![
                Check::skipped("bucket", why),
                Check::skipped("bucket write", why),
            ];
        }
        Err(e) => {
            return unusable(
                format!("{e:#}"),
                "fix the S3 settings (docs/offsite.md#flags, #credentials)",
                "the bucket could not be set up",
            );
        }
    };
    let where_ = store.location("");
    let lock_check = match bounded(store.object_lock()).await {
        Ok(BucketLock::On { default }) => {
            let retention = match (store.lock(), default) {
                (Some(lock), _) => format!(
                    "each object locked {} days {}",
                    lock.days,
                    lock.mode.header()
                ),
                (None, Some(lock)) => format!(
                    "default retention {} days {}",
                    lock.days,
                    lock.mode.header()
                ),
                (None, None) => {
                    "no default retention and no --s3-lock-days: objects are shipped unlocked"
                        .to_string()
                }
            };
            if store.lock().is_none() && default.is_none() {
                Check::warn(
                    "bucket",
                    format!("{where_}: reachable, Object Lock on, {retention}"),
                    "give --s3-lock-days, or a default retention to the bucket (docs/offsite.md#bucket-setup)",
                )
            } else {
                Check::ok(
                    "bucket",
                    format!("{where_}: reachable, Object Lock on, {retention}"),
                )
            }
        }
        Ok(BucketLock::Off) => Check::fail(
            "bucket",
            lock::unlocked_bucket(store),
            "Object Lock can only be turned on when a bucket is created: make a new one (docs/offsite.md#bucket-setup) and point --s3-url at it",
        ),
        Err(e) => {
            return unusable(
                format!("{where_}: {e}"),
                "check --s3-endpoint, the network and the credentials (s3:GetBucketObjectLockConfiguration)",
                "the bucket did not answer",
            );
        }
    };
    vec![lock_check, overwrite(store).await]
}

/// `bucket` failed, so `bucket write` is not tried.
fn unusable(found: String, fix: &str, why: &str) -> Vec<Check> {
    vec![
        Check::fail("bucket", found, fix),
        Check::skipped("bucket write", why),
    ]
}

/// Writes [`PROBE`] if it is not there, then again: the second write must
/// be refused, as every shipment relies on.
async fn overwrite(store: &Store) -> Check {
    const CHECK: &str = "bucket write";
    let location = store.location(PROBE);
    let fix = "give the credentials s3:PutObject (and s3:PutObjectRetention) on the bucket";
    if let Err(e) = bounded(store.put_new(PROBE, PROBE_BODY.to_vec())).await {
        return Check::fail(CHECK, format!("writing {location}: {e}"), fix);
    }
    match bounded(store.put_new(PROBE, PROBE_BODY.to_vec())).await {
        Ok(Put::Existed) => Check::ok(
            CHECK,
            format!(
                "a write over {location} was refused (If-None-Match): nothing shipped is overwritten"
            ),
        ),
        Ok(Put::Created) => Check::fail(
            CHECK,
            format!(
                "the store wrote over {location}: it ignores If-None-Match, so a shipment could replace what is there"
            ),
            "use a store that honours conditional writes (AWS S3, MinIO, Ceph RGW recent releases); with Object Lock the first version still stands as evidence",
        ),
        Err(e) => Check::fail(CHECK, format!("writing {location} again: {e}"), fix),
    }
}
