//! [`Browser`]: headless Chromium driven through chromedriver's WebDriver
//! HTTP API with reqwest (a WebDriver crate would add a second HTTP stack
//! for the dozen calls the console tests make). Debian's `chromium` and
//! `chromium-driver` packages; `.ci/run` installs them.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};
use tempfile::TempDir;

/// How long a page may take before the test fails instead of hanging;
/// never a measure of speed.
const HANG_GUARD: std::time::Duration = std::time::Duration::from_secs(30);

/// chromedriver and one Chromium session with a fresh profile.
pub struct Browser {
    driver: Child,
    session: String,
    client: reqwest::Client,
    _profile: TempDir,
    /// Where Chromium saves downloads.
    pub downloads: TempDir,
}

impl Browser {
    /// Starts chromedriver on a port it picks and opens a session.
    pub async fn start() -> Self {
        let mut driver = Command::new("chromedriver")
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("running chromedriver: install Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)");
        let port = {
            let stdout = driver.stdout.take().expect("chromedriver's stdout");
            let mut lines = BufReader::new(stdout).lines();
            let port = loop {
                let line = lines
                    .next()
                    .expect("chromedriver exited before it said its port")
                    .expect("reading chromedriver's output");
                if let Some(rest) = line.split("started successfully on port ").nth(1) {
                    break rest.trim_end_matches('.').to_string();
                }
            };
            // Keep reading, so chromedriver never writes to a closed pipe.
            std::thread::spawn(move || lines.for_each(drop));
            port
        };
        let profile = tempfile::tempdir().unwrap();
        let downloads = tempfile::tempdir().unwrap();
        let capabilities = json!({
            "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": "/usr/bin/chromium",
                    "args": [
                        "--headless", "--no-sandbox", "--disable-gpu",
                        "--disable-dev-shm-usage", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update",
                        "--disable-sync", "--window-size=1280,900",
                        format!("--user-data-dir={}", profile.path().display()),
                    ],
                    "prefs": {
                        "download.default_directory": downloads.path(),
                        "download.prompt_for_download": false,
                    },
                },
            } }
        });
        let client = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let answer: Value = client
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .expect("asking chromedriver for a session")
            .json()
            .await
            .unwrap();
        let session = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {answer}"))
            .to_string();
        Self {
            driver,
            session: format!("{base}/session/{session}"),
            client,
            _profile: profile,
            downloads,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let answer: Value = self
            .client
            .request(method, format!("{}{path}", self.session))
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("WebDriver {path}: {e}"))
            .json()
            .await
            .unwrap();
        if let Some(error) = answer["value"]["error"].as_str() {
            panic!("WebDriver {path}: {error}: {}", answer["value"]["message"]);
        }
        answer["value"].clone()
    }

    /// Loads `url` and waits for the page.
    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", json!({ "url": url }))
            .await;
    }

    pub async fn url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", json!({}))
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The page's markup as the browser holds it.
    pub async fn source(&self) -> String {
        self.call(reqwest::Method::GET, "/source", json!({}))
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn element(&self, css: &str) -> String {
        let found = self
            .call(
                reqwest::Method::POST,
                "/element",
                json!({ "using": "css selector", "value": css }),
            )
            .await;
        found
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {css}"))
            .to_string()
    }

    /// Types `text` into the field `css` picks (after clearing it).
    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/clear"),
            json!({}),
        )
        .await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            json!({ "text": text }),
        )
        .await;
    }

    /// Clicks what `css` picks, a button that submits a form, and waits
    /// until the next page has loaded: chromedriver's click may return
    /// before the navigation it starts, so the old page is marked and
    /// the new one is the first unmarked, loaded document.
    pub async fn submit(&self, css: &str) {
        let id = self.element(css).await;
        self.run("window.__before_submit = true; return null").await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            json!({}),
        )
        .await;
        let deadline = std::time::Instant::now() + HANG_GUARD;
        loop {
            let loaded = self
                .client
                .post(format!("{}/execute/sync", self.session))
                .json(&json!({
                    "script": "return !window.__before_submit && document.readyState === 'complete'",
                    "args": [],
                }))
                .send()
                .await
                .and_then(|a| a.error_for_status());
            // While the old page unloads, the script may fail: ask again.
            if let Ok(answer) = loaded
                && answer
                    .json::<Value>()
                    .await
                    .ok()
                    .and_then(|v| v["value"].as_bool())
                    == Some(true)
            {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the page after clicking {css} did not load within {HANG_GUARD:?}"
            );
        }
    }

    /// Runs `script` in the page and returns what it returns.
    pub async fn run(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            json!({ "script": script, "args": [] }),
        )
        .await
    }

    /// The visible text of what `css` picks.
    pub async fn text(&self, css: &str) -> String {
        let id = self.element(css).await;
        self.call(
            reqwest::Method::GET,
            &format!("/element/{id}/text"),
            json!({}),
        )
        .await
        .as_str()
        .unwrap()
        .to_string()
    }

    /// Clicks what `css` picks.
    pub async fn click(&self, css: &str) {
        let id = self.element(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            json!({}),
        )
        .await;
    }

    /// The contents of the download saved as `name`, once Chromium has
    /// finished writing it (it writes under a `.crdownload` name first,
    /// and may make the final name empty before moving that over it; a
    /// download the tests take is never empty).
    pub async fn downloaded(&self, name: &str) -> String {
        let path = self.downloads.path().join(name);
        let deadline = std::time::Instant::now() + HANG_GUARD;
        loop {
            if let Ok(text) = std::fs::read_to_string(&path)
                && !text.is_empty()
            {
                return text;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{name} was not downloaded within {HANG_GUARD:?}"
            );
            // Ask the browser something, which takes a round trip,
            // rather than spin on the file system.
            self.url().await;
        }
    }

    /// A PNG of the window.
    pub async fn screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let png = self
            .call(reqwest::Method::GET, "/screenshot", json!({}))
            .await;
        base64::engine::general_purpose::STANDARD
            .decode(png.as_str().expect("a base64 screenshot"))
            .expect("a base64 screenshot")
    }

    /// Closes the browser and chromedriver.
    pub async fn quit(mut self) {
        let _ = self.client.delete(&self.session).send().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
