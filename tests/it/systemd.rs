//! `serve` under systemd's `Type=notify`: the test stands in for systemd's
//! notify socket and runs the real binary with `NOTIFY_SOCKET` and
//! `WATCHDOG_USEC`, as systemd starts a unit.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::Duration;

use rollcall::log::head::Head;
use tempfile::TempDir;

use crate::start_up::deliver;
use crate::support::app::{SECRET, membership};
use crate::support::bin::ServerProcess;

/// How long the test waits for a message before failing instead of
/// hanging; never a measure of speed.
const HANG_GUARD: Duration = Duration::from_secs(30);

/// What systemd would be told: the notify socket and every message.
struct NotifySocket {
    socket: UnixDatagram,
    seen: Vec<String>,
}

impl NotifySocket {
    fn bind(dir: &Path) -> Self {
        let socket = UnixDatagram::bind(dir.join("notify.sock")).expect("binding a notify socket");
        socket.set_read_timeout(Some(HANG_GUARD)).unwrap();
        Self {
            socket,
            seen: Vec::new(),
        }
    }

    /// Reads messages until one has a line for which `wanted` holds;
    /// that message.
    fn until(&mut self, what: &str, wanted: impl Fn(&str) -> bool) -> String {
        let mut buf = vec![0; 4096];
        loop {
            let n = self.socket.recv(&mut buf).unwrap_or_else(|e| {
                panic!(
                    "no {what} within {HANG_GUARD:?} ({e}); seen: {:?}",
                    self.seen
                )
            });
            let message = String::from_utf8_lossy(&buf[..n]).into_owned();
            self.seen.push(message.clone());
            if message.lines().any(&wanted) {
                return message;
            }
        }
    }

    /// [`NotifySocket::until`] a line that is exactly `line`.
    fn until_line(&mut self, line: &str) -> String {
        self.until(line, |l| l == line)
    }
}

/// A log directory and a notify socket beside it, and `serve` on the
/// directory as systemd starts a unit with `WatchdogSec=` of 200 ms.
fn serve_under_systemd() -> (ServerProcess, NotifySocket, TempDir) {
    let temp = tempfile::tempdir().unwrap();
    let notify = NotifySocket::bind(temp.path());
    let server = ServerProcess::start(&temp.path().join("audit-logs"), |command| {
        command
            .env("ROLLCALL_SECRET", SECRET)
            .env("NOTIFY_SOCKET", temp.path().join("notify.sock"))
            .env("WATCHDOG_USEC", "200000");
    });
    (server, notify, temp)
}

#[tokio::test]
async fn serve_tells_systemd_it_is_ready_pings_the_watchdog_while_idle_and_says_it_is_stopping() {
    let (server, mut notify, _temp) = serve_under_systemd();

    let ready = notify.until_line("READY=1");
    assert!(
        ready.contains("STATUS=listening on 127.0.0.1:") && ready.contains("durable head seq 1 "),
        "READY carries the address and the head: {ready:?}"
    );
    // No delivery comes: an idle writer still wakes to ping, again and
    // again.
    notify.until_line("WATCHDOG=1");
    notify.until_line("WATCHDOG=1");
    assert!(server.terminate().success());
    let stopping = notify.until_line("STOPPING=1");
    assert!(stopping.contains("STATUS=stopping"), "{stopping:?}");
}

#[tokio::test]
async fn the_status_line_follows_the_durable_head() {
    let (server, mut notify, temp) = serve_under_systemd();
    notify.until_line("READY=1");

    let (status, answer) = deliver(
        &server,
        &membership("created", "m1", "room", "2026-11-27T01:00:00.000Z"),
    )
    .await;
    assert_eq!((status, &answer["status"]), (200, &"recorded".into()));
    let seq = answer["seq"].as_u64().unwrap();
    let head = Head::read(&temp.path().join("audit-logs"))
        .unwrap()
        .unwrap();
    assert_eq!(head.seq, seq);
    let line = format!(
        "STATUS=listening on {}; durable head {head}",
        server.address.trim_start_matches("http://")
    );
    notify.until(&line, |l| l == line);
    assert!(server.terminate().success());
}
