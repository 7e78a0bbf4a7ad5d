//! `tail` over several receivers' logs: the last events of the merged
//! record ([`latest`]), each once with the receivers that had it, and with
//! `-f` ([`follow`]) every receiver's durable head followed, each new
//! event printed when its first copy arrives and never again for a later
//! copy from another receiver (the merge's identity and its memory of the
//! writer's dedup window; no waiting for the other copies).

use std::collections::VecDeque;

use time::{Date, Duration};

use super::{Cursor, Filter, Format, Had, Printer, Shown, Watch, durable_head, show};
use crate::log::days::{DEDUP_DAYS, Day, day_name};
use crate::log::merge::{Follow, Merge, Mergeable, Merged};
use crate::log::reader::{self, DayReader, Stream, TitleFallback};
use crate::receiver::Receivers;

/// The last `n` events `filter` keeps of the merged record, oldest first;
/// a cursor at the end of each receiver's log to follow from; and what
/// the merge remembers, for following. Only records up to each durable
/// head are read. The days are read back from the newest, more each time
/// until `n` are found; each read begins [`DEDUP_DAYS`] and a day before
/// the events it counts, so that a copy made later (a reconciled one) of
/// an event before them is still known as a copy.
pub(super) fn latest(
    receivers: &Receivers,
    filter: &Filter,
    n: usize,
    printer: &mut Printer,
) -> anyhow::Result<(Vec<Shown>, Vec<Cursor>, Follow)> {
    let mut logs = Vec::with_capacity(receivers.len());
    for receiver in receivers.all() {
        let head = durable_head(&receiver.dir)?;
        logs.push((reader::days(&receiver.dir)?, head.map(|h| h.seq)));
    }
    let dates = || {
        logs.iter()
            .flat_map(|(days, _)| days.iter().map(|d| d.date))
    };
    let (Some(oldest), Some(newest)) = (dates().min(), dates().max()) else {
        let cursors = logs
            .iter()
            .map(|_| Cursor::at(&[], None, 0))
            .collect::<anyhow::Result<_>>()?;
        return Ok((Vec::new(), cursors, Follow::new(receivers.len())));
    };
    let mut span = 1;
    loop {
        let from = newest - Duration::days(span - 1);
        let read = read(&logs, filter, n, from, printer.format)?;
        if read.shown.len() >= n || from <= oldest {
            printer.titles = read.titles;
            return Ok((Vec::from(read.shown), read.cursors, read.follow));
        }
        span *= 2;
    }
}

/// What one read back from a day found.
struct Read {
    shown: VecDeque<Shown>,
    titles: Option<TitleFallback>,
    cursors: Vec<Cursor>,
    follow: Follow,
}

/// Reads the merged record of `logs` (each receiver's days and durable
/// head's seq) keeping the last `n` events from day `from` on.
fn read(
    logs: &[(Vec<Day>, Option<u64>)],
    filter: &Filter,
    n: usize,
    from: Date,
    format: Format,
) -> anyhow::Result<Read> {
    let warm = from - Duration::days(DEDUP_DAYS + 1);
    let mut earlier: Vec<Day> = logs
        .iter()
        .flat_map(|(days, _)| days.iter().filter(|d| d.date < from).cloned())
        .collect();
    earlier.sort_by_key(|day| day.date);
    let mut titles = (format != Format::Jsonl).then(|| TitleFallback::after(&earlier));
    let mut streams: Vec<Stream> = logs
        .iter()
        .map(|(days, head)| {
            // A receiver whose log ended long ago still has its last day
            // read, for its cursor to follow on from.
            let start = days.last().map_or(warm, |last| last.date.min(warm));
            Stream::open(days.iter().filter(|d| d.date >= start).cloned().collect()).until(*head)
        })
        .collect();
    let from_day = day_name(from);
    let mut shown = VecDeque::new();
    let mut merge = Merge::new(streams.iter_mut().collect());
    for merged in merge.by_ref() {
        let Merged::Event {
            record: entry,
            receiver,
            receivers,
        } = merged?
        else {
            continue;
        };
        if entry.received_at() < from_day.as_str() {
            continue;
        }
        let record = entry.record()?;
        if let (Some(titles), Some(title)) = (&mut titles, &record.room_title) {
            titles.learn(&record.room_id, title);
        }
        if n == 0 || !filter.matches(&record) {
            continue;
        }
        let mut one = Shown::new(entry.line(), &record);
        one.had = Some((receiver, receivers));
        if let (Some(titles), None) = (&mut titles, &one.title) {
            one.title = titles.title(&one.room)?.map(str::to_string);
        }
        if shown.len() == n {
            shown.pop_front();
        }
        shown.push_back(one);
    }
    let follow = merge.into_follow();
    let cursors = logs
        .iter()
        .zip(&streams)
        .map(|((days, _), stream)| match stream.last() {
            Some((seq, date)) => Cursor::at(days, Some(date), seq),
            None => Cursor::at(days, days.last().map(|d| d.date), 0),
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(Read {
        shown,
        titles,
        cursors,
        follow,
    })
}

/// Prints the last events, then every new one once, until SIGINT or
/// SIGTERM.
pub(super) async fn follow(
    receivers: &Receivers,
    filter: &Filter,
    lines: usize,
    mut printer: Printer,
) -> anyhow::Result<()> {
    let dirs: Vec<_> = receivers.all().iter().map(|r| r.dir.clone()).collect();
    let mut watch = Watch::start(&dirs)?;
    let (latest, mut cursors, mut seen) = latest(receivers, filter, lines, &mut printer)?;
    printer.print_all(&latest)?;
    loop {
        for (receiver, (cursor, dir)) in cursors.iter_mut().zip(&dirs).enumerate() {
            cursor.catch_up(dir, &mut |line, record| {
                if seen.take(record, receiver).is_some() {
                    return Ok(());
                }
                let had = Some((receiver, Had::one(receiver)));
                show(&mut printer, filter, line, record, had)
            })?;
        }
        printer.flush()?;
        if !watch.changed().await? {
            return Ok(());
        }
    }
}

impl Cursor {
    /// A cursor on the day `date` of `days` (none: before the first day)
    /// that has seen every record up to `seq`: the day is read again from
    /// its start, passing over what was seen (and taking the hash of
    /// `seq`'s record on the way).
    fn at(days: &[Day], date: Option<Date>, seq: u64) -> anyhow::Result<Cursor> {
        let reader = match days.iter().find(|d| Some(d.date) == date) {
            Some(day) => Some(DayReader::open(day)?),
            None => None,
        };
        Ok(Cursor {
            date,
            reader,
            last_seq: seq,
            last_hash: None,
            held: VecDeque::new(),
        })
    }
}
