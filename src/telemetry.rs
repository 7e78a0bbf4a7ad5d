//! rollcall's own logs (not the audit log): to stderr, and with `--log-dir`
//! also to daily files. `RUST_LOG` overrides the level.

use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;

use time::{Date, OffsetDateTime};

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
            let files = DailyFiles {
                dir: dir.clone(),
                open: None,
            };
            let (writer, guard) = tracing_appender::non_blocking(files);
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

/// `rollcall.log.YYYY-MM-DD` in the log directory, a new file each UTC
/// day, created with the audit files' mode (0640): tracing-appender's
/// rolling files take the umask's mode (0644 as a rule), and the logs name
/// people and rooms.
struct DailyFiles {
    dir: PathBuf,
    open: Option<(Date, File)>,
}

impl Write for DailyFiles {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let today = OffsetDateTime::now_utc().date();
        let file = match &mut self.open {
            Some((day, file)) if *day == today => file,
            open => {
                let name = format!("rollcall.log.{}", crate::log::days::day_name(today));
                let file = crate::log::files::open_append(&self.dir.join(name))?;
                &mut open.insert((today, file)).1
            }
        };
        file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.open {
            Some((_, file)) => file.flush(),
            None => Ok(()),
        }
    }
}
