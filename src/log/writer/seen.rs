//! The dedup keys of the recent records ([`Seen`]): a retried delivery is
//! answered with the seq its event was recorded under, for
//! [`DEDUP_DAYS`](crate::log::days::DEDUP_DAYS) and a day.
//!
//! 20 bytes per key (12 bytes of its digest and the seq, in a
//! [`DigestMap`]); the day a key was recorded on is not kept with it but
//! told by its seq, since seqs grow with the days: the first seq of each
//! day is kept once, 16 bytes a day.

use std::collections::BTreeMap;

use time::Date;

use super::compact::{DigestMap, Entry};
use crate::log::record::DedupKey;

#[derive(Debug, Default)]
pub(super) struct Seen {
    keys: DigestMap,
    /// The first seq recorded on each day that has keys.
    days: BTreeMap<Date, u64>,
}

/// The dedup keys a start read from the log's recent days.
#[derive(Debug, Default)]
pub(super) struct Remembered {
    pub(super) keys: Vec<Entry>,
    pub(super) first_seqs: BTreeMap<Date, u64>,
}

impl Remembered {
    pub(super) fn push(&mut self, key: DedupKey, seq: u64, day: Date) {
        self.keys.push(Entry::new(key.digest(), seq));
        let first = self.first_seqs.entry(day).or_insert(seq);
        *first = (*first).min(seq);
    }

    pub(super) fn append(&mut self, other: Remembered) {
        self.keys.extend(other.keys);
        for (day, seq) in other.first_seqs {
            let first = self.first_seqs.entry(day).or_insert(seq);
            *first = (*first).min(seq);
        }
    }
}

impl Seen {
    /// The seq the event with `key` was recorded under.
    pub(super) fn get(&self, key: &DedupKey) -> Option<u64> {
        self.keys.get(key.digest())
    }

    pub(super) fn insert(&mut self, key: DedupKey, seq: u64, day: Date) {
        self.keys.insert(key.digest(), seq);
        self.days.entry(day).or_insert(seq);
    }

    /// What a start would have read: every key and each day's first seq.
    pub(super) fn into_remembered(self) -> Remembered {
        Remembered {
            keys: self.keys.into_entries(),
            first_seqs: self.days,
        }
    }

    /// Forgets a key a failed batch had added.
    pub(super) fn remove(&mut self, key: &DedupKey) {
        self.keys.remove(key.digest());
    }

    /// Takes in what a start read (after a failed batch: read again, over
    /// what this run holds).
    pub(super) fn extend(&mut self, remembered: Remembered) {
        if self.keys.len() == 0 {
            self.keys = DigestMap::from_entries(remembered.keys);
        } else {
            for entry in remembered.keys {
                let (key, seq) = entry.parts();
                let newer = self.keys.get(key).is_none_or(|had| had < seq);
                if newer {
                    self.keys.insert(key, seq);
                }
            }
            self.keys.settle();
        }
        for (day, seq) in remembered.first_seqs {
            let first = self.days.entry(day).or_insert(seq);
            *first = (*first).min(seq);
        }
    }

    /// Forgets the keys recorded before `oldest`.
    pub(super) fn expire(&mut self, oldest: Date) {
        self.days = self.days.split_off(&oldest);
        match self.days.values().next() {
            Some(&first) => self.keys.retain(|seq| seq >= first),
            None => self.keys = DigestMap::default(),
        }
    }

    /// Between batches: lets the map fold in what it took since.
    pub(super) fn settle(&mut self) {
        self.keys.settle();
    }
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;
    use crate::log::record::Event;

    #[test]
    fn a_key_is_forgotten_with_the_day_it_was_recorded_on() {
        let key = |n: u64| DedupKey::new(Event::Joined, &format!("m{n}"), "");
        let mut remembered = Remembered::default();
        remembered.push(key(2), 2, date!(2026 - 11 - 02));
        remembered.push(key(1), 1, date!(2026 - 11 - 01));
        let mut seen = Seen::default();
        seen.extend(remembered);
        seen.insert(key(3), 3, date!(2026 - 11 - 03));
        assert_eq!((seen.get(&key(1)), seen.get(&key(3))), (Some(1), Some(3)));
        seen.expire(date!(2026 - 11 - 02));
        assert_eq!(
            (seen.get(&key(1)), seen.get(&key(2)), seen.get(&key(3))),
            (None, Some(2), Some(3))
        );
        seen.expire(date!(2026 - 11 - 04));
        assert_eq!(seen.get(&key(3)), None);
    }
}
