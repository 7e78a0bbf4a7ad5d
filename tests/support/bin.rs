//! The real `rollcall` binary: one-shot commands with a report of what ran
//! when they fail, and a `serve` process on 127.0.0.1:0.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rollcall::secret::Secret;
use rollcall::webhook::signature;

use super::app::SECRET;

pub const BIN: &str = env!("CARGO_BIN_EXE_rollcall");

/// `rollcall --dir DIR`, with no rollcall or Webex settings inherited from
/// the environment.
pub fn rollcall(dir: &Path) -> Command {
    let mut command = Command::new(BIN);
    for (key, _) in std::env::vars() {
        if key.starts_with("ROLLCALL_") || key.starts_with("WEBEX_") || key == "RUST_LOG" {
            command.env_remove(key);
        }
    }
    command.arg("--dir").arg(dir).stdin(Stdio::null());
    command
}

/// How long a process told to stop may take before the test fails
/// instead of hanging; never a measure of speed.
const HANG_GUARD: Duration = Duration::from_secs(30);

/// Waits for `child`; if it has not exited within [`HANG_GUARD`], kills it
/// and fails the test.
pub fn wait_bounded(child: &mut Child) -> ExitStatus {
    let pid = child.id().to_string();
    let (exited, watch) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        let hung = matches!(
            watch.recv_timeout(HANG_GUARD),
            Err(RecvTimeoutError::Timeout)
        );
        if hung {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
        }
        hung
    });
    let status = child.wait().expect("waiting for a child process");
    drop(exited);
    assert!(
        !watchdog.join().unwrap(),
        "the process did not exit within {HANG_GUARD:?}"
    );
    status
}

/// What a finished command did.
pub struct Run {
    pub describe: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Panics with the command, its status and its output unless it exited 0.
    pub fn success(self) -> Self {
        self.code(0)
    }

    /// Panics with the command, its status and its output unless it
    /// exited with `code`.
    pub fn code(self, code: i32) -> Self {
        assert_eq!(self.status.code(), Some(code), "{}", self.report());
        self
    }

    pub fn report(&self) -> String {
        format!(
            "command: {}\nstatus: {}\n--- stdout\n{}\n--- stderr\n{}",
            self.describe, self.status, self.stdout, self.stderr
        )
    }
}

/// Runs `command` to the end; one that would run on (a broken check that
/// lets `serve` start) fails the test instead of hanging it.
pub fn run(command: &mut Command) -> Run {
    let describe = format!("{command:?}");
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {describe}: {e}"));
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let status = wait_bounded(&mut child);
    Run {
        describe,
        status,
        stdout: stdout.join().expect("reading stdout"),
        stderr: stderr.join().expect("reading stderr"),
    }
}

/// A `rollcall serve` process.
pub struct ServerProcess {
    /// `http://` or, under `--tls-cert`, `https://` and the address.
    pub address: String,
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl ServerProcess {
    /// Starts `rollcall serve` on 127.0.0.1:0 in `dir` and waits for its
    /// "listening" line.
    pub fn start(dir: &Path, configure: impl FnOnce(&mut Command)) -> Self {
        let mut command = rollcall(dir);
        command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        configure(&mut command);
        let mut child = command.spawn().expect("starting rollcall serve");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut seen = String::new();
        let address = loop {
            let Some(Ok(line)) = lines.next() else {
                let status = child.wait().unwrap();
                panic!("rollcall serve exited ({status}) before listening:\n{seen}");
            };
            seen.push_str(&line);
            seen.push('\n');
            if line.contains("rollcall is listening")
                && let Some(url) = url_in(&line)
            {
                break url;
            }
        };
        let stderr = Arc::new(Mutex::new(seen));
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let mut all = sink.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
        });
        Self {
            address,
            child,
            stderr,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until the server has written `count` lines holding
    /// `needle`, failing the test after [`HANG_GUARD`]; the last of them.
    pub fn wait_for_lines(&self, needle: &str, count: usize) -> String {
        let deadline = std::time::Instant::now() + HANG_GUARD;
        loop {
            let stderr = self.stderr();
            if let Some(line) = stderr.lines().filter(|l| l.contains(needle)).nth(count - 1) {
                return line.to_string();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the server never logged {needle:?} {count} time(s):\n{stderr}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The console's URL, from its "listening" line.
    pub fn console_address(&self) -> String {
        url_in(&self.wait_for_lines("the console is listening", 1))
            .expect("the console's listening line names its address")
    }

    /// Posts `body` to `/hooks/team` through `client`, signed with
    /// [`SECRET`] (the server is to have it as `ROLLCALL_SECRET`).
    pub async fn deliver(&self, client: &reqwest::Client, body: &[u8]) -> reqwest::Response {
        let sig = signature::sign(&Secret::new(SECRET.into()), body);
        client
            .post(format!("{}/hooks/team", self.address))
            .header("X-Spark-Signature", sig)
            .header("Content-Type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .expect("posting a delivery")
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill(mut self) -> ExitStatus {
        self.child.kill().expect("killing the server");
        self.child.wait().unwrap()
    }

    /// SIGTERM, then waits for the process to exit.
    pub fn terminate(mut self) -> ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("running kill");
        assert!(sent.success());
        wait_bounded(&mut self.child)
    }
}

/// `scheme://address` from a listening line's `address=` and `scheme=`.
fn url_in(line: &str) -> Option<String> {
    let field = |name: &str| {
        line.split(&format!(" {name}="))
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
    };
    Some(format!("{}://{}", field("scheme")?, field("address")?))
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
