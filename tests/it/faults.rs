//! Faults under the server: a full disk. No 2xx without a record, and
//! recovery without a restart once the fault is gone.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use rollcall::clock::FakeClock;

use crate::support::app::{START, TestApp, assert_chain_whole, json_of, membership};

/// A small tmpfs mounted for one test, unmounted when dropped.
struct SmallDisk {
    mount: PathBuf,
    _temp: tempfile::TempDir,
}

impl SmallDisk {
    /// `None` (with the reason printed) where this process may not mount.
    fn mount(size: &str) -> Option<Self> {
        let temp = tempfile::tempdir().unwrap();
        let mount = temp.path().join("disk");
        std::fs::create_dir(&mount).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&mount)
            .output();
        match mounted {
            Ok(out) if out.status.success() => Some(Self { mount, _temp: temp }),
            Ok(out) => {
                eprintln!(
                    "skipped: cannot mount a tmpfs here ({})",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("skipped: cannot run mount ({e})");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        &self.mount
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
    }
}

/// Fills what is left of the file system holding `dir` with one file.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let filler = dir.join("filler");
    let mut file = std::fs::File::create(&filler).unwrap();
    let block = vec![0u8; 4096];
    while file.write_all(&block).is_ok() {}
    let _ = file.sync_all();
    filler
}

#[tokio::test]
async fn a_full_disk_gets_503_never_a_false_ack_and_recovers_when_space_returns() {
    let Some(disk) = SmallDisk::mount("1m") else {
        return;
    };
    let dir = disk.path().join("log");
    let app = TestApp::spawn_in(&dir, Arc::new(FakeClock::new(START)), |_| {}).await;
    let body = |i: usize| {
        membership(
            "created",
            &format!("m{i}"),
            "room",
            "2026-11-27T01:00:00.000Z",
        )
    };
    for i in 0..5 {
        let (status, _) = json_of(app.deliver("default", &body(i)).await).await;
        assert_eq!(status, 200);
    }

    let filler = fill(disk.path());
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
    let health = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 503);
    // Every acknowledged record, and nothing else, is in a whole chain.
    let on_disk = assert_chain_whole(&dir).len();
    assert_eq!(on_disk, 25 - refused);

    std::fs::remove_file(filler).unwrap();
    let (status, answer) = json_of(app.deliver("default", &body(99)).await).await;
    assert_eq!((status, &answer["status"]), (200, &"recorded".into()));
    assert_eq!(answer["seq"], on_disk as u64 + 1);
    let health = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(assert_chain_whole(&dir).len(), on_disk + 1);
    app.stop().await;
}
