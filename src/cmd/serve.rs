//! `rollcall serve`: the webhook receiver. It writes the first `--dir`
//! only; any further `--dir` is another receiver's log, read (never
//! written) with this one into the merged index the console's pages
//! read.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use super::args;
use time::Time;
use time::macros::format_description;

use crate::cli::Global;
use crate::clock::SystemClock;
use crate::console;
use crate::listener;
use crate::log::archive;
use crate::offsite;
use crate::reconcile;
use crate::secret;
use crate::startup::{Application, Settings};
use crate::systemd::Service;
use crate::webex::WebexSettings;
use crate::webex::client::token_from_env;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, env = "ROLLCALL_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Accept deliveries without a valid X-Spark-Signature. Anyone who can
    /// reach the server can then write to the log: for local trials only.
    #[arg(long, env = "ROLLCALL_INSECURE_ACCEPT_UNSIGNED")]
    pub insecure_accept_unsigned: bool,
    /// The base URL Webex calls. With WEBEX_TOKEN set, the server registers
    /// its webhooks at start and rechecks them every 10 minutes.
    #[arg(long, env = "ROLLCALL_PUBLIC_URL", value_parser = args::parse_public_url)]
    pub public_url: Option<String>,
    #[command(flatten)]
    pub tls: args::TlsArgs,
    #[command(flatten)]
    pub receiver: args::ReceiverArgs,
    #[command(flatten)]
    pub registration: args::RegistrationArgs,
    #[command(flatten)]
    pub api: args::ApiArgs,
    /// When to archive closed days each night, HH:MM UTC.
    #[arg(
        long,
        value_name = "HH:MM",
        env = "ROLLCALL_ARCHIVE_AT",
        default_value = "00:05",
        value_parser = parse_hh_mm
    )]
    pub archive_at: Time,
    /// Do not archive closed days nightly (run `rollcall archive` yourself).
    #[arg(long, env = "ROLLCALL_NO_ARCHIVE")]
    pub no_archive: bool,
    /// Do not keep DIR/index.sqlite current: the read commands catch it up
    /// from the log when they run. The console's pages need it.
    #[arg(long, env = "ROLLCALL_NO_INDEX", conflicts_with = "console")]
    pub no_index: bool,
    /// With the nightly archival, also delete archives older than N days.
    /// Never by default.
    #[arg(
        long,
        value_name = "N",
        env = "ROLLCALL_RETAIN_DAYS",
        value_parser = archive::parse_retain_days,
        conflicts_with = "no_archive"
    )]
    pub retain_days: Option<u32>,
    /// Also serve the web console on this address (keep it internal; the
    /// password comes from ROLLCALL_CONSOLE_PASSWORD, else
    /// DIR/.console-password). Off by default.
    #[arg(long, value_name = "ADDR", env = "ROLLCALL_CONSOLE")]
    pub console: Option<SocketAddr>,
    /// Behind a single sign-on proxy (e.g. oauth2-proxy), take this
    /// header (e.g. X-Forwarded-Email) as the signed-in user instead of
    /// asking for the console password; believed only from
    /// --console-trusted-proxy peers.
    #[arg(
        long,
        value_name = "HEADER",
        env = "ROLLCALL_CONSOLE_TRUST_HEADER",
        requires = "console"
    )]
    pub console_trust_header: Option<String>,
    /// A proxy allowed to sign users in with --console-trust-header and
    /// to say the browser came over HTTPS (X-Forwarded-Proto), as an
    /// address or CIDR; repeat for more (comma-separated in the
    /// environment). Default: loopback only (127.0.0.0/8 and ::1).
    #[arg(
        long,
        value_name = "CIDR",
        env = "ROLLCALL_CONSOLE_TRUSTED_PROXY",
        value_delimiter = ',',
        value_parser = parse_proxy,
        requires = "console"
    )]
    pub console_trusted_proxy: Vec<ipnet::IpNet>,
    #[command(flatten)]
    pub s3: args::S3Args,
    /// With --s3-url, upload the durable head as a locked checkpoint this
    /// often when it has moved (seconds, or e.g. 30s, 5m, 1h), and at
    /// shutdown.
    #[arg(
        long,
        value_name = "PERIOD",
        env = "ROLLCALL_CHECKPOINT_EVERY",
        default_value = "5m",
        value_parser = offsite::parse_every
    )]
    pub checkpoint_every: std::time::Duration,
    /// With WEBEX_TOKEN, reconcile with Webex at start and then this often
    /// (e.g. 90s, 30m, 1h; 0 or off: only at start).
    #[arg(
        long,
        value_name = "INTERVAL",
        env = "ROLLCALL_RECONCILE_EVERY",
        default_value = "1h",
        value_parser = reconcile::parse_every
    )]
    pub reconcile_every: reconcile::Every,
    #[command(flatten)]
    pub reconcile: super::reconcile::PaceArgs,
}

pub fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let (dir, merged_with) = dirs(global, args.console.is_some())?;
    crate::heap::map_large_allocations();
    let caps = open_file_caps(args.console.is_some());
    let settings = Settings {
        receiver: args.receiver.receiver,
        max_connections: caps.webhooks,
        console_max_connections: caps.console,
        secret: secret::from_env(),
        insecure_accept_unsigned: args.insecure_accept_unsigned,
        webex: WebexSettings {
            token: token_from_env(),
            api_url: args.api.api_url,
            public_url: args.public_url,
            target: args.registration.target,
            rooms: args.registration.rooms,
            ..WebexSettings::default()
        },
        console: args.console.map(|listen| console::Settings {
            listen,
            password: console::auth::password_from_env(),
            // Under --tls-cert the console makes it Secure itself; else a
            // trusted proxy's X-Forwarded-Proto says when the browser used
            // HTTPS.
            secure_cookie: false,
            trust_header: args.console_trust_header,
            trusted_proxies: args.console_trusted_proxy,
            download_stall: console::DOWNLOAD_STALL_TIMEOUT,
        }),
        archive: (!args.no_archive).then(|| {
            let options = archive::Options {
                retain_days: args.retain_days,
                copies: args.s3.s3_url.is_some().then(offsite::ship::bucket_copies),
            };
            (args.archive_at, options)
        }),
        offsite: args.s3.store()?.map(|store| offsite::Offsite {
            store: Arc::new(store),
            checkpoint_every: args.checkpoint_every,
        }),
        reconcile: Some(reconcile::Settings {
            every: args.reconcile_every.0,
            api_rate: args.reconcile.api_rate,
            events_api: args.reconcile.events_api(),
        }),
        index: !args.no_index,
        merged_with,
        tls: args.tls.files()?,
        systemd: Service::from_env(),
        ..Settings::new(dir, args.listen)
    };
    let runtime = super::runtime()?;
    runtime.block_on(async {
        // Handlers go in before the "listening" line: a SIGTERM sent as
        // soon as it appears must stop the server cleanly, not kill it.
        let shutdown = shutdown_signal()?;
        let app = Application::build(settings, Arc::new(SystemClock)).await?;
        app.run_until_stopped(shutdown).await
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The directory serve writes, and the other receivers' logs it reads
/// for the console. Those are read only by the console's pages: without
/// the console there is nothing to read them for.
fn dirs(global: &Global, console: bool) -> anyhow::Result<(PathBuf, Vec<PathBuf>)> {
    let Some((own, others)) = global.dirs.split_first() else {
        anyhow::bail!("serve needs a log directory: pass --dir");
    };
    if !others.is_empty() && !console {
        anyhow::bail!(
            "serve writes to the first --dir only; a further --dir is another receiver's log, which serve reads only for the console's pages (merged into {}): add --console ADDR, or give one --dir",
            own.join(crate::index::MERGED_FILE).display()
        );
    }
    Ok((own.clone(), others.to_vec()))
}

/// An address (one host) or a network in CIDR form.
fn parse_proxy(text: &str) -> Result<ipnet::IpNet, String> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| {
            format!("{text:?} is not an address or a CIDR network (e.g. 10.0.0.5 or 10.0.0.0/24)")
        })
}

/// Raises the open-file limit as far as it goes and splits it between the
/// listeners, so a flood on one leaves descriptors for the other and for
/// the log's own files.
fn open_file_caps(console: bool) -> listener::Caps {
    let open_files = listener::raise_open_files().unwrap_or_else(|error| {
        tracing::warn!(%error, "could not read the open-file limit; assuming 1024");
        1024
    });
    let caps = listener::caps(open_files, console);
    tracing::info!(
        open_files,
        webhook_connections = caps.webhooks,
        console_connections = caps.console,
        reserved = caps.reserve,
        "connection caps sized from the open-file limit"
    );
    caps
}

fn parse_hh_mm(text: &str) -> Result<Time, String> {
    Time::parse(text, format_description!("[hour]:[minute]"))
        .map_err(|_| format!("{text:?} is not a time of day as HH:MM (24-hour, UTC)"))
}

/// Installs the SIGINT and SIGTERM handlers now; the future resolves on
/// either signal.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing a SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("installing a SIGINT handler")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = term.recv() => {}
        }
    })
}
