//! DuckDB, in Python, with its httpfs extension: PyPI's `duckdb` and the
//! `duckdb-extension-httpfs` of the same version, which scripts/test
//! installs into `target/duckdb-venv`. DuckDB cannot download extensions
//! here, so each session first installs httpfs from the file the
//! extension's wheel ships, into an extension directory of its own: the
//! SQL a reader types (`INSTALL httpfs; LOAD httpfs;`) then runs as is.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::Deserialize;

/// The python of the virtualenv that holds DuckDB and httpfs:
/// `ROLLCALL_TEST_DUCKDB_PYTHON`, else the one scripts/test makes.
pub fn duckdb_python() -> PathBuf {
    super::installed(
        "ROLLCALL_TEST_DUCKDB_PYTHON",
        "target/duckdb-venv/bin/python",
        "a python with duckdb and duckdb-extension-httpfs (PyPI)",
    )
}

/// Runs each SQL text of a JSON list from stdin in one connection, in
/// order; prints a JSON list with, for each, its columns and rows as
/// text cells (as a CSV export writes them: `true`/`false`, empty for
/// NULL), and the seconds it took (execution and fetch).
const SESSION: &str = r#"
import importlib.resources, json, sys, time
import duckdb
try:
    import duckdb_extension_httpfs
except ImportError:
    sys.exit("duckdb-extension-httpfs is not installed: run scripts/test")
wheel = importlib.resources.files(duckdb_extension_httpfs) / "extensions" / f"v{duckdb.__version__}" / "httpfs.duckdb_extension"
if not wheel.is_file():
    sys.exit(f"duckdb-extension-httpfs has no build for duckdb {duckdb.__version__}: the two versions must match (scripts/test pins both)")
con = duckdb.connect(config={"extension_directory": sys.argv[1], "autoinstall_known_extensions": False})
con.execute(f"INSTALL '{wheel}'")
def cell(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
answers = []
for number, sql in enumerate(json.load(sys.stdin), 1):
    started = time.perf_counter()
    try:
        cursor = con.execute(sql)
        rows = cursor.fetchall() if cursor.description else []
    except duckdb.Error as e:
        sys.exit(f"statement {number} failed: {e}\n{sql}")
    seconds = time.perf_counter() - started
    columns = [d[0] for d in cursor.description] if cursor.description else None
    answers.append({"columns": columns, "rows": [[cell(v) for v in row] for row in rows], "seconds": seconds})
json.dump(answers, sys.stdout)
"#;

/// What one SQL text gave.
#[derive(Debug, Clone, Deserialize)]
pub struct Answer {
    /// `None` where DuckDB gives no result at all.
    pub columns: Option<Vec<String>>,
    pub rows: Vec<Vec<String>>,
    seconds: f64,
}

impl Answer {
    /// How long DuckDB took to run it and hand over its rows.
    pub fn took(&self) -> Duration {
        Duration::from_secs_f64(self.seconds)
    }

    /// The cells of column `name`, one per row.
    pub fn column(&self, name: &str) -> Vec<String> {
        let columns = self.columns.as_deref().unwrap_or_default();
        let index = columns
            .iter()
            .position(|c| c == name)
            .unwrap_or_else(|| panic!("no column {name} in {columns:?}"));
        self.rows.iter().map(|row| row[index].clone()).collect()
    }
}

/// Runs `sqls` in order in one fresh DuckDB session; the answer of each,
/// or what DuckDB said about the first that failed.
pub fn session(sqls: &[String]) -> Result<Vec<Answer>, String> {
    let extensions = tempfile::tempdir().expect("a temp dir for DuckDB's extensions");
    let mut child = Command::new(duckdb_python())
        .args(["-c", SESSION])
        .arg(extensions.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting python with duckdb");
    child
        .stdin
        .take()
        .expect("python's stdin")
        .write_all(&serde_json::to_vec(sqls).unwrap())
        .expect("writing the SQL to python");
    let output = child.wait_with_output().expect("waiting for python");
    if !output.status.success() {
        return Err(format!(
            "duckdb ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("duckdb's answer is not the JSON expected: {e}"))
}
