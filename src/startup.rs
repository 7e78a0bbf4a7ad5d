//! Building and running the server: [`Application::build`] takes the
//! directory lock, recovers the log, loads the TLS pair if any, binds the
//! listener (port 0 works, and [`Application::local_addr`] tells the real
//! one), and
//! [`Application::run_until_stopped`] serves until the shutdown future
//! resolves, then finishes in-flight writes.

use std::fs::File;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use time::Time;
use tokio::net::TcpListener;

use crate::clock::Clock;
use crate::console::{self, Console};
use crate::index::follow::Opening;
use crate::listener::{self, Limits};
use crate::log::files;
use crate::log::head::Head;
use crate::log::record::{Event, Record};
use crate::log::writer::{Disk, LogWriter, RealDisk};
use crate::metrics::Metrics;
use crate::offsite::Offsite;
use crate::offsite::checkpoint::Checkpoints;
use crate::receiver::{self, Dirs, Name};
use crate::reconcile::{self, Reconciler};
use crate::secret::{self, Secret, SecretSource};
use crate::systemd::Service;
use crate::tls::{Tls, TlsFiles, reload::Reloader};
use crate::webex::client::Client;
use crate::webex::titles::TitleLookups;
use crate::webex::{Upkeep, WebexSettings};
use crate::webhook::routes::{self, AppState};
use crate::{log::archive, schedule::Nightly};

/// When `serve` archives closed days, UTC, unless told otherwise.
pub const DEFAULT_ARCHIVE_AT: Time = time::macros::time!(00:05);
/// How long in-flight requests get to finish at shutdown, unless told
/// otherwise.
const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the start-up round with the Webex API may hold up serving.
const WEBEX_START_BOUND: Duration = Duration::from_secs(15);

/// Everything `serve` needs to know.
#[derive(Debug, Clone)]
pub struct Settings {
    pub dir: PathBuf,
    pub listen: SocketAddr,
    /// `--receiver` (`ROLLCALL_RECEIVER`), if given: else the name
    /// `DIR/.receiver` keeps, else the host name.
    pub receiver: Option<Name>,
    /// `ROLLCALL_SECRET`, if set.
    pub secret: Option<Secret>,
    pub insecure_accept_unsigned: bool,
    /// A client must send a request's headers within this time, and an
    /// idle keep-alive connection is closed after it.
    pub header_read_timeout: Duration,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// The same for the console's listener.
    pub console_max_connections: usize,
    /// The Webex API: token, public URL, self-registration, room titles.
    pub webex: WebexSettings,
    /// When to archive closed days each night (UTC), and how; `None` turns
    /// the nightly archival off.
    pub archive: Option<(Time, archive::Options)>,
    /// How long in-flight requests get to finish at shutdown.
    pub drain_timeout: Duration,
    /// The write and fdatasync calls of the log: the real ones, or a
    /// test's faulty ones.
    pub disk: Arc<dyn Disk>,
    /// The web console's own listener; `None` for none.
    pub console: Option<console::Settings>,
    /// The S3 bucket to ship archives and head checkpoints to, if any.
    pub offsite: Option<Offsite>,
    /// Reconciling with Webex at start and periodically (with a token);
    /// `None`: never. `Settings::new` leaves it off, `rollcall serve`
    /// turns it on.
    pub reconcile: Option<reconcile::Settings>,
    /// Keep `DIR/index.sqlite` caught up on a thread of its own.
    pub index: bool,
    /// Other receivers' log directories (`serve --dir DIR --dir OTHER`):
    /// never written, read with this log into `DIR/merged.sqlite`, which
    /// the indexer keeps current and the console's pages read.
    pub merged_with: Vec<PathBuf>,
    /// Serve HTTPS on both listeners with this pair, reloaded when it
    /// changes; `None`: plain HTTP.
    pub tls: Option<TlsFiles>,
    /// Started by systemd with a notify socket: READY, STATUS, STOPPING
    /// and the writer's watchdog pings. `Settings::new` leaves it off,
    /// `rollcall serve` takes it from the environment.
    pub systemd: Option<Service>,
}

impl Settings {
    /// Settings for `dir` and `listen`, everything else at its default.
    pub fn new(dir: PathBuf, listen: SocketAddr) -> Self {
        Self {
            dir,
            listen,
            receiver: None,
            secret: None,
            insecure_accept_unsigned: false,
            header_read_timeout: Duration::from_secs(10),
            max_connections: 4096,
            console_max_connections: 256,
            webex: WebexSettings::default(),
            archive: Some((DEFAULT_ARCHIVE_AT, archive::Options::default())),
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            disk: Arc::new(RealDisk),
            console: None,
            offsite: None,
            reconcile: None,
            index: true,
            merged_with: Vec::new(),
            tls: None,
            systemd: None,
        }
    }
}

pub struct Application {
    listener: TcpListener,
    state: Arc<AppState>,
    limits: Limits,
    console_limits: Limits,
    drain_timeout: Duration,
    /// The periodic recheck of the Webex registrations, with its period.
    upkeep: Option<(Upkeep, Duration)>,
    nightly: Option<Nightly>,
    console: Option<Console>,
    checkpoints: Option<Checkpoints>,
    /// The reconcile at start and every so often after it.
    reconcile: Option<(Reconciler, Option<Duration>)>,
    /// The index, opened and checked, for the indexer to follow.
    index: Option<Opening>,
    /// The TLS pair both listeners serve, and what reloads it.
    tls: Option<(Tls, Reloader)>,
    systemd: Option<Service>,
    /// This receiver's name, for its stop record.
    receiver: Name,
    _lock: File,
}

impl Application {
    pub async fn build(settings: Settings, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        if let Some(console) = &settings.console {
            console.check()?;
        }
        let tls = settings.tls.map(load_tls).transpose()?;
        let dir = settings.dir;
        crate::offsite::mirror::refuse_to_write(&dir, "serve")?;
        let lock = lock_dir(&dir).await?;
        // Named once the directory is this server's alone, so no other
        // serve can be writing another name there meanwhile.
        let name = receiver::resolve(&dir, settings.receiver.as_ref())?;
        receiver::remember(&dir, &name)?;
        let secret = if settings.insecure_accept_unsigned {
            tracing::warn!(
                "--insecure-accept-unsigned: signatures are NOT checked; anyone who can reach this server can write to the audit log"
            );
            None
        } else {
            let (secret, source) = secret::webhook_secret(&dir, settings.secret)?;
            match source {
                SecretSource::Environment => tracing::info!("webhook secret from ROLLCALL_SECRET"),
                SecretSource::File(path) => {
                    tracing::info!(file = %path.display(), "webhook secret from file")
                }
                SecretSource::Generated(path) => tracing::info!(
                    file = %path.display(),
                    "generated a new webhook secret (mode 0600): give its contents as the `secret` of your Webex webhooks, or let `rollcall subscribe` register them"
                ),
            }
            Some(secret)
        };
        let metrics = Arc::new(Metrics::default());
        let watchdog = settings.systemd.and_then(|service| service.watchdog);
        let writer = LogWriter::open_watched(
            &dir,
            clock.clone(),
            metrics.clone(),
            settings.disk,
            watchdog,
        )?;
        let started = clock.now();
        mark_start(&writer, &name).await?;
        let reconcile = reconcile::for_serve(
            settings.reconcile,
            &settings.webex,
            clock.clone(),
            metrics.clone(),
            &writer,
            started,
        )?
        .map(|(reconciler, every)| (reconciler.using_index(settings.index), every));
        let offsite = settings
            .offsite
            .map(|offsite| own_folder(&dir, &name, offsite))
            .transpose()?;
        let nightly = settings.archive.map(|(at, options)| {
            let nightly =
                Nightly::new(dir.clone(), clock.clone(), at, metrics.clone()).options(options);
            match &offsite {
                Some(offsite) => nightly.offsite(offsite.store.clone()),
                None => nightly,
            }
        });
        let checkpoints = offsite.map(|offsite| {
            Checkpoints::new(
                dir.clone(),
                offsite.store,
                offsite.checkpoint_every,
                metrics.clone(),
            )
        });
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("listening on {}", settings.listen))?;
        let (titles, upkeep) =
            webex(&settings.webex, &name, secret.clone(), metrics.clone()).await?;
        let state = Arc::new(AppState {
            dir,
            writer,
            secret,
            metrics,
            titles,
        });
        // This receiver first: the merged index lives in its directory.
        // The others are named when they are read, off this start.
        let merged = (!settings.merged_with.is_empty())
            .then(|| Dirs::new(state.dir.clone(), settings.merged_with));
        let index = if settings.index {
            let (dir, clock, metrics) = (state.dir.clone(), clock.clone(), state.metrics.clone());
            let merged = merged.clone();
            Some(
                tokio::task::spawn_blocking(move || Opening::open(dir, merged, clock, metrics))
                    .await
                    .context("opening the index")?,
            )
        } else {
            None
        };
        let console = match &settings.console {
            Some(console) => {
                let tls = tls.as_ref().map(|(tls, _)| tls.acceptor());
                Some(Console::build(console, state.clone(), merged, tls, clock).await?)
            }
            None => None,
        };
        Ok(Self {
            listener,
            state,
            limits: Limits {
                header_read_timeout: settings.header_read_timeout,
                max_connections: settings.max_connections,
            },
            console_limits: Limits {
                header_read_timeout: settings.header_read_timeout,
                max_connections: settings.console_max_connections,
            },
            drain_timeout: settings.drain_timeout,
            upkeep: upkeep.map(|upkeep| (upkeep, settings.webex.recheck_every)),
            nightly,
            console,
            checkpoints,
            reconcile,
            index,
            tls,
            systemd: settings.systemd,
            receiver: name,
            _lock: lock,
        })
    }

    /// How many nightly archival runs have finished, to wait on; `None`
    /// when nightly archival is off.
    pub fn archive_runs(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        self.nightly.as_ref().map(Nightly::runs)
    }

    /// How many reconcile runs have finished, to wait on; `None` without
    /// a token or with reconciliation off.
    pub fn reconcile_runs(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        self.reconcile
            .as_ref()
            .map(|(reconciler, _)| reconciler.runs())
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Where the console listens, if it is on.
    pub fn console_addr(&self) -> Option<SocketAddr> {
        self.console.as_ref().map(Console::local_addr)
    }

    /// Serves until `shutdown` resolves; then stops accepting, lets
    /// in-flight deliveries finish, and flushes the writer.
    pub async fn run_until_stopped(
        mut self,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let upkeep = self
            .upkeep
            .take()
            .map(|(upkeep, every)| tokio::spawn(upkeep.run(every)));
        let (stop_checkpoints, checkpoints_stopped) = tokio::sync::oneshot::channel::<()>();
        let checkpoints = self.checkpoints.take().map(|checkpoints| {
            tokio::spawn(checkpoints.run(async move {
                let _ = checkpoints_stopped.await;
            }))
        });
        let reconcile = self.reconcile.take().map(|(reconciler, every)| {
            let state = self.state.clone();
            tokio::spawn(async move { reconciler.run_every(&state.writer, every).await })
        });
        let (stop_nightly, nightly_stopped) = tokio::sync::watch::channel(());
        let nightly = self.nightly.take().map(|nightly| {
            let mut stopped = nightly_stopped;
            tokio::spawn(nightly.run(async move {
                let _ = stopped.changed().await;
            }))
        });
        let (stop_console, console_stopped) = tokio::sync::watch::channel(());
        let console_limits = self.console_limits;
        let console = self.console.take().map(|console| {
            let mut stopped = console_stopped;
            tokio::spawn(console.run(console_limits, async move {
                let _ = stopped.changed().await;
            }))
        });
        let indexer = match self.index.take() {
            Some(opening) => Some(opening.spawn().context("starting the indexer thread")?),
            None => None,
        };
        let (acceptor, reloader) = match self.tls.take() {
            Some((tls, reloader)) => (Some(tls.acceptor()), Some(tokio::spawn(reloader.run()))),
            None => (None, None),
        };
        tracing::info!(
            address = %self.local_addr(),
            scheme = %if acceptor.is_some() { "https" } else { "http" },
            dir = %self.state.dir.display(),
            receiver = %self.receiver,
            "rollcall is listening; deliveries go to POST /hooks/{{target}}"
        );
        let status = self.systemd.map(|service| {
            let (dir, address) = (self.state.dir.clone(), self.local_addr());
            let head = Head::read(&dir).ok().flatten();
            service.ready(address, head.as_ref());
            tokio::spawn(service.report_head(dir, address, head))
        });
        let listener = self.listener;
        let graceful = listener::serve(
            listener,
            routes::routes(self.state.clone()),
            self.limits,
            acceptor,
            shutdown,
        )
        .await;
        tracing::info!("shutting down: finishing in-flight deliveries");
        if let Some(status) = status {
            status.abort();
        }
        if let Some(service) = self.systemd {
            service.stopping();
        }
        if let Some(upkeep) = upkeep {
            upkeep.abort();
        }
        if let Some(reloader) = reloader {
            reloader.abort();
        }
        // Whatever a run had handed the writer is queued before the stop
        // record below.
        if let Some(reconcile) = reconcile {
            reconcile.abort();
            let _ = reconcile.await;
        }
        // A run in progress stops between chunks, leaving each day either
        // live or completely archived.
        drop(stop_nightly);
        if let Some(nightly) = nightly {
            let _ = nightly.await;
        }
        drop(stop_console);
        if let Some(console) = console {
            let _ = tokio::time::timeout(self.drain_timeout, console).await;
        }
        if tokio::time::timeout(self.drain_timeout, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("some connections did not finish in time");
        }
        if let Some(indexer) = indexer {
            tokio::task::spawn_blocking(move || indexer.stop())
                .await
                .context("stopping the indexer")?;
        }
        // The clean stop is the start of a coverage gap: say so in the
        // chain. A connection that outlived the drain may still append
        // after it; the next start's `not_before` covers that.
        if let Err(error) = self
            .state
            .writer
            .append(Record::receiver(Event::ReceiverStopped, None).by(&self.receiver))
            .await
        {
            tracing::error!(%error, "could not record the receiver's stop; the next start will read as after a crash");
        }
        // Stopped even while a connection that outlived the drain still
        // holds the state: it finishes its queue and syncs, and whatever
        // comes later gets 503, never a record after "stopped".
        let state = self.state;
        tokio::task::spawn_blocking(move || state.writer.shutdown())
            .await
            .context("stopping the log writer")?;
        // The head after the stop record, off the machine.
        drop(stop_checkpoints);
        if let Some(Ok(mut checkpoints)) = match checkpoints {
            Some(task) => Some(task.await),
            None => None,
        } {
            checkpoints.take().await;
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// Shipping to this receiver's folder of the bucket: the layout `dir`
/// ships with, recorded before anything is shipped.
fn own_folder(dir: &Path, name: &Name, offsite: Offsite) -> anyhow::Result<Offsite> {
    let layout = crate::offsite::layout::settle(dir, name)?;
    let store = layout.store(&offsite.store);
    tracing::info!(
        bucket = %store.location(""),
        "archives, digests and head checkpoints ship to this receiver's folder of the bucket"
    );
    Ok(Offsite {
        store: Arc::new(store),
        ..offsite
    })
}

/// Reads and checks the pair (a start refuses one it cannot serve, naming
/// the file), and sets up its reload: the watch, and the SIGHUP handler
/// before the server says it is listening.
fn load_tls(files: TlsFiles) -> anyhow::Result<(Tls, Reloader)> {
    let tls = Tls::load(files).context("loading the TLS certificate and key")?;
    tracing::info!(
        cert = %tls.files().cert.display(),
        key = %tls.files().key.display(),
        fingerprint = %tls.fingerprint(),
        "serving HTTPS; the pair is read again when its files change or on SIGHUP"
    );
    let reloader = Reloader::new(tls.clone())?;
    Ok((tls, reloader))
}

/// Records `receiver_started` by `name`, with the time of the last record
/// before it as `not_before`: the start of the gap in which deliveries
/// may have been lost. Without a `receiver_stopped` before it, the last
/// run ended in a crash (or the log predates these records).
async fn mark_start(writer: &LogWriter, name: &Name) -> anyhow::Result<()> {
    let end = writer.recovered_end();
    let not_before = end.and_then(|end| end.received_at.clone());
    if let Some(end) = end
        && end.event != Some(Event::ReceiverStopped)
    {
        tracing::warn!(
            since = not_before.as_deref().unwrap_or("an unknown time"),
            last_seq = end.seq,
            "the last run did not record a clean stop (a crash, a kill, or a log older than these records): deliveries since its last record may be lost; reconciliation with a WEBEX_TOKEN recovers what Webex still shows"
        );
    }
    writer
        .append(Record::receiver(Event::ReceiverStarted, not_before).by(name))
        .await
        .context("recording the receiver's start")?;
    Ok(())
}

/// Room titles and the Webex upkeep. With a token, the first round
/// (self-registration, learning which targets serve several rooms) runs
/// before serving, bounded so a slow API only delays the start; without
/// one, nothing is ever sent to Webex.
async fn webex(
    settings: &WebexSettings,
    receiver: &Name,
    secret: Option<Secret>,
    metrics: Arc<Metrics>,
) -> anyhow::Result<(TitleLookups, Option<Upkeep>)> {
    let Some(token) = settings.token.clone() else {
        tracing::warn!(
            "WEBEX_TOKEN is not set: records carry no room titles, and the server does not register or recheck its webhooks"
        );
        return Ok((TitleLookups::disabled(), None));
    };
    let client =
        Client::new(&settings.api_url, token).context("setting up the Webex API client")?;
    let titles = TitleLookups::new(client.clone(), metrics, settings.titles);
    if let Some(warning) = settings
        .public_url
        .as_deref()
        .and_then(crate::webex::registration::cleartext_warning)
    {
        tracing::warn!("{warning}");
    }
    if settings.public_url.is_none() {
        tracing::info!(
            "ROLLCALL_PUBLIC_URL is not set: the server will not register its webhooks itself (see `rollcall subscribe`)"
        );
    } else if secret.is_none() {
        tracing::warn!(
            "no webhook secret (--insecure-accept-unsigned): the server will not register its webhooks itself"
        );
    }
    let upkeep = Upkeep::new(client, settings, receiver, secret, titles.clone());
    if tokio::time::timeout(WEBEX_START_BOUND, upkeep.check())
        .await
        .is_err()
    {
        tracing::warn!(
            "the Webex API is slow to answer; serving anyway, the next recheck tries again"
        );
    }
    Ok((titles, Some(upkeep)))
}

/// How long a start waits for `DIR/.lock` before taking it for another
/// serve's: a lock can outlive its holder by a moment, in a process still
/// exiting, or in a child process of the one that held it, between its
/// fork and its exec.
const LOCK_WAIT: Duration = Duration::from_secs(2);
const LOCK_RETRY: Duration = Duration::from_millis(20);

/// One `serve` per directory: an exclusive lock on `DIR/.lock`, held for
/// the life of the process (the kernel drops it if the process dies).
async fn lock_dir(dir: &Path) -> anyhow::Result<File> {
    files::create_dir(dir).with_context(|| format!("creating log directory {}", dir.display()))?;
    let path = dir.join(files::LOCK_FILE);
    let started = tokio::time::Instant::now();
    loop {
        if let Some(lock) =
            files::try_lock(dir).with_context(|| format!("locking {}", path.display()))?
        {
            return Ok(lock);
        }
        if started.elapsed() >= LOCK_WAIT {
            anyhow::bail!(
                "another rollcall serve is already using {} (it holds {}); stop it first, or give this one another --dir",
                dir.display(),
                path.display()
            );
        }
        tokio::time::sleep(LOCK_RETRY).await;
    }
}
