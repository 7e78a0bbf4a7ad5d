//! A map from 128-bit digests to a `u64` that costs its entries' bytes and
//! little more: the writer's dedup keys and membership states, which grow
//! with the log, live in two of them.
//!
//! A `HashMap` of a million 24-byte entries takes 2^21 buckets of 25
//! bytes (52 MB, and old and new table both while it grows). Here the
//! entries sit in one sorted `Vec` of exactly 20 bytes each; what is
//! added goes to a small map first, merged into the `Vec` in place once it
//! holds a sixteenth as many. The keys are digests, evenly spread, so a
//! directory of their top bits (1 byte per entry) names the few entries
//! a lookup searches: one or two cache misses, as a hash table's, instead
//! of twenty halvings. With the small map, about 26 bytes per entry.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use crate::log::record::DigestHasher;

/// Fewest entries the small map holds before a merge is worth it.
const MIN_RECENT: usize = 4096;
/// About how many sorted entries a bucket of the directory covers: one
/// or two cache lines to search once the directory has named them.
const ENTRIES_PER_BUCKET: usize = 4;

/// One entry: 20 bytes, in 4-byte words so nothing pads it (a `u128`
/// key would align it to 32). A key is the top 96 bits of its digest:
/// among a million keys, two alike by chance once in 10^17.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Entry {
    /// The key's words, most significant first, so arrays compare as
    /// the key.
    key: [u32; 3],
    /// The value's low and high halves.
    value: [u32; 2],
}

impl Entry {
    pub(super) fn new(key: u128, value: u64) -> Self {
        Self {
            key: split(key),
            value: [value as u32, (value >> 32) as u32],
        }
    }

    pub(super) fn parts(self) -> (u128, u64) {
        (join(self.key), self.value())
    }

    fn value(&self) -> u64 {
        u64::from(self.value[0]) | u64::from(self.value[1]) << 32
    }

    fn set_value(&mut self, value: u64) {
        self.value = [value as u32, (value >> 32) as u32];
    }
}

fn split(key: u128) -> [u32; 3] {
    [(key >> 96) as u32, (key >> 64) as u32, (key >> 32) as u32]
}

fn join(key: [u32; 3]) -> u128 {
    u128::from(key[0]) << 96 | u128::from(key[1]) << 64 | u128::from(key[2]) << 32
}

/// A key of the small map, cut to the 96 bits an [`Entry`] keeps: hashed
/// as its high half.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key(u128);

impl Key {
    fn of(key: u128) -> Self {
        Key(join(split(key)))
    }
}

impl std::hash::Hash for Key {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64((self.0 >> 64) as u64);
    }
}

#[derive(Debug, Default)]
pub(super) struct DigestMap {
    /// Sorted by key, no key twice: 20 bytes per entry.
    sorted: Vec<Entry>,
    /// Keys not in `sorted`, added since the last merge: at most
    /// `sorted.len() / 16` of them (or [`MIN_RECENT`]), 33 bytes each in
    /// a table between 7/16 and 7/8 full: under 5 bytes per entry of the
    /// whole map.
    recent: HashMap<Key, u64, BuildHasherDefault<DigestHasher>>,
    /// Where in `sorted` the keys whose top bits are `b` begin:
    /// `directory[b]..directory[b + 1]`, about four entries; 4 bytes per
    /// four entries, so 1 byte per entry. Empty while `sorted` is.
    directory: Vec<u32>,
    /// The key's top bits a bucket is named by: `key >> shift`.
    shift: u32,
}

impl DigestMap {
    /// The map of `entries`, in any order; of a key given twice, the
    /// greater value stays. Sorted where they lie, so no second copy.
    pub(super) fn from_entries(mut entries: Vec<Entry>) -> Self {
        entries.sort_unstable_by(|a, b| a.key.cmp(&b.key).then(b.value().cmp(&a.value())));
        entries.dedup_by_key(|e| e.key);
        entries.shrink_to_fit();
        let mut map = Self {
            sorted: entries,
            ..Self::default()
        };
        map.index();
        map
    }

    /// Every entry, the small map's included, in no particular order.
    pub(super) fn into_entries(self) -> Vec<Entry> {
        let mut entries = self.sorted;
        entries.extend(self.recent.into_iter().map(|(Key(k), v)| Entry::new(k, v)));
        entries
    }

    pub(super) fn len(&self) -> usize {
        self.sorted.len() + self.recent.len()
    }

    pub(super) fn get(&self, key: u128) -> Option<u64> {
        match self.position(split(key)) {
            Ok(at) => Some(self.sorted[at].value()),
            Err(_) => self.recent.get(&Key::of(key)).copied(),
        }
    }

    /// Sets `key` to what `change` makes of its value (`None`: absent),
    /// with one lookup; returns what it was.
    pub(super) fn update(
        &mut self,
        key: u128,
        change: impl FnOnce(Option<u64>) -> u64,
    ) -> Option<u64> {
        match self.position(split(key)) {
            Ok(at) => {
                let before = self.sorted[at].value();
                self.sorted[at].set_value(change(Some(before)));
                Some(before)
            }
            Err(_) => match self.recent.entry(Key::of(key)) {
                std::collections::hash_map::Entry::Occupied(mut entry) => {
                    let before = *entry.get();
                    entry.insert(change(Some(before)));
                    Some(before)
                }
                std::collections::hash_map::Entry::Vacant(entry) => {
                    entry.insert(change(None));
                    None
                }
            },
        }
    }

    /// Sets `key` to `value`, returning what it was.
    pub(super) fn insert(&mut self, key: u128, value: u64) -> Option<u64> {
        match self.position(split(key)) {
            Ok(at) => {
                let before = self.sorted[at].value();
                self.sorted[at].set_value(value);
                Some(before)
            }
            Err(_) => self.recent.insert(Key::of(key), value),
        }
    }

    pub(super) fn remove(&mut self, key: u128) -> Option<u64> {
        match self.position(split(key)) {
            // Only ever a key a failed batch had changed, and the writer
            // merges between batches: rare, so the shift is affordable.
            Ok(at) => {
                let removed = self.sorted.remove(at);
                self.index();
                Some(removed.value())
            }
            Err(_) => self.recent.remove(&Key::of(key)),
        }
    }

    /// Keeps only the entries whose value `keep` accepts.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(u64) -> bool) {
        self.sorted.retain(|e| keep(e.value()));
        self.index();
        self.recent.retain(|_, v| keep(*v));
    }

    /// Merges the small map into the sorted entries once it is big enough:
    /// called between batches, so a batch's undo finds its keys unmoved.
    pub(super) fn settle(&mut self) {
        if self.recent.len() < MIN_RECENT.max(self.sorted.len() / 16) {
            return;
        }
        let mut added: Vec<Entry> = self
            .recent
            .drain()
            .map(|(Key(key), value)| Entry::new(key, value))
            .collect();
        added.sort_unstable_by_key(|e| e.key);
        self.recent.shrink_to(MIN_RECENT);
        // In place from the back: the old entries move up once each, and
        // growing a large `Vec` remaps its pages rather than copying them.
        let old = self.sorted.len();
        self.sorted.resize(old + added.len(), Entry::default());
        let (mut i, mut j) = (old, added.len());
        for at in (0..self.sorted.len()).rev() {
            let take_old = j == 0 || (i > 0 && self.sorted[i - 1].key > added[j - 1].key);
            self.sorted[at] = if take_old {
                i -= 1;
                self.sorted[i]
            } else {
                j -= 1;
                added[j]
            };
            if j == 0 {
                break;
            }
        }
        self.index();
    }

    /// Where `key` is in `sorted`, or would go: in the range the
    /// directory gives for its top bits, a few entries long.
    fn position(&self, key: [u32; 3]) -> Result<usize, usize> {
        let bucket = (key[0] >> self.shift) as usize;
        let (low, high) = match self.directory.get(bucket..bucket + 2) {
            Some(&[low, high]) => (low as usize, high as usize),
            _ => (0, self.sorted.len()),
        };
        self.sorted[low..high]
            .binary_search_by(|e| e.key.cmp(&key))
            .map(|at| at + low)
            .map_err(|at| at + low)
    }

    /// Remakes the directory after `sorted` changed: about one bucket for
    /// every four entries.
    fn index(&mut self) {
        let buckets_log2 = (self.sorted.len() / ENTRIES_PER_BUCKET).max(2).ilog2();
        self.shift = 32 - buckets_log2;
        let buckets = 1usize << buckets_log2;
        self.directory.clear();
        self.directory.resize(buckets + 1, 0);
        for entry in &self.sorted {
            self.directory[(entry.key[0] >> self.shift) as usize + 1] += 1;
        }
        for b in 1..=buckets {
            self.directory[b] += self.directory[b - 1];
        }
        self.directory.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spread like digests, reproducibly.
    fn key(n: u64) -> u128 {
        let mixed = n.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29) ^ n;
        (u128::from(mixed) << 64) | u128::from(n.wrapping_mul(0xD6E8_FEB8_6659_FD93))
    }

    #[test]
    fn it_answers_as_a_hash_map_does_through_merges_removals_and_expiry() {
        let mut map = DigestMap::from_entries((0..5000).map(|n| Entry::new(key(n), n)).collect());
        let mut model: std::collections::HashMap<u128, u64> =
            (0..5000).map(|n| (key(n), n)).collect();
        for n in 2500..40_000u64 {
            if n % 3 == 0 {
                let before = model.get(&key(n)).copied();
                model.insert(key(n), before.map_or(n, |b| b + n));
                assert_eq!(map.update(key(n), |b| b.map_or(n, |b| b + n)), before);
            } else {
                assert_eq!(map.insert(key(n), n * 3), model.insert(key(n), n * 3));
            }
            if n % 7 == 0 {
                assert_eq!(map.remove(key(n / 2)), model.remove(&key(n / 2)));
            }
            if n % 1000 == 0 {
                map.settle();
            }
            if n == 30_000 {
                map.retain(|v| v % 5 != 0);
                model.retain(|_, v| *v % 5 != 0);
            }
        }
        map.settle();
        assert_eq!(map.len(), model.len());
        for n in 0..41_000 {
            assert_eq!(map.get(key(n)), model.get(&key(n)).copied(), "key {n}");
        }
        assert!(map.sorted.windows(2).all(|w| w[0].key < w[1].key));
    }

    #[test]
    fn an_entry_is_20_bytes() {
        assert_eq!(std::mem::size_of::<Entry>(), 20);
    }

    #[test]
    fn of_a_key_loaded_twice_the_greater_value_stays() {
        let map = DigestMap::from_entries(vec![
            Entry::new(key(1), 7),
            Entry::new(key(1), 9),
            Entry::new(key(1), 8),
        ]);
        assert_eq!((map.get(key(1)), map.len()), (Some(9), 1));
    }
}
