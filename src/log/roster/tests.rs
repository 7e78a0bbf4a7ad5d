use super::*;
use crate::log::record::example;

fn at(hour: u32) -> String {
    format!("2026-11-27T{hour:02}:00:00.000Z")
}

fn record(seq: u64, hour: u32, event: Event, person: &str) -> Record {
    Record {
        seq,
        received_at: at(hour),
        event,
        person_id: person.into(),
        person_email: Some(format!("{person}@example.com")),
        membership_id: format!("m-{person}"),
        membership_created: (event == Event::Joined).then(|| at(hour)),
        actor_id: Some("boss".into()),
        ..example()
    }
}

fn receiver(seq: u64, hour: u32, event: Event, not_before: Option<u32>) -> Record {
    Record {
        seq,
        received_at: at(hour),
        ..Record::receiver(event, not_before.map(at))
    }
}

fn history(records: Vec<Record>) -> History {
    let mut history = History::default();
    for record in records {
        history.add(record);
    }
    history
}

fn emails(roster: &Roster) -> Vec<&str> {
    roster
        .members
        .iter()
        .map(|m| m.email.as_deref().unwrap_or(""))
        .collect()
}

#[test]
fn the_roster_at_a_time_holds_who_had_joined_and_not_left_by_then() {
    let h = history(vec![
        Record {
            source: Source::Reconciled,
            ..record(1, 8, Event::Joined, "ana")
        },
        record(2, 10, Event::Joined, "bo"),
        record(3, 12, Event::Left, "ana"),
    ]);
    let room = h.find_room("r").unwrap();
    let before = h.roster(room, &at(9));
    assert_eq!(emails(&before), ["ana@example.com"]);
    assert_eq!(before.members[0].source, Source::Reconciled);
    assert!(before.warnings.is_empty(), "{:?}", before.warnings);
    let between = h.roster(room, &at(11));
    assert_eq!(emails(&between), ["ana@example.com", "bo@example.com"]);
    assert_eq!(between.members[1].added_by.as_deref(), Some("boss"));
    assert_eq!(emails(&h.roster(room, &at(13))), ["bo@example.com"]);
    assert_eq!(room.members_now(), 1);
}

#[test]
fn a_join_counts_from_when_the_membership_began_and_an_events_api_record_from_its_event() {
    let h = history(vec![
        Record {
            source: Source::Reconciled,
            membership_created: Some("2026-11-27T07:00:00Z".into()),
            ..record(1, 10, Event::Joined, "ana")
        },
        Record {
            source: Source::EventsApi,
            not_before: Some(at(8)),
            ..record(2, 10, Event::Left, "ana")
        },
    ]);
    let room = h.find_room("r").unwrap();
    assert_eq!(emails(&h.roster(room, &at(7))), ["ana@example.com"]);
    assert!(h.roster(room, &at(9)).members.is_empty());
}

#[test]
fn a_join_whose_membership_began_after_it_was_received_counts_from_its_receipt() {
    let h = history(vec![Record {
        membership_created: Some(at(15)),
        ..record(1, 10, Event::Joined, "ana")
    }]);
    let room = h.find_room("r").unwrap();
    assert_eq!(emails(&h.roster(room, &at(11))), ["ana@example.com"]);
}

#[test]
fn a_reconciled_leave_is_uncertain_between_not_before_and_when_it_was_found() {
    let h = history(vec![
        Record {
            source: Source::Reconciled,
            ..record(1, 8, Event::Joined, "ana")
        },
        Record {
            source: Source::Reconciled,
            not_before: Some(at(9)),
            ..record(2, 12, Event::Left, "ana")
        },
    ]);
    let room = h.find_room("r").unwrap();
    let roster = h.roster(room, &at(10));
    assert_eq!(emails(&roster), ["ana@example.com"]);
    assert_eq!(
        roster.warnings,
        [format!(
            "ana@example.com may have left between {} and {}",
            at(9),
            at(12)
        )]
    );
    assert!(h.roster(room, &at(13)).warnings.is_empty());
}

#[test]
fn a_time_in_a_coverage_gap_before_the_first_record_or_without_baseline_is_warned_about() {
    let h = history(vec![
        receiver(1, 6, Event::ReceiverStarted, None),
        record(2, 8, Event::Joined, "ana"),
        receiver(3, 9, Event::ReceiverStopped, None),
        receiver(4, 11, Event::ReceiverStarted, Some(9)),
        record(5, 12, Event::Joined, "bo"),
        receiver(6, 14, Event::ReceiverStarted, Some(12)),
    ]);
    let room = h.find_room("r").unwrap();
    let warned = |hour| h.roster(room, &at(hour)).warnings;
    let in_gap = warned(10);
    assert!(
        in_gap[0].starts_with(&format!(
            "{} falls in a coverage gap from {} to {}",
            at(10),
            at(9),
            at(11)
        )),
        "{in_gap:?}"
    );
    assert!(warned(13)[0].contains("(the receiver had crashed)"));
    assert!(
        warned(7)
            .iter()
            .any(|w| w == &format!("the roster before {} is unknown", at(8)))
    );
    assert!(
        warned(15)
            .iter()
            .any(|w| w.contains("run `rollcall reconcile`"))
    );
    assert_eq!(warned(15).len(), 1);
}

#[test]
fn a_room_is_found_by_id_or_by_any_recorded_title_in_any_case() {
    let titled = |seq, room: &str, title: &str| Record {
        room_id: room.into(),
        room_title: Some(title.into()),
        ..record(seq, 8, Event::Joined, &format!("p{seq}"))
    };
    let h = history(vec![
        titled(1, "r1", "Team"),
        titled(2, "r1", "Team renamed"),
        titled(3, "r2", "Board"),
        titled(4, "r3", "board"),
    ]);
    assert_eq!(h.find_room("r2").unwrap().room_id, "r2");
    assert_eq!(h.find_room("TEAM").unwrap().room_id, "r1");
    assert_eq!(
        h.find_room("r1").unwrap().title.as_deref(),
        Some("Team renamed")
    );
    assert_eq!(
        h.find_room("Board").unwrap_err(),
        RoomError::Ambiguous {
            title: "Board".into(),
            ids: vec!["r2".into(), "r3".into()]
        }
    );
    assert_eq!(
        h.find_room("nope").unwrap_err(),
        RoomError::Unknown("nope".into())
    );
}
