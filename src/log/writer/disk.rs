//! The system calls that make a batch durable, behind a seam: [`RealDisk`]
//! in production, a failing one in tests.

use std::fs::File;
use std::io::{self, Write};

/// The two system calls that make a batch durable. [`RealDisk`] in
/// production; tests put in one that fails, to show that a failed write or
/// fdatasync is never acknowledged.
pub trait Disk: Send + Sync + 'static {
    fn write(&self, file: &mut File, bytes: &[u8]) -> io::Result<()>;
    fn sync(&self, file: &File) -> io::Result<()>;
    /// Cuts a failed batch off the file again.
    fn truncate(&self, file: &File, len: u64) -> io::Result<()> {
        file.set_len(len)
    }
}

impl std::fmt::Debug for dyn Disk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Disk")
    }
}

/// `write_all` and `fdatasync`.
#[derive(Debug)]
pub struct RealDisk;

impl Disk for RealDisk {
    fn write(&self, file: &mut File, bytes: &[u8]) -> io::Result<()> {
        file.write_all(bytes)
    }

    fn sync(&self, file: &File) -> io::Result<()> {
        file.sync_data()
    }
}
