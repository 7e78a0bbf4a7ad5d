//! One module per subcommand; each turns its arguments into calls on the
//! library and returns the process exit code.

pub mod archive;
pub mod export;
pub mod serve;
pub mod simulate;
pub mod subscribe;
pub mod tail;
pub mod verify;
pub mod webhooks;
