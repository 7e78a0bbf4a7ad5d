//! The export formats, for `rollcall export`, `tail` and the console's
//! download alike: CSV with the fixed compliance header (each cell
//! formula-guarded unless asked not to, a record without a title given
//! the room's title from before it), the log's own JSON lines, or a SIEM
//! schema's JSON lines ([`ocsf`], [`ecs`], what they share in [`siem`]),
//! titled as the CSV is. Records are formatted on every core a block at a
//! time, each block through its own writer, and written in log order.
//! Several receivers' logs are exported as one record ([`write_merged`]).

pub mod ecs;
mod merged;
pub mod ocsf;
pub mod siem;

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use time::Date;

use crate::log::days::Day;
use crate::log::merge::Receivers;
use crate::log::reader::{self, Block, Filter, ReadError, RecordView, SeqRange, TitleFallback};
pub use merged::{with_receivers, write as write_merged};
pub use siem::Schema;

/// The CSV header: the contract compliance tooling relies on.
pub const CSV_HEADER: [&str; 19] = [
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
    "source",
    "not_before",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// CSV with the fixed compliance header.
    Csv,
    /// The records exactly as stored.
    Jsonl,
    /// OCSF 1.5.0 events (Group Management), one a line.
    Ocsf,
    /// Elastic Common Schema documents, one a line.
    Ecs,
}

impl Format {
    /// The SIEM schema of the format, if it is one.
    pub fn schema(self) -> Option<Schema> {
        match self {
            Format::Ocsf => Some(Schema::Ocsf),
            Format::Ecs => Some(Schema::Ecs),
            Format::Csv | Format::Jsonl => None,
        }
    }
}

/// How the records are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    pub format: Format,
    /// A leading `'` on cells a spreadsheet would run as formulas.
    pub guard: bool,
}

/// Streams the records in `seqs` that `filter` keeps to `out`; `done`
/// hears of each block written (its day and records), for a progress
/// line.
pub fn write(
    dir: &Path,
    filter: &Filter,
    seqs: SeqRange,
    options: Options,
    mut out: impl Write,
    mut done: impl FnMut(Date, u64),
) -> anyhow::Result<()> {
    let all = reader::days(dir)?;
    let first = all
        .iter()
        .position(|d| filter.may_hold(d.date))
        .unwrap_or(all.len());
    let days: Vec<Day> = all[first..]
        .iter()
        .filter(|d| filter.may_hold(d.date))
        .cloned()
        .collect();
    // The days before the range are read only for the titles of rooms
    // that the range has a record of before their first title in it.
    let mut titles = (options.format != Format::Jsonl).then(|| TitleFallback::after(&all[..first]));
    let job = Job {
        filter,
        seqs,
        format: options.format,
        guard: options.guard,
        names: &[],
    };
    if job.format == Format::Csv {
        let mut header = csv::Writer::from_writer(&mut out);
        header
            .write_record(CSV_HEADER)
            .and_then(|()| Ok(header.flush()?))
            .context("writing the export")?;
    }
    let mut title_cell = TitleCell::new(job.format, job.guard);
    reader::in_log_order(
        &days,
        Rows::default,
        |block, rows| rows.fill(block, &job),
        |place, rows| {
            // What came before a bad line is written, as it would be
            // record by record.
            rows.write(&mut out, titles.as_mut(), &mut title_cell)?;
            if let Some((line, reason)) = rows.bad.take() {
                return Err(ReadError::NotARecord {
                    path: place.day.path().to_path_buf(),
                    line: place.lines_before + line,
                    reason,
                }
                .into());
            }
            done(place.day.date, rows.records);
            Ok::<_, anyhow::Error>(())
        },
    )?;
    out.flush().context("writing the export")?;
    Ok(())
}

/// What every block of an export is turned into its output by.
struct Job<'a> {
    filter: &'a Filter,
    seqs: SeqRange,
    format: Format,
    guard: bool,
    /// The receivers' names, for the lines of a merged read.
    names: &'a [&'a str],
}

/// One block's output, built on a worker thread and written in log order.
#[derive(Default)]
struct Rows {
    out: Vec<u8>,
    /// Rows with no title of their own nor one learned earlier in the
    /// block: where in `out` their empty title cell is, and where their
    /// room's id is in `untitled_rooms`. The title is filled in when the
    /// block is written, from the titles learned before it.
    untitled: Vec<(usize, std::ops::Range<usize>)>,
    untitled_rooms: String,
    /// The titles recorded in the block, in log order.
    titles: TitleFallback,
    records: u64,
    /// The block's first line that is not a record (1-based within the
    /// block), and why; the block's output stops before it.
    bad: Option<(u64, String)>,
    scratch: String,
    /// A cell with its formula guard.
    guarded: String,
}

impl Rows {
    /// Formats the records of `block` that the filter keeps; returns the
    /// number of lines gone through.
    fn fill(&mut self, block: &Block, job: &Job<'_>) -> u64 {
        self.fill_lines(block.lines().map(|(line, whole)| (line, whole, None)), job)
    }

    /// Formats the records of `input`'s lines (each with whether it is whole, and
    /// for a merged read whose copy it is and who had it) that the filter
    /// keeps; returns the number of lines gone through.
    fn fill_lines<'l>(
        &mut self,
        input: impl Iterator<Item = (&'l [u8], bool, Option<(usize, Receivers)>)>,
        job: &Job<'_>,
    ) -> u64 {
        self.out.clear();
        self.untitled.clear();
        self.untitled_rooms.clear();
        self.records = 0;
        self.bad = None;
        let mut out = match job.format.schema() {
            Some(schema) => Formatter::Schema(schema),
            None if job.format == Format::Csv => Formatter::Csv(Box::new(
                csv::Writer::from_writer(std::mem::take(&mut self.out)),
            )),
            None => Formatter::Lines,
        };
        let mut lines = 0;
        for (line, whole, had) in input {
            lines += 1;
            if !whole {
                // Being written right now, or torn by a crash: either way
                // not a record (yet); `verify` reports the torn kind.
                continue;
            }
            let record = match RecordView::parse_reusing(line, &mut self.scratch) {
                Ok(record) => record,
                Err(e) => {
                    self.bad = Some((lines, e.to_string()));
                    break;
                }
            };
            // The log's own lines need no titles: learning them would
            // only slow the plainest export down.
            if !matches!(out, Formatter::Lines)
                && let Some(title) = &record.room_title
            {
                self.titles.learn(&record.room_id, title);
            }
            if !(job.filter.matches(&record) && job.seqs.contains(record.seq)) {
                continue;
            }
            let title = || {
                record
                    .room_title
                    .as_deref()
                    .or_else(|| self.titles.learned(&record.room_id))
            };
            let untitled = match &mut out {
                Formatter::Lines => {
                    match had {
                        Some((copy, receivers)) => {
                            with_receivers(line, copy, receivers, job.names, &mut self.out)
                        }
                        None => self.out.extend_from_slice(line),
                    }
                    self.out.push(b'\n');
                    None
                }
                Formatter::Csv(csv) => Row {
                    record: &record,
                    title: title(),
                    guard: job.guard,
                }
                .write(csv, &mut self.guarded)
                .expect("a row written to memory cannot fail"),
                Formatter::Schema(schema) => match schema.write(&record, title(), &mut self.out) {
                    Ok(untitled) => untitled,
                    Err(e) => {
                        self.bad = Some((lines, e.to_string()));
                        break;
                    }
                },
            };
            if let Some(at) = untitled {
                let from = self.untitled_rooms.len();
                self.untitled_rooms.push_str(&record.room_id);
                self.untitled.push((at, from..self.untitled_rooms.len()));
            }
            self.records += 1;
        }
        if let Formatter::Csv(csv) = out {
            self.out = csv
                .into_inner()
                .map_err(|e| e.into_error())
                .expect("rows written to memory cannot fail to flush");
        }
        lines
    }

    /// Writes the block's output, filling in the titles its rows waited
    /// for, then learns the titles recorded in it.
    fn write(
        &mut self,
        out: &mut impl Write,
        titles: Option<&mut TitleFallback>,
        title_cell: &mut TitleCell,
    ) -> anyhow::Result<()> {
        let Some(titles) = titles else {
            return out.write_all(&self.out).context("writing the export");
        };
        let mut from = 0;
        for (at, room) in &self.untitled {
            out.write_all(&self.out[from..*at])
                .context("writing the export")?;
            if let Some(title) = titles.title(&self.untitled_rooms[room.clone()])? {
                out.write_all(title_cell.encode(title))
                    .context("writing the export")?;
            }
            from = *at;
        }
        out.write_all(&self.out[from..])
            .context("writing the export")?;
        titles.learn_from(&mut self.titles);
        Ok(())
    }
}

/// How a block's records become its output.
enum Formatter {
    /// As they are in the log.
    Lines,
    /// CSV rows, in a writer around the block's output (boxed: one
    /// allocation a block keeps the variants the same small size).
    Csv(Box<csv::Writer<Vec<u8>>>),
    /// A SIEM schema's lines, written straight into the block's output.
    Schema(Schema),
}

/// One record as a CSV row, in the header's column order.
struct Row<'r, 'a> {
    record: &'r RecordView<'a>,
    title: Option<&'r str>,
    guard: bool,
}

impl Row<'_, '_> {
    /// Writes the row. Without a title, returns where in the writer's
    /// output its (empty) title cell is, to be filled in later.
    fn write(
        &self,
        csv: &mut csv::Writer<Vec<u8>>,
        guarded: &mut String,
    ) -> csv::Result<Option<usize>> {
        let r = self.record;
        let mut text = |csv: &mut csv::Writer<Vec<u8>>, value: Option<&str>| {
            let value = value.unwrap_or("");
            csv.write_field(guard(value, self.guard, guarded))
        };
        csv.write_field(itoa::Buffer::new().format(r.seq))?;
        csv.write_field(&*r.received_at)?;
        csv.write_field(r.event.as_str())?;
        text(csv, Some(r.room_id.as_ref()))?;
        let untitled = match self.title {
            Some(title) => {
                text(csv, Some(title))?;
                None
            }
            None => {
                // The empty cell comes right after the comma that ends
                // the room id, once the buffered row is in the output.
                csv.flush()?;
                let at = csv.get_ref().len() + 1;
                csv.write_field("")?;
                Some(at)
            }
        };
        text(csv, Some(r.person_id.as_ref()))?;
        text(csv, r.person_email.as_deref())?;
        text(csv, r.person_display_name.as_deref())?;
        for flag in [r.is_moderator, r.is_monitor] {
            csv.write_field(match flag {
                Some(true) => "true",
                Some(false) => "false",
                None => "",
            })?;
        }
        text(csv, Some(r.membership_id.as_ref()))?;
        for value in [
            &r.membership_created,
            &r.actor_id,
            &r.org_id,
            &r.webhook_id,
            &r.webhook_name,
        ] {
            text(csv, value.as_deref())?;
        }
        text(csv, Some(r.target.as_ref()))?;
        text(csv, Some(r.source.as_str()))?;
        text(csv, r.not_before.as_deref())?;
        csv.write_record(None::<&[u8]>)?;
        Ok(untitled)
    }
}

/// A title cell written on its own, quoted as it would be in its row:
/// one writer for many cells, its output emptied now and then. For a SIEM
/// schema, the room's `name` member instead.
struct TitleCell {
    guard: bool,
    guarded: String,
    csv: csv::Writer<Vec<u8>>,
    json: Option<Vec<u8>>,
}

impl TitleCell {
    fn new(format: Format, guard: bool) -> Self {
        Self {
            guard,
            guarded: String::new(),
            csv: csv::Writer::from_writer(Vec::new()),
            json: format.schema().map(|_| Vec::new()),
        }
    }

    /// The cell's bytes; none for an empty title, as in a row.
    fn encode(&mut self, title: &str) -> &[u8] {
        if title.is_empty() {
            return &[];
        }
        if let Some(member) = &mut self.json {
            return siem::title_member(title, member);
        }
        let cell = guard(title, self.guard, &mut self.guarded);
        if self.csv.get_ref().len() > 1 << 16 {
            let mut emptied =
                std::mem::replace(&mut self.csv, csv::Writer::from_writer(Vec::new()))
                    .into_inner()
                    .map_err(|e| e.into_error())
                    .expect("cells written to memory cannot fail to flush");
            emptied.clear();
            self.csv = csv::Writer::from_writer(emptied);
        }
        let from = self.csv.get_ref().len();
        self.csv
            .write_record([cell])
            .and_then(|()| Ok(self.csv.flush()?))
            .expect("a cell written to memory cannot fail");
        let bytes = self.csv.get_ref();
        // Without the record's newline.
        &bytes[from..bytes.len() - 1]
    }
}

/// `value`, with a leading `'` if `guard` is on and it [`needs_guard`].
pub fn guard<'v>(value: &'v str, guard: bool, guarded: &'v mut String) -> &'v str {
    if guard && needs_guard(value) {
        guarded.clear();
        guarded.push('\'');
        guarded.push_str(value);
        guarded
    } else {
        value
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_title_cell_reads_as_in_a_row_however_many_came_before() {
        let titles = [
            "Design",
            "Q3, planning",
            "The \"A\" team",
            "=1+1",
            "line\nbreak",
        ];
        let mut cell = TitleCell::new(Format::Csv, true);
        // Enough cells to empty the writer's output several times.
        for n in 0..20_000 {
            let title = titles[n % titles.len()];
            let mut row = csv::Writer::from_writer(Vec::new());
            let mut guarded = String::new();
            row.write_record([guard(title, true, &mut guarded)])
                .unwrap();
            let row = row.into_inner().unwrap();
            assert_eq!(cell.encode(title), &row[..row.len() - 1], "{title}");
        }
        assert_eq!(cell.encode(""), b"");
    }
}
