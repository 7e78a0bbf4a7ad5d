//! Who may read the audit log: an existing log directory is brought to
//! the modes the README promises, never loosened.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::support::bin::ServerProcess;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// Creates `dir` with `mode`, starts and stops `serve` in it, and returns
/// the directory's mode afterwards and what the server said.
fn serve_once_in_dir_with_mode(dir: &Path, mode_before: u32) -> (u32, String) {
    std::fs::create_dir(dir).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode_before)).unwrap();
    assert_eq!(mode(dir), mode_before);
    let server = ServerProcess::start(dir, |_| {});
    let stderr = server.stderr();
    assert!(server.terminate().success(), "{stderr}");
    (mode(dir), stderr)
}

#[test]
fn serve_tightens_a_log_directory_checked_out_as_0755_to_0750_and_says_so_once() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("audit-logs");

    let (after, stderr) = serve_once_in_dir_with_mode(&dir, 0o755);

    assert_eq!(after, 0o750, "mode {after:o}\n{stderr}");
    assert_eq!(stderr.matches("tightened").count(), 1, "{stderr}");
    assert!(stderr.contains(&dir.display().to_string()), "{stderr}");
}

#[test]
fn serve_leaves_a_stricter_log_directory_as_it_is() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("audit-logs");

    let (after, stderr) = serve_once_in_dir_with_mode(&dir, 0o700);

    assert_eq!(after, 0o700, "mode {after:o}\n{stderr}");
    assert!(!stderr.contains("tightened"), "{stderr}");
}
