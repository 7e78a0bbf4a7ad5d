//! [`FaultyDisk`]: the log writer's `Disk` seam with faults on demand.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};
use std::sync::{Arc, Mutex, mpsc};

use rollcall::clock::FakeClock;
use rollcall::log::writer::{Disk, LogWriter, RealDisk};
use rollcall::metrics::Metrics;

/// Real writes, syncs and cuts, except those a test asks to fail: every
/// write and sync while `failing`, and the next `tear_writes` writes (cut
/// halfway), `fail_syncs` syncs and `fail_truncates` cuts.
#[derive(Default)]
pub struct FaultyDisk {
    pub failing: AtomicBool,
    pub tear_writes: AtomicU32,
    pub fail_syncs: AtomicU32,
    pub fail_truncates: AtomicU32,
    /// The next sync waits for a word: `true` fails it.
    held: Mutex<Option<mpsc::Receiver<bool>>>,
}

impl FaultyDisk {
    /// Holds the next sync until the answer is sent (`true`: it fails).
    pub fn hold_next_sync(&self) -> mpsc::Sender<bool> {
        let (answer, held) = mpsc::channel();
        *self.held.lock().unwrap() = Some(held);
        answer
    }

    /// No fault from here on.
    pub fn heal(&self) {
        self.failing.store(false, SeqCst);
        for counter in [&self.tear_writes, &self.fail_syncs, &self.fail_truncates] {
            counter.store(0, SeqCst);
        }
    }
}

/// Counts one fault down; whether there was one left.
fn take_one(counter: &AtomicU32) -> bool {
    counter
        .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

impl Disk for FaultyDisk {
    fn write(&self, file: &mut File, bytes: &[u8]) -> io::Result<()> {
        if self.failing.load(SeqCst) {
            return Err(io::Error::other("injected: the write failed"));
        }
        if take_one(&self.tear_writes) {
            file.write_all(&bytes[..bytes.len() / 2])?;
            return Err(io::Error::other("injected: the write stopped halfway"));
        }
        RealDisk.write(file, bytes)
    }

    fn sync(&self, file: &File) -> io::Result<()> {
        let held = self.held.lock().unwrap().take();
        if held.is_some_and(|held| held.recv().unwrap_or(false)) {
            return Err(io::Error::other("injected: fdatasync failed"));
        }
        if self.failing.load(SeqCst) || take_one(&self.fail_syncs) {
            return Err(io::Error::other("injected: fdatasync failed"));
        }
        RealDisk.sync(file)
    }

    fn truncate(&self, file: &File, len: u64) -> io::Result<()> {
        if take_one(&self.fail_truncates) {
            return Err(io::Error::other("injected: the cut failed"));
        }
        RealDisk.truncate(file, len)
    }
}

/// A log writer on `dir` over a [`FaultyDisk`] (no fault yet), its clock
/// at the tests' start.
pub fn faulty_writer(dir: &Path) -> (LogWriter, Arc<FaultyDisk>) {
    let disk = Arc::new(FaultyDisk::default());
    let writer = LogWriter::open_on(
        dir,
        Arc::new(FakeClock::new(crate::support::app::START)),
        Arc::new(Metrics::default()),
        disk.clone(),
    )
    .expect("opening the log writer");
    (writer, disk)
}
