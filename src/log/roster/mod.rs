//! Who was in a room at a time, from the log alone: the room's records up
//! to that time folded into [`Members`], with what the log cannot know
//! said as warnings (a coverage gap, a time before the room's first
//! record, no reconciled baseline, a reconciled change known only to lie
//! between two times). Also the rooms the log knows, and finding one by
//! id or title.

pub mod coverage;

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::days::Day;
use super::members::{Change, Member, Members};
use super::reader::{self, Block, ReadError};
use super::record::{Event, Record, Source};
use coverage::{Coverage, Gap};

/// Why a room could not be picked.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RoomError {
    #[error(
        "the log has no room with id or title {0:?}: `rollcall rooms` lists the rooms it knows"
    )]
    Unknown(String),
    #[error("several rooms are titled {title:?}: give one of their ids with --room: {}", ids.join(", "))]
    Ambiguous { title: String, ids: Vec<String> },
}

/// One room as the log knows it.
#[derive(Debug, Clone, Serialize)]
pub struct Room {
    pub room_id: String,
    /// The latest title recorded for it.
    pub title: Option<String>,
    /// `received_at` of its first and last record.
    pub first_at: String,
    pub last_at: String,
    /// `received_at` of its first reconciled record: from then on, members
    /// who joined before rollcall listened are in the log too.
    pub baseline: Option<String>,
    #[serde(skip)]
    titles: Vec<String>,
    #[serde(skip)]
    records: Vec<Record>,
}

/// The membership records of every room and the receiver's coverage.
#[derive(Debug, Default)]
pub struct History {
    rooms: BTreeMap<String, Room>,
    coverage: Coverage,
}

/// Who was in a room at a time, and what the log could not say; the index
/// answers with members that also name their seqs.
#[derive(Debug, Clone, Serialize)]
pub struct Roster<M = Present> {
    pub room_id: String,
    pub title: Option<String>,
    pub at: String,
    pub warnings: Vec<String>,
    pub members: Vec<M>,
}

/// One member of a roster.
#[derive(Debug, Clone, Serialize)]
pub struct Present {
    pub person_id: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub moderator: Option<bool>,
    pub since: Option<String>,
    pub added_by: Option<String>,
    pub source: Source,
}

impl From<&Member> for Present {
    fn from(m: &Member) -> Self {
        Present {
            person_id: m.person_id.clone(),
            email: m.person_email.clone(),
            name: m.person_display_name.clone(),
            moderator: m.is_moderator,
            since: m.since.clone(),
            added_by: m.added_by.clone(),
            source: m.join_source,
        }
    }
}

impl History {
    /// Reads every record of `days`, in log order.
    pub fn load(days: &[Day]) -> Result<Self, ReadError> {
        let mut history = History::default();
        reader::in_log_order(
            days,
            Vec::new,
            |block: &Block, records: &mut Vec<Record>| {
                records.clear();
                let mut lines = 0;
                for (line, whole) in block.lines() {
                    lines += 1;
                    // A torn or damaged line is `verify`'s to report.
                    if let (true, Ok(record)) = (whole, serde_json::from_slice::<Record>(line)) {
                        records.push(record);
                    }
                }
                lines
            },
            |_, records: &mut Vec<Record>| {
                for record in records.drain(..) {
                    history.add(record);
                }
                Ok::<_, ReadError>(())
            },
        )?;
        Ok(history)
    }

    /// Takes the next record of the log.
    pub fn add(&mut self, record: Record) {
        self.coverage.see(
            record.event,
            &record.received_at,
            record.not_before.as_deref(),
        );
        if !record.event.is_membership() || record.room_id.is_empty() {
            return;
        }
        let room = self
            .rooms
            .entry(record.room_id.clone())
            .or_insert_with(|| Room {
                room_id: record.room_id.clone(),
                title: None,
                first_at: record.received_at.clone(),
                last_at: String::new(),
                baseline: None,
                titles: Vec::new(),
                records: Vec::new(),
            });
        room.last_at.clone_from(&record.received_at);
        if let Some(title) = &record.room_title {
            room.title = Some(title.clone());
            if !room.titles.contains(title) {
                room.titles.push(title.clone());
            }
        }
        if record.source == Source::Reconciled && room.baseline.is_none() {
            room.baseline = Some(record.received_at.clone());
        }
        room.records.push(record);
    }

    /// Every room, by id.
    pub fn rooms(&self) -> impl Iterator<Item = &Room> {
        self.rooms.values()
    }

    /// The room with id `wanted`, else the one a recorded title names (any
    /// case).
    pub fn find_room(&self, wanted: &str) -> Result<&Room, RoomError> {
        if let Some(room) = self.rooms.get(wanted) {
            return Ok(room);
        }
        let wanted_lower = wanted.to_lowercase();
        let titled: Vec<&Room> = self
            .rooms
            .values()
            .filter(|room| room.titles.iter().any(|t| t.to_lowercase() == wanted_lower))
            .collect();
        match titled.as_slice() {
            [] => Err(RoomError::Unknown(wanted.to_string())),
            [room] => Ok(room),
            _ => Err(RoomError::Ambiguous {
                title: wanted.to_string(),
                ids: titled.iter().map(|room| room.room_id.clone()).collect(),
            }),
        }
    }

    /// Who was in `room` at `at` (`received_at` form).
    pub fn roster(&self, room: &Room, at: &str) -> Roster {
        let members = room.members(Some(at));
        let mut present: Vec<Present> = members
            .present_in(&room.room_id)
            .map(Present::from)
            .collect();
        present.sort_by_cached_key(shown_order);
        let gaps = self.coverage.gaps();
        let warnings = roster_warnings(
            at,
            &gaps,
            &room.first_at,
            room.baseline.as_deref(),
            room.uncertain(at),
        );
        Roster {
            room_id: room.room_id.clone(),
            title: room.title.clone(),
            at: at.to_string(),
            warnings,
            members: present,
        }
    }
}

impl Room {
    /// How many are in the room as the whole log leaves it.
    pub fn members_now(&self) -> usize {
        self.members(None).present_in(&self.room_id).count()
    }

    /// The room's memberships after its records whose event time is at or
    /// before `at` (all of them for `None`). A membership's records take
    /// effect in the log's order: one never counts as earlier than the
    /// record before it (a reconciled rejoin carries the first join's
    /// `membership_created`, yet follows the leave it corrects).
    fn members(&self, at: Option<&str>) -> Members {
        let mut latest: HashMap<&str, String> = HashMap::new();
        let mut timed: Vec<(String, &Record)> = self
            .records
            .iter()
            .map(|record| {
                let time = match latest.get(record.membership_id.as_str()) {
                    Some(before) => event_time(Change::from(record)).max(before.clone()),
                    None => event_time(Change::from(record)),
                };
                latest.insert(&record.membership_id, time.clone());
                (time, record)
            })
            .collect();
        timed.sort_by(|a, b| (&a.0, a.1.seq).cmp(&(&b.0, b.1.seq)));
        let mut members = Members::default();
        for (time, record) in &timed {
            if at.is_none_or(|at| time.as_str() <= at) {
                members.apply(Change::from(*record));
            }
        }
        members
    }

    /// A reconciled leave or role change was found at `received_at` and
    /// known not to have happened before `not_before`: for a time between
    /// the two, the roster cannot say which side it is on.
    fn uncertain(&self, at: &str) -> Vec<String> {
        self.records
            .iter()
            .filter_map(|r| uncertain_warning(at, r))
            .collect()
    }
}

/// The order a roster lists its members in: by the name shown (any
/// case), then person id.
pub fn shown_order(p: &Present) -> (String, String) {
    let shown = p.name.as_deref().or(p.email.as_deref()).unwrap_or("");
    (shown.to_lowercase(), p.person_id.clone())
}

/// What a roster of a room at `at` cannot know, in the order it is told:
/// the coverage gaps holding `at`, a time before the room's first record,
/// no reconciled baseline, then the reconciled changes `at` may lie
/// before or after.
pub fn roster_warnings(
    at: &str,
    gaps: &[Gap],
    first_at: &str,
    baseline: Option<&str>,
    uncertain: Vec<String>,
) -> Vec<String> {
    let mut warnings = Vec::new();
    for gap in gaps.iter().filter(|gap| gap.holds(at)) {
        warnings.push(gap_warning(at, gap));
    }
    if at < first_at {
        warnings.push(format!("the roster before {first_at} is unknown"));
    }
    if baseline.is_none() {
        warnings.push(format!(
            "members who joined before {first_at} and never changed since are not in the log: run `rollcall reconcile`"
        ));
    }
    warnings.extend(uncertain);
    warnings
}

/// For a reconciled leave or role change `r`: the warning when `at` lies
/// between when it was known not to have happened yet and when it was
/// found.
pub fn uncertain_warning(at: &str, r: &Record) -> Option<String> {
    if r.source != Source::Reconciled || r.event == Event::Joined {
        return None;
    }
    let after = normalised(r.not_before.as_deref()?)?;
    (after.as_str() < at && at <= r.received_at.as_str()).then(|| {
        let who = r
            .person_display_name
            .as_deref()
            .or(r.person_email.as_deref())
            .unwrap_or(&r.person_id);
        let what = match r.event {
            Event::Left => "left",
            Event::ModeratorGranted => "become a moderator",
            _ => "stopped being a moderator",
        };
        format!(
            "{who} may have {what} between {after} and {}",
            r.received_at
        )
    })
}

fn gap_warning(at: &str, gap: &Gap) -> String {
    let to = gap.to.as_deref().unwrap_or("now");
    let crash = if gap.after_crash {
        " (the receiver had crashed)"
    } else {
        ""
    };
    format!(
        "{at} falls in a coverage gap from {} to {to}{crash}: deliveries were not being received; the roster at {at} is unknown, shown is what the log knew",
        gap.from
    )
}

/// When a record's event happened, as well as the log knows: the exact
/// time for one from the events API, the membership's start for a join,
/// else when it was received. Never after it was received: a clock that
/// runs ahead of ours must not hide a member the log already had.
pub fn event_time(record: Change<'_>) -> String {
    let exact = match (record.source, record.event) {
        (Source::EventsApi, _) => record.not_before,
        (_, Event::Joined) => record.membership_created,
        _ => None,
    };
    match exact.and_then(normalised) {
        Some(time) if time.as_str() < record.received_at => time,
        _ => record.received_at.to_string(),
    }
}

/// An RFC 3339 time in `received_at` form, which compares as text.
fn normalised(time: &str) -> Option<String> {
    reader::parse_time(time).ok()
}

#[cfg(test)]
mod tests;
