//! Telling systemd how `serve` is doing (`Type=notify`, sd_notify(3)):
//! READY=1 once it listens with the log recovered, STATUS= with the
//! durable head, STOPPING=1 at shutdown, and the watchdog's interval for
//! the log writer, which pings it from its own loop
//! ([`crate::log::writer`]). Outside such a unit (no `NOTIFY_SOCKET`)
//! there is no [`Service`], and nothing is sent.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use sd_notify::NotifyState;

use crate::log::head::Head;

/// How often the durable head is read for the STATUS line; a line is sent
/// only when the head moved, so an idle server sends none.
const STATUS_EVERY: Duration = Duration::from_secs(5);

/// This process as a service systemd started with a notify socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Service {
    /// How often the log writer pings the watchdog: half of
    /// `WATCHDOG_USEC`, as sd_watchdog_enabled(3) advises; `None` without
    /// `WatchdogSec=`.
    pub watchdog: Option<Duration>,
}

impl Service {
    /// The service systemd says this process is (`NOTIFY_SOCKET`, and
    /// `WATCHDOG_USEC` with `WATCHDOG_PID` naming this process), if any.
    pub fn from_env() -> Option<Self> {
        std::env::var_os("NOTIFY_SOCKET")?;
        Some(Self {
            watchdog: sd_notify::watchdog_enabled().map(|timeout| timeout / 2),
        })
    }

    /// READY=1: listening, with the log recovered.
    pub fn ready(&self, address: SocketAddr, head: Option<&Head>) {
        send(&[
            NotifyState::Ready,
            NotifyState::Status(&status(address, head)),
        ]);
    }

    /// STOPPING=1: no new connections; in-flight deliveries finish.
    pub fn stopping(&self) {
        send(&[
            NotifyState::Stopping,
            NotifyState::Status("stopping: finishing in-flight deliveries"),
        ]);
    }

    /// Sends the durable head as STATUS= whenever it has moved since
    /// `last`, looking every [`STATUS_EVERY`] (a read of `DIR/.head`, off
    /// the request path); runs until its task is aborted.
    pub async fn report_head(self, dir: PathBuf, address: SocketAddr, mut last: Option<Head>) {
        let mut ticks = tokio::time::interval(STATUS_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let head = match Head::read(&dir) {
                Ok(head) => head,
                Err(error) => {
                    tracing::debug!(error = %format!("{error:#}"), "no durable head for systemd's status");
                    continue;
                }
            };
            if head != last {
                send(&[NotifyState::Status(&status(address, head.as_ref()))]);
                last = head;
            }
        }
    }
}

/// WATCHDOG=1: the log writer's loop is turning.
pub fn watchdog() {
    send(&[NotifyState::Watchdog]);
}

/// What `systemctl status` shows: the address and the durable head, as
/// `verify` prints it (so it can be kept for `--expect-head`).
fn status(address: SocketAddr, head: Option<&Head>) -> String {
    match head {
        Some(head) => format!("listening on {address}; durable head {head}"),
        None => format!("listening on {address}; the log is empty"),
    }
}

/// A failed send is logged, never fatal: systemd decides what a missing
/// READY or watchdog ping means.
fn send(states: &[NotifyState]) {
    if let Err(error) = sd_notify::notify(states) {
        tracing::warn!(%error, "could not notify systemd");
    }
}
