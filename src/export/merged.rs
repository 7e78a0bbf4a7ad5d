//! The export of several receivers' logs as one record ([`write`]): each
//! receiver's records stream in ([`Stream`]), read only for what the
//! merge needs, on threads of their own; the merge gives each event out
//! once, in received order, as the copy received first; those copies are
//! then parsed and formatted on every core a batch at a time, exactly as
//! a single log's blocks are, and written in the merge's order.
//!
//! Filters apply to the copy given out. The days read reach back
//! [`DEDUP_DAYS`] and a day before `--from`, and a day past `--to`, so
//! that an event's first copy on the far side of a boundary keeps its
//! later copies (another receiver's, or one reconciled hours later) from
//! being given out as events of their own; the records read for that
//! only are never parsed.
//!
//! What it costs (`cargo bench --bench merge`: two logs of 1,000,000
//! records, nine in ten events in both, against one of them alone,
//! medians of 5 runs alternated, 2 cores, 2026-12-07): CSV 1.64 s
//! against 0.64 s, `--format jsonl` 1.27 s against 0.41 s, peak RSS 54
//! MiB against 12 MiB.
//! Twice the lines are read; scanning them (SHA-256 of each identity
//! included) is about half the CPU, the merge on its own thread a sixth.

use std::collections::BTreeMap;
use std::io::Write;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError, mpsc};

use anyhow::Context;
use time::Date;

use super::{CSV_HEADER, Format, Job, Options, Rows, TitleCell};
use crate::log::days::{DEDUP_DAYS, Day};
use crate::log::merge::{Merge, Mergeable, Merged, Receivers};
use crate::log::reader::{self, Entry, Filter, SeqRange, Stream, TitleFallback};
use crate::receiver;

/// Events formatted together: large enough that handing a batch to a
/// worker costs nothing beside it, small enough that the blocks the
/// batches in flight hold stay few (on the merge bench's two logs of
/// 1,000,000 records, 2,048 took 20 MB more at peak than 512, no faster).
const BATCH: usize = 512;

/// More formatting threads than this only add batches in flight.
const MAX_THREADS: usize = 4;

/// An event given out: the copy, whose it is, and who had it.
type Given = (Entry, usize, Receivers);

/// Streams the events of `receivers` that `filter` keeps to `out`, each
/// once, in received order; `done` hears of each batch written (the day
/// it reached, and its records), for a progress line.
pub fn write(
    receivers: &receiver::Receivers,
    filter: &Filter,
    options: Options,
    mut out: impl Write,
    mut done: impl FnMut(Date, u64),
) -> anyhow::Result<()> {
    let reach = Filter {
        from: filter
            .from
            .as_deref()
            .map(|from| shifted_days(from, -(DEDUP_DAYS + 1))),
        to: filter.to.as_deref().map(|to| shifted_days(to, 1)),
        ..Filter::default()
    };
    // Before the first day of the range: only ever searched for titles.
    let first_day = filter
        .from
        .as_deref()
        .map(|from| &from[..from.len().min(10)]);
    let before_range = |day: &Day| first_day.is_some_and(|first| day_name(day).as_str() < first);
    let mut streams = Vec::with_capacity(receivers.len());
    let mut earlier = Vec::new();
    for receiver in receivers.all() {
        let days = reader::days(&receiver.dir)?;
        earlier.extend(days.iter().filter(|d| before_range(d)).cloned());
        streams.push(Stream::open(
            days.into_iter()
                .filter(|d| reach.may_hold(d.date))
                .collect(),
        ));
    }
    earlier.sort_by_key(|day| day.date);
    let mut titles = (options.format != Format::Jsonl).then(|| TitleFallback::after(&earlier));
    if options.format == Format::Csv {
        let mut header = csv::Writer::from_writer(&mut out);
        header
            .write_record(CSV_HEADER)
            .and_then(|()| Ok(header.flush()?))
            .context("writing the export")?;
    }
    let names = receivers.names();
    let job = Job {
        filter,
        seqs: SeqRange::default(),
        format: options.format,
        guard: options.guard,
        names: &names,
    };
    let mut title_cell = TitleCell::new(options.format, options.guard);
    in_order(
        |give| -> anyhow::Result<()> {
            let mut batch = Vec::with_capacity(BATCH);
            for merged in Merge::new(streams) {
                let merged = match merged {
                    Ok(merged) => merged,
                    // What came before a damaged line is written, as in an
                    // export of that log alone.
                    Err(e) => {
                        if !batch.is_empty() {
                            give(batch);
                        }
                        return Err(e.into());
                    }
                };
                // A late copy is of an event already given out: once.
                let Merged::Event {
                    record,
                    receiver,
                    receivers,
                } = merged
                else {
                    continue;
                };
                let at = record.received_at();
                let before = first_day.is_some_and(|first| at < first);
                let after = filter.to.as_deref().is_some_and(|to| at >= to);
                if before || after {
                    continue;
                }
                batch.push((record, receiver, receivers));
                if batch.len() == BATCH
                    && !give(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)))
                {
                    return Ok(());
                }
            }
            if !batch.is_empty() {
                give(batch);
            }
            Ok(())
        },
        Rows::default,
        |batch: &Vec<Given>, rows| {
            let lines = batch.iter().map(|(entry, receiver, receivers)| {
                (entry.line(), true, Some((*receiver, *receivers)))
            });
            rows.fill_lines(lines, &job);
        },
        |batch, rows| {
            rows.write(&mut out, titles.as_mut(), &mut title_cell)?;
            if let Some((line, reason)) = rows.bad.take() {
                let (entry, _, _) = &batch[line as usize - 1];
                return Err(entry.not_a_record(reason).into());
            }
            if let Some((last, _, _)) = batch.last() {
                done(last.date(), rows.records);
            }
            Ok(())
        },
    )?;
    out.flush().context("writing the export")?;
    Ok(())
}

/// `at` moved by `days` (a time of another form is kept as it is).
fn shifted_days(at: &str, days: i64) -> String {
    crate::log::merge::shifted(at, days * 24 * 3600 * 1000).unwrap_or_else(|| at.to_string())
}

fn day_name(day: &Day) -> String {
    crate::log::days::day_name(day.date)
}

/// `line` (a record as stored) with `"receivers":[...]` added as its last
/// member: the receiver whose copy it is first, then the others that had
/// it, in the order they were given. Taking the member off gives the
/// stored line back, so its hash still checks.
pub fn with_receivers(
    line: &[u8],
    copy: usize,
    receivers: Receivers,
    names: &[impl AsRef<str>],
    out: &mut Vec<u8>,
) {
    let line = line.trim_ascii_end();
    out.extend_from_slice(line.strip_suffix(b"}").unwrap_or(line));
    out.extend_from_slice(b",\"receivers\":[");
    let others = receivers.iter().filter(|&r| r != copy);
    for (n, receiver) in std::iter::once(copy).chain(others).enumerate() {
        if n > 0 {
            out.push(b',');
        }
        // Receiver names need no escaping ([`receiver::Name`]).
        out.push(b'"');
        out.extend_from_slice(names.get(receiver).map_or("", AsRef::as_ref).as_bytes());
        out.push(b'"');
    }
    out.extend_from_slice(b"]}");
}

/// Runs `work` on each job that `jobs` makes (on a thread of its own) on
/// every core, into a result slot, then `commit` on the calling thread in
/// the jobs' order. A few slots are in flight at a time, so memory does
/// not grow with the number of jobs. The first error (from `jobs` or
/// `commit`) ends it all.
///
/// The log's own blocks go through [`reader::in_log_order`], which reads
/// them under a lock on the workers themselves; here the jobs come out of
/// a merge, which cannot be split between threads.
fn in_order<J, S, E>(
    jobs: impl FnOnce(&mut dyn FnMut(J) -> bool) -> Result<(), E> + Send,
    new_slot: impl Fn() -> S,
    work: impl Fn(&J, &mut S) + Sync,
    mut commit: impl FnMut(&J, &mut S) -> Result<(), E>,
) -> Result<(), E>
where
    J: Send,
    S: Send,
    E: Send,
{
    let threads = std::thread::available_parallelism()
        .map_or(1, NonZeroUsize::get)
        .min(MAX_THREADS);
    let (free, free_slots) = mpsc::channel();
    for _ in 0..threads * 2 {
        let _ = free.send(new_slot());
    }
    let (to_work, work_on) = mpsc::sync_channel::<(u64, J, S)>(threads);
    // Shared by the workers alone, so the last one gone ends the jobs.
    let work_on = Arc::new(Mutex::new(work_on));
    let (worked, results) = mpsc::channel::<(u64, J, S)>();
    std::thread::scope(|scope| {
        let making = scope.spawn(move || {
            let mut order = 0;
            jobs(&mut |job| {
                let Ok(slot) = free_slots.recv() else {
                    return false;
                };
                order += 1;
                to_work.send((order - 1, job, slot)).is_ok()
            })
        });
        for _ in 0..threads {
            let (work_on, worked, work) = (work_on.clone(), worked.clone(), &work);
            scope.spawn(move || {
                loop {
                    let next = work_on
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .recv();
                    let Ok((order, job, mut slot)) = next else {
                        break;
                    };
                    work(&job, &mut slot);
                    if worked.send((order, job, slot)).is_err() {
                        break;
                    }
                }
            });
        }
        drop((work_on, worked));
        let mut committed = Ok(());
        let mut waiting = BTreeMap::new();
        let mut next = 0;
        'results: for (order, job, slot) in &results {
            waiting.insert(order, (job, slot));
            while let Some((job, mut slot)) = waiting.remove(&next) {
                next += 1;
                committed = commit(&job, &mut slot);
                if committed.is_err() {
                    break 'results;
                }
                let _ = free.send(slot);
            }
        }
        // Stops the workers and the jobs, whichever way this ended.
        drop((results, free));
        let made = making
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        committed.and(made)
    })
}
