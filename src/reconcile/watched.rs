//! Which rooms a reconcile checks: the room filters of this server's
//! webhooks and the rooms `serve --room` names; every room of the token
//! (`GET /rooms`) when a webhook of ours has no room filter or nothing
//! names a room; and only the rooms `reconcile --room` names, when it does.

use std::collections::{BTreeMap, HashSet};

use crate::webex::client::{ApiError, Client};
use crate::webex::registration;
use crate::webhook::payload::Target;

/// What tells a reconcile which rooms are this server's.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// `ROLLCALL_PUBLIC_URL`: with it, the webhooks whose target URL is
    /// ours say which rooms are watched. Without it (the CLI), every room
    /// of the token is.
    pub public_url: Option<String>,
    /// The rooms `serve --room` registers, with the target serving them.
    pub registered: Option<(Target, Vec<String>)>,
    /// `reconcile --room`: only these rooms; empty: no limit.
    pub only: Vec<String>,
}

/// A room to check, with what its records carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Room {
    pub id: String,
    pub title: Option<String>,
    /// The target whose webhooks serve the room; empty when unknown or
    /// ambiguous (several unfiltered targets, or the CLI).
    pub target: String,
}

impl Scope {
    /// The rooms to check, in the order `GET /rooms` lists them (rooms
    /// it does not list, e.g. a filter for a room the token left, after
    /// them). Lists rooms (for titles) and, with a public URL, webhooks.
    pub async fn rooms(&self, client: &Client) -> Result<Vec<Room>, ApiError> {
        let listed = client.list_rooms().await?;
        let mut filtered: BTreeMap<String, String> = BTreeMap::new();
        let mut unfiltered: HashSet<Target> = HashSet::new();
        if let Some(public_url) = self.public_url.as_deref() {
            let webhooks = client.list_webhooks().await?;
            for (target, rooms) in registration::rooms_by_target(&webhooks, Some(public_url)) {
                for room in rooms {
                    match room {
                        Some(room) => {
                            filtered.insert(room, target.to_string());
                        }
                        None => {
                            unfiltered.insert(target.clone());
                        }
                    }
                }
            }
        }
        if let Some((target, rooms)) = &self.registered {
            for room in rooms {
                filtered
                    .entry(room.clone())
                    .or_insert_with(|| target.to_string());
            }
        }
        let every_room = !unfiltered.is_empty() || filtered.is_empty();
        let default_target = match unfiltered.iter().collect::<Vec<_>>().as_slice() {
            [only] => only.to_string(),
            _ => String::new(),
        };
        let target_of = |id: &str| {
            filtered
                .get(id)
                .cloned()
                .unwrap_or_else(|| default_target.clone())
        };
        let wanted = |id: &str| {
            (every_room || filtered.contains_key(id))
                && (self.only.is_empty() || self.only.iter().any(|o| o == id))
        };
        let mut rooms: Vec<Room> = listed
            .into_iter()
            .filter(|room| wanted(&room.id))
            .map(|room| Room {
                target: target_of(&room.id),
                id: room.id,
                title: room.title,
            })
            .collect();
        let seen: HashSet<String> = rooms.iter().map(|r| r.id.clone()).collect();
        let unlisted = filtered.keys().chain(&self.only);
        let mut extra: Vec<&String> = unlisted
            .filter(|id| !seen.contains(*id) && wanted(id))
            .collect();
        extra.sort();
        extra.dedup();
        rooms.extend(extra.into_iter().map(|id| Room {
            id: id.clone(),
            title: None,
            target: target_of(id),
        }));
        Ok(rooms)
    }
}
