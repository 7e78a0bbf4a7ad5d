//! `rollcall doctor`: checks everything a receiver depends on and says
//! what to do about each failure. Exit 0 when nothing failed (warnings
//! allowed), 1 otherwise.

use std::process::ExitCode;

use super::args::{ApiArgs, ReceiverArgs, RegistrationArgs, S3Args, TlsArgs};
use crate::cli::Global;
use crate::doctor::{self, Settings};
use crate::secret;
use crate::webex::client;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print one JSON document (for monitoring) instead of a line per check.
    #[arg(long, env = "ROLLCALL_JSON")]
    pub json: bool,
    /// The base URL Webex calls; its webhooks are checked against it.
    #[arg(long, env = "ROLLCALL_PUBLIC_URL")]
    pub public_url: Option<String>,
    #[command(flatten)]
    pub receiver: ReceiverArgs,
    #[command(flatten)]
    pub registration: RegistrationArgs,
    #[command(flatten)]
    pub api: ApiArgs,
    /// serve runs with --events-api: the token must be a compliance
    /// officer's.
    #[arg(long, env = "ROLLCALL_EVENTS_API")]
    pub events_api: bool,
    #[command(flatten)]
    pub s3: S3Args,
    /// The pair serve's HTTPS serves, checked as serve reads it.
    #[command(flatten)]
    pub tls: TlsArgs,
}

pub fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let settings = Settings {
        dir: global.dir()?.to_path_buf(),
        receiver: args.receiver.receiver,
        secret: secret::from_env(),
        token: client::token_from_env(),
        api_url: args.api.api_url,
        public_url: args.public_url,
        target: args.registration.target,
        rooms: args.registration.rooms,
        events_api: args.events_api,
        store: args.s3.store(),
        tls: args.tls.files().map_err(|e| e.to_string()),
    };
    let report =
        super::runtime()?.block_on(doctor::run(&settings, time::OffsetDateTime::now_utc()));
    if args.json {
        println!("{}", report.to_json());
    } else {
        for check in &report.checks {
            println!("{}", check.line());
        }
        println!("doctor: {}", report.summary());
    }
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
