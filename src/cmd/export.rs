//! `rollcall export`: the records, filtered, as CSV for spreadsheets or as
//! the log's own JSON lines, streamed in seq order over live and archived
//! days.

use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::cli::Global;
use crate::log::days::{self, Day};
use crate::log::files;
use crate::log::reader::{self, DayReader, Filter, RecordView, RoomTitles};
use crate::log::record::Event;

/// The CSV header: the contract compliance tooling relies on.
pub const CSV_HEADER: [&str; 17] = [
    "seq",
    "received_at",
    "event",
    "room_id",
    "room_title",
    "person_id",
    "person_email",
    "person_display_name",
    "is_moderator",
    "is_monitor",
    "membership_id",
    "membership_created",
    "actor_id",
    "org_id",
    "webhook_id",
    "webhook_name",
    "target",
];

/// The record filters `export` and `tail` share.
#[derive(Debug, Clone, clap::Args)]
pub struct FilterArgs {
    /// Only records received at or after T (YYYY-MM-DD or RFC 3339).
    #[arg(long, value_name = "T", env = "ROLLCALL_FROM", value_parser = parse_time)]
    pub from: Option<String>,
    /// Only records received before T (YYYY-MM-DD or RFC 3339).
    #[arg(long, value_name = "T", env = "ROLLCALL_TO", value_parser = parse_time)]
    pub to: Option<String>,
    /// Only records of this room id.
    #[arg(long, value_name = "ID", env = "ROLLCALL_ROOM")]
    pub room: Option<String>,
    /// Only records of this person (email, any case).
    #[arg(long, value_name = "EMAIL", env = "ROLLCALL_PERSON")]
    pub person: Option<String>,
    /// Only joins or only leaves.
    #[arg(long, value_enum, env = "ROLLCALL_EVENT")]
    pub event: Option<EventArg>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum EventArg {
    Joined,
    Left,
}

fn parse_time(text: &str) -> Result<String, reader::FilterError> {
    reader::parse_time(text)
}

impl FilterArgs {
    pub fn filter(self) -> anyhow::Result<Filter> {
        let filter = Filter {
            from: self.from,
            to: self.to,
            room: self.room,
            person: self.person,
            event: self.event.map(|e| match e {
                EventArg::Joined => Event::Joined,
                EventArg::Left => Event::Left,
            }),
        };
        filter.validate()?;
        Ok(filter)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Csv,
    Jsonl,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub filter: FilterArgs,
    /// CSV (the contract's header) or the log's own JSON lines.
    #[arg(long, value_enum, default_value = "csv", env = "ROLLCALL_FORMAT")]
    pub format: Format,
    /// Write to FILE (complete or not at all) instead of stdout.
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FILE",
        env = "ROLLCALL_OUTPUT"
    )]
    pub output: Option<PathBuf>,
    /// Leave cells starting with = + - @ tab or CR as they are, without the
    /// leading ' that stops spreadsheets running them as formulas.
    #[arg(long, env = "ROLLCALL_RAW")]
    pub raw: bool,
}

pub fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let filter = args.filter.clone().filter()?;
    match &args.output {
        None => {
            let stdout = io::stdout().lock();
            export(&global.dir, &filter, &args, stdout)?;
        }
        Some(path) => export_to_file(&global.dir, &filter, &args, path)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes under a temporary name beside `path` and renames it into place
/// only once complete and synced, so a half-written export never looks
/// like a finished one.
fn export_to_file(dir: &Path, filter: &Filter, args: &Args, path: &Path) -> anyhow::Result<()> {
    let name = path
        .file_name()
        .with_context(|| format!("{} is not a file name", path.display()))?;
    let temp = path.with_file_name(format!(
        ".{}.{}.partial",
        name.to_string_lossy(),
        std::process::id()
    ));
    let file = files::create_new(&temp).with_context(|| format!("creating {}", temp.display()))?;
    let written = export(dir, filter, args, &file)
        .and_then(|()| file.sync_all().context("syncing the export"))
        .and_then(|()| {
            std::fs::rename(&temp, path)
                .with_context(|| format!("renaming {} to {}", temp.display(), path.display()))
        });
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

/// Streams the matching records to `out`.
pub fn export(dir: &Path, filter: &Filter, args: &Args, out: impl Write) -> anyhow::Result<()> {
    let days = reader::days(dir, &Filter::default())?;
    let mut progress = Progress::new();
    match args.format {
        Format::Csv => {
            let titles = RoomTitles::scan(&days)?;
            let mut csv = CsvOut::new(out, !args.raw);
            csv.header()?;
            each_record(&days, filter, &mut progress, |_, record| {
                let title = record
                    .room_title
                    .as_deref()
                    .or_else(|| titles.get(&record.room_id));
                csv.record(record, title)
            })?;
            csv.finish()?;
        }
        Format::Jsonl => {
            let mut out = BufWriter::with_capacity(1 << 16, out);
            each_record(&days, filter, &mut progress, |line, _| {
                out.write_all(line)?;
                out.write_all(b"\n")
            })?;
            out.flush().context("writing the export")?;
        }
    }
    progress.done();
    Ok(())
}

/// Calls `write` with each whole line of `days` that `filter` keeps, and
/// its record, in log order.
fn each_record(
    days: &[Day],
    filter: &Filter,
    progress: &mut Progress,
    mut write: impl FnMut(&[u8], &RecordView<'_>) -> io::Result<()>,
) -> anyhow::Result<()> {
    for day in days.iter().filter(|d| filter.may_hold(d.date)) {
        let mut lines = DayReader::open(day)?;
        while let Some(line) = lines.next_line()? {
            if !line.whole {
                // Being written right now, or torn by a crash: either way
                // not a record (yet); `verify` reports the torn kind.
                continue;
            }
            let record = line.record()?;
            if filter.matches(&record) {
                write(line.bytes, &record).context("writing the export")?;
                progress.tick(day);
            }
        }
    }
    Ok(())
}

/// CSV rows in the contract's column order.
struct CsvOut<W: Write> {
    csv: csv::Writer<W>,
    guard: bool,
    cell: Vec<u8>,
    number: String,
}

impl<W: Write> CsvOut<W> {
    fn new(out: W, guard: bool) -> Self {
        Self {
            csv: csv::WriterBuilder::new()
                .buffer_capacity(1 << 16)
                .from_writer(out),
            guard,
            cell: Vec::new(),
            number: String::new(),
        }
    }

    fn header(&mut self) -> io::Result<()> {
        self.csv.write_record(CSV_HEADER)?;
        Ok(())
    }

    fn record(&mut self, r: &RecordView<'_>, room_title: Option<&str>) -> io::Result<()> {
        use std::fmt::Write as _;
        self.number.clear();
        let _ = write!(self.number, "{}", r.seq);
        self.csv.write_field(&self.number)?;
        self.csv.write_field(&*r.received_at)?;
        self.csv.write_field(r.event.as_str())?;
        self.text(Some(&r.room_id))?;
        self.text(room_title)?;
        self.text(Some(&r.person_id))?;
        self.text(r.person_email.as_deref())?;
        self.text(r.person_display_name.as_deref())?;
        self.flag(r.is_moderator)?;
        self.flag(r.is_monitor)?;
        self.text(Some(&r.membership_id))?;
        self.text(r.membership_created.as_deref())?;
        self.text(r.actor_id.as_deref())?;
        self.text(r.org_id.as_deref())?;
        self.text(r.webhook_id.as_deref())?;
        self.text(r.webhook_name.as_deref())?;
        self.text(Some(&r.target))?;
        self.csv.write_record(None::<&[u8]>)?;
        Ok(())
    }

    /// A text cell; see [`needs_guard`].
    fn text(&mut self, value: Option<&str>) -> io::Result<()> {
        let value = value.unwrap_or("");
        if self.guard && needs_guard(value) {
            self.cell.clear();
            self.cell.push(b'\'');
            self.cell.extend_from_slice(value.as_bytes());
            self.csv.write_field(&self.cell)?;
        } else {
            self.csv.write_field(value)?;
        }
        Ok(())
    }

    fn flag(&mut self, value: Option<bool>) -> io::Result<()> {
        self.csv.write_field(match value {
            Some(true) => "true",
            Some(false) => "false",
            None => "",
        })?;
        Ok(())
    }

    fn finish(mut self) -> anyhow::Result<()> {
        self.csv.flush().context("writing the export")
    }
}

/// Spreadsheets run a cell starting with one of these as a formula, so a
/// display name like `=HYPERLINK(...)` could act when the export is opened.
pub fn needs_guard(cell: &str) -> bool {
    matches!(
        cell.as_bytes().first(),
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r')
    )
}

/// A progress line on stderr for exports long enough to wonder about,
/// when someone is watching it.
struct Progress {
    enabled: bool,
    started: Instant,
    last: Instant,
    records: u64,
    shown: bool,
}

impl Progress {
    const FIRST_AFTER: Duration = Duration::from_secs(1);
    const EVERY: Duration = Duration::from_millis(250);

    fn new() -> Self {
        let now = Instant::now();
        Self {
            enabled: io::stderr().is_terminal(),
            started: now,
            last: now,
            records: 0,
            shown: false,
        }
    }

    fn tick(&mut self, day: &Day) {
        self.records += 1;
        if !self.enabled || !self.records.is_multiple_of(4096) {
            return;
        }
        let now = Instant::now();
        if now - self.started < Self::FIRST_AFTER || now - self.last < Self::EVERY {
            return;
        }
        self.last = now;
        self.shown = true;
        eprint!(
            "\rexporting: {} records, at {} ",
            self.records,
            days::day_name(day.date)
        );
    }

    fn done(&self) {
        if self.shown {
            eprintln!("\rexported {} records{:20}", self.records, "");
        }
    }
}
