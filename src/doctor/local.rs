//! The checks on this host's side of the log: the directory (there, its
//! mode and owner, free space), whether a `serve` holds its lock, the
//! webhook secret and the receiver name `serve` would use.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use super::Check;
use crate::log::files;
use crate::receiver::{self, Name};
use crate::secret::{self, Secret, SecretSource};

/// Below this, a full disk is near: `serve` answers 503 once it is.
const LOW_SPACE: u64 = 1 << 30;
/// Below this, it is as good as full.
const NO_SPACE: u64 = 64 << 20;

/// `directory`, `free space` and `lock`.
pub fn directory(dir: &Path) -> Vec<Check> {
    let shown = dir.display();
    let meta = match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => meta,
        Ok(_) => {
            return with_rest_skipped(Check::fail(
                "directory",
                format!("{shown} is not a directory"),
                "give --dir (ROLLCALL_DIR) the log directory",
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return with_rest_skipped(Check::fail(
                "directory",
                format!("{shown} does not exist"),
                "check --dir (ROLLCALL_DIR); `rollcall serve` creates it (mode 0750) at its first start",
            ));
        }
        Err(e) => {
            return with_rest_skipped(Check::fail(
                "directory",
                format!("{shown} cannot be read: {e}"),
                "run doctor as the user serve runs as",
            ));
        }
    };
    vec![mode_and_owner(dir, &meta), free_space(dir), lock(dir)]
}

fn with_rest_skipped(directory: Check) -> Vec<Check> {
    vec![
        directory,
        Check::skipped("free space", "no directory"),
        Check::skipped("lock", "no directory"),
    ]
}

fn mode_and_owner(dir: &Path, meta: &std::fs::Metadata) -> Check {
    let shown = dir.display();
    let mode = meta.permissions().mode() & 0o7777;
    // SAFETY: geteuid takes nothing and cannot fail.
    let me = unsafe { libc::geteuid() };
    let owner = meta.uid();
    let found = format!("{shown}: mode {mode:04o}, owner uid {owner}");
    if mode & 0o200 == 0 {
        return Check::fail(
            "directory",
            format!("{found}, not writable by its owner"),
            format!("chmod u+rwx {shown}"),
        );
    }
    if me != 0 && me != owner {
        return Check::warn(
            "directory",
            format!("{found}, not this user's (uid {me})"),
            "run serve (and doctor) as the directory's owner, or chown it to the user serve runs as",
        );
    }
    if mode & 0o007 != 0 {
        return Check::warn(
            "directory",
            format!("{found}: open to every user"),
            format!(
                "chmod o-rwx {shown} (serve tightens it to 0750 at start when it owns it): audit data is for its owner and group only"
            ),
        );
    }
    Check::ok("directory", found)
}

fn free_space(dir: &Path) -> Check {
    let free = match available_bytes(dir) {
        Ok(free) => free,
        Err(e) => {
            return Check::warn(
                "free space",
                format!("could not be read: {e}"),
                format!("check it with `df -h {}`", dir.display()),
            );
        }
    };
    let found = format!("{} free", size(free));
    let fix = "free space on that file system or move the directory: serve answers 503 (and Webex loses deliveries) once the disk is full";
    if free < NO_SPACE {
        Check::fail("free space", found, fix)
    } else if free < LOW_SPACE {
        Check::warn("free space", found, fix)
    } else {
        Check::ok("free space", found)
    }
}

/// The bytes an unprivileged writer may still use on `dir`'s file system.
fn available_bytes(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: an all-zero statvfs is a valid value of the plain C struct.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is NUL-terminated and statvfs writes only into `stat`.
    if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

fn size(bytes: u64) -> String {
    const GIB: u64 = 1 << 30;
    if bytes >= GIB {
        format!("{:.1} GiB", bytes as f64 / GIB as f64)
    } else {
        format!("{} MiB", bytes >> 20)
    }
}

/// Whether a `serve` runs on the directory: information, never a failure.
fn lock(dir: &Path) -> Check {
    let path = dir.join(files::LOCK_FILE);
    match files::lock_held(dir) {
        Ok(true) => Check::ok(
            "lock",
            format!("a serve holds {}: it is running", path.display()),
        ),
        Ok(false) => Check::ok(
            "lock",
            format!(
                "no serve holds {}: none is running on this directory",
                path.display()
            ),
        ),
        Err(e) => Check::warn(
            "lock",
            format!("{} could not be read: {e}", path.display()),
            "run doctor as the user serve runs as",
        ),
    }
}

/// `secret`, and the secret itself for the webhook checks.
pub fn secret(dir: &Path, from_env: Option<Secret>) -> (Check, Option<Secret>) {
    match secret::existing_secret(dir, from_env) {
        Ok(Some((secret, source))) => {
            let check = match source {
                SecretSource::Environment => Check::ok("secret", "from ROLLCALL_SECRET"),
                SecretSource::File(path) | SecretSource::Generated(path) => secret_file(&path),
            };
            (check, Some(secret))
        }
        Ok(None) => (
            Check::warn(
                "secret",
                format!(
                    "none yet: ROLLCALL_SECRET is not set and there is no {}",
                    dir.join(secret::SECRET_FILE).display()
                ),
                "start `rollcall serve` once (it generates one, mode 0600) or set ROLLCALL_SECRET, then run `rollcall subscribe`",
            ),
            None,
        ),
        Err(e) => (
            Check::fail(
                "secret",
                format!("{e:#}"),
                "an empty file: remove it (serve generates a new one; then run `rollcall subscribe`) or set ROLLCALL_SECRET; an unreadable one: run doctor as the user serve runs as",
            ),
            None,
        ),
    }
}

/// `receiver`, and the name itself for the webhook checks: `given`
/// (`--receiver`), else the one `DIR/.receiver` keeps, else the host name,
/// as `serve` resolves it.
pub fn receiver(dir: &Path, given: Option<&Name>) -> (Check, Option<Name>) {
    let kept = dir.join(receiver::RECEIVER_FILE);
    match receiver::resolve(dir, given) {
        Ok(name) => {
            let from = if given.is_some() {
                "from --receiver (ROLLCALL_RECEIVER)".to_string()
            } else if kept.exists() {
                format!("from {}", kept.display())
            } else {
                "the host name: serve keeps it in DIR/.receiver at its first start".to_string()
            };
            (Check::ok("receiver", format!("{name}, {from}")), Some(name))
        }
        Err(e) => {
            // A kept name that cannot be read is the file's to mend; a
            // readable one that differs, the option's.
            let fix = if receiver::read(dir).is_err() {
                format!(
                    "write this receiver's name (the one its receiver_started records carry) into {}",
                    kept.display()
                )
            } else {
                format!(
                    "give --receiver (ROLLCALL_RECEIVER) the name {} holds, or none",
                    kept.display()
                )
            };
            (Check::fail("receiver", format!("{e:#}"), fix), None)
        }
    }
}

fn secret_file(path: &Path) -> Check {
    match std::fs::metadata(path).map(|m| m.permissions().mode() & 0o777) {
        Ok(mode) if mode & 0o077 != 0 => Check::warn(
            "secret",
            format!(
                "from {}, mode {mode:04o}: others can read it",
                path.display()
            ),
            format!(
                "chmod 600 {}: whoever reads it can sign deliveries",
                path.display()
            ),
        ),
        _ => Check::ok("secret", format!("from {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    #[test]
    fn a_receiver_name_that_cannot_be_read_is_mended_in_its_file_and_a_different_one_by_the_option()
    {
        let temp = tempfile::tempdir().unwrap();
        let kept = temp.path().join(receiver::RECEIVER_FILE);

        std::fs::write(&kept, "not a name!\n").unwrap();
        let (unreadable, name) = receiver(temp.path(), None);
        assert_eq!((unreadable.status, name), (Status::Fail, None));
        let fix = unreadable.fix.unwrap();
        assert!(fix.starts_with("write this receiver's name"), "{fix}");

        std::fs::remove_file(&kept).unwrap();
        receiver::remember(temp.path(), &"site-a".parse().unwrap()).unwrap();
        let (other, name) = receiver(temp.path(), Some(&"site-b".parse().unwrap()));
        assert_eq!((other.status, name), (Status::Fail, None));
        let fix = other.fix.unwrap();
        assert!(fix.starts_with("give --receiver"), "{fix}");
    }
}
