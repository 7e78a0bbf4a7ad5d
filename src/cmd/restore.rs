//! `rollcall restore --dir NEWDIR`: rebuilds a log directory from the S3
//! bucket (see [`crate::offsite::restore`]): the one receiver's log under
//! the prefix, or the one `--receiver` names.

use std::process::ExitCode;

use super::args::S3Args;
use crate::cli::Global;
use crate::offsite;
use crate::receiver::Name;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Restore this receiver's log (its folder PREFIX/NAME/ of the
    /// bucket). Needed when several receivers ship under the prefix;
    /// without it, the one there is restored.
    #[arg(long = "receiver", env = "ROLLCALL_RECEIVER", value_name = "NAME")]
    pub receiver: Option<Name>,
    #[command(flatten)]
    pub s3: S3Args,
}

pub fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let dir = global.dir()?;
    let store = args.s3.required("restore")?;
    let (log, restored) = super::runtime()?.block_on(async {
        let log = offsite::layout::pick(&store, args.receiver.as_ref()).await?;
        let restored = offsite::restore::restore(dir, &store, &log).await?;
        anyhow::Ok((log, restored))
    })?;
    println!(
        "restored {} objects ({} bytes) of receiver {} from {} into {}",
        restored.objects,
        restored.bytes,
        log.name,
        log.location(&store),
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
