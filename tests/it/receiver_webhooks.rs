//! Two receivers' webhooks in one Webex account, against the fake API:
//! each registers, rechecks, lists and checks only its own, even when both
//! are (mis)configured with the same public URL and target, and a webhook
//! from before receivers had names is adopted by the first that touches
//! it and left alone by the other.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rollcall::secret::Secret;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::support::app::TestApp;
use crate::support::bin::{Run, rollcall, run};
use crate::support::fake_webex::{FakeWebex, TOKEN};

/// Both receivers' public URL: the misconfiguration where only the names
/// tell their webhooks apart. Resolves here, for `doctor`.
const PUBLIC_URL: &str = "https://localhost";

/// Two receivers' directories, each with its own secret, on one fake API.
struct Two {
    temp: TempDir,
    fake: FakeWebex,
}

impl Two {
    fn new() -> Self {
        let temp = tempfile::tempdir().unwrap();
        for (name, secret) in [("a", "secret-of-a"), ("b", "secret-of-b")] {
            let dir = temp.path().join(name);
            std::fs::create_dir(&dir).unwrap();
            std::fs::write(dir.join(".secret"), format!("{secret}\n")).unwrap();
        }
        Two {
            temp,
            fake: FakeWebex::start(),
        }
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.temp.path().join(name)
    }

    /// `rollcall COMMAND` as receiver `site-NAME`, on its directory.
    fn run(&self, name: &str, args: &[&str]) -> Run {
        run(rollcall(&self.dir(name))
            .args(args)
            .env("ROLLCALL_RECEIVER", format!("site-{name}"))
            .env("ROLLCALL_PUBLIC_URL", PUBLIC_URL)
            .env("WEBEX_TOKEN", TOKEN)
            .env("WEBEX_API_URL", &self.fake.url))
    }

    fn subscribe(&self, name: &str) -> Run {
        self.run(name, &["subscribe"]).success()
    }

    /// The webhooks whose name is receiver `site-NAME`'s.
    fn webhooks_of(&self, name: &str) -> Vec<Value> {
        let prefix = format!("rollcall@site-{name} ");
        self.fake
            .webhooks()
            .into_iter()
            .filter(|w| w["name"].as_str().unwrap().starts_with(&prefix))
            .collect()
    }
}

fn id(webhook: &Value) -> &str {
    webhook["id"].as_str().unwrap()
}

/// The names on the lines `rollcall webhooks` marks with `*`, sorted.
fn marked(listed: &Run) -> Vec<String> {
    let mut names: Vec<String> = listed
        .stdout
        .lines()
        .filter(|l| l.starts_with('*'))
        .map(|l| {
            let at = l.find("rollcall@").unwrap_or_else(|| panic!("{l}"));
            l[at..].split("  ").next().unwrap().to_string()
        })
        .collect();
    names.sort();
    names
}

fn names(webhooks: &[Value]) -> Vec<String> {
    let mut names: Vec<String> = webhooks
        .iter()
        .map(|w| w["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn subscribe_of_receiver_b_leaves_receiver_a_s_webhooks_as_they_were() {
    let two = Two::new();
    let first = two.subscribe("a");
    assert!(first.stdout.contains("3 created"), "{}", first.report());
    let disabled = id(&two.webhooks_of("a")[0]).to_string();
    two.fake.set_status(&disabled, "inactive");
    let a_before = two.webhooks_of("a");

    let second = two.subscribe("b");

    assert!(
        second.stdout.contains("3 created, 0 kept, 0 re-activated"),
        "{}",
        second.report()
    );
    assert_eq!(
        two.webhooks_of("a"),
        a_before,
        "ids, names, secrets, status"
    );
    assert_eq!(two.fake.count("PUT", "/webhooks"), 0);
    let b = two.webhooks_of("b");
    assert_eq!(b.len(), 3);
    assert!(b.iter().all(|w| w["secret"] == "secret-of-b"), "{b:#?}");
    assert!(b.iter().all(|w| w["targetUrl"] == a_before[0]["targetUrl"]));

    // A's own run puts its webhook back on, and touches none of B's.
    let again = two.subscribe("a");
    assert!(
        again.stdout.contains("0 created, 2 kept, 1 re-activated"),
        "{}",
        again.report()
    );
    assert_eq!(two.fake.count("PUT", &format!("/webhooks/{disabled}")), 1);
    assert_eq!(two.webhooks_of("b"), b);

    for (name, own) in [("a", two.webhooks_of("a")), ("b", b)] {
        let listed = two.run(name, &["webhooks"]).success();
        assert_eq!(marked(&listed), names(&own), "{}", listed.report());
        assert!(
            listed.stdout.contains(&format!(
                "6 webhooks, 3 pointing at this server (*) of receiver site-{name}"
            )),
            "{}",
            listed.report()
        );
    }
}

#[test]
fn doctor_checks_only_its_own_receiver_s_webhooks() {
    let two = Two::new();
    let url = format!("{PUBLIC_URL}/hooks/default");
    // A's first in the list, disabled: B's check must look past them.
    for (name, status) in [("a", "inactive"), ("b", "active")] {
        for event in ["created", "deleted", "updated"] {
            two.fake.add_webhook(json!({
                "name": format!("rollcall@site-{name} default {event}"),
                "targetUrl": url,
                "resource": "memberships",
                "event": event,
                "secret": format!("secret-of-{name}"),
                "status": status,
            }));
        }
    }

    let doctor = two.run("b", &["doctor"]);

    let checked = webhook_checks(&doctor);
    assert_eq!(checked.len(), 3, "{}", doctor.report());
    assert!(
        checked.iter().all(|l| l.starts_with("ok ")),
        "{}",
        doctor.report()
    );
    assert!(
        doctor.stdout.contains("receiver: site-b"),
        "{}",
        doctor.report()
    );
    let a = two.run("a", &["doctor"]);
    let checked = webhook_checks(&a);
    assert_eq!(checked.len(), 3, "{}", a.report());
    assert!(
        checked.iter().all(|l| l.starts_with("FAIL")),
        "{}",
        a.report()
    );
}

/// `doctor`'s lines about single webhooks.
fn webhook_checks(doctor: &Run) -> Vec<&str> {
    doctor
        .stdout
        .lines()
        .filter(|l| {
            l.get(8..)
                .is_some_and(|check| check.starts_with("webhook "))
        })
        .collect()
}

#[test]
fn a_webhook_named_for_no_receiver_is_adopted_by_the_first_receiver_and_left_to_it() {
    let two = Two::new();
    let url = format!("{PUBLIC_URL}/hooks/default");
    let mut old = Vec::new();
    for event in ["created", "deleted", "updated"] {
        old.push(two.fake.add_webhook(json!({
            "name": format!("rollcall default {event}"),
            "targetUrl": url,
            "resource": "memberships",
            "event": event,
            "secret": "secret-of-a",
        })));
    }

    let adopted = two.subscribe("a");
    let again = two.subscribe("a");
    let other = two.subscribe("b");

    assert!(
        adopted
            .stdout
            .contains("0 created, 0 kept, 0 re-activated, 0 secret updated, 3 adopted"),
        "{}",
        adopted.report()
    );
    assert!(
        again.stdout.contains("0 created, 3 kept"),
        "{}",
        again.report()
    );
    assert!(other.stdout.contains("3 created"), "{}", other.report());
    let a = two.webhooks_of("a");
    let mut ids: Vec<&str> = a.iter().map(id).collect();
    ids.sort_unstable();
    assert_eq!(ids, old, "adopted in place, not made anew");
    assert_eq!(
        names(&a),
        [
            "rollcall@site-a default created",
            "rollcall@site-a default deleted",
            "rollcall@site-a default updated"
        ]
    );
    assert!(a.iter().all(|w| w["secret"] == "secret-of-a"));
}

/// Receiver `site-b` served in process on `dir`, rechecking every 50 ms,
/// with the fake's token and the shared public URL.
async fn serve_b(dir: &Path, fake: &FakeWebex) -> TestApp {
    let url = fake.url.clone();
    TestApp::spawn_in(
        dir,
        std::sync::Arc::new(rollcall::clock::FakeClock::new(crate::support::app::START)),
        move |settings| {
            settings.receiver = Some("site-b".parse().unwrap());
            settings.webex.token = Some(Secret::new(TOKEN.into()));
            settings.webex.api_url = url;
            settings.webex.public_url = Some(PUBLIC_URL.into());
            settings.webex.recheck_every = Duration::from_millis(50);
        },
    )
    .await
}

#[tokio::test]
async fn receiver_b_s_recheck_switches_its_own_webhook_back_on_and_never_receiver_a_s() {
    let two = Two::new();
    two.subscribe("a");
    let a_disabled = id(&two.webhooks_of("a")[1]).to_string();
    two.fake.set_status(&a_disabled, "inactive");

    let b = serve_b(&two.dir("b"), &two.fake).await;
    let own = id(&two.webhooks_of("b")[1]).to_string();
    two.fake.set_status(&own, "inactive");
    // Its own switched back on, then a whole round more: the recheck went
    // past the other receiver's disabled webhook at least once.
    let put = format!("/webhooks/{own}");
    two.fake
        .wait_for("a round after the re-activation", |log| {
            log.iter()
                .position(|r| r.is("PUT", &put))
                .is_some_and(|at| log[at..].iter().any(|r| r.is("GET", "/webhooks")))
        })
        .await;
    b.stop().await;

    assert_eq!(two.fake.count("PUT", &format!("/webhooks/{a_disabled}")), 0);
    let a = two.webhooks_of("a");
    let still = a.iter().find(|w| id(w) == a_disabled).unwrap();
    assert_eq!(still["status"], "inactive");
    assert!(a.iter().all(|w| w["secret"] == "secret-of-a"));
    assert_eq!(two.webhooks_of("b").len(), 3);
}
