//! Secrets (the webhook secret, the Webex token) in a type that never
//! prints them, and where the webhook secret comes from.

use std::fmt;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::log::files;

pub const SECRET_FILE: &str = ".secret";
const SECRET_MODE: u32 = 0o600;

/// A secret value. `Debug` and `Display` redact it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Self(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// `ROLLCALL_SECRET`, read from the environment only: a flag would show
/// the secret to everyone who can list processes.
pub fn from_env() -> Option<Secret> {
    std::env::var("ROLLCALL_SECRET")
        .ok()
        .filter(|v| !v.is_empty())
        .map(Secret)
}

/// Where the webhook secret came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Environment,
    File(PathBuf),
    Generated(PathBuf),
}

/// The webhook secret: `from_env` (`ROLLCALL_SECRET`) if set, else
/// `DIR/.secret`, else a new random one written there with mode 0600.
pub fn webhook_secret(
    dir: &Path,
    from_env: Option<Secret>,
) -> anyhow::Result<(Secret, SecretSource)> {
    secret_in(dir, SECRET_FILE, from_env)
}

/// A secret: `from_env` if set, else `DIR/{file}`, else a new random one
/// written there with mode 0600 (the webhook secret, the console password).
pub fn secret_in(
    dir: &Path,
    file: &str,
    from_env: Option<Secret>,
) -> anyhow::Result<(Secret, SecretSource)> {
    if let Some(found) = existing_in(dir, file, from_env)? {
        return Ok(found);
    }
    let path = dir.join(file);
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness for a secret: {e}"))?;
    let value = hex::encode(bytes);
    files::create_dir(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(SECRET_MODE)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(format!("{value}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .and_then(|()| files::sync_dir(dir))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok((Secret(value), SecretSource::Generated(path)))
}

/// The webhook secret if one exists: `from_env` if set, else `DIR/.secret`.
pub fn existing_secret(
    dir: &Path,
    from_env: Option<Secret>,
) -> anyhow::Result<Option<(Secret, SecretSource)>> {
    existing_in(dir, SECRET_FILE, from_env)
}

fn existing_in(
    dir: &Path,
    file: &str,
    from_env: Option<Secret>,
) -> anyhow::Result<Option<(Secret, SecretSource)>> {
    if let Some(secret) = from_env.filter(|s| !s.expose().is_empty()) {
        return Ok(Some((secret, SecretSource::Environment)));
    }
    let path = dir.join(file);
    let value = match std::fs::read_to_string(&path) {
        Ok(value) => value.trim().to_string(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    anyhow::ensure!(
        !value.is_empty(),
        "{} is empty: remove it to have a new one generated, or set it in the environment (ROLLCALL_SECRET, ROLLCALL_CONSOLE_PASSWORD)",
        path.display()
    );
    Ok(Some((Secret(value), SecretSource::File(path))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let secret = Secret::new("hunter2".into());
        assert!(!format!("{secret:?}").contains("hunter2"));
        assert!(!format!("{secret}").contains("hunter2"));
    }
}
