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
//! `ROLLCALL_BENCH_ROUNDS=N` saturates each build N times, alternating
//! which goes first, and reports the median: for a before/after figure
//! on a noisy machine.
//!
//! The load generator costs little per request, so the HTTP ceiling it
//! shows is the server's: every delivery is signed and serialised before
//! the timed window, and sent as raw bytes over keep-alive connections
//! ([`support::Connection`]).

mod support;

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use support::{Connection, Load, Requests, Server, ms, request, serve_command, summarise};

const CONNECTIONS: usize = 64;
/// The saturation window; `ROLLCALL_BENCH_SECONDS` shortens it for a smoke
/// run.
const LOAD_SECONDS: u64 = 10;
/// Deliveries built ahead of the window, per second of it: well above what
/// 2 cores answer, so the window, not the supply, ends the run. Each is
/// about 1.5 kB.
const BUILT_PER_SECOND: usize = 100_000;
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
    let load_for = Duration::from_secs(
        std::env::var("ROLLCALL_BENCH_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(LOAD_SECONDS),
    );

    eprintln!("measuring the disk's raw fdatasync rate ...");
    let fsync_rate = raw_fdatasync_rate(&work.join("fsync-probe"), Duration::from_secs(3))?;

    eprintln!("measuring the log writer alone, {CONNECTIONS} concurrent appenders ...");
    let writer_rate = runtime.block_on(writer_alone(&work.join("writer-only")))?;

    eprintln!("measuring serve's start with {STARTUP_RECORDS} records on disk ...");
    let big = work.join("big");
    let today = time::OffsetDateTime::now_utc().date();
    support::generate(
        &big,
        STARTUP_RECORDS,
        today - time::Duration::days(support::DAYS as i64 - 1),
    );
    // The baseline first, then this build, on the same log (each adds a
    // record or two to it).
    let baseline_startup = support::baseline_bin()
        .map(|bin| runtime.block_on(first_ack_with_a_big_log(&bin, &big, 0)))
        .transpose()?;
    let startup = runtime.block_on(first_ack_with_a_big_log(
        Path::new(env!("CARGO_BIN_EXE_rollcall")),
        &big,
        1,
    ))?;

    let count = BUILT_PER_SECOND * load_for.as_secs() as usize;
    eprintln!("signing and serialising {count} deliveries ...");
    // One set for both servers: the no-op endpoint records nothing, so
    // every delivery is still new to `serve`.
    let requests = Arc::new(Requests::deal("load", count, CONNECTIONS));

    eprintln!("measuring a no-op warp endpoint at {CONNECTIONS} connections ...");
    let mut noop = Server::start(Command::new(std::env::current_exe()?).arg("noop-server"))?;
    let noop_load = runtime.block_on(saturate(noop.address, &requests, load_for))?;
    noop.stop();

    // Each round saturates a fresh `serve` of each build, the baseline
    // first in even rounds and this build first in odd ones, so neither
    // gains from the order (a disk still writing back, a warmer cache);
    // the medians are reported.
    let rounds: usize = std::env::var("ROLLCALL_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
        .max(1);
    let baseline = support::baseline_bin();
    let mut baseline_loads = Vec::new();
    let mut serve_loads = Vec::new();
    let mut serve_rss = 0;
    for round in 0..rounds {
        let this_first = round % 2 == 1;
        for this in [this_first, !this_first] {
            let (bin, dir, loads) = match (this, &baseline) {
                (true, _) => (
                    Path::new(env!("CARGO_BIN_EXE_rollcall")),
                    work.join(format!("log-{round}")),
                    &mut serve_loads,
                ),
                (false, Some(bin)) => (
                    bin.as_path(),
                    work.join(format!("baseline-{round}")),
                    &mut baseline_loads,
                ),
                (false, None) => continue,
            };
            eprintln!(
                "round {}/{rounds}: {} serve at {CONNECTIONS} connections ...",
                round + 1,
                bin.display()
            );
            let mut server = Server::start(&mut serve_command(bin, &dir))?;
            let load = runtime.block_on(saturate(server.address, &requests, load_for))?;
            eprintln!("  {:.0} deliveries/s", load.rate);
            loads.push(load);
            if this {
                serve_rss = serve_rss.max(server.peak_rss_kib());
            }
            server.stop();
        }
    }
    drop(requests);
    let serve_load = median(serve_loads);
    let baseline_load = (!baseline_loads.is_empty()).then(|| median(baseline_loads));

    let mut serve = Server::start(&mut serve_command(
        Path::new(env!("CARGO_BIN_EXE_rollcall")),
        &work.join("log"),
    ))?;
    eprintln!("measuring rollcall serve at a fixed {FIXED_RATE}/s ...");
    let fixed = runtime.block_on(fixed_rate(serve.address))?;
    eprintln!("measuring the delay from a 200 to the line in `rollcall tail -f` ...");
    let tail = tail_delay(&work.join("log"), serve.address, &runtime)?;
    serve.stop();

    let mut rows = vec![
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
            "serve start to first 200, 1,000,000 records on disk (peak RSS)",
            format!("{:.2} s", startup.0.as_secs_f64()),
            format!("{:.1} MiB", startup.1 as f64 / 1024.0),
        ),
        (
            "rollcall serve peak RSS, saturated",
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
    if rounds > 1 {
        rows.push((
            "rounds of each build, alternating (the median shown)",
            rounds.to_string(),
            String::new(),
        ));
    }
    if let Some((took, rss)) = baseline_startup {
        rows.push((
            "baseline serve start to first 200, same log (peak RSS)",
            format!("{:.2} s", took.as_secs_f64()),
            format!("{:.1} MiB", rss as f64 / 1024.0),
        ));
    }
    if let Some(baseline) = baseline_load {
        rows.push((
            "baseline serve (ROLLCALL_BENCH_BASELINE), 64 conns, durable",
            format!("{:.0}/s", baseline.rate),
            format!("p50 {} p99 {}", ms(baseline.p50), ms(baseline.p99)),
        ));
        rows.push((
            "baseline / no-op endpoint",
            format!("{:.2}", baseline.rate / noop_load.rate),
            String::new(),
        ));
    }
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

/// The round of the median rate (the upper one of an even count).
fn median(mut loads: Vec<Load>) -> Load {
    loads.sort_by(|a, b| a.rate.total_cmp(&b.rate));
    loads.swap_remove(loads.len() / 2)
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
/// answered, until the window closes or a connection has sent every
/// delivery built for it. Connections open before the window.
async fn saturate(
    address: SocketAddr,
    requests: &Arc<Vec<Requests>>,
    window: Duration,
) -> anyhow::Result<Load> {
    let mut connections = Vec::with_capacity(requests.len());
    for _ in 0..requests.len() {
        connections.push(Connection::open(address).await?);
    }
    let ran_out = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let deadline = started + window;
    let workers: Vec<_> = connections
        .into_iter()
        .enumerate()
        .map(|(hand, mut connection)| {
            let (requests, ran_out) = (requests.clone(), ran_out.clone());
            tokio::spawn(async move {
                let requests = &requests[hand];
                let mut latencies = Vec::with_capacity(requests.len());
                for request in requests.iter() {
                    let sent = Instant::now();
                    if sent >= deadline || ran_out.load(Relaxed) {
                        return Ok(latencies);
                    }
                    connection.record(request).await?;
                    latencies.push(sent.elapsed());
                }
                ran_out.store(true, Relaxed);
                Ok::<_, anyhow::Error>(latencies)
            })
        })
        .collect();
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await??);
    }
    let elapsed = started.elapsed();
    if ran_out.load(Relaxed) {
        eprintln!(
            "  (every delivery built was sent after {:.1} s: raise BUILT_PER_SECOND)",
            elapsed.as_secs_f64()
        );
    }
    Ok(summarise(all, elapsed))
}

/// Open loop: one delivery every 1/FIXED_RATE s whatever the answers do;
/// latency counts from when the delivery was due. Each takes an idle
/// connection, or opens one when none is idle.
async fn fixed_rate(address: SocketAddr) -> anyhow::Result<Load> {
    let total = (FIXED_RATE * FIXED_SECONDS) as usize;
    let requests = Arc::new(Requests::build("fixed", 0..total));
    let idle = Arc::new(std::sync::Mutex::new(Vec::new()));
    for _ in 0..8 {
        let connection = Connection::open(address).await?;
        idle.lock().expect("not poisoned").push(connection);
    }
    let mut ticks = tokio::time::interval(Duration::from_micros(1_000_000 / FIXED_RATE));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut deliveries = Vec::with_capacity(total);
    for n in 0..total {
        let due = ticks.tick().await.into_std();
        let (requests, idle) = (requests.clone(), idle.clone());
        deliveries.push(tokio::spawn(async move {
            let spare = idle.lock().expect("not poisoned").pop();
            let mut connection = match spare {
                Some(connection) => connection,
                None => Connection::open(address).await?,
            };
            connection.record(requests.get(n)).await?;
            let latency = due.elapsed();
            idle.lock().expect("not poisoned").push(connection);
            Ok::<_, anyhow::Error>(latency)
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    for delivery in deliveries {
        latencies.push(delivery.await??);
    }
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
    let mut connection = runtime.block_on(Connection::open(address))?;
    // Until a line shows, tail may still be starting: warm it up.
    let mut warm = 0;
    loop {
        runtime.block_on(connection.record(&request("tail-warm-up", warm)))?;
        warm += 1;
        if seen.recv_timeout(Duration::from_millis(200)).is_ok() {
            break;
        }
        anyhow::ensure!(warm < 100, "rollcall tail -f showed nothing in 20 s");
    }
    let mut delays = Vec::new();
    for n in 0..TAIL_SAMPLES {
        let request = request("tail", n);
        runtime.block_on(connection.record(&request))?;
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
/// `bin serve` started on the log in `dir`: the time to the 200 of its
/// first delivery (the `n`th made on this log) and its peak RSS then.
async fn first_ack_with_a_big_log(
    bin: &Path,
    dir: &Path,
    n: usize,
) -> anyhow::Result<(Duration, u64)> {
    let started = Instant::now();
    let mut serve = Server::start(&mut serve_command(bin, dir))?;
    let mut connection = Connection::open(serve.address).await?;
    connection.record(&request("startup", n)).await?;
    let took = started.elapsed();
    let rss = serve.peak_rss_kib();
    serve.stop();
    Ok((took, rss))
}
