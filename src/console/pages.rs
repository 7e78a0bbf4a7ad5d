//! The console's HTML: one function per page, built with maud, which
//! checks the markup when the crate compiles and escapes every value put
//! into it (a display name of `<script>` is shown as text).

use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::checks::Status;
use super::index::{Gap, Index, Row};
use super::search::{Hits, PAGE_ROWS, Query};
use crate::log::record::{Event, Source};
use crate::log::roster::Present;

/// What every page after login knows: the session's CSRF token, for the
/// logout form.
pub struct Frame<'a> {
    pub csrf: &'a str,
}

fn layout(title: &str, frame: Option<&Frame<'_>>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · rollcall" }
                link rel="stylesheet" href="/assets/console.css";
            }
            body {
                header {
                    a.brand href="/" { "rollcall" }
                    @if let Some(frame) = frame {
                        nav {
                            a href="/" { "Search" }
                            a href="/integrity" { "Integrity" }
                            form method="post" action="/logout" {
                                input type="hidden" name="csrf" value=(frame.csrf);
                                button type="submit" { "Log out" }
                            }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

pub fn login(error: Option<&str>) -> Markup {
    layout(
        "Log in",
        None,
        html! {
            h1 { "Log in" }
            p { "The audit log holds personal data: the console shows nothing without the console password." }
            @if let Some(error) = error {
                p.error role="alert" { (error) }
            }
            form.login method="post" action="/login" {
                label for="password" { "Console password" }
                input #password type="password" name="password" autocomplete="current-password" required autofocus;
                button type="submit" { "Log in" }
            }
        },
    )
}

/// A plain page with a message: errors, "not found".
pub fn message(frame: Option<&Frame<'_>>, title: &str, text: &str) -> Markup {
    layout(
        title,
        frame,
        html! {
            h1 { (title) }
            p.error { (text) }
            p { a href="/" { "Back to the search" } }
        },
    )
}

fn options<T: Copy>(all: &[T], name: fn(T) -> &'static str, chosen: &str) -> Markup {
    html! {
        option value="" { "any" }
        @for item in all {
            @let value = name(*item);
            option value=(value) selected[value == chosen] { (value) }
        }
    }
}

/// The search form, its results, and the download link.
pub fn search(
    frame: &Frame<'_>,
    query: &Query,
    hits: Result<&Hits, &str>,
    index: &Index,
    download: Result<(), &str>,
) -> Markup {
    layout(
        "Search",
        Some(frame),
        html! {
            h1 { "Search the record" }
            form.search method="get" action="/" {
                label { "Person" input type="search" name="person" value=(query.person) placeholder="whole email, or part of an email or name"; }
                label { "Room" input type="search" name="room" value=(query.room) placeholder="room id, or part of a title"; }
                label { "Event" select name="event" { (options(&Event::ALL, Event::as_str, &query.event)) } }
                label { "Source" select name="source" { (options(&Source::ALL, Source::as_str, &query.source)) } }
                label { "From" input type="text" name="from" value=(query.from) placeholder="YYYY-MM-DD or RFC 3339 (UTC)"; }
                label { "To (exclusive)" input type="text" name="to" value=(query.to) placeholder="YYYY-MM-DD or RFC 3339 (UTC)"; }
                button type="submit" { "Search" }
            }
            @match hits {
                Err(error) => p.error role="alert" { (error) },
                Ok(hits) => {
                    p.summary {
                        (hits.total) " records, newest first"
                        @if hits.total > PAGE_ROWS { ", page " (hits.page + 1) " of " (hits.pages()) }
                        ". "
                        @match download {
                            Ok(()) => a #download href={ "/download?" (query.encoded()) } { "Download as CSV" },
                            Err(why) => span.note { "No download: " (why) "." },
                        }
                    }
                    (records(&hits.rows, index, true))
                    (pager(hits, &format!("/?{}", query.encoded())))
                }
            }
        },
    )
}

fn pager(hits: &Hits, base: &str) -> Markup {
    html! {
        @if hits.pages() > 1 {
            nav.pager {
                @if hits.page > 0 { a rel="prev" href={ (base) "&page=" (hits.page - 1) } { "Newer" } }
                @if hits.page + 1 < hits.pages() { a rel="next" href={ (base) "&page=" (hits.page + 1) } { "Older" } }
            }
        }
    }
}

/// Rows as a table; each links to its room and person.
fn records(rows: &[Row], index: &Index, show_room: bool) -> Markup {
    html! {
        table.records {
            thead { tr {
                th { "seq" } th { "received" } th { "event" }
                @if show_room { th { "room" } }
                th { "person" } th { "source" }
            } }
            tbody {
                @for row in rows {
                    tr.(row.event.as_str()) {
                        td.num { (row.seq) }
                        td.time {
                            (row.received_at())
                            @if let Some(not_before) = index.not_before(row.seq) {
                                br; small { "after " (not_before) }
                            }
                        }
                        td { (row.event.as_str()) }
                        @if show_room {
                            td { @if let Some(room) = index.room(row) {
                                a href={ "/room?id=" (encode(&room.id)) } { (room.title.as_deref().unwrap_or(&room.id)) }
                            } }
                        }
                        td { @if let Some(person) = index.person(row) {
                            a href={ "/person?id=" (encode(&person.id)) } { (person.name.as_deref().unwrap_or("")) }
                            @if let Some(email) = &person.email { " " small { (email) } }
                        } }
                        td { (row.source.as_str()) }
                    }
                }
            }
        }
    }
}

/// The room page: who is in it now (or at a time), its gaps and history.
pub struct RoomView<'a> {
    pub id: &'a str,
    pub title: Option<&'a str>,
    pub at: &'a str,
    pub roster: Result<Roster, String>,
    pub gaps: &'a [Gap],
    pub history: &'a Hits,
}

/// Who was in a room at a time, and what the log cannot say.
pub struct Roster {
    /// `None`: now.
    pub at: Option<String>,
    pub warnings: Vec<String>,
    pub members: Vec<Present>,
}

pub fn room(frame: &Frame<'_>, view: &RoomView<'_>, index: &Index) -> Markup {
    let base = format!("/room?id={}&at={}", encode(view.id), encode(view.at));
    layout(
        view.title.unwrap_or(view.id),
        Some(frame),
        html! {
            h1 { (view.title.unwrap_or("(no title recorded)")) }
            p.id { "Room id " code { (view.id) } }
            form.at method="get" action="/room" {
                input type="hidden" name="id" value=(view.id);
                label { "Roster at" input type="text" name="at" value=(view.at) placeholder="now, or YYYY-MM-DD / RFC 3339 (UTC)"; }
                button type="submit" { "Show" }
            }
            @match &view.roster {
                Err(error) => p.error role="alert" { (error) },
                Ok(roster) => {
                    h2 { "Members " @match &roster.at { Some(at) => { "at " (at) }, None => "now" } " (" (roster.members.len()) ")" }
                    @for warning in &roster.warnings { p.warning role="alert" { "Unknown: " (warning) } }
                    table.roster {
                        thead { tr { th { "person" } th { "email" } th { "since" } th { "moderator" } th { "added by" } th { "source" } } }
                        tbody { @for m in &roster.members { tr {
                            td { a href={ "/person?id=" (encode(&m.person_id)) } { (m.name.as_deref().unwrap_or(&m.person_id)) } }
                            td { (m.email.as_deref().unwrap_or("")) }
                            td.time { (m.since.as_deref().unwrap_or("unknown")) }
                            td { @match m.moderator { Some(true) => "yes", Some(false) => "no", None => "unknown" } }
                            td { (m.added_by.as_deref().unwrap_or("")) }
                            td { (m.source.as_str()) }
                        } } }
                    }
                }
            }
            h2 { "Coverage gaps" }
            @if view.gaps.is_empty() {
                p { "None recorded: the receiver has not stopped since the log began." }
            } @else {
                p { "While the receiver was not listening, joins and leaves in this room may be missing from the log." }
                ul.gaps { @for gap in view.gaps {
                    li {
                        "From " (gap.from.as_deref().unwrap_or("an unknown time")) " to " (gap.to) ": "
                        @if gap.clean { "stopped cleanly" } @else { strong { "no stop recorded (a crash or kill)" } }
                    }
                } }
            }
            h2 { "History (" (view.history.total) " records)" }
            (records(&view.history.rows, index, false))
            (pager(view.history, &base))
        },
    )
}

/// One stay of a person in a room.
pub struct Period {
    pub room_id: String,
    pub title: Option<String>,
    /// `None`: before the log knew.
    pub from: Option<String>,
    /// `None`: still a member.
    pub until: Option<String>,
}

pub fn person(
    frame: &Frame<'_>,
    id: &str,
    names: &[(Option<String>, Option<String>)],
    periods: &[Period],
) -> Markup {
    let title = names
        .iter()
        .find_map(|(name, _)| name.as_deref())
        .unwrap_or(id);
    layout(
        title,
        Some(frame),
        html! {
            h1 { (title) }
            p.id { "Person id " code { (id) } }
            @if !names.is_empty() {
                p { "Recorded as: "
                    @for (i, (name, email)) in names.iter().enumerate() {
                        @if i > 0 { "; " }
                        (name.as_deref().unwrap_or("(no name)")) " " small { (email.as_deref().unwrap_or("(no email)")) }
                    }
                }
            }
            h2 { "Rooms (" (periods.len()) " stays)" }
            table.periods {
                thead { tr { th { "room" } th { "from" } th { "until" } } }
                tbody { @for p in periods { tr {
                    td { a href={ "/room?id=" (encode(&p.room_id)) } { (p.title.as_deref().unwrap_or(&p.room_id)) } }
                    td.time { (p.from.as_deref().unwrap_or("before the log knew")) }
                    td.time { (p.until.as_deref().unwrap_or("still a member")) }
                } } }
            }
        },
    )
}

pub fn integrity(
    frame: &Frame<'_>,
    status: &Status,
    head: Option<&crate::log::head::Head>,
    days: (usize, usize),
) -> Markup {
    layout(
        "Integrity",
        Some(frame),
        html! {
            @if status.running_since.is_some() {
                // Without JavaScript, the page polls until the run ends.
                (PreEscaped(r#"<meta http-equiv="refresh" content="2">"#))
            }
            h1 { "Integrity" }
            dl {
                dt { "Durable head" }
                dd { @match head {
                    Some(head) => { "seq " (head.seq) br; code.hash { (head.hash) } },
                    None => "none yet",
                } }
                dt { "Days" }
                dd { (days.0) " live, " (days.1) " archived (compressed, with digests)" }
            }
            h2 { "Last verify" }
            @match &status.last {
                None => p { "Not run yet." },
                Some(run) => {
                    p { "Started " (run.started_at) ", took " (run.millis) " ms." }
                    @match &run.result {
                        Err(error) => p.error role="alert" { "Could not run: " (error) },
                        Ok(found) => {
                            p.(if found.intact { "verdict intact" } else { "verdict faulty" }) {
                                @if found.intact { "Intact: " } @else { "FAULTY: " }
                                (found.records) " records in " (found.days) " days checked, "
                                (found.archived) " archived days match their digests."
                            }
                            @if let Some(head) = found.head.as_ref().filter(|_| found.intact) {
                                p { "Verified head (keep it off this machine): " code.hash { (head) } }
                            }
                            @for fault in &found.faults { p.error { "FAULT: " (fault) } }
                            @for held in &found.quarantined { p.warning { "Quarantine: " (held) } }
                            @for note in &found.notes { p { "Note: " (note) } }
                        }
                    }
                }
            }
            @if let Some(since) = &status.running_since {
                p.running role="status" { "Verifying since " (since) "… this page refreshes until it is done." }
            } @else {
                form method="post" action="/integrity/verify" {
                    input type="hidden" name="csrf" value=(frame.csrf);
                    button type="submit" { "Run verify again" }
                }
            }
        },
    )
}

/// A value for a URL's query string.
pub fn encode(value: &str) -> String {
    serde_urlencoded::to_string([("", value)])
        .map(|pair| pair[1..].to_string())
        .unwrap_or_default()
}
