//! What the benchmark programs share: child servers, signed deliveries,
//! and latency summaries.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rollcall::secret::Secret;
use rollcall::webhook::signature;

pub const SECRET: &str = "bench-secret";
const BODY: &str = include_str!("../../tests/fixtures/webex/memberships-created-current.json");

pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// A child process that prints its address, and is killed when dropped.
pub struct Server {
    pub child: Child,
    pub address: SocketAddr,
}

impl Server {
    pub fn start(command: &mut Command) -> anyhow::Result<Self> {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()?;
        // The no-op server prints its address on stdout, rollcall serve on
        // stderr in its "listening" log line.
        let (tx, rx) = std::sync::mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if let Some(at) = line.split("address=").nth(1) {
                        let _ = tx.send(at.split_whitespace().next().unwrap_or("").to_string());
                    }
                }
            });
        }
        let address = rx.recv_timeout(Duration::from_secs(30))?.parse()?;
        Ok(Self { child, address })
    }

    /// VmHWM of the process, in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            })
            .unwrap_or(0)
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

pub struct Load {
    pub rate: f64,
    pub p50: Duration,
    pub p99: Duration,
}

/// A distinct, signed membership delivery: a join for even `n`, a leave
/// for odd.
pub fn delivery(tag: &str, n: usize) -> (String, String) {
    let body = BODY.replacen(
        "\"id\":\"Y2lzY29zcGFyazovL3VzL01FTUJFUlNISVAv",
        &format!("\"id\":\"bench-{tag}-{n}-"),
        1,
    );
    let body = if n % 2 == 1 {
        body.replacen("\"event\":\"created\"", "\"event\":\"deleted\"", 1)
    } else {
        body
    };
    let sig = signature::sign(&Secret::new(SECRET.into()), body.as_bytes());
    (body, sig)
}

pub async fn post(client: &reqwest::Client, url: &str, tag: &str, n: usize) -> anyhow::Result<()> {
    let (body, sig) = delivery(tag, n);
    let answer = client
        .post(url)
        .header("x-spark-signature", sig)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await?;
    anyhow::ensure!(answer.status() == 200, "answer {}", answer.status());
    answer.bytes().await?;
    Ok(())
}

pub fn summarise(mut latencies: Vec<Duration>, elapsed: Duration) -> Load {
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Load {
        rate: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
    }
}
