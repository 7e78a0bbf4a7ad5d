//! `X-Spark-Signature`: lowercase hex HMAC-SHA1 of the raw request body,
//! keyed by the webhook secret.

use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::secret::Secret;

type HmacSha1 = Hmac<Sha1>;

/// The header value Webex would send for `body`.
pub fn sign(secret: &Secret, body: &[u8]) -> String {
    let mut mac = mac(secret);
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Whether `header` (the raw header bytes: anything not hex is simply
/// wrong) is the signature of `body`, compared in constant time.
pub fn verify(secret: &Secret, body: &[u8], header: &[u8]) -> bool {
    let Ok(expected) = hex::decode(header.trim_ascii()) else {
        return false;
    };
    let mut mac = mac(secret);
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

fn mac(secret: &Secret) -> HmacSha1 {
    HmacSha1::new_from_slice(secret.expose().as_bytes()).expect("HMAC takes keys of any length")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_and_a_changed_body_does_not() {
        let secret = Secret::new("s3cret".into());
        let sig = sign(&secret, b"{\"a\":1}");
        assert_eq!(sig.len(), 40);
        assert!(verify(&secret, b"{\"a\":1}", sig.as_bytes()));
        assert!(verify(&secret, b"{\"a\":1}", sig.to_uppercase().as_bytes()));
        assert!(!verify(&secret, b"{\"a\":2}", sig.as_bytes()));
        assert!(!verify(&secret, b"{\"a\":1}", &sig.as_bytes()[..38]));
        assert!(!verify(&secret, b"{\"a\":1}", b"not hex"));
        assert!(!verify(&secret, b"{\"a\":1}", b"caf\xe9"));
    }

    #[test]
    fn matches_a_known_hmac_sha1() {
        // RFC 2202 test case 2.
        let secret = Secret::new("Jefe".into());
        assert_eq!(
            sign(&secret, b"what do ya want for nothing?"),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
    }
}
