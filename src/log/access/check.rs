//! `verify`'s check of the console access log: each line's own hash and
//! its link to the line before it, across the day files, by the rule the
//! records follow ([`Chain`], [`record::check_seal`]). An edited, removed
//! or inserted line is a fault naming its file and line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use time::Date;

use super::retention::{self, Retired};
use super::writer::Link;
use super::{ACCESS_DIR, day_files};
use crate::log::chain::Chain;
use crate::log::days;
use crate::log::fault::Fault;
use crate::log::record;

/// What the check found.
#[derive(Debug, Default)]
pub struct AccessCheck {
    /// The first fault: what follows a broken link says nothing more.
    pub fault: Option<Fault>,
    /// Lines that check out (before the fault, if there is one).
    pub lines: u64,
    pub days: usize,
}

#[derive(serde::Deserialize)]
pub(super) struct Linked {
    #[serde(flatten)]
    pub(super) link: Link,
    pub(super) prev_hash: String,
}

/// A day as the check finds it: its file, or its retention record.
enum Day {
    File(PathBuf),
    Retired { line: u64, retired: Retired },
}

/// Follows the chain through every access day, oldest first, from seq 1:
/// through each file, and across each day retention deleted by the links
/// its `retired.jsonl` line keeps.
pub fn check(dir: &Path) -> anyhow::Result<AccessCheck> {
    let files = day_files(dir).with_context(|| format!("listing {}/access", dir.display()))?;
    let mut found = AccessCheck {
        days: files.len(),
        ..AccessCheck::default()
    };
    let mut faults = Vec::new();
    let retired = retention::load(dir, &mut faults)?;
    if let Some(fault) = faults.into_iter().next() {
        found.fault = Some(fault);
        return Ok(found);
    }
    let mut all: BTreeMap<Date, Day> = files
        .into_iter()
        .map(|(day, path)| (day, Day::File(path)))
        .collect();
    for read in retired {
        if let Some(day) = days::parse_day_name(&read.entry.day) {
            all.insert(
                day,
                Day::Retired {
                    line: read.line,
                    retired: read.entry,
                },
            );
        }
    }
    let retired_path = dir.join(ACCESS_DIR).join(retention::RETIRED_FILE);
    let mut chain = Chain::default();
    for day in all.values() {
        let path = match day {
            Day::File(path) => path,
            Day::Retired { line, retired } => {
                if let Err(e) = chain.check(retired.first_seq, &retired.first_prev_hash) {
                    let fault = Fault::new(
                        &retired_path,
                        format!("the deleted day {}: {e}", retired.day),
                    );
                    found.fault = Some(Fault {
                        seq: Some(retired.first_seq),
                        ..fault.at_line(*line)
                    });
                    return Ok(found);
                }
                chain = Chain::after(retired.last_seq, retired.last_hash.clone());
                continue;
            }
        };
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let mut lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
        if bytes.is_empty() || bytes.ends_with(b"\n") {
            lines.pop();
        }
        for (at, line) in lines.into_iter().enumerate() {
            let number = at as u64 + 1;
            let fault = |problem: String, seq: Option<u64>| Fault {
                seq,
                ..Fault::new(path, problem).at_line(number)
            };
            let linked: Linked = match serde_json::from_slice(line) {
                Ok(linked) => linked,
                Err(e) => {
                    found.fault = Some(fault(format!("not an access line: {e}"), None));
                    return Ok(found);
                }
            };
            let seq = linked.link.seq;
            if let Err(e) = record::check_seal(line, &linked.link.hash) {
                found.fault = Some(fault(format!("{e}: the line was edited"), Some(seq)));
                return Ok(found);
            }
            if let Err(e) = chain.push(seq, &linked.prev_hash, &linked.link.hash) {
                found.fault = Some(fault(e.to_string(), Some(seq)));
                return Ok(found);
            }
            found.lines += 1;
        }
    }
    Ok(found)
}
