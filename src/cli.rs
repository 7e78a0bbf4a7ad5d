//! The command line. Every flag also reads an environment variable
//! (`ROLLCALL_<FLAG>`); a flag given on the command line wins.

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use crate::cmd;

#[derive(Debug, Parser)]
#[command(
    name = "rollcall",
    version,
    about = "Webex membership audit logger: signed webhooks in, append-only hash-chained join/leave records out",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Clone, clap::Args)]
pub struct Global {
    /// The audit log directory. The commands that read the log (export,
    /// tail, verify, roster, rooms, history, index) take it more than
    /// once: one directory per receiver, merged into one record. With
    /// --remote, the first is also where the mirrors of the bucket's
    /// receivers and the merged index are kept, and is read as a receiver
    /// only if it holds a log.
    #[arg(
        long = "dir",
        global = true,
        env = "ROLLCALL_DIR",
        default_value = "./audit-logs",
        value_name = "DIR",
        action = clap::ArgAction::Append
    )]
    pub dirs: Vec<PathBuf>,
    /// Also write rollcall's own logs to daily files in this directory.
    #[arg(long, global = true, env = "ROLLCALL_LOG_DIR")]
    pub log_dir: Option<PathBuf>,
}

impl Global {
    /// The one log directory of a command that writes to it (or reads a
    /// single receiver's): several are refused, saying which commands
    /// take them.
    pub fn dir(&self) -> anyhow::Result<&Path> {
        match self.dirs.as_slice() {
            [dir] => Ok(dir),
            _ => anyhow::bail!(
                "this command works on one log directory, and --dir was given {} times: several are for the commands that read the log (export, tail, verify, roster, rooms, history, index)",
                self.dirs.len()
            ),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server that receives Webex membership webhooks.
    Serve(cmd::serve::Args),
    /// Post signed sample join/leave deliveries to a running server.
    Simulate(cmd::simulate::Args),
    /// Make sure this server's membership webhooks exist in Webex.
    Subscribe(cmd::subscribe::Args),
    /// List the Webex webhooks of the token, with their status.
    Webhooks(cmd::webhooks::Args),
    /// Export records as CSV (default), JSON lines, or OCSF or ECS events.
    Export(cmd::export::Command),
    /// Show the latest records, and follow new ones with -f.
    Tail(cmd::tail::Args),
    /// Compress every closed day into the archive, with digests.
    Archive(cmd::archive::Args),
    /// Check every record, day file, archive and digest.
    Verify(cmd::verify::Args),
    /// Rebuild a log directory from the S3 bucket (--dir must be new or empty).
    Restore(cmd::restore::Args),
    /// Who was in a room at a time, from the log.
    Roster(cmd::roster::Args),
    /// Every room the log knows, with its members now and its baseline.
    Rooms(cmd::rooms::Args),
    /// Bring the SQLite index up to the log, rebuild it, or check it.
    Index(cmd::index::Args),
    /// Every stay of a person in every room, from the index.
    History(cmd::history::Args),
    /// Record what the log missed: compare the rooms' rosters in Webex with it.
    Reconcile(cmd::reconcile::Args),
    /// Check the directory, secret, token, public URL, webhooks, clock,
    /// bucket and TLS pair, saying what to do about each failure.
    Doctor(cmd::doctor::Args),
}
