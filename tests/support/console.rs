//! [`ConsoleApp`]: the real server with its console on, both on
//! 127.0.0.1:0, in its own temp directory with a fake clock; a client
//! that logs in and keeps its session cookie by hand.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rollcall::clock::FakeClock;
use rollcall::console;
use rollcall::secret::Secret;
use rollcall::startup::{Application, Settings};
use rollcall::webhook::signature;
use serde_json::Value;
use tempfile::TempDir;

use super::app::{Running, SECRET, START};

pub const PASSWORD: &str = "correct horse battery staple";

pub struct ConsoleApp {
    /// The webhook listener.
    pub hooks: String,
    /// The console, e.g. `http://127.0.0.1:PORT`.
    pub console: String,
    pub dir: PathBuf,
    pub clock: Arc<FakeClock>,
    /// Follows no redirects, so tests see them.
    pub client: reqwest::Client,
    _temp: TempDir,
    running: Running,
}

impl ConsoleApp {
    /// A server with the console, password [`PASSWORD`].
    pub async fn spawn() -> Self {
        Self::spawn_with(Some(PASSWORD)).await
    }

    /// A server with the console; `password` as if from
    /// `ROLLCALL_CONSOLE_PASSWORD`, or none (a generated one).
    pub async fn spawn_with(password: Option<&str>) -> Self {
        let temp = tempfile::tempdir().expect("creating a temp dir");
        let clock = Arc::new(FakeClock::new(START));
        Self::spawn_in(temp, clock, password, |_| {}).await
    }

    /// A server with the console, password [`PASSWORD`], its settings
    /// changed by `configure` (which may also fill `settings.dir` first).
    pub async fn spawn_configured(configure: impl FnOnce(&mut Settings)) -> Self {
        let temp = tempfile::tempdir().expect("creating a temp dir");
        let clock = Arc::new(FakeClock::new(START));
        Self::spawn_in(temp, clock, Some(PASSWORD), configure).await
    }

    /// A server whose console trusts the sign-on proxy header only from
    /// `proxies` (CIDRs); the tests' own requests come from 127.0.0.1.
    pub async fn spawn_trusting(proxies: &[&str]) -> Self {
        let proxies: Vec<_> = proxies.iter().map(|p| p.parse().unwrap()).collect();
        Self::spawn_configured(|settings| {
            settings.console.as_mut().unwrap().trusted_proxies = proxies;
        })
        .await
    }

    /// Stops the server cleanly and starts it again on the same log.
    pub async fn restart(self) -> Self {
        self.restart_with(|_| {}).await
    }

    /// [`ConsoleApp::restart`], doing `between` to the stopped log
    /// directory first.
    pub async fn restart_with(mut self, between: impl FnOnce(&Path)) -> Self {
        let temp = std::mem::replace(&mut self._temp, tempfile::tempdir().unwrap());
        let clock = self.clock.clone();
        self.stop().await;
        between(&self.dir);
        clock.advance(time::Duration::hours(1));
        Self::spawn_in(temp, clock, Some(PASSWORD), |_| {}).await
    }

    async fn spawn_in(
        temp: TempDir,
        clock: Arc<FakeClock>,
        password: Option<&str>,
        configure: impl FnOnce(&mut Settings),
    ) -> Self {
        let dir = temp.path().join("audit-logs");
        let mut settings = Settings {
            secret: Some(Secret::new(SECRET.into())),
            console: Some(console::Settings {
                listen: "127.0.0.1:0".parse().unwrap(),
                password: password.map(|p| Secret::new(p.into())),
                secure_cookie: false,
                trust_header: Some("X-Forwarded-Email".into()),
                trusted_proxies: Vec::new(),
                download_stall: console::DOWNLOAD_STALL_TIMEOUT,
            }),
            ..Settings::new(dir.clone(), "127.0.0.1:0".parse().unwrap())
        };
        configure(&mut settings);
        let app = Application::build(settings, clock.clone())
            .await
            .expect("building the application");
        let hooks = format!("http://{}", app.local_addr());
        let console = format!("http://{}", app.console_addr().expect("the console is on"));
        let running = Running::start(app);
        Self {
            hooks,
            console,
            dir,
            clock,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            _temp: temp,
            running,
        }
    }

    /// Records a signed delivery: `event` (`created`/`deleted`) of
    /// `person` (email) named `name` in `room`.
    pub async fn deliver(&self, event: &str, room: &str, email: &str, name: &str) -> u64 {
        let seq = self.deliver_now(event, room, email, name).await;
        self.clock.advance(time::Duration::minutes(1));
        seq
    }

    /// [`ConsoleApp::deliver`] without moving the clock on.
    pub async fn deliver_now(&self, event: &str, room: &str, email: &str, name: &str) -> u64 {
        let answer = self.try_deliver(event, room, email, name).await;
        assert_eq!(answer.status(), 200, "the delivery is recorded");
        let answer: Value = answer.json().await.unwrap();
        answer["seq"]
            .as_u64()
            .expect("a recorded delivery has a seq")
    }

    /// Posts that signed delivery: the answer, whatever it is.
    pub async fn try_deliver(
        &self,
        event: &str,
        room: &str,
        email: &str,
        name: &str,
    ) -> reqwest::Response {
        let membership = format!("{room}:{email}");
        let created = self.clock.now_text();
        let mut body: Value =
            serde_json::from_slice(&super::app::membership(event, &membership, room, &created))
                .unwrap();
        body["data"]["personEmail"] = email.into();
        body["data"]["personDisplayName"] = name.into();
        body["data"]["personId"] = format!("person-{email}").into();
        let body = serde_json::to_vec(&body).unwrap();
        let sig = signature::sign(&Secret::new(SECRET.into()), &body);
        self.client
            .post(format!("{}/hooks/default", self.hooks))
            .header("content-type", "application/json")
            .header("x-spark-signature", sig)
            .body(body)
            .send()
            .await
            .expect("posting a delivery")
    }

    /// Logs in with `password`: the answer.
    pub async fn try_login(&self, password: &str) -> reqwest::Response {
        self.client
            .post(format!("{}/login", self.console))
            .form(&[("password", password)])
            .send()
            .await
            .expect("posting the login form")
    }

    /// Logs in with [`PASSWORD`]: the session cookie.
    pub async fn login(&self) -> String {
        let answer = self.try_login(PASSWORD).await;
        assert_eq!(answer.status(), 303, "a right password logs in");
        let cookie = answer
            .headers()
            .get("set-cookie")
            .expect("a session cookie")
            .to_str()
            .unwrap();
        cookie.split(';').next().unwrap().to_string()
    }

    /// GET `path` on the console with `cookie` (if any): status, the
    /// Location header and the body.
    pub async fn get(&self, path: &str, cookie: Option<&str>) -> (u16, String, String) {
        let headers: Vec<_> = cookie.map(|c| ("cookie", c)).into_iter().collect();
        let answer = self.get_with(path, &headers).await;
        let status = answer.status().as_u16();
        let location = location(&answer);
        (status, location, answer.text().await.unwrap())
    }

    /// GET `path` on the console with these request headers: the answer.
    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self.client.get(format!("{}{path}", self.console));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("a GET request")
    }

    /// POST a form to `path` with `cookie` (if any): status, Location.
    pub async fn post(
        &self,
        path: &str,
        cookie: Option<&str>,
        form: &[(&str, &str)],
    ) -> (u16, String) {
        let mut request = self
            .client
            .post(format!("{}{path}", self.console))
            .form(form);
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        let answer = request.send().await.expect("a POST request");
        (answer.status().as_u16(), location(&answer))
    }

    /// The access log's lines.
    pub fn access_log(&self) -> Vec<Value> {
        access_log(&self.dir)
    }

    /// The access log's lines once `done` says they hold what a test
    /// waits for (lines written without holding the answer land a moment
    /// after it); fails the test after a bound.
    pub async fn access_log_once(&self, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        for _ in 0..1000 {
            let lines = self.access_log();
            if done(&lines) {
                return lines;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the access log never got there: {:?}", self.access_log());
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(&mut self) {
        self.running.stop().await;
    }
}

fn location(answer: &reqwest::Response) -> String {
    answer
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// The access log's day files, `DIR/access/console-DAY.jsonl`, oldest
/// first.
pub fn access_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("access"))
        .map(|entries| entries.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.retain(|p| {
        let name = p.file_name().unwrap().to_str().unwrap();
        name.starts_with("console-") && name.ends_with(".jsonl")
    });
    files.sort();
    files
}

/// The lines of the access log, across its day files.
pub fn access_log(dir: &Path) -> Vec<Value> {
    access_files(dir)
        .iter()
        .flat_map(|path| {
            std::fs::read_to_string(path)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).expect("an access line is JSON"))
                .collect::<Vec<Value>>()
        })
        .collect()
}

/// The CSRF token in a page's logout form.
pub fn csrf_of(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("the page has a CSRF field");
    let rest = &page[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

trait NowText {
    fn now_text(&self) -> String;
}

impl NowText for FakeClock {
    fn now_text(&self) -> String {
        use rollcall::clock::Clock;
        rollcall::log::record::format_timestamp(self.now())
    }
}
