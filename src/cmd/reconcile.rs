//! `rollcall reconcile`: compare the watched rooms' rosters in Webex with
//! the log once, by hand, and record what the log missed.

use std::io::{IsTerminal, Write};
use std::num::NonZeroU32;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use super::args;
use crate::cli::Global;
use crate::clock::{Clock, SystemClock};
use crate::log::files;
use crate::log::writer::LogWriter;
use crate::metrics::Metrics;
use crate::reconcile::{self, EventsApi, Reconciler, Scope};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this room (repeatable, or comma-separated in the environment).
    /// Without it, every room the token's account is in.
    #[arg(
        long = "room",
        env = "ROLLCALL_ROOM",
        value_name = "ROOM_ID",
        value_delimiter = ','
    )]
    pub rooms: Vec<String>,
    #[command(flatten)]
    pub pace: PaceArgs,
    #[command(flatten)]
    pub api: args::ApiArgs,
}

/// How reconciliation talks to Webex: shared by `reconcile` and `serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct PaceArgs {
    /// At most N Webex API requests a second while reconciling (429
    /// Retry-After is honoured on top).
    #[arg(long, value_name = "N", env = "ROLLCALL_API_RATE", default_value_t = reconcile::DEFAULT_API_RATE)]
    pub api_rate: NonZeroU32,
    /// Backfill the coverage gap before this run (from the log's last
    /// record) exactly from GET /events (needs a compliance officer's
    /// token), and fail if it cannot. Without it, /events is tried once and
    /// skipped on a 403.
    #[arg(long, env = "ROLLCALL_EVENTS_API")]
    pub events_api: bool,
}

impl PaceArgs {
    pub fn events_api(&self) -> EventsApi {
        if self.events_api {
            EventsApi::Required
        } else {
            EventsApi::Detect
        }
    }
}

/// Exit 0 when every room was checked, 1 when some were not (named on
/// stderr), 2 when the run could not happen at all.
pub fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let client = args.api.client()?.paced(args.pace.api_rate);
    let dir = global.dir()?;
    crate::offsite::mirror::refuse_to_write(dir, "reconcile")?;
    files::create_dir(dir).with_context(|| format!("creating log directory {}", dir.display()))?;
    let _lock = files::try_lock(dir)
        .with_context(|| format!("locking {}", dir.join(files::LOCK_FILE).display()))?
        .with_context(|| {
            format!(
                "a rollcall serve (or another reconcile) is using {}: serve reconciles by itself at start and every --reconcile-every, so there is nothing to run by hand; stop it first to reconcile now",
                dir.display()
            )
        })?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let metrics = Arc::new(Metrics::default());
    let writer = LogWriter::open(dir, clock.clone(), metrics.clone())?;
    let scope = Scope {
        only: args.rooms,
        ..Scope::default()
    };
    let mut reconciler = Reconciler::new(
        client,
        clock.clone(),
        metrics,
        scope,
        args.pace.events_api(),
    )
    .after_gap(&writer, clock.now());
    let mut progress = progress_on_terminal();
    let summary = super::runtime()?.block_on(reconciler.run(&writer, &mut progress));
    writer.shutdown();
    if let Some(error) = &summary.error {
        anyhow::bail!("reconcile could not run: {error}");
    }
    println!("{summary}");
    for (room, error) in &summary.failed {
        eprintln!("rollcall: room {room} could not be checked: {error}");
    }
    if let reconcile::Backfill::Failed(error) = &summary.backfill {
        eprintln!("rollcall: the exact backfill from /events failed: {error}");
    }
    Ok(if summary.is_complete() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Rooms done, on one rewritten line, when stderr is a terminal.
fn progress_on_terminal() -> impl FnMut(usize, usize) + Send {
    let terminal = std::io::stderr().is_terminal();
    move |done, total| {
        if terminal && total > 0 {
            let mut stderr = std::io::stderr().lock();
            let _ = write!(stderr, "\rreconciling: {done}/{total} rooms");
            if done == total {
                let _ = writeln!(stderr);
            }
        }
    }
}
