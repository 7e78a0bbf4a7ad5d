//! `rollcall doctor`, through the real binary, against the fake Webex API
//! and a real S3 implementation (moto): everything set up right exits 0,
//! and each failure made in turn is named and exits 1.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use tempfile::TempDir;
use time::{Duration, OffsetDateTime};

use crate::support::bin::{Run, rollcall, run};
use crate::support::fake_webex::{FakeWebex, TOKEN};
use crate::support::moto::Moto;

/// Resolves here, as a public name would.
const PUBLIC_URL: &str = "https://localhost";
const SECRET: &str = "doctor-test-secret-5b1f0c2e9a";

/// A log directory with its secret, a fake Webex API with a room and
/// this server's webhooks registered by `subscribe`.
struct Setup {
    temp: TempDir,
    fake: FakeWebex,
}

impl Setup {
    fn new() -> Self {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("audit-logs");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o750)).unwrap();
        let secret = dir.join(".secret");
        std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        let fake = FakeWebex::start();
        fake.add_member("R1", "ana", "2026-11-01T09:00:00.000Z");
        let setup = Setup { temp, fake };
        let mut subscribe = setup.command();
        subscribe.arg("subscribe");
        run(&mut subscribe).success();
        setup
    }

    fn dir(&self) -> PathBuf {
        self.temp.path().join("audit-logs")
    }

    /// `rollcall --dir DIR` with the token, the API and the public URL.
    fn command(&self) -> Command {
        let mut command = rollcall(&self.dir());
        command
            .env("WEBEX_TOKEN", TOKEN)
            .env("WEBEX_API_URL", &self.fake.url)
            .env("ROLLCALL_PUBLIC_URL", PUBLIC_URL);
        command
    }

    fn doctor(&self, configure: impl FnOnce(&mut Command)) -> Run {
        let mut command = self.command();
        command.arg("doctor");
        configure(&mut command);
        run(&mut command)
    }

    /// The id of our `memberships/{event}` webhook.
    fn webhook(&self, event: &str) -> String {
        self.fake
            .webhooks()
            .iter()
            .find(|w| w["event"] == event)
            .and_then(|w| w["id"].as_str())
            .expect("subscribe registered it")
            .to_string()
    }
}

/// A self-signed certificate for localhost, valid from `from` to `until`,
/// and its key, written as PEM files in `dir`.
fn certificate(dir: &Path, from: OffsetDateTime, until: OffsetDateTime) -> (PathBuf, PathBuf) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.not_before = from;
    params.not_after = until;
    let cert = params.self_signed(&key).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (cert_path, key_path)
}

fn with_tls(command: &mut Command, (cert, key): &(PathBuf, PathBuf)) {
    command
        .env("ROLLCALL_TLS_CERT", cert)
        .env("ROLLCALL_TLS_KEY", key);
}

/// The line of `check` in doctor's output.
fn line<'a>(run: &'a Run, check: &str) -> &'a str {
    run.stdout
        .lines()
        .find(|l| {
            l.split_once(": ")
                .is_some_and(|(head, _)| head.ends_with(check))
        })
        .unwrap_or_else(|| panic!("no line for {check}\n{}", run.report()))
}

fn assert_failed(run: &Run, check: &str, says: &str) {
    let line = line(run, check);
    assert!(
        line.starts_with("FAIL"),
        "{check}: {line}\n{}",
        run.report()
    );
    assert!(line.contains(says), "{check} should say {says:?}: {line}");
    assert!(line.contains("-- fix: "), "{line}");
}

#[tokio::test]
async fn everything_set_up_right_passes_and_json_gives_each_check_its_status() {
    let setup = Setup::new();
    let moto = Moto::start().await;
    let now = OffsetDateTime::now_utc();
    let pair = certificate(
        &setup.dir(),
        now - Duration::days(1),
        now + Duration::days(90),
    );
    let configure = |command: &mut Command| {
        moto.configure(command, "site-a");
        // A lock moto lets expire.
        command.args(["--s3-lock-days", "1", "--s3-lock-mode", "governance"]);
        with_tls(command, &pair);
    };

    let passed = setup.doctor(configure).success();
    assert!(
        !passed.stdout.lines().any(|l| l.starts_with("FAIL")),
        "{}",
        passed.report()
    );
    for check in [
        "directory",
        "free space",
        "lock",
        "secret",
        "token",
        "scope rooms",
        "scope memberships",
        "scope compliance events",
        "clock",
        "webhook memberships/created (every room)",
        "webhook memberships/deleted (every room)",
        "webhook memberships/updated (every room)",
        "bucket",
        "bucket write",
        "tls",
    ] {
        assert!(
            line(&passed, check).starts_with("ok"),
            "{check}\n{}",
            passed.report()
        );
    }
    // localhost is no address Webex can reach: a warning, not a failure.
    assert!(line(&passed, "public url").starts_with("warn"));
    assert!(passed.stdout.contains("doctor: "), "{}", passed.report());

    let mut json = setup.command();
    json.args(["doctor", "--json"]);
    configure(&mut json);
    let json = run(&mut json).success();
    let report: Value = serde_json::from_str(&json.stdout).expect("one JSON document");
    assert_eq!(report["version"], 1);
    assert_eq!(report["status"], "warn", "the public URL's warning");
    let checks = report["checks"].as_array().unwrap();
    assert_eq!(checks.len(), passed.stdout.lines().count() - 1);
    for check in checks {
        let object = check.as_object().unwrap();
        let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, ["check", "fix", "found", "status"], "{check}");
        assert!(
            ["ok", "warn", "fail", "skipped"].contains(&check["status"].as_str().unwrap()),
            "{check}"
        );
        assert_eq!(check["fix"].is_null(), check["status"] == "ok", "{check}");
    }
    let tls = checks.iter().find(|c| c["check"] == "tls").unwrap();
    assert_eq!(tls["status"], "ok");
}

/// What a test does to a webhook of the fake, given its id.
type Breaks = fn(&FakeWebex, &str);

#[test]
fn a_wrong_token_an_inactive_webhook_and_one_with_another_secret_each_fail_by_name() {
    let setup = Setup::new();
    setup.doctor(|_| {}).success();

    let wrong = setup.doctor(|command| {
        command.env("WEBEX_TOKEN", "not-the-token");
    });
    let wrong = wrong.code(1);
    assert_failed(&wrong, "token", "refused");
    assert!(line(&wrong, "webhooks").starts_with("skipped"));

    // Each made in turn, the other webhooks still passing.
    let broken: [(&str, &str, Breaks); 2] = [
        ("created", "inactive", |fake, id| {
            fake.set_status(id, "inactive")
        }),
        ("deleted", "another secret", |fake, id| {
            fake.set_secret(id, "someone-elses-secret")
        }),
    ];
    for (event, says, breaks) in broken {
        breaks(&setup.fake, &setup.webhook(event));
        let failed = setup.doctor(|_| {}).code(1);
        let check = format!("webhook memberships/{event} (every room)");
        assert_failed(&failed, &check, says);
        let untouched = line(&failed, "webhook memberships/updated (every room)");
        assert!(untouched.starts_with("ok"), "{untouched}");
        run(setup.command().arg("subscribe")).success();
    }
    setup.doctor(|_| {}).success();
}

#[test]
fn a_missing_webhook_and_a_refused_compliance_scope_under_events_api_fail_by_name() {
    let setup = Setup::new();
    let other_place = setup.doctor(|command| {
        command.env("ROLLCALL_TARGET", "board");
    });
    assert_failed(
        &other_place.code(1),
        "webhook memberships/updated (every room)",
        "not registered",
    );
    let events = setup.doctor(|command| {
        command.arg("--events-api");
    });
    assert_failed(&events.code(1), "scope compliance events", "403");
    setup.fake.set_compliance(true);
    setup
        .doctor(|command| {
            command.arg("--events-api");
        })
        .success();
}

#[tokio::test]
async fn a_bucket_without_object_lock_fails_by_name() {
    let setup = Setup::new();
    let moto = Moto::start_with(false).await;
    let unlocked = setup
        .doctor(|command| moto.configure(command, "site-a"))
        .code(1);
    assert_failed(&unlocked, "bucket", "no Object Lock");
}

#[test]
fn an_expired_certificate_and_a_key_of_another_fail_by_name_and_one_near_expiry_warns() {
    let setup = Setup::new();
    let now = OffsetDateTime::now_utc();
    let expired = certificate(
        setup.temp.path(),
        now - Duration::days(90),
        now - Duration::days(1),
    );
    let run = setup.doctor(|command| with_tls(command, &expired)).code(1);
    assert_failed(&run, "tls", "expired");

    let (cert, _) = certificate(setup.temp.path(), now, now + Duration::days(90));
    let other_key = setup.temp.path().join("other-key.pem");
    std::fs::write(
        &other_key,
        rcgen::KeyPair::generate().unwrap().serialize_pem(),
    )
    .unwrap();
    let mismatched = setup
        .doctor(|command| with_tls(command, &(cert.clone(), other_key)))
        .code(1);
    assert_failed(&mismatched, "tls", "does not match the certificate");

    let soon = certificate(setup.temp.path(), now, now + Duration::days(5));
    let warned = setup.doctor(|command| with_tls(command, &soon)).success();
    assert!(
        line(&warned, "tls").starts_with("warn"),
        "{}",
        warned.report()
    );
}

#[test]
fn without_a_token_or_a_bucket_those_checks_say_skipped_and_why() {
    let setup = Setup::new();
    let skipped = setup
        .doctor(|command| {
            command.env_remove("WEBEX_TOKEN");
        })
        .success();
    for check in ["token", "clock", "webhooks", "bucket", "tls"] {
        let line = line(&skipped, check);
        assert!(line.starts_with("skipped"), "{line}");
    }
    assert!(line(&skipped, "token").contains("WEBEX_TOKEN is not set"));
    assert!(line(&skipped, "bucket").contains("--s3-url"));
}

#[test]
fn a_clock_far_from_webexs_warns_without_failing() {
    let setup = Setup::new();
    setup.fake.set_date_offset(-60);
    let ahead = setup.doctor(|_| {}).success();
    let clock = line(&ahead, "clock");
    assert!(clock.starts_with("warn"), "{}", ahead.report());
    assert!(clock.contains("ahead of Webex's"), "{clock}");
}
