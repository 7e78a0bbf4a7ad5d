//! `rollcall index`: brings `DIR/index.sqlite` up to the log's durable
//! head (the default), remakes it from the log (`--rebuild`), or compares
//! it with a fresh fold of the log (`--check`, exit 1 naming the first
//! difference). [`current`] is how every command that answers from the
//! index opens it.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use crate::cli::Global;
use crate::clock::{Clock, SystemClock};
use crate::index::{self, Index, Opened};
use crate::log::days;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Remake the index from the log, whatever state it is in.
    #[arg(long, conflicts_with = "check")]
    pub rebuild: bool,
    /// Compare every view of the index with a fresh fold of the log; exit
    /// 1 naming the first difference.
    #[arg(long)]
    pub check: bool,
}

pub fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let dir = global.dir()?;
    days::ensure_log_dir(dir)?;
    if args.rebuild {
        Index::rebuild(dir, &SystemClock)
            .with_context(|| format!("emptying the index in {} to rebuild it", dir.display()))?;
    }
    let index = current(dir, &SystemClock)?;
    let (seq, hash) = index.position()?;
    if args.check {
        return match index
            .check(&SystemClock)
            .context("checking the index against the log")?
        {
            None => {
                println!("index: every view agrees with the log up to seq {seq}");
                Ok(ExitCode::SUCCESS)
            }
            Some(difference) => {
                println!("index differs from the log: {difference}");
                println!("run `rollcall index --rebuild` to remake it from the log");
                Ok(ExitCode::from(1))
            }
        };
    }
    println!(
        "index: {} up to seq {seq}{}",
        index::path(dir).display(),
        if hash.is_empty() {
            String::new()
        } else {
            format!(" hash {hash}")
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// A catch-up this long is worth a summary line on stderr.
const LONG_CATCH_UP: u64 = 100_000;

/// The index of the log in `dir`, checked against the log (rebuilt, with
/// a warning on stderr, if it is not the log's) and caught up to the
/// durable head.
pub fn current(dir: &Path, clock: &dyn Clock) -> anyhow::Result<Index> {
    let (index, opened) = Index::open(dir, clock)
        .with_context(|| format!("opening the index in {}", dir.display()))?;
    let mut index = index.for_a_build();
    match opened {
        Opened::Rebuilt(why) => eprintln!("warning: rebuilding the index from the log: {why}"),
        // A first build of a long log takes a while: say why on a terminal.
        Opened::Created if std::io::stderr().is_terminal() => {
            eprintln!("building the index of {} from the log...", dir.display());
        }
        Opened::Created | Opened::Kept => {}
    }
    let started = std::time::Instant::now();
    let caught = index
        .catch_up(clock)
        .with_context(|| format!("bringing the index in {} up to the log", dir.display()))?;
    if caught.records >= LONG_CATCH_UP {
        eprintln!(
            "indexed {} records in {:.1} s, up to seq {}; later answers read only what is new",
            caught.records,
            started.elapsed().as_secs_f64(),
            caught.seq
        );
    }
    Ok(index)
}
