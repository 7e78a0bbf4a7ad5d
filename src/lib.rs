//! rollcall: a Webex membership audit logger.
//!
//! Webex posts a `memberships` webhook for every join and leave; rollcall
//! checks its signature and writes one append-only, hash-chained record
//! per event, durably and exactly once. The crate is laid out as:
//!
//! - [`webhook`]: what Webex posts (payload, signature) and the warp routes.
//! - [`log`]: the audit log on disk: record format and hash chain, day
//!   files, the single durable writer, the shared reader, archives, and
//!   what `verify` checks.
//! - [`index`]: the SQLite index of who was where, derived from the log
//!   (one receiver's, or several receivers' merged).
//! - [`export`]: the CSV and JSON-lines formats `export` and the console's
//!   download write.
//! - [`schedule`]: nightly jobs (archival, retention) off the request path.
//! - [`webex`]: the Webex API client, this server's webhook registrations
//!   and the room-title cache.
//! - [`reconcile`]: recovering what the log missed from Webex's roster
//!   and membership events.
//! - [`receiver`]: a receiver's name, and the receivers a read command
//!   reads (one per `--dir`; those known only by the bucket are mirrored
//!   and resolved by [`offsite::mirror`]).
//! - [`startup`]: building and running the server ([`startup::Application`]).
//! - [`systemd`]: telling systemd how `serve` is doing (`Type=notify`:
//!   ready, status, stopping; the log writer pings the watchdog).
//! - [`listener`]: the accept loop both listeners run, and the open-file
//!   limit their connection caps are sized from.
//! - [`tls`]: HTTPS on both listeners (`serve --tls-cert --tls-key`), and
//!   reloading the pair when it is renewed.
//! - [`console`]: the web console on its own listener (`serve --console`).
//! - [`doctor`]: the checks `rollcall doctor` runs, each with its fix.
//! - [`cmd`]: one module per subcommand, behind [`cli`].
//! - [`clock`], [`secret`], [`metrics`], [`telemetry`]: the injected clock,
//!   redacted secrets, `/metrics` counters and rollcall's own logs;
//!   [`heap`]: how `serve`'s heap hands freed memory back.

pub mod background;
pub mod cli;
pub mod clock;
pub mod cmd;
pub mod console;
pub mod doctor;
pub mod export;
pub mod heap;
pub mod index;
pub mod listener;
pub mod log;
pub mod metrics;
pub mod offsite;
pub mod receiver;
pub mod reconcile;
pub mod schedule;
pub mod secret;
pub mod startup;
pub mod systemd;
pub mod telemetry;
pub mod tls;
pub mod webex;
pub mod webhook;
