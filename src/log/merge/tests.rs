//! The merge's tests, and the test records [`memory`](super::memory)'s
//! tests share.

use super::*;

/// A record for the tests: its time in seconds after 10:00, its
/// identity and seq.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct R {
    at: String,
    id: Option<u128>,
    pub(super) seq: u64,
    source: Source,
    event: Event,
}

impl Mergeable for R {
    fn received_at(&self) -> &str {
        &self.at
    }
    fn key(&self) -> Key {
        Key {
            seq: self.seq,
            at_ms: millis(&self.at),
            event: self.event,
            source: self.source,
            identity: self.id,
        }
    }
}

pub(super) fn r(seconds: i64, id: Option<u128>, seq: u64) -> R {
    let at = time::macros::datetime!(2026-11-27 10:00 UTC) + time::Duration::seconds(seconds);
    R {
        at: crate::log::record::format_timestamp(at),
        id,
        seq,
        source: Source::Webhook,
        event: Event::Joined,
    }
}

/// [`r`], of a role granted.
pub(super) fn granted(seconds: i64, id: Option<u128>, seq: u64) -> R {
    R {
        event: Event::ModeratorGranted,
        ..r(seconds, id, seq)
    }
}

/// [`r`], for a change found later by a reconciliation.
pub(super) fn reconciled(seconds: i64, id: Option<u128>, seq: u64) -> R {
    R {
        source: Source::Reconciled,
        ..r(seconds, id, seq)
    }
}

pub(super) type Input = std::vec::IntoIter<Result<R, ()>>;

fn merge(inputs: Vec<Vec<R>>) -> Vec<Merged<R>> {
    let inputs: Vec<Input> = inputs
        .into_iter()
        .map(|records| records.into_iter().map(Ok).collect::<Vec<_>>().into_iter())
        .collect();
    Merge::new(inputs).map(Result::unwrap).collect()
}

/// The events given out: (seq, receiver, receivers).
fn events(merged: &[Merged<R>]) -> Vec<(u64, usize, Vec<usize>)> {
    merged
        .iter()
        .filter_map(|m| match m {
            Merged::Event {
                record,
                receiver,
                receivers,
            } => Some((record.seq, *receiver, receivers.iter().collect())),
            Merged::Late { .. } => None,
        })
        .collect()
}

#[test]
fn the_same_delivery_at_two_receivers_is_one_event_listing_both() {
    let a = vec![r(0, Some(1), 1), r(10, Some(2), 2), r(20, Some(3), 3)];
    let b = vec![r(1, Some(1), 7), r(9, Some(2), 8), r(21, Some(3), 9)];
    assert_eq!(
        events(&merge(vec![a, b])),
        vec![(1, 0, vec![0, 1]), (8, 1, vec![0, 1]), (3, 0, vec![0, 1])]
    );
}

#[test]
fn an_event_one_receiver_missed_is_given_out_once_in_received_order() {
    let a = vec![r(0, Some(1), 1), r(100, Some(2), 2), r(200, Some(3), 3)];
    let b = vec![r(0, Some(1), 1), r(150, Some(4), 2), r(201, Some(3), 3)];
    assert_eq!(
        events(&merge(vec![a, b])),
        vec![
            (1, 0, vec![0, 1]),
            (2, 0, vec![0]),
            (2, 1, vec![1]),
            (3, 0, vec![0, 1])
        ]
    );
}

#[test]
fn the_receivers_own_records_are_never_the_same_event() {
    let a = vec![r(0, None, 1)];
    let b = vec![r(0, None, 1)];
    assert_eq!(
        events(&merge(vec![a, b])),
        vec![(1, 0, vec![0]), (1, 1, vec![1])]
    );
}

#[test]
fn two_events_of_one_identity_pair_up_in_order_across_receivers() {
    // A role granted twice (the identity does not tell the grants
    // apart): each receiver's first is one event, its second another.
    let a = vec![r(0, Some(5), 1), r(30, Some(5), 2)];
    let b = vec![r(1, Some(5), 1)];
    assert_eq!(
        events(&merge(vec![a, b])),
        vec![(1, 0, vec![0, 1]), (2, 0, vec![0])]
    );
}

#[test]
fn a_copy_made_hours_later_counts_once_and_is_given_out_as_late() {
    // B was down at 10:00 and reconciled the join at 13:00.
    let a = vec![r(0, Some(1), 1), r(20_000, Some(2), 2)];
    let b = vec![reconciled(3 * 3600, Some(1), 4), r(20_001, Some(2), 5)];
    let merged = merge(vec![a, b]);
    assert_eq!(events(&merged), vec![(1, 0, vec![0]), (2, 0, vec![0, 1])]);
    let late: Vec<_> = merged
        .iter()
        .filter_map(|m| match m {
            Merged::Late {
                copy,
                receiver,
                first,
            } => Some((copy.seq, *receiver, *first)),
            Merged::Event { .. } => None,
        })
        .collect();
    assert_eq!(late, vec![(4, 1, (0, 1))]);
}

#[test]
fn a_copy_after_the_dedup_window_is_another_event() {
    let days = DEDUP_DAYS * 24 * 3600;
    let a = vec![r(0, Some(1), 1)];
    let b = vec![reconciled(days + 3600, Some(1), 1)];
    assert_eq!(
        events(&merge(vec![a, b])),
        vec![(1, 0, vec![0]), (1, 1, vec![1])]
    );
}

#[test]
fn a_delivery_hours_after_an_event_one_receiver_missed_is_not_its_copy() {
    // A role granted twice (one identity): B was down for the first
    // grant, and its delivery of the second is received first.
    let a = vec![granted(0, Some(5), 1), granted(4 * 3600, Some(5), 2)];
    let b = vec![granted(4 * 3600 - 1, Some(5), 1)];
    let merged = merge(vec![a, b]);
    assert_eq!(events(&merged), vec![(1, 0, vec![0]), (1, 1, vec![0, 1])]);
    assert!(!merged.iter().any(|m| matches!(m, Merged::Late { .. })));
}

#[test]
fn a_join_delivered_an_hour_late_to_one_receiver_is_still_its_copy() {
    // A join happens once: a delivery of it an hour after the other
    // receiver's (a clock set wrong, a delayed delivery) is a copy.
    let a = vec![r(0, Some(5), 1)];
    let b = vec![r(3600, Some(5), 1)];
    let merged = merge(vec![a, b]);
    assert_eq!(events(&merged), vec![(1, 0, vec![0])]);
    assert!(merged.iter().any(|m| matches!(m, Merged::Late { .. })));
}

#[test]
fn one_receiver_reads_as_itself() {
    let a: Vec<R> = (0..50)
        .map(|n| r(n, Some(u128::from(n as u64 % 7)), n as u64 + 1))
        .collect();
    let merged = merge(vec![a.clone()]);
    assert_eq!(merged.len(), a.len());
    for (m, record) in merged.iter().zip(&a) {
        assert!(matches!(m, Merged::Event { record: got, receiver: 0, .. } if got == record));
    }
}

#[test]
fn an_input_that_fails_ends_the_merge_with_its_error() {
    let a: Input = vec![Ok(r(0, Some(1), 1)), Err(())].into_iter();
    let b: Input = vec![Ok(r(1, Some(2), 1))].into_iter();
    let out: Vec<_> = Merge::new(vec![a, b]).collect();
    assert_eq!(out.iter().filter(|m| m.is_err()).count(), 1);
    assert!(out.last().unwrap().is_err());
}

#[test]
fn the_events_read_before_an_input_fails_are_given_out_before_its_error() {
    // A's second line is damaged: its first, and B's that came before
    // it, are still read, as a read of A alone would give A's first.
    let a: Input = vec![Ok(r(0, Some(1), 1)), Ok(r(5, Some(2), 2)), Err(())].into_iter();
    let b: Input = vec![Ok(r(1, Some(1), 1)), Ok(r(2, Some(3), 2))].into_iter();
    let out: Vec<_> = Merge::new(vec![a, b]).collect();
    let (given, failed): (Vec<_>, Vec<_>) = out.into_iter().partition(Result::is_ok);
    let given: Vec<_> = given.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        events(&given),
        vec![(1, 0, vec![0, 1]), (2, 1, vec![1]), (2, 0, vec![0])]
    );
    assert_eq!(failed.len(), 1);
}

#[test]
fn received_at_reads_as_milliseconds_since_the_epoch() {
    assert_eq!(millis("1970-01-01T00:00:00.000Z"), Some(0));
    assert_eq!(millis("1970-01-02T00:00:01.250Z"), Some(86_401_250));
    assert_eq!(
        millis("2026-11-27T10:00:00.000Z"),
        Some(time::macros::datetime!(2026-11-27 10:00 UTC).unix_timestamp() * 1000)
    );
    assert_eq!(millis("2026-11-27"), None);
    assert_eq!(millis("2026-13-27T10:00:00.000Z"), None);
}
