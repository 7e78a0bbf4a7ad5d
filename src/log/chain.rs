//! The hash chain's one rule, checked in one place: each record's `seq` is
//! one more than the record before it, and its `prev_hash` is that
//! record's `hash` (the genesis hash for seq 1). `verify`, archival's
//! content checks and the digests' day-to-day links all follow a
//! [`Chain`].

use super::record::GENESIS_HASH;

/// The chain as followed so far: what the next record must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// The seq the next record must have.
    pub next_seq: u64,
    /// The hash the next record's `prev_hash` must name.
    pub last_hash: String,
    /// Records taken so far.
    pub records: u64,
}

impl Default for Chain {
    /// The start of the log: seq 1, chained to the genesis hash.
    fn default() -> Self {
        Self::after(0, GENESIS_HASH.to_string())
    }
}

/// How a record fails to be the next link of a [`Chain`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Break {
    /// `seq` was already taken: the chain had reached `last`.
    #[error("seq {seq} comes again after seq {last}: a line was inserted, duplicated or moved")]
    Repeated { seq: u64, last: u64 },
    /// Seqs `from..=to` are not there.
    #[error("{}: a line was deleted or moved", missing(*.from, *.to))]
    Missing { from: u64, to: u64 },
    /// The seq is right but `prev_hash` is not the hash of seq `after`
    /// (`None`: not the genesis hash).
    #[error("{}", unlinked(*.after))]
    Unlinked { after: Option<u64> },
}

impl Chain {
    /// The chain as it stands after the record with `seq` and `hash`
    /// (`0` and the genesis hash: before the first record).
    pub fn after(seq: u64, hash: String) -> Self {
        Self::joining(seq + 1, hash)
    }

    /// A chain taken up at a record with `seq` and `prev_hash`, whatever
    /// came before it: for checking a day on its own.
    pub fn joining(seq: u64, prev_hash: String) -> Self {
        Self {
            next_seq: seq,
            last_hash: prev_hash,
            records: 0,
        }
    }

    /// The seq of the last record, if the chain has reached one.
    pub fn last_seq(&self) -> Option<u64> {
        self.next_seq.checked_sub(1).filter(|&seq| seq > 0)
    }

    /// Whether a record with `seq` and `prev_hash` is the next link.
    pub fn check(&self, seq: u64, prev_hash: &str) -> Result<(), Break> {
        let expected = self.next_seq;
        if seq < expected {
            return Err(Break::Repeated {
                seq,
                last: expected - 1,
            });
        }
        if seq > expected {
            return Err(Break::Missing {
                from: expected,
                to: seq - 1,
            });
        }
        if prev_hash != self.last_hash {
            return Err(Break::Unlinked {
                after: self.last_seq(),
            });
        }
        Ok(())
    }

    /// Checks the record with `seq`, `prev_hash` and `hash`, and if it is
    /// the next link, takes it as the chain's end.
    pub fn push(&mut self, seq: u64, prev_hash: &str, hash: &str) -> Result<(), Break> {
        self.check(seq, prev_hash)?;
        // Into the last hash's own buffer: verify pushes every record.
        self.last_hash.clear();
        self.last_hash.push_str(hash);
        self.next_seq = seq + 1;
        self.records += 1;
        Ok(())
    }

    /// Takes a run of records checked on their own by this same rule
    /// (`run`, which began at the record after this chain's end) as the
    /// chain's end.
    pub fn take_run(&mut self, run: Chain) {
        self.next_seq = run.next_seq;
        self.last_hash = run.last_hash;
        self.records += run.records;
    }

    /// [`Chain::push`] for a caller that owns the record and has other
    /// checks to make between [`Chain::check`] and taking it (no second
    /// check, no copy of the hash).
    pub fn take_checked(&mut self, seq: u64, hash: String) {
        debug_assert_eq!(seq, self.next_seq, "take_checked after a passed check");
        self.next_seq = seq + 1;
        self.last_hash = hash;
        self.records += 1;
    }
}

/// `seq N is missing` or `seqs N to M are missing`.
pub fn missing(from: u64, to: u64) -> String {
    if from == to {
        format!("seq {from} is missing")
    } else {
        format!("seqs {from} to {to} are missing")
    }
}

fn unlinked(after: Option<u64>) -> String {
    match after {
        None => "the first record does not start the chain (prev_hash is not the genesis hash)"
            .to_string(),
        Some(seq) => {
            format!("prev_hash does not match the hash of seq {seq}: a record was replaced")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(n: u64) -> String {
        format!("{n:064}")
    }

    #[test]
    fn a_chain_takes_each_next_record_and_names_what_breaks_it() {
        let mut chain = Chain::default();
        assert_eq!(chain.last_seq(), None);
        chain.push(1, GENESIS_HASH, &hash(1)).unwrap();
        chain.push(2, &hash(1), &hash(2)).unwrap();
        assert_eq!((chain.last_seq(), chain.records), (Some(2), 2));

        assert_eq!(
            chain.check(2, &hash(2)),
            Err(Break::Repeated { seq: 2, last: 2 })
        );
        assert_eq!(
            chain.check(5, &hash(2)),
            Err(Break::Missing { from: 3, to: 4 })
        );
        assert_eq!(
            chain.check(3, &hash(1)),
            Err(Break::Unlinked { after: Some(2) })
        );
        assert_eq!(
            Chain::default().check(1, &hash(9)),
            Err(Break::Unlinked { after: None })
        );
        let failed = chain.clone();
        assert!(chain.push(4, &hash(3), &hash(4)).is_err());
        assert_eq!(chain, failed, "a broken link is not taken");
    }

    #[test]
    fn a_chain_after_a_record_continues_from_it() {
        let chain = Chain::after(41, hash(41));
        assert_eq!(chain.check(42, &hash(41)), Ok(()));
        assert_eq!(
            Break::Missing { from: 42, to: 42 }.to_string(),
            "seq 42 is missing: a line was deleted or moved"
        );
    }
}
