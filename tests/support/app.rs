//! [`TestApp`]: the real server, in process, on 127.0.0.1:0 with its own
//! temp directory and a fake clock.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rollcall::clock::FakeClock;
use rollcall::secret::Secret;
use rollcall::startup::{Application, Settings};
use rollcall::webhook::signature;
use serde_json::Value;
use tempfile::TempDir;
use time::OffsetDateTime;
use time::macros::datetime;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const SECRET: &str = "test-webhook-secret";
/// Where every test's fake clock starts.
pub const START: OffsetDateTime = datetime!(2026-11-27 12:00:00 UTC);

pub struct TestApp {
    pub address: String,
    pub dir: PathBuf,
    pub clock: Arc<FakeClock>,
    pub client: reqwest::Client,
    /// Finished nightly archival runs; `None` when archival is off.
    pub archive_runs: Option<tokio::sync::watch::Receiver<u64>>,
    _temp: Option<TempDir>,
    running: Running,
}

impl TestApp {
    /// Posts a chunked delivery that grows past the 64 KiB limit with no
    /// Content-Length, and returns the raw answer (bounded, so a server
    /// that never answers fails the test instead of hanging it).
    pub async fn post_chunked_past_the_limit(&self) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let address = self.address.trim_start_matches("http://").to_string();
        let mut conn = tokio::net::TcpStream::connect(&address).await.unwrap();
        let head = "POST /hooks/default HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
        conn.write_all(head.as_bytes()).await.unwrap();
        let chunk = vec![b' '; 8192];
        for _ in 0..9 {
            let framed = [
                format!("{:x}\r\n", chunk.len()).into_bytes(),
                chunk.clone(),
                b"\r\n".to_vec(),
            ]
            .concat();
            if conn.write_all(&framed).await.is_err() {
                break;
            }
        }
        let _ = conn.write_all(b"0\r\n\r\n").await;
        let mut answer = Vec::new();
        tokio::time::timeout(
            std::time::Duration::from_secs(30),
            conn.read_to_end(&mut answer),
        )
        .await
        .expect("no answer")
        .ok();
        String::from_utf8_lossy(&answer).into_owned()
    }

    /// A server on a fresh directory with default settings.
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// A server on a fresh directory; `configure` may change the settings.
    pub async fn spawn_with(configure: impl FnOnce(&mut Settings)) -> Self {
        let temp = tempfile::tempdir().expect("creating a temp dir");
        let dir = temp.path().join("audit-logs");
        let mut app = Self::spawn_in(&dir, Arc::new(FakeClock::new(START)), configure).await;
        app._temp = Some(temp);
        app
    }

    /// A server on `dir` (which may hold a log already) with `clock`.
    pub async fn spawn_in(
        dir: &Path,
        clock: Arc<FakeClock>,
        configure: impl FnOnce(&mut Settings),
    ) -> Self {
        let mut settings = Settings {
            secret: Some(Secret::new(SECRET.into())),
            ..Settings::new(dir.to_path_buf(), "127.0.0.1:0".parse().unwrap())
        };
        configure(&mut settings);
        let app = Application::build(settings, clock.clone())
            .await
            .expect("building the application");
        let address = format!("http://{}", app.local_addr());
        let archive_runs = app.archive_runs();
        let running = Running::start(app);
        Self {
            address,
            dir: dir.to_path_buf(),
            clock,
            client: reqwest::Client::new(),
            archive_runs,
            _temp: None,
            running,
        }
    }

    /// Posts `body` to `/hooks/{target}`, signed with the server's secret.
    pub async fn deliver(&self, target: &str, body: &[u8]) -> reqwest::Response {
        let sig = signature::sign(&Secret::new(SECRET.into()), body);
        self.post(target, body, Some(&sig)).await
    }

    /// Posts `body` to `/hooks/{target}` with the given signature header.
    pub async fn post(
        &self,
        target: &str,
        body: &[u8],
        signature: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(format!("{}/hooks/{target}", self.address))
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(sig) = signature {
            request = request.header("x-spark-signature", sig);
        }
        request.send().await.expect("posting a delivery")
    }

    /// GET `path` (`/healthz`, `/metrics`, ...): the status and body.
    pub async fn get(&self, path: &str) -> (u16, String) {
        let answer = self
            .client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("a GET request");
        let status = answer.status().as_u16();
        (status, answer.text().await.expect("reading the answer"))
    }

    /// Every membership record in the live day files, in file-name then
    /// line order: the receiver's own start and stop records left out.
    pub fn records(&self) -> Vec<Value> {
        membership_records(&self.dir)
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        self.running.stop().await;
    }
}

/// A built application serving on a task of its own until stopped (or
/// dropped, which asks it to stop without waiting).
pub struct Running {
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Running {
    pub fn start(app: Application) -> Self {
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until_stopped(async {
            let _ = stopped.await;
        }));
        Self {
            stop: Some(stop),
            server: Some(server),
        }
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("the server task")
                .expect("the server stopped cleanly");
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A delivery body and its JSON answer.
pub async fn json_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("reading the answer");
    let value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("answer is not JSON ({e}): {text}"));
    (status, value)
}

/// Every record in `dir`'s live day files, in file-name then line order.
pub fn live_records(dir: &Path) -> Vec<Value> {
    live_lines(dir)
        .iter()
        .map(|line| serde_json::from_str(line).expect("a record line is JSON"))
        .collect()
}

/// Every line of `dir`'s live day files, as stored, in file-name then
/// line order.
pub fn live_lines(dir: &Path) -> Vec<String> {
    let mut days: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("reading the log directory")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    days.sort();
    days.iter()
        .flat_map(|day| {
            std::fs::read_to_string(day)
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect::<Vec<String>>()
        })
        .collect()
}

/// [`live_records`] without the receiver's own `receiver_started` and
/// `receiver_stopped`.
pub fn membership_records(dir: &Path) -> Vec<Value> {
    live_records(dir)
        .into_iter()
        .filter(|r| !r["event"].as_str().unwrap_or("").starts_with("receiver_"))
        .collect()
}

/// Checks every live record's own hash, the chain links and that seq runs
/// 1..=n without gaps; returns the records' seqs.
pub fn assert_chain_whole(dir: &Path) -> Vec<u64> {
    let mut previous = rollcall::log::record::GENESIS_HASH.to_string();
    let mut seqs = Vec::new();
    for day in rollcall::log::days::list(dir).expect("listing days") {
        let mut lines = day.lines().expect("opening a day");
        while let Some((line, whole)) = lines.next_line().expect("reading a day") {
            assert!(whole, "{} ends in a torn line", day.path().display());
            let record = rollcall::log::record::parse_line(line)
                .unwrap_or_else(|e| panic!("{}: {e}", day.path().display()));
            assert_eq!(
                record.prev_hash, previous,
                "chain broken at seq {}",
                record.seq
            );
            assert_eq!(record.seq, seqs.len() as u64 + 1, "seq gap or repeat");
            assert_eq!(
                record.day(),
                rollcall::log::days::day_name(day.date),
                "misfiled seq {}",
                record.seq
            );
            previous = record.hash;
            seqs.push(record.seq);
        }
    }
    seqs
}

/// A membership delivery body built from the `created` fixture, with the
/// given event (`created`/`deleted`), membership id, room and `created`.
/// The record a signed `created` delivery for membership `id` (in room
/// `room`, created 2026-11-27T01:00Z) makes, for tests of the writer alone.
pub fn membership_record(id: &str) -> rollcall::log::record::Record {
    use rollcall::webhook::payload::{self, Delivery};
    let body = membership("created", id, "room", "2026-11-27T01:00:00.000Z");
    match payload::parse(&body, &"default".parse().unwrap()).unwrap() {
        Delivery::Membership(membership) => membership.record,
        Delivery::Ignored => unreachable!("a membership body"),
    }
}

pub fn membership(event: &str, membership_id: &str, room_id: &str, created: &str) -> Vec<u8> {
    let mut body: Value =
        serde_json::from_slice(&crate::support::fixture("memberships-created-current.json"))
            .unwrap();
    body["event"] = event.into();
    body["data"]["id"] = membership_id.into();
    body["data"]["roomId"] = room_id.into();
    body["data"]["created"] = created.into();
    serde_json::to_vec(&body).unwrap()
}
