//! `rollcall export`: the records, filtered, as CSV for spreadsheets, as
//! the log's own JSON lines, or as OCSF or ECS events for a SIEM, streamed
//! in seq order over live and archived days; over several receivers'
//! logs (`--dir` more than once, `--remote`), each event once, in
//! received order.

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use time::Date;

use super::args::{FilterArgs, RemoteArgs, SeqArgs};
use crate::cli::Global;
use crate::export::{self, Format, Options};
use crate::log::days;
use crate::log::files;
use crate::log::reader::{Filter, SeqRange};
use crate::receiver::Receivers;

/// How much of the export is buffered before it is written out.
const OUT_BUFFER: usize = 1 << 20;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub filter: FilterArgs,
    /// CSV with the fixed compliance header, the log's own JSON lines, or
    /// one OCSF or ECS event a line for a SIEM.
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

/// `export` as the command line gives it: [`Args`] and a seq range.
#[derive(Debug, clap::Args)]
pub struct Command {
    #[command(flatten)]
    pub args: Args,
    #[command(flatten)]
    pub seqs: SeqArgs,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

pub fn run(global: &Global, command: Command) -> anyhow::Result<ExitCode> {
    let Command { args, seqs, remote } = command;
    let filter = args.filter.clone().filter()?;
    let seqs = seqs.range()?;
    let receivers = remote.read(global)?.receivers;
    anyhow::ensure!(
        receivers.single().is_some() || seqs == SeqRange::default(),
        "--from-seq, --to-seq and --seq name records of one receiver's log (each receiver numbers its own): give that receiver's --dir alone"
    );
    match &args.output {
        None => {
            let stdout = io::stdout().lock();
            export_seqs(&receivers, &filter, seqs, &args, stdout)?;
        }
        Some(path) => export_to_file(&receivers, &filter, seqs, &args, path)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes under a temporary name beside `path` and renames it into place
/// only once complete and synced, so a half-written export never looks
/// like a finished one.
fn export_to_file(
    receivers: &Receivers,
    filter: &Filter,
    seqs: SeqRange,
    args: &Args,
    path: &Path,
) -> anyhow::Result<()> {
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
    let written = export_seqs(receivers, filter, seqs, args, &file)
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

/// Streams the matching records of `receivers` to `out` (one receiver's
/// in `seqs` only), with a progress line on a terminal. Several
/// receivers' logs are read as one record: each event once.
pub fn export_seqs(
    receivers: &Receivers,
    filter: &Filter,
    seqs: SeqRange,
    args: &Args,
    out: impl Write,
) -> anyhow::Result<()> {
    let options = Options {
        format: args.format,
        guard: !args.raw,
    };
    let mut progress = Progress::new();
    // A block's output is written in pieces (around the titles filled in
    // late): buffered, they reach a file, or stdout (which would flush at
    // every newline), in large writes.
    let out = io::BufWriter::with_capacity(OUT_BUFFER, out);
    let tick = |date, records| progress.tick(date, records);
    match receivers.single() {
        Some(one) => export::write(&one.dir, filter, seqs, options, out, tick)?,
        None => export::write_merged(receivers, filter, options, out, tick)?,
    }
    progress.done();
    Ok(())
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

    fn tick(&mut self, date: Date, records: u64) {
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
            days::day_name(date)
        );
    }

    fn done(&self) {
        if self.shown {
            eprintln!("\rexported {} records{:20}", self.records, "");
        }
    }
}
