//! Soak: mixed load against the real `rollcall serve` for SOAK_SECONDS
//! (default 600), with a SIGKILL of the server every KILL_EVERY_SECONDS
//! (default 60) and an immediate restart. At the end every acknowledged
//! delivery must be in the log exactly once, nothing twice, and `rollcall
//! verify` must pass. Run with `cargo bench --bench soak`; not part of CI.
//!
//! The mix, per 10 deliveries: 7 new joins/leaves, 1 retry of an
//! acknowledged one, 1 message event (ignored), 1 wrongly signed (401).

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use rollcall::log::{days, record};
use rollcall::secret::Secret;
use rollcall::webhook::signature;
use support::{SECRET, Server, delivery};

const WORKERS: usize = 16;
const MESSAGE: &str = include_str!("../tests/fixtures/webex/messages-created.json");

fn seconds(var: &str, default: u64) -> Duration {
    Duration::from_secs(
        std::env::var(var)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
    )
}

fn start(dir: &Path) -> anyhow::Result<Server> {
    Server::start(
        Command::new(env!("CARGO_BIN_EXE_rollcall"))
            .args(["serve", "--listen", "127.0.0.1:0", "--dir"])
            .arg(dir)
            .env("ROLLCALL_SECRET", SECRET),
    )
}

#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    recorded: AtomicU64,
    duplicate: AtomicU64,
    ignored: AtomicU64,
    refused: AtomicU64,
    failed: AtomicU64,
}

fn main() -> anyhow::Result<()> {
    let soak = seconds("SOAK_SECONDS", 600);
    let kill_every = seconds("KILL_EVERY_SECONDS", 60);
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("soak");
    let _ = std::fs::remove_dir_all(&work);
    let dir = work.join("log");
    let server = Arc::new(Mutex::new(start(&dir)?));
    let address = Arc::new(RwLock::new(server.lock().unwrap().address));
    // The membership ids of acknowledged deliveries, and the newest such
    // delivery whole, to send again as a retry.
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let last_acked: Arc<Mutex<Option<(String, String, String)>>> = Arc::default();
    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    let deadline = started + soak;
    eprintln!("soaking for {soak:?}, SIGKILL every {kill_every:?} ...");

    let runtime = tokio::runtime::Runtime::new()?;
    let workers: Vec<_> = (0..WORKERS)
        .map(|worker| {
            let (address, acked, tally) = (address.clone(), acked.clone(), tally.clone());
            let last_acked = last_acked.clone();
            runtime.spawn(async move {
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .expect("a client");
                let mut n = worker;
                while Instant::now() < deadline {
                    let url = format!("http://{}/hooks/soak", *address.read().unwrap());
                    let (body, sig, id) = match n % 10 {
                        7 => match last_acked.lock().unwrap().clone() {
                            Some(previous) => previous,
                            None => fresh(n),
                        },
                        8 => (
                            MESSAGE.to_string(),
                            signature::sign(&Secret::new(SECRET.into()), MESSAGE.as_bytes()),
                            String::new(),
                        ),
                        9 => (fresh(n).0, "0".repeat(40), String::new()),
                        _ => fresh(n),
                    };
                    n += WORKERS;
                    tally.sent.fetch_add(1, Relaxed);
                    let answer = client
                        .post(&url)
                        .header("x-spark-signature", &sig)
                        .body(body.clone())
                        .send()
                        .await;
                    let Ok(answer) = answer else {
                        tally.failed.fetch_add(1, Relaxed);
                        continue;
                    };
                    let status = answer.status().as_u16();
                    let text = answer.text().await.unwrap_or_default();
                    let counter = match (
                        status,
                        text.contains("\"recorded\""),
                        text.contains("\"duplicate\""),
                    ) {
                        (200, true, _) => &tally.recorded,
                        (200, _, true) => &tally.duplicate,
                        (200, _, _) => &tally.ignored,
                        (401, _, _) => &tally.refused,
                        _ => &tally.failed,
                    };
                    counter.fetch_add(1, Relaxed);
                    if status == 200 && !id.is_empty() {
                        acked.lock().unwrap().push(id.clone());
                        *last_acked.lock().unwrap() = Some((body, sig, id));
                    }
                }
            })
        })
        .collect();

    let mut kills = 0;
    while Instant::now() + kill_every < deadline {
        std::thread::sleep(kill_every);
        let mut server = server.lock().unwrap();
        server.stop();
        kills += 1;
        *server = start(&dir)?;
        *address.write().unwrap() = server.address;
        eprintln!(
            "{:>4}s: killed and restarted ({} acked so far)",
            started.elapsed().as_secs(),
            acked.lock().unwrap().len()
        );
    }
    runtime.block_on(async {
        for worker in workers {
            worker.await.expect("a worker");
        }
    });
    server.lock().unwrap().stop();
    let elapsed = started.elapsed();

    // Restart once more so recovery runs on the last kill's leftovers.
    drop(start(&dir)?);
    let mut copies: HashMap<String, usize> = HashMap::new();
    for day in days::list(&dir)? {
        let mut lines = day.lines()?;
        while let Some((line, _)) = lines.next_line()? {
            let record = record::parse_line(line)
                .map_err(|e| anyhow::anyhow!("{}: {e}", day.path().display()))?;
            *copies.entry(record.membership_id).or_default() += 1;
        }
    }
    let acked = acked.lock().unwrap();
    let missing = acked.iter().filter(|id| !copies.contains_key(*id)).count();
    let twice = copies.values().filter(|&&n| n > 1).count();
    let verify = Command::new(env!("CARGO_BIN_EXE_rollcall"))
        .args(["verify", "--dir"])
        .arg(&dir)
        .output()?;

    let t = |c: &AtomicU64| c.load(Relaxed);
    println!("| soak | figure |\n|---|---|");
    println!("| duration | {:.0} s |", elapsed.as_secs_f64());
    println!("| SIGKILLs and restarts | {kills} |");
    println!(
        "| deliveries sent | {} ({:.0}/s) |",
        t(&tally.sent),
        t(&tally.sent) as f64 / elapsed.as_secs_f64()
    );
    println!(
        "| recorded / duplicate / ignored / 401 | {} / {} / {} / {} |",
        t(&tally.recorded),
        t(&tally.duplicate),
        t(&tally.ignored),
        t(&tally.refused)
    );
    println!(
        "| failed (connection cut by a kill) | {} |",
        t(&tally.failed)
    );
    println!(
        "| records in the log | {} |",
        copies.values().sum::<usize>()
    );
    println!("| acknowledged but missing | {missing} |");
    println!("| in the log more than once | {twice} |");
    println!(
        "| rollcall verify | exit {} {} |",
        verify.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&verify.stdout).trim()
    );
    anyhow::ensure!(
        missing == 0 && twice == 0 && verify.status.success(),
        "the soak found a fault"
    );
    Ok(())
}

/// A new membership event: its body, signature and membership id.
fn fresh(n: usize) -> (String, String, String) {
    let (body, sig) = delivery("soak", n);
    let id = serde_json::from_str::<serde_json::Value>(&body).expect("a JSON body")["data"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (body, sig, id)
}
