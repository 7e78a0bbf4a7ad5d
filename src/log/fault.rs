//! [`Fault`]: something wrong in the log, its archives, digests or
//! retention log, as `verify` reports it: where (file, line and seq when
//! known) and what. One type and one way to print it, in text and JSON.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Serialize, Serializer};

/// Where the log stops being whole, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fault {
    #[serde(serialize_with = "display_path")]
    pub file: PathBuf,
    /// The line, counted from 1, when the fault is on one.
    pub line: Option<u64>,
    /// The record's seq, as far as the line can be read.
    pub seq: Option<u64>,
    pub problem: String,
}

impl Fault {
    /// A fault with the whole of `file`.
    pub fn new(file: &Path, problem: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            line: None,
            seq: None,
            problem: problem.into(),
        }
    }

    /// The fault is on line `line` of the file.
    pub fn at_line(self, line: u64) -> Self {
        Self {
            line: Some(line),
            ..self
        }
    }
}

impl fmt::Display for Fault {
    /// `FILE line N, seq S: PROBLEM`, leaving out the line and the seq
    /// when they are not known.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, " line {line}")?;
        }
        match (self.line, self.seq) {
            (Some(_), Some(seq)) => write!(f, ", seq {seq}")?,
            (None, Some(seq)) => write!(f, " seq {seq}")?,
            (_, None) => {}
        }
        write!(f, ": {}", self.problem)
    }
}

/// A path as text, as it is printed (JSON strings must be UTF-8).
pub fn display_path<S: Serializer>(path: &Path, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&path.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_names_what_is_known_of_where_it_is() {
        let whole = Fault::new(Path::new("a/b.gz"), "bad");
        assert_eq!(whole.to_string(), "a/b.gz: bad");
        let line = whole.clone().at_line(3);
        assert_eq!(line.to_string(), "a/b.gz line 3: bad");
        let record = Fault {
            seq: Some(7),
            ..line
        };
        assert_eq!(record.to_string(), "a/b.gz line 3, seq 7: bad");
        assert_eq!(
            serde_json::to_value(&record).unwrap(),
            serde_json::json!({"file": "a/b.gz", "line": 3, "seq": 7, "problem": "bad"})
        );
    }
}
