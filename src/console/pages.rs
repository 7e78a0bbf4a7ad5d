//! The console's HTML: one function per page, built with maud, which
//! checks the markup when the crate compiles and escapes every value put
//! into it (a display name of `<script>` is shown as text).

use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::checks::Status;
use super::search::Query;
use crate::index::pages::{RecordPage, RecordRow, Standing, StayRow};
use crate::index::query::{Roster, qualified};
use crate::log::record::{Event, Source};
use crate::log::roster::coverage::Gap;

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

/// What a page read, and how far the index it read was.
pub struct Found<'a, T> {
    pub shown: T,
    pub standing: &'a Standing,
}

/// The search form, its results, and the download link.
pub fn search(
    frame: &Frame<'_>,
    query: &Query,
    found: Result<Found<'_, &RecordPage>, &str>,
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
            @match found {
                Err(error) => p.error role="alert" { (error) },
                Ok(found) => {
                    (catching_up(found.standing))
                    p.summary {
                        (summary(found.shown, query.page)) " "
                        @match download {
                            Ok(()) => a #download href={ "/download?" (query.encoded()) } { "Download as CSV" },
                            Err(why) => span.note { "No download: " (why) "." },
                        }
                    }
                    (records(&found.shown.rows, true))
                    (pager(found.shown.older, query.page, &format!("/?{}", query.encoded())))
                }
            }
        },
    )
}

/// What a page of records holds, said without counting the rest.
fn summary(page: &RecordPage, number: usize) -> Markup {
    let rows = page.rows.len();
    html! {
        @if number == 0 && page.older.is_none() {
            (rows) " records, newest first."
        } @else {
            "Page " (number + 1) ", newest first: " (rows) " records"
            @if let (Some(newest), Some(oldest)) = (page.rows.first(), page.rows.last()) {
                ", seq " (shown_seq(newest)) " to " (shown_seq(oldest))
            }
            "."
            @if page.searched_to.is_some() && page.merged {
                " Older records are still to be searched."
            } @else if let Some(to) = page.searched_to {
                " Searched back to seq " (to) "; older records are still to be searched."
            } @else if page.older.is_some() {
                " Older ones follow."
            }
        }
    }
}

/// Says plainly that the index has not caught up with the log yet.
fn catching_up(standing: &Standing) -> Markup {
    html! {
        @if standing.behind() && standing.merged {
            p.warning role="status" {
                "The index has read " (standing.seq) " of the receivers' " (standing.head)
                " records and is still catching up: the newest records are not all shown yet."
            }
        } @else if standing.behind() {
            p.warning role="status" {
                "The index is at seq " (standing.seq) " of " (standing.head)
                " and still catching up: records after seq " (standing.seq) " are not shown yet."
            }
        }
    }
}

/// "Newest" back to the first page, "Older" on from the last row shown.
fn pager(older: Option<u64>, number: usize, base: &str) -> Markup {
    html! {
        @if number > 0 || older.is_some() {
            nav.pager {
                @if number > 0 { a rel="first" href=(base) { "Newest" } }
                @if let Some(before) = older {
                    a rel="next" href={ (base) "&before=" (before) "&page=" (number + 1) } { "Older" }
                }
            }
        }
    }
}

/// A record's seq, with its receiver when the index holds several.
fn shown_seq(row: &RecordRow) -> String {
    qualified(row.receiver.as_deref(), row.seq)
}

/// Rows as a table; each links to its room and person.
fn records(rows: &[RecordRow], show_room: bool) -> Markup {
    html! {
        table.records {
            thead { tr {
                th { "seq" } th { "received" } th { "event" }
                @if show_room { th { "room" } }
                th { "person" } th { "source" }
            } }
            tbody {
                @for row in rows {
                    tr.(row.event) {
                        td.num { (shown_seq(row)) }
                        td.time {
                            (row.received_at)
                            @if let Some(not_before) = &row.not_before {
                                br; small { "after " (not_before) }
                            }
                        }
                        td { (row.event) }
                        @if show_room {
                            td { @if !row.room_id.is_empty() {
                                a href={ "/room?id=" (encode(&row.room_id)) } { (row.room_title.as_deref().unwrap_or(&row.room_id)) }
                            } }
                        }
                        td { @if !row.person_id.is_empty() {
                            a href={ "/person?id=" (encode(&row.person_id)) } { (row.person_display_name.as_deref().unwrap_or("")) }
                            @if let Some(email) = &row.person_email { " " small { (email) } }
                        } }
                        td { (row.source) }
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
    /// The time asked for, as typed (empty: now).
    pub at: &'a str,
    pub roster: Result<Roster, String>,
    pub gaps: &'a [Gap],
    pub history: &'a RecordPage,
    pub page: usize,
    pub standing: &'a Standing,
}

pub fn room(frame: &Frame<'_>, view: &RoomView<'_>) -> Markup {
    let base = format!("/room?id={}&at={}", encode(view.id), encode(view.at));
    let now = view.at.is_empty() || view.at == "now";
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
            (catching_up(view.standing))
            @match &view.roster {
                Err(error) => p.error role="alert" { (error) },
                Ok(roster) => {
                    h2 { "Members " @if now { "now" } @else { "at " (roster.at) } " (" (roster.members.len()) ")" }
                    @for warning in &roster.warnings { p.warning role="alert" { "Unknown: " (warning) } }
                    table.roster {
                        thead { tr { th { "person" } th { "email" } th { "since" } th { "moderator" } th { "added by" } th { "source" } th { "joined seq" } th { "last seq" } } }
                        tbody { @for m in &roster.members { @let p = &m.member; tr {
                            td { a href={ "/person?id=" (encode(&p.person_id)) } { (p.name.as_deref().unwrap_or(&p.person_id)) } }
                            td { (p.email.as_deref().unwrap_or("")) }
                            td.time { (p.since.as_deref().unwrap_or("unknown")) }
                            td { @match p.moderator { Some(true) => "yes", Some(false) => "no", None => "unknown" } }
                            td { (p.added_by.as_deref().unwrap_or("")) }
                            td { (p.source.as_str()) }
                            td.num { @match m.joined_seq { Some(seq) => (qualified(m.joined_receiver.as_deref(), seq)), None => "before the log" } }
                            td.num { (qualified(m.last_receiver.as_deref(), m.last_seq)) }
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
                        "From " (gap.from) " to " (gap.to.as_deref().unwrap_or("now")) ": "
                        @if gap.after_crash { strong { "no stop recorded (a crash or kill)" } } @else { "stopped cleanly" }
                    }
                } }
            }
            @if view.page == 0 && view.history.older.is_none() {
                h2 { "History (" (view.history.rows.len()) " records)" }
            } @else {
                h2 { "History" }
                p.summary { (summary(view.history, view.page)) }
            }
            (records(&view.history.rows, false))
            (pager(view.history.older, view.page, &base))
        },
    )
}

/// The person page: their stays in rooms and their records, each paged.
pub struct PersonView<'a> {
    pub id: &'a str,
    pub stays: &'a [StayRow],
    /// The cursor of the next older page of stays.
    pub older_stays: Option<u64>,
    pub records: &'a RecordPage,
    pub page: usize,
    pub standing: &'a Standing,
}

pub fn person(frame: &Frame<'_>, view: &PersonView<'_>) -> Markup {
    let names = recorded_as(view);
    let title = names
        .iter()
        .find_map(|(name, _)| name.as_deref())
        .unwrap_or(view.id);
    let base = format!("/person?id={}", encode(view.id));
    layout(
        title,
        Some(frame),
        html! {
            h1 { (title) }
            p.id { "Person id " code { (view.id) } }
            @if !names.is_empty() {
                p { "Recorded as: "
                    @for (i, (name, email)) in names.iter().enumerate() {
                        @if i > 0 { "; " }
                        (name.as_deref().unwrap_or("(no name)")) " " small { (email.as_deref().unwrap_or("(no email)")) }
                    }
                }
            }
            (catching_up(view.standing))
            @if view.older_stays.is_none() {
                h2 { "Rooms (" (view.stays.len()) " stays)" }
            } @else {
                h2 { "Rooms (the newest " (view.stays.len()) " stays)" }
            }
            table.periods {
                thead { tr { th { "room" } th { "from" } th { "joined seq" } th { "until" } th { "left seq" } } }
                tbody { @for stay in view.stays { tr {
                    td { a href={ "/room?id=" (encode(&stay.room_id)) } { (stay.room_title.as_deref().unwrap_or(&stay.room_id)) } }
                    td.time { (stay.joined_at.as_deref().unwrap_or("before the log knew")) }
                    td.num { @if let Some(seq) = stay.joined_seq { (qualified(stay.joined_receiver.as_deref(), seq)) } }
                    td.time { (stay.left_at.as_deref().unwrap_or("still a member")) }
                    td.num { @if let Some(seq) = stay.left_seq { (qualified(stay.left_receiver.as_deref(), seq)) } }
                } } }
            }
            @if let Some(before) = view.older_stays {
                nav.pager { a rel="next" href={ (base) "&stays_before=" (before) } { "Older stays" } }
            }
            h2 { "Records" }
            p.summary { (summary(view.records, view.page)) }
            (records(&view.records.rows, true))
            (pager(view.records.older, view.page, &base))
        },
    )
}

/// The names and addresses the rows shown record the person under, in
/// the order first met.
fn recorded_as(view: &PersonView<'_>) -> Vec<(Option<String>, Option<String>)> {
    let mut names = Vec::new();
    let shown = view
        .records
        .rows
        .iter()
        .map(|r| (&r.person_display_name, &r.person_email))
        .chain(
            view.stays
                .iter()
                .map(|s| (&s.person_display_name, &s.person_email)),
        );
    for (name, email) in shown {
        let pair = (name.clone(), email.clone());
        if !names.contains(&pair) {
            names.push(pair);
        }
    }
    names
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
