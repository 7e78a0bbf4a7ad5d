//! Arguments that several commands share, so each is defined once: the
//! record filters of `export` and `tail`.

use crate::log::reader::{self, Filter};
use crate::log::record::Event;

/// The record filters `export` and `tail` share.
#[derive(Debug, Clone, clap::Args)]
pub struct FilterArgs {
    /// Only records received at or after T (YYYY-MM-DD or RFC 3339).
    #[arg(long, value_name = "T", env = "ROLLCALL_FROM", value_parser = parse_time)]
    pub from: Option<String>,
    /// Only records received before T (YYYY-MM-DD or RFC 3339).
    #[arg(long, value_name = "T", env = "ROLLCALL_TO", value_parser = parse_time)]
    pub to: Option<String>,
    /// Only records of this room id.
    #[arg(long, value_name = "ID", env = "ROLLCALL_ROOM")]
    pub room: Option<String>,
    /// Only records of this person (email, any case).
    #[arg(long, value_name = "EMAIL", env = "ROLLCALL_PERSON")]
    pub person: Option<String>,
    /// Only joins or only leaves.
    #[arg(long, value_enum, env = "ROLLCALL_EVENT")]
    pub event: Option<EventArg>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum EventArg {
    Joined,
    Left,
}

fn parse_time(text: &str) -> Result<String, reader::FilterError> {
    reader::parse_time(text)
}

impl FilterArgs {
    pub fn filter(self) -> anyhow::Result<Filter> {
        let filter = Filter {
            from: self.from,
            to: self.to,
            room: self.room,
            person: self.person,
            event: self.event.map(|e| match e {
                EventArg::Joined => Event::Joined,
                EventArg::Left => Event::Left,
            }),
        };
        filter.validate()?;
        Ok(filter)
    }
}
