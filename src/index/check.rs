//! `rollcall index --check`: every public view of the index compared with
//! the same view of a fresh fold of the log (of several receivers, of the
//! merged logs) into a scratch index beside it, up to the same record of
//! each receiver, naming the first row one has and the other lacks.

use rusqlite::types::Value;

use super::open::Of;
use super::schema::VIEWS;
use super::{Index, IndexError};
use crate::clock::Clock;

/// The scratch index a check folds the log into, removed after.
const SCRATCH: &str = ".index-check.sqlite";

/// A row one side has and the other lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub view: &'static str,
    /// True: the index has the row and a fresh fold does not.
    pub only_in_index: bool,
    pub row: String,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (has, lacks) = if self.only_in_index {
            ("the index", "a fresh fold of the log")
        } else {
            ("a fresh fold of the log", "the index")
        };
        write!(
            f,
            "view {}: {has} has a row {lacks} lacks: {}",
            self.view, self.row
        )
    }
}

impl Index {
    /// Compares every view with a fresh fold of the logs up to the
    /// index's newest record of each; `None` when they agree.
    pub fn check(&self, clock: &dyn Clock) -> Result<Option<Difference>, IndexError> {
        let through: Vec<u64> = self.positions()?.iter().map(|at| at.seq).collect();
        let scratch_dir = self.home.join(SCRATCH);
        let _ = std::fs::remove_dir_all(&scratch_dir);
        crate::log::files::create_dir(&scratch_dir).map_err(|source| IndexError::Io {
            what: "creating the scratch index directory",
            path: scratch_dir.clone(),
            source,
        })?;
        let result = (|| {
            let of = Of {
                kind: self.kind,
                receivers: &self.receivers,
                home: &scratch_dir,
            };
            let file = scratch_dir.join(self.file().file_name().expect("an index file has a name"));
            let (fresh, _) = Index::open_for(&file, &of, clock)?;
            let mut fresh = fresh.for_a_build();
            fresh.catch_up_each(&through, u64::MAX, clock)?;
            drop(fresh);
            self.compare(&file)
        })();
        let _ = std::fs::remove_dir_all(&scratch_dir);
        result
    }

    fn compare(&self, fresh: &std::path::Path) -> Result<Option<Difference>, IndexError> {
        self.conn.execute(
            "ATTACH DATABASE ?1 AS fresh",
            [fresh.to_string_lossy().as_ref()],
        )?;
        let found = (|| {
            for (view, columns) in VIEWS {
                for (only_in_index, (a, b)) in
                    [(true, ("main", "fresh")), (false, ("fresh", "main"))]
                {
                    let sql = format!(
                        "SELECT * FROM (SELECT {columns} FROM {a}.{view}
                         EXCEPT SELECT {columns} FROM {b}.{view}) LIMIT 1"
                    );
                    let mut statement = self.conn.prepare(&sql)?;
                    let names: Vec<String> = statement.column_names().map(str::to_string).collect();
                    let mut rows = statement.query([])?;
                    if let Some(row) = rows.next()? {
                        let cells = (0..names.len())
                            .map(|i| Ok(format!("{}={}", names[i], shown(row.get(i)?))))
                            .collect::<rusqlite::Result<Vec<_>>>()?;
                        return Ok(Some(Difference {
                            view,
                            only_in_index,
                            row: cells.join(", "),
                        }));
                    }
                }
            }
            Ok(None)
        })();
        self.conn.execute("DETACH DATABASE fresh", [])?;
        found
    }
}

fn shown(value: Value) -> String {
    match value {
        Value::Null => "NULL".into(),
        Value::Integer(n) => n.to_string(),
        Value::Real(x) => x.to_string(),
        Value::Text(t) => format!("{t:?}"),
        Value::Blob(b) => format!("<{} bytes>", b.len()),
    }
}
