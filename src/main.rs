//! The `rollcall` binary: parse the command line, set up rollcall's own
//! logs, run the command, and turn its result into the exit code.

use std::process::ExitCode;

use clap::Parser;
use rollcall::cli::{Cli, Command};
use rollcall::cmd;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _log_guard =
        match rollcall::telemetry::init(&cli.global, matches!(cli.command, Command::Serve(_))) {
            Ok(guard) => guard,
            Err(error) => return report(error),
        };
    let global = &cli.global;
    let result = match cli.command {
        Command::Serve(args) => cmd::serve::run(global, args),
        Command::Simulate(args) => cmd::simulate::run(global, args),
        Command::Subscribe(args) => cmd::subscribe::run(global, args),
        Command::Webhooks(args) => cmd::webhooks::run(global, args),
        Command::Export(args) => cmd::export::run(global, args),
        Command::Tail(args) => cmd::tail::run(global, args),
        Command::Archive(args) => cmd::archive::run(global, args),
        Command::Verify(args) => cmd::verify::run(global, args),
        Command::Restore(args) => cmd::restore::run(global, args),
        Command::Roster(args) => cmd::roster::run(global, args),
        Command::Rooms(args) => cmd::rooms::run(global, args),
        Command::Index(args) => cmd::index::run(global, args),
        Command::History(args) => cmd::history::run(global, args),
        Command::Reconcile(args) => cmd::reconcile::run(global, args),
        Command::Doctor(args) => cmd::doctor::run(global, args),
    };
    result.unwrap_or_else(report)
}

/// Prints the error with its causes. A closed pipe (`| head`) is not a
/// failure.
fn report(error: anyhow::Error) -> ExitCode {
    let broken_pipe = error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    });
    if broken_pipe {
        return ExitCode::SUCCESS;
    }
    eprintln!("rollcall: error: {error}");
    for cause in error.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
    ExitCode::from(2)
}
