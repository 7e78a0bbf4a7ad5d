//! The accept loop both listeners (webhooks and console) run: a
//! header-read timeout, a cap on connections held at once, backoff on
//! accept errors, the TLS handshake when serving HTTPS, the peer address
//! for the routes, and a graceful drain; and, for `serve`, the open-file
//! limit the caps are sized from.
//!
//! Our own loop over hyper-util, not warp's `serve`: warp's sets neither a
//! header-read timeout (a client that stalls mid-headers holds its
//! connection for ever) nor a limit on connections, and retries a failed
//! accept at once; those are what keep a listener up under a slow or
//! hostile client, and keep one listener from taking the file descriptors
//! the other and the log's own files need.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, oneshot};
use tokio_rustls::TlsAcceptor;
use warp::Filter;
use warp::reply::Response;

/// What one listener allows.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A client must send a request's headers within this time, and an
    /// idle keep-alive connection is closed after it. Under TLS the
    /// handshake gets as long again, before the headers.
    pub header_read_timeout: Duration,
    /// Connections held at once; more wait in the listen backlog.
    pub max_connections: usize,
}

/// The first wait after a failed accept, and the longest.
const BACKOFF_FIRST: Duration = Duration::from_millis(10);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// The client address of a request, as the accept loop saw it.
#[derive(Debug, Clone, Copy)]
struct Peer(SocketAddr);

/// The request's client address (`None` only outside this accept loop):
/// what `warp::addr::remote()` gives under warp's own server, which this
/// loop cannot fill in.
pub fn remote() -> impl Filter<Extract = (Option<SocketAddr>,), Error = Infallible> + Clone {
    warp::ext::optional::<Peer>().map(|peer: Option<Peer>| peer.map(|Peer(addr)| addr))
}

/// Closes the connection a request came on: for a download whose client
/// stopped reading, as hyper has no write timeout and would otherwise
/// hold the connection (and the drain at shutdown) for ever.
#[derive(Debug, Clone)]
pub struct Closer(Arc<Notify>);

impl Closer {
    pub fn close(&self) {
        self.0.notify_one();
    }
}

/// The request's [`Closer`] (`None` only outside this accept loop).
pub fn closer() -> impl Filter<Extract = (Option<Closer>,), Error = Infallible> + Clone {
    warp::ext::optional::<Closer>()
}

/// A connection that has not sent a whole request head yet: the one to
/// close when the cap is reached and another client is waiting.
struct Unstarted {
    started: Arc<AtomicBool>,
    shed: oneshot::Sender<()>,
}

/// Accepts on `listener` and serves `routes` (over TLS with `tls`) until
/// `shutdown` resolves; then stops accepting (the listener is closed) and
/// hands back the connections still open, to drain with
/// [`GracefulShutdown::shutdown`].
///
/// The TLS handshake runs in the connection's own task, bounded by the
/// header timeout, never in this loop: a client that stalls mid-handshake
/// delays nobody else, and until it has sent a whole request it is one of
/// the connections the cap may close.
///
/// At the cap, the oldest connection that has not yet sent a whole
/// request head is closed to make room for the new one: a client holding
/// connections half-sent cannot keep a real request waiting behind them.
/// A connection serving a request is never closed for room.
pub async fn serve<F>(
    listener: TcpListener,
    routes: F,
    limits: Limits,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) -> GracefulShutdown
where
    F: Filter<Extract = (Response,), Error = Infallible> + Clone + Send + Sync + 'static,
{
    let service = warp::service(routes);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut unstarted: VecDeque<Unstarted> = VecDeque::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut backoff = Backoff::default();
    // Dropped when this loop ends: a handshake still under way then is
    // given up, rather than holding the drain for its whole timeout.
    let (_accepting, stopped_accepting) = tokio::sync::watch::channel(());
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => {
                    backoff.reset();
                    accepted
                }
                Err(error) => {
                    tokio::select! {
                        () = backoff.wait(&error) => continue,
                        () = &mut shutdown => break,
                    }
                }
            },
            () = &mut shutdown => break,
        };
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                shed_oldest(&mut unstarted);
                tokio::select! {
                    slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
                    () = &mut shutdown => break,
                }
            }
        };
        let started = Arc::new(AtomicBool::new(false));
        let (shed, shed_asked) = oneshot::channel();
        remember(
            &mut unstarted,
            Unstarted {
                started: started.clone(),
                shed,
            },
            limits.max_connections,
        );
        let close = Arc::new(Notify::new());
        let closer = Closer(close.clone());
        let service = service.clone();
        let per_request =
            hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
                started.store(true, Ordering::Relaxed);
                request.extensions_mut().insert(Peer(peer));
                request.extensions_mut().insert(closer.clone());
                tower_service::Service::call(&mut service.clone(), request)
            });
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout);
        let watcher = graceful.watcher();
        let tls = tls.clone();
        let handshake_timeout = limits.header_read_timeout;
        let mut stopped_accepting = stopped_accepting.clone();
        let connection = async move {
            let Some(tls) = tls else {
                return watcher
                    .watch(http.serve_connection(TokioIo::new(stream), per_request))
                    .await;
            };
            let handshake = tokio::select! {
                handshake = tokio::time::timeout(handshake_timeout, tls.accept(stream)) => handshake,
                _ = stopped_accepting.changed() => return Ok(()),
            };
            match handshake {
                Ok(Ok(stream)) => {
                    watcher
                        .watch(http.serve_connection(TokioIo::new(stream), per_request))
                        .await
                }
                // A scanner, a client that does not trust the certificate,
                // plain HTTP on the HTTPS port: the client's problem, and
                // one line each would drown the log.
                Ok(Err(error)) => {
                    tracing::debug!(%error, %peer, "TLS handshake failed");
                    Ok(())
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake not finished in time; closed");
                    Ok(())
                }
            }
        };
        tokio::spawn(run_connection(connection, shed_asked, close, slot));
    }
    graceful
}

async fn run_connection(
    connection: impl Future<Output = Result<(), hyper::Error>>,
    shed_asked: oneshot::Receiver<()>,
    close: Arc<Notify>,
    slot: OwnedSemaphorePermit,
) {
    tokio::select! {
        ended = connection => if let Err(error) = ended {
            tracing::debug!(%error, "connection ended with an error");
        },
        Ok(()) = shed_asked => {
            tracing::debug!("closed a connection that had sent no whole request, to make room");
        }
        () = close.notified() => tracing::debug!("closed a connection its handler gave up on"),
    }
    drop(slot);
}

/// Closes the oldest connection still waiting for its first request head,
/// if there is one.
fn shed_oldest(unstarted: &mut VecDeque<Unstarted>) {
    while let Some(oldest) = unstarted.pop_front() {
        if !oldest.started.load(Ordering::Relaxed) && oldest.shed.send(()).is_ok() {
            return;
        }
    }
}

/// Keeps `connection` for [`shed_oldest`]; forgets the ones that have
/// started or ended, so the queue stays about the size of the cap.
fn remember(unstarted: &mut VecDeque<Unstarted>, connection: Unstarted, cap: usize) {
    if unstarted.len() >= cap.max(1) * 2 {
        unstarted.retain(|c| !c.started.load(Ordering::Relaxed) && !c.shed.is_closed());
    }
    unstarted.push_back(connection);
}

/// The wait after failed accepts (out of file descriptors, mostly):
/// doubling from [`BACKOFF_FIRST`] to [`BACKOFF_MAX`], with one warning
/// per run of failures rather than one per try.
#[derive(Default)]
struct Backoff {
    next: Option<Duration>,
    failures: u64,
}

impl Backoff {
    async fn wait(&mut self, error: &std::io::Error) {
        let wait = match self.next {
            None => {
                tracing::warn!(%error, "accepting connections failed; retrying with a growing pause until it works");
                BACKOFF_FIRST
            }
            Some(wait) => wait,
        };
        self.failures += 1;
        self.next = Some((wait * 2).min(BACKOFF_MAX));
        tokio::time::sleep(wait).await;
    }

    fn reset(&mut self) {
        if self.next.take().is_some() {
            tracing::info!(failures = self.failures, "accepting connections again");
        }
        self.failures = 0;
    }
}

/// The connection caps `serve` uses, from its open-file limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    pub open_files: u64,
    pub webhooks: usize,
    /// Zero without a console.
    pub console: usize,
    /// Left for the log's files, the writer, the index's reads and the
    /// API clients.
    pub reserve: u64,
}

/// The most connections the webhook listener holds, however high the
/// limit; the console, which faces a few people, far fewer.
const MAX_WEBHOOK_CONNECTIONS: usize = 4096;
const MAX_CONSOLE_CONNECTIONS: usize = 256;

/// Splits `open_files` so both listeners at their caps, plus the reserve,
/// stay within it: the webhooks get three quarters of what is left after
/// the reserve when the console is on.
pub fn caps(open_files: u64, console: bool) -> Caps {
    let reserve = 64 + open_files / 8;
    let available = open_files.saturating_sub(reserve).max(2) as usize;
    let console = if console {
        (available / 4).clamp(1, MAX_CONSOLE_CONNECTIONS)
    } else {
        0
    };
    Caps {
        open_files,
        webhooks: (available - console).clamp(1, MAX_WEBHOOK_CONNECTIONS),
        console,
        reserve,
    }
}

/// Raises the soft open-file limit to the hard one and returns it (the
/// soft one unchanged if raising fails, e.g. a hard limit of "infinity"
/// the kernel refuses).
pub fn raise_open_files() -> std::io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes only into the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit only reads the struct it is given.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit.rlim_cur = limit.rlim_max;
        } else {
            tracing::warn!(
                error = %std::io::Error::last_os_error(),
                soft = limit.rlim_cur,
                hard = limit.rlim_max,
                "could not raise the open-file limit"
            );
        }
    }
    Ok(limit.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_caps_and_the_reserve_fit_in_the_limit() {
        for limit in [256, 1024, 65_536, 1 << 20] {
            let caps = caps(limit, true);
            assert!(
                caps.webhooks as u64 + caps.console as u64 + caps.reserve <= limit,
                "{caps:?}"
            );
            assert!(caps.webhooks >= caps.console, "{caps:?}");
        }
        assert_eq!(caps(256, false).console, 0);
        assert_eq!(caps(1 << 20, true).webhooks, MAX_WEBHOOK_CONNECTIONS);
    }
}
