//! A real S3 implementation for the offsite tests: `moto_server` (PyPI
//! `moto[server]`, which scripts/test installs into `target/moto-venv`),
//! started per test on a free 127.0.0.1 port.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rusty_s3::actions::{ListObjectsV2, S3Action};
use rusty_s3::{Bucket, Credentials, UrlStyle};

/// Where moto_server is: `ROLLCALL_TEST_MOTO_SERVER`, else the virtualenv
/// scripts/test makes.
pub fn moto_server() -> PathBuf {
    super::installed(
        "ROLLCALL_TEST_MOTO_SERVER",
        "target/moto-venv/bin/moto_server",
        "moto_server (PyPI moto[server])",
    )
}

/// A port nothing listens on (just released by the OS).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// How long moto may take to start before the test fails; never a
/// measure of speed.
const START_GUARD: Duration = Duration::from_secs(60);
const SIGNED_FOR: Duration = Duration::from_secs(600);

/// A running moto_server with one bucket created with Object Lock.
pub struct Moto {
    pub endpoint: String,
    pub bucket: String,
    child: Child,
    http: reqwest::Client,
    signer: Bucket,
    credentials: Credentials,
}

impl Moto {
    pub async fn start() -> Self {
        Self::start_with(true).await
    }

    /// A moto_server whose bucket is made with or without Object Lock.
    pub async fn start_with(object_lock: bool) -> Self {
        let port = free_port();
        let child = Command::new(moto_server())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting moto_server");
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < START_GUARD,
                "moto_server did not start listening"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let endpoint = format!("http://127.0.0.1:{port}");
        let bucket = "rollcall-audit".to_string();
        let signer = Bucket::new(
            endpoint.parse().unwrap(),
            UrlStyle::Path,
            bucket.clone(),
            "us-east-1",
        )
        .unwrap();
        let moto = Moto {
            endpoint,
            bucket,
            child,
            http: reqwest::Client::new(),
            signer,
            credentials: Credentials::new("testing", "testing"),
        };
        let url = moto
            .signer
            .create_bucket(&moto.credentials)
            .sign(SIGNED_FOR);
        let created = moto
            .http
            .put(url)
            .header(
                "x-amz-bucket-object-lock-enabled",
                if object_lock { "true" } else { "false" },
            )
            .header("content-length", "0")
            .send()
            .await
            .unwrap();
        assert!(created.status().is_success(), "{:?}", created.text().await);
        moto
    }

    /// The environment and flags that point `rollcall` at this bucket.
    pub fn configure(&self, command: &mut Command, prefix: &str) {
        configure(
            command,
            &self.endpoint,
            &format!("s3://{}/{prefix}", self.bucket),
        );
    }

    /// Every key in the bucket.
    pub async fn keys(&self) -> Vec<String> {
        let url = ListObjectsV2::new(&self.signer, Some(&self.credentials)).sign(SIGNED_FOR);
        let text = self.get_text(url).await;
        let listed = ListObjectsV2::parse_response(&text).unwrap();
        listed.contents.into_iter().map(|o| o.key).collect()
    }

    async fn get_text(&self, url: reqwest::Url) -> String {
        let response = self.http.get(url).send().await.unwrap();
        response.text().await.unwrap()
    }

    pub async fn get(&self, key: &str) -> Vec<u8> {
        let url = self
            .signer
            .get_object(Some(&self.credentials), key)
            .sign(SIGNED_FOR);
        let response = self.http.get(url).send().await.unwrap();
        assert!(
            response.status().is_success(),
            "GET {key}: {}",
            response.status()
        );
        response.bytes().await.unwrap().to_vec()
    }

    /// Tries to delete the current version of `key` for good; returns the
    /// store's HTTP status.
    pub async fn delete_version(&self, key: &str) -> u16 {
        let url = self
            .signer
            .head_object(Some(&self.credentials), key)
            .sign(SIGNED_FOR);
        let head = self.http.head(url).send().await.unwrap();
        let version = head
            .headers()
            .get("x-amz-version-id")
            .expect("a versioned object")
            .to_str()
            .unwrap()
            .to_string();
        let mut delete = self.signer.delete_object(Some(&self.credentials), key);
        delete.query_mut().insert("versionId", version);
        let response = self
            .http
            .delete(delete.sign(SIGNED_FOR))
            .send()
            .await
            .unwrap();
        response.status().as_u16()
    }

    /// The retention mode and date the store keeps on `key`.
    pub async fn retention(&self, key: &str) -> (String, String) {
        let url = self
            .signer
            .head_object(Some(&self.credentials), key)
            .sign(SIGNED_FOR);
        let head = self.http.head(url).send().await.unwrap();
        let header = |name: &str| {
            head.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default()
        };
        (
            header("x-amz-object-lock-mode"),
            header("x-amz-object-lock-retain-until-date"),
        )
    }
}

// What someone on the host with the bucket's credentials can do without
// rollcall: put over a name, delete unlocked versions.
impl Moto {
    /// A plain PutObject, without `If-None-Match`: over an existing key it
    /// makes a new current version.
    pub async fn put_plain(&self, key: &str, body: &[u8]) {
        let url = self
            .signer
            .put_object(Some(&self.credentials), key)
            .sign(SIGNED_FOR);
        let response = self.http.put(url).body(body.to_vec()).send().await.unwrap();
        assert!(
            response.status().is_success(),
            "PUT {key}: {}",
            response.status()
        );
    }

    /// How many versions the store keeps of `key`.
    pub async fn version_count(&self, key: &str) -> usize {
        let mut list = self.signer.get_object(Some(&self.credentials), "");
        list.query_mut().insert("versions", "");
        list.query_mut().insert("prefix", key.to_string());
        let text = self.get_text(list.sign(SIGNED_FOR)).await;
        text.matches(&format!("<Key>{key}</Key>")).count()
    }
}

/// Points `command` at `endpoint` and `url`, with moto's test credentials.
pub fn configure(command: &mut Command, endpoint: &str, url: &str) {
    command
        .env("ROLLCALL_S3_URL", url)
        .env("ROLLCALL_S3_ENDPOINT", endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing-secret-key")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN");
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
