//! `rollcall restore --dir NEWDIR`: rebuilds a log directory from the S3
//! bucket (see [`crate::offsite::restore`]).

use std::process::ExitCode;

use super::args::S3Args;
use crate::cli::Global;
use crate::offsite;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub s3: S3Args,
}

pub fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let dir = global.dir()?;
    let store = args.s3.required("restore")?;
    let restored = super::runtime()?.block_on(offsite::restore::restore(dir, &store))?;
    println!(
        "restored {} objects ({} bytes) into {}",
        restored.objects,
        restored.bytes,
        dir.display()
    );
    match &restored.newest_checkpoint {
        Some(name) => println!(
            "the newest checkpoint is {name}: records after the last archival were not shipped; `rollcall verify --dir {}` checks what was",
            dir.display()
        ),
        None => println!("no head checkpoints in the bucket"),
    }
    Ok(ExitCode::SUCCESS)
}
