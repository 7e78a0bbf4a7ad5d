//! `rollcall subscribe`: makes sure this server's membership webhooks exist
//! in Webex, active and with the server's secret. Safe to run again.

use std::process::ExitCode;

use anyhow::Context;

use super::args::{ApiArgs, RegistrationArgs, parse_public_url};
use crate::cli::Global;
use crate::secret;
use crate::webex::registration::{self, Action, Registration};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The base URL Webex calls (the server's public HTTPS address);
    /// webhooks go to URL/hooks/TARGET.
    #[arg(long, env = "ROLLCALL_PUBLIC_URL", value_parser = parse_public_url)]
    pub public_url: String,
    #[command(flatten)]
    pub registration: RegistrationArgs,
    #[command(flatten)]
    pub api: ApiArgs,
}

pub fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let client = args.api.client()?;
    let (secret, _) = secret::webhook_secret(global.dir()?, secret::from_env())?;
    if let Some(warning) = registration::cleartext_warning(&args.public_url) {
        eprintln!("rollcall: warning: {warning}");
    }
    let registration = Registration {
        public_url: args.public_url,
        target: args.registration.target,
        rooms: args.registration.rooms,
    };
    let runtime = super::runtime()?;
    let ensured = runtime
        .block_on(registration::ensure(&client, &registration, &secret))
        .with_context(|| format!("registering webhooks for {}", registration.target_url()))?;
    for (action, webhook) in &ensured.actions {
        println!(
            "{:<14} {}/{:<8} {:<28} {}",
            action.label(),
            webhook.resource,
            webhook.event,
            webhook.filter.as_deref().unwrap_or("(every room)"),
            webhook.target_url
        );
    }
    let count = |wanted: Action| ensured.actions.iter().filter(|(a, _)| *a == wanted).count();
    println!(
        "{} created, {} kept, {} re-activated, {} secret updated",
        count(Action::Created),
        count(Action::Kept),
        count(Action::Reactivated),
        count(Action::SecretUpdated)
    );
    Ok(ExitCode::SUCCESS)
}
