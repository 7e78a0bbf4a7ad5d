//! `rollcall archive`: compresses every closed day into `DIR/archive/`,
//! with a digest each, and optionally deletes archives past a retention
//! period.

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use crate::cli::Global;
use crate::clock::SystemClock;
use crate::log::archive::{self, Options};
use crate::log::days;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Also delete the archives of days more than N days before today
    /// (their digests are kept). Never done unless asked; at least 7, the
    /// days duplicates are recognised over.
    #[arg(
        long,
        env = "ROLLCALL_RETAIN_DAYS",
        value_name = "N",
        value_parser = archive::parse_retain_days
    )]
    pub retain_days: Option<u32>,
}

pub fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let options = Options {
        retain_days: args.retain_days,
    };
    let summary =
        archive::archive_closed_days(&global.dir, &SystemClock, &options, &AtomicBool::new(false))?;
    for day in &summary.finished {
        println!(
            "finished {}: an earlier run had archived it; removed its live file",
            days::day_name(*day)
        );
    }
    for day in &summary.archived {
        println!(
            "archived {}: {} records, {} bytes -> {} bytes ({:.1}x) in {}",
            days::day_name(day.date),
            day.records,
            day.uncompressed_bytes,
            day.compressed_bytes,
            day.uncompressed_bytes as f64 / day.compressed_bytes.max(1) as f64,
            day.archive.display()
        );
    }
    for path in &summary.retired {
        println!("deleted {} (past the retention period)", path.display());
    }
    if summary.archived.is_empty() && summary.finished.is_empty() {
        println!("nothing to archive: every closed day is archived");
    }
    Ok(ExitCode::SUCCESS)
}
