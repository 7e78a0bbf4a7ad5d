//! A record as `tail` shows it by default: one readable line, its
//! control characters escaped.

use std::borrow::Cow;

use crate::log::reader::RecordView;
use crate::log::record::{Event, Source};

/// `2026-11-27 14:03:11Z  joined  Ana Silva <ana.silva@example.com> [moderator]  in Team room`,
/// or for the receiver's own records
/// `2026-11-27 14:03:11Z  receiver started - gap since 2026-11-27 13:58:02Z (after a crash)`.
/// `before` is the event of the record right before this one, when known.
pub fn readable(record: &RecordView<'_>, room: &str, before: Option<Event>) -> String {
    let when = shown_time(&record.received_at);
    let mut line = match record.event {
        Event::ReceiverStarted => {
            let mut line = format!("{when}  receiver started");
            if let Some(since) = record.not_before.as_deref() {
                line.push_str(&format!(" - gap since {}", shown_time(since)));
            }
            match before {
                Some(Event::ReceiverStopped) => line.push_str(" (after a clean stop)"),
                Some(_) => line.push_str(" (after a crash)"),
                None => {}
            }
            line
        }
        Event::ReceiverStopped => format!("{when}  receiver stopped (clean stop)"),
        event => {
            let name = record.person_display_name.as_deref().map(clean);
            let email = record.person_email.as_deref().map(clean);
            let who = match (name, email) {
                (Some(name), Some(email)) => format!("{name} <{email}>"),
                (Some(name), None) => name.into_owned(),
                (None, Some(email)) => format!("<{email}>"),
                (None, None) => clean(&record.person_id).into_owned(),
            };
            let mut marks = String::new();
            if record.is_moderator == Some(true) && event.moderator().is_none() {
                marks.push_str(" [moderator]");
            }
            if record.is_monitor == Some(true) {
                marks.push_str(" [monitor]");
            }
            let what = event.as_str().replace('_', " ");
            format!("{when}  {what:<6}  {who}{marks}  in {}", clean(room))
        }
    };
    if record.source != Source::Webhook {
        line.push_str(&format!("  [{}", record.source.as_str()));
        if record.event.is_membership()
            && let Some(after) = record.not_before.as_deref()
        {
            line.push_str(&format!(", between {} and {when}", shown_time(after)));
        }
        line.push(']');
    }
    line
}

/// `2026-11-27 14:03:11Z` from a `received_at`; anything else cleaned as is.
fn shown_time(at: &str) -> Cow<'_, str> {
    match (at.get(..10), at.get(11..19)) {
        (Some(date), Some(time)) => Cow::Owned(clean(&format!("{date} {time}Z")).into_owned()),
        _ => clean(at),
    }
}

/// Control characters (a newline in a display name, a terminal escape)
/// are shown escaped, so one record stays one harmless line.
pub(in crate::cmd) fn clean(text: &str) -> Cow<'_, str> {
    if text.chars().any(char::is_control) {
        Cow::Owned(
            text.chars()
                .map(|c| {
                    if c.is_control() {
                        c.escape_default().to_string()
                    } else {
                        c.to_string()
                    }
                })
                .collect(),
        )
    } else {
        Cow::Borrowed(text)
    }
}
