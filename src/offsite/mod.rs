//! Off the machine: archives, digests and head checkpoints in an
//! S3-compatible bucket with Object Lock, where the logging host cannot
//! change them. [`settings`] says where the bucket is and who we are,
//! [`client`] talks to it, [`layout`] says which folder of it is this
//! receiver's (and finds every receiver's), [`ship`] uploads what is not
//! there yet,
//! [`checkpoint`] uploads the head, [`remote`] checks the local log
//! against the bucket and [`restore`] rebuilds a directory from it;
//! [`mirror`] keeps a copy of every receiver's log under a prefix for the
//! read commands' `--remote`;
//! [`versions`] reads every version of an object (the oldest is the
//! evidence) and [`lock`] what Object Lock keeps them.

pub mod checkpoint;
pub mod client;
pub mod layout;
pub mod lock;
pub mod mirror;
pub mod remote;
pub mod restore;
pub mod settings;
pub mod ship;
pub mod versions;
mod xml;

pub use client::Store;
pub use settings::{LockMode, S3Url, Settings};

use std::sync::Arc;
use std::time::Duration;

/// What `serve` does off the machine: ship after each nightly archival,
/// and checkpoint the head every `checkpoint_every`.
#[derive(Debug, Clone)]
pub struct Offsite {
    pub store: Arc<Store>,
    pub checkpoint_every: Duration,
}

/// `--checkpoint-every`: seconds, or a number with `s`, `m` or `h`.
pub fn parse_every(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => 0,
    };
    match number.parse::<u64>() {
        Ok(n) if n > 0 && scale > 0 => Ok(Duration::from_secs(n * scale)),
        _ => Err(format!(
            "{text:?} is not a period: give seconds, or e.g. 30s, 5m, 1h"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_period_is_seconds_or_has_a_unit() {
        assert_eq!(parse_every("300"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_every("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_every("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_every("1h"), Ok(Duration::from_secs(3600)));
        for bad in ["", "0", "5 minutes", "m", "-1"] {
            assert!(parse_every(bad).is_err(), "{bad}");
        }
    }
}
