//! Shared test support: the in-process server ([`app`]), the real binary
//! ([`bin`]), a faulty disk ([`disk`]), generated logs ([`logs`]), two
//! receivers side by side ([`receivers`]), the fake Webex API
//! ([`fake_webex`]), the S3 server ([`moto`]), DuckDB ([`duckdb`]) and
//! test certificates ([`tls`]). Each test binary uses only part of it.
#![allow(dead_code)]

pub mod app;
pub mod bin;
pub mod browser;
pub mod console;
pub mod disk;
pub mod duckdb;
pub mod fake_webex;
pub mod logs;
pub mod moto;
pub mod receivers;
pub mod tls;

use std::path::PathBuf;

/// A sample payload from `tests/fixtures/webex/`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = fixtures_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading fixture {}: {e}", path.display()))
}

/// Real-shaped Webex payloads, kept in the repo.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/webex")
}

/// A program the tests drive from a virtualenv scripts/test makes under
/// target/: the path in `variable` if set, else `default` (relative to
/// the crate); fails the test with how to get it when it is not there.
pub fn installed(variable: &str, default: &str, what: &str) -> PathBuf {
    let path = std::env::var_os(variable)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(default));
    assert!(
        path.exists(),
        "{what} not found at {}: run scripts/test (it installs it there), or set {variable}",
        path.display()
    );
    path
}

/// How long a test polls for something the server does in the
/// background before failing; never a measure of speed.
const POLL_GUARD: std::time::Duration = std::time::Duration::from_secs(60);

/// Polls `probe` until it holds, failing the test after [`POLL_GUARD`].
pub async fn eventually<F: std::future::Future<Output = bool>>(
    what: &str,
    mut probe: impl FnMut() -> F,
) {
    let started = std::time::Instant::now();
    while !probe().await {
        assert!(started.elapsed() < POLL_GUARD, "gave up waiting for {what}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The server's `GET /metrics` text.
pub async fn metrics(address: &str) -> String {
    reqwest::get(format!("{address}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}
