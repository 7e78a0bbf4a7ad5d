//! What a start finds on disk: a torn tail moved aside, the end of the
//! chain to go on from (even past damaged last lines), and the dedup keys
//! of the recent days (a damaged line among them reported and left out);
//! and the writer's state built from them, at start and after a batch that
//! could not be cut off.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use anyhow::Context;
use serde::Deserialize;
use time::{Duration, OffsetDateTime};

use super::seen::Remembered;
use super::{Disk, LogEnd, Seen, State, lock};
use crate::clock::Clock;
use crate::log::days::DEDUP_DAYS;
use crate::log::days::{self, Day};
use crate::log::files;
use crate::log::head::QUARANTINE_DIR;
use crate::log::record::{self, DedupKey, Event, GENESIS_HASH, scan};
use crate::metrics::Metrics;

/// The dedup keys of the records of `days`, read on every core: this is
/// most of what a start costs on a big log. A line that is not a record is
/// left out, reported (file, line, and seq if it can be read) and counted
/// in `metrics`: `verify` names it too, and one damaged line must not keep
/// the receiver from starting, or every delivery fails until Webex
/// disables the webhooks.
pub(super) fn remembered(days: &[&Day], metrics: &Metrics) -> anyhow::Result<Remembered> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(days.len());
    let next = AtomicUsize::new(0);
    let (all, mut damaged) = std::thread::scope(|scope| {
        let loaders: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let (mut keys, mut damaged) = (Remembered::default(), Vec::new());
                    while let Some(day) = days.get(next.fetch_add(1, Ordering::Relaxed)) {
                        day_keys(day, &mut keys, &mut damaged)?;
                    }
                    Ok::<_, anyhow::Error>((keys, damaged))
                })
            })
            .collect();
        let (mut all, mut damaged) = (Remembered::default(), Vec::new());
        for loader in loaders {
            let (keys, lines) = loader.join().expect("a key loader does not panic")?;
            // The first loader's keys become the whole list: one copy of
            // the others', none of its own.
            if all.keys.is_empty() {
                all.keys = keys.keys;
                all.append(Remembered {
                    keys: Vec::new(),
                    first_seqs: keys.first_seqs,
                });
            } else {
                all.append(keys);
            }
            damaged.extend(lines);
        }
        Ok::<_, anyhow::Error>((all, damaged))
    })?;
    damaged.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    for line in &damaged {
        let seq = line.seq.map_or_else(
            || "its seq unreadable".to_string(),
            |seq| format!("seq {seq}"),
        );
        tracing::error!(
            file = %line.file.display(),
            line = line.line,
            seq = line.seq,
            "{} line {}, {seq}, is not a record ({}): it stays as it is, left out of dedup and the membership state. Run `rollcall verify`",
            line.file.display(),
            line.line,
            line.problem
        );
    }
    metrics
        .damaged_lines
        .store(damaged.len() as u64, Ordering::Relaxed);
    Ok(all)
}

/// A line of the log that does not read as a record.
#[derive(Debug)]
pub(super) struct Damaged {
    file: PathBuf,
    /// Counted from 1.
    line: u64,
    /// As far as it can be read.
    seq: Option<u64>,
    problem: String,
}

/// Appends the dedup key and seq of each record of `day` to `keys`, and
/// each line that is not a record to `damaged`.
pub(super) fn day_keys(
    day: &Day,
    keys: &mut Remembered,
    damaged: &mut Vec<Damaged>,
) -> anyhow::Result<()> {
    let path = day.path();
    let mut lines = day
        .lines()
        .with_context(|| format!("reading {}", path.display()))?;
    let mut number = 0;
    while let Some((line, _)) = lines
        .next_line()
        .with_context(|| format!("reading {}", path.display()))?
    {
        number += 1;
        let (seq, key) = match scan::dedup_key(line) {
            Some(found) => found,
            None => match serde_json::from_slice::<KeyView>(line) {
                Ok(view) => {
                    let created = view.membership_created.as_deref().unwrap_or("");
                    let key = matches!(view.event, Event::Joined | Event::Left)
                        .then(|| DedupKey::new(view.event, &view.membership_id, created));
                    (view.seq, key)
                }
                Err(error) => {
                    damaged.push(Damaged {
                        file: path.to_path_buf(),
                        line: number,
                        seq: scan::leading_seq(line),
                        problem: error.to_string(),
                    });
                    continue;
                }
            },
        };
        if let Some(key) = key {
            keys.push(key, seq, day.date);
        }
    }
    Ok(())
}

/// The fields of a line needed to remember it as already recorded.
#[derive(Deserialize)]
pub(super) struct KeyView<'a> {
    seq: u64,
    event: Event,
    #[serde(borrow)]
    membership_id: Cow<'a, str>,
    #[serde(borrow)]
    membership_created: Option<Cow<'a, str>>,
}

/// Where the chain goes on from: the newest whole line's seq and hash.
pub(super) struct ChainEnd {
    pub(super) seq: u64,
    pub(super) hash: String,
    pub(super) received_at: Option<String>,
    pub(super) event: Option<Event>,
}

/// What a damaged line must still say for the chain to go on from it.
#[derive(Deserialize)]
pub(super) struct EndView {
    seq: u64,
    hash: String,
    received_at: Option<String>,
    event: Option<String>,
}

/// The end of the newest whole line of the log, if any. A line that fails
/// its hash stays where it is: the chain goes on from its stored `hash`
/// (so `verify` keeps reporting it), the damage is logged and counted.
///
/// A line that does not even give a seq and hash stays too, and is
/// reported; the chain goes on from the newest line before it that gives
/// them. The seq such a line held cannot be read, but every line was one
/// record under the next seq, so each of them counts as a seq used: the
/// next record never takes a seq that may already name one (in a
/// checkpoint, an archive, a SIEM), and `verify` reports the line.
pub(super) fn last_record(all_days: &[Day], metrics: &Metrics) -> anyhow::Result<Option<ChainEnd>> {
    metrics.damaged_at_start.store(0, Ordering::Relaxed);
    // Lines after the newest one that gives a seq and hash.
    let mut unreadable = 0;
    for day in all_days.iter().rev() {
        let path = day.path();
        let mut lines = NewestFirst::open(day)?;
        let mut total = None;
        let mut from_end = 0;
        while let Some(line) = lines.next()? {
            from_end += 1;
            let problem = match record::parse_line(&line) {
                Ok(record) => {
                    return Ok(Some(ChainEnd {
                        seq: record.seq + unreadable,
                        hash: record.hash,
                        received_at: Some(record.received_at),
                        event: (unreadable == 0).then_some(record.event),
                    }));
                }
                Err(problem) => problem,
            };
            metrics.damaged_at_start.store(1, Ordering::Relaxed);
            let in_day = match total {
                Some(counted) => counted,
                None => *total.insert(lines.count(path)?),
            };
            let line_no = in_day + 1 - from_end;
            let end = serde_json::from_slice::<EndView>(&line).ok().filter(|end| {
                end.hash.len() == 64 && end.hash.bytes().all(|b| b.is_ascii_hexdigit())
            });
            let Some(end) = end else {
                tracing::error!(
                    file = %path.display(),
                    line = line_no,
                    "{} line {line_no}, at the end of the log, is damaged beyond reading its seq and hash ({problem}). \
                     It stays as it is; the seq it held counts as used and is not given again, and the chain goes on \
                     from the record before it. Run `rollcall verify`",
                    path.display()
                );
                unreadable += 1;
                continue;
            };
            tracing::error!(
                file = %path.display(),
                line = line_no,
                seq = end.seq,
                "{} line {line_no}, seq {}, at the end of the log, is damaged ({problem}); \
                 it stays as it is and the chain goes on from its stored hash. Run `rollcall verify`",
                path.display(),
                end.seq
            );
            let received_at = end.received_at.filter(|at| {
                OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).is_ok()
            });
            return Ok(Some(ChainEnd {
                seq: end.seq + unreadable,
                hash: end.hash,
                received_at,
                event: end
                    .event
                    .as_deref()
                    .and_then(Event::from_name)
                    .filter(|_| unreadable == 0),
            }));
        }
    }
    Ok((unreadable > 0).then(|| ChainEnd {
        seq: unreadable,
        hash: record::GENESIS_HASH.to_string(),
        received_at: None,
        event: None,
    }))
}

/// A day's lines, newest first: a live file read from its end, an
/// archived day (only ever the newest when retention or archival left no
/// live day after it) read whole.
enum NewestFirst {
    Live { file: File, end: u64 },
    Archived { lines: Vec<Vec<u8>>, total: u64 },
}

impl NewestFirst {
    fn open(day: &Day) -> anyhow::Result<Self> {
        let path = day.path();
        if let Some(live) = &day.live {
            let file = File::open(live).with_context(|| format!("opening {}", live.display()))?;
            let end = file.metadata()?.len();
            return Ok(Self::Live { file, end });
        }
        let mut lines = day
            .lines()
            .with_context(|| format!("reading {}", path.display()))?;
        let mut all = Vec::new();
        while let Some((line, _)) = lines.next_line()? {
            all.push(line.to_vec());
        }
        let total = all.len() as u64;
        Ok(Self::Archived { lines: all, total })
    }

    /// The next line back, without its newline (the last byte of a live
    /// file is taken as its newline: a torn tail was moved aside).
    fn next(&mut self) -> anyhow::Result<Option<Vec<u8>>> {
        match self {
            Self::Live { file, end } => {
                if *end == 0 {
                    return Ok(None);
                }
                let start = line_start_before(file, *end - 1)?;
                let mut line = vec![0; (*end - 1 - start) as usize];
                file.seek(SeekFrom::Start(start))?;
                file.read_exact(&mut line)?;
                *end = start;
                Ok(Some(line))
            }
            Self::Archived { lines, .. } => Ok(lines.pop()),
        }
    }

    /// How many lines the day had, to number them.
    fn count(&self, path: &Path) -> anyhow::Result<u64> {
        match self {
            Self::Live { .. } => Ok(line_count(path)? as u64),
            Self::Archived { total, .. } => Ok(*total),
        }
    }
}

/// How many lines a plain file has, to name one.
pub(super) fn line_count(path: &Path) -> anyhow::Result<usize> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(memchr::memchr_iter(b'\n', &bytes).count())
}

/// The offset just after the last newline before `end`, or 0.
pub(super) fn line_start_before(file: &mut File, end: u64) -> io::Result<u64> {
    const CHUNK: u64 = 64 * 1024;
    let mut pos = end;
    let mut buf = vec![0; CHUNK as usize];
    while pos > 0 {
        let from = pos.saturating_sub(CHUNK);
        let chunk = &mut buf[..(pos - from) as usize];
        file.seek(SeekFrom::Start(from))?;
        file.read_exact(chunk)?;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            return Ok(from + i as u64 + 1);
        }
        pos = from;
    }
    Ok(0)
}

/// A crash can leave the last write half done: a final fragment without
/// its newline, or a tail of NULs (a file extended but never written).
/// Only those bytes are a torn write: they are moved to `DIR/quarantine/`
/// (never silently dropped) and cut off. A newline-terminated line is
/// never moved, rewritten or dropped, whatever it holds.
pub(super) fn repair_torn_tail(dir: &Path, path: &Path) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    let len = file.metadata()?.len();
    let mut good_end = line_start_before(&mut file, len)?;
    while good_end > 0 {
        let start = line_start_before(&mut file, good_end - 1)?;
        let mut line = vec![0; (good_end - 1 - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut line)?;
        if line.is_empty() || line.iter().any(|&b| b != 0) {
            break;
        }
        good_end = start;
    }
    if good_end == len {
        return Ok(());
    }
    let mut torn = vec![0; (len - good_end) as usize];
    file.seek(SeekFrom::Start(good_end))?;
    file.read_exact(&mut torn)?;
    let quarantine = dir.join(QUARANTINE_DIR);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("day");
    let aside = files::keep_aside(
        &quarantine,
        |n| format!("{name}.at-{good_end}.{n}.torn"),
        &torn,
    )
    .with_context(|| format!("moving a torn write into {}", quarantine.display()))?;
    file.set_len(good_end)?;
    file.sync_all()?;
    tracing::warn!(
        file = %path.display(),
        bytes = torn.len(),
        moved_to = %aside.display(),
        "the log ended in a torn write; moved it aside and resumed from the last whole record"
    );
    Ok(())
}

impl State {
    /// What a start finds on disk: a torn tail moved aside, the live file
    /// made durable, the chain's end, and the dedup keys of recent days.
    pub(super) fn recover(
        dir: &Path,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        healthy: Arc<AtomicBool>,
        disk: Arc<dyn Disk>,
    ) -> anyhow::Result<Self> {
        files::create_dir(dir)
            .with_context(|| format!("creating log directory {}", dir.display()))?;
        let all_days = days::list(dir).with_context(|| format!("listing {}", dir.display()))?;
        if let Some(live) = all_days.last().and_then(|d| d.live.as_deref()) {
            repair_torn_tail(dir, live)?;
            // Bytes a failed batch or an earlier process left behind are
            // trusted (answered as duplicates, chained on) only once they
            // are known durable.
            let file = File::open(live).with_context(|| format!("opening {}", live.display()))?;
            disk.sync(&file)
                .with_context(|| format!("making {} durable", live.display()))?;
        }
        let mut state = State {
            dir: dir.to_path_buf(),
            disk,
            clock,
            metrics,
            healthy,
            day: None,
            next_seq: 1,
            last_hash: GENESIS_HASH.to_string(),
            last_received: OffsetDateTime::UNIX_EPOCH,
            recovered_end: None,
            seen: Seen::default(),
            members: Arc::default(),
            broken: false,
            head_unsynced: false,
            head_synced_at: None,
            head_stored_at: None,
            head_behind: false,
            carry: None,
            head_held: None,
            head_due: None,
            watchdog: None,
        };
        if let Some(last) = last_record(&all_days, &state.metrics)? {
            state.recovered_end = Some(LogEnd {
                seq: last.seq,
                event: last.event,
                received_at: last.received_at.clone(),
            });
            state.next_seq = last.seq + 1;
            if let Some(received_at) = last.received_at {
                state.last_received = OffsetDateTime::parse(
                    &received_at,
                    &time::format_description::well_known::Rfc3339,
                )
                .with_context(|| format!("record {} has a bad received_at", last.seq))?;
            }
            state.last_hash = last.hash;
        }
        // Retention may have deleted every day file; the digests still
        // say where the chain had got to.
        if let Some((seq, hash)) = crate::log::archive::chain_end(dir)?
            && seq >= state.next_seq
        {
            state.next_seq = seq + 1;
            state.last_hash = hash;
        }
        let since = state.clock.now().date() - Duration::days(DEDUP_DAYS);
        let recent: Vec<&Day> = all_days.iter().filter(|d| d.date >= since).collect();
        state.seen().extend(remembered(&recent, &state.metrics)?);
        Ok(state)
    }

    /// After a batch could not be cut off the file again: take the truth
    /// from disk, once it is known durable (a failed fdatasync leaves the
    /// writer unavailable). The chain never goes backwards, even if the
    /// directory lost files meanwhile.
    pub(super) fn reload(&mut self) -> anyhow::Result<()> {
        let fresh = State::recover(
            &self.dir,
            self.clock.clone(),
            self.metrics.clone(),
            self.healthy.clone(),
            self.disk.clone(),
        )?;
        if fresh.next_seq >= self.next_seq {
            self.next_seq = fresh.next_seq;
            self.last_hash = fresh.last_hash;
            self.last_received = fresh.last_received;
        }
        let fresh_seen = std::mem::take(&mut *lock(&fresh.seen)).into_remembered();
        self.seen().extend(fresh_seen);
        self.load_members()?;
        self.day = None;
        self.broken = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_fragment_or_a_nul_tail_is_torn_never_a_whole_line() {
        for (content, kept, aside) in [
            (
                &b"{\"bad\":1}\n{\"worse\"\n"[..],
                &b"{\"bad\":1}\n{\"worse\"\n"[..],
                None,
            ),
            (b"a\nb", b"a\n", Some(&b"b"[..])),
            (b"a\n\0\0\n\0\0", b"a\n", Some(&b"\0\0\n\0\0"[..])),
            (b"\0\0\0", b"", Some(&b"\0\0\0"[..])),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let day = dir.path().join("2026-11-27.jsonl");
            std::fs::write(&day, content).unwrap();
            repair_torn_tail(dir.path(), &day).unwrap();
            assert_eq!(std::fs::read(&day).unwrap(), kept);
            let moved: Vec<Vec<u8>> = std::fs::read_dir(dir.path().join(QUARANTINE_DIR))
                .map(|entries| {
                    entries
                        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
                        .collect()
                })
                .unwrap_or_default();
            assert_eq!(
                moved,
                aside.map(<[u8]>::to_vec).into_iter().collect::<Vec<_>>()
            );
        }
    }
}
