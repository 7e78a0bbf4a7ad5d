//! `rollcall index`: brings the index up to the logs' durable heads (the
//! default), remakes it from them (`--rebuild`), or compares it with a
//! fresh fold of them (`--check`, exit 1 naming the first difference).
//! One `--dir` is `DIR/index.sqlite`; several are one receiver each, read
//! as one record into `FIRSTDIR/merged.sqlite`; so are receivers read
//! from the bucket (`--remote`, mirrored into the first --dir), which an
//! index can be built from alone. [`current`] is how every command that
//! answers from the index opens it.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context;

use super::args::RemoteArgs;
use crate::cli::Global;
use crate::clock::{Clock, SystemClock};
use crate::index::{Index, Kind, Opened};
use crate::receiver::Receivers;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Remake the index from the log, whatever state it is in.
    #[arg(long, conflicts_with = "check")]
    pub rebuild: bool,
    /// Compare every view of the index with a fresh fold of the log; exit
    /// 1 naming the first difference.
    #[arg(long)]
    pub check: bool,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

pub fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let reading = args.remote.read(global)?;
    let (receivers, home) = (&reading.receivers, reading.home.as_path());
    if args.rebuild {
        Index::rebuild_of(receivers, home, &SystemClock)
            .with_context(|| format!("emptying the index in {} to rebuild it", home.display()))?;
    }
    let index = current(receivers, home, &SystemClock)?;
    let reached = reached(&index)?;
    if args.check {
        let logs = match index.kind() {
            Kind::Single => "the log",
            Kind::Merged => "the merged logs",
        };
        return match index
            .check(&SystemClock)
            .with_context(|| format!("checking the index against {logs}"))?
        {
            None => {
                println!("index: every view agrees with {logs} up to {reached}");
                Ok(ExitCode::SUCCESS)
            }
            Some(difference) => {
                println!("index differs from {logs}: {difference}");
                println!(
                    "run this command again with --rebuild in place of --check (the same --dir or --remote) to remake it from {logs}"
                );
                Ok(ExitCode::from(1))
            }
        };
    }
    match index.kind() {
        Kind::Single => {
            let (_, hash) = index.position()?;
            println!(
                "index: {} up to {reached}{}",
                index.file().display(),
                if hash.is_empty() {
                    String::new()
                } else {
                    format!(" hash {hash}")
                }
            );
        }
        Kind::Merged => {
            println!("index: {} up to {reached}", index.file().display());
            for (receiver, at) in index.receivers().iter().zip(index.positions()?) {
                println!(
                    "  {}: seq {}{} in {}",
                    receiver.name,
                    at.seq,
                    if at.hash.is_empty() {
                        String::new()
                    } else {
                        format!(" hash {}", at.hash)
                    },
                    receiver.dir.display()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `seq N`; of several receivers, `seq N of a, seq M of b`.
fn reached(index: &Index) -> anyhow::Result<String> {
    let positions = index.positions()?;
    Ok(match index.kind() {
        Kind::Single => format!("seq {}", positions[0].seq),
        Kind::Merged => index
            .receivers()
            .iter()
            .zip(&positions)
            .map(|(receiver, at)| format!("seq {} of {}", at.seq, receiver.name))
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// A catch-up this long is worth a summary line on stderr.
const LONG_CATCH_UP: u64 = 100_000;

/// The index of `receivers` that lives in `home` (the first --dir:
/// [`crate::offsite::mirror::Reading`]), checked against their logs (rebuilt, with a
/// warning on stderr, if it is not theirs) and caught up to their durable
/// heads.
pub fn current(
    receivers: &Receivers,
    home: &std::path::Path,
    clock: &dyn Clock,
) -> anyhow::Result<Index> {
    let (index, opened) = Index::open_of(receivers, home, clock)
        .with_context(|| format!("opening the index in {}", home.display()))?;
    let mut index = index.for_a_build();
    let logs = match index.kind() {
        Kind::Single => "the log",
        Kind::Merged => "the receivers' logs",
    };
    match opened {
        Opened::Rebuilt(why) => eprintln!("warning: rebuilding the index from {logs}: {why}"),
        // A first build of a long log takes a while: say why on a terminal.
        Opened::Created if std::io::stderr().is_terminal() => match index.kind() {
            Kind::Single => {
                eprintln!("building the index of {} from the log...", home.display())
            }
            Kind::Merged => eprintln!(
                "building {} from the logs of {}...",
                index.file().display(),
                receivers.names().join(", ")
            ),
        },
        Opened::Created | Opened::Kept => {}
    }
    let started = std::time::Instant::now();
    let caught = index
        .catch_up(clock)
        .with_context(|| format!("bringing the index in {} up to {logs}", home.display()))?;
    if caught.records >= LONG_CATCH_UP {
        eprintln!(
            "indexed {} records in {:.1} s, up to {}; later answers read only what is new",
            caught.records,
            started.elapsed().as_secs_f64(),
            reached(&index)?
        );
    }
    Ok(index)
}

/// For a reader of rows that name receivers: how to check a row against
/// its receiver's own log, naming each receiver's `--dir`.
pub fn export_hint(index: &Index) -> Option<String> {
    if index.kind() == Kind::Single {
        return None;
    }
    let dirs: Vec<String> = index
        .receivers()
        .iter()
        .map(|r| format!("--dir {} for {}", r.dir.display(), r.name))
        .collect();
    Some(format!(
        "each seq is named with its receiver (a:N is seq N of receiver a): `rollcall export --dir DIR --seq N` prints that record from the receiver's own log ({})",
        dirs.join(", ")
    ))
}
