//! Talking back to Webex: the API client and the room-title cache.

pub mod client;
pub mod titles;
