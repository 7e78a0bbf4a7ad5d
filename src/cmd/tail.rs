//! `rollcall tail`: the latest records as readable lines (or JSON lines:
//! the log's own, OCSF or ECS), and with `-f` the new ones as they are
//! written, across the midnight rollover and archival, until interrupted
//! (not of receivers read from the bucket, `--remote`, which are no live
//! logs).

use std::collections::VecDeque;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::mpsc::UnboundedReceiver;

mod cursor;
mod merged;
mod readable;

pub(super) use readable::clean;
pub use readable::readable;

use super::args::{FilterArgs, RemoteArgs};
use crate::cli::Global;
use crate::export::{Schema, with_receivers};
use crate::log::days::Day;
use crate::log::merge::Receivers as Had;
use crate::log::reader::{
    self, DayReader, Filter, ReadError, RecordView, TitleFallback, titled_lines,
};
use crate::log::record::Event;
use cursor::{Cursor, Held, Link, durable_head};

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
    #[command(flatten)]
    pub remote: RemoteArgs,
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
    // A mirror holds what was archived and shipped: nothing is written
    // to it as it happens.
    anyhow::ensure!(
        !args.follow || args.remote.remotes.is_empty(),
        "tail -f follows live logs, and a receiver read with --remote is a mirror of its archives in the bucket, not live: drop -f to see its latest archived records, or follow that receiver's own --dir where it runs"
    );
    let filter = args.filter.clone().filter()?;
    let receivers = args.remote.read(global)?.receivers;
    let printer = Printer {
        out: BufWriter::new(io::stdout()),
        format: if args.json {
            Format::Jsonl
        } else {
            args.format
        },
        titles: None,
        previous: vec![None; receivers.len()],
        names: receivers.names().iter().map(|n| n.to_string()).collect(),
        line: Vec::new(),
    };
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the runtime")
    };
    match receivers.single() {
        Some(one) => {
            let mut printer = printer;
            if !args.follow {
                let (latest, _) = latest(&one.dir, &filter, args.lines, &mut printer)?;
                printer.print_all(&latest)?;
            } else {
                runtime()?.block_on(follow(&one.dir, &filter, args.lines, printer))?;
            }
        }
        None if !args.follow => {
            let mut printer = printer;
            let (latest, _, _) = merged::latest(&receivers, &filter, args.lines, &mut printer)?;
            printer.print_all(&latest)?;
        }
        None => runtime()?.block_on(merged::follow(&receivers, &filter, args.lines, printer))?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the latest records, then every new one, until SIGINT or SIGTERM.
async fn follow(
    dir: &Path,
    filter: &Filter,
    lines: usize,
    mut printer: Printer,
) -> anyhow::Result<()> {
    let mut watch = Watch::start(&[dir.to_path_buf()])?;
    let (latest, mut cursor) = latest(dir, filter, lines, &mut printer)?;
    printer.print_all(&latest)?;
    loop {
        cursor.catch_up(dir, &mut |line, record| {
            show(&mut printer, filter, line, record, None)
        })?;
        printer.flush()?;
        if !watch.changed().await? {
            return Ok(());
        }
    }
}

/// What `-f` waits on: a change in a log directory, SIGINT or SIGTERM.
/// Set up before the log is first read, so nothing written meanwhile is
/// missed and an early Ctrl-C still counts as a clean stop.
struct Watch {
    interrupt: Signal,
    terminate: Signal,
    changes: UnboundedReceiver<()>,
    _watcher: RecommendedWatcher,
}

impl Watch {
    fn start(dirs: &[PathBuf]) -> anyhow::Result<Watch> {
        let interrupt = signal(SignalKind::interrupt()).context("handling SIGINT")?;
        let terminate = signal(SignalKind::terminate()).context("handling SIGTERM")?;
        let (changed, changes) = tokio::sync::mpsc::unbounded_channel();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if let Err(error) = &event {
                    tracing::warn!(%error, "watching the log directory");
                }
                let _ = changed.send(());
            })
            .context("watching the log directory")?;
        for dir in dirs {
            watcher
                .watch(dir, RecursiveMode::NonRecursive)
                .with_context(|| format!("watching {}", dir.display()))?;
        }
        Ok(Watch {
            interrupt,
            terminate,
            changes,
            _watcher: watcher,
        })
    }

    /// Waits for a change (true), or for SIGINT or SIGTERM (false).
    async fn changed(&mut self) -> anyhow::Result<bool> {
        tokio::select! {
            _ = self.interrupt.recv() => Ok(false),
            _ = self.terminate.recv() => Ok(false),
            woken = self.changes.recv() => {
                anyhow::ensure!(woken.is_some(), "the watch on the log directory stopped");
                while self.changes.try_recv().is_ok() {}
                Ok(true)
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
    /// In a merged read, whose copy it is and who had it.
    had: Option<(usize, Had)>,
}

impl Shown {
    fn new(line: &[u8], record: &RecordView<'_>) -> Self {
        Self {
            line: line.to_vec(),
            seq: record.seq,
            room: record.room_id.to_string(),
            title: record.room_title.as_ref().map(|t| t.to_string()),
            had: None,
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

/// Learns a record's room title, and prints it if `filter` keeps it;
/// `had` as for [`Printer::print`].
fn show(
    printer: &mut Printer,
    filter: &Filter,
    line: &[u8],
    record: &RecordView<'_>,
    had: Option<(usize, Had)>,
) -> anyhow::Result<()> {
    let Some(titles) = &mut printer.titles else {
        if filter.matches(record) {
            printer.print(line, record, None, had)?;
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
        printer.print(line, record, title.as_deref(), had)?;
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
    /// Each receiver's record shown last (its seq and event), to tell
    /// whether a receiver start right after it followed a clean stop.
    previous: Vec<Option<(u64, Event)>>,
    /// The receivers' names, for the lines of a merged read.
    names: Vec<String>,
    /// A record in a SIEM schema, or with its receivers, reused.
    line: Vec<u8>,
}

impl Printer {
    fn print_all(&mut self, shown: &[Shown]) -> anyhow::Result<()> {
        for shown in shown {
            let record = RecordView::parse(&shown.line).context("re-reading a record")?;
            self.print(&shown.line, &record, shown.title.as_deref(), shown.had)?;
        }
        self.flush()
    }

    /// Prints a record; `title` is the room's title when the record has
    /// none of its own. `had`, in a merged read: whose copy it is (which
    /// `previous` it follows) and the receivers known to have had it, which
    /// JSON lines list after the hash.
    fn print(
        &mut self,
        line: &[u8],
        record: &RecordView<'_>,
        title: Option<&str>,
        had: Option<(usize, Had)>,
    ) -> anyhow::Result<()> {
        let title = record.room_title.as_deref().or(title);
        let receiver = had.map_or(0, |(copy, _)| copy);
        match self.format {
            Format::Text => {
                let room = title.unwrap_or(&record.room_id);
                let before = self.previous[receiver]
                    .filter(|(seq, _)| seq + 1 == record.seq)
                    .map(|(_, event)| event);
                writeln!(self.out, "{}", readable(record, room, before))?;
            }
            Format::Jsonl => match had {
                Some((copy, receivers)) => {
                    self.line.clear();
                    with_receivers(line, copy, receivers, &self.names, &mut self.line);
                    self.line.push(b'\n');
                    self.out.write_all(&self.line)?;
                }
                None => {
                    self.out.write_all(line)?;
                    self.out.write_all(b"\n")?;
                }
            },
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
        self.previous[receiver] = Some((record.seq, record.event));
        Ok(())
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        self.out.flush().context("writing to stdout")
    }
}
