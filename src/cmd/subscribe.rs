//! `rollcall subscribe`: makes sure this server's membership webhooks exist
//! in Webex, active and with the server's secret. Safe to run again.

use std::process::ExitCode;

use anyhow::Context;

use crate::cli::Global;
use crate::secret;
use crate::webex::client::{self, Client};
use crate::webex::registration::{self, Action, Registration};
use crate::webhook::payload::Target;

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

/// Which webhooks to register: shared by `subscribe` and `serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct RegistrationArgs {
    /// The webhook target to register: Webex is to call URL/hooks/TARGET.
    #[arg(long, env = "ROLLCALL_TARGET", default_value = "default")]
    pub target: Target,
    /// Register only this room (repeatable, or comma-separated in the
    /// environment; one pair of webhooks per room). Without it, one pair
    /// covers every room the token's account is in.
    #[arg(
        long = "room",
        env = "ROLLCALL_ROOM",
        value_name = "ROOM_ID",
        value_delimiter = ','
    )]
    pub rooms: Vec<String>,
}

/// Where the Webex API is. The token is read from WEBEX_TOKEN only.
#[derive(Debug, Clone, clap::Args)]
pub struct ApiArgs {
    /// Base URL of the Webex API.
    #[arg(long = "webex-api-url", env = "WEBEX_API_URL", default_value = client::DEFAULT_API_URL)]
    pub api_url: String,
}

impl ApiArgs {
    /// A client with the token from WEBEX_TOKEN, which one-shot commands
    /// cannot do without.
    pub fn client(&self) -> anyhow::Result<Client> {
        let token = client::token_from_env().context(
            "WEBEX_TOKEN is not set: export a Webex bot or integration access token (see \"Connect to Webex\" in the README)",
        )?;
        Client::new(&self.api_url, token).context("setting up the Webex API client")
    }
}

/// A public URL is an absolute http(s) URL; a trailing slash is dropped.
pub fn parse_public_url(value: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(value).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return Err("must be an http(s) URL with a host, e.g. https://audit.example.com".into());
    }
    Ok(value.trim_end_matches('/').to_string())
}

pub fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let client = args.api.client()?;
    let (secret, _) = secret::webhook_secret(&global.dir, secret::from_env())?;
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
