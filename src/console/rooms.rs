//! The room and person pages: a room's roster now or at a time (with the
//! warnings `rollcall roster` gives), its coverage gaps and its records;
//! a person's stays in rooms and records. Each from the index, a page at
//! a time.

use std::sync::Arc;

use serde::Deserialize;
use warp::http::StatusCode;
use warp::{Filter, Rejection};

use super::State;
use super::access::{Entry, View, Who};
use super::auth::Session;
use super::pages::{self, Frame, PersonView, RoomView};
use super::reading::with_index;
use super::routes::{Answer, Viewer, audited, html, signed_in, who, with_state};
use crate::index::pages::{Person, RecordPage, Records, Room, Standing};
use crate::index::query::{QueryError, RoomRow, Roster};
use crate::index::{Index, IndexError};
use crate::log::reader;
use crate::log::record::format_timestamp;
use crate::log::roster::coverage::Gap;

#[derive(Deserialize)]
struct RoomQuery {
    id: String,
    #[serde(default)]
    at: String,
    #[serde(default)]
    page: usize,
    #[serde(default)]
    before: Option<u64>,
}

/// GET /room?id=&at=&before=&page=
pub(super) fn room(
    state: Arc<State>,
) -> impl Filter<Extract = (Answer,), Error = Rejection> + Clone {
    warp::path!("room")
        .and(warp::get())
        .and(signed_in(state.clone()))
        .and(warp::query::<RoomQuery>())
        .and(with_state(state))
        .then(
            |viewer: Viewer, query: RoomQuery, state: Arc<State>| async move {
                let Viewer { session, client } = viewer;
                room_page(&state, &session, &who(&session, client), query).await
            },
        )
}

/// All a room page shows, read from one connection.
struct RoomFound {
    room: RoomRow,
    roster: Result<Roster, String>,
    gaps: Vec<Gap>,
    history: RecordPage,
}

/// Looks the room up, writes the access line with what the lookup found,
/// then answers: the line says whether the room was there, not only
/// that someone asked.
async fn room_page(state: &Arc<State>, session: &Session, who: &Who, query: RoomQuery) -> Answer {
    let frame = Frame {
        csrf: &session.csrf,
    };
    let asked = query.at.trim().to_string();
    // "now" is the server's clock, so it is the roster the writer holds.
    let at = match asked.as_str() {
        "" | "now" => Ok(format_timestamp(state.clock.now())),
        at => reader::parse_time(at).map_err(|e| e.to_string()),
    };
    let id = query.id.clone();
    let before = query.before;
    let found = with_index(state, move |index| {
        let Some(room) = own_room(index, &id)? else {
            return Ok(None);
        };
        let roster = match at {
            Ok(at) => Ok(index.roster(&room, &at)?),
            Err(error) => Err(error),
        };
        let history = index.records_page(
            &Records {
                room: Some(Room::Id(id)),
                ..Records::default()
            },
            before,
        )?;
        Ok(Some(RoomFound {
            gaps: index.gaps_between("", "~")?,
            room,
            roster,
            history,
        }))
    })
    .await;
    let entry = Entry {
        action: "room",
        outcome: match &found {
            Ok((Some(Some(_)), _)) => "ok",
            Ok(_) => "not_found",
            Err(_) => "unavailable",
        },
        subject: Some(&query.id),
        view: Some(View {
            at: if asked.is_empty() { "now" } else { &asked },
            page: query.page,
            before: query.before,
        }),
        ..Entry::default()
    };
    if let Err(refused) = audited(state, who, &entry).await {
        return *refused;
    }
    let (found, standing) = match found {
        Err(answer) => return answer,
        Ok((Some(Some(found)), standing)) => (found, standing),
        Ok((_, standing)) => return not_found(&frame, "room", &standing),
    };
    let view = RoomView {
        id: &query.id,
        title: found.room.title.as_deref(),
        at: &asked,
        roster: found.roster,
        gaps: &found.gaps,
        history: &found.history,
        page: query.page,
        standing: &standing,
    };
    html(StatusCode::OK, pages::room(&frame, &view))
}

/// The room whose id is `id` (never one a title names).
fn own_room(index: &Index, id: &str) -> Result<Option<RoomRow>, IndexError> {
    match index.find_room(id) {
        Ok(room) if room.room_id == id => Ok(Some(room)),
        Ok(_) | Err(QueryError::Room(_)) => Ok(None),
        Err(QueryError::Index(error)) => Err(error),
    }
}

/// 404, saying when the index may simply not have got to it yet.
fn not_found(frame: &Frame<'_>, what: &str, standing: &Standing) -> Answer {
    let text = if standing.behind() {
        format!(
            "The index has no record of a {what} with this id yet: it is at seq {} of {} and still catching up.",
            standing.seq, standing.head
        )
    } else {
        format!("The log has no record of a {what} with this id.")
    };
    html(
        StatusCode::NOT_FOUND,
        pages::message(Some(frame), &format!("No such {what}"), &text),
    )
}

#[derive(Deserialize)]
struct PersonQuery {
    id: String,
    #[serde(default)]
    page: usize,
    #[serde(default)]
    before: Option<u64>,
    #[serde(default)]
    stays_before: Option<u64>,
}

/// GET /person?id=&before=&page=&stays_before=
pub(super) fn person(
    state: Arc<State>,
) -> impl Filter<Extract = (Answer,), Error = Rejection> + Clone {
    warp::path!("person")
        .and(warp::get())
        .and(signed_in(state.clone()))
        .and(warp::query::<PersonQuery>())
        .and(with_state(state))
        .then(
            |viewer: Viewer, query: PersonQuery, state: Arc<State>| async move {
                let Viewer { session, client } = viewer;
                let frame = Frame {
                    csrf: &session.csrf,
                };
                let entry = Entry {
                    action: "person",
                    outcome: "ok",
                    subject: Some(&query.id),
                    ..Entry::default()
                };
                if let Err(refused) = audited(&state, &who(&session, client), &entry).await {
                    return *refused;
                }
                let id = query.id.clone();
                let (before, stays_before) = (query.before, query.stays_before);
                let found = with_index(&state, move |index| {
                    if !index.knows_person(&id)? {
                        return Ok(None);
                    }
                    let stays = index.stays_page(&id, stays_before)?;
                    let records = index.records_page(
                        &Records {
                            person: Some(Person::Id(id)),
                            ..Records::default()
                        },
                        before,
                    )?;
                    Ok(Some((stays, records)))
                })
                .await;
                match found {
                    Err(answer) => answer,
                    Ok((Some(Some((stays, records))), standing)) => html(
                        StatusCode::OK,
                        pages::person(
                            &frame,
                            &PersonView {
                                id: &query.id,
                                stays: &stays.rows,
                                older_stays: stays.older,
                                records: &records,
                                page: query.page,
                                standing: &standing,
                            },
                        ),
                    ),
                    Ok((_, standing)) => not_found(&frame, "person", &standing),
                }
            },
        )
}
