//! `rollcall export`: the records, filtered, as CSV for spreadsheets or as
//! the log's own JSON lines, streamed in seq order over live and archived
//! days.

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::cli::Global;
use crate::log::days::{self, Day};
use crate::log::files;
use crate::log::reader::{self, Block, Filter, ReadError, RecordView, RoomTitles};
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
    /// CSV with the fixed compliance header, or the log's own JSON lines.
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
    days::ensure_log_dir(&global.dir)?;
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
    let folder = match path.parent() {
        Some(folder) if !folder.as_os_str().is_empty() => folder,
        _ => Path::new("."),
    };
    let file = files::create_new(&temp).with_context(|| {
        format!(
            "cannot write {}: does {} exist and is it writable?",
            path.display(),
            folder.display()
        )
    })?;
    let written = export(dir, filter, args, &file)
        .and_then(|()| file.sync_all().context("syncing the export"))
        .and_then(|()| {
            std::fs::rename(&temp, path)
                .with_context(|| format!("renaming {} to {}", temp.display(), path.display()))
        })
        .and_then(|()| {
            files::sync_dir(folder).with_context(|| format!("syncing {}", folder.display()))
        });
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

/// Streams the matching records to `out`.
pub fn export(dir: &Path, filter: &Filter, args: &Args, mut out: impl Write) -> anyhow::Result<()> {
    let all = reader::days(dir)?;
    let titles = match args.format {
        Format::Csv => RoomTitles::scan(&all)?,
        Format::Jsonl => RoomTitles::default(),
    };
    let days: Vec<Day> = all
        .into_iter()
        .filter(|d| filter.may_hold(d.date))
        .collect();
    let job = Job {
        filter,
        format: args.format,
        titles: &titles,
        guard: !args.raw,
    };
    if job.format == Format::Csv {
        let header = CSV_HEADER.join(",") + "\n";
        out.write_all(header.as_bytes())
            .context("writing the export")?;
    }
    let mut progress = Progress::new();
    reader::in_log_order(
        &days,
        Rows::default,
        |block, rows| rows.fill(block, &job),
        |place, rows| {
            // What came before a bad line is written, as it would be
            // record by record.
            out.write_all(&rows.out).context("writing the export")?;
            if let Some((line, reason)) = rows.bad.take() {
                return Err(ReadError::NotARecord {
                    path: place.day.path().to_path_buf(),
                    line: place.lines_before + line,
                    reason,
                }
                .into());
            }
            progress.tick(place.day, rows.records);
            Ok::<_, anyhow::Error>(())
        },
    )?;
    out.flush().context("writing the export")?;
    progress.done();
    Ok(())
}

/// What every block of an export is turned into its output by.
struct Job<'a> {
    filter: &'a Filter,
    format: Format,
    titles: &'a RoomTitles,
    guard: bool,
}

/// One block's output, built on a worker thread and written in log order.
#[derive(Default)]
struct Rows {
    out: Vec<u8>,
    records: u64,
    /// The block's first line that is not a record (1-based within the
    /// block), and why; the block's output stops before it.
    bad: Option<(u64, String)>,
    scratch: String,
}

impl Rows {
    /// Formats the records of `block` that the filter keeps; returns the
    /// number of lines gone through.
    fn fill(&mut self, block: &Block, job: &Job<'_>) -> u64 {
        let Rows {
            out,
            records,
            bad,
            scratch,
        } = self;
        out.clear();
        *records = 0;
        *bad = None;
        let mut lines = 0;
        for (line, whole) in block.lines() {
            lines += 1;
            if !whole {
                // Being written right now, or torn by a crash: either way
                // not a record (yet); `verify` reports the torn kind.
                continue;
            }
            let record = match RecordView::parse_reusing(line, scratch) {
                Ok(record) => record,
                Err(e) => {
                    *bad = Some((lines, e.to_string()));
                    break;
                }
            };
            if !job.filter.matches(&record) {
                continue;
            }
            *records += 1;
            match job.format {
                Format::Csv => {
                    let title = record
                        .room_title
                        .as_deref()
                        .or_else(|| job.titles.get(&record.room_id));
                    csv_row(out, &record, title, job.guard);
                }
                Format::Jsonl => {
                    out.extend_from_slice(line);
                    out.push(b'\n');
                }
            }
        }
        lines
    }
}

/// A CSV row in the header's column order, quoted as RFC 4180 says (and
/// as the csv crate does: only cells holding `,` `"` CR or LF), written
/// straight into `out`.
fn csv_row(out: &mut Vec<u8>, r: &RecordView<'_>, room_title: Option<&str>, guard: bool) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut seq = r.seq;
    loop {
        at -= 1;
        digits[at] = b'0' + (seq % 10) as u8;
        seq /= 10;
        if seq == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
    out.push(b',');
    cell(out, &r.received_at, false);
    out.push(b',');
    out.extend_from_slice(r.event.as_str().as_bytes());
    for text in [Some(&*r.room_id), room_title, Some(&*r.person_id)] {
        out.push(b',');
        cell(out, text.unwrap_or(""), guard);
    }
    for text in [&r.person_email, &r.person_display_name] {
        out.push(b',');
        cell(out, text.as_deref().unwrap_or(""), guard);
    }
    for flag in [r.is_moderator, r.is_monitor] {
        out.push(b',');
        out.extend_from_slice(match flag {
            Some(true) => b"true",
            Some(false) => b"false",
            None => b"",
        });
    }
    out.push(b',');
    cell(out, &r.membership_id, guard);
    for text in [
        &r.membership_created,
        &r.actor_id,
        &r.org_id,
        &r.webhook_id,
        &r.webhook_name,
    ] {
        out.push(b',');
        cell(out, text.as_deref().unwrap_or(""), guard);
    }
    out.push(b',');
    cell(out, &r.target, guard);
    out.push(b'\n');
}

/// One cell; with `guard`, a text cell gets a leading `'` if it
/// [`needs_guard`].
fn cell(out: &mut Vec<u8>, value: &str, guard: bool) {
    let guarded = guard && needs_guard(value);
    let bytes = value.as_bytes();
    // No early exit, so the compiler can check many bytes at once.
    let quoted = bytes.iter().fold(false, |any, &b| {
        any | matches!(b, b',' | b'"' | b'\r' | b'\n')
    });
    if quoted {
        out.push(b'"');
    }
    if guarded {
        out.push(b'\'');
    }
    if quoted {
        for (i, part) in bytes.split(|&b| b == b'"').enumerate() {
            if i > 0 {
                out.extend_from_slice(b"\"\"");
            }
            out.extend_from_slice(part);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(bytes);
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

    fn tick(&mut self, day: &Day, records: u64) {
        self.records += records;
        if !self.enabled {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// What the csv crate writes for a cell.
    fn csv_crate(value: &str) -> Vec<u8> {
        let mut csv = csv::Writer::from_writer(Vec::new());
        csv.write_record([value, ""]).unwrap();
        let mut out = csv.into_inner().unwrap();
        out.truncate(out.len() - 2);
        out
    }

    proptest::proptest! {
        #[test]
        fn cells_are_quoted_exactly_as_the_csv_crate_quotes_them(
            value in "([a-z ,\"'=+@\\-\t\r\n]|é){0,10}",
        ) {
            let mut out = Vec::new();
            cell(&mut out, &value, false);
            proptest::prop_assert_eq!(&out, &csv_crate(&value));
            let guarded = if needs_guard(&value) { format!("'{value}") } else { value.clone() };
            out.clear();
            cell(&mut out, &value, true);
            proptest::prop_assert_eq!(&out, &csv_crate(&guarded));
        }
    }
}
