//! `verify`'s check of the console access log: each line's own hash and
//! its link to the line before it, across the day files, by the rule the
//! records follow ([`Chain`], [`record::check_seal`]). An edited, removed
//! or inserted line is a fault naming its file and line.

use std::path::Path;

use anyhow::Context;

use super::day_files;
use super::writer::Link;
use crate::log::chain::Chain;
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
struct Linked {
    #[serde(flatten)]
    link: Link,
    prev_hash: String,
}

/// Follows the chain through every access day file, oldest first, from
/// seq 1.
pub fn check(dir: &Path) -> anyhow::Result<AccessCheck> {
    let files = day_files(dir).with_context(|| format!("listing {}/access", dir.display()))?;
    let mut found = AccessCheck {
        days: files.len(),
        ..AccessCheck::default()
    };
    let mut chain = Chain::default();
    for (_, path) in &files {
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
