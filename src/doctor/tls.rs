//! The check on the TLS pair `serve --tls-cert/--tls-key` serves: both
//! files read, the key is the certificate's, and how long it is valid.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::Check;
use crate::tls::{Pair, PairError, TlsFiles};

/// Under this many days left, renew.
pub const RENEW_WITHIN_DAYS: i64 = 14;
const CHECK: &str = "tls";

/// The `tls` check of the pair `files` names at `now`.
pub fn check(files: &Result<Option<TlsFiles>, String>, now: OffsetDateTime) -> Check {
    match files {
        Ok(None) => Check::skipped(
            CHECK,
            "no --tls-cert/--tls-key: serve speaks plain HTTP (behind a TLS reverse proxy)",
        ),
        Err(why) => Check::fail(
            CHECK,
            why.clone(),
            "give both (ROLLCALL_TLS_CERT and ROLLCALL_TLS_KEY)",
        ),
        Ok(Some(files)) => match examine(files, now) {
            Ok(check) => check,
            Err((found, fix)) => Check::fail(CHECK, found, fix),
        },
    }
}

fn examine(files: &TlsFiles, now: OffsetDateTime) -> Result<Check, (String, String)> {
    let pem_fix = |what: &str| format!("give {what} a PEM file (as certbot and most CAs write)");
    // Read and matched as serve reads them at start and on a reload.
    let pair = Pair::load(files).map_err(|error| {
        let fix = match &error {
            PairError::Read { path, .. } if *path == files.key => pem_fix("--tls-key"),
            PairError::KeyPem { .. } | PairError::Key { .. } => pem_fix("--tls-key"),
            PairError::Mismatch { .. } | PairError::Check { .. } => {
                "give the key the certificate was issued for".to_string()
            }
            PairError::Read { .. }
            | PairError::CertPem { .. }
            | PairError::NoCertificate { .. } => pem_fix("--tls-cert"),
        };
        (error.to_string(), fix)
    })?;
    let leaf = pair
        .key
        .cert
        .first()
        .map(|leaf| leaf.as_ref())
        .unwrap_or_default();
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf).map_err(|e| {
        (
            format!("{}: not an X.509 certificate: {e}", files.cert.display()),
            pem_fix("--tls-cert"),
        )
    })?;
    let subject = parsed.subject().to_string();
    let validity = parsed.validity();
    let (not_before, not_after) = (
        validity.not_before.to_datetime(),
        validity.not_after.to_datetime(),
    );
    let shown = |at: OffsetDateTime| at.format(&Rfc3339).unwrap_or_else(|_| at.to_string());
    let renew = "renew it (serve reloads the pair when the files change, or on SIGHUP)";
    if now < not_before {
        return Err((
            format!("{subject}: not valid before {}", shown(not_before)),
            "check this host's clock, or give a certificate valid now".to_string(),
        ));
    }
    if now >= not_after {
        return Err((
            format!("{subject}: expired on {}", shown(not_after)),
            renew.to_string(),
        ));
    }
    let days = (not_after - now).whole_days();
    let found = format!(
        "{subject}: key matches, valid until {} ({days} days)",
        shown(not_after)
    );
    Ok(if days < RENEW_WITHIN_DAYS {
        Check::warn(CHECK, found, renew)
    } else {
        Check::ok(CHECK, found)
    })
}
