//! HTTPS without a proxy (`serve --tls-cert FILE --tls-key FILE`): the
//! certificate chain and key read from PEM files and checked against each
//! other, and the rustls acceptor both listeners wrap their connections
//! in. The pair is held by a [`Resolver`] that hands each new handshake
//! the current one, so a reload ([`reload`]) swaps it for new connections
//! without touching those already open.
//!
//! rustls with the ring provider, the one reqwest already builds: TLS 1.3
//! and 1.2, no OpenSSL.

pub mod reload;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};
use tokio_rustls::TlsAcceptor;

/// The two files `--tls-cert` and `--tls-key` name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first (certbot's `fullchain.pem`).
    pub cert: PathBuf,
    /// Its private key (certbot's `privkey.pem`): PKCS#8, PKCS#1 or SEC1.
    pub key: PathBuf,
}

/// Why a pair could not be used; each names the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum PairError {
    #[error("reading {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not a PEM certificate chain: {source}", path.display())]
    CertPem { path: PathBuf, source: pem::Error },
    #[error("{} holds no certificate (no BEGIN CERTIFICATE block)", path.display())]
    NoCertificate { path: PathBuf },
    #[error("{} is not a PEM private key (PKCS#8, PKCS#1 or SEC1): {source}", path.display())]
    KeyPem { path: PathBuf, source: pem::Error },
    #[error("{} is not a private key rustls can use: {source}", path.display())]
    Key {
        path: PathBuf,
        source: rustls::Error,
    },
    #[error(
        "the key in {} does not match the certificate in {} (is one of them from another pair, or half renewed?)",
        key.display(),
        cert.display()
    )]
    Mismatch { cert: PathBuf, key: PathBuf },
    #[error("checking the key in {} against {}: {source}", key.display(), cert.display())]
    Check {
        cert: PathBuf,
        key: PathBuf,
        source: rustls::Error,
    },
}

/// The crypto provider for every TLS listener: ring, as reqwest's client.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A pair read from its files and checked.
pub struct Pair {
    pub key: Arc<CertifiedKey>,
}

/// SHA-256 of a chain's leaf certificate, hex: what `openssl x509
/// -fingerprint -sha256` shows, without the colons.
pub fn fingerprint(key: &CertifiedKey) -> String {
    key.cert
        .first()
        .map(|leaf| hex::encode(Sha256::digest(leaf)))
        .unwrap_or_default()
}

impl Pair {
    /// Reads and checks the pair: both files parse, and the key is the
    /// certificate's.
    pub fn load(files: &TlsFiles) -> Result<Self, PairError> {
        let provider = provider();
        let chain = read_chain(&files.cert)?;
        let key = read_key(&files.key)?;
        let signing = provider
            .key_provider
            .load_private_key(key)
            .map_err(|source| PairError::Key {
                path: files.key.clone(),
                source,
            })?;
        let certified = CertifiedKey::new(chain, signing);
        match certified.keys_match() {
            Ok(()) => {}
            Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
                return Err(PairError::Mismatch {
                    cert: files.cert.clone(),
                    key: files.key.clone(),
                });
            }
            // A key type whose public half rustls cannot derive: the
            // handshake is the test.
            Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
            Err(source) => {
                return Err(PairError::Check {
                    cert: files.cert.clone(),
                    key: files.key.clone(),
                    source,
                });
            }
        }
        Ok(Self {
            key: Arc::new(certified),
        })
    }
}

fn read(path: &Path) -> Result<Vec<u8>, PairError> {
    std::fs::read(path).map_err(|source| PairError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, PairError> {
    let chain = CertificateDer::pem_slice_iter(&read(path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| PairError::CertPem {
            path: path.to_path_buf(),
            source,
        })?;
    if chain.is_empty() {
        return Err(PairError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, PairError> {
    PrivateKeyDer::from_pem_slice(&read(path)?).map_err(|source| PairError::KeyPem {
        path: path.to_path_buf(),
        source,
    })
}

/// Hands each handshake the pair in force when it starts. A connection
/// keeps the pair it was made with for its whole life, so a swap reaches
/// new connections only.
#[derive(Debug)]
pub struct Resolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl Resolver {
    fn new(key: Arc<CertifiedKey>) -> Self {
        Self {
            current: RwLock::new(key),
        }
    }

    fn current(&self) -> Arc<CertifiedKey> {
        // A poisoned lock still holds a whole Arc: a panic elsewhere
        // cannot leave half a pair.
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn swap(&self, key: Arc<CertifiedKey>) {
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = key;
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// TLS for serve's listeners: the files, the pair in force, and the
/// acceptor built on it (one for both listeners, so a reload reaches
/// both).
#[derive(Clone)]
pub struct Tls {
    files: TlsFiles,
    resolver: Arc<Resolver>,
    acceptor: TlsAcceptor,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("files", &self.files).finish()
    }
}

impl Tls {
    /// Reads and checks the pair, and builds the acceptor: a start
    /// refuses a pair that would fail every handshake.
    pub fn load(files: TlsFiles) -> Result<Self, PairError> {
        let pair = Pair::load(&files)?;
        let resolver = Arc::new(Resolver::new(pair.key));
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .expect("ring supports TLS 1.2 and 1.3")
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        // The listeners speak HTTP/1.1 only.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            files,
            resolver,
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }

    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    pub fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.clone()
    }

    /// The SHA-256 fingerprint of the leaf certificate in force.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.resolver.current())
    }

    /// Reads the files again and, if they hold a good pair other than the
    /// one in force, swaps it in for new connections. On any error the
    /// pair in force stays. Called from one task only, so two reloads
    /// never race.
    pub fn reload(&self) -> Result<Reloaded, PairError> {
        let pair = Pair::load(&self.files)?;
        let current = self.resolver.current();
        if current.cert == pair.key.cert {
            return Ok(Reloaded::Unchanged);
        }
        self.resolver.swap(pair.key);
        Ok(Reloaded::Swapped {
            previous: fingerprint(&current),
        })
    }
}

/// What a [`Tls::reload`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Reloaded {
    /// The files hold the pair already in force.
    Unchanged,
    /// A new pair is in force; `previous` is the old leaf's fingerprint.
    Swapped { previous: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two self-signed pairs written to `dir`: (cert, key) of each.
    fn two_pairs(dir: &Path) -> [(PathBuf, PathBuf); 2] {
        ["one", "two"].map(|name| {
            let made = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
            let files = (
                dir.join(format!("{name}.crt")),
                dir.join(format!("{name}.key")),
            );
            std::fs::write(&files.0, made.cert.pem()).unwrap();
            std::fs::write(&files.1, made.signing_key.serialize_pem()).unwrap();
            files
        })
    }

    #[test]
    fn a_reload_swaps_only_a_good_new_pair_and_a_bad_one_leaves_the_old_in_force() {
        let temp = tempfile::tempdir().unwrap();
        let [(one_cert, one_key), (two_cert, two_key)] = two_pairs(temp.path());
        let (cert, key) = (temp.path().join("cert.pem"), temp.path().join("key.pem"));
        std::fs::copy(&one_cert, &cert).unwrap();
        std::fs::copy(&one_key, &key).unwrap();
        let tls = Tls::load(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        })
        .unwrap();
        let first = tls.fingerprint();
        assert_eq!(tls.reload().unwrap(), Reloaded::Unchanged);

        std::fs::copy(&two_cert, &cert).unwrap();
        let error = tls.reload().unwrap_err();
        assert!(matches!(error, PairError::Mismatch { .. }), "{error}");
        assert_eq!(tls.fingerprint(), first, "the old pair stays");

        std::fs::copy(&two_key, &key).unwrap();
        assert_eq!(
            tls.reload().unwrap(),
            Reloaded::Swapped {
                previous: first.clone()
            }
        );
        assert_ne!(tls.fingerprint(), first);
    }

    #[test]
    fn each_unusable_file_is_named() {
        let temp = tempfile::tempdir().unwrap();
        let [(cert, key), _] = two_pairs(temp.path());
        let empty = temp.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let load = |cert: &Path, key: &Path| {
            Pair::load(&TlsFiles {
                cert: cert.to_path_buf(),
                key: key.to_path_buf(),
            })
            .err()
            .map(|error| error.to_string())
            .unwrap_or_default()
        };
        assert!(load(&empty, &key).contains("empty.pem holds no certificate"));
        assert!(load(&cert, &empty).contains("empty.pem is not a PEM private key"));
        // A certificate given as the key: no key in it.
        assert!(load(&cert, &cert).contains("one.crt is not a PEM private key"));
        assert!(load(&temp.path().join("gone.pem"), &key).contains("reading "));
    }
}
