//! Where the bucket is and who we are to it: `--s3-url`, `--s3-endpoint`,
//! the Object Lock flags, and region and credentials found the standard
//! AWS way (environment, then the shared credentials and config files).

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::secret::Secret;

/// `s3://BUCKET/PREFIX`: the bucket, and the key prefix every object of
/// this log goes under (empty, or ending in `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Url {
    pub bucket: String,
    pub prefix: String,
}

impl FromStr for S3Url {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| format!("{text:?} is not s3://BUCKET/PREFIX: {why}");
        let rest = text
            .strip_prefix("s3://")
            .ok_or_else(|| bad("it must start with s3://"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !valid {
            return Err(bad(
                "the bucket name must be 3 to 63 lowercase letters, digits, dots or hyphens",
            ));
        }
        let prefix = prefix.trim_matches('/');
        let prefix = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}/")
        };
        Ok(S3Url {
            bucket: bucket.to_string(),
            prefix,
        })
    }
}

impl fmt::Display for S3Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

/// The Object Lock retention mode set on each object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LockMode {
    /// Nobody, the bucket's root account included, can delete or shorten
    /// the lock before it expires.
    #[default]
    Compliance,
    /// Users with s3:BypassGovernanceRetention can still delete: for trials.
    Governance,
}

impl LockMode {
    pub fn header(self) -> &'static str {
        match self {
            LockMode::Compliance => "COMPLIANCE",
            LockMode::Governance => "GOVERNANCE",
        }
    }
}

/// The per-object lock: mode and days from the upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lock {
    pub mode: LockMode,
    pub days: u32,
}

/// Access key, secret key and session token, the secret parts redacted in
/// every `Debug` and `Display`.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
}

/// Everything needed to talk to the bucket.
#[derive(Debug, Clone)]
pub struct Settings {
    pub url: S3Url,
    /// `None` for AWS itself (virtual-host style at the region's endpoint);
    /// any other store is addressed path style at this URL.
    pub endpoint: Option<String>,
    pub region: String,
    pub credentials: Option<Credentials>,
    pub lock: Option<Lock>,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(
        "{0} is set but {1} is not: set both (or neither, to read the shared credentials file)"
    )]
    HalfCredentials(&'static str, &'static str),
    #[error(
        "no credentials for profile {profile:?} in {file}: add aws_access_key_id and aws_secret_access_key there, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    )]
    NoProfile { profile: String, file: String },
}

/// An environment lookup, so tests can pass their own.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment, empty values counting as unset.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Region: AWS_REGION, AWS_DEFAULT_REGION, the profile's `region` in the
/// config file, else us-east-1 (what MinIO and moto accept).
pub fn region(env: Env) -> String {
    env("AWS_REGION")
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .or_else(|| {
            let profile = profile(env);
            let section = if profile == "default" {
                profile
            } else {
                format!("profile {profile}")
            };
            shared_file(env, "AWS_CONFIG_FILE", "config")
                .and_then(|text| ini_section(&text, &section).remove("region"))
        })
        .unwrap_or_else(|| "us-east-1".to_string())
}

/// Credentials: AWS_ACCESS_KEY_ID with AWS_SECRET_ACCESS_KEY (and
/// AWS_SESSION_TOKEN), else the profile (AWS_PROFILE, or `default`) in the
/// shared credentials file. `None` when there are none at all: requests
/// then go unsigned, which only a public test store accepts.
pub fn credentials(env: Env) -> Result<Option<Credentials>, SettingsError> {
    match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        (Some(access_key_id), Some(secret)) => {
            return Ok(Some(Credentials {
                access_key_id,
                secret_access_key: Secret::new(secret),
                session_token: env("AWS_SESSION_TOKEN").map(Secret::new),
            }));
        }
        (Some(_), None) => {
            return Err(SettingsError::HalfCredentials(
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
            ));
        }
        (None, Some(_)) => {
            return Err(SettingsError::HalfCredentials(
                "AWS_SECRET_ACCESS_KEY",
                "AWS_ACCESS_KEY_ID",
            ));
        }
        (None, None) => {}
    }
    let profile = profile(env);
    let Some(text) = shared_file(env, "AWS_SHARED_CREDENTIALS_FILE", "credentials") else {
        return Ok(None);
    };
    let mut section = ini_section(&text, &profile);
    match (
        section.remove("aws_access_key_id"),
        section.remove("aws_secret_access_key"),
    ) {
        (Some(access_key_id), Some(secret)) => Ok(Some(Credentials {
            access_key_id,
            secret_access_key: Secret::new(secret),
            session_token: section.remove("aws_session_token").map(Secret::new),
        })),
        _ if env("AWS_PROFILE").is_none() => Ok(None),
        _ => Err(SettingsError::NoProfile {
            profile,
            file: shared_path(env, "AWS_SHARED_CREDENTIALS_FILE", "credentials")
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        }),
    }
}

fn profile(env: Env) -> String {
    env("AWS_PROFILE").unwrap_or_else(|| "default".to_string())
}

fn shared_path(env: Env, variable: &str, name: &str) -> Option<PathBuf> {
    env(variable)
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|home| PathBuf::from(home).join(".aws").join(name)))
}

fn shared_file(env: Env, variable: &str, name: &str) -> Option<String> {
    std::fs::read_to_string(shared_path(env, variable, name)?).ok()
}

/// The `key = value` pairs of `[section]` in an AWS shared file.
fn ini_section(text: &str, wanted: &str) -> HashMap<String, String> {
    let mut inside = false;
    let mut out = HashMap::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = name.trim() == wanted;
        } else if inside && let Some((key, value)) = line.split_once('=') {
            out.insert(key.trim().to_string(), value.trim().to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_s3_url_names_a_bucket_and_a_prefix() {
        let url: S3Url = "s3://audit-bucket/rollcall/prod/".parse().unwrap();
        assert_eq!(url.bucket, "audit-bucket");
        assert_eq!(url.prefix, "rollcall/prod/");
        assert_eq!("s3://audit-bucket".parse::<S3Url>().unwrap().prefix, "");
        for bad in ["audit-bucket/x", "s3://UPPER/x", "s3://ab/x", "https://b/x"] {
            assert!(bad.parse::<S3Url>().is_err(), "{bad}");
        }
    }

    #[test]
    fn credentials_come_from_the_environment_then_the_profile_and_never_print() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("credentials");
        std::fs::write(
            &file,
            "[default]\naws_access_key_id = AKIDEFAULT\naws_secret_access_key = s3cr3t-default\n[audit]\naws_access_key_id=AKIAUDIT\naws_secret_access_key=s3cr3t-audit\n",
        )
        .unwrap();
        let file = file.display().to_string();
        let lookup = |pairs: Vec<(&'static str, String)>| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.clone())
            }
        };
        let from_env = lookup(vec![
            ("AWS_ACCESS_KEY_ID", "AKIENV".into()),
            ("AWS_SECRET_ACCESS_KEY", "s3cr3t-env".into()),
        ]);
        let found = credentials(&from_env).unwrap().unwrap();
        assert_eq!(found.access_key_id, "AKIENV");
        assert!(!format!("{found:?}").contains("s3cr3t"));

        let profiled = lookup(vec![
            ("AWS_SHARED_CREDENTIALS_FILE", file.clone()),
            ("AWS_PROFILE", "audit".into()),
        ]);
        let found = credentials(&profiled).unwrap().unwrap();
        assert_eq!(found.access_key_id, "AKIAUDIT");
        assert_eq!(found.secret_access_key.expose(), "s3cr3t-audit");

        let missing = lookup(vec![
            ("AWS_SHARED_CREDENTIALS_FILE", file),
            ("AWS_PROFILE", "nope".into()),
        ]);
        assert!(credentials(&missing).is_err());
        let half = lookup(vec![("AWS_ACCESS_KEY_ID", "AKIENV".into())]);
        assert!(credentials(&half).is_err());
    }
}
