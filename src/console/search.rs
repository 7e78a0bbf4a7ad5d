//! What the search form asks ([`Query`], as sent), what it means
//! ([`Search`], checked), the matching rows of the index newest first
//! and paged ([`Hits`]), and the `rollcall export` filter that gives the
//! same records for a download.

use serde::{Deserialize, Serialize};

use super::index::{Index, NONE, Row};
use crate::log::reader::{self, Filter};
use crate::log::record::{Event, Source};

/// Rows on one page of results.
pub const PAGE_ROWS: usize = 50;

/// The search form's fields, as sent (empty for "any").
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct Query {
    /// A whole email address, or part of an email or display name.
    pub person: String,
    /// A room id, or part of a title.
    pub room: String,
    pub event: String,
    pub source: String,
    /// `YYYY-MM-DD`, RFC 3339, or a browser's `YYYY-MM-DDTHH:MM` (UTC).
    pub from: String,
    pub to: String,
    /// 0-based.
    #[serde(skip_serializing)]
    pub page: usize,
}

/// How a person is looked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersonQuery {
    /// A whole address: that address only, any case, as `export --person`.
    Email(String),
    /// Part of an email or display name, any case.
    Part(String),
    /// A person id (the person page).
    Id(String),
}

/// A checked query.
#[derive(Debug, Clone, Default)]
pub struct Search {
    pub person: Option<PersonQuery>,
    /// A room id, or part of a title.
    pub room: Option<String>,
    /// Only this room id (the room page).
    pub room_id: Option<String>,
    pub event: Option<Event>,
    pub source: Option<Source>,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// One page of matching rows, newest first.
#[derive(Debug)]
pub struct Hits {
    pub total: usize,
    pub rows: Vec<Row>,
    pub page: usize,
}

impl Hits {
    pub fn pages(&self) -> usize {
        self.total.div_ceil(PAGE_ROWS).max(1)
    }
}

impl Query {
    /// The query's meaning, or what is wrong with it, said for the page.
    pub fn parse(&self) -> Result<Search, String> {
        fn text(value: &str) -> Option<&str> {
            Some(value.trim()).filter(|v| !v.is_empty())
        }
        let person = text(&self.person).map(|p| {
            if p.contains('@') && !p.contains(char::is_whitespace) && !p.starts_with('@') {
                PersonQuery::Email(p.to_string())
            } else {
                PersonQuery::Part(p.to_lowercase())
            }
        });
        let event = match text(&self.event) {
            None => None,
            Some(name) => {
                Some(Event::from_name(name).ok_or_else(|| format!("{name:?} is not an event"))?)
            }
        };
        let source = match text(&self.source) {
            None => None,
            Some(name) => {
                Some(Source::from_name(name).ok_or_else(|| format!("{name:?} is not a source"))?)
            }
        };
        let search = Search {
            person,
            room: text(&self.room).map(str::to_string),
            room_id: None,
            event,
            source,
            from: text(&self.from).map(parse_time).transpose()?,
            to: text(&self.to).map(parse_time).transpose()?,
        };
        search
            .filter_times()
            .validate()
            .map_err(|e| e.to_string())?;
        Ok(search)
    }

    /// The query as URL parameters, `page` left out: for the links to
    /// other pages of it and to its download.
    pub fn encoded(&self) -> String {
        serde_urlencoded::to_string(self).unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        [
            &self.person,
            &self.room,
            &self.event,
            &self.source,
            &self.from,
            &self.to,
        ]
        .iter()
        .all(|v| v.trim().is_empty())
    }
}

/// A time as `export --from` takes it, or as a browser's date-time field
/// sends it (no seconds, no zone: read as UTC).
fn parse_time(text: &str) -> Result<String, String> {
    let browser = text.len() == 16 && text.as_bytes().get(10) == Some(&b'T');
    let text = if browser {
        format!("{text}:00Z")
    } else {
        text.to_string()
    };
    reader::parse_time(&text).map_err(|e| e.to_string())
}

impl Search {
    fn filter_times(&self) -> Filter {
        Filter {
            from: self.from.clone(),
            to: self.to.clone(),
            ..Filter::default()
        }
    }

    /// Whether a row matches.
    fn matcher<'a>(&'a self, index: &'a Index) -> impl Fn(&Row) -> bool + 'a {
        let people = self.person.as_ref().map(|query| {
            index
                .people()
                .iter()
                .map(|p| match query {
                    PersonQuery::Email(address) => p.has_email(address),
                    PersonQuery::Part(part) => p.contains(part),
                    PersonQuery::Id(id) => p.id == *id,
                })
                .collect::<Vec<bool>>()
        });
        let rooms = self.rooms(index);
        move |row: &Row| {
            self.event.is_none_or(|e| e == row.event)
                && self.source.is_none_or(|s| s == row.source)
                && self
                    .from
                    .as_deref()
                    .is_none_or(|from| row.received_at() >= from)
                && self.to.as_deref().is_none_or(|to| row.received_at() < to)
                && people.as_ref().is_none_or(|ok| {
                    row.person != NONE && ok.get(row.person as usize) == Some(&true)
                })
                && rooms
                    .as_ref()
                    .is_none_or(|ok| row.room != NONE && ok.get(row.room as usize) == Some(&true))
        }
    }

    /// The matching rows, newest first: page `page` of them and how many
    /// there are.
    pub fn run(&self, index: &Index, page: usize) -> Hits {
        let wanted = self.matcher(index);
        let skip = page * PAGE_ROWS;
        let mut total = 0;
        let mut rows = Vec::new();
        for row in index.rows().iter().rev() {
            if !wanted(row) {
                continue;
            }
            if total >= skip && rows.len() < PAGE_ROWS {
                rows.push(*row);
            }
            total += 1;
        }
        Hits { total, rows, page }
    }

    /// Every matching row, in log order.
    pub fn all(&self, index: &Index) -> Vec<Row> {
        let wanted = self.matcher(index);
        index.rows().iter().filter(|r| wanted(r)).copied().collect()
    }

    /// Which rooms the search keeps, by index; `None` for every room.
    fn rooms(&self, index: &Index) -> Option<Vec<bool>> {
        if self.room.is_none() && self.room_id.is_none() {
            return None;
        }
        let lowered = self.room.as_deref().map(str::to_lowercase);
        Some(
            index
                .rooms()
                .iter()
                .map(|r| {
                    self.room_id.as_deref().is_none_or(|id| r.id == id)
                        && self
                            .room
                            .as_deref()
                            .zip(lowered.as_deref())
                            .is_none_or(|(query, lowered)| r.matches(query, lowered))
                })
                .collect(),
        )
    }

    /// The `rollcall export` filter that gives exactly the records this
    /// search finds, or why there is none: export takes a whole email and
    /// one room id.
    pub fn export_filter(&self, index: &Index) -> Result<Filter, String> {
        let person = match &self.person {
            None => None,
            Some(PersonQuery::Email(address)) => Some(address.clone()),
            Some(_) => {
                return Err(
                    "a download needs a whole email address in Person, as `rollcall export --person` takes"
                        .into(),
                );
            }
        };
        let room = match self.rooms(index) {
            None => None,
            Some(matched) => {
                let mut ids = matched
                    .iter()
                    .zip(index.rooms())
                    .filter(|(ok, _)| **ok)
                    .map(|(_, room)| room.id.clone());
                match (ids.next(), ids.next()) {
                    (Some(id), None) => Some(id),
                    (None, _) => self.room.clone(),
                    (Some(_), Some(_)) => {
                        return Err(
                            "the room matches several rooms: give one room's id to download".into(),
                        );
                    }
                }
            }
        };
        Ok(Filter {
            from: self.from.clone(),
            to: self.to.clone(),
            room,
            person,
            events: self.event.into_iter().collect(),
            source: self.source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(person: &str, from: &str) -> Query {
        Query {
            person: person.into(),
            from: from.into(),
            ..Query::default()
        }
    }

    #[test]
    fn a_whole_address_is_an_email_and_anything_else_part_of_one() {
        let email = query(" Alice@Example.com ", "").parse().unwrap();
        assert_eq!(
            email.person,
            Some(PersonQuery::Email("Alice@Example.com".into()))
        );
        for part in ["alice", "@example.com", "Alice Liddell"] {
            assert!(
                matches!(
                    query(part, "").parse().unwrap().person,
                    Some(PersonQuery::Part(_))
                ),
                "{part}"
            );
        }
    }

    #[test]
    fn times_take_export_forms_and_a_browsers_date_time_as_utc() {
        let browser = query("", "2026-11-27T14:05").parse().unwrap();
        assert_eq!(browser.from.as_deref(), Some("2026-11-27T14:05:00.000Z"));
        let day = query("", "2026-11-27").parse().unwrap();
        assert_eq!(day.from.as_deref(), Some("2026-11-27T00:00:00.000Z"));
        assert!(query("", "last week").parse().is_err());
        let backwards = Query {
            from: "2026-11-28".into(),
            to: "2026-11-27".into(),
            ..Query::default()
        };
        assert!(backwards.parse().unwrap_err().contains("must be before"));
        let event = Query {
            event: "kicked".into(),
            ..Query::default()
        };
        assert!(event.parse().unwrap_err().contains("not an event"));
    }

    #[test]
    fn the_encoded_query_leaves_the_page_out() {
        let q = Query {
            person: "a b&c".into(),
            page: 3,
            ..Query::default()
        };
        assert_eq!(q.encoded(), "person=a+b%26c&room=&event=&source=&from=&to=");
    }
}
