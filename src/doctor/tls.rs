//! The check on the TLS pair `serve --tls-cert/--tls-key` serves: both
//! files read, the key is the certificate's, and how long it is valid.

use std::path::Path;

use rustls::crypto::ring::default_provider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::Check;

/// Under this many days left, renew.
pub const RENEW_WITHIN_DAYS: i64 = 14;
const CHECK: &str = "tls";

/// The `tls` check of `cert` and `key` at `now`.
pub fn check(cert: Option<&Path>, key: Option<&Path>, now: OffsetDateTime) -> Check {
    let (cert, key) = match (cert, key) {
        (None, None) => {
            return Check::skipped(
                CHECK,
                "no --tls-cert/--tls-key: serve speaks plain HTTP (behind a TLS reverse proxy)",
            );
        }
        (Some(cert), Some(key)) => (cert, key),
        (Some(_), None) | (None, Some(_)) => {
            return Check::fail(
                CHECK,
                "only one of --tls-cert and --tls-key is given",
                "give both (ROLLCALL_TLS_CERT and ROLLCALL_TLS_KEY)",
            );
        }
    };
    match examine(cert, key, now) {
        Ok(check) => check,
        Err((found, fix)) => Check::fail(CHECK, found, fix),
    }
}

fn examine(cert: &Path, key: &Path, now: OffsetDateTime) -> Result<Check, (String, String)> {
    let pem_fix = |what: &str| format!("give {what} a PEM file (as certbot and most CAs write)");
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .map_err(|e| (format!("{}: {e}", cert.display()), pem_fix("--tls-cert")))?;
    if chain.is_empty() {
        return Err((
            format!("{}: no CERTIFICATE in it", cert.display()),
            pem_fix("--tls-cert"),
        ));
    }
    let private = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| (format!("{}: {e}", key.display()), pem_fix("--tls-key")))?;
    CertifiedKey::from_der(chain.clone(), private, &default_provider()).map_err(|e| {
        let found = match e {
            rustls::Error::InconsistentKeys(_) => {
                format!("{} is not the key of {}", key.display(), cert.display())
            }
            e => format!("{}: not a usable key: {e}", key.display()),
        };
        (
            found,
            "give the key the certificate was issued for".to_string(),
        )
    })?;
    let (_, parsed) = x509_parser::parse_x509_certificate(&chain[0]).map_err(|e| {
        (
            format!("{}: not an X.509 certificate: {e}", cert.display()),
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
