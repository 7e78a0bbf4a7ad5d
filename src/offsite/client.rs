//! The bucket over HTTP: requests signed with `rusty-s3` (presigned
//! URLs, SigV4) and sent with the `reqwest` client already in the tree.
//! Only what rollcall does: put a new object (never over an old one),
//! get one, list a prefix; [`super::versions`] adds the versions and
//! Object Lock of what is there.

use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use reqwest::StatusCode;
use rusty_s3::actions::{ListObjectsV2, ListObjectsV2Response, S3Action};
use rusty_s3::{Bucket, UrlStyle};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::settings::{Lock, Settings};

/// How long a signed request stays valid: long enough for a slow upload.
const SIGNED_FOR: Duration = Duration::from_secs(3600);
/// A request that has not finished by then is a store that is down.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the S3 store at {endpoint} could not be reached: {reason}; check --s3-endpoint and the network"
    )]
    Unreachable { endpoint: String, reason: String },
    #[error("the S3 store refused {what}: HTTP {status}: {detail}")]
    Refused {
        what: String,
        status: u16,
        detail: String,
    },
    #[error("the S3 store's answer to {what} could not be read: {reason}")]
    Garbled { what: String, reason: String },
}

/// What a put did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    Created,
    /// An object of that name was there already; nothing was written.
    Existed,
}

/// One object in a listing, its name relative to the prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub name: String,
    pub size: u64,
}

/// The bucket and prefix of one log (or, for listing and reading them,
/// of every receiver's log under a shared prefix: see
/// [`super::layout`]).
#[derive(Debug, Clone)]
pub struct Store {
    http: reqwest::Client,
    bucket: Bucket,
    credentials: Option<rusty_s3::Credentials>,
    prefix: String,
    endpoint: String,
    lock: Option<Lock>,
}

impl Store {
    pub fn new(settings: &Settings) -> anyhow::Result<Self> {
        let (endpoint, style) = match &settings.endpoint {
            Some(endpoint) => (endpoint.clone(), UrlStyle::Path),
            None => (
                format!("https://s3.{}.amazonaws.com", settings.region),
                UrlStyle::VirtualHost,
            ),
        };
        let url = reqwest::Url::parse(&endpoint).map_err(|e| {
            anyhow::anyhow!(
                "--s3-endpoint {endpoint:?} is not a URL ({e}); give e.g. http://127.0.0.1:9000"
            )
        })?;
        let bucket = Bucket::new(
            url,
            style,
            settings.url.bucket.clone(),
            settings.region.clone(),
        )
        .map_err(|e| anyhow::anyhow!("{endpoint:?} cannot address a bucket: {e}"))?;
        let credentials = settings
            .credentials
            .as_ref()
            .map(|c| match &c.session_token {
                Some(token) => rusty_s3::Credentials::new_with_token(
                    c.access_key_id.clone(),
                    c.secret_access_key.expose(),
                    token.expose(),
                ),
                None => rusty_s3::Credentials::new(
                    c.access_key_id.clone(),
                    c.secret_access_key.expose(),
                ),
            });
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| anyhow::anyhow!("setting up the S3 client: {}", e.without_url()))?;
        Ok(Self {
            http,
            bucket,
            credentials,
            prefix: settings.url.prefix.clone(),
            endpoint,
            lock: settings.lock,
        })
    }

    /// The bucket's key of the object `name`.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// The same bucket with `folder` (empty, or ending in `/`) added to
    /// the prefix: the store of one receiver's objects.
    pub fn under(&self, folder: &str) -> Store {
        Store {
            prefix: format!("{}{folder}", self.prefix),
            ..self.clone()
        }
    }

    pub fn bucket_name(&self) -> &str {
        self.bucket.name()
    }

    /// Where `name` is, for messages: `s3://BUCKET/KEY`.
    pub fn location(&self, name: &str) -> String {
        format!("s3://{}/{}", self.bucket.name(), self.key(name))
    }

    /// The `--s3-lock-days` lock put on each upload, if any.
    pub fn lock(&self) -> Option<Lock> {
        self.lock
    }

    pub(super) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A signed GET of `key` with `query` (the bucket itself for an empty
    /// key, as the bucket-level subresources `?versions` and
    /// `?object-lock` are asked for).
    pub(super) fn signed_get(&self, key: &str, query: &[(&str, &str)]) -> reqwest::Url {
        let mut action = self.bucket.get_object(self.credentials.as_ref(), key);
        for (name, value) in query {
            action
                .query_mut()
                .insert(name.to_string(), value.to_string());
        }
        action.sign(SIGNED_FOR)
    }

    /// Writes `name` unless an object of that name exists (`If-None-Match:
    /// *`), with its SHA-256 for the store to check, and the Object Lock
    /// retention when `--s3-lock-days` was given.
    pub async fn put_new(&self, name: &str, body: Vec<u8>) -> Result<Put, StoreError> {
        let key = self.key(name);
        let checksum = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&body));
        let retain_until = self.lock.map(|lock| {
            let until = OffsetDateTime::now_utc() + time::Duration::days(lock.days.into());
            (
                lock.mode.header(),
                until
                    .replace_nanosecond(0)
                    .unwrap_or(until)
                    .format(&Rfc3339)
                    .unwrap_or_default(),
            )
        });
        let mut action = self.bucket.put_object(self.credentials.as_ref(), &key);
        let headers = action.headers_mut();
        headers.insert("if-none-match", "*");
        headers.insert("x-amz-sdk-checksum-algorithm", "SHA256");
        headers.insert("x-amz-checksum-sha256", checksum.clone());
        if let Some((mode, until)) = &retain_until {
            headers.insert("x-amz-object-lock-mode", *mode);
            headers.insert("x-amz-object-lock-retain-until-date", until.clone());
        }
        let mut request = self
            .http
            .put(action.sign(SIGNED_FOR))
            .header("if-none-match", "*")
            .header("x-amz-sdk-checksum-algorithm", "SHA256")
            .header("x-amz-checksum-sha256", checksum)
            .body(body);
        if let Some((mode, until)) = retain_until {
            request = request
                .header("x-amz-object-lock-mode", mode)
                .header("x-amz-object-lock-retain-until-date", until);
        }
        let what = format!("the upload of {key}");
        let response = request.send().await.map_err(|e| self.unreachable(e))?;
        match response.status() {
            status if status.is_success() => Ok(Put::Created),
            StatusCode::PRECONDITION_FAILED => Ok(Put::Existed),
            _ => Err(refused(what, response).await),
        }
    }

    /// The bytes of `name`, or `None` if there is no such object.
    pub async fn get(&self, name: &str) -> Result<Option<Bytes>, StoreError> {
        let key = self.key(name);
        let url = self
            .bucket
            .get_object(self.credentials.as_ref(), &key)
            .sign(SIGNED_FOR);
        let response = self.fetch(url).await?;
        let what = format!("the download of {key}");
        match response.status() {
            StatusCode::NOT_FOUND => Ok(None),
            status if status.is_success() => response
                .bytes()
                .await
                .map(Some)
                .map_err(|e| self.unreachable(e)),
            _ => Err(refused(what, response).await),
        }
    }

    /// Every object whose name starts with `under`, in name order.
    pub async fn list(&self, under: &str) -> Result<Vec<Listed>, StoreError> {
        let mut out = Vec::new();
        for page in self.list_pages(under, false).await? {
            for object in page.contents {
                if let Some(name) = object.key.strip_prefix(&self.prefix) {
                    out.push(Listed {
                        name: name.to_string(),
                        size: object.size.unwrap_or(0),
                    });
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The folders right under `under` (itself empty or ending in `/`):
    /// each `under` + `NAME/` that some object's name starts with, in
    /// name order, without listing the objects in them.
    pub async fn folders(&self, under: &str) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        for page in self.list_pages(under, true).await? {
            out.extend(
                page.common_prefixes.into_iter().filter_map(|folder| {
                    Some(folder.prefix.strip_prefix(&self.prefix)?.to_string())
                }),
            );
        }
        out.sort();
        Ok(out)
    }

    /// Every page of the listing of `under`; with `folders`, the names
    /// below a further `/` grouped into their folders.
    async fn list_pages(
        &self,
        under: &str,
        folders: bool,
    ) -> Result<Vec<ListObjectsV2Response>, StoreError> {
        let mut pages = Vec::new();
        let mut token: Option<String> = None;
        let prefix = self.key(under);
        loop {
            let mut action = ListObjectsV2::new(&self.bucket, self.credentials.as_ref());
            action.with_prefix(prefix.as_str());
            if folders {
                action.with_delimiter("/");
            }
            if let Some(token) = &token {
                action.with_continuation_token(token.as_str());
            }
            let url = action.sign(SIGNED_FOR);
            let what = format!("the listing of {prefix}");
            let response = self.fetch(url).await?;
            if !response.status().is_success() {
                return Err(refused(what, response).await);
            }
            let text = response.text().await.map_err(|e| self.unreachable(e))?;
            let page = ListObjectsV2::parse_response(&text).map_err(|e| StoreError::Garbled {
                what,
                reason: e.to_string(),
            })?;
            token = page.next_continuation_token.clone();
            pages.push(page);
            if token.is_none() {
                return Ok(pages);
            }
        }
    }

    pub(super) async fn fetch(&self, url: reqwest::Url) -> Result<reqwest::Response, StoreError> {
        self.http
            .get(url)
            .send()
            .await
            .map_err(|e| self.unreachable(e))
    }

    /// The error for a request that got no answer. reqwest's own message
    /// names the URL, whose signature and key id must not be shown.
    pub(super) fn unreachable(&self, error: reqwest::Error) -> StoreError {
        let error = error.without_url();
        let mut reason = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            reason = format!("{reason}: {cause}");
            source = cause.source();
        }
        StoreError::Unreachable {
            endpoint: self.endpoint.clone(),
            reason,
        }
    }
}

/// The store's own error code and message, from its XML answer.
pub(super) async fn refused(what: String, response: reqwest::Response) -> StoreError {
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    let tag = |name: &str| super::xml::text(&body, name);
    let detail = match (tag("Code"), tag("Message")) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code,
        _ => "no error detail".to_string(),
    };
    StoreError::Refused {
        what,
        status,
        detail,
    }
}
