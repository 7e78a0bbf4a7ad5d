//! rollcall's own logs (not the audit log): to stderr, and with `--log-dir`
//! also to daily files. `RUST_LOG` overrides the level.

use std::io::IsTerminal;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::cli::Global;

/// Sets up logging; keep the guard alive so file logs are flushed at exit.
/// The server logs at `info`; the other commands only warn, so their
/// output stays theirs.
pub fn init(global: &Global, server: bool) -> anyhow::Result<Option<WorkerGuard>> {
    let default = if server { "info" } else { "warn" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let stderr = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let (file, guard) = match &global.log_dir {
        Some(dir) => {
            crate::log::files::create_dir(dir)?;
            let appender = tracing_appender::rolling::daily(dir, "rollcall.log");
            let (writer, guard) = tracing_appender::non_blocking(appender);
            let layer = tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(writer);
            (Some(layer), Some(guard))
        }
        None => (None, None),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(stderr)
        .with(file)
        .try_init()?;
    Ok(guard)
}
