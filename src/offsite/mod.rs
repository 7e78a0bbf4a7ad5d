//! Off the machine: archives, digests and head checkpoints in an
//! S3-compatible bucket with Object Lock, where the logging host cannot
//! change them. [`settings`] says where the bucket is and who we are,
//! [`client`] talks to it, [`ship`] uploads what is not there yet,
//! [`checkpoint`] uploads the head, [`remote`] checks the local log
//! against the bucket and [`restore`] rebuilds a directory from it.

pub mod checkpoint;
pub mod client;
pub mod remote;
pub mod restore;
pub mod settings;
pub mod ship;

pub use client::Store;
pub use settings::{LockMode, S3Url, Settings};
