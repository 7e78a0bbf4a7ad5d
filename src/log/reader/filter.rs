//! Which records a command wants ([`Filter`]), and the times `--from` and
//! `--to` take ([`parse_time`]).

use time::format_description::well_known::Rfc3339;
use time::{Date, Duration, OffsetDateTime, Time};

use super::RecordView;
use crate::log::days;
use crate::log::record::{Event, Source, format_timestamp};

/// Which records a command wants. Times are kept in `received_at` form,
/// which is fixed-width, so comparing them as text compares the times.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Inclusive.
    pub from: Option<String>,
    /// Exclusive.
    pub to: Option<String>,
    pub room: Option<String>,
    pub person: Option<String>,
    /// The events wanted; empty for every event.
    pub events: Vec<Event>,
    pub source: Option<Source>,
}

/// A range of seqs, both ends inclusive (`export --from-seq/--to-seq`):
/// the records an index row names, read back from the log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeqRange {
    pub from: Option<u64>,
    pub to: Option<u64>,
}

impl SeqRange {
    pub fn contains(&self, seq: u64) -> bool {
        self.from.is_none_or(|from| seq >= from) && self.to.is_none_or(|to| seq <= to)
    }

    /// Checks that the range can hold anything at all.
    pub fn validate(&self) -> Result<(), FilterError> {
        match (self.from, self.to) {
            (Some(from), Some(to)) if from > to => Err(FilterError::NoSeqs { from, to }),
            _ => Ok(()),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FilterError {
    #[error("--from-seq ({from}) must not be after --to-seq ({to}); both are inclusive")]
    NoSeqs { from: u64, to: u64 },
    #[error("{0:?} is not a time: give YYYY-MM-DD or RFC 3339 (e.g. 2026-11-27T14:00:00Z)")]
    Time(String),
    #[error("--from ({from}) must be before --to ({to}); --to is exclusive")]
    Empty { from: String, to: String },
}

impl Filter {
    /// Checks that the range can hold anything at all.
    pub fn validate(&self) -> Result<(), FilterError> {
        match (&self.from, &self.to) {
            (Some(from), Some(to)) if from >= to => Err(FilterError::Empty {
                from: from.clone(),
                to: to.clone(),
            }),
            _ => Ok(()),
        }
    }

    /// Whether the day file for `date` can hold records in the range.
    pub fn may_hold(&self, date: Date) -> bool {
        let start = || format_timestamp(date.midnight().assume_utc());
        let end = || format_timestamp((date + Duration::days(1)).midnight().assume_utc());
        self.to.as_ref().is_none_or(|to| start() < *to)
            && self.from.as_ref().is_none_or(|from| end() > *from)
    }

    pub fn matches(&self, record: &RecordView<'_>) -> bool {
        (self.events.is_empty() || self.events.contains(&record.event))
            && self.source.is_none_or(|s| s == record.source)
            && self
                .from
                .as_deref()
                .is_none_or(|from| *record.received_at >= *from)
            && self
                .to
                .as_deref()
                .is_none_or(|to| *record.received_at < *to)
            && self
                .room
                .as_deref()
                .is_none_or(|room| *record.room_id == *room)
            && self.person.as_deref().is_none_or(|person| {
                record
                    .person_email
                    .as_deref()
                    .is_some_and(|email| same_email(email, person))
            })
    }
}

fn same_email(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
        || (!(a.is_ascii() && b.is_ascii()) && a.to_lowercase() == b.to_lowercase())
}

/// Parses `YYYY-MM-DD` (midnight UTC) or RFC 3339 into `received_at` form.
/// A time between two milliseconds is rounded up, so that comparing at
/// millisecond precision keeps `--from` inclusive and `--to` exclusive.
pub fn parse_time(text: &str) -> Result<String, FilterError> {
    let at = if let Some(date) = days::parse_day_name(text) {
        date.with_time(Time::MIDNIGHT).assume_utc()
    } else {
        OffsetDateTime::parse(text, &Rfc3339).map_err(|_| FilterError::Time(text.to_string()))?
    };
    let below_ms = at.nanosecond() % 1_000_000;
    let at = if below_ms == 0 {
        at
    } else {
        at + Duration::nanoseconds(i64::from(1_000_000 - below_ms))
    };
    Ok(format_timestamp(at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_means_midnight_utc_and_offsets_are_normalised() {
        assert_eq!(
            parse_time("2026-11-27").unwrap(),
            "2026-11-27T00:00:00.000Z"
        );
        assert_eq!(
            parse_time("2026-11-27T14:00:00+01:00").unwrap(),
            "2026-11-27T13:00:00.000Z"
        );
        assert_eq!(
            parse_time("2026-11-27T14:00:00.0001Z").unwrap(),
            "2026-11-27T14:00:00.001Z"
        );
        assert!(matches!(parse_time("yesterday"), Err(FilterError::Time(_))));
    }

    #[test]
    fn a_day_is_opened_only_if_it_overlaps_the_range() {
        let filter = Filter {
            from: Some(parse_time("2026-11-27T23:59:59Z").unwrap()),
            to: Some(parse_time("2026-11-29").unwrap()),
            ..Filter::default()
        };
        let day = |d| days::parse_day_name(d).unwrap();
        assert!(!filter.may_hold(day("2026-11-26")));
        assert!(filter.may_hold(day("2026-11-27")));
        assert!(filter.may_hold(day("2026-11-28")));
        assert!(!filter.may_hold(day("2026-11-29")));
    }
}
