//! Generated logs for the read-side tests: records written by the real
//! [`LogWriter`] on a [`FakeClock`], so every line is a real sealed record
//! and the chain runs across as many day files as the test asks for.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rollcall::clock::FakeClock;
use rollcall::log::record::{Event, Record, Source};
use rollcall::log::writer::{Appended, LogWriter};
use rollcall::log::{archive, days};
use rollcall::metrics::Metrics;
use rollcall::webhook::payload::{self, Delivery};
use tempfile::TempDir;
use time::Duration;

use super::app::START;
use super::fixture;

/// A log being written, in its own temp directory.
pub struct TestLog {
    pub dir: PathBuf,
    pub clock: Arc<FakeClock>,
    writer: Option<LogWriter>,
    made: AtomicU64,
    _temp: TempDir,
}

impl TestLog {
    /// An empty log whose clock starts at [`START`].
    pub fn new() -> Self {
        Self::starting_at(START)
    }

    /// An empty log whose clock starts at `at`: for a log the real binary
    /// reads by the real clock (the writer's dedup window is the last 7
    /// days of it).
    pub fn starting_at(at: time::OffsetDateTime) -> Self {
        let temp = tempfile::tempdir().expect("creating a temp dir");
        let dir = temp.path().join("audit-logs");
        let clock = Arc::new(FakeClock::new(at));
        let writer = LogWriter::open(&dir, clock.clone(), Arc::new(Metrics::default()))
            .expect("opening the log writer");
        Self {
            dir,
            clock,
            writer: Some(writer),
            made: AtomicU64::new(0),
            _temp: temp,
        }
    }

    /// A log of `per_day` records on each of `days` consecutive days.
    pub async fn over_days(days: u32, per_day: u32) -> Self {
        let log = Self::new();
        for day in 0..days {
            if day > 0 {
                log.next_day();
            }
            for _ in 0..per_day {
                log.append(log.member(Event::Joined)).await;
            }
        }
        log
    }

    /// Appends `record` (one second after the last one) and returns its seq.
    pub async fn append(&self, record: Record) -> u64 {
        self.clock.advance(Duration::seconds(1));
        let writer = self.writer.as_ref().expect("the log is still open");
        match writer.append(record).await.expect("appending a record") {
            Appended::Recorded(seq) => seq,
            Appended::Duplicate(seq) => panic!("record was a duplicate of seq {seq}"),
            Appended::Unchanged => panic!("record changed nothing"),
        }
    }

    /// Appends `record` so that it is received at `at`, and returns its
    /// seq.
    pub async fn append_at(&self, at: time::OffsetDateTime, record: Record) -> u64 {
        // `append` moves the clock on by one second before writing.
        self.clock.set(at - Duration::seconds(1));
        self.append(record).await
    }

    /// A distinct, realistic membership record.
    pub fn member(&self, event: Event) -> Record {
        let n = self.made.fetch_add(1, Ordering::Relaxed) + 1;
        record(
            event,
            &format!("person{n}@example.com"),
            &format!("Person {n}"),
            &format!("room-{}", n % 3),
        )
    }

    /// Moves the clock to 09:00 on the next UTC day.
    pub fn next_day(&self) {
        let now = rollcall::clock::Clock::now(&*self.clock);
        let next = (now.date() + Duration::days(1)).midnight().assume_utc() + Duration::hours(9);
        self.clock.set(next);
    }

    /// Stops the writer, so the files can be edited behind its back.
    pub fn close(&mut self) {
        self.writer.take();
    }

    /// The clock's day, `YYYY-MM-DD`.
    pub fn date_name(&self) -> String {
        days::day_name(rollcall::clock::Clock::now(&*self.clock).date())
    }

    /// The live file of `date` (`YYYY-MM-DD`).
    pub fn day_file(&self, date: &str) -> PathBuf {
        days::live_path(
            &self.dir,
            days::parse_day_name(date).expect("a YYYY-MM-DD date"),
        )
    }
}

/// A membership record as the webhook would make it, for `target` "team".
pub fn record(event: Event, email: &str, name: &str, room_id: &str) -> Record {
    Record {
        seq: 0,
        received_at: String::new(),
        event,
        room_id: room_id.into(),
        room_title: None,
        room_type: Some("group".into()),
        person_id: format!("person-id-{email}"),
        person_email: Some(email.into()),
        person_display_name: Some(name.into()),
        person_org_id: Some("org-1".into()),
        is_moderator: Some(false),
        is_monitor: Some(false),
        is_room_hidden: Some(false),
        membership_id: format!("membership-{email}-{room_id}"),
        membership_created: Some(format!("created-{name}-{email}-{event:?}")),
        actor_id: Some("actor-1".into()),
        org_id: Some("org-1".into()),
        webhook_id: Some("webhook-1".into()),
        webhook_name: Some("Team roster webhook".into()),
        target: "team".into(),
        source: Source::Webhook,
        not_before: None,
        receiver: None,
        prev_hash: String::new(),
        hash: String::new(),
    }
}

/// The record a fixture delivery to target `team` becomes.
pub fn fixture_record(name: &str) -> Record {
    match payload::parse(&fixture(name), &"team".parse().unwrap()) {
        Ok(Delivery::Membership(membership)) => membership.record,
        other => panic!("fixture {name} is not a membership: {other:?}"),
    }
}

/// Reads a day file's lines.
pub fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .lines()
        .map(str::to_string)
        .collect()
}

/// Rewrites a day file from `lines`, each ending in a newline.
pub fn write_lines(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// Archives every day up to and including `date` with the real archival,
/// as `rollcall archive` would on the day after.
pub fn archive_day(dir: &Path, date: &str) {
    let day = days::parse_day_name(date).expect("a YYYY-MM-DD date");
    let next_noon =
        (day + time::Duration::days(1)).midnight().assume_utc() + time::Duration::hours(12);
    archive::archive_closed_days(
        dir,
        &FakeClock::new(next_noon),
        &archive::Options::default(),
        &std::sync::atomic::AtomicBool::new(false),
    )
    .expect("archiving");
    assert!(
        days::archive_path(dir, day).exists(),
        "{date} was not archived"
    );
}

/// Rewrites the lines inside an archived day's gzip, leaving its digest
/// as it was: tampering after archival.
pub fn tamper_archive(dir: &Path, date: &str, edit: impl FnOnce(&mut Vec<String>)) {
    let path = days::archive_path(dir, days::parse_day_name(date).expect("a YYYY-MM-DD date"));
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(&path).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    edit(&mut lines);
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&path).unwrap(),
        flate2::Compression::default(),
    );
    for line in lines {
        writeln!(gz, "{line}").unwrap();
    }
    gz.finish().unwrap();
}
