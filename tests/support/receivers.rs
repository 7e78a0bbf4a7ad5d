//! Two receivers side by side ([`Pair`]): real servers in process, each
//! with its own directory, name, secret and fake clock (the two a little
//! apart, as two hosts' clocks are), that the tests deliver to, stop and
//! start again; and [`rechain`], which removes a record from a log and
//! seals every later one again, as someone covering their tracks would.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rollcall::clock::FakeClock;
use rollcall::log::head::Head;
use rollcall::log::record::{self, Record};
use rollcall::secret::Secret;
use rollcall::webhook::signature;
use tempfile::TempDir;
use time::Duration;

use super::app::{START, TestApp, json_of};

/// Which receivers a delivery goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum To {
    A,
    B,
    Both,
}

/// One receiver: its log, name, secret and clock, and its server while
/// it runs.
pub struct Side {
    pub name: &'static str,
    pub dir: PathBuf,
    secret: &'static str,
    pub clock: Arc<FakeClock>,
    app: Option<TestApp>,
}

impl Side {
    async fn start(&mut self) {
        assert!(self.app.is_none(), "{} is running already", self.name);
        let secret = self.secret;
        self.app = Some(
            TestApp::spawn_in(&self.dir, self.clock.clone(), |settings| {
                settings.secret = Some(Secret::new(secret.into()));
            })
            .await,
        );
    }

    async fn stop(&mut self) {
        self.app
            .take()
            .unwrap_or_else(|| panic!("{} is not running", self.name))
            .stop()
            .await;
    }

    /// Posts `body` to the receiver signed with its own secret; it must be
    /// recorded. Returns its seq.
    async fn deliver(&self, body: &[u8]) -> u64 {
        let app = self
            .app
            .as_ref()
            .unwrap_or_else(|| panic!("{} is not running", self.name));
        let sig = signature::sign(&Secret::new(self.secret.into()), body);
        let (status, answer) = json_of(app.post("team", body, Some(&sig)).await).await;
        assert_eq!(
            (status, answer["status"].as_str()),
            (200, Some("recorded")),
            "{answer}"
        );
        answer["seq"].as_u64().expect("a seq")
    }
}

/// Receivers `a` and `b`, in directories of their own in one temp dir.
pub struct Pair {
    pub a: Side,
    pub b: Side,
    _temp: TempDir,
}

impl Pair {
    /// Both receivers, running; `b`'s clock is 1.5 s ahead of `a`'s.
    pub async fn start() -> Pair {
        let temp = tempfile::tempdir().expect("creating a temp dir");
        let side = |name: &'static str, secret: &'static str, ahead_ms: i64| {
            let dir = temp.path().join(format!("site-{name}"));
            std::fs::create_dir_all(&dir).expect("creating a log directory");
            rollcall::receiver::remember(&dir, &name.parse().expect("a receiver name"))
                .expect("naming the receiver");
            Side {
                name,
                dir,
                secret,
                clock: Arc::new(FakeClock::new(START + Duration::milliseconds(ahead_ms))),
                app: None,
            }
        };
        let mut pair = Pair {
            a: side("a", "secret-of-a", 0),
            b: side("b", "secret-of-b", 1500),
            _temp: temp,
        };
        pair.a.start().await;
        pair.b.start().await;
        pair
    }

    fn sides(&mut self, to: To) -> Vec<&mut Side> {
        match to {
            To::A => vec![&mut self.a],
            To::B => vec![&mut self.b],
            To::Both => vec![&mut self.a, &mut self.b],
        }
    }

    /// Delivers `body` to `to`, `a` first.
    pub async fn deliver(&mut self, to: To, body: &[u8]) {
        for side in self.sides(to) {
            side.deliver(body).await;
        }
    }

    /// Moves both clocks on.
    pub fn advance(&self, by: Duration) {
        self.a.clock.advance(by);
        self.b.clock.advance(by);
    }

    /// Stops `to` cleanly (a `receiver_stopped` record).
    pub async fn stop(&mut self, to: To) {
        for side in self.sides(to) {
            side.stop().await;
        }
    }

    /// Starts `to` again on its log.
    pub async fn start_again(&mut self, to: To) {
        for side in self.sides(to) {
            side.start().await;
        }
    }

    pub fn dirs(&self) -> [&Path; 2] {
        [&self.a.dir, &self.b.dir]
    }
}

/// Removes the record with seq `seq` from the log in `dir` (every day
/// file live), then renumbers and seals every later record again and
/// writes `.head` to match, so the log's own chain checks out.
pub fn rechain(dir: &Path, seq: u64) {
    let mut previous = record::GENESIS_HASH.to_string();
    let mut next_seq = 1;
    let mut head = None;
    for day in rollcall::log::days::list(dir).expect("listing days") {
        let path = day.live.expect("a live day file");
        let text = std::fs::read_to_string(&path).expect("reading a day file");
        let mut out = Vec::new();
        for line in text.lines() {
            let mut record: Record = record::parse_line(line.as_bytes()).expect("a record");
            if record.seq == seq {
                continue;
            }
            record.seq = next_seq;
            record.prev_hash = previous;
            out.extend(record.seal());
            previous = record.hash.clone();
            head = Some(Head {
                seq: next_seq,
                hash: record.hash,
            });
            next_seq += 1;
        }
        std::fs::write(&path, out).expect("writing a day file");
    }
    head.expect("a record left")
        .store(dir, true)
        .expect("writing the head");
}
