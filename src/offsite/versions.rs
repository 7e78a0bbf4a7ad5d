//! What the bucket keeps behind a name: every version of each object
//! (ListObjectVersions), one version's bytes with its Object Lock
//! retention, and the bucket's Object Lock configuration. In a versioned
//! bucket a plain PutObject over a name makes a new current version and
//! leaves the old one; the oldest is what rollcall shipped, so it is the
//! evidence.

use bytes::Bytes;
use reqwest::StatusCode;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::client::{Store, StoreError, refused};
use super::settings::{Lock, LockMode};
use super::xml;

/// One version of an object, or a delete marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub id: String,
    pub modified: Option<OffsetDateTime>,
    /// A delete marker: the name looks deleted, the older versions stay.
    pub deleted: bool,
}

/// Every version of one name (relative to the prefix), oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versions {
    pub name: String,
    pub versions: Vec<Version>,
}

impl Versions {
    /// The first upload: what rollcall put there, as the store never lets
    /// rollcall's conditional put write over a name.
    pub fn oldest(&self) -> Option<&Version> {
        self.versions.iter().find(|v| !v.deleted)
    }
}

/// The Object Lock retention of one version, as the store reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    pub mode: String,
    pub until: Option<OffsetDateTime>,
}

/// One version's bytes and retention.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub bytes: Bytes,
    pub retention: Option<Retention>,
}

/// The bucket's Object Lock configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketLock {
    /// No Object Lock: every object can be overwritten or deleted.
    Off,
    /// Object Lock, and the retention the bucket gives an object that
    /// names none.
    On { default: Option<Lock> },
}

/// Days in the year of a default retention given in years, as S3 counts.
const DAYS_A_YEAR: u32 = 365;

impl Store {
    /// Every version of every object whose name starts with `under`, by
    /// name, each name's versions oldest first.
    pub async fn list_versions(&self, under: &str) -> Result<Vec<Versions>, StoreError> {
        let prefix = self.key(under);
        let what = format!("the listing of the versions under {prefix}");
        let mut out: Vec<Versions> = Vec::new();
        let mut markers: Option<(String, String)> = None;
        loop {
            let mut query = vec![("versions", ""), ("prefix", prefix.as_str())];
            if let Some((key, version)) = &markers {
                query.push(("key-marker", key.as_str()));
                query.push(("version-id-marker", version.as_str()));
            }
            let response = self.fetch(self.signed_get("", &query)).await?;
            if !response.status().is_success() {
                return Err(refused(what, response).await);
            }
            let body = response.text().await.map_err(|e| self.unreachable(e))?;
            // The store lists each name's versions newest first.
            for (kind, entry) in xml::elements_named(&body, &["Version", "DeleteMarker"]) {
                let (Some(key), Some(id)) =
                    (xml::text(entry, "Key"), xml::text(entry, "VersionId"))
                else {
                    return Err(StoreError::Garbled {
                        what,
                        reason: "a version without Key or VersionId".to_string(),
                    });
                };
                let Some(name) = key.strip_prefix(self.prefix()) else {
                    continue;
                };
                let version = Version {
                    id,
                    modified: xml::text(entry, "LastModified")
                        .and_then(|t| OffsetDateTime::parse(&t, &Rfc3339).ok()),
                    deleted: kind == 1,
                };
                match out.last_mut() {
                    Some(last) if last.name == name => last.versions.push(version),
                    _ => out.push(Versions {
                        name: name.to_string(),
                        versions: vec![version],
                    }),
                }
            }
            if xml::text(&body, "IsTruncated").as_deref() != Some("true") {
                break;
            }
            match (
                xml::text(&body, "NextKeyMarker"),
                xml::text(&body, "NextVersionIdMarker"),
            ) {
                (Some(key), Some(version)) => markers = Some((key, version)),
                _ => {
                    return Err(StoreError::Garbled {
                        what,
                        reason: "a truncated listing without markers to go on from".to_string(),
                    });
                }
            }
        }
        for entry in &mut out {
            entry.versions.reverse();
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Every version of exactly `name`, oldest first; empty if none.
    pub async fn versions_of(&self, name: &str) -> Result<Vec<Version>, StoreError> {
        Ok(self
            .list_versions(name)
            .await?
            .into_iter()
            .find(|v| v.name == name)
            .map(|v| v.versions)
            .unwrap_or_default())
    }

    /// The bytes of the oldest version of `name`, or `None` if there is
    /// no such object.
    pub async fn get_oldest(&self, name: &str) -> Result<Option<Fetched>, StoreError> {
        let versions = Versions {
            name: name.to_string(),
            versions: self.versions_of(name).await?,
        };
        match versions.oldest() {
            Some(version) => self.get_version(name, &version.id).await,
            None => Ok(None),
        }
    }

    /// One version of `name`: its bytes and Object Lock retention.
    pub async fn get_version(
        &self,
        name: &str,
        version_id: &str,
    ) -> Result<Option<Fetched>, StoreError> {
        let key = self.key(name);
        let url = self.signed_get(&key, &[("versionId", version_id)]);
        let response = self.fetch(url).await?;
        let what = format!("the download of {key} version {version_id}");
        match response.status() {
            StatusCode::NOT_FOUND => Ok(None),
            status if status.is_success() => {
                let header = |name: &str| {
                    response
                        .headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string)
                };
                let retention = header("x-amz-object-lock-mode").map(|mode| Retention {
                    mode,
                    until: header("x-amz-object-lock-retain-until-date")
                        .and_then(|t| OffsetDateTime::parse(&t, &Rfc3339).ok()),
                });
                let bytes = response.bytes().await.map_err(|e| self.unreachable(e))?;
                Ok(Some(Fetched { bytes, retention }))
            }
            _ => Err(refused(what, response).await),
        }
    }

    /// The bucket's Object Lock configuration (`?object-lock`).
    pub async fn object_lock(&self) -> Result<BucketLock, StoreError> {
        let response = self
            .fetch(self.signed_get("", &[("object-lock", "")]))
            .await?;
        let status = response.status();
        if status == StatusCode::NOT_FOUND {
            return Ok(BucketLock::Off);
        }
        if !status.is_success() {
            return Err(refused("reading the bucket's Object Lock".to_string(), response).await);
        }
        let body = response.text().await.map_err(|e| self.unreachable(e))?;
        Ok(parse_bucket_lock(&body))
    }
}

fn parse_bucket_lock(body: &str) -> BucketLock {
    if xml::text(body, "ObjectLockEnabled").as_deref() != Some("Enabled") {
        return BucketLock::Off;
    }
    let mode = match xml::text(body, "Mode").as_deref() {
        Some("COMPLIANCE") => Some(LockMode::Compliance),
        Some("GOVERNANCE") => Some(LockMode::Governance),
        _ => None,
    };
    let days = xml::text(body, "Days")
        .and_then(|d| d.parse::<u32>().ok())
        .or_else(|| {
            xml::text(body, "Years")
                .and_then(|y| y.parse::<u32>().ok())
                .map(|y| y.saturating_mul(DAYS_A_YEAR))
        });
    BucketLock::On {
        default: mode.zip(days).map(|(mode, days)| Lock { mode, days }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_lock_is_read_with_its_default_retention_in_days_or_years() {
        let ns = r#"xmlns="http://s3.amazonaws.com/doc/2006-03-01/""#;
        let off = format!("<ObjectLockConfiguration {ns}></ObjectLockConfiguration>");
        assert_eq!(parse_bucket_lock(&off), BucketLock::Off);
        let bare = format!(
            "<ObjectLockConfiguration {ns}><ObjectLockEnabled>Enabled</ObjectLockEnabled></ObjectLockConfiguration>"
        );
        assert_eq!(parse_bucket_lock(&bare), BucketLock::On { default: None });
        let years = format!(
            "<ObjectLockConfiguration {ns}><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>GOVERNANCE</Mode><Years>2</Years></DefaultRetention></Rule></ObjectLockConfiguration>"
        );
        assert_eq!(
            parse_bucket_lock(&years),
            BucketLock::On {
                default: Some(Lock {
                    mode: LockMode::Governance,
                    days: 730
                })
            }
        );
    }
}
