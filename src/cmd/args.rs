//! Arguments that several commands share, defined once: the record
//! filters (`export`, `tail`), which webhooks to register (`subscribe`,
//! `serve`), where the Webex API is (`subscribe`, `webhooks`, `serve`),
//! this receiver's name, this server's public URL and its TLS pair, the
//! bucket (`S3Args`) and the receivers read from it (`RemoteArgs`).

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::cli::Global;
use crate::log::reader::{self, Filter, SeqRange};
use crate::log::record::{Event, Source};
use crate::offsite::Store;
use crate::offsite::mirror::{self, Reading};
use crate::offsite::settings::{self, Lock, LockMode, S3Url, Settings};
use crate::receiver::{self, Name};
use crate::tls::TlsFiles;
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

/// The seq range `export` takes: the records an index row names.
#[derive(Debug, Clone, clap::Args)]
pub struct SeqArgs {
    /// Only records with this seq or a later one.
    #[arg(long, value_name = "N", env = "ROLLCALL_FROM_SEQ")]
    pub from_seq: Option<u64>,
    /// Only records with this seq or an earlier one (inclusive).
    #[arg(long, value_name = "M", env = "ROLLCALL_TO_SEQ")]
    pub to_seq: Option<u64>,
    /// Only the record with this seq (as --from-seq N --to-seq N).
    #[arg(long, value_name = "N", env = "ROLLCALL_SEQ", conflicts_with_all = ["from_seq", "to_seq"])]
    pub seq: Option<u64>,
}

impl SeqArgs {
    pub fn range(&self) -> anyhow::Result<SeqRange> {
        let range = SeqRange {
            from: self.seq.or(self.from_seq),
            to: self.seq.or(self.to_seq),
        };
        range.validate()?;
        Ok(range)
    }
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

/// This receiver's name, for the commands that act as it: `serve`,
/// `subscribe`, `archive` (which ships to its folder), and `webhooks` and
/// `doctor` (which tell its webhooks from other receivers').
#[derive(Debug, Clone, clap::Args)]
pub struct ReceiverArgs {
    /// This receiver's name, in its start and stop records, its webhooks'
    /// names and its folder of the bucket: 1 to 64 letters, digits, '_',
    /// '.' or '-'. Default: the one DIR/.receiver keeps, else the host
    /// name. Kept in DIR/.receiver; a name other than the one kept there
    /// is refused.
    #[arg(long = "receiver", env = "ROLLCALL_RECEIVER", value_name = "NAME")]
    pub receiver: Option<Name>,
}

impl ReceiverArgs {
    /// The name of the receiver whose log is `dir` (see
    /// [`receiver::resolve`]).
    pub fn resolve(&self, dir: &Path) -> anyhow::Result<Name> {
        receiver::resolve(dir, self.receiver.as_ref())
    }
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

/// The certificate and key `serve` serves HTTPS with, on the webhook
/// listener and the console alike.
#[derive(Debug, clap::Args)]
pub struct TlsArgs {
    /// Serve HTTPS with this certificate chain (PEM, leaf first: certbot's
    /// fullchain.pem). Read again when it changes or on SIGHUP. Needs
    /// --tls-key.
    #[arg(long, value_name = "FILE", env = "ROLLCALL_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1;
    /// certbot's privkey.pem). Needs --tls-cert.
    #[arg(long, value_name = "FILE", env = "ROLLCALL_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
}

impl TlsArgs {
    /// The pair, when both are given; none when neither is. One alone is
    /// refused, saying which is missing and where else it may come from.
    pub fn files(&self) -> anyhow::Result<Option<TlsFiles>> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Ok(Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            })),
            (None, None) => Ok(None),
            (Some(_), None) => anyhow::bail!(
                "--tls-cert needs --tls-key (or ROLLCALL_TLS_KEY) too: give both, or neither to serve plain HTTP"
            ),
            (None, Some(_)) => anyhow::bail!(
                "--tls-key needs --tls-cert (or ROLLCALL_TLS_CERT) too: give both, or neither to serve plain HTTP"
            ),
        }
    }
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

/// Where the S3 bucket is, for shipping, `verify --remote` and `restore`.
/// Credentials and region are never flags: they come from the standard
/// AWS environment variables and files.
#[derive(Debug, Clone, clap::Args)]
pub struct S3Args {
    /// Ship archives, digests and head checkpoints to this bucket, under
    /// this key prefix. Credentials: AWS_ACCESS_KEY_ID and
    /// AWS_SECRET_ACCESS_KEY (AWS_SESSION_TOKEN), or AWS_PROFILE and
    /// ~/.aws/credentials; region: AWS_REGION or ~/.aws/config.
    #[arg(long, env = "ROLLCALL_S3_URL", value_name = "s3://BUCKET/PREFIX")]
    pub s3_url: Option<S3Url>,
    /// The store's URL, for stores other than AWS S3 (MinIO, Ceph...),
    /// e.g. http://127.0.0.1:9000. Addressed path style.
    #[arg(long, env = "ROLLCALL_S3_ENDPOINT", value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// Lock each uploaded object for N days. Without it the bucket's
    /// default retention applies.
    #[arg(long, env = "ROLLCALL_S3_LOCK_DAYS", value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub s3_lock_days: Option<u32>,
    /// The Object Lock mode of --s3-lock-days.
    #[arg(
        long,
        env = "ROLLCALL_S3_LOCK_MODE",
        value_enum,
        default_value = "compliance"
    )]
    pub s3_lock_mode: LockMode,
}

impl S3Args {
    /// The store, if `--s3-url` was given.
    pub fn store(&self) -> anyhow::Result<Option<Store>> {
        let Some(url) = self.s3_url.clone() else {
            anyhow::ensure!(
                self.s3_endpoint.is_none() && self.s3_lock_days.is_none(),
                "--s3-endpoint and --s3-lock-days need --s3-url s3://BUCKET/PREFIX"
            );
            return Ok(None);
        };
        let lock = self.s3_lock_days.map(|days| Lock {
            mode: self.s3_lock_mode,
            days,
        });
        Ok(Some(store_at(url, self.s3_endpoint.clone(), lock)?))
    }

    /// The store, which `what` cannot do without.
    pub fn required(&self, what: &str) -> anyhow::Result<Store> {
        self.store()?.ok_or_else(|| {
            anyhow::anyhow!(
                "{what} needs the bucket: give --s3-url s3://BUCKET/PREFIX (or set ROLLCALL_S3_URL)"
            )
        })
    }
}

/// The store of `url`, at `endpoint` (path style) or on AWS, with the
/// region and credentials found the standard AWS way: what `S3Args` and
/// `RemoteArgs` both open.
fn store_at(url: S3Url, endpoint: Option<String>, lock: Option<Lock>) -> anyhow::Result<Store> {
    let env = settings::process_env;
    let settings = Settings {
        url,
        endpoint,
        region: settings::region(&env),
        credentials: settings::credentials(&env)?,
        lock,
    };
    Store::new(&settings)
}

/// Receivers known only by their bucket prefix, for the commands that
/// read the log (`export`, `tail`, `roster`, `rooms`, `history`,
/// `index`): each receiver's log under the prefix is mirrored into the
/// first --dir and read as a log directory ([`crate::offsite::mirror`]).
#[derive(Debug, Clone, clap::Args)]
pub struct RemoteArgs {
    /// Also read every receiver that ships under this bucket prefix
    /// (repeatable): its archives and checkpoints are mirrored into
    /// DIR/remote/BUCKET/PREFIX/NAME/ (DIR the first --dir, made if
    /// missing; PREFIX as one folder, a '/' in it written %2F), fetching
    /// only what is new, each archive checked against its digest, and
    /// read as that receiver's log. A receiver's live day is never in the
    /// bucket. A --dir of the same receiver is read instead of its mirror.
    /// Credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or
    /// AWS_PROFILE and ~/.aws/credentials (read access is enough); region:
    /// AWS_REGION or ~/.aws/config.
    #[arg(
        long = "remote",
        env = "ROLLCALL_REMOTE_URL",
        value_name = "s3://BUCKET/PREFIX",
        action = clap::ArgAction::Append
    )]
    pub remotes: Vec<S3Url>,
    /// With --remote: the store's URL, for stores other than AWS S3
    /// (MinIO, Ceph...), e.g. http://127.0.0.1:9000. Addressed path style.
    #[arg(long, env = "ROLLCALL_S3_ENDPOINT", value_name = "URL")]
    pub s3_endpoint: Option<String>,
}

impl RemoteArgs {
    /// The store of each --remote prefix, in the order given.
    pub fn stores(&self) -> anyhow::Result<Vec<Store>> {
        self.remotes
            .iter()
            .map(|url| store_at(url.clone(), self.s3_endpoint.clone(), None))
            .collect()
    }

    /// The receivers a read command reads: every --dir holding a log, then
    /// every receiver under each --remote prefix (mirrored first), and the
    /// directory its index lives in (see [`mirror::resolve`]).
    pub fn read(&self, global: &Global) -> anyhow::Result<Reading> {
        mirror::resolve(&global.dirs, &self.stores()?)
    }
}
