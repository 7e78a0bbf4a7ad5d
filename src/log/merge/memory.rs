//! What a merge remembers of the events it gave out that some receiver
//! has not recorded yet ([`Memory`]), so that a copy made later counts
//! once; and [`Follow`], which gives each event out at its first copy
//! with the same memory.

use std::collections::VecDeque;

use super::{DigestMap, Key, Mergeable, REMEMBER_MS, Receivers, delivered_copy_window_ms};
use crate::log::record::Source;

/// An event given out that some receiver has not recorded yet.
#[derive(Debug, Clone, Copy)]
pub(super) struct Unmatched {
    pub first: (usize, u64),
    pub receivers: Receivers,
    pub at_ms: i64,
    /// Its first copy was a webhook delivery
    /// ([`super::delivered_copy_window_ms`]).
    pub delivered: bool,
}

impl Unmatched {
    /// The record of `key`, the first copy of an event, from `receiver`, received at
    /// `at_ms`, that `receivers` recorded.
    pub(super) fn of(key: &Key, receiver: usize, receivers: Receivers, at_ms: i64) -> Self {
        Unmatched {
            first: (receiver, key.seq),
            receivers,
            at_ms,
            delivered: key.source == Source::Webhook,
        }
    }
}

/// The events given out that some receiver has not recorded yet, by
/// identity, oldest first, and their identities by time to forget them
/// after the writer's dedup window: fixed-size entries, so a week of a
/// receiver's downtime costs little.
#[derive(Default)]
pub(super) struct Memory {
    events: DigestMap<Events>,
    by_time: VecDeque<(i64, u128)>,
}

/// The events of one identity, oldest first. Nearly every identity has
/// one: kept in place, it costs no allocation of its own (merging the
/// merge bench's log of 1,000,000 records with an empty one, so that
/// 700,000 events are remembered at once: 142 MB at peak, against 206 MB
/// with a queue for each identity).
enum Events {
    One(Unmatched),
    More(VecDeque<Unmatched>),
}

impl Events {
    fn as_slice_mut(&mut self) -> (&mut [Unmatched], &mut [Unmatched]) {
        match self {
            Events::One(one) => (std::slice::from_mut(one), &mut []),
            Events::More(more) => more.as_mut_slices(),
        }
    }

    /// Removes the `at`-th event; true when none is left.
    fn remove(&mut self, at: usize) -> bool {
        match self {
            Events::One(_) => true,
            Events::More(more) => {
                more.remove(at);
                more.is_empty()
            }
        }
    }
}

impl Memory {
    pub(super) fn remember(&mut self, identity: u128, event: Unmatched) {
        self.by_time.push_back((event.at_ms, identity));
        match self.events.entry(identity) {
            std::collections::hash_map::Entry::Vacant(vacant) => {
                vacant.insert(Events::One(event));
            }
            std::collections::hash_map::Entry::Occupied(mut occupied) => {
                let events = occupied.get_mut();
                match events {
                    Events::One(one) => *events = Events::More(VecDeque::from([*one, event])),
                    Events::More(more) => more.push_back(event),
                }
            }
        }
    }

    /// The record of `record` (its key) of `receiver`, with this identity, received at `at_ms`,
    /// as a copy: the oldest remembered event `receiver` has no copy of
    /// yet, and whose first copy is recent enough if it was a delivery
    /// ([`delivered_copy_window_ms`]), gains it; its first record is
    /// returned. Forgotten once every receiver of `all` has it.
    pub(super) fn copy_of(
        &mut self,
        record: &Key,
        (identity, receiver, at_ms): (u128, usize, i64),
        all: Receivers,
    ) -> Option<(usize, u64)> {
        let since_ms = at_ms.saturating_sub(delivered_copy_window_ms(record.event, record.source));
        let events = self.events.get_mut(&identity)?;
        let (front, back) = events.as_slice_mut();
        let at = front.iter().chain(back.iter()).position(|e| {
            !e.receivers.contains(receiver) && (!e.delivered || e.at_ms >= since_ms)
        })?;
        let event = if at < front.len() {
            &mut front[at]
        } else {
            &mut back[at - front.len()]
        };
        event.receivers.insert(receiver);
        let first = event.first;
        if event.receivers == all && events.remove(at) {
            self.events.remove(&identity);
        }
        Some(first)
    }

    pub(super) fn forget_before(&mut self, now_ms: i64) {
        while let Some(&(at_ms, identity)) = self.by_time.front() {
            if at_ms.saturating_add(REMEMBER_MS) >= now_ms {
                break;
            }
            self.by_time.pop_front();
            let emptied = match self.events.get_mut(&identity) {
                Some(Events::One(one)) => one.at_ms == at_ms,
                Some(Events::More(more)) => {
                    more.retain(|e| e.at_ms != at_ms);
                    more.is_empty()
                }
                None => false,
            };
            if emptied {
                self.events.remove(&identity);
            }
        }
    }
}

/// Each event given out at its first copy, without waiting for the
/// others (`tail -f`): a later copy, from another receiver within the
/// writer's dedup window, is recognised and not given out again.
pub struct Follow {
    pub(super) all: Receivers,
    pub(super) unmatched: Memory,
    pub(super) now_ms: i64,
}

impl Follow {
    /// Following `receivers` receivers with nothing read before.
    pub fn new(receivers: usize) -> Self {
        Follow {
            all: Receivers::first(receivers),
            unmatched: Memory::default(),
            now_ms: i64::MIN,
        }
    }

    /// Takes the next record of `receiver` (each receiver's in its log's
    /// order): `None` for a new event, to give out now; for a copy of one
    /// given out already, that event's first record (receiver and seq).
    pub fn take<T: Mergeable>(&mut self, record: &T, receiver: usize) -> Option<(usize, u64)> {
        let key = record.key();
        let at_ms = key.at_ms.unwrap_or(self.now_ms);
        self.now_ms = self.now_ms.max(at_ms);
        self.unmatched.forget_before(self.now_ms);
        let identity = key.identity?;
        if let Some(first) = self
            .unmatched
            .copy_of(&key, (identity, receiver, at_ms), self.all)
        {
            return Some(first);
        }
        let receivers = Receivers::one(receiver);
        if receivers != self.all {
            self.unmatched
                .remember(identity, Unmatched::of(&key, receiver, receivers, at_ms));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{Input, R, granted, r, reconciled};
    use super::super::{DEDUP_DAYS, Merge};
    use super::*;

    /// What a follower makes of records as they come: `None` for a new
    /// event, else the first record's (receiver, seq).
    fn follow(follow: &mut Follow, records: &[(usize, R)]) -> Vec<Option<(usize, u64)>> {
        records
            .iter()
            .map(|(receiver, record)| follow.take(record, *receiver))
            .collect()
    }

    #[test]
    fn a_follower_gives_out_an_event_at_its_first_copy_and_never_again() {
        let mut f = Follow::new(2);
        let seen = follow(
            &mut f,
            &[
                (0, r(0, Some(1), 1)),
                (1, r(1, Some(1), 7)),
                (1, r(2, Some(2), 8)),
                // Hours later, A reconciles what it missed.
                (0, reconciled(3 * 3600, Some(2), 2)),
                // The same identity again at A is another event (a role
                // granted twice); its copy at B pairs with it.
                (0, r(4 * 3600, Some(1), 3)),
                (1, r(4 * 3600 + 1, Some(1), 9)),
                (0, r(4 * 3600 + 2, None, 4)),
                (1, r(4 * 3600 + 2, None, 10)),
            ],
        );
        assert_eq!(
            seen,
            vec![
                None,
                Some((0, 1)),
                None,
                Some((1, 8)),
                None,
                Some((0, 3)),
                None,
                None
            ]
        );
    }

    #[test]
    fn a_follower_goes_on_from_what_the_merge_remembers() {
        let a = vec![r(0, Some(1), 1), r(100, Some(2), 2)];
        let b = vec![r(101, Some(2), 5)];
        let inputs: Vec<Input> = vec![a, b]
            .into_iter()
            .map(|records| records.into_iter().map(Ok).collect::<Vec<_>>().into_iter())
            .collect();
        let mut merge = Merge::new(inputs);
        assert_eq!(merge.by_ref().count(), 2);
        let mut f = merge.into_follow();
        let days = DEDUP_DAYS * 24 * 3600;
        assert_eq!(
            follow(
                &mut f,
                &[
                    (1, reconciled(3600, Some(1), 6)),
                    (1, reconciled(days + 3600, Some(2), 7))
                ]
            ),
            vec![Some((0, 1)), None],
            "B's late copy of A's first event is known; a week on, nothing is"
        );
    }

    #[test]
    fn a_follower_takes_a_delivery_as_a_copy_only_within_the_window() {
        let mut f = Follow::new(2);
        let seen = follow(
            &mut f,
            &[
                // A role granted at A while B was down...
                (0, granted(0, Some(1), 1)),
                // ...and granted again hours later: B's delivery of the
                // second grant is that grant, not a copy of the first.
                (1, granted(4 * 3600, Some(1), 5)),
                (0, granted(4 * 3600 + 1, Some(1), 2)),
            ],
        );
        assert_eq!(seen, vec![None, None, Some((1, 5))]);
    }
}
