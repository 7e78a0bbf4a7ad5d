//! Ingest benchmark: measured, never asserted. Run with
//! `cargo bench --bench ingest` (or `benches/run.sh`).
//!
//! In one run it measures, on this machine:
//! - the disk's raw fdatasync rate (one small append + fdatasync per
//!   record: the ceiling without group commit);
//! - a no-op warp endpoint under the same load (the HTTP stack's ceiling);
//! - signed `POST /hooks/{target}` deliveries to the real `rollcall serve`
//!   process at 64 connections, with durable acks: rate, p50/p99, and the
//!   server's peak RSS;
//! - p50/p99 ack latency at a fixed 1,000 deliveries/s.
//!
//! It prints one markdown table with the ratios between them.

mod support;

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{Load, SECRET, Server, ms, post, summarise};
use tokio::sync::Mutex;

const CONNECTIONS: usize = 64;
const LOAD_SECONDS: u64 = 10;
const FIXED_RATE: u64 = 1_000;
const FIXED_SECONDS: u64 = 5;
const TAIL_SAMPLES: usize = 300;
const STARTUP_RECORDS: u64 = 1_000_000;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.first().map(String::as_str) == Some("noop-server") {
        return noop_server();
    }
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-ingest");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let runtime = tokio::runtime::Runtime::new()?;

    eprintln!("measuring the disk's raw fdatasync rate ...");
    let fsync_rate = raw_fdatasync_rate(&work.join("fsync-probe"), Duration::from_secs(3))?;

    eprintln!("measuring the log writer alone, {CONNECTIONS} concurrent appenders ...");
    let writer_rate = runtime.block_on(writer_alone(&work.join("writer-only")))?;

    eprintln!("measuring serve's start with {STARTUP_RECORDS} records on disk ...");
    let startup = runtime.block_on(first_ack_with_a_big_log(&work.join("big")))?;

    eprintln!("measuring a no-op warp endpoint at {CONNECTIONS} connections ...");
    let mut noop = Server::start(Command::new(std::env::current_exe()?).arg("noop-server"))?;
    let noop_load = runtime.block_on(saturate(noop.address, "noop"))?;
    noop.stop();

    eprintln!("measuring rollcall serve at {CONNECTIONS} connections ...");
    let mut serve = Server::start(
        Command::new(env!("CARGO_BIN_EXE_rollcall"))
            .args(["serve", "--listen", "127.0.0.1:0", "--dir"])
            .arg(work.join("log"))
            .env("ROLLCALL_SECRET", SECRET),
    )?;
    let serve_load = runtime.block_on(saturate(serve.address, "load"))?;
    let serve_rss = serve.peak_rss_kib();
    eprintln!("measuring rollcall serve at a fixed {FIXED_RATE}/s ...");
    let fixed = runtime.block_on(fixed_rate(serve.address))?;
    eprintln!("measuring the delay from a 200 to the line in `rollcall tail -f` ...");
    let tail = tail_delay(&work.join("log"), serve.address, &runtime)?;
    serve.stop();

    let rows = [
        (
            "raw fdatasync (1 per record)",
            format!("{fsync_rate:.0}/s"),
            String::new(),
        ),
        (
            "log writer alone (group commit, no HTTP), 64 appenders",
            format!("{writer_rate:.0}/s"),
            String::new(),
        ),
        (
            "no-op warp endpoint, 64 conns",
            format!("{:.0}/s", noop_load.rate),
            format!("p50 {} p99 {}", ms(noop_load.p50), ms(noop_load.p99)),
        ),
        (
            "rollcall signed deliveries, 64 conns, durable",
            format!("{:.0}/s", serve_load.rate),
            format!("p50 {} p99 {}", ms(serve_load.p50), ms(serve_load.p99)),
        ),
        (
            "rollcall at a fixed 1,000/s",
            format!("{:.0}/s", fixed.rate),
            format!("p50 {} p99 {}", ms(fixed.p50), ms(fixed.p99)),
        ),
        (
            "line in `tail -f`, relative to the 200 (negative: shown first)",
            format!("{TAIL_SAMPLES} samples"),
            format!("p50 {:+.2} ms p99 {:+.2} ms", tail.0, tail.1),
        ),
        (
            "serve start to first 200, 1,000,000 records on disk",
            format!("{:.2} s", startup.as_secs_f64()),
            String::new(),
        ),
        (
            "rollcall serve peak RSS",
            format!("{:.1} MiB", serve_rss as f64 / 1024.0),
            String::new(),
        ),
        (
            "rollcall / no-op endpoint",
            format!("{:.2}", serve_load.rate / noop_load.rate),
            String::new(),
        ),
        (
            "rollcall / raw fdatasync",
            format!("{:.1}x", serve_load.rate / fsync_rate),
            String::new(),
        ),
    ];
    let mut table = String::from("| measure | figure | latency |\n|---|---|---|\n");
    for (name, figure, latency) in rows {
        table.push_str(&format!("| {name} | {figure} | {latency} |\n"));
    }
    println!("{table}");
    let out = work.join("ingest.md");
    std::fs::write(&out, &table)?;
    eprintln!("table written to {}", out.display());
    Ok(())
}

/// Appends a record-sized line and fdatasyncs it, over and over.
fn raw_fdatasync_rate(path: &Path, for_how_long: Duration) -> anyhow::Result<f64> {
    let mut file = File::create(path)?;
    let line = vec![b'x'; 700];
    let started = Instant::now();
    let mut syncs = 0u64;
    while started.elapsed() < for_how_long {
        file.write_all(&line)?;
        file.sync_data()?;
        syncs += 1;
    }
    Ok(syncs as f64 / started.elapsed().as_secs_f64())
}

/// The HTTP stack alone: same route shape and body limit, no signature,
/// no disk.
fn noop_server() -> anyhow::Result<()> {
    use warp::Filter;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("noop listening address={}", listener.local_addr()?);
        let route = warp::path!("hooks" / String)
            .and(warp::post())
            .and(warp::body::content_length_limit(64 * 1024))
            .and(warp::body::bytes())
            .map(|_target: String, _body: bytes::Bytes| {
                warp::reply::json(&serde_json::json!({"status": "recorded", "seq": 0}))
            });
        warp::serve(route).incoming(listener).run().await;
        Ok(())
    })
}

/// 64 connections, each sending its next delivery as soon as the last is
/// answered, for LOAD_SECONDS.
async fn saturate(address: SocketAddr, tag: &'static str) -> anyhow::Result<Load> {
    let url = format!("http://{address}/hooks/bench");
    let started = Instant::now();
    let deadline = started + Duration::from_secs(LOAD_SECONDS);
    let workers: Vec<_> = (0..CONNECTIONS)
        .map(|worker| {
            let url = url.clone();
            tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .pool_max_idle_per_host(1)
                    .build()?;
                let mut latencies = Vec::new();
                let mut n = worker;
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    post(&client, &url, tag, n).await?;
                    latencies.push(sent.elapsed());
                    n += CONNECTIONS;
                }
                Ok::<_, anyhow::Error>(latencies)
            })
        })
        .collect();
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await??);
    }
    Ok(summarise(all, started.elapsed()))
}

/// Open loop: one delivery every 1/FIXED_RATE s whatever the answers do;
/// latency counts from when the delivery was due.
async fn fixed_rate(address: SocketAddr) -> anyhow::Result<Load> {
    let url = Arc::new(format!("http://{address}/hooks/bench"));
    let client = reqwest::Client::new();
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let mut ticks = tokio::time::interval(Duration::from_micros(1_000_000 / FIXED_RATE));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut requests = Vec::new();
    for n in 0..(FIXED_RATE * FIXED_SECONDS) as usize {
        let due = ticks.tick().await.into_std();
        let (client, url, latencies) = (client.clone(), url.clone(), latencies.clone());
        requests.push(tokio::spawn(async move {
            post(&client, &url, "fixed", n).await?;
            latencies.lock().await.push(due.elapsed());
            Ok::<_, anyhow::Error>(())
        }));
    }
    for request in requests {
        request.await??;
    }
    let latencies = std::mem::take(&mut *latencies.lock().await);
    Ok(summarise(latencies, started.elapsed()))
}

/// When a delivery's line appears in `rollcall tail -f`, relative to its
/// 200 (in ms, negative when the line showed before the answer arrived),
/// one delivery at a time: the p50 and p99.
fn tail_delay(
    dir: &Path,
    address: SocketAddr,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<(f64, f64)> {
    let mut tail = Command::new(env!("CARGO_BIN_EXE_rollcall"))
        .args(["tail", "-f", "-n", "0", "--json", "--dir"])
        .arg(dir)
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = tail.stdout.take().expect("piped stdout");
    let (lines, seen) = std::sync::mpsc::channel::<(String, Instant)>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let at = Instant::now();
            let record: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            let id = record["membership_id"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if lines.send((id, at)).is_err() {
                return;
            }
        }
    });
    let client = reqwest::Client::new();
    let url = format!("http://{address}/hooks/bench");
    // Until a line shows, tail may still be starting: warm it up.
    let mut warm = 0;
    loop {
        runtime.block_on(post(&client, &url, "tail-warm-up", warm))?;
        warm += 1;
        if seen.recv_timeout(Duration::from_millis(200)).is_ok() {
            break;
        }
        anyhow::ensure!(warm < 100, "rollcall tail -f showed nothing in 20 s");
    }
    let mut delays = Vec::new();
    for n in 0..TAIL_SAMPLES {
        runtime.block_on(post(&client, &url, "tail", n))?;
        let acked = Instant::now();
        let want = format!("bench-tail-{n}-");
        let at = loop {
            let (id, at) = seen.recv_timeout(Duration::from_secs(30))?;
            if id.starts_with(&want) {
                break at;
            }
        };
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        delays.push(
            ms(at.saturating_duration_since(acked)) - ms(acked.saturating_duration_since(at)),
        );
    }
    let _ = tail.kill();
    let _ = tail.wait();
    delays.sort_by(f64::total_cmp);
    let at = |q: f64| delays[((delays.len() as f64 * q) as usize).min(delays.len() - 1)];
    Ok((at(0.5), at(0.99)))
}

/// The durable writer without HTTP: how far group commit carries past the
/// raw fdatasync rate.
async fn writer_alone(dir: &Path) -> anyhow::Result<f64> {
    use rollcall::log::writer::LogWriter;
    use rollcall::webhook::payload::{Delivery, parse};
    let writer = Arc::new(LogWriter::open(
        dir,
        Arc::new(rollcall::clock::SystemClock),
        Arc::new(rollcall::metrics::Metrics::default()),
    )?);
    let target: rollcall::webhook::payload::Target = "bench".parse().expect("a valid target");
    let started = Instant::now();
    let deadline = started + Duration::from_secs(5);
    let appenders: Vec<_> = (0..CONNECTIONS)
        .map(|worker| {
            let (writer, target) = (writer.clone(), target.clone());
            tokio::spawn(async move {
                let mut n = worker;
                let mut appended = 0u64;
                while Instant::now() < deadline {
                    let (body, _) = support::delivery("writer", n);
                    let Ok(Delivery::Membership(membership)) = parse(body.as_bytes(), &target)
                    else {
                        anyhow::bail!("the sample delivery is a membership");
                    };
                    writer.append(membership.record).await?;
                    appended += 1;
                    n += CONNECTIONS;
                }
                Ok(appended)
            })
        })
        .collect();
    let mut total = 0;
    for appender in appenders {
        total += appender.await??;
    }
    let rate = total as f64 / started.elapsed().as_secs_f64();
    tokio::task::spawn_blocking(move || drop(writer)).await?;
    Ok(rate)
}

/// From starting `serve` on a log of [`STARTUP_RECORDS`] records, the
/// newest eight days of them inside the duplicate window it loads, to its
/// first 200.
async fn first_ack_with_a_big_log(dir: &Path) -> anyhow::Result<Duration> {
    let today = time::OffsetDateTime::now_utc().date();
    let first_day = today - time::Duration::days(support::DAYS as i64 - 1);
    tokio::task::block_in_place(|| support::generate(dir, STARTUP_RECORDS, first_day));
    let started = Instant::now();
    let serve = Server::start(
        Command::new(env!("CARGO_BIN_EXE_rollcall"))
            .args(["serve", "--listen", "127.0.0.1:0", "--dir"])
            .arg(dir)
            .env("ROLLCALL_SECRET", SECRET),
    )?;
    let url = format!("http://{}/hooks/bench", serve.address);
    post(&reqwest::Client::new(), &url, "startup", 0).await?;
    Ok(started.elapsed())
}
