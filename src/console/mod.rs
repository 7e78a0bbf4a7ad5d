//! The web console (`serve --console ADDR`): a second listener where a
//! compliance officer logs in, searches the record, looks at a room's
//! roster and gaps or a person's rooms, checks integrity, and downloads a
//! search as CSV, all without a shell. Plain server-rendered HTML; the
//! stylesheet is compiled in. Given other receivers (`serve --dir DIR
//! --dir OTHER`), the search, room and person pages read the merged index
//! of every receiver's log (`DIR/merged.sqlite`); integrity, verify and
//! the download stay this receiver's own log.
//!
//! - [`auth`]: password, sessions, CSRF tokens, the failed-login limit.
//! - [`access`]: the console's own append-only access log.
//! - [`search`]: the search form, what it means as a filter of the index
//!   ([`crate::index::pages`], which answers every page a page at a time),
//!   and the export filter of a search.
//! - `routes`: the warp filters and handlers (`rooms`: the room and
//!   person pages; `reading`: the index a page reads); `pages`: the HTML;
//!   `download`: the streamed CSV; `checks`: background `verify` runs.

pub mod access;
pub mod auth;
mod checks;
mod download;
mod pages;
mod reading;
mod rooms;
mod routes;
pub mod search;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ipnet::IpNet;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::clock::Clock;
use crate::listener::{self, Limits};
use crate::receiver::Dirs;
use crate::secret::Secret;
use crate::webhook::routes::AppState;
use access::AccessLog;
use auth::Auth;
use checks::Checks;

/// The console's own settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    /// `ROLLCALL_CONSOLE_PASSWORD`, if set; else `DIR/.console-password`.
    pub password: Option<Secret>,
    /// The session cookie is always `Secure` (otherwise only when a
    /// trusted proxy says the browser came over HTTPS); so it is whenever
    /// the console itself serves TLS.
    pub secure_cookie: bool,
    /// A single sign-on proxy's header naming the signed-in user, trusted
    /// instead of the password when present.
    pub trust_header: Option<String>,
    /// `--console-trusted-proxy`: the peers whose proxy header and
    /// `X-Forwarded-Proto` are believed; empty: loopback only.
    pub trusted_proxies: Vec<IpNet>,
    /// How long a download waits for the browser to take a chunk before
    /// it is dropped ([`DOWNLOAD_STALL_TIMEOUT`] unless a test says).
    pub download_stall: Duration,
}

impl Settings {
    /// Refuses a trusted header on an address others can reach with no
    /// proxy named: anyone reaching the port could say who they are.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.trust_header.is_some()
            && !self.listen.ip().is_loopback()
            && self.trusted_proxies.is_empty()
        {
            anyhow::bail!(
                "--console {} with --console-trust-header: trusting the header from loopback only, yet the console listens where other machines can reach it; add --console-trusted-proxy CIDR naming your sign-on proxy (e.g. --console-trusted-proxy 10.0.0.5/32), or listen on a loopback address",
                self.listen
            );
        }
        Ok(())
    }
}

pub use download::STALL_TIMEOUT as DOWNLOAD_STALL_TIMEOUT;

/// What the console's handlers share.
pub(crate) struct State {
    dir: PathBuf,
    /// This receiver and the others whose logs the pages read, merged;
    /// `None`: this log alone.
    merged: Option<Dirs>,
    auth: Auth,
    access: AccessLog,
    /// "Now" for a roster, and the catch-ups' timestamps.
    clock: Arc<dyn Clock>,
    checks: Arc<Checks>,
    download_stall: Duration,
}

/// The console, bound and ready to serve.
pub struct Console {
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    state: Arc<State>,
}

impl Console {
    /// Reads or makes the password, opens the access log, and binds;
    /// serves HTTPS with `tls` (the webhook listener's pair). With
    /// `merged` (this receiver first), the pages read every receiver's
    /// log.
    pub async fn build(
        settings: &Settings,
        app: Arc<AppState>,
        merged: Option<Dirs>,
        tls: Option<TlsAcceptor>,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let dir = app.dir.clone();
        let password = auth::password(&dir, settings.password.clone())?;
        let access = AccessLog::open(&dir, clock.clone(), app.metrics.clone())?;
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("listening for the console on {}", settings.listen))?;
        let state = State {
            auth: Auth::new(
                password,
                settings.secure_cookie || tls.is_some(),
                clock.clone(),
            )
            .trusting(settings.trust_header.clone(), &settings.trusted_proxies),
            access,
            checks: Arc::new(Checks::new(dir.clone(), clock.clone())),
            clock,
            download_stall: settings.download_stall,
            dir,
            merged,
        };
        Ok(Self {
            listener,
            tls,
            state: Arc::new(state),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` resolves, through the same accept loop as
    /// the webhooks (header timeout, connection cap), then drains its
    /// connections. Runs `verify` in the background meanwhile. Pages
    /// answer from the index (kept current by serve's indexer) as far as
    /// it has got, and say so.
    pub async fn run(self, limits: Limits, shutdown: impl Future<Output = ()> + Send + 'static) {
        self.state.checks.start();
        tracing::info!(
            address = %self.local_addr(),
            scheme = %if self.tls.is_some() { "https" } else { "http" },
            access_log = %self.state.access.path().display(),
            "the console is listening"
        );
        let state = self.state.clone();
        listener::serve(
            self.listener,
            routes::routes(self.state),
            limits,
            self.tls,
            shutdown,
        )
        .await
        .shutdown()
        .await;
        state.access.flush().await;
    }
}
