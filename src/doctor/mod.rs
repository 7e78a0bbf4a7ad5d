//! `rollcall doctor`: every check a running receiver depends on, each
//! saying what it found and what to do about a failure. [`local`] checks
//! the directory, its lock and the webhook secret, [`webex`] the token,
//! its scopes, the clock, the public URL and the webhooks, [`bucket`] the
//! S3 bucket and [`tls`] the certificate and key. The checks only look:
//! nothing is created, repaired or re-registered, except the one small
//! object [`bucket`] writes to see that the store refuses to overwrite it.

pub mod bucket;
pub mod local;
pub mod tls;
pub mod webex;

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;

use crate::offsite::Store;
use crate::receiver::Name;
use crate::secret::Secret;
use crate::tls::TlsFiles;
use crate::webhook::payload::Target;

/// The version of the `--json` shape; bumped only when a field changes
/// meaning or goes.
pub const JSON_VERSION: u32 = 1;

/// Each network call gets this long, so `doctor` never hangs on a store
/// or an API that does not answer.
pub const NETWORK_TIMEOUT: Duration = Duration::from_secs(5);

/// What one check concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// Skipped: the check could not run (nothing configured for it); says why.
    Skipped,
    /// Works today, but something is about to break or is unsafe.
    Warn,
    Fail,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Skipped => "skipped",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        }
    }
}

/// One check's line: its name, what it found and, unless it passed,
/// what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub check: String,
    pub status: Status,
    pub found: String,
    pub fix: Option<String>,
}

impl Check {
    pub fn ok(check: impl Into<String>, found: impl Into<String>) -> Self {
        Self::new(check, Status::Ok, found, None)
    }

    pub fn warn(
        check: impl Into<String>,
        found: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self::new(check, Status::Warn, found, Some(fix.into()))
    }

    pub fn fail(
        check: impl Into<String>,
        found: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self::new(check, Status::Fail, found, Some(fix.into()))
    }

    pub fn skipped(check: impl Into<String>, why: impl Into<String>) -> Self {
        Self::new(check, Status::Skipped, why, None)
    }

    fn new(
        check: impl Into<String>,
        status: Status,
        found: impl Into<String>,
        fix: Option<String>,
    ) -> Self {
        Self {
            check: check.into(),
            status,
            found: found.into(),
            fix,
        }
    }

    /// `FAIL    token: Webex refused WEBEX_TOKEN (401) -- fix: ...`
    pub fn line(&self) -> String {
        let mut line = format!("{:<8}{}: {}", self.status.label(), self.check, self.found);
        if let Some(fix) = &self.fix {
            line.push_str(" -- fix: ");
            line.push_str(fix);
        }
        line
    }
}

/// Every check, in the order they are printed.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    /// No check failed (warnings and skipped checks allowed).
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.status != Status::Fail)
    }

    /// `fail` if any check failed, else `warn` if any warned, else `ok`.
    pub fn status(&self) -> Status {
        match self.checks.iter().map(|c| c.status).max() {
            Some(Status::Fail) => Status::Fail,
            Some(Status::Warn) => Status::Warn,
            _ => Status::Ok,
        }
    }

    /// The `--json` document (docs/service.md#doctor).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "version": JSON_VERSION,
            "status": self.status(),
            "checks": self.checks,
        })
    }

    /// `12 ok, 1 warn, 1 FAIL, 2 skipped`
    pub fn summary(&self) -> String {
        let count = |status: Status| self.checks.iter().filter(|c| c.status == status).count();
        [Status::Ok, Status::Warn, Status::Fail, Status::Skipped]
            .iter()
            .map(|&status| format!("{} {}", count(status), status.label()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// What `doctor` checks against: the same settings `serve` takes.
#[derive(Debug)]
pub struct Settings {
    pub dir: PathBuf,
    /// `--receiver` (`ROLLCALL_RECEIVER`), if given.
    pub receiver: Option<Name>,
    /// `ROLLCALL_SECRET`, if set.
    pub secret: Option<Secret>,
    /// `WEBEX_TOKEN`, if set.
    pub token: Option<Secret>,
    pub api_url: String,
    /// `ROLLCALL_PUBLIC_URL` as given, checked here rather than refused
    /// by the command line, so a bad one is one failed check among others.
    pub public_url: Option<String>,
    pub target: Target,
    pub rooms: Vec<String>,
    /// `--events-api`: the token must be a compliance officer's.
    pub events_api: bool,
    /// The bucket (`--s3-url`), or why it could not be set up.
    pub store: anyhow::Result<Option<Store>>,
    /// `--tls-cert/--tls-key`, or why they do not make a pair.
    pub tls: Result<Option<TlsFiles>, String>,
}

/// Runs every check; the Webex, bucket and TLS checks side by side.
pub async fn run(settings: &Settings, now: OffsetDateTime) -> Report {
    let mut checks = local::directory(&settings.dir);
    let (secret_check, secret) = local::secret(&settings.dir, settings.secret.clone());
    checks.push(secret_check);
    let (receiver_check, receiver) = local::receiver(&settings.dir, settings.receiver.as_ref());
    checks.push(receiver_check);
    let (webex, bucket) = tokio::join!(
        webex::checks(settings, receiver.as_ref(), secret.as_ref()),
        bucket::checks(&settings.store),
    );
    checks.extend(webex);
    checks.extend(bucket);
    checks.push(tls::check(&settings.tls, now));
    Report { checks }
}

/// `call` if it answers within [`NETWORK_TIMEOUT`], else a message
/// saying it did not.
pub async fn bounded<T, E: std::fmt::Display>(
    call: impl Future<Output = Result<T, E>>,
) -> Result<T, Bounded<E>> {
    match tokio::time::timeout(NETWORK_TIMEOUT, call).await {
        Ok(result) => result.map_err(Bounded::Error),
        Err(_) => Err(Bounded::TimedOut),
    }
}

/// A network call that failed, or did not answer in time.
#[derive(Debug)]
pub enum Bounded<E> {
    Error(E),
    TimedOut,
}

impl<E: std::fmt::Display> std::fmt::Display for Bounded<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bounded::Error(error) => write!(f, "{error}"),
            Bounded::TimedOut => write!(f, "no answer within {} s", NETWORK_TIMEOUT.as_secs()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_fails_on_any_failure_and_warns_on_any_warning() {
        let mut report = Report {
            checks: vec![
                Check::ok("a", "fine"),
                Check::skipped("b", "not configured"),
            ],
        };
        assert_eq!(report.status(), Status::Ok);
        report.checks.push(Check::warn("c", "soon", "renew"));
        assert_eq!(report.status(), Status::Warn);
        assert!(report.passed());
        report.checks.push(Check::fail("d", "broken", "mend it"));
        assert_eq!(report.status(), Status::Fail);
        assert!(!report.passed());
        assert_eq!(report.summary(), "1 ok, 1 warn, 1 FAIL, 1 skipped");
        assert_eq!(report.checks[3].line(), "FAIL    d: broken -- fix: mend it");
    }
}
