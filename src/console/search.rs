//! What the search form asks ([`Query`], as sent), what it means (the
//! index's [`Records`] filter, checked), and the `rollcall export` filter
//! that gives the same records for a download.

use serde::{Deserialize, Serialize};

use crate::index::pages::{Person, Records, Room};
use crate::index::{Index, IndexError};
use crate::log::reader::{self, Filter};
use crate::log::record::{Event, Source};

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
    /// Which page this is, 0-based: shown, and written to the access
    /// log; `before` says which records it holds.
    #[serde(skip_serializing)]
    pub page: usize,
    /// The page holds records below this seq (the newest without it).
    #[serde(skip_serializing)]
    pub before: Option<u64>,
}

impl Query {
    /// The query's meaning, or what is wrong with it, said for the page.
    pub fn parse(&self) -> Result<Records, String> {
        fn text(value: &str) -> Option<&str> {
            Some(value.trim()).filter(|v| !v.is_empty())
        }
        let person = text(&self.person).map(|p| {
            if p.contains('@') && !p.contains(char::is_whitespace) && !p.starts_with('@') {
                Person::Email(p.to_string())
            } else {
                Person::Part(p.to_lowercase())
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
        let search = Records {
            person,
            room: text(&self.room).map(|room| Room::Matching(room.to_string())),
            event,
            source,
            from: text(&self.from).map(parse_time).transpose()?,
            to: text(&self.to).map(parse_time).transpose()?,
        };
        Filter {
            from: search.from.clone(),
            to: search.to.clone(),
            ..Filter::default()
        }
        .validate()
        .map_err(|e| e.to_string())?;
        Ok(search)
    }

    /// The query as URL parameters, `page` and `before` left out: for the links to
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

/// The `rollcall export` filter that gives exactly the records `search`
/// finds, or why there is none: export takes a whole email and one room
/// id.
pub fn export_filter(
    search: &Records,
    index: &Index,
) -> Result<Result<Filter, String>, IndexError> {
    let person = match &search.person {
        None => None,
        Some(Person::Email(address)) => Some(address.clone()),
        Some(_) => {
            return Ok(Err(
                "a download needs a whole email address in Person, as `rollcall export --person` takes"
                    .into(),
            ));
        }
    };
    let room = match &search.room {
        None => None,
        Some(Room::Id(id)) => Some(id.clone()),
        Some(Room::Matching(query)) => match index.rooms_matching(query)?.as_slice() {
            [] => Some(query.clone()),
            [id] => Some(id.clone()),
            _ => {
                return Ok(Err(
                    "the room matches several rooms: give one room's id to download".into(),
                ));
            }
        },
    };
    Ok(Ok(Filter {
        from: search.from.clone(),
        to: search.to.clone(),
        room,
        person,
        events: search.event.into_iter().collect(),
        source: search.source,
    }))
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
            Some(Person::Email("Alice@Example.com".into()))
        );
        for part in ["alice", "@example.com", "Alice Liddell"] {
            assert!(
                matches!(
                    query(part, "").parse().unwrap().person,
                    Some(Person::Part(_))
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
    fn the_encoded_query_leaves_the_page_and_its_cursor_out() {
        let q = Query {
            person: "a b&c".into(),
            page: 3,
            before: Some(7),
            ..Query::default()
        };
        assert_eq!(q.encoded(), "person=a+b%26c&room=&event=&source=&from=&to=");
    }
}
