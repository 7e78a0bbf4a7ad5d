//! The room and person pages: a room's roster now or at a time, its
//! coverage gaps and history; a person's stays in rooms.

use std::sync::Arc;

use serde::Deserialize;
use warp::http::StatusCode;
use warp::{Filter, Rejection};

use super::State;
use super::access::{Entry, View, Who};
use super::auth::Session;
use super::index::Index;
use super::pages::{self, Frame, Period, RoomView, Roster};
use super::routes::{Answer, Viewer, audited, html, signed_in, who, with_index, with_state};
use super::search::{PersonQuery, Search};
use crate::log::reader;
use crate::log::record::Event;
use crate::log::roster::{History, Present};

#[derive(Deserialize)]
struct RoomQuery {
    id: String,
    #[serde(default)]
    at: String,
    #[serde(default)]
    page: usize,
}

/// GET /room?id=&at=&page=
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

/// Looks the room up, writes the access line with what the lookup found,
/// then answers: the line says whether the room was there, not only
/// that someone asked.
async fn room_page(state: &Arc<State>, session: &Session, who: &Who, query: RoomQuery) -> Answer {
    let frame = Frame {
        csrf: &session.csrf,
    };
    let id = query.id.clone();
    let page = query.page;
    let found = with_index(state, move |index| {
        index.room_by_id(&id)?;
        let history = Search {
            room_id: Some(id),
            ..Search::default()
        }
        .run(index, page);
        Some((history, index.gaps()))
    })
    .await;
    let at = match query.at.trim() {
        "" => "now",
        at => at,
    };
    let entry = Entry {
        action: "room",
        outcome: match &found {
            Ok(Some(_)) => "ok",
            Ok(None) => "not_found",
            Err(_) => "unavailable",
        },
        subject: Some(&query.id),
        view: Some(View {
            at,
            page: query.page,
        }),
        ..Entry::default()
    };
    if let Err(refused) = audited(state, who, &entry).await {
        return *refused;
    }
    let (history, gaps) = match found {
        Err(answer) => return answer,
        Ok(None) => {
            return html(
                StatusCode::NOT_FOUND,
                pages::message(
                    Some(&frame),
                    "No such room",
                    "The log has no record of a room with this id.",
                ),
            );
        }
        Ok(Some(found)) => found,
    };
    let roster = roster(state, &query.id, query.at.trim()).await;
    let index = state
        .index
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let title = index
        .room_by_id(&query.id)
        .and_then(|i| index.rooms().get(i as usize))
        .and_then(|room| room.title.clone());
    let view = RoomView {
        id: &query.id,
        title: title.as_deref(),
        at: query.at.trim(),
        roster,
        gaps: &gaps,
        history: &history,
    };
    html(StatusCode::OK, pages::room(&frame, &view, &index))
}

/// Who is in the room now, as the writer holds it; or who was in it at
/// `at`, as `rollcall roster --at` says, with what the log cannot know.
async fn roster(state: &Arc<State>, room_id: &str, at: &str) -> Result<Roster, String> {
    if at.is_empty() || at == "now" {
        // Right after a start the state may still be loading: wait for it
        // without holding a runtime thread.
        state.app.writer.members_ready().await;
        let mut members: Vec<Present> = state
            .app
            .writer
            .members(|m| m.present_in(room_id).map(Present::from).collect());
        members.sort_by(|a, b| a.since.cmp(&b.since));
        return Ok(Roster {
            at: None,
            warnings: Vec::new(),
            members,
        });
    }
    let at = reader::parse_time(at).map_err(|e| e.to_string())?;
    let dir = state.dir.clone();
    let room_id = room_id.to_string();
    // The whole log, as the command reads it: a record received after
    // `at` may still tell of an event before it.
    let roster = tokio::task::spawn_blocking(move || {
        let history = History::load(&reader::days(&dir)?)?;
        let room = history.find_room(&room_id)?;
        Ok::<_, anyhow::Error>(history.roster(room, &at))
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("{e:#}"))?;
    Ok(Roster {
        at: Some(roster.at),
        warnings: roster.warnings,
        members: roster.members,
    })
}

#[derive(Deserialize)]
struct PersonId {
    id: String,
}

/// GET /person?id=
pub(super) fn person(
    state: Arc<State>,
) -> impl Filter<Extract = (Answer,), Error = Rejection> + Clone {
    warp::path!("person")
        .and(warp::get())
        .and(signed_in(state.clone()))
        .and(warp::query::<PersonId>())
        .and(with_state(state))
        .then(
            |viewer: Viewer, query: PersonId, state: Arc<State>| async move {
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
                let found = with_index(&state, move |index| stays(index, &id)).await;
                match found {
                    Err(answer) => answer,
                    Ok(None) => html(
                        StatusCode::NOT_FOUND,
                        pages::message(
                            Some(&frame),
                            "No such person",
                            "The log has no record of a person with this id.",
                        ),
                    ),
                    Ok(Some((names, periods))) => html(
                        StatusCode::OK,
                        pages::person(&frame, &query.id, &names, &periods),
                    ),
                }
            },
        )
}

type Names = Vec<(Option<String>, Option<String>)>;

/// The names a person was recorded under, and their stays in rooms in
/// log order: a join opens one, a leave closes it.
fn stays(index: &Index, id: &str) -> Option<(Names, Vec<Period>)> {
    let names: Names = index
        .people()
        .iter()
        .filter(|p| p.id == id)
        .map(|p| (p.name.clone(), p.email.clone()))
        .collect();
    if names.is_empty() {
        return None;
    }
    let search = Search {
        person: Some(PersonQuery::Id(id.to_string())),
        ..Search::default()
    };
    let mut periods: Vec<Period> = Vec::new();
    for row in search.all(index) {
        let Some(room) = index.room(&row) else {
            continue;
        };
        let open = periods
            .iter_mut()
            .rev()
            .find(|p| p.room_id == room.id && p.until.is_none());
        match (row.event, open) {
            (Event::Joined, Some(_)) => {}
            (Event::Joined, None) => periods.push(Period {
                room_id: room.id.clone(),
                title: room.title.clone(),
                from: Some(row.received_at().to_string()),
                until: None,
            }),
            (Event::Left, Some(open)) => open.until = Some(row.received_at().to_string()),
            (Event::Left, None) => periods.push(Period {
                room_id: room.id.clone(),
                title: room.title.clone(),
                from: None,
                until: Some(row.received_at().to_string()),
            }),
            _ => {}
        }
    }
    Some((names, periods))
}
