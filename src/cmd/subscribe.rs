//! `rollcall subscribe`: makes sure this receiver's membership webhooks
//! exist in Webex, active, with its secret and named for it, leaving other
//! receivers' alone. Safe to run again.

use std::process::ExitCode;

use anyhow::Context;

use super::args::{ApiArgs, ReceiverArgs, RegistrationArgs, parse_public_url};
use crate::cli::Global;
use crate::receiver;
use crate::secret;
use crate::webex::registration::{self, Action, Registration};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The base URL Webex calls (the server's public HTTPS address);
    /// webhooks go to URL/hooks/TARGET.
    #[arg(long, env = "ROLLCALL_PUBLIC_URL", value_parser = parse_public_url)]
    pub public_url: String,
    #[command(flatten)]
    pub receiver: ReceiverArgs,
    #[command(flatten)]
    pub registration: RegistrationArgs,
    #[command(flatten)]
    pub api: ApiArgs,
}

pub fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let dir = global.dir()?;
    crate::offsite::mirror::refuse_to_write(dir, "subscribe")?;
    let name = args.receiver.resolve(dir)?;
    let client = args.api.client()?;
    let (secret, _) = secret::webhook_secret(dir, secret::from_env())?;
    // Kept with the secret: the webhooks named for it are signed with it.
    receiver::remember(dir, &name)?;
    if let Some(warning) = registration::cleartext_warning(&args.public_url) {
        eprintln!("rollcall: warning: {warning}");
    }
    let registration = Registration {
        receiver: name,
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
        "{} created, {} kept, {} re-activated, {} secret updated, {} adopted (receiver {})",
        count(Action::Created),
        count(Action::Kept),
        count(Action::Reactivated),
        count(Action::SecretUpdated),
        count(Action::Adopted),
        registration.receiver
    );
    Ok(ExitCode::SUCCESS)
}
