//! Arguments that several commands share, defined once: the record
//! filters (`export`, `tail`), which webhooks to register (`subscribe`,
//! `serve`), where the Webex API is (`subscribe`, `webhooks`, `serve`) and
//! this server's public URL.

use anyhow::Context;

use crate::log::reader::{self, Filter};
use crate::log::record::{Event, Source};
use crate::webex::client::{self, Client};
use crate::webhook::payload::Target;

/// The record filters `export` and `tail` share.
#[derive(Debug, Clone, clap::Args)]
pub struct FilterArgs {
    /// Only records received at or after T (YYYY-MM-DD or RFC 3339).
    #[arg(long, value_name = "T", env = "ROLLCALL_FROM", value_parser = parse_time_arg)]
    pub from: Option<String>,
    /// Only records received before T (YYYY-MM-DD or RFC 3339).
    #[arg(long, value_name = "T", env = "ROLLCALL_TO", value_parser = parse_time_arg)]
    pub to: Option<String>,
    /// Only records of this room id.
    #[arg(long, value_name = "ID", env = "ROLLCALL_ROOM")]
    pub room: Option<String>,
    /// Only records of this person (email, any case).
    #[arg(long, value_name = "EMAIL", env = "ROLLCALL_PERSON")]
    pub person: Option<String>,
    /// Only records of these events (repeatable, or comma-separated).
    /// Without it, every event, the receiver's own starts and stops too.
    #[arg(
        long = "event",
        value_enum,
        env = "ROLLCALL_EVENT",
        value_name = "EVENT",
        value_delimiter = ','
    )]
    pub events: Vec<EventArg>,
    /// Only records learned this way: from a delivery, by reconciliation,
    /// or from the compliance events API.
    #[arg(long, value_enum, env = "ROLLCALL_SOURCE")]
    pub source: Option<SourceArg>,
}

/// Named as in the log and the CSV `event` column.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum EventArg {
    Joined,
    Left,
    ModeratorGranted,
    ModeratorRevoked,
    ReceiverStarted,
    ReceiverStopped,
}

impl From<EventArg> for Event {
    fn from(e: EventArg) -> Self {
        match e {
            EventArg::Joined => Event::Joined,
            EventArg::Left => Event::Left,
            EventArg::ModeratorGranted => Event::ModeratorGranted,
            EventArg::ModeratorRevoked => Event::ModeratorRevoked,
            EventArg::ReceiverStarted => Event::ReceiverStarted,
            EventArg::ReceiverStopped => Event::ReceiverStopped,
        }
    }
}

/// Named as in the log and the CSV `source` column.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum SourceArg {
    Webhook,
    Reconciled,
    EventsApi,
}

impl From<SourceArg> for Source {
    fn from(s: SourceArg) -> Self {
        match s {
            SourceArg::Webhook => Source::Webhook,
            SourceArg::Reconciled => Source::Reconciled,
            SourceArg::EventsApi => Source::EventsApi,
        }
    }
}

impl FilterArgs {
    pub fn filter(self) -> anyhow::Result<Filter> {
        let filter = Filter {
            from: self.from,
            to: self.to,
            room: self.room,
            person: self.person,
            events: self.events.into_iter().map(Event::from).collect(),
            source: self.source.map(Source::from),
        };
        filter.validate()?;
        Ok(filter)
    }
}

/// How `roster` and `rooms` print what they list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFormat {
    /// Aligned columns for reading, warnings on stderr.
    Table,
    /// CSV with a header row (formula-guarded), warnings on stderr.
    Csv,
    /// One JSON document, warnings inside it.
    Json,
}

/// A time given like `export --from`: YYYY-MM-DD or RFC 3339.
pub fn parse_time_arg(text: &str) -> Result<String, reader::FilterError> {
    reader::parse_time(text)
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
