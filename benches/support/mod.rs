//! What the benchmark programs share: child servers, signed deliveries,
//! and latency summaries.
#![allow(dead_code)]

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rollcall::log::days;
use rollcall::log::record::{Event, GENESIS_HASH, Record, format_timestamp};
use rollcall::secret::Secret;
use rollcall::webhook::signature;
use time::Date;

pub const SECRET: &str = "bench-secret";
/// How many day files [`generate`] spreads a log over.
pub const DAYS: u64 = 10;
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

/// Writes `records` sealed, chained records over [`DAYS`] day files from
/// `first_day` on, shaped like real deliveries (long base64 ids, a third
/// with room titles).
pub fn generate(dir: &Path, records: u64, first_day: Date) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    let start = first_day.midnight().assume_utc();
    let per_day = records.div_ceil(DAYS);
    let step = time::Duration::milliseconds((86_400_000 / per_day as i64).max(1));
    let mut prev_hash = GENESIS_HASH.to_string();
    let mut files = Vec::new();
    let mut out: Option<(String, BufWriter<File>)> = None;
    for seq in 1..=records {
        let day = (seq - 1) / per_day;
        let at = start + time::Duration::days(day as i64) + step * ((seq - 1) % per_day) as i32;
        let mut record = sample(seq, format_timestamp(at), prev_hash);
        let day_name = record.day().to_string();
        if out.as_ref().is_none_or(|(name, _)| *name != day_name) {
            if let Some((_, mut file)) = out.take() {
                file.flush().unwrap();
            }
            let path = days::live_path(dir, at.date());
            files.push(path.clone());
            out = Some((day_name, BufWriter::new(File::create(path).unwrap())));
        }
        let line = record.seal();
        out.as_mut().unwrap().1.write_all(&line).unwrap();
        prev_hash = record.hash;
    }
    if let Some((_, mut file)) = out {
        file.flush().unwrap();
    }
    files
}

fn sample(seq: u64, received_at: String, prev_hash: String) -> Record {
    let person = seq % 10;
    let room = seq % 50;
    let id = |kind: &str, n: u64| {
        format!(
            "Y2lzY29zcGFyazovL3VzL{kind}LzBkMGM5MWI2LWNlNjAtNDcyNS1iNmQwLTM0NTVkNWQxMWVmMz{n:012}"
        )
    };
    Record {
        seq,
        received_at,
        event: if seq.is_multiple_of(3) {
            Event::Left
        } else {
            Event::Joined
        },
        room_id: id("JPT00", room),
        room_title: (seq % 3 == 1).then(|| format!("Project room {room}")),
        room_type: Some("group".into()),
        person_id: id("BFT1BMRS", person),
        person_email: Some(format!("person{person}@example.com")),
        person_display_name: Some(format!("Person {person}, \"P{person}\"")),
        person_org_id: Some(id("9SR0FOSVpBVElPTi", 1)),
        is_moderator: Some(seq.is_multiple_of(7)),
        is_monitor: Some(false),
        is_room_hidden: Some(false),
        membership_id: id("01FTUJFUlNISVAv", seq),
        membership_created: Some("2026-11-27T14:03:11.482Z".into()),
        actor_id: Some(id("BFT1BMRS", 99)),
        org_id: Some("OTZhYmMyYWEtM2RjYy0xMWU1LWExNTItZmUzNDgxOWNkYzlh".into()),
        webhook_id: Some(id("1dFQkhPT0sv", 1)),
        webhook_name: Some("Team roster webhook".into()),
        target: "team".into(),
        prev_hash,
        hash: String::new(),
    }
}
