//! `rollcall roster`: who was in a room at a time (default now), from the
//! index caught up with the log (see [`crate::index::query`]), with what
//! the log cannot know as warnings: on stderr for a table or CSV, inside
//! the JSON for JSON. Each member names the seqs it rests on; of several
//! receivers (`--dir` more than once), each seq with its receiver
//! (`a:12`), and a coverage gap is only where every receiver was down.

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::Context;

use super::args::RemoteArgs;
use super::args::{ListFormat, parse_time_arg};
use super::index::{current, export_hint};
use super::table::{write_csv, write_table};
use super::tail::clean;
use crate::cli::Global;
use crate::clock::{Clock, SystemClock};
use crate::index::query::{Roster, RosterMember, qualified};
use crate::log::record::format_timestamp;

const COLUMNS: [&str; 9] = [
    "person_id",
    "email",
    "name",
    "moderator",
    "since",
    "added_by",
    "source",
    "joined_seq",
    "last_seq",
];

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The room: its id, or a title the log has recorded for it (any
    /// case). Without it, every room the log knows, one after the other.
    #[arg(long, value_name = "ID|TITLE", env = "ROLLCALL_ROOM")]
    pub room: Option<String>,
    /// The time to show the roster at (YYYY-MM-DD or RFC 3339); now
    /// without it.
    #[arg(long, value_name = "T", env = "ROLLCALL_AT", value_parser = parse_time_arg)]
    pub at: Option<String>,
    /// Aligned columns, CSV, or JSON (with the warnings inside).
    #[arg(long, value_enum, default_value = "table", env = "ROLLCALL_FORMAT")]
    pub format: ListFormat,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

pub fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let reading = args.remote.read(global)?;
    let index = current(&reading.receivers, &reading.home, &SystemClock)?;
    let at = args
        .at
        .unwrap_or_else(|| format_timestamp(SystemClock.now()));
    let rosters: Vec<Roster> = match &args.room {
        Some(wanted) => vec![index.roster(&index.find_room(wanted)?, &at)?],
        None => index
            .rooms()?
            .iter()
            .map(|room| index.roster(room, &at))
            .collect::<Result<_, _>>()?,
    };
    if rosters.is_empty() {
        eprintln!("the log has no membership records yet: no rooms to show");
    }
    if args.format != ListFormat::Json
        && let Some(hint) = export_hint(&index)
    {
        eprintln!("note: {hint}");
    }
    let mut out = io::stdout().lock();
    let grouped = args.room.is_none();
    match args.format {
        ListFormat::Json => {
            let json = match rosters.as_slice() {
                [one] if !grouped => serde_json::to_string_pretty(one)?,
                all => serde_json::to_string_pretty(all)?,
            };
            writeln!(out, "{json}").context("writing to stdout")?;
        }
        ListFormat::Table => {
            for (i, roster) in rosters.iter().enumerate() {
                warn(roster);
                if i > 0 {
                    writeln!(out).context("writing to stdout")?;
                }
                let rows: Vec<_> = roster.members.iter().map(row).collect();
                writeln!(
                    out,
                    "{} at {}: {} members",
                    clean(&room_name(roster)),
                    roster.at,
                    rows.len()
                )
                .context("writing to stdout")?;
                write_table(&mut out, &COLUMNS, &rows)?;
            }
        }
        ListFormat::Csv => {
            let mut header = COLUMNS.to_vec();
            let mut rows = Vec::new();
            if grouped {
                header.splice(0..0, ["room_id", "room_title"]);
            }
            for roster in &rosters {
                warn(roster);
                for member in &roster.members {
                    let mut cells = row(member);
                    if grouped {
                        let room = [
                            roster.room_id.clone(),
                            roster.title.clone().unwrap_or_default(),
                        ];
                        cells.splice(0..0, room);
                    }
                    rows.push(cells);
                }
            }
            write_csv(&mut out, &header, &rows)?;
        }
    }
    out.flush().context("writing to stdout")?;
    Ok(ExitCode::SUCCESS)
}

/// `Team room (ROOM_ID)`, or the id alone when no title is recorded.
fn room_name(roster: &Roster) -> String {
    match &roster.title {
        Some(title) => format!("{title} ({})", roster.room_id),
        None => roster.room_id.clone(),
    }
}

fn warn(roster: &Roster) {
    for warning in &roster.warnings {
        eprintln!("warning: {}: {}", clean(&room_name(roster)), clean(warning));
    }
}

fn row(member: &RosterMember) -> Vec<String> {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let m = &member.member;
    vec![
        m.person_id.clone(),
        text(&m.email),
        text(&m.name),
        match m.moderator {
            Some(flag) => flag.to_string(),
            None => String::new(),
        },
        text(&m.since),
        text(&m.added_by),
        m.source.as_str().to_string(),
        member
            .joined_seq
            .map(|seq| qualified(member.joined_receiver.as_deref(), seq))
            .unwrap_or_default(),
        qualified(member.last_receiver.as_deref(), member.last_seq),
    ]
}
