//! `rollcall archive`: compresses every closed day into `DIR/archive/`,
//! with a digest each, ships what the S3 bucket lacks (with `--s3-url`),
//! and optionally deletes archives past a retention period.

use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use super::args::{ReceiverArgs, S3Args};
use crate::cli::Global;
use crate::clock::SystemClock;
use crate::log::archive::{self, Options};
use crate::log::days;
use crate::metrics::Metrics;
use crate::offsite::ship::Confirmed;
use crate::offsite::{self, Store};
use crate::receiver;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Also delete the archives and console access days of days more than
    /// N days before today (digests are kept; each deletion is noted in a
    /// chained retired list). Never done unless asked; at least 7, the
    /// days duplicates are recognised over. With --s3-url, only files
    /// confirmed in the bucket are deleted.
    #[arg(
        long,
        env = "ROLLCALL_RETAIN_DAYS",
        value_name = "N",
        value_parser = archive::parse_retain_days
    )]
    pub retain_days: Option<u32>,
    #[command(flatten)]
    pub s3: S3Args,
    // With --s3-url: whose folder of the bucket this log ships to.
    #[command(flatten)]
    pub receiver: ReceiverArgs,
}

/// Exit 0 when archived (and shipped, with --s3-url); 1 when archived
/// but the bucket could not take everything (the next run retries) or
/// holds something else under one of the names (kept here); 2 when
/// archival itself failed.
pub fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let store = args.s3.store()?;
    offsite::mirror::refuse_to_write(global.dir()?, "archive")?;
    let options = Options {
        retain_days: None,
        copies: store.is_some().then(offsite::ship::bucket_copies),
    };
    let dir = global.dir()?;
    let store = match store {
        Some(store) => Some(own_folder(dir, &args.receiver, &store)?),
        None => None,
    };
    let summary =
        archive::archive_closed_days(dir, &SystemClock, &options, &AtomicBool::new(false))?;
    print_summary(&summary);
    let mut code = ExitCode::SUCCESS;
    if let Some(store) = &store
        && !ship(dir, store)?
    {
        code = ExitCode::from(1);
    }
    if args.retain_days.is_some() {
        let retention = Options {
            retain_days: args.retain_days,
            ..options
        };
        let pruned =
            archive::archive_closed_days(dir, &SystemClock, &retention, &AtomicBool::new(false))?;
        for path in &pruned.retired {
            println!("deleted {} (past the retention period)", path.display());
        }
    }
    Ok(code)
}

/// The store of this receiver's folder of the bucket, the receiver's name
/// kept as `serve` keeps it, and the layout recorded before anything is
/// shipped.
fn own_folder(dir: &Path, receiver: &ReceiverArgs, store: &Store) -> anyhow::Result<Store> {
    let name = receiver.resolve(dir)?;
    days::ensure_log_dir(dir)?;
    receiver::remember(dir, &name)?;
    Ok(offsite::layout::settle(dir, &name)?.store(store))
}

/// Ships to the bucket and checkpoints the head; false if the store did
/// not take everything or holds something else under a name.
fn ship(dir: &Path, store: &Store) -> anyhow::Result<bool> {
    super::runtime()?.block_on(async {
        offsite::lock::warn_if_unlocked(store).await;
        let shipped = offsite::ship::ship(dir, store, &Metrics::default()).await?;
        for name in &shipped.uploaded {
            println!("shipped {name}");
        }
        for object in &shipped.mismatched {
            println!(
                "MISMATCH: {} in the bucket is not {}: something else was put under its name; kept here, not counted as shipped",
                store.location(&object.name),
                object.path.display()
            );
        }
        if let Some(error) = &shipped.failure {
            println!(
                "NOT SHIPPED: {} archives wait for the bucket ({error}); the next run retries",
                shipped.unshipped.len()
            );
            return Ok(false);
        }
        if shipped.uploaded.is_empty() && shipped.mismatched.is_empty() {
            println!("nothing to ship: the bucket holds every archive and digest");
        }
        let mut whole = shipped.mismatched.is_empty();
        if let Some(head) = crate::log::head::Head::read(dir)? {
            let name = offsite::checkpoint::Checkpoint::name(head.seq);
            match offsite::checkpoint::upload(store, &head).await {
                Ok(Confirmed::Uploaded | Confirmed::Present) => {
                    println!("checkpointed the head: {head}")
                }
                Ok(Confirmed::Differs) => {
                    println!(
                        "MISMATCH: {} in the bucket does not name the head {head}: something else was put under its name",
                        store.location(&name)
                    );
                    whole = false;
                }
                Err(error) => {
                    println!("NOT CHECKPOINTED: {error}");
                    return Ok(false);
                }
            }
        }
        Ok(whole)
    })
}

fn print_summary(summary: &archive::Summary) {
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
    if summary.archived.is_empty() && summary.finished.is_empty() {
        println!("nothing to archive: every closed day is archived");
    }
}
