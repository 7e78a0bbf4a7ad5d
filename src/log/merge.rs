//! Several receivers' logs read as one record ([`Merge`]): Webex delivers
//! every event to every webhook registered for it, so two receivers with
//! webhooks of their own each record it, in chains of their own. A read
//! of both gives each event once, in received order, with the receivers
//! that had it.
//!
//! Two records of different receivers are the same event when they have
//! the same identity (event, membership id, membership created: the
//! writer's dedup key, [`identity`]). Records of one receiver are never
//! the same event: its writer already dropped the retried deliveries.
//! Copies of one delivery arrive within moments of each other, so a
//! record waits [`WINDOW`] for its copies before it is given out, with
//! every receiver that had it by then. A copy made later (a receiver that
//! was down reconciles, or backfills from the events API, and records
//! the change hours after the other received it) still counts once: the
//! events some receiver has not matched yet are remembered for
//! [`DEDUP_DAYS`], the writer's own window, and such a copy is given out
//! as [`Merged::Late`] for whoever keeps the list of receivers. A role
//! can be granted again under the same identity: a delivery of a role
//! change is a copy of another delivery only within [`WINDOW`]
//! ([`delivered_copy_window_ms`]).

use std::collections::{HashMap, VecDeque};

mod memory;

pub use memory::Follow;
use memory::{Memory, Unmatched};

use super::days::DEDUP_DAYS;
use super::record::{DedupKey, DigestHasher, Event, Source};

/// How long a record waits for the same event from the other receivers
/// before it is given out: the copies of one delivery arrive within
/// moments, and the hosts' clocks may be a little apart.
pub const WINDOW_MS: i64 = 5 * 60 * 1000;

/// [`WINDOW_MS`], for the documentation.
pub const WINDOW: std::time::Duration = std::time::Duration::from_millis(WINDOW_MS as u64);

/// How long an event some receiver has not matched yet is remembered.
pub const REMEMBER_MS: i64 = DEDUP_DAYS * 24 * 3600 * 1000;

/// At most this many receivers are merged.
pub const MAX_RECEIVERS: usize = 64;

/// What the merge needs to know of a record besides its time's text: read
/// once, and carried by a record that was scanned for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    /// Its seq in its receiver's log.
    pub seq: u64,
    /// `received_at` as [`millis`] reads it.
    pub at_ms: Option<i64>,
    /// Its event ([`delivered_copy_window_ms`]).
    pub event: Event,
    /// How it came to be recorded ([`delivered_copy_window_ms`]).
    pub source: Source,
    /// The event's identity ([`identity`]); `None` for a record no other
    /// receiver can have (the receiver's own starts and stops).
    pub identity: Option<u128>,
}

/// What the merge needs to know of a record.
pub trait Mergeable {
    /// `received_at` form: fixed-width, so it sorts as text in time order.
    fn received_at(&self) -> &str;
    /// The rest of what the merge reads of it.
    fn key(&self) -> Key;
    fn received_ms(&self) -> Option<i64> {
        self.key().at_ms
    }
    fn identity(&self) -> Option<u128> {
        self.key().identity
    }
    fn seq(&self) -> u64 {
        self.key().seq
    }
    fn source(&self) -> Source {
        self.key().source
    }
    fn event(&self) -> Event {
        self.key().event
    }
}

/// How long before a record of `event` from `source` the first copy of
/// its event may have been received, when that first copy was a webhook
/// delivery too. A role can be granted again, with the same identity:
/// the copies of one delivery of a role change come within [`WINDOW`] of
/// each other, so a delivery later than that is another grant. A join or
/// a leave happens once (its identity holds the membership's creation),
/// and a change found later (reconciled, from the events API) may be
/// recorded hours after it: for those, the whole of what is remembered.
pub fn delivered_copy_window_ms(event: Event, source: Source) -> i64 {
    let recurs = matches!(event, Event::ModeratorGranted | Event::ModeratorRevoked);
    if recurs && source == Source::Webhook {
        WINDOW_MS
    } else {
        REMEMBER_MS
    }
}

/// The identity of the event a record is of: the same in every receiver
/// that recorded it. The receiver's own records have none.
pub fn identity(
    event: Event,
    membership_id: &str,
    membership_created: Option<&str>,
) -> Option<u128> {
    event
        .is_membership()
        .then(|| DedupKey::new(event, membership_id, membership_created.unwrap_or("")).digest())
}

/// A set of receivers, by their place in the merge's inputs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Receivers(u64);

impl Receivers {
    pub fn one(receiver: usize) -> Self {
        Receivers(1 << receiver)
    }

    /// The first `n` receivers.
    pub fn first(n: usize) -> Self {
        Receivers(if n >= MAX_RECEIVERS {
            u64::MAX
        } else {
            (1 << n) - 1
        })
    }

    pub fn contains(self, receiver: usize) -> bool {
        self.0 & (1 << receiver) != 0
    }

    pub fn insert(&mut self, receiver: usize) {
        self.0 |= 1 << receiver;
    }

    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The receivers' places, in order.
    pub fn iter(self) -> impl Iterator<Item = usize> {
        (0..MAX_RECEIVERS).filter(move |&r| self.contains(r))
    }
}

/// What the merge gives out.
#[derive(Debug, PartialEq, Eq)]
pub enum Merged<T> {
    /// An event: the first record of it (from `receiver`), and every
    /// receiver that recorded it within [`WINDOW`] of that one.
    Event {
        record: T,
        receiver: usize,
        receivers: Receivers,
    },
    /// A later record of an event already given out, by a receiver that
    /// had not recorded it: counted once, the event's list of receivers
    /// gains `receiver`. `first` is the event's first record (its
    /// receiver and seq).
    Late {
        copy: T,
        receiver: usize,
        first: (usize, u64),
    },
}

/// The ids of the waiting events of one identity. Nearly always one:
/// kept in place, it costs the merge no allocation per record it takes.
enum Ids {
    One(u64),
    More(Vec<u64>),
}

impl Ids {
    fn as_slice(&self) -> &[u64] {
        match self {
            Ids::One(id) => std::slice::from_ref(id),
            Ids::More(ids) => ids,
        }
    }

    fn push(&mut self, id: u64) {
        match self {
            Ids::One(first) => *self = Ids::More(vec![*first, id]),
            Ids::More(ids) => ids.push(id),
        }
    }

    /// Removes `id`; true when none is left.
    fn remove(&mut self, id: u64) -> bool {
        match self {
            Ids::One(one) => *one == id,
            Ids::More(ids) => {
                ids.retain(|&other| other != id);
                ids.is_empty()
            }
        }
    }
}

/// An event waiting for its copies.
struct Waiting<T> {
    record: T,
    receiver: usize,
    receivers: Receivers,
    at_ms: i64,
    identity: Option<u128>,
}

type DigestMap<V> = HashMap<u128, V, std::hash::BuildHasherDefault<DigestHasher>>;

/// The merge of several receivers' records, each input in its log's
/// order; itself an iterator of [`Merged`] in received order.
pub struct Merge<T, I, E> {
    inputs: Vec<I>,
    heads: Vec<Option<T>>,
    all: Receivers,
    /// Events read, oldest first, waiting for their copies.
    waiting: VecDeque<Waiting<T>>,
    /// Ids of `waiting`'s events by identity: an event's place is its id
    /// less `first_waiting`.
    waiting_by_identity: DigestMap<Ids>,
    first_waiting: u64,
    /// Events given out that some receiver has not matched.
    unmatched: Memory,
    /// The time of the newest record read.
    now_ms: i64,
    /// An input's error, said once the events read before it are out.
    failed: Option<E>,
    ended: bool,
}

impl<T, E, I> Merge<T, I, E>
where
    T: Mergeable,
    I: Iterator<Item = Result<T, E>>,
{
    /// Merges `inputs`, one a receiver, in that order: a receiver's place
    /// in the output's [`Receivers`] is its place here.
    pub fn new(inputs: Vec<I>) -> Self {
        assert!(
            inputs.len() <= MAX_RECEIVERS,
            "at most {MAX_RECEIVERS} receivers"
        );
        let all = Receivers::first(inputs.len());
        let heads = inputs.iter().map(|_| None).collect();
        Merge {
            inputs,
            heads,
            all,
            waiting: VecDeque::new(),
            waiting_by_identity: DigestMap::default(),
            first_waiting: 0,
            unmatched: Memory::default(),
            now_ms: i64::MIN,
            failed: None,
            ended: false,
        }
    }

    /// Reads the next record of every input without one.
    fn fill(&mut self) -> Result<(), E> {
        for (input, head) in self.inputs.iter_mut().zip(&mut self.heads) {
            if head.is_none()
                && let Some(next) = input.next()
            {
                *head = Some(next?);
            }
        }
        Ok(())
    }

    /// The input whose next record was received first (the first input
    /// on a tie).
    fn earliest(&self) -> Option<usize> {
        let mut best: Option<(usize, &T)> = None;
        for (receiver, head) in self.heads.iter().enumerate() {
            if let Some(head) = head
                && best.is_none_or(|(_, best)| earlier(head, best))
            {
                best = Some((receiver, head));
            }
        }
        best.map(|(receiver, _)| receiver)
    }

    /// Takes in one record: a copy of an event waiting or given out, or a
    /// new one. Returns a late copy to give out.
    fn take(&mut self, record: T, receiver: usize) -> Option<Merged<T>> {
        let key = record.key();
        let at_ms = key.at_ms.unwrap_or(self.now_ms);
        self.forget_old();
        let identity = key.identity;
        if let Some(identity) = identity {
            if let Some(ids) = self.waiting_by_identity.get(&identity) {
                let first = self.first_waiting;
                if let Some(&id) = ids.as_slice().iter().find(|&&id| {
                    !self.waiting[(id - first) as usize]
                        .receivers
                        .contains(receiver)
                }) {
                    self.waiting[(id - first) as usize]
                        .receivers
                        .insert(receiver);
                    return None;
                }
            }
            if let Some(first) = self
                .unmatched
                .copy_of(&key, (identity, receiver, at_ms), self.all)
            {
                return Some(Merged::Late {
                    copy: record,
                    receiver,
                    first,
                });
            }
            let id = self.first_waiting + self.waiting.len() as u64;
            match self.waiting_by_identity.entry(identity) {
                std::collections::hash_map::Entry::Vacant(vacant) => {
                    vacant.insert(Ids::One(id));
                }
                std::collections::hash_map::Entry::Occupied(mut ids) => ids.get_mut().push(id),
            }
        }
        self.waiting.push_back(Waiting {
            record,
            receiver,
            receivers: Receivers::one(receiver),
            at_ms,
            identity,
        });
        None
    }

    /// The oldest waiting event, if it has all its copies, waited long
    /// enough, or nothing more can come (`ended`).
    fn ready(&mut self, ended: bool) -> Option<Merged<T>> {
        let front = self.waiting.front()?;
        let done = ended
            || front.receivers == self.all
            || front.at_ms.saturating_add(WINDOW_MS) < self.now_ms;
        if !done {
            return None;
        }
        let event = self.waiting.pop_front().expect("the front was just seen");
        let id = self.first_waiting;
        self.first_waiting += 1;
        if let Some(identity) = event.identity {
            if let Some(ids) = self.waiting_by_identity.get_mut(&identity)
                && ids.remove(id)
            {
                self.waiting_by_identity.remove(&identity);
            }
            if event.receivers != self.all {
                self.unmatched.remember(
                    identity,
                    Unmatched::of(
                        &event.record.key(),
                        event.receiver,
                        event.receivers,
                        event.at_ms,
                    ),
                );
            }
        }
        self.forget_old();
        Some(Merged::Event {
            record: event.record,
            receiver: event.receiver,
            receivers: event.receivers,
        })
    }

    /// Forgets the unmatched events older than the writer's dedup window.
    fn forget_old(&mut self) {
        self.unmatched.forget_before(self.now_ms);
    }

    /// Once the merge has given out everything (the iterator has ended):
    /// what it remembers, to go on with each record as it comes
    /// ([`Follow`]).
    pub fn into_follow(self) -> Follow {
        debug_assert!(
            self.waiting.is_empty(),
            "the merge has given out every event"
        );
        Follow {
            all: self.all,
            unmatched: self.unmatched,
            now_ms: self.now_ms,
        }
    }
}

impl<T, E, I> Iterator for Merge<T, I, E>
where
    T: Mergeable,
    I: Iterator<Item = Result<T, E>>,
{
    type Item = Result<Merged<T>, E>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.ended {
            return None;
        }
        loop {
            // An input that fails ends the merge as it ends a read of that
            // input alone: what was read before it is given out, then the
            // error.
            if self.failed.is_none()
                && let Err(e) = self.fill()
            {
                self.failed = Some(e);
            }
            if self.failed.is_some() {
                return match self.ready(true) {
                    Some(event) => Some(Ok(event)),
                    None => {
                        self.ended = true;
                        self.failed.take().map(Err)
                    }
                };
            }
            // The events that waited long enough by the next record's time
            // go out before it is taken in: it can no longer be their copy.
            let earliest = self.earliest();
            if let Some(receiver) = earliest {
                let head = self.heads[receiver].as_ref().expect("earliest has a head");
                if let Some(at_ms) = head.received_ms() {
                    self.now_ms = self.now_ms.max(at_ms);
                }
            }
            if let Some(event) = self.ready(earliest.is_none()) {
                return Some(Ok(event));
            }
            let receiver = earliest?;
            let record = self.heads[receiver].take().expect("earliest has a head");
            if let Some(late) = self.take(record, receiver) {
                return Some(Ok(late));
            }
        }
    }
}

/// Whether `a` was received before `b`: by their milliseconds when both
/// have them (the same order as their text, without reading it again for
/// every record the merge takes), else by their text.
fn earlier<T: Mergeable>(a: &T, b: &T) -> bool {
    match (a.received_ms(), b.received_ms()) {
        (Some(a), Some(b)) => a < b,
        _ => a.received_at() < b.received_at(),
    }
}

/// A `received_at`-form time moved by `by_ms` milliseconds; `None` for a
/// time of another form.
pub fn shifted(at: &str, by_ms: i64) -> Option<String> {
    let ms = millis(at)?.checked_add(by_ms)?;
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()?;
    Some(crate::log::record::format_timestamp(at))
}

/// Milliseconds since the epoch of a `received_at`
/// (`YYYY-MM-DDTHH:MM:SS.mmmZ`); `None` for anything else.
pub fn millis(at: &str) -> Option<i64> {
    let b = at.as_bytes();
    if b.len() != 24 || b[4] != b'-' || b[10] != b'T' || b[19] != b'.' || b[23] != b'Z' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        b[range].iter().try_fold(0i64, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + i64::from(d - b'0'))
        })
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second, milli) = (num(11..13)?, num(14..16)?, num(17..19)?, num(20..23)?);
    let month = u8::try_from(month)
        .ok()
        .and_then(|m| time::Month::try_from(m).ok())?;
    let date =
        time::Date::from_calendar_date(i32::try_from(year).ok()?, month, u8::try_from(day).ok()?)
            .ok()?;
    let midnight = date.midnight().assume_utc().unix_timestamp();
    Some(((midnight + (hour * 60 + minute) * 60 + second) * 1000) + milli)
}

#[cfg(test)]
mod tests;
