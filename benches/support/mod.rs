//! What the benchmark programs share: child servers, signed deliveries,
//! a lean HTTP/1.1 client, and latency summaries.
#![allow(dead_code)]

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;
use rollcall::log::days;
use rollcall::log::record::{Event, GENESIS_HASH, Record, Source, format_timestamp};
use rollcall::secret::Secret;
use rollcall::webhook::signature;
use time::Date;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const SECRET: &str = "bench-secret";
/// How many day files [`generate`] spreads a log over.
pub const DAYS: u64 = 10;
const BODY: &str = include_str!("../../tests/fixtures/webex/memberships-created-current.json");

/// Another `rollcall` binary (a build of an earlier commit) to measure
/// beside this one in the same run, from `ROLLCALL_BENCH_BASELINE`: the
/// way a change is shown to cost nothing.
pub fn baseline_bin() -> Option<PathBuf> {
    std::env::var_os("ROLLCALL_BENCH_BASELINE").map(PathBuf::from)
}

pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// `BIN serve` on 127.0.0.1:0 over `dir`, with the bench's secret.
pub fn serve_command(bin: &Path, dir: &Path) -> Command {
    let mut command = Command::new(bin);
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--dir"])
        .arg(dir)
        .env("ROLLCALL_SECRET", SECRET);
    command
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
        self.status_kib("VmHWM:")
    }

    /// VmRSS of the process, in KiB.
    pub fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS:")
    }

    /// A `/proc/PID/status` figure, in KiB.
    fn status_kib(&self, field: &str) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find(|l| l.starts_with(field))
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

/// What every bench request is sent to; neither server looks at `Host`,
/// so one set of requests serves the no-op endpoint and `serve` alike.
const REQUEST_HEAD: &str =
    "POST /hooks/bench HTTP/1.1\r\nhost: rollcall-bench\r\ncontent-type: application/json\r\n";

/// [`delivery`] as the whole HTTP/1.1 request a webhook sender would write:
/// signed and serialised once, so sending it costs one `write`.
pub fn request(tag: &str, n: usize) -> Vec<u8> {
    let (body, sig) = delivery(tag, n);
    framed(&body, &sig)
}

/// `body` as a whole HTTP/1.1 request with its signature.
fn framed(body: &str, sig: &str) -> Vec<u8> {
    let mut request = Vec::with_capacity(REQUEST_HEAD.len() + body.len() + 96);
    request.extend_from_slice(REQUEST_HEAD.as_bytes());
    request.extend_from_slice(
        format!(
            "x-spark-signature: {sig}\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    request.extend_from_slice(body.as_bytes());
    request
}

/// Requests built ahead of a timed window, back to back in one buffer.
pub struct Requests {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Requests {
    pub fn build(tag: &str, ns: impl Iterator<Item = usize>) -> Self {
        let mut requests = Self {
            bytes: Vec::new(),
            ends: Vec::new(),
        };
        for n in ns {
            requests.bytes.extend_from_slice(&request(tag, n));
            requests.ends.push(requests.bytes.len());
        }
        requests
    }

    /// `count` requests dealt round-robin into `hands` sets (one per
    /// connection), built on every core: numbering `w, w + hands, ...` keeps
    /// each delivery distinct.
    pub fn deal(tag: &str, count: usize, hands: usize) -> Vec<Self> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut dealt: Vec<Option<Self>> = (0..hands).map(|_| None).collect();
        std::thread::scope(|scope| {
            for (core, slots) in dealt.chunks_mut(hands.div_ceil(cores)).enumerate() {
                let first = core * hands.div_ceil(cores);
                scope.spawn(move || {
                    for (i, slot) in slots.iter_mut().enumerate() {
                        let hand = first + i;
                        let ns = (hand..count).step_by(hands);
                        *slot = Some(Self::build(tag, ns));
                    }
                });
            }
        });
        dealt
            .into_iter()
            .map(|hand| hand.expect("every hand dealt"))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn get(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start..self.ends[i]]
    }

    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.len()).map(|i| self.get(i))
    }
}

/// A keep-alive HTTP/1.1 connection that writes pre-built requests and
/// reads only what it needs of the answers: the status line and
/// `Content-Length`. `reqwest` spends more per request than a no-op warp
/// route does (both capped near 30k/s on 2 cores), which hid the server's
/// own cost.
pub struct Connection {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// One answer, borrowed from the connection's buffer until the next send.
pub struct Answer<'a> {
    pub status: u16,
    pub body: &'a [u8],
}

impl Connection {
    pub async fn open(address: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(address)
            .await
            .with_context(|| format!("connecting to {address}"))?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buf: Vec::with_capacity(4096),
        })
    }

    /// Writes `request` and reads its whole answer; one request at a time,
    /// never pipelined.
    pub async fn send(&mut self, request: &[u8]) -> anyhow::Result<Answer<'_>> {
        self.stream.write_all(request).await?;
        self.buf.clear();
        let (status, body) = loop {
            if let Some(head) = memchr::memmem::find(&self.buf, b"\r\n\r\n") {
                let (status, length) = parse_head(&self.buf[..head])?;
                let body = head + 4..head + 4 + length;
                while self.buf.len() < body.end {
                    self.fill().await?;
                }
                anyhow::ensure!(
                    self.buf.len() == body.end,
                    "more bytes than one answer: the server sent what was not asked"
                );
                break (status, body);
            }
            self.fill().await?;
        };
        Ok(Answer {
            status,
            body: &self.buf[body],
        })
    }

    /// Sends `request` and fails unless the delivery was newly recorded.
    pub async fn record(&mut self, request: &[u8]) -> anyhow::Result<()> {
        let answer = self.send(request).await?;
        anyhow::ensure!(
            answer.status == 200 && memchr::memmem::find(answer.body, b"\"recorded\"").is_some(),
            "answer {}: {}",
            answer.status,
            String::from_utf8_lossy(answer.body)
        );
        Ok(())
    }

    async fn fill(&mut self) -> anyhow::Result<()> {
        self.buf.reserve(4096);
        let read = self.stream.read_buf(&mut self.buf).await?;
        anyhow::ensure!(read > 0, "the server closed the connection mid-answer");
        Ok(())
    }
}

/// The status code and body length of an answer's head. Chunked answers
/// are refused rather than read: neither server sends them.
fn parse_head(head: &[u8]) -> anyhow::Result<(u16, usize)> {
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix(b"HTTP/1.1 ")
        .and_then(|rest| std::str::from_utf8(rest.get(..3)?).ok()?.parse().ok())
        .with_context(|| format!("status line {:?}", String::from_utf8_lossy(status_line)))?;
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if name.eq_ignore_ascii_case(b"content-length") {
            let length = std::str::from_utf8(value)?.parse()?;
            return Ok((status, length));
        }
        anyhow::ensure!(
            !name.eq_ignore_ascii_case(b"transfer-encoding"),
            "a chunked answer; the bench client reads only Content-Length bodies"
        );
    }
    anyhow::bail!("an answer without Content-Length")
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
    write_log(dir, records, DAYS, first_day, sample)
}

/// A log of `records` records of `memberships` memberships, each joining
/// and then leaving in turn (so as many dedup keys as records), recorded
/// as `serve` records [`delivery`]`("log", 2 * k)` for membership `k` (and
/// its `deleted`), over the `days` days that end today.
pub fn generate_joins(dir: &Path, records: u64, memberships: u64, days: u64) -> Vec<PathBuf> {
    let target: rollcall::webhook::payload::Target = "bench".parse().expect("a valid target");
    let today = time::OffsetDateTime::now_utc().date();
    let first_day = today - time::Duration::days(days as i64 - 1);
    write_log(
        dir,
        records,
        days,
        first_day,
        |seq, received_at, prev_hash| {
            let (k, round) = ((seq - 1) % memberships, (seq - 1) / memberships);
            let (mut body, _) = delivery("log", 2 * k as usize);
            if round % 2 == 1 {
                body = body.replacen("\"event\":\"created\"", "\"event\":\"deleted\"", 1);
            }
            let Ok(rollcall::webhook::payload::Delivery::Membership(membership)) =
                rollcall::webhook::payload::parse(body.as_bytes(), &target)
            else {
                panic!("the sample delivery is a membership");
            };
            Record {
                seq,
                received_at,
                prev_hash,
                ..membership.record
            }
        },
    )
}

/// The log the read side is measured on, as its targets were set: an
/// organisation of 1,000 rooms of 50 members, each membership joining and
/// leaving in turn, recorded from deliveries shaped like Webex's own
/// (`memberships-created.json`: about 790 bytes a record), over [`DAYS`]
/// days from `first_day`.
pub fn generate_turns(dir: &Path, records: u64, first_day: Date) -> Vec<PathBuf> {
    let target: rollcall::webhook::payload::Target = "team".parse().expect("a valid target");
    let body = include_str!("../../tests/fixtures/webex/memberships-created.json");
    write_log(
        dir,
        records,
        DAYS,
        first_day,
        |seq, received_at, prev_hash| {
            let k = (seq - 1) % 50_000;
            let (room, member) = (k / 50, k % 50);
            let body = body
                .replacen(
                    "L1JPT00vOTczZmQ3MzAtNDRiZC0xMWU",
                    &format!("L1JPT00vOTczZmQ3MzAtNDRi{room:07}"),
                    2,
                )
                .replacen(
                    "L01FTUJFUlNISVAvMmQxYjhiN2YtZWM0Ny00",
                    &format!("L01FTUJFUlNISVAvMmQxYjhi{k:012}"),
                    1,
                )
                .replacen(
                    "L1BFT1BMRS8yZDFiOGI3Zi1lYzQ3LTQ",
                    &format!("L1BFT1BMRS8yZDFiOGI3Zi1l{k:07}"),
                    1,
                )
                .replacen(
                    "example@cisco.com",
                    &format!("person{member}@example.com"),
                    1,
                );
            let body = if ((seq - 1) / 50_000) % 2 == 1 {
                body.replacen("\"event\":\"created\"", "\"event\":\"deleted\"", 1)
            } else {
                body
            };
            let Ok(rollcall::webhook::payload::Delivery::Membership(membership)) =
                rollcall::webhook::payload::parse(body.as_bytes(), &target)
            else {
                panic!("the fixture is a membership delivery");
            };
            Record {
                seq,
                received_at,
                prev_hash,
                ..membership.record
            }
        },
    )
}

/// [`delivery`]`(tag, n)` for an even `n` (a join, as a moderator) made
/// the `updated` delivery that revokes the role: a role change, which
/// `serve` answers only once it has read every membership's state.
pub fn role_change_request(tag: &str, n: usize) -> Vec<u8> {
    let (body, _) = delivery(tag, n);
    let body = body
        .replacen("\"event\":\"created\"", "\"event\":\"updated\"", 1)
        .replacen("\"isModerator\":true", "\"isModerator\":false", 1);
    let sig = signature::sign(&Secret::new(SECRET.into()), body.as_bytes());
    framed(&body, &sig)
}

/// [`generate`] of an organisation shaped by `shape`: memberships that
/// join, leave, rejoin and change roles, a few reconciled and events API
/// records, and coverage gaps (clean stops and crashes).
pub fn generate_organisation(
    dir: &Path,
    records: u64,
    first_day: Date,
    shape: &Organisation,
) -> Vec<PathBuf> {
    let mut churn = Churn::new(shape);
    write_log(
        dir,
        records,
        DAYS,
        first_day,
        |seq, received_at, prev_hash| churn.next(seq, received_at, prev_hash),
    )
}

/// Two receivers' logs of `records` records each, over [`DAYS`] day
/// files from `first_day` on, of one stream of events: nine in ten
/// delivered to both, the tenth to one only (to `a` and to `b` in turn).
/// Each log spreads its records evenly over the days, so the two copies
/// of an event are up to a second apart, as two hosts' clocks and queues
/// make them. Every event has an identity of its own, as real joins and
/// leaves do (a rejoin is a new membership `created`). Returns how many
/// events there are.
pub fn generate_receivers(a: &Path, b: &Path, records: u64, first_day: Date) -> u64 {
    let event = |k: u64, seq: u64, received_at: String, prev_hash: String| Record {
        seq,
        membership_created: Some(format_timestamp(
            first_day.midnight().assume_utc() - time::Duration::days(30)
                + time::Duration::milliseconds(k as i64),
        )),
        ..sample(k + 1, received_at, prev_hash)
    };
    // Of every twenty events, `a` lacks the tenth and `b` the twentieth:
    // a log's `i`-th record is event `k(i, lacking)`.
    let k = |i: u64, lacking: u64| 20 * (i / 19) + i % 19 + u64::from(i % 19 >= lacking);
    write_log(a, records, DAYS, first_day, |seq, at, prev| {
        event(k(seq - 1, 10), seq, at, prev)
    });
    write_log(b, records, DAYS, first_day, |seq, at, prev| {
        event(k(seq - 1, 19), seq, at, prev)
    });
    let (last_a, last_b) = (k(records - 1, 10), k(records - 1, 19));
    (0..=last_a.max(last_b))
        .filter(|e| (e % 20 != 10 && *e <= last_a) || (e % 20 != 19 && *e <= last_b))
        .count() as u64
}

/// Writes `records` records made by `make` (from the seq, `received_at`
/// and the previous hash) over `days` day files, sealed and chained.
fn write_log(
    dir: &Path,
    records: u64,
    days: u64,
    first_day: Date,
    mut make: impl FnMut(u64, String, String) -> Record,
) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    let start = first_day.midnight().assume_utc();
    let per_day = records.div_ceil(days);
    let step = time::Duration::milliseconds((86_400_000 / per_day as i64).max(1));
    let mut prev_hash = GENESIS_HASH.to_string();
    let mut files = Vec::new();
    let mut out: Option<(String, BufWriter<File>)> = None;
    for seq in 1..=records {
        let day = (seq - 1) / per_day;
        let at = start + time::Duration::days(day as i64) + step * ((seq - 1) % per_day) as i32;
        let mut record = make(seq, format_timestamp(at), prev_hash);
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

/// How [`generate_organisation`]'s organisation is made up.
#[derive(Debug, Clone)]
pub struct Organisation {
    pub rooms: u64,
    /// Memberships per room (each one person, present or not).
    pub members: u64,
    /// Distinct people over all the rooms.
    pub people: u64,
    /// Records between coverage gaps: a clean stop, then halfway to the
    /// next one a start after a crash.
    pub records_per_gap: u64,
}

impl Organisation {
    /// The shape the index is measured on: 10,000 rooms of 100 members.
    pub const BENCH: Organisation = Organisation {
        rooms: 10_000,
        members: 100,
        people: 50_000,
        records_per_gap: 250_000,
    };
}

/// Who is where as [`generate_organisation`] goes: a membership picked
/// at random joins if absent, else leaves or changes role.
struct Churn {
    shape: Organisation,
    present: Vec<bool>,
    moderator: Vec<bool>,
    random: u64,
    stopped: bool,
}

impl Churn {
    fn new(shape: &Organisation) -> Self {
        let slots = (shape.rooms * shape.members) as usize;
        Self {
            shape: shape.clone(),
            present: vec![false; slots],
            moderator: vec![false; slots],
            random: 19,
            stopped: false,
        }
    }

    fn roll(&mut self, below: u64) -> u64 {
        self.random = self
            .random
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.random >> 33) % below
    }

    fn next(&mut self, seq: u64, received_at: String, prev_hash: String) -> Record {
        let gap = seq % self.shape.records_per_gap;
        if self.stopped {
            self.stopped = false;
            return receiver(seq, Event::ReceiverStarted, None, received_at, prev_hash);
        }
        if gap == 0 {
            self.stopped = true;
            return receiver(seq, Event::ReceiverStopped, None, received_at, prev_hash);
        }
        if gap == self.shape.records_per_gap / 2 {
            let crashed = Some("2026-11-27T14:03:11.482Z".to_string());
            return receiver(seq, Event::ReceiverStarted, crashed, received_at, prev_hash);
        }
        let slot = self.roll(self.shape.rooms * self.shape.members);
        let (room, person) = (slot / self.shape.members, slot % self.shape.people);
        let i = slot as usize;
        let event = match (self.present[i], self.roll(4)) {
            (false, _) => Event::Joined,
            (true, 0 | 1) => Event::Left,
            (true, _) if self.moderator[i] => Event::ModeratorRevoked,
            (true, _) => Event::ModeratorGranted,
        };
        match event {
            Event::Joined => {
                self.present[i] = true;
                self.moderator[i] = self.roll(10) == 0;
            }
            Event::Left => self.present[i] = false,
            e => self.moderator[i] = e == Event::ModeratorGranted,
        }
        let source = match self.roll(1000) {
            0 => Source::Reconciled,
            1..=4 => Source::EventsApi,
            _ => Source::Webhook,
        };
        let title = (self.roll(3) == 0).then(|| format!("Project room {room}"));
        let not_before =
            (source != Source::Webhook && event != Event::Joined).then(|| received_at.clone());
        Record {
            event,
            room_id: id("JPT00", room),
            room_title: title,
            person_id: id("BFT1BMRS", person),
            person_email: Some(format!("person{person}@example.com")),
            person_display_name: Some(format!("Person {person}, \"P{person}\"")),
            is_moderator: Some(self.moderator[i]),
            membership_id: id("01FTUJFUlNISVAv", slot),
            // A membership's creation time, the same in all its records.
            membership_created: Some(format!("2026-10-{:02}T14:03:11.482Z", 1 + slot % 28)),
            actor_id: Some(id("BFT1BMRS", (slot * 7) % self.shape.people)),
            source,
            not_before,
            ..sample(seq, received_at, prev_hash)
        }
    }
}

/// A `receiver_started` or `receiver_stopped` record.
fn receiver(
    seq: u64,
    event: Event,
    not_before: Option<String>,
    received_at: String,
    prev_hash: String,
) -> Record {
    Record {
        seq,
        received_at,
        prev_hash,
        ..Record::receiver(event, not_before)
    }
}

/// A Webex-like base64 id of a `kind` of thing, numbered `n`.
pub fn id(kind: &str, n: u64) -> String {
    format!("Y2lzY29zcGFyazovL3VzL{kind}LzBkMGM5MWI2LWNlNjAtNDcyNS1iNmQwLTM0NTVkNWQxMWVmMz{n:012}")
}

/// The bytes of the day archives (`.jsonl.gz`) in `DIR/archive`.
pub fn archived_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir.join("archive"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".jsonl.gz"))
        .map(|p| p.metadata().unwrap().len())
        .sum()
}

/// Where a bench writes its generated log: `ROLLCALL_BENCH_DIR` (to keep
/// it), else `audit-logs` in `temp`.
pub fn log_dir(temp: &tempfile::TempDir) -> PathBuf {
    std::env::var_os("ROLLCALL_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| temp.path().join("audit-logs"))
}

/// How many records a bench's generated log holds:
/// `ROLLCALL_BENCH_RECORDS`, else 1,000,000.
pub fn records() -> u64 {
    std::env::var("ROLLCALL_BENCH_RECORDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000)
}

/// A record of an organisation of 1,000 rooms of 50 members each: 50,000
/// memberships, each joining and leaving in turn.
fn sample(seq: u64, received_at: String, prev_hash: String) -> Record {
    let person = seq % 10;
    let membership = seq % 50_000;
    let room = membership / 50;
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
        membership_id: id("01FTUJFUlNISVAv", membership),
        membership_created: Some("2026-11-27T14:03:11.482Z".into()),
        actor_id: Some(id("BFT1BMRS", 99)),
        org_id: Some("OTZhYmMyYWEtM2RjYy0xMWU1LWExNTItZmUzNDgxOWNkYzlh".into()),
        webhook_id: Some(id("1dFQkhPT0sv", 1)),
        webhook_name: Some("Team roster webhook".into()),
        target: "team".into(),
        // One in 20 found by reconciliation, with the window it lies in.
        source: if seq.is_multiple_of(20) {
            Source::Reconciled
        } else {
            Source::Webhook
        },
        not_before: seq
            .is_multiple_of(20)
            .then(|| "2026-11-27T14:03:11.482Z".into()),
        receiver: None,
        prev_hash,
        hash: String::new(),
    }
}
