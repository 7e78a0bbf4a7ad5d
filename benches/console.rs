//! The console on a generated log, through the real `rollcall serve`: one
//! room page at a time T (server time, as the browser waits for it), then
//! 8 room pages at once while a webhook sender delivers back to back,
//! with serve's RSS before and after them, its peak, and the deliveries'
//! ack latency meanwhile. With `ROLLCALL_BENCH_BASELINE=/path/to/rollcall`
//! (a build of the commit before) the same runs on a copy of the same log,
//! and the ratios follow. Measured, not asserted:
//!
//! `cargo bench --bench console` (set `ROLLCALL_BENCH_RECORDS` for another
//! size than 1,000,000).

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use anyhow::Context;
use time::macros::date;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PASSWORD: &str = "bench console password";
/// The middle of the generated log's ten days.
const AT: &str = "2026-11-06T12:00:00Z";
const CONCURRENT: usize = 8;

fn main() -> anyhow::Result<()> {
    let records = support::records();
    let temp = tempfile::tempdir().context("creating a temp dir")?;
    let generated = temp.path().join("generated");
    support::generate(&generated, records, date!(2026 - 11 - 01));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut runs = Vec::new();
    let current = PathBuf::from(env!("CARGO_BIN_EXE_rollcall"));
    for (name, bin) in [
        ("this build", Some(current)),
        ("baseline", support::baseline_bin()),
    ] {
        let Some(bin) = bin else { continue };
        let dir = temp.path().join(name.replace(' ', "-"));
        let copied = Command::new("cp")
            .arg("-a")
            .arg(&generated)
            .arg(&dir)
            .status()?;
        anyhow::ensure!(copied.success(), "copying the generated log");
        runs.push((name, runtime.block_on(measure(&bin, &dir))?));
        std::fs::remove_dir_all(&dir).ok();
    }
    println!(
        "\n{records} records; room page at {AT}; {CONCURRENT} at once with deliveries back to back\n"
    );
    println!(
        "| binary | room page at T | {CONCURRENT} room pages at once (slowest) | RSS before | RSS after | peak RSS | ack p99 during ({CONCURRENT} pages) | acks |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (name, run) in &runs {
        println!(
            "| {name} | {} | {} | {} MB | {} MB | {} MB | {} | {} |",
            support::ms(run.one),
            support::ms(run.slowest),
            run.rss_before / 1024,
            run.rss_after / 1024,
            run.peak / 1024,
            support::ms(run.ack_p99),
            run.acks
        );
    }
    if let [(_, now), (_, base)] = runs.as_slice() {
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
        println!(
            "| baseline / this build | {:.1}x | {:.1}x | {:.1}x | {:.1}x | {:.1}x | {:.1}x | |",
            ratio(base.one.as_secs_f64(), now.one.as_secs_f64()),
            ratio(base.slowest.as_secs_f64(), now.slowest.as_secs_f64()),
            ratio(base.rss_before as f64, now.rss_before as f64),
            ratio(base.rss_after as f64, now.rss_after as f64),
            ratio(base.peak as f64, now.peak as f64),
            ratio(base.ack_p99.as_secs_f64(), now.ack_p99.as_secs_f64()),
        );
    }
    Ok(())
}

/// What one binary did.
struct Run {
    /// The best of three room pages at T, one at a time.
    one: Duration,
    /// The slowest of the concurrent ones.
    slowest: Duration,
    /// KiB.
    rss_before: u64,
    rss_after: u64,
    peak: u64,
    ack_p99: Duration,
    acks: usize,
}

async fn measure(bin: &Path, dir: &Path) -> anyhow::Result<Run> {
    // An index that is up to date, as serve keeps it: built first, and
    // timed, since a first `roster` or start pays it once.
    let started = Instant::now();
    let built = Command::new(bin)
        .arg("--dir")
        .arg(dir)
        .arg("index")
        .output()?;
    if built.status.success() {
        println!(
            "{}: `rollcall index` first build {:.1} s",
            bin.display(),
            started.elapsed().as_secs_f64()
        );
    }
    let serve = Serve::start(bin, dir)?;
    let cookie = login(serve.console).await?;
    // The first page waits for whatever serve does at start.
    let started = Instant::now();
    page(serve.console, &cookie, "/").await?;
    println!(
        "{}: first search page {:.2} s",
        bin.display(),
        started.elapsed().as_secs_f64()
    );
    let rss_before = serve.status("VmRSS:");
    let mut one = Duration::MAX;
    for room in 0..3 {
        let started = Instant::now();
        page(serve.console, &cookie, &room_path(room)).await?;
        one = one.min(started.elapsed());
    }
    let sending = Arc::new(AtomicBool::new(true));
    let sender = tokio::spawn(deliveries(serve.hooks, sending.clone()));
    let pages: Vec<_> = (0..CONCURRENT as u64)
        .map(|n| {
            let cookie = cookie.clone();
            let console = serve.console;
            tokio::spawn(async move {
                let started = Instant::now();
                page(console, &cookie, &room_path(10 + n)).await?;
                Ok::<_, anyhow::Error>(started.elapsed())
            })
        })
        .collect();
    let mut slowest = Duration::ZERO;
    for took in pages {
        slowest = slowest.max(took.await??);
    }
    sending.store(false, Ordering::Relaxed);
    let latencies = sender.await??;
    let rss_after = serve.status("VmRSS:");
    let peak = serve.status("VmHWM:");
    let acks = latencies.len();
    let load = support::summarise(latencies, slowest);
    Ok(Run {
        one,
        slowest,
        rss_before,
        rss_after,
        peak,
        ack_p99: load.p99,
        acks,
    })
}

/// A room of the generated log at [`AT`].
fn room_path(room: u64) -> String {
    format!(
        "/room?id=Y2lzY29zcGFyazovL3VzLJPT00LzBkMGM5MWI2LWNlNjAtNDcyNS1iNmQwLTM0NTVkNWQxMWVmMz{room:012}&at={AT}"
    )
}

/// Delivers back to back on one keep-alive connection until told to
/// stop: each ack's latency.
async fn deliveries(hooks: SocketAddr, sending: Arc<AtomicBool>) -> anyhow::Result<Vec<Duration>> {
    let mut connection = support::Connection::open(hooks).await?;
    let mut latencies = Vec::new();
    let mut n = 0;
    while sending.load(Ordering::Relaxed) || latencies.is_empty() {
        let request = support::request("console", n);
        let started = Instant::now();
        connection.record(&request).await?;
        latencies.push(started.elapsed());
        n += 1;
    }
    Ok(latencies)
}

/// `rollcall serve` with the console on, both on 127.0.0.1:0.
struct Serve {
    child: Child,
    hooks: SocketAddr,
    console: SocketAddr,
}

impl Serve {
    fn start(bin: &Path, dir: &Path) -> anyhow::Result<Self> {
        let mut child = Command::new(bin)
            .arg("--dir")
            .arg(dir)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--console",
                "127.0.0.1:0",
            ])
            .env("ROLLCALL_SECRET", support::SECRET)
            .env("ROLLCALL_CONSOLE_PASSWORD", PASSWORD)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().context("serve's stderr")?;
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let Some(at) = line.split("address=").nth(1) else {
                    continue;
                };
                let address = at.split_whitespace().next().unwrap_or("").to_string();
                let _ = tx.send((line.contains("the console is listening"), address));
            }
        });
        let (mut hooks, mut console) = (None, None);
        while hooks.is_none() || console.is_none() {
            let (is_console, address) = rx.recv_timeout(Duration::from_secs(600))?;
            let address = Some(address.parse()?);
            if is_console {
                console = address
            } else {
                hooks = address
            }
        }
        Ok(Self {
            child,
            hooks: hooks.unwrap_or_else(|| unreachable!()),
            console: console.unwrap_or_else(|| unreachable!()),
        })
    }

    /// A `/proc/PID/status` figure, in KiB.
    fn status(&self, field: &str) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Logs in: the session cookie.
async fn login(console: SocketAddr) -> anyhow::Result<String> {
    let body = format!("password={}", PASSWORD.replace(' ', "+"));
    let answer = exchange(
        console,
        &format!(
            "POST /login HTTP/1.1\r\nhost: bench\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
    .await?;
    let cookie = answer
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .with_context(|| format!("no session cookie: {answer}"))?;
    Ok(cookie.to_string())
}

/// GET `path` with the session; fails unless it answers 200.
async fn page(console: SocketAddr, cookie: &str, path: &str) -> anyhow::Result<()> {
    let answer = exchange(
        console,
        &format!(
            "GET {path} HTTP/1.1\r\nhost: bench\r\ncookie: {cookie}\r\nconnection: close\r\n\r\n"
        ),
    )
    .await?;
    anyhow::ensure!(
        answer.starts_with("HTTP/1.1 200"),
        "{path}: {}",
        &answer[..answer.len().min(2000)]
    );
    Ok(())
}

/// One request on a connection of its own, read to its close.
async fn exchange(address: SocketAddr, request: &str) -> anyhow::Result<String> {
    let mut stream = TcpStream::connect(address).await?;
    stream.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}
