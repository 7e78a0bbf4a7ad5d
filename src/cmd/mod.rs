//! One module per subcommand; each turns its arguments into calls on the
//! library and returns the process exit code. [`args`] holds the
//! arguments several commands share.

pub mod archive;
pub mod args;
pub mod doctor;
pub mod export;
pub mod history;
pub mod index;
pub mod reconcile;
pub mod restore;
pub mod rooms;
pub mod roster;
pub mod serve;
pub mod simulate;
pub mod subscribe;
mod table;
pub mod tail;
pub mod verify;
pub mod webhooks;

/// The async runtime for a command that talks over the network.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    anyhow::Context::context(tokio::runtime::Runtime::new(), "starting the async runtime")
}
