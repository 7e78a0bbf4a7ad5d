//! Object Lock as evidence needs it: a bucket without it keeps nothing
//! from being overwritten or deleted, and an object locked for less than
//! configured can be deleted before its time.

use time::OffsetDateTime;

use super::client::Store;
use super::settings::Lock;
use super::versions::{BucketLock, Retention};

/// How far an object's retain-until date may fall short of its upload
/// time plus the configured days: the date is computed on the host
/// before the upload, and the store stamps the upload when it lands.
const CLOCK_SLACK: time::Duration = time::Duration::hours(1);

/// The warning for a bucket without Object Lock.
pub fn unlocked_bucket(store: &Store) -> String {
    format!(
        "the bucket of {} has no Object Lock: anyone with its credentials, this host included, can overwrite or delete what was shipped; make a bucket with Object Lock (see the README's Off the machine section)",
        store.location("")
    )
}

/// For `archive` and `serve` at start: warns when the bucket has no
/// Object Lock, or its configuration cannot be read.
pub async fn warn_if_unlocked(store: &Store) {
    match store.object_lock().await {
        Ok(BucketLock::Off) => tracing::warn!("{}", unlocked_bucket(store)),
        Ok(BucketLock::On { .. }) => {}
        Err(error) => {
            tracing::warn!(%error, "could not read the bucket's Object Lock configuration")
        }
    }
}

/// The lock an object should have: `--s3-lock-days`, else the bucket's
/// default retention.
pub fn expected(store: &Store, bucket: BucketLock) -> Option<Lock> {
    store.lock().or(match bucket {
        BucketLock::On { default } => default,
        BucketLock::Off => None,
    })
}

/// What is wrong with an object's retention against `expected`, if
/// anything. `uploaded` is when the store took the object.
pub fn shortfall(
    retention: Option<&Retention>,
    expected: Lock,
    uploaded: Option<OffsetDateTime>,
) -> Option<String> {
    let wanted_mode = expected.mode.header();
    let Some(retention) = retention else {
        return Some(format!(
            "not locked, but {} days {wanted_mode} are configured: it can be deleted",
            expected.days
        ));
    };
    if !retention.mode.eq_ignore_ascii_case(wanted_mode) {
        return Some(format!(
            "locked {}, not {wanted_mode} as configured",
            retention.mode.to_uppercase()
        ));
    }
    let until = retention.until?;
    let uploaded = uploaded?;
    let wanted = uploaded + time::Duration::days(expected.days.into());
    (until + CLOCK_SLACK < wanted).then(|| {
        format!(
            "locked until {until}, less than the {} days configured from its upload at {uploaded}",
            expected.days
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offsite::LockMode;
    use time::macros::datetime;

    const THIRTY: Lock = Lock {
        mode: LockMode::Compliance,
        days: 30,
    };

    fn locked(mode: &str, until: OffsetDateTime) -> Retention {
        Retention {
            mode: mode.to_string(),
            until: Some(until),
        }
    }

    #[test]
    fn an_object_is_short_of_its_lock_when_unlocked_in_another_mode_or_for_fewer_days() {
        let up = datetime!(2026-11-01 12:00 UTC);
        assert!(
            shortfall(None, THIRTY, Some(up))
                .unwrap()
                .contains("not locked")
        );
        let governance = locked("GOVERNANCE", up + time::Duration::days(30));
        assert!(
            shortfall(Some(&governance), THIRTY, Some(up))
                .unwrap()
                .contains("GOVERNANCE, not COMPLIANCE")
        );
        let short = locked("COMPLIANCE", up + time::Duration::days(29));
        assert!(
            shortfall(Some(&short), THIRTY, Some(up))
                .unwrap()
                .contains("less than the 30 days")
        );
        let enough = locked(
            "COMPLIANCE",
            up + time::Duration::days(30) - time::Duration::minutes(5),
        );
        assert_eq!(shortfall(Some(&enough), THIRTY, Some(up)), None);
    }
}
