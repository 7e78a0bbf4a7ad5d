//! Certificates for the TLS tests, made fresh by each test with rcgen: a
//! test CA, pairs it issues for 127.0.0.1, and the clients that trust it
//! (curl with `--cacert`, and reqwest).

use std::path::{Path, PathBuf};
use std::process::Command;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};

use super::bin;

/// A CA whose certificate is written to `ca.pem` in the directory given.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    pub pem_file: PathBuf,
}

/// A certificate for 127.0.0.1 and its key, as PEM, with the certificate's
/// DER to compare with what a server presents.
pub struct Pair {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: Vec<u8>,
}

impl TestCa {
    pub fn new(dir: &Path) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "rollcall test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let pem_file = dir.join("ca.pem");
        std::fs::write(&pem_file, issuer.pem()).unwrap();
        Self { issuer, pem_file }
    }

    /// A pair for 127.0.0.1 and localhost whose subject is `CN=name`.
    pub fn issue(&self, name: &str) -> Pair {
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Pair {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }

    /// A reqwest client that trusts this CA, keeps connections alive, and
    /// shows each answer's certificate ([`served_der`]); follows no
    /// redirects, so a test sees them.
    pub fn client(&self) -> reqwest::Client {
        let ca = std::fs::read(&self.pem_file).unwrap();
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
            .tls_info(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    /// `curl --cacert ca.pem URL`: the status and the subject of the
    /// certificate the server presented (e.g. `CN=first`).
    pub fn curl(&self, url: &str) -> (u16, String) {
        let run = bin::run(
            Command::new("curl")
                .arg("--cacert")
                .arg(&self.pem_file)
                .args(["--silent", "--show-error", "--verbose"])
                .args(["--max-time", "30"])
                .args(["--write-out", "\n%{http_code}", url]),
        )
        .success();
        let subject = run
            .stderr
            .lines()
            .find_map(|line| {
                line.trim_start_matches(['*', ' '])
                    .strip_prefix("subject: ")
            })
            .unwrap_or_else(|| panic!("curl shows no subject:\n{}", run.report()))
            .to_string();
        let status = run.stdout.lines().last().unwrap_or_default();
        (status.parse().unwrap(), subject)
    }
}

impl Pair {
    /// Writes the certificate and key to these files.
    pub fn write(&self, cert: &Path, key: &Path) {
        std::fs::write(cert, &self.cert_pem).unwrap();
        std::fs::write(key, &self.key_pem).unwrap();
    }
}

/// The certificate the server presented on the connection `answer` came
/// on, DER.
pub fn served_der(answer: &reqwest::Response) -> Vec<u8> {
    answer
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .expect("the client was built with tls_info")
        .to_vec()
}

/// Replaces the symlink `link` with one to `target` in one rename, as
/// certbot points `live/DOMAIN/*.pem` at a renewed pair.
pub fn repoint(link: &Path, target: &Path) {
    let temp = link.with_extension("new-link");
    std::os::unix::fs::symlink(target, &temp).unwrap();
    std::fs::rename(&temp, link).unwrap();
}
