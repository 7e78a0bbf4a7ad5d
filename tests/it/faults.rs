//! Faults under the server: a full disk, a failed fdatasync, a torn
//! write. No 2xx without a record, and
//! recovery without a restart once the fault is gone.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use rollcall::clock::FakeClock;
use rollcall::log::writer::{AppendError, Appended};

use crate::support::app::{
    START, TestApp, assert_chain_whole, json_of, membership, membership_record,
};
use crate::support::disk::faulty_writer;

/// A mount made for one test, undone when dropped.
struct Mount {
    at: PathBuf,
}

impl Mount {
    /// `mount ARGS AT`, then each of `then` (more `mount` calls on AT);
    /// `None`, with the reason printed, where this process may not mount.
    fn new(args: &[&str], at: &Path, then: &[&[&str]]) -> Option<Self> {
        let mut mount = None;
        for args in std::iter::once(args).chain(then.iter().copied()) {
            let done = Command::new("mount").args(args).arg(at).output();
            match done {
                Ok(out) if out.status.success() => {
                    mount.get_or_insert_with(|| Self {
                        at: at.to_path_buf(),
                    });
                }
                Ok(out) => {
                    let why = String::from_utf8_lossy(&out.stderr);
                    eprintln!("skipped: cannot mount {args:?} here ({})", why.trim());
                    return None;
                }
                Err(e) => {
                    eprintln!("skipped: cannot run mount ({e})");
                    return None;
                }
            }
        }
        mount
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.at).status();
    }
}

/// A 1 MiB tmpfs under a temp dir.
fn small_disk(temp: &tempfile::TempDir) -> Option<(Mount, PathBuf)> {
    let disk = temp.path().join("disk");
    std::fs::create_dir(&disk).unwrap();
    let mount = Mount::new(&["-t", "tmpfs", "-o", "size=1m", "tmpfs"], &disk, &[])?;
    Some((mount, disk))
}

/// The i-th distinct join.
fn body(i: usize) -> Vec<u8> {
    membership(
        "created",
        &format!("m{i}"),
        "room",
        "2026-11-27T01:00:00.000Z",
    )
}

/// Fills what is left of the file system holding `dir` with one file,
/// `name`.
fn fill(dir: &Path, name: &str) -> PathBuf {
    let filler = dir.join(name);
    let mut file = std::fs::File::create(&filler).unwrap();
    let block = vec![0u8; 4096];
    while file.write_all(&block).is_ok() {}
    let _ = file.sync_all();
    filler
}

#[tokio::test]
async fn a_full_disk_gets_503_never_a_false_ack_and_recovers_when_space_returns() {
    let temp = tempfile::tempdir().unwrap();
    let Some((_mount, disk)) = small_disk(&temp) else {
        return;
    };
    let dir = disk.join("log");
    let app = TestApp::spawn_in(&dir, Arc::new(FakeClock::new(START)), |_| {}).await;
    for i in 0..5 {
        let (status, _) = json_of(app.deliver("default", &body(i)).await).await;
        assert_eq!(status, 200);
    }

    let filler = fill(&disk, "filler");
    let mut refused = 0;
    for i in 5..25 {
        let (status, answer) = json_of(app.deliver("default", &body(i)).await).await;
        match status {
            200 => assert_eq!(answer["status"], "recorded"),
            503 => {
                refused += 1;
                assert!(
                    answer["error"].as_str().unwrap().contains("durable"),
                    "{answer}"
                );
            }
            other => panic!("unexpected {other}: {answer}"),
        }
    }
    assert!(refused > 0, "a full disk must refuse deliveries");
    // What the refused appends gave back (their torn lines cut off, the
    // index's writes) is taken again, so the health check finds the disk
    // as full as the deliveries did.
    let more = fill(&disk, "filler-2");
    assert_eq!(app.get("/healthz").await.0, 503);
    // Every acknowledged record, and nothing else, is in a whole chain.
    // (and the server's own start record).
    let on_disk = assert_chain_whole(&dir).len();
    assert_eq!(on_disk, 1 + 25 - refused);

    std::fs::remove_file(filler).unwrap();
    std::fs::remove_file(more).unwrap();
    let (status, answer) = json_of(app.deliver("default", &body(99)).await).await;
    assert_eq!((status, &answer["status"]), (200, &"recorded".into()));
    assert_eq!(answer["seq"], on_disk as u64 + 1);
    assert_eq!(app.get("/healthz").await.0, 200);
    assert_eq!(assert_chain_whole(&dir).len(), on_disk + 1);
    app.stop().await;
}

#[tokio::test]
async fn a_failed_fdatasync_or_a_torn_write_is_never_acknowledged_and_leaves_nothing_behind() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("log");
    let (writer, disk) = faulty_writer(&dir);
    assert_eq!(
        writer.append(membership_record("a")).await.unwrap(),
        Appended::Recorded(1)
    );
    let whole = std::fs::read(dir.join("2026-11-27.jsonl")).unwrap();

    disk.fail_syncs.store(1, Ordering::SeqCst);
    let failed = writer.append(membership_record("b")).await;
    assert!(
        matches!(failed, Err(AppendError::Io(ref e)) if e.contains("fdatasync failed")),
        "{failed:?}"
    );
    assert!(!writer.is_healthy());
    assert_eq!(std::fs::read(dir.join("2026-11-27.jsonl")).unwrap(), whole);

    disk.tear_writes.store(1, Ordering::SeqCst);
    let failed = writer.append(membership_record("c")).await;
    assert!(
        matches!(failed, Err(AppendError::Io(ref e)) if e.contains("halfway")),
        "{failed:?}"
    );
    assert_eq!(std::fs::read(dir.join("2026-11-27.jsonl")).unwrap(), whole);

    // The retries Webex sends once the disk is fine again are recorded,
    // with the next seq and an unbroken chain.
    assert_eq!(
        writer.append(membership_record("b")).await.unwrap(),
        Appended::Recorded(2)
    );
    assert_eq!(
        writer.append(membership_record("c")).await.unwrap(),
        Appended::Recorded(3)
    );
    assert!(writer.is_healthy());
    drop(writer);
    assert_eq!(assert_chain_whole(&dir), [1, 2, 3]);
}

#[tokio::test]
async fn a_log_directory_turned_read_only_gets_503_at_the_next_new_file_and_recovers() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("log");
    let clock = Arc::new(FakeClock::new(START));
    let app = TestApp::spawn_in(&dir, clock.clone(), |_| {}).await;
    let (status, _) = json_of(app.deliver("default", &body(0)).await).await;
    assert_eq!(status, 200);

    // Read-only from here on (a read-only bind mount over the directory).
    let Some(read_only) = Mount::new(
        &["--bind", dir.to_str().unwrap()],
        &dir,
        &[&["-o", "remount,ro,bind"]],
    ) else {
        return;
    };
    // The open day file still takes records, but health warns at once:
    // no new day file could be made.
    assert_eq!(app.get("/healthz").await.0, 503);
    let (status, _) = json_of(app.deliver("default", &body(1)).await).await;
    assert_eq!(status, 200);
    clock.advance(time::Duration::days(1));
    let (status, answer) = json_of(app.deliver("default", &body(2)).await).await;
    assert_eq!(status, 503, "{answer}");

    drop(read_only);
    let (status, answer) = json_of(app.deliver("default", &body(2)).await).await;
    // Seq 1 is the server's start record.
    assert_eq!((status, &answer["seq"]), (200, &4.into()));
    assert_eq!(app.get("/healthz").await.0, 200);
    assert_eq!(assert_chain_whole(&dir), [1, 2, 3, 4]);
    app.stop().await;
}
