//! The two listeners under a flood, through the real binary with a low
//! open-file limit: half-sent requests held on either port do not keep a
//! signed delivery from being recorded, and the server does not fill its
//! log with accept errors meanwhile.

use std::os::unix::process::CommandExt;
use std::time::Duration;

use rollcall::secret::Secret;
use rollcall::webhook::signature;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::support::app::{SECRET, membership, membership_records};
use crate::support::bin::ServerProcess;

/// The soft and hard open-file limit the server runs under.
const OPEN_FILES: libc::rlim_t = 256;
/// Half-sent requests held: more than the server has descriptors.
const HELD: usize = 300;
/// Turns a hang into a failure; never a measure of speed.
const HANG_GUARD: Duration = Duration::from_secs(30);

/// `rollcall serve --console` limited to [`OPEN_FILES`] descriptors; its
/// webhook and console addresses.
fn serve_with_few_files(dir: &std::path::Path) -> (ServerProcess, String, String) {
    let server = ServerProcess::start(dir, |command| {
        command
            .env("ROLLCALL_SECRET", SECRET)
            .env("ROLLCALL_CONSOLE_PASSWORD", "correct horse battery staple")
            .args(["--console", "127.0.0.1:0"]);
        // SAFETY: setrlimit is async-signal-safe and touches no memory of
        // the parent.
        unsafe {
            command.pre_exec(|| {
                let limit = libc::rlimit {
                    rlim_cur: OPEN_FILES,
                    rlim_max: OPEN_FILES,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
    });
    let console = server
        .console_address()
        .trim_start_matches("http://")
        .to_string();
    let hooks = server.address.trim_start_matches("http://").to_string();
    (server, hooks, console)
}

/// [`HELD`] connections to `address`, each stopped in the middle of its
/// request headers.
async fn hold_half_sent(address: &str) -> Vec<TcpStream> {
    let mut held = Vec::with_capacity(HELD);
    for _ in 0..HELD {
        let mut stream = TcpStream::connect(address)
            .await
            .expect("connecting (the backlog takes what is not accepted)");
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Sl")
            .await
            .expect("sending half a request");
        held.push(stream);
    }
    held
}

/// Posts one signed delivery to `hooks` and expects it recorded.
async fn deliver(hooks: &str) {
    let body = membership(
        "created",
        "flood-membership",
        "room-1",
        "2026-11-27T12:00:00.000Z",
    );
    let sig = signature::sign(&Secret::new(SECRET.into()), &body);
    let answer = reqwest::Client::new()
        .post(format!("http://{hooks}/hooks/default"))
        .header("content-type", "application/json")
        .header("x-spark-signature", sig)
        .body(body)
        .timeout(HANG_GUARD)
        .send()
        .await
        .expect("the delivery is answered while the flood is held");
    assert_eq!(answer.status(), 200);
}

fn assert_quiet_about_accept_errors(server: &ServerProcess) {
    let stderr = server.stderr();
    let errors = stderr.matches("Too many open files").count();
    assert!(errors <= 5, "{errors} accept errors logged:\n{stderr}");
}

/// Holds [`HELD`] half-sent requests on the console port or the webhook
/// port, then delivers.
async fn a_delivery_is_recorded_while_half_sent_requests_are_held(on_console: bool) {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("audit-logs");
    let (server, hooks, console) = serve_with_few_files(&dir);
    let held = hold_half_sent(if on_console { &console } else { &hooks }).await;
    deliver(&hooks).await;
    assert_eq!(membership_records(&dir).len(), 1);
    assert_quiet_about_accept_errors(&server);
    drop(held);
    assert!(server.terminate().success());
}

#[tokio::test]
async fn half_sent_requests_held_on_the_console_do_not_keep_a_delivery_from_being_recorded() {
    a_delivery_is_recorded_while_half_sent_requests_are_held(true).await;
}

#[tokio::test]
async fn half_sent_requests_held_on_the_webhook_port_do_not_keep_a_delivery_from_being_recorded() {
    a_delivery_is_recorded_while_half_sent_requests_are_held(false).await;
}
