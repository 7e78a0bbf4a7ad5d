//! DuckDB querying the archives where they lie: a generated log of
//! 1,000,000 records over ten days of March 2026, archived and shipped by
//! `rollcall archive` to a local moto_server, then docs/offsite.md's own
//! DuckDB set-up and queries run against that bucket, each timed alone
//! (three runs: DuckDB caches nothing of the bucket between them). DuckDB
//! and httpfs come from `target/duckdb-venv`, moto from
//! `target/moto-venv` (scripts/test makes both). Measured, not asserted:
//!
//! `cargo bench --bench sql_in_place` (`ROLLCALL_BENCH_RECORDS` for
//! another size, `ROLLCALL_BENCH_DIR` to keep the generated log).

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use time::macros::date;

const BIN: &str = env!("CARGO_BIN_EXE_rollcall");
const PAGE: &str = include_str!("../docs/offsite.md");
const BUCKET: &str = "bench";

/// Runs the set-up (a JSON list), then each `[name, sql]` three times;
/// prints a table row per run: its time and what it gave (the one value
/// of a one-value answer, such as a count, else how many rows).
const SESSION: &str = r#"
import importlib.resources, json, sys, time
import duckdb, duckdb_extension_httpfs
work = json.load(sys.stdin)
wheel = importlib.resources.files(duckdb_extension_httpfs) / "extensions" / f"v{duckdb.__version__}" / "httpfs.duckdb_extension"
con = duckdb.connect(config={"extension_directory": sys.argv[1], "autoinstall_known_extensions": False})
con.execute("SET enable_progress_bar = false")
con.execute(f"INSTALL '{wheel}'")
for sql in work["set_up"]:
    con.execute(sql)
for name, sql in work["timed"]:
    for run in range(1, 4):
        started = time.perf_counter()
        rows = con.execute(sql).fetchall()
        took = time.perf_counter() - started
        gave = rows[0][0] if len(rows) == 1 and len(rows[0]) == 1 else f"{len(rows)} rows"
        print(f"| {name}, run {run} | {took * 1000:.0f} ms | {gave} |", flush=True)
"#;

fn main() {
    let records = support::records();
    let temp = tempfile::tempdir().expect("creating a temp dir");
    let dir = support::log_dir(&temp);
    let started = Instant::now();
    let files = support::generate(&dir, records, date!(2026 - 03 - 01));
    eprintln!(
        "generated {records} records in {} day files in {:.1?}",
        files.len(),
        started.elapsed()
    );
    let first_line = std::fs::read_to_string(&files[0]).unwrap();
    let first: serde_json::Value =
        serde_json::from_str(first_line.lines().next().unwrap()).unwrap();
    let room = first["room_id"].as_str().unwrap().to_string();

    let moto = Moto::start();
    let started = Instant::now();
    let shipped = Command::new(BIN)
        .arg("--dir")
        .arg(&dir)
        .args(["archive", "--s3-url", &format!("s3://{BUCKET}/prod")])
        .args(["--s3-endpoint", &moto.endpoint])
        .env("AWS_ACCESS_KEY_ID", "bench")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .env("AWS_REGION", "us-east-1")
        .output()
        .expect("running rollcall archive");
    assert!(
        shipped.status.success(),
        "rollcall archive failed:\n{}",
        String::from_utf8_lossy(&shipped.stderr)
    );
    let archived: u64 = support::archived_bytes(&dir);
    println!(
        "{records} records in {} archives ({:.1} MB gzipped), archived and shipped to moto in {:.1?}",
        files.len(),
        archived as f64 / 1e6,
        started.elapsed()
    );

    let blocks = duckdb_blocks(PAGE);
    let pick = |opening: &str| -> String {
        let sql = blocks
            .iter()
            .find(|b| b.starts_with(opening))
            .unwrap_or_else(|| panic!("docs/offsite.md has no DuckDB block opening {opening:?}"));
        moto.against(sql)
    };
    let set_up = vec![pick("INSTALL httpfs"), pick("CREATE VIEW records")];
    let march = pick("SELECT");
    let room_query = pick("WITH")
        .replace("'room-team'", &format!("'{room}'"))
        .replace("'2026-03-10T12:00:00.000Z'", "'2026-03-06T00:00:00.000Z'");
    let timed = vec![
        (
            "count(*) of records".to_string(),
            "SELECT count(*) FROM records".to_string(),
        ),
        (
            "the March query, all rows, to CSV".to_string(),
            format!(
                "COPY ({}) TO '/dev/null' (FORMAT csv, HEADER)",
                march.trim_end().trim_end_matches(';')
            ),
        ),
        ("who was in a room, mid-log".to_string(), room_query),
    ];
    println!("\n| DuckDB over the moto bucket | time | gave |\n|---|---|---|");
    duckdb(&serde_json::json!({ "set_up": set_up, "timed": timed }));
}

/// The text of each ```` ```sql duckdb ```` block of `page`, in order.
fn duckdb_blocks(page: &str) -> Vec<String> {
    page.split("```sql duckdb\n")
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap().to_string())
        .collect()
}

/// Runs [`SESSION`] on `work`, its table rows going to stdout.
fn duckdb(work: &serde_json::Value) {
    let python = venv("target/duckdb-venv/bin/python");
    let extensions = tempfile::tempdir().expect("a temp dir for DuckDB's extensions");
    let mut child = Command::new(python)
        .args(["-c", SESSION])
        .arg(extensions.path())
        .stdin(Stdio::piped())
        .spawn()
        .expect("starting python with duckdb");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(work.to_string().as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "the DuckDB session failed");
}

/// A program of a virtualenv scripts/test makes.
fn venv(relative: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    assert!(
        path.exists(),
        "{} not found: run scripts/test --no-run first",
        path.display()
    );
    path
}

/// A moto_server on a free port with an Object Lock bucket, killed when
/// dropped.
struct Moto {
    endpoint: String,
    child: std::process::Child,
}

impl Moto {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(venv("target/moto-venv/bin/moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting moto_server");
        let moto = Moto {
            endpoint: format!("http://127.0.0.1:{port}"),
            child,
        };
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            std::thread::sleep(Duration::from_millis(50));
        }
        let created = Command::new("curl")
            .args(["-s", "-f", "-X", "PUT"])
            .args(["-H", "x-amz-bucket-object-lock-enabled: true"])
            .arg(format!("{}/{BUCKET}", moto.endpoint))
            .stdout(Stdio::null())
            .status()
            .expect("running curl");
        assert!(created.success(), "creating the bucket failed");
        moto
    }

    /// The page's SQL with its bucket, endpoint and keys made this one's.
    fn against(&self, sql: &str) -> String {
        sql.replace("acme-rollcall", BUCKET)
            .replace("'ACCESSKEY'", "'bench'")
            .replace("'SECRETKEY'", "'bench'")
            .replace("'eu-west-1'", "'us-east-1'")
            .replace(
                "'127.0.0.1:9000'",
                &format!("'{}'", self.endpoint.trim_start_matches("http://")),
            )
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
