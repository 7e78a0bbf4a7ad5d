//! When the receiver was not receiving, from its own `receiver_started` /
//! `receiver_stopped` records: the one place that tells a clean restart
//! from a start after a crash.

use crate::log::record::Event;

/// A stretch of time in which deliveries were not being received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    /// `received_at` form.
    pub from: String,
    /// `None`: the receiver has not started since (it is stopped now).
    pub to: Option<String>,
    /// The receiver crashed (no clean stop) at some point after `from`.
    pub after_crash: bool,
}

impl Gap {
    /// Whether `at` lies strictly inside the gap.
    pub fn holds(&self, at: &str) -> bool {
        self.from.as_str() < at && self.to.as_deref().is_none_or(|to| at < to)
    }
}

/// What a `receiver_started` followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Nothing: the log begins with it.
    First,
    /// A clean stop.
    AfterStop,
    /// Records but no clean stop since the previous start: a crash, a
    /// kill, or a log older than the receiver's own records.
    AfterCrash,
}

/// The receiver's runs, seen record by record in log order.
#[derive(Debug, Clone, Default)]
pub struct Coverage {
    seen_any: bool,
    /// When the last clean stop since the last start was received.
    stopped_at: Option<String>,
    gaps: Vec<Gap>,
}

impl Coverage {
    /// Takes the next record of the log; for a `receiver_started`, says
    /// what it followed.
    pub fn see(
        &mut self,
        event: Event,
        received_at: &str,
        not_before: Option<&str>,
    ) -> Option<Start> {
        let start = match event {
            Event::ReceiverStarted => Some(match self.stopped_at.take() {
                Some(from) => {
                    self.gaps.push(Gap {
                        from,
                        to: Some(received_at.to_string()),
                        after_crash: false,
                    });
                    Start::AfterStop
                }
                None if !self.seen_any => Start::First,
                None => {
                    if let Some(from) = not_before {
                        self.gaps.push(Gap {
                            from: from.to_string(),
                            to: Some(received_at.to_string()),
                            after_crash: true,
                        });
                    }
                    Start::AfterCrash
                }
            }),
            Event::ReceiverStopped => {
                self.stopped_at = Some(received_at.to_string());
                None
            }
            _ => None,
        };
        self.seen_any = true;
        start
    }

    /// Goes on from where an earlier pass left off: whether it saw any
    /// record, and the clean stop not followed by a start yet.
    pub fn resume(seen_any: bool, stopped_at: Option<String>) -> Self {
        Self {
            seen_any,
            stopped_at,
            gaps: Vec::new(),
        }
    }

    /// The closed gaps found since the last call (or the start), oldest
    /// first, for a pass that stores them as it goes.
    pub fn take_closed(&mut self) -> Vec<Gap> {
        std::mem::take(&mut self.gaps)
    }

    /// When the receiver stopped cleanly, if it has not started since.
    pub fn stopped_at(&self) -> Option<&str> {
        self.stopped_at.as_deref()
    }

    /// Every gap so far, oldest first; a clean stop not followed by a
    /// start yet is a gap open until now.
    pub fn gaps(&self) -> Vec<Gap> {
        let mut gaps = self.gaps.clone();
        if let Some(from) = &self.stopped_at {
            gaps.push(Gap {
                from: from.clone(),
                to: None,
                after_crash: false,
            });
        }
        gaps
    }
}

/// One receiver of a merged read, as its own records tell when it was
/// receiving.
#[derive(Debug, Clone, Default)]
pub struct Heard<'a> {
    /// `received_at` of its first record; `None` for one with none.
    pub first_at: Option<&'a str>,
    /// `received_at` of its last record.
    pub last_at: Option<&'a str>,
    /// `received_at` of its last webhook delivery of a membership event.
    pub last_delivery_at: Option<&'a str>,
    /// Its own gaps, oldest first.
    pub gaps: Vec<Gap>,
}

/// Where every receiver was down at once: the only coverage gaps of a
/// merged read. A receiver is down before its first record (nothing
/// before every receiver's first record is a gap: nothing was listening
/// yet) and in its own gaps. A receiver whose log ends without a clean
/// stop counts as down from its last record once another receiver
/// recorded a delivery more than [`WINDOW`](crate::log::merge::WINDOW)
/// after it: Webex delivers every event to every receiver, so one that
/// was up would have recorded it too; it died there, without a stop. One
/// that was only quiet, with no delivery anywhere since, is up until now,
/// as a receiver read alone is. A shared gap is after a crash when one of
/// the gaps it lies in is.
pub fn shared(receivers: &[Heard<'_>]) -> Vec<Gap> {
    let ms = |at: Option<&str>| at.and_then(crate::log::merge::millis);
    let last_delivery = receivers
        .iter()
        .filter_map(|r| ms(r.last_delivery_at))
        .max();
    // Down-times as (from, to) with "" before any time and `None` after.
    let mut shared: Option<Vec<Gap>> = None;
    for receiver in receivers {
        let mut down = vec![Gap {
            from: String::new(),
            to: receiver.first_at.map(str::to_string),
            after_crash: false,
        }];
        if receiver.first_at.is_some() {
            down.extend(receiver.gaps.iter().cloned());
            let stopped = down.last().is_some_and(|gap| gap.to.is_none());
            let missed = |last_at: i64| {
                last_delivery
                    .is_some_and(|delivery| delivery > last_at + crate::log::merge::WINDOW_MS)
            };
            if let Some(last_at) = receiver.last_at
                && !stopped
                && ms(Some(last_at)).is_some_and(missed)
            {
                down.push(Gap {
                    from: last_at.to_string(),
                    to: None,
                    after_crash: true,
                });
            }
        }
        shared = Some(match shared {
            None => down,
            Some(so_far) => intersect(&so_far, &down),
        });
    }
    shared
        .unwrap_or_default()
        .into_iter()
        .filter(|gap| !gap.from.is_empty())
        .collect()
}

/// The stretches two lists of gaps (each in time order, none
/// overlapping another of its list) have in common.
fn intersect(a: &[Gap], b: &[Gap]) -> Vec<Gap> {
    let ends_before = |x: &Gap, y: &Gap| match (&x.to, &y.to) {
        (Some(x), Some(y)) => x <= y,
        (Some(_), None) => true,
        (None, _) => false,
    };
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() && j < b.len() {
        let (x, y) = (&a[i], &b[j]);
        let from = x.from.clone().max(y.from.clone());
        let to = if ends_before(x, y) { &x.to } else { &y.to };
        if to.as_ref().is_none_or(|to| from < *to) {
            out.push(Gap {
                from,
                to: to.clone(),
                after_crash: x.after_crash || y.after_crash,
            });
        }
        if ends_before(x, y) {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const T1: &str = "2026-11-27T10:00:00.000Z";
    const T2: &str = "2026-11-27T11:00:00.000Z";
    const T3: &str = "2026-11-27T12:00:00.000Z";
    const T4: &str = "2026-11-27T13:00:00.000Z";

    #[test]
    fn a_clean_stop_and_a_crash_each_leave_a_gap_until_the_next_start() {
        let mut c = Coverage::default();
        assert_eq!(c.see(Event::ReceiverStarted, T1, None), Some(Start::First));
        assert_eq!(c.see(Event::ReceiverStopped, T2, None), None);
        assert_eq!(
            c.see(Event::ReceiverStarted, T3, Some(T2)),
            Some(Start::AfterStop)
        );
        c.see(Event::Joined, T3, None);
        assert_eq!(
            c.see(Event::ReceiverStarted, T4, Some(T3)),
            Some(Start::AfterCrash)
        );
        let gaps = c.gaps();
        assert_eq!(gaps.len(), 2);
        assert_eq!((gaps[0].from.as_str(), gaps[0].after_crash), (T2, false));
        assert_eq!((gaps[1].from.as_str(), gaps[1].after_crash), (T3, true));
        assert!(gaps[1].holds("2026-11-27T12:30:00.000Z"));
        assert!(!gaps[1].holds(T4));
    }

    #[test]
    fn a_log_older_than_receiver_records_starts_as_after_a_crash() {
        let mut c = Coverage::default();
        c.see(Event::Joined, T1, None);
        assert_eq!(
            c.see(Event::ReceiverStarted, T2, Some(T1)),
            Some(Start::AfterCrash)
        );
    }

    #[test]
    fn a_stop_without_a_start_since_is_a_gap_until_now() {
        let mut c = Coverage::default();
        c.see(Event::ReceiverStarted, T1, None);
        c.see(Event::ReceiverStopped, T2, None);
        let gaps = c.gaps();
        assert_eq!(gaps[0].to, None);
        assert!(gaps[0].holds("2030-01-01T00:00:00.000Z"));
    }

    fn gap(from: &str, to: Option<&str>, after_crash: bool) -> Gap {
        Gap {
            from: from.into(),
            to: to.map(str::to_string),
            after_crash,
        }
    }

    /// A receiver heard from `first` to `last` (a delivery then), with
    /// `gaps`.
    fn heard<'a>(first: Option<&'a str>, last: Option<&'a str>, gaps: &[Gap]) -> Heard<'a> {
        Heard {
            first_at: first,
            last_at: last,
            last_delivery_at: last,
            gaps: gaps.to_vec(),
        }
    }

    #[test]
    fn receivers_share_a_gap_only_where_all_of_them_were_down() {
        let a = vec![gap(T1, Some(T3), false)];
        let b = vec![gap(T2, Some(T4), true)];
        let both = shared(&[heard(Some(T1), Some(T4), &a), heard(Some(T1), Some(T4), &b)]);
        assert_eq!(both, vec![gap(T2, Some(T3), true)]);
        // Alone, a receiver's gaps are its own.
        assert_eq!(shared(&[heard(Some(T1), Some(T4), &a)]), a);
    }

    #[test]
    fn a_receiver_that_began_later_was_down_before_its_first_record() {
        let a = vec![gap(T1, Some(T3), false)];
        let nine = "2026-11-27T09:00:00.000Z";
        let shared = shared(&[
            heard(Some(nine), Some(T4), &a),
            heard(Some(T2), Some(T4), &[]),
        ]);
        assert_eq!(shared, vec![gap(T1, Some(T2), false)]);
    }

    #[test]
    fn an_open_gap_is_shared_until_one_receiver_starts_again() {
        let a = vec![gap(T2, None, false)];
        let b = vec![gap(T3, None, false)];
        assert_eq!(
            shared(&[heard(Some(T1), Some(T2), &a), heard(Some(T1), Some(T3), &b)]),
            vec![gap(T3, None, false)]
        );
        // A receiver with no record at all adds nothing.
        assert_eq!(
            shared(&[heard(Some(T1), Some(T2), &a), heard(None, None, &[])]),
            a
        );
        assert!(
            shared(&[
                heard(Some(T1), Some(T4), &[]),
                heard(Some(T1), Some(T3), &b)
            ])
            .is_empty()
        );
    }

    #[test]
    fn a_receiver_whose_log_ends_before_a_delivery_it_lacks_is_down_after_its_last_record() {
        // b died after T1; a was down from T2 to T3, and recorded a
        // delivery at T4 that b lacks.
        let a = vec![gap(T2, Some(T3), false)];
        let receivers = [
            heard(Some(T1), Some(T4), &a),
            heard(Some(T1), Some(T1), &[]),
        ];
        assert_eq!(shared(&receivers), vec![gap(T2, Some(T3), true)]);
        // b only quiet: a restarted, and no delivery came since b's last
        // record. Nothing says b was not listening.
        let restarted = Heard {
            last_delivery_at: Some(T1),
            ..heard(Some(T1), Some(T4), &a)
        };
        assert!(shared(&[restarted, heard(Some(T1), Some(T1), &[])]).is_empty());
        // Read alone, a receiver is up after its last record.
        assert!(shared(&[heard(Some(T1), Some(T1), &[])]).is_empty());
    }
}
