//! `rollcall history --person EMAIL|ID`: every stay of a person in every
//! room, from the index caught up with the log, each with the seqs of the
//! records that began and ended it (of several receivers, `a:12`: seq 12
//! of receiver a); the coverage gaps the range overlaps are warnings
//! (stderr for a table or CSV, inside the JSON for JSON).

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::Context;
use serde::Serialize;

use super::args::RemoteArgs;
use super::args::{ListFormat, parse_time_arg};
use super::index::{current, export_hint};
use super::table::{write_csv, write_table};
use super::tail::clean;
use crate::cli::Global;
use crate::clock::SystemClock;
use crate::index::Kind;
use crate::index::query::{Stay, qualified};

const COLUMNS: [&str; 12] = [
    "room_id",
    "room_title",
    "person_email",
    "person_display_name",
    "joined_at",
    "joined_seq",
    "join_source",
    "left_at",
    "left_seq",
    "leave_source",
    "left_not_before",
    "moderator",
];

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The person: an email (any case) or a person id.
    #[arg(long, value_name = "EMAIL|ID", env = "ROLLCALL_PERSON")]
    pub person: String,
    /// Only stays that lasted until T or later (YYYY-MM-DD or RFC 3339).
    #[arg(long, value_name = "T", env = "ROLLCALL_FROM", value_parser = parse_time_arg)]
    pub from: Option<String>,
    /// Only stays that began before T (YYYY-MM-DD or RFC 3339).
    #[arg(long, value_name = "T", env = "ROLLCALL_TO", value_parser = parse_time_arg)]
    pub to: Option<String>,
    /// Aligned columns, CSV, or JSON (with the warnings inside).
    #[arg(long, value_enum, default_value = "table", env = "ROLLCALL_FORMAT")]
    pub format: ListFormat,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// The JSON answer.
#[derive(Debug, Serialize)]
struct History<'a> {
    person: &'a str,
    from: Option<&'a str>,
    to: Option<&'a str>,
    warnings: Vec<String>,
    stays: Vec<Stay>,
}

pub fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let reading = args.remote.read(global)?;
    let index = current(&reading.receivers, &reading.home, &SystemClock)?;
    let every = match index.kind() {
        Kind::Single => "",
        Kind::Merged => " (every receiver was down)",
    };
    let (from, to) = (args.from.as_deref(), args.to.as_deref());
    let stays = index.history(&args.person, from, to)?;
    let warnings: Vec<String> = index
        .gaps_between(from.unwrap_or(""), to.unwrap_or("~"))?
        .iter()
        .map(|gap| {
            format!(
                "the log has a coverage gap from {} to {}{every}{}: a join or leave then may be missing or known only later",
                gap.from,
                gap.to.as_deref().unwrap_or("now"),
                if gap.after_crash { " (the receiver had crashed)" } else { "" }
            )
        })
        .collect();
    let mut out = io::stdout().lock();
    if args.format == ListFormat::Json {
        let answer = History {
            person: &args.person,
            from,
            to,
            warnings,
            stays,
        };
        writeln!(out, "{}", serde_json::to_string_pretty(&answer)?).context("writing to stdout")?;
    } else {
        for warning in &warnings {
            eprintln!("warning: {}", clean(warning));
        }
        if let Some(hint) = export_hint(&index) {
            eprintln!("note: {hint}");
        }
        if stays.is_empty() {
            eprintln!(
                "the log has no stay of {} in any room{}",
                clean(&args.person),
                if from.is_some() || to.is_some() {
                    " in that time"
                } else {
                    ""
                }
            );
        }
        let rows: Vec<Vec<String>> = stays.iter().map(row).collect();
        match args.format {
            ListFormat::Csv => write_csv(&mut out, &COLUMNS, &rows)?,
            _ => write_table(&mut out, &COLUMNS, &rows)?,
        }
    }
    out.flush().context("writing to stdout")?;
    Ok(ExitCode::SUCCESS)
}

fn row(s: &Stay) -> Vec<String> {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let seq = |receiver: &Option<String>, v: Option<u64>| {
        v.map(|n| qualified(receiver.as_deref(), n))
            .unwrap_or_default()
    };
    vec![
        s.room_id.clone(),
        text(&s.room_title),
        text(&s.person_email),
        text(&s.person_display_name),
        text(&s.joined_at),
        seq(&s.joined_receiver, s.joined_seq),
        text(&s.join_source),
        text(&s.left_at),
        seq(&s.left_receiver, s.left_seq),
        text(&s.leave_source),
        text(&s.left_not_before),
        s.is_moderator.map(|m| m.to_string()).unwrap_or_default(),
    ]
}
