//! `rollcall tail`: the latest records as readable lines (or JSON lines:
//! the log's own, OCSF or ECS), and with `-f` the new ones as they are
//! written, across the midnight rollover and archival, until interrupted.

use std::collections::VecDeque;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use notify::{RecursiveMode, Watcher};
use time::Date;
use tokio::signal::unix::{SignalKind, signal};

mod readable;

pub(super) use readable::clean;
pub use readable::readable;

use super::args::FilterArgs;
use crate::cli::Global;
use crate::export::Schema;
use crate::log::days::{self, Day};
use crate::log::head::Head;
use crate::log::reader::{
    self, DayReader, Filter, Line, ReadError, RecordView, TitleFallback, titled_lines,
};
use crate::log::record::Event;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// How many of the latest records to show first.
    #[arg(
        short = 'n',
        long = "lines",
        value_name = "N",
        default_value_t = 10,
        env = "ROLLCALL_LINES"
    )]
    pub lines: usize,
    /// Keep following new records as they are written, until interrupted.
    #[arg(short = 'f', long, env = "ROLLCALL_FOLLOW")]
    pub follow: bool,
    /// Readable lines, the records as they are in the log (JSON lines), or
    /// one OCSF or ECS event a line for a SIEM. Not from `ROLLCALL_FORMAT`:
    /// that is `export`'s, whose `csv` tail does not take.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// The records as they are in the log: `--format jsonl`.
    #[arg(long, env = "ROLLCALL_JSON")]
    pub json: bool,
    #[command(flatten)]
    pub filter: FilterArgs,
}

/// How `tail` shows a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Jsonl,
    Ocsf,
    Ecs,
}

pub fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let dir = global.dir()?;
    days::ensure_log_dir(dir)?;
    let filter = args.filter.clone().filter()?;
    let mut printer = Printer {
        out: BufWriter::new(io::stdout()),
        format: if args.json {
            Format::Jsonl
        } else {
            args.format
        },
        titles: None,
        previous: None,
        line: Vec::new(),
    };
    if !args.follow {
        let (latest, _) = latest(dir, &filter, args.lines, &mut printer)?;
        printer.print_all(&latest)?;
        return Ok(ExitCode::SUCCESS);
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?
        .block_on(follow(dir, &filter, args.lines, printer))?;
    Ok(ExitCode::SUCCESS)
}

/// Prints the latest records, then every new one, until SIGINT or SIGTERM.
async fn follow(
    dir: &Path,
    filter: &Filter,
    lines: usize,
    mut printer: Printer,
) -> anyhow::Result<()> {
    // Signals and the watch are set up before the log is first read, so
    // nothing written meanwhile is missed and an early Ctrl-C still counts
    // as a clean stop.
    let mut interrupt = signal(SignalKind::interrupt()).context("handling SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("handling SIGTERM")?;
    let (changed, mut changes) = tokio::sync::mpsc::unbounded_channel();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Err(error) = &event {
            tracing::warn!(%error, "watching the log directory");
        }
        let _ = changed.send(());
    })
    .context("watching the log directory")?;
    watcher
        .watch(dir, RecursiveMode::NonRecursive)
        .with_context(|| format!("watching {}", dir.display()))?;

    let (latest, mut cursor) = latest(dir, filter, lines, &mut printer)?;
    printer.print_all(&latest)?;
    loop {
        cursor.catch_up(dir, filter, &mut printer)?;
        tokio::select! {
            _ = interrupt.recv() => return Ok(()),
            _ = terminate.recv() => return Ok(()),
            woken = changes.recv() => {
                if woken.is_none() {
                    anyhow::bail!("the watch on {} stopped", dir.display());
                }
                while changes.try_recv().is_ok() {}
            }
        }
    }
}

/// The last `n` records `filter` keeps, oldest first, and a cursor at the
/// end of the log to follow from. Days are read newest first and reading
/// stops once `n` are found, so a long log costs only its last days.
/// Records past the durable head are not shown: the cursor holds them
/// until the head reaches them. Unless records are shown as JSON, the
/// printer learns the room titles as of the end of what was read.
fn latest(
    dir: &Path,
    filter: &Filter,
    n: usize,
    printer: &mut Printer,
) -> anyhow::Result<(Vec<Shown>, Cursor)> {
    let durable = durable_head(dir)?;
    let all = reader::days(dir)?;
    let mut cursor = Cursor {
        date: all.last().map(|d| d.date),
        reader: None,
        last_seq: 0,
        last_hash: None,
        held: VecDeque::new(),
    };
    let mut found: VecDeque<Shown> = VecDeque::new();
    let mut read_from = all.len();
    for (i, day) in all.iter().enumerate().rev() {
        if found.len() >= n && cursor.reader.is_some() {
            break;
        }
        read_from = i;
        let mut lines = DayReader::open(day)?;
        let mut kept: VecDeque<Shown> = VecDeque::new();
        let wanted = n - found.len();
        let newest = cursor.reader.is_none();
        let mut last_line = None;
        // On the newest day a line without its newline may still be being
        // written: it is held back until complete. On older days such a
        // line is torn, and left for `verify` to report.
        while let Some(line) = if newest {
            lines.next_whole_line()?
        } else {
            lines.next_line()?
        } {
            if !line.whole {
                continue;
            }
            let record = line.record()?;
            if newest && durable.as_ref().is_some_and(|head| record.seq > head.seq) {
                cursor.held.push_back(Held::new(&line)?);
                continue;
            }
            cursor.last_seq = cursor.last_seq.max(record.seq);
            if newest {
                last_line = Some(line.bytes.to_vec());
            }
            if wanted > 0 && filter.matches(&record) {
                if kept.len() == wanted {
                    kept.pop_front();
                }
                kept.push_back(Shown::new(line.bytes, &record));
            }
        }
        if newest {
            cursor.reader = Some(lines);
            cursor.last_hash = last_line
                .map(|line| Link::parse(&line).map(|link| link.hash))
                .transpose()?;
        }
        for shown in kept.into_iter().rev() {
            found.push_front(shown);
        }
    }
    let mut found = Vec::from(found);
    if printer.format != Format::Jsonl {
        printer.titles = Some(fill_titles(&all, read_from, &mut found, cursor.last_seq)?);
    }
    Ok((found, cursor))
}

/// A record to show, and the title it is shown with.
struct Shown {
    line: Vec<u8>,
    seq: u64,
    room: String,
    title: Option<String>,
}

impl Shown {
    fn new(line: &[u8], record: &RecordView<'_>) -> Self {
        Self {
            line: line.to_vec(),
            seq: record.seq,
            room: record.room_id.to_string(),
            title: record.room_title.as_ref().map(|t| t.to_string()),
        }
    }
}

/// Gives each of `found` (oldest first) without a title of its own the
/// title its room had at that record, going through the titled lines of
/// the days read from `all[read_from]` on; returns the titles as of
/// `last_seq`, the newest record read.
fn fill_titles(
    all: &[Day],
    read_from: usize,
    found: &mut [Shown],
    last_seq: u64,
) -> Result<TitleFallback, ReadError> {
    let mut titles = TitleFallback::after(&all[..read_from]);
    let mut next = 0;
    let fill = |shown: &mut Shown, titles: &mut TitleFallback| {
        if shown.title.is_none() {
            shown.title = titles.title(&shown.room)?.map(str::to_string);
        }
        Ok::<_, ReadError>(())
    };
    titled_lines(&all[read_from..], |seq, room, title| {
        // Records past the last one read are learned when they are shown.
        if seq > last_seq {
            return Ok(());
        }
        while let Some(shown) = found.get_mut(next).filter(|s| s.seq < seq) {
            fill(shown, &mut titles)?;
            next += 1;
        }
        titles.learn(room, title);
        Ok(())
    })?;
    for shown in &mut found[next..] {
        fill(shown, &mut titles)?;
    }
    Ok(titles)
}

/// `DIR/.head`, or `None` for a log from before the witness (then every
/// whole line counts as written).
fn durable_head(dir: &Path) -> anyhow::Result<Option<Head>> {
    Head::read(dir).context("reading the durable head; run `rollcall verify`")
}

/// Where following has got to: the newest day, read up to its end.
struct Cursor {
    date: Option<Date>,
    reader: Option<DayReader>,
    /// Records up to this seq have been seen (printed or filtered out).
    last_seq: u64,
    /// The hash of that record, when known.
    last_hash: Option<String>,
    /// Whole lines read past the durable head, oldest first: not known
    /// durable yet, so not shown. If their batch fails they are cut off
    /// the file again, and other records may take their seqs.
    held: VecDeque<Held>,
}

/// A line read past the durable head.
struct Held {
    link: Link,
    bytes: Vec<u8>,
}

impl Held {
    fn new(line: &Line<'_>) -> anyhow::Result<Self> {
        Ok(Self {
            link: Link::parse(line.bytes)?,
            bytes: line.bytes.to_vec(),
        })
    }
}

/// Where a record sits in the chain.
#[derive(Debug, serde::Deserialize)]
struct Link {
    seq: u64,
    prev_hash: String,
    hash: String,
}

impl Link {
    fn parse(line: &[u8]) -> anyhow::Result<Self> {
        serde_json::from_slice(line)
            .context("a record without its chain link; run `rollcall verify`")
    }
}

impl Cursor {
    /// Prints what has been written since, moving on to each newer day
    /// once the current one is read to its end.
    fn catch_up(
        &mut self,
        dir: &Path,
        filter: &Filter,
        printer: &mut Printer,
    ) -> anyhow::Result<()> {
        // Read before the log: the head never leads the log, so every
        // record up to it is in what is read next.
        let durable = durable_head(dir)?;
        loop {
            self.read_on(durable.as_ref(), filter, printer)?;
            let all = days::list(dir).with_context(|| format!("listing {}", dir.display()))?;
            let Some(newer) = all
                .into_iter()
                .find(|d| self.date.is_none_or(|date| d.date > date))
            else {
                break;
            };
            // The writer never returns to a day once it has started the
            // next, so what is left of this one was written before `newer`
            // appeared: read it, then switch.
            self.read_on(durable.as_ref(), filter, printer)?;
            self.date = Some(newer.date);
            self.reader = Some(DayReader::open(&newer)?);
        }
        if !self.release(durable.as_ref(), filter, printer)? {
            // What was held is not what became durable: a failed batch was
            // cut off and the file written again. Read the day afresh.
            self.held.clear();
            if let Some(date) = self.date
                && let Some(day) = days::list(dir)
                    .with_context(|| format!("listing {}", dir.display()))?
                    .into_iter()
                    .find(|d| d.date == date)
            {
                self.reader = Some(DayReader::open(&day)?);
                self.read_on(durable.as_ref(), filter, printer)?;
                if !self.release(durable.as_ref(), filter, printer)? {
                    tracing::warn!(
                        "the log's end does not match its durable head; run `rollcall verify`"
                    );
                }
            }
        }
        printer.flush()
    }

    /// Reads on to the end of the current day. With a durable head, new
    /// lines are held for [`release`](Self::release); without one, each
    /// whole line is shown as it comes.
    fn read_on(
        &mut self,
        durable: Option<&Head>,
        filter: &Filter,
        printer: &mut Printer,
    ) -> anyhow::Result<()> {
        let Some(lines) = &mut self.reader else {
            return Ok(());
        };
        while let Some(line) = lines.next_whole_line()? {
            let record = match line.record() {
                Ok(record) => record,
                // Past the head the file may have been cut and written
                // again under the reader: `release` finds out and re-reads.
                Err(_) if durable.is_some() => break,
                Err(e) => return Err(e.into()),
            };
            let seen = self.held.back().map_or(self.last_seq, |h| h.link.seq);
            if record.seq <= seen {
                continue;
            }
            if durable.is_some() {
                self.held.push_back(Held::new(&line)?);
                continue;
            }
            self.last_seq = record.seq;
            show(printer, filter, line.bytes, &record)?;
        }
        Ok(())
    }

    /// Shows the held records the durable head has reached. Returns false
    /// if they are not the records it made durable (their chain or the
    /// head's hash disagree), showing none of them.
    fn release(
        &mut self,
        durable: Option<&Head>,
        filter: &Filter,
        printer: &mut Printer,
    ) -> anyhow::Result<bool> {
        let Some(head) = durable else {
            return Ok(true);
        };
        let ready = self
            .held
            .iter()
            .take_while(|h| h.link.seq <= head.seq)
            .count();
        if ready == 0 {
            return Ok(head.seq <= self.last_seq);
        }
        let mut last_hash = self.last_hash.as_deref();
        for held in self.held.iter().take(ready) {
            if last_hash.is_some_and(|hash| hash != held.link.prev_hash) {
                return Ok(false);
            }
            last_hash = Some(&held.link.hash);
        }
        let newest = &self.held[ready - 1].link;
        if newest.seq != head.seq || newest.hash != head.hash {
            return Ok(false);
        }
        for held in self.held.drain(..ready) {
            let record = RecordView::parse(&held.bytes).context("re-reading a record")?;
            show(printer, filter, &held.bytes, &record)?;
            self.last_seq = held.link.seq;
            self.last_hash = Some(held.link.hash);
        }
        Ok(true)
    }
}

/// Learns a record's room title, and prints it if `filter` keeps it.
fn show(
    printer: &mut Printer,
    filter: &Filter,
    line: &[u8],
    record: &RecordView<'_>,
) -> anyhow::Result<()> {
    let Some(titles) = &mut printer.titles else {
        if filter.matches(record) {
            printer.print(line, record, None)?;
        }
        return Ok(());
    };
    if let Some(title) = &record.room_title {
        titles.learn(&record.room_id, title);
    }
    if filter.matches(record) {
        let title = match &record.room_title {
            Some(_) => None,
            None => titles.title(&record.room_id)?.map(str::to_string),
        };
        printer.print(line, record, title.as_deref())?;
    }
    Ok(())
}

/// Writes records as readable lines, as they are in the log, or in a
/// SIEM schema.
struct Printer {
    out: BufWriter<io::Stdout>,
    format: Format,
    /// The room titles as of the last record shown; none for the log's
    /// own lines.
    titles: Option<TitleFallback>,
    /// The seq and event of the record shown last, to tell whether a
    /// receiver start right after it followed a clean stop.
    previous: Option<(u64, Event)>,
    /// A record in a SIEM schema, reused.
    line: Vec<u8>,
}

impl Printer {
    fn print_all(&mut self, shown: &[Shown]) -> anyhow::Result<()> {
        for shown in shown {
            let record = RecordView::parse(&shown.line).context("re-reading a record")?;
            self.print(&shown.line, &record, shown.title.as_deref())?;
        }
        self.flush()
    }

    /// Prints a record; `title` is the room's title when the record has
    /// none of its own.
    fn print(
        &mut self,
        line: &[u8],
        record: &RecordView<'_>,
        title: Option<&str>,
    ) -> anyhow::Result<()> {
        let title = record.room_title.as_deref().or(title);
        match self.format {
            Format::Text => {
                let room = title.unwrap_or(&record.room_id);
                let before = self
                    .previous
                    .filter(|(seq, _)| seq + 1 == record.seq)
                    .map(|(_, event)| event);
                writeln!(self.out, "{}", readable(record, room, before))?;
            }
            Format::Jsonl => {
                self.out.write_all(line)?;
                self.out.write_all(b"\n")?;
            }
            Format::Ocsf | Format::Ecs => {
                let schema = match self.format {
                    Format::Ocsf => Schema::Ocsf,
                    _ => Schema::Ecs,
                };
                self.line.clear();
                schema.write(record, title, &mut self.line)?;
                self.out.write_all(&self.line)?;
            }
        }
        self.previous = Some((record.seq, record.event));
        Ok(())
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        self.out.flush().context("writing to stdout")
    }
}
