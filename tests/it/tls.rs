//! `serve --tls-cert --tls-key`: HTTPS on the webhook listener and the
//! console with rustls, through the real binary; the pair reloaded when
//! its files are renewed or on SIGHUP, without dropping open connections;
//! and a start refused on a pair it cannot serve.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::app::{SECRET, membership_records};
use crate::support::bin::{self, ServerProcess, rollcall};
use crate::support::fixture;
use crate::support::tls::{Pair, TestCa, repoint, served_der};

/// A test's directory: the log, the CA, and the files serve is pointed at.
struct Setup {
    _temp: tempfile::TempDir,
    root: PathBuf,
    dir: PathBuf,
    ca: TestCa,
}

impl Setup {
    fn new() -> Self {
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path().to_path_buf();
        Self {
            dir: root.join("audit-logs"),
            ca: TestCa::new(&root),
            root,
            _temp: temp,
        }
    }

    /// `pair` written to `cert.pem` and `key.pem`; their paths.
    fn write(&self, pair: &Pair) -> (PathBuf, PathBuf) {
        let (cert, key) = (self.root.join("cert.pem"), self.root.join("key.pem"));
        pair.write(&cert, &key);
        (cert, key)
    }

    /// `serve --tls-cert CERT --tls-key KEY`, with the tests' secret.
    fn serve(
        &self,
        cert: &Path,
        key: &Path,
        configure: impl FnOnce(&mut Command),
    ) -> ServerProcess {
        ServerProcess::start(&self.dir, |command| {
            command
                .env("ROLLCALL_SECRET", SECRET)
                .arg("--tls-cert")
                .arg(cert)
                .arg("--tls-key")
                .arg(key);
            configure(command);
        })
    }
}

#[tokio::test]
async fn curl_trusting_the_ca_gets_200_from_healthz_and_a_signed_delivery_over_https_is_recorded() {
    let setup = Setup::new();
    let (cert, key) = setup.write(&setup.ca.issue("first"));
    let server = setup.serve(&cert, &key, |_| {});
    assert!(server.address.starts_with("https://"), "{}", server.address);

    let (status, subject) = setup.ca.curl(&format!("{}/healthz", server.address));
    assert_eq!((status, subject.as_str()), (200, "CN=first"));

    let answer = server
        .deliver(&setup.ca.client(), &fixture("memberships-created.json"))
        .await;
    assert_eq!(answer.status(), 200);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["status"], "recorded", "{body}");
    let records = membership_records(&setup.dir);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["event"], "joined");
    assert!(server.terminate().success());
}

#[tokio::test]
async fn a_pair_renewed_as_certbot_does_reaches_new_connections_while_an_open_one_keeps_working() {
    let setup = Setup::new();
    let (first, second) = (setup.ca.issue("first"), setup.ca.issue("second"));
    // certbot's layout: live/ holds symlinks into archive/, and a renewal
    // writes new files there and points the links at them.
    let (archive, live) = (setup.root.join("archive"), setup.root.join("live"));
    std::fs::create_dir(&archive).unwrap();
    std::fs::create_dir(&live).unwrap();
    first.write(
        &archive.join("fullchain1.pem"),
        &archive.join("privkey1.pem"),
    );
    second.write(
        &archive.join("fullchain2.pem"),
        &archive.join("privkey2.pem"),
    );
    let (cert, key) = (live.join("fullchain.pem"), live.join("privkey.pem"));
    std::os::unix::fs::symlink(archive.join("fullchain1.pem"), &cert).unwrap();
    std::os::unix::fs::symlink(archive.join("privkey1.pem"), &key).unwrap();
    let server = setup.serve(&cert, &key, |_| {});
    let healthz = format!("{}/healthz", server.address);

    let kept_alive = setup.ca.client();
    let answer = kept_alive.get(&healthz).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    assert!(served_der(&answer) == first.der, "the first pair is served");

    repoint(&cert, &archive.join("fullchain2.pem"));
    repoint(&key, &archive.join("privkey2.pem"));
    let reloaded = server.wait_for_lines("reloaded the TLS certificate and key", 1);
    assert!(reloaded.contains("the files changed"), "{reloaded}");

    assert_eq!(setup.ca.curl(&healthz), (200, "CN=second".to_string()));
    let fresh = setup.ca.client().get(&healthz).send().await.unwrap();
    assert!(
        served_der(&fresh) == second.der,
        "a new connection gets the new pair"
    );
    // The connection made before the renewal is still open and still
    // answers: it keeps the pair it was made with.
    let again = kept_alive.get(&healthz).send().await.unwrap();
    assert_eq!(again.status(), 200);
    assert!(
        served_der(&again) == first.der,
        "the kept-alive connection was reused, with its own pair"
    );
    assert!(server.terminate().success());
}

#[tokio::test]
async fn sighup_reloads_a_pair_the_directory_watch_cannot_see() {
    let setup = Setup::new();
    let (first, second) = (setup.ca.issue("first"), setup.ca.issue("second"));
    // `current` is a symlink to a directory: the watch is on the directory
    // it pointed to at start, so pointing it elsewhere is seen by nobody
    // but an operator who then sends SIGHUP.
    for (name, pair) in [("a", &first), ("b", &second)] {
        let dir = setup.root.join(name);
        std::fs::create_dir(&dir).unwrap();
        pair.write(&dir.join("cert.pem"), &dir.join("key.pem"));
    }
    let current = setup.root.join("current");
    std::os::unix::fs::symlink(setup.root.join("a"), &current).unwrap();
    let (cert, key) = (current.join("cert.pem"), current.join("key.pem"));
    let server = setup.serve(&cert, &key, |_| {});
    let healthz = format!("{}/healthz", server.address);
    assert_eq!(setup.ca.curl(&healthz).1, "CN=first");

    repoint(&current, &current.with_file_name("b"));
    hangup(&server);
    let reloaded = server.wait_for_lines("reloaded the TLS certificate and key", 1);
    assert!(reloaded.contains("SIGHUP"), "{reloaded}");
    assert_eq!(setup.ca.curl(&healthz), (200, "CN=second".to_string()));

    // A SIGHUP with nothing new says so, and serves on.
    hangup(&server);
    server.wait_for_lines("SIGHUP: the TLS files hold the pair already in force", 1);
    assert_eq!(setup.ca.curl(&healthz).1, "CN=second");
    assert!(server.terminate().success());
}

fn hangup(server: &ServerProcess) {
    let sent = Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

#[tokio::test]
async fn a_reload_that_fails_keeps_the_pair_in_force_and_says_why() {
    let setup = Setup::new();
    let other = setup.ca.issue("other");
    let (cert, key) = setup.write(&setup.ca.issue("first"));
    let server = setup.serve(&cert, &key, |_| {});
    let healthz = format!("{}/healthz", server.address);

    // The key renewed, its certificate not (yet).
    std::fs::write(&key, &other.key_pem).unwrap();
    let failed = server.wait_for_lines("reloading the TLS pair failed", 1);
    assert!(failed.contains("does not match"), "{failed}");
    assert!(failed.contains(&key.display().to_string()), "{failed}");
    assert_eq!(setup.ca.curl(&healthz), (200, "CN=first".to_string()));

    // Half a certificate: still the old pair.
    std::fs::write(&cert, &other.cert_pem[..other.cert_pem.len() / 2]).unwrap();
    let failed = server.wait_for_lines("reloading the TLS pair failed", 2);
    assert!(failed.contains(&cert.display().to_string()), "{failed}");
    assert_eq!(setup.ca.curl(&healthz).1, "CN=first");

    // The rest of the renewal arrives: the new pair is served.
    std::fs::write(&cert, &other.cert_pem).unwrap();
    server.wait_for_lines("reloaded the TLS certificate and key", 1);
    assert_eq!(setup.ca.curl(&healthz).1, "CN=other");
    assert!(server.terminate().success());
}

#[test]
fn serve_refuses_a_pair_it_cannot_serve_and_names_the_file() {
    let setup = Setup::new();
    let (cert, key) = setup.write(&setup.ca.issue("first"));
    let other_key = setup.root.join("other-key.pem");
    std::fs::write(&other_key, setup.ca.issue("other").key_pem).unwrap();
    let garbage = setup.root.join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let missing = setup.root.join("missing.pem");
    let dir = &setup.dir;

    let refused = |cert: &Path, key: &Path, says: &str, names: &Path| {
        let run = bin::run(
            rollcall(dir)
                .env("ROLLCALL_SECRET", SECRET)
                .args(["serve", "--listen", "127.0.0.1:0", "--tls-cert"])
                .arg(cert)
                .arg("--tls-key")
                .arg(key),
        );
        assert!(!run.status.success(), "{}", run.report());
        assert!(run.stderr.contains(says), "{}", run.report());
        assert!(
            run.stderr.contains(&names.display().to_string()),
            "{}",
            run.report()
        );
    };
    refused(&cert, &other_key, "does not match", &other_key);
    refused(&garbage, &key, "holds no certificate", &garbage);
    refused(&cert, &garbage, "is not a PEM private key", &garbage);
    refused(&missing, &key, "No such file", &missing);
    assert!(
        !dir.join(".lock").exists(),
        "refused before touching the log"
    );

    // One of the two, from the environment too, is refused by name.
    let run = bin::run(rollcall(dir).env("ROLLCALL_TLS_CERT", &cert).args([
        "serve",
        "--listen",
        "127.0.0.1:0",
    ]));
    assert_eq!(run.status.code(), Some(2), "{}", run.report());
    assert!(run.stderr.contains("--tls-key"), "{}", run.report());
}

#[tokio::test]
async fn the_console_serves_https_with_the_same_pair_and_its_session_cookie_is_secure() {
    let setup = Setup::new();
    let (cert, key) = setup.write(&setup.ca.issue("first"));
    let server = setup.serve(&cert, &key, |command| {
        command
            .env("ROLLCALL_CONSOLE_PASSWORD", "correct horse battery staple")
            .args(["--console", "127.0.0.1:0"]);
    });
    let console = server.console_address();
    assert!(console.starts_with("https://"), "{console}");
    assert_eq!(
        setup.ca.curl(&format!("{console}/login")),
        (200, "CN=first".to_string())
    );

    let client = setup.ca.client();
    let login = client
        .post(format!("{console}/login"))
        .form(&[("password", "correct horse battery staple")])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303);
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("; Secure"), "{cookie}");
    let page = client
        .get(format!("{console}/"))
        .header("cookie", cookie.split(';').next().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(server.terminate().success());
}

#[tokio::test]
async fn a_client_stalled_in_the_handshake_or_speaking_plain_http_does_not_hold_up_others() {
    use tokio::io::AsyncWriteExt;
    let setup = Setup::new();
    let (cert, key) = setup.write(&setup.ca.issue("first"));
    let server = setup.serve(&cert, &key, |_| {});
    let address = server.address.trim_start_matches("https://").to_string();

    // Connected, and then not a byte more; and half a ClientHello.
    let _silent = tokio::net::TcpStream::connect(&address).await.unwrap();
    let mut half = tokio::net::TcpStream::connect(&address).await.unwrap();
    half.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .await
        .unwrap();
    let plain = reqwest::get(format!("http://{address}/healthz")).await;
    assert!(plain.is_err(), "plain HTTP gets no answer: {plain:?}");

    assert_eq!(
        setup.ca.curl(&format!("{}/healthz", server.address)),
        (200, "CN=first".to_string())
    );
    assert!(
        !server.stderr().contains("handshake"),
        "failed handshakes are logged at debug only:\n{}",
        server.stderr()
    );
    assert!(server.terminate().success());
}
