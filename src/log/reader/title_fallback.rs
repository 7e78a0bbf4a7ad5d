//! The room-title fallback, the one rule `export` and `tail` share: a
//! record written without a `room_title` is shown with the latest title
//! recorded for its room at or before it, in log order, and with none if
//! the room had no title by then. A title recorded later (a rename, or a
//! lookup that only succeeded later) never changes how an earlier record
//! reads, so an export of a range reads the same whatever was written
//! after it.
//!
//! A [`TitleFallback`] holds the titles as of one point of the log: those
//! learned from the records read up to that point, and, for a room not
//! among them, the days before the first one read, searched newest first
//! only when such a room is asked for.

use std::collections::HashMap;

use super::{ReadError, in_log_order};
use crate::log::days::Day;
use crate::log::record::scan;

/// The latest title of each room as of one point of the log.
#[derive(Debug, Default)]
pub struct TitleFallback {
    known: HashMap<String, String>,
    /// Days before everything learned, not searched yet, oldest first.
    unsearched: Vec<Day>,
}

impl TitleFallback {
    /// The titles as of the start of the day after `earlier` (the days
    /// before it, oldest first). Nothing is read until a room is asked for.
    pub fn after(earlier: &[Day]) -> Self {
        Self {
            known: HashMap::new(),
            unsearched: earlier.to_vec(),
        }
    }

    /// Learns a title recorded after everything learned so far.
    pub fn learn(&mut self, room: &str, title: &str) {
        match self.known.get_mut(room) {
            Some(known) if known == title => {}
            Some(known) => title.clone_into(known),
            None => {
                self.known.insert(room.to_string(), title.to_string());
            }
        }
    }

    /// Learns everything `later` learned, as recorded after everything
    /// learned here; leaves `later` empty.
    pub fn learn_from(&mut self, later: &mut TitleFallback) {
        for (room, title) in later.known.drain() {
            self.known.insert(room, title);
        }
    }

    /// The title of `room` among those learned, without searching.
    pub fn learned(&self, room: &str) -> Option<&str> {
        self.known.get(room).map(String::as_str)
    }

    /// The title of `room` as of this point, searching earlier days for a
    /// room not learned since.
    pub fn title(&mut self, room: &str) -> Result<Option<&str>, ReadError> {
        while !self.known.contains_key(room) {
            let Some(day) = self.unsearched.pop() else {
                return Ok(None);
            };
            let mut in_day = HashMap::new();
            titled_lines(std::slice::from_ref(&day), |_, room, title| {
                in_day.insert(room.to_string(), title.to_string());
                Ok(())
            })?;
            for (room, title) in in_day {
                // What is known was recorded after this day.
                self.known.entry(room).or_insert(title);
            }
        }
        Ok(self.learned(room))
    }
}

/// Calls `each(seq, room, title)` for every whole line of `days` that
/// carries a room title, in log order. A byte search over whole blocks
/// finds those lines; only they have their fields decoded, and the rest
/// are never looked at line by line.
pub fn titled_lines(
    days: &[Day],
    mut each: impl FnMut(u64, &str, &str) -> Result<(), ReadError>,
) -> Result<(), ReadError> {
    let finder = memchr::memmem::Finder::new(TITLE_MEMBER);
    in_log_order(
        days,
        Vec::new,
        |block, found: &mut Vec<(u64, String, String)>| {
            found.clear();
            let lines = block.whole_lines();
            let mut from = 0;
            while let Some(hit) = finder.find(&lines[from..]).map(|at| from + at) {
                let start = memchr::memrchr(b'\n', &lines[..hit]).map_or(0, |i| i + 1);
                let end = memchr::memchr(b'\n', &lines[hit..]).map_or(lines.len(), |i| hit + i);
                let line = &lines[start..end];
                if let (Some(seq), Some(Some(room)), Some(Some(title))) = (
                    scan::leading_seq(line),
                    scan::string_member(line, b"room_id"),
                    scan::string_member(line, b"room_title"),
                ) {
                    found.push((seq, room.into_owned(), title.into_owned()));
                }
                from = end;
            }
            0
        },
        |_, found| {
            for (seq, room, title) in found.drain(..) {
                each(seq, &room, &title)?;
            }
            Ok(())
        },
    )
}

/// A string can never hold `,"room_title":"` unescaped, so every match is
/// the member itself.
const TITLE_MEMBER: &[u8] = b",\"room_title\":\"";
