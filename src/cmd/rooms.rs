//! `rollcall rooms`: every room the log knows, with its latest title, how
//! many are in it as the log leaves it, its first and last record, and
//! since when a reconciled baseline covers it: the index's `rooms` view,
//! caught up with the log first (of several receivers, their logs read as
//! one).

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::Context;
use serde::Serialize;

use super::args::ListFormat;
use super::args::RemoteArgs;
use super::index::current;
use super::table::{write_csv, write_table};
use crate::cli::Global;
use crate::clock::SystemClock;
use crate::reconcile::pending;

const COLUMNS: [&str; 6] = [
    "room_id",
    "title",
    "members_now",
    "first_record",
    "last_record",
    "baseline",
];

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Aligned columns, CSV, or JSON.
    #[arg(long, value_enum, default_value = "table", env = "ROLLCALL_FORMAT")]
    pub format: ListFormat,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// One room, as listed.
#[derive(Debug, Serialize)]
struct Listed<'h> {
    room_id: &'h str,
    title: Option<&'h str>,
    members_now: u64,
    first_record: &'h str,
    last_record: &'h str,
    /// The first reconciled record; `None`: no baseline yet.
    baseline: Option<&'h str>,
}

pub fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let reading = args.remote.read(global)?;
    let index = current(&reading.receivers, &reading.home, &SystemClock)?;
    let all = index.rooms()?;
    let rooms: Vec<Listed<'_>> = all
        .iter()
        .map(|room| Listed {
            room_id: &room.room_id,
            title: room.title.as_deref(),
            members_now: room.members_now,
            first_record: &room.first_record_at,
            last_record: &room.last_record_at,
            baseline: room.baseline_at.as_deref(),
        })
        .collect();
    let mut out = io::stdout().lock();
    if args.format == ListFormat::Json {
        writeln!(out, "{}", serde_json::to_string_pretty(&rooms)?).context("writing to stdout")?;
    } else {
        let rows: Vec<Vec<String>> = rooms
            .iter()
            .map(|r| {
                vec![
                    r.room_id.to_string(),
                    r.title.unwrap_or("").to_string(),
                    r.members_now.to_string(),
                    r.first_record.to_string(),
                    r.last_record.to_string(),
                    r.baseline.unwrap_or("none").to_string(),
                ]
            })
            .collect();
        match args.format {
            ListFormat::Csv => write_csv(&mut out, &COLUMNS, &rows)?,
            _ => write_table(&mut out, &COLUMNS, &rows)?,
        }
    }
    // A table is read by people, who should see the log is incomplete
    // there; CSV and JSON stay parseable, so the lines go to stderr.
    let receivers = &reading.receivers;
    for receiver in receivers.all() {
        // Of several receivers, each names whose gap it is.
        let whose = match receivers.single() {
            Some(_) => String::new(),
            None => format!("receiver {}: ", receiver.name),
        };
        for gap in &pending::read(&receiver.dir)? {
            if args.format == ListFormat::Table {
                writeln!(out, "{whose}{gap}").context("writing to stdout")?;
            } else {
                eprintln!("rollcall: {whose}{gap}");
            }
        }
    }
    out.flush().context("writing to stdout")?;
    Ok(ExitCode::SUCCESS)
}
