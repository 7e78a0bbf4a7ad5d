//! Where `tail -f` has got to in one log ([`Cursor`]): the newest day,
//! read up to its end, with the lines past the durable head held back
//! until the head reaches them; each record it lets through goes to a
//! [`Sink`].

use std::collections::VecDeque;
use std::path::Path;

use anyhow::Context;
use time::Date;

use crate::log::days;
use crate::log::head::Head;
use crate::log::reader::{DayReader, Line, RecordView};
use crate::log::record::scan;

/// Takes each record a cursor lets through, in log order, with its line.
pub(super) type Sink<'s> = &'s mut dyn FnMut(&[u8], &RecordView<'_>) -> anyhow::Result<()>;

/// `DIR/.head`, or `None` for a log from before the witness (then every
/// whole line counts as written).
pub(super) fn durable_head(dir: &Path) -> anyhow::Result<Option<Head>> {
    Head::read(dir).context("reading the durable head; run `rollcall verify`")
}

/// Where following has got to: the newest day, read up to its end.
pub(super) struct Cursor {
    pub date: Option<Date>,
    pub reader: Option<DayReader>,
    /// Records up to this seq have been seen (printed or filtered out).
    pub last_seq: u64,
    /// The hash of that record, when known.
    pub last_hash: Option<String>,
    /// Whole lines read past the durable head, oldest first: not known
    /// durable yet, so not shown. If their batch fails they are cut off
    /// the file again, and other records may take their seqs.
    pub held: VecDeque<Held>,
}

/// A line read past the durable head.
pub(super) struct Held {
    link: Link,
    bytes: Vec<u8>,
}

impl Held {
    pub fn new(line: &Line<'_>) -> anyhow::Result<Self> {
        Ok(Self {
            link: Link::parse(line.bytes)?,
            bytes: line.bytes.to_vec(),
        })
    }
}

/// Where a record sits in the chain.
#[derive(Debug, serde::Deserialize)]
pub(super) struct Link {
    seq: u64,
    prev_hash: String,
    pub hash: String,
}

impl Link {
    pub fn parse(line: &[u8]) -> anyhow::Result<Self> {
        serde_json::from_slice(line)
            .context("a record without its chain link; run `rollcall verify`")
    }
}

impl Cursor {
    /// Prints what has been written since, moving on to each newer day
    /// once the current one is read to its end.
    pub fn catch_up(&mut self, dir: &Path, sink: Sink<'_>) -> anyhow::Result<()> {
        // Read before the log: the head never leads the log, so every
        // record up to it is in what is read next.
        let durable = durable_head(dir)?;
        loop {
            self.read_on(durable.as_ref(), sink)?;
            let all = days::list(dir).with_context(|| format!("listing {}", dir.display()))?;
            let Some(newer) = all
                .into_iter()
                .find(|d| self.date.is_none_or(|date| d.date > date))
            else {
                break;
            };
            // The writer never returns to a day once it has started the
            // next, so what is left of this one was written before `newer`
            // appeared: read it, then switch.
            self.read_on(durable.as_ref(), sink)?;
            self.date = Some(newer.date);
            self.reader = Some(DayReader::open(&newer)?);
        }
        if !self.release(durable.as_ref(), sink)? {
            // What was held is not what became durable: a failed batch was
            // cut off and the file written again. Read the day afresh.
            self.held.clear();
            if let Some(date) = self.date
                && let Some(day) = days::list(dir)
                    .with_context(|| format!("listing {}", dir.display()))?
                    .into_iter()
                    .find(|d| d.date == date)
            {
                self.reader = Some(DayReader::open(&day)?);
                self.read_on(durable.as_ref(), sink)?;
                if !self.release(durable.as_ref(), sink)? {
                    tracing::warn!(
                        "the log's end does not match its durable head; run `rollcall verify`"
                    );
                }
            }
        }
        Ok(())
    }

    /// Reads on to the end of the current day. With a durable head, new
    /// lines are held for [`release`](Self::release); without one, each
    /// whole line is shown as it comes.
    fn read_on(&mut self, durable: Option<&Head>, sink: Sink<'_>) -> anyhow::Result<()> {
        let Some(lines) = &mut self.reader else {
            return Ok(());
        };
        while let Some(line) = lines.next_whole_line()? {
            let seen = self.held.back().map_or(self.last_seq, |h| h.link.seq);
            // Read again from the day's start (a cursor set up after a
            // merged read): what was seen is passed over unparsed, but for
            // the hash of the last record seen, which the next must follow.
            if let Some(seq) = scan::leading_seq(line.bytes).filter(|&seq| seq <= seen) {
                if seq == self.last_seq && self.last_hash.is_none() {
                    self.last_hash = scan::string_member(line.bytes, b"hash")
                        .flatten()
                        .map(|hash| hash.into_owned());
                }
                continue;
            }
            let record = match line.record() {
                Ok(record) => record,
                // Past the head the file may have been cut and written
                // again under the reader: `release` finds out and re-reads.
                Err(_) if durable.is_some() => break,
                Err(e) => return Err(e.into()),
            };
            if record.seq <= seen {
                continue;
            }
            if durable.is_some() {
                self.held.push_back(Held::new(&line)?);
                continue;
            }
            self.last_seq = record.seq;
            sink(line.bytes, &record)?;
        }
        Ok(())
    }

    /// Shows the held records the durable head has reached. Returns false
    /// if they are not the records it made durable (their chain or the
    /// head's hash disagree), showing none of them.
    fn release(&mut self, durable: Option<&Head>, sink: Sink<'_>) -> anyhow::Result<bool> {
        let Some(head) = durable else {
            return Ok(true);
        };
        let ready = self
            .held
            .iter()
            .take_while(|h| h.link.seq <= head.seq)
            .count();
        if ready == 0 {
            return Ok(head.seq <= self.last_seq);
        }
        let mut last_hash = self.last_hash.as_deref();
        for held in self.held.iter().take(ready) {
            if last_hash.is_some_and(|hash| hash != held.link.prev_hash) {
                return Ok(false);
            }
            last_hash = Some(&held.link.hash);
        }
        let newest = &self.held[ready - 1].link;
        if newest.seq != head.seq || newest.hash != head.hash {
            return Ok(false);
        }
        for held in self.held.drain(..ready) {
            let record = RecordView::parse(&held.bytes).context("re-reading a record")?;
            sink(&held.bytes, &record)?;
            self.last_seq = held.link.seq;
            self.last_hash = Some(held.link.hash);
        }
        Ok(true)
    }
}
