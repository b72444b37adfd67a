//! Planner tests: each rule as a scenario over the in-memory calendars of [`simulator`], plus property
//! tests over random histories ([`properties`]).

mod properties;
mod simulator;

use chrono::{Duration, NaiveDate, TimeZone};
use serde_json::json;

use super::*;
use crate::google::{EventDateTime, ExtendedProperties};
use crate::sync::mirror::{MIRROR_CONFIG_KEY, MIRROR_ORIGIN_KEY, MIRROR_ORIGIN_SIDE_KEY, is_valid_event_id};
use simulator::World;

const CONFIG_ID: Uuid = Uuid::from_u128(0x0195_6a1e_0000_7000_8000_0000_0000_0001);
const OTHER_CONFIG_ID: Uuid = Uuid::from_u128(0x0195_6a1e_0000_7000_8000_0000_0000_0002);
const NEW_YORK: &str = "America/New_York";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 12, 0, 0).unwrap()
}

/// `days` after today (the day of [`now`]) at `hour`:00 UTC.
fn day_at(days: i64, hour: u32) -> DateTime<Utc> {
    let today = now().date_naive().and_hms_opt(hour, 0, 0).unwrap().and_utc();
    today + Duration::days(days)
}

fn config(direction: SyncDirection) -> PlanConfig {
    PlanConfig {
        id: CONFIG_ID,
        direction,
        lookahead_days: 30,
        lookback_days: 0,
        privacy_placeholder: None,
        reverse_privacy_placeholder: None,
        destination_color_id: None,
        reverse_color_id: None,
    }
}

fn world(direction: SyncDirection) -> World {
    World::new(config(direction), now())
}

fn timed(at: DateTime<Utc>, zone: Option<&str>) -> EventDateTime {
    EventDateTime::at(at, zone)
}

/// A one-hour user event with some text.
fn event(id: &str, summary: &str, start: DateTime<Utc>) -> google::Event {
    google::Event {
        id: Some(id.into()),
        summary: Some(summary.into()),
        description: Some(format!("About {summary}")),
        location: Some("Room 4".into()),
        start: Some(timed(start, Some(NEW_YORK))),
        end: Some(timed(start + Duration::hours(1), Some(NEW_YORK))),
        ..google::Event::default()
    }
}

fn weekly(id: &str, summary: &str, start: DateTime<Utc>, count: u32) -> google::Event {
    google::Event {
        recurrence: Some(vec![format!("RRULE:FREQ=WEEKLY;COUNT={count}")]),
        ..event(id, summary, start)
    }
}

fn content(event: &google::Event) -> MirrorContent {
    MirrorContent::from_google(event).expect("readable event")
}

fn summary(event: &google::Event) -> &str {
    event.summary.as_deref().unwrap_or_default()
}

fn start_of(event: &google::Event) -> DateTime<Utc> {
    event
        .start
        .as_ref()
        .and_then(EventDateTime::instant)
        .expect("timed start")
}

/// The starts of a series' instances (in its zone: across a DST change the UTC time moves).
fn instance_starts(series: &google::Event) -> Vec<DateTime<Utc>> {
    let content = content(series);
    let series = Series {
        start: &content.start,
        end: &content.end,
        recurrence: &content.recurrence,
    };
    let window = Window::new(now() - Duration::days(7), now() + Duration::days(90));
    recurrence::expand(&series, None, window, 100)
        .unwrap()
        .occurrences
        .into_iter()
        .map(|o| o.start.to_instant(None))
        .collect()
}

fn deletes(plan: &Plan) -> usize {
    plan.operations
        .iter()
        .filter(|op| matches!(op.operation, Operation::Delete { .. }))
        .count()
}

fn instant_key(at: DateTime<Utc>) -> EventTime {
    EventTime::DateTime {
        instant: at,
        time_zone: None,
    }
}

/// Every copy of the config (live, whole events) on a side.
fn copies(world: &World, side: Side) -> Vec<&google::Event> {
    world
        .calendar(side)
        .live()
        .filter(|e| e.recurring_event_id.is_none())
        .filter(|e| crate::sync::mirror::is_mirror(e).is_some_and(|m| m.is_of(CONFIG_ID)))
        .collect()
}

#[test]
fn one_way_create_rename_move_and_delete_reach_the_destination() {
    let mut w = world(SyncDirection::OneWay);
    w.user_put(Side::Source, event("a", "Standup", day_at(1, 14)));

    let first = w.sync();
    assert_eq!(first.counts.created, 1);
    assert!(matches!(
        first.operations[0].operation,
        Operation::Insert {
            side: Side::Destination,
            ..
        }
    ));
    let copy = w.copy_of(Side::Source, "a").expect("mirrored");
    assert_eq!(summary(copy), "Standup");
    assert_eq!(copy.description.as_deref(), Some("About Standup"));
    assert_eq!(copy.location.as_deref(), Some("Room 4"));
    assert_eq!(w.links.len(), 1);
    assert!(w.sync().is_empty(), "a rerun writes nothing");

    w.user_edit(Side::Source, "a", |e| e.summary = Some("Daily standup".into()));
    let renamed = w.sync();
    assert_eq!((renamed.counts.updated, renamed.operations.len()), (1, 1));
    assert_eq!(summary(w.copy_of(Side::Source, "a").unwrap()), "Daily standup");

    w.user_edit(Side::Source, "a", |e| {
        e.start = Some(timed(day_at(2, 16), Some(NEW_YORK)));
        e.end = Some(timed(day_at(2, 17), Some(NEW_YORK)));
    });
    assert_eq!(w.sync().counts.updated, 1);
    assert_eq!(start_of(w.copy_of(Side::Source, "a").unwrap()), day_at(2, 16));

    w.user_delete(Side::Source, "a");
    let deleted = w.sync();
    assert_eq!(deleted.counts.deleted, 1);
    assert!(w.copy_of(Side::Source, "a").is_none());
    assert!(w.links.is_empty());
    for _ in 0..3 {
        assert!(w.sync().is_empty());
    }
}

#[test]
fn one_way_overwrites_destination_edits_and_brings_deleted_mirrors_back() {
    let mut w = world(SyncDirection::OneWay);
    w.user_put(Side::Source, event("a", "Review", day_at(3, 15)));
    w.sync();
    let copy_id = mirror_event_id(CONFIG_ID, Side::Source, "a");

    w.user_edit(Side::Destination, &copy_id, |e| {
        e.summary = Some("Edited at the destination".into());
        e.start = Some(timed(day_at(4, 9), Some(NEW_YORK)));
    });
    let overwrite = w.sync();
    assert_eq!(overwrite.counts.updated, 1);
    let etag_sent = match &overwrite.operations[0].operation {
        Operation::Update { etag, .. } => etag.clone(),
        other => panic!("expected an update, got {other:?}"),
    };
    assert!(
        etag_sent.is_some(),
        "overwrites are conditional on the cached etag"
    );
    assert_eq!(
        content(w.copy_of(Side::Source, "a").unwrap()),
        content(&event("a", "Review", day_at(3, 15)))
    );

    w.user_delete(Side::Destination, &copy_id);
    let recreate = w.sync();
    assert_eq!(recreate.counts.created, 1);
    // The deleted copy keeps its id at Google: a PUT without If-Match resurrects it.
    assert!(
        matches!(&recreate.operations[0].operation, Operation::Update { etag: None, event_id, .. } if *event_id == copy_id)
    );
    assert_eq!(summary(w.copy_of(Side::Source, "a").unwrap()), "Review");
    assert_eq!(copies(&w, Side::Destination).len(), 1);
    for _ in 0..3 {
        assert!(w.sync().is_empty());
    }
}

#[test]
fn one_way_leaves_the_destinations_own_events_alone() {
    let mut w = world(SyncDirection::OneWay);
    w.user_put(Side::Destination, event("d", "Private dentist", day_at(1, 10)));
    w.user_put(Side::Source, event("s", "Work", day_at(1, 12)));
    let plan = w.sync();
    assert_eq!(plan.operations.len(), 1);
    assert_eq!(w.live_count(Side::Source), 1);
    assert_eq!(w.live_count(Side::Destination), 2);
    assert!(w.sync().is_empty());
}

#[test]
fn two_way_three_and_three_make_six_on_each_side() {
    let mut w = world(SyncDirection::TwoWay);
    for n in 0..3 {
        w.user_put(
            Side::Source,
            event(&format!("src{n}"), &format!("Source {n}"), day_at(n + 1, 9)),
        );
        w.user_put(
            Side::Destination,
            event(&format!("dst{n}"), &format!("Destination {n}"), day_at(n + 1, 13)),
        );
    }
    let plan = w.sync();
    assert_eq!(plan.counts.created, 6);
    assert_eq!(w.live_count(Side::Source), 6);
    assert_eq!(w.live_count(Side::Destination), 6);
    for copy in copies(&w, Side::Source) {
        let origin = crate::sync::mirror::is_mirror(copy)
            .and_then(|m| m.origin)
            .unwrap();
        assert_eq!(
            origin.side,
            Side::Destination,
            "a copy in the source mirrors a destination event"
        );
    }
    for _ in 0..3 {
        assert!(w.sync().is_empty(), "a second cycle makes no writes");
    }
}

#[test]
fn two_way_edits_and_deletions_reach_the_other_side() {
    let mut w = world(SyncDirection::TwoWay);
    w.user_put(
        Side::Source,
        google::Event {
            attendees: Some(json!([{"email": "guest@example.com"}])),
            ..event("s1", "Planning", day_at(2, 9))
        },
    );
    w.user_put(Side::Destination, event("d1", "Gym", day_at(2, 18)));
    w.sync();
    let copy_of_s1 = mirror_event_id(CONFIG_ID, Side::Source, "s1");
    let copy_of_d1 = mirror_event_id(CONFIG_ID, Side::Destination, "d1");

    // An edit of a copy reaches its origin, by a PATCH that touches nothing else.
    w.user_edit(Side::Destination, &copy_of_s1, |e| {
        e.summary = Some("Planning (moved room)".into())
    });
    let back = w.sync();
    assert_eq!(back.operations.len(), 1);
    match &back.operations[0].operation {
        Operation::Patch {
            side,
            event_id,
            patch,
            etag,
        } => {
            assert_eq!((*side, event_id.as_str()), (Side::Source, "s1"));
            assert_eq!(patch, &json!({"summary": "Planning (moved room)"}));
            assert!(etag.is_some());
        }
        other => panic!("expected a patch of the origin, got {other:?}"),
    }
    let origin = &w.source.events["s1"];
    assert_eq!(summary(origin), "Planning (moved room)");
    assert!(origin.attendees.is_some(), "the origin keeps its guests");
    assert!(w.sync().is_empty());

    // Both ways: a destination event edited through its copy in the source.
    w.user_edit(Side::Source, &copy_of_d1, |e| {
        e.start = Some(timed(day_at(3, 18), Some(NEW_YORK)));
        e.end = Some(timed(day_at(3, 19), Some(NEW_YORK)));
    });
    w.sync();
    assert_eq!(start_of(&w.destination.events["d1"]), day_at(3, 18));
    assert!(w.sync().is_empty());

    // Deleting a copy deletes its origin; deleting an origin deletes its copy.
    w.user_delete(Side::Destination, &copy_of_s1);
    let delete_origin = w.sync();
    assert_eq!(delete_origin.counts.deleted, 1);
    assert!(w.source.events["s1"].is_cancelled());
    w.user_delete(Side::Destination, "d1");
    w.sync();
    assert!(w.source.events[&copy_of_d1].is_cancelled());
    assert_eq!(
        (w.live_count(Side::Source), w.live_count(Side::Destination)),
        (0, 0)
    );
    assert!(w.links.is_empty());
    assert!(w.sync().is_empty());
}

#[test]
fn mirrors_are_never_copied_back_and_other_configs_mirrors_are_never_touched() {
    let mut w = world(SyncDirection::TwoWay);
    let foreign = |id: &str, start| google::Event {
        extended_properties: Some(ExtendedProperties {
            private: BTreeMap::from([(MIRROR_CONFIG_KEY.to_owned(), OTHER_CONFIG_ID.to_string())]),
            ..ExtendedProperties::default()
        }),
        ..event(id, "Copied by another config", start)
    };
    w.user_put(Side::Source, foreign("f1", day_at(1, 9)));
    w.user_put(Side::Destination, foreign("f2", day_at(1, 10)));
    w.user_put(Side::Source, event("s1", "Mine", day_at(1, 11)));
    w.sync();
    assert_eq!(
        w.live_count(Side::Source),
        2,
        "f1 and s1, nothing copied from the destination's f2"
    );
    assert_eq!(w.live_count(Side::Destination), 2, "f2 and the copy of s1");
    assert!(w.sync().is_empty());

    // A copy whose marker got lost still sits at a deterministic id: never an origin.
    let copy_id = mirror_event_id(CONFIG_ID, Side::Source, "s1");
    w.user_edit(Side::Destination, &copy_id, |e| e.extended_properties = None);
    let plan = w.plan();
    assert!(
        plan.operations
            .iter()
            .all(|op| op.operation.side() == Side::Destination),
        "nothing written into the source: {plan:#?}"
    );
    w.sync();
    assert_eq!(w.live_count(Side::Source), 2);
    assert!(w.sync().is_empty());
    // The other config's events were never written or deleted.
    assert!(!w.source.events["f1"].is_cancelled() && !w.destination.events["f2"].is_cancelled());
}

#[test]
fn both_sides_edited_the_origin_wins_and_a_conflict_is_counted() {
    let mut w = world(SyncDirection::TwoWay);
    w.user_put(Side::Source, event("s1", "Original", day_at(1, 9)));
    w.sync();
    let copy_id = mirror_event_id(CONFIG_ID, Side::Source, "s1");

    w.user_edit(Side::Source, "s1", |e| e.summary = Some("Origin edit".into()));
    w.user_edit(Side::Destination, &copy_id, |e| {
        e.summary = Some("Copy edit".into())
    });
    let plan = w.sync();
    assert_eq!(plan.counts.conflicts, 1);
    assert_eq!(summary(&w.source.events["s1"]), "Origin edit");
    assert_eq!(summary(w.copy_of(Side::Source, "s1").unwrap()), "Origin edit");
    assert!(w.sync().is_empty());

    // Copy deleted while the origin changed: the origin wins, the copy comes back.
    w.user_edit(Side::Source, "s1", |e| e.summary = Some("Edited again".into()));
    w.user_delete(Side::Destination, &copy_id);
    let plan = w.sync();
    assert_eq!((plan.counts.conflicts, plan.counts.created), (1, 1));
    assert!(!w.source.events["s1"].is_cancelled());
    assert_eq!(summary(w.copy_of(Side::Source, "s1").unwrap()), "Edited again");

    // Origin deleted while the copy changed: the origin wins, the copy goes.
    w.user_edit(Side::Destination, &copy_id, |e| {
        e.summary = Some("Copy edit".into())
    });
    w.user_delete(Side::Source, "s1");
    let plan = w.sync();
    assert_eq!((plan.counts.conflicts, plan.counts.deleted), (1, 1));
    assert!(w.copy_of(Side::Source, "s1").is_none());
    assert!(w.sync().is_empty());
}

#[test]
fn privacy_in_both_directions_stays_private_and_converges() {
    let mut w = World::new(
        PlanConfig {
            privacy_placeholder: Some("Busy (work)".into()),
            reverse_privacy_placeholder: Some("Blocked".into()),
            destination_color_id: Some("5".into()),
            ..config(SyncDirection::TwoWay)
        },
        now(),
    );
    w.user_put(
        Side::Source,
        google::Event {
            visibility: Some("public".into()),
            transparency: Some("transparent".into()),
            attendees: Some(json!([{"email": "boss@example.com"}])),
            ..event("secret1", "Salary talk", day_at(1, 15))
        },
    );
    w.user_put(Side::Destination, event("dentist1", "Dentist", day_at(2, 8)));
    w.sync();

    let check_private = |w: &World| {
        let copy = w.copy_of(Side::Source, "secret1").expect("mirrored");
        assert_eq!(summary(copy), "Busy (work)");
        assert!(copy.description.is_none() && copy.location.is_none());
        assert_eq!(copy.visibility, None, "visibility back to the default");
        assert_eq!(
            copy.transparency.as_deref(),
            Some("transparent"),
            "busy/free is kept"
        );
        assert_eq!(copy.color_id.as_deref(), Some("5"));
        let mut visible = serde_json::to_value(copy).unwrap();
        visible.as_object_mut().unwrap().remove("extendedProperties");
        let visible = visible.to_string();
        for leak in ["Salary", "Room 4", "boss@example.com", "secret1", "About"] {
            assert!(!visible.contains(leak), "{leak} leaked into {visible}");
        }
        assert_eq!(
            summary(w.copy_of(Side::Destination, "dentist1").unwrap()),
            "Blocked"
        );
    };
    check_private(&w);
    assert!(w.sync().is_empty());

    w.user_edit(Side::Source, "secret1", |e| {
        e.summary = Some("Salary talk, round 2".into());
        e.start = Some(timed(day_at(1, 16), Some(NEW_YORK)));
        e.end = Some(timed(day_at(1, 17), Some(NEW_YORK)));
    });
    w.user_edit(Side::Destination, "dentist1", |e| {
        e.summary = Some("Dentist (root canal)".into())
    });
    let update = w.sync();
    assert_eq!(
        update.counts.updated, 1,
        "only the time change reaches the privacy copy"
    );
    check_private(&w);
    assert_eq!(
        start_of(w.copy_of(Side::Source, "secret1").unwrap()),
        day_at(1, 16)
    );
    assert!(w.sync().is_empty(), "converged: no writes on the next run");

    // Text typed over a placeholder never reaches the origin; it is put back.
    let copy_id = mirror_event_id(CONFIG_ID, Side::Source, "secret1");
    w.user_edit(Side::Destination, &copy_id, |e| {
        e.summary = Some("What is this?".into())
    });
    let reset = w.sync();
    assert!(
        reset
            .operations
            .iter()
            .all(|op| op.operation.side() == Side::Destination)
    );
    assert_eq!(summary(&w.source.events["secret1"]), "Salary talk, round 2");
    check_private(&w);

    // A time change through the privacy copy does reach the origin, and only the time.
    w.user_edit(Side::Destination, &copy_id, |e| {
        e.summary = Some("Moved".into());
        e.start = Some(timed(day_at(1, 18), Some(NEW_YORK)));
        e.end = Some(timed(day_at(1, 19), Some(NEW_YORK)));
    });
    let back = w.sync();
    match &back.operations[..] {
        [
            PlannedOperation {
                operation: Operation::Patch { patch, .. },
                ..
            },
        ] => {
            assert_eq!(
                patch.as_object().unwrap().keys().collect::<Vec<_>>(),
                ["end", "start"]
            );
        }
        other => panic!("expected one patch of the origin: {other:#?}"),
    }
    let origin = &w.source.events["secret1"];
    assert_eq!(
        (summary(origin), start_of(origin)),
        ("Salary talk, round 2", day_at(1, 18))
    );
    w.sync();
    check_private(&w);
    assert!(w.sync().is_empty());
}

#[test]
fn a_weekly_series_with_a_moved_and_a_cancelled_instance_is_one_series_with_two_exceptions() {
    let mut w = world(SyncDirection::OneWay);
    // 09:00 in New York, across the DST change of March 8: the UTC time of the instances moves.
    let first = day_at(1, 14);
    w.user_put(Side::Source, weekly("w1", "Weekly sync", first, 6));
    let starts = instance_starts(&w.source.events["w1"]);
    assert_eq!(starts.len(), 6);
    let (second, third, fourth) = (starts[1], starts[2], starts[3]);
    assert_eq!(second, first + Duration::weeks(1) - Duration::hours(1));
    w.user_edit_instance(Side::Source, "w1", &instant_key(second), |e| {
        e.start = Some(timed(second + Duration::hours(2), Some(NEW_YORK)));
        e.end = Some(timed(second + Duration::hours(3), Some(NEW_YORK)));
    });
    w.user_cancel_instance(Side::Source, "w1", &instant_key(third));

    let plan = w.sync();
    let by_phase = |phase| plan.operations.iter().filter(|op| op.phase == phase).count();
    assert_eq!((by_phase(Phase::Series), by_phase(Phase::Instances)), (1, 2));
    let master_id = mirror_event_id(CONFIG_ID, Side::Source, "w1");
    let master = w.copy_of(Side::Source, "w1").expect("the series is mirrored");
    assert_eq!(
        master.recurrence.as_deref(),
        Some(&["RRULE:FREQ=WEEKLY;COUNT=6".to_owned()][..])
    );
    assert_eq!(
        master.start.as_ref().unwrap().time_zone.as_deref(),
        Some(NEW_YORK)
    );

    let exceptions: Vec<&google::Event> = w
        .destination
        .events
        .values()
        .filter(|e| e.recurring_event_id.as_deref() == Some(master_id.as_str()))
        .collect();
    assert_eq!(exceptions.len(), 2);
    let moved = &w.destination.events[&recurrence::instance_id(&master_id, &instant_key(second))];
    assert_eq!(start_of(moved), second + Duration::hours(2));
    assert!(!moved.is_cancelled());
    let cancelled = &w.destination.events[&recurrence::instance_id(&master_id, &instant_key(third))];
    assert!(cancelled.is_cancelled());
    assert_eq!(w.live_count(Side::Destination), 1, "one series, not six events");
    assert!(w.sync().is_empty());

    // One way: an instance edited or cancelled at the destination is put back.
    w.user_edit_instance(Side::Destination, &master_id, &instant_key(second), |e| {
        e.summary = Some("x".into())
    });
    w.user_cancel_instance(Side::Destination, &master_id, &instant_key(fourth));
    let repair = w.sync();
    assert_eq!(repair.operations.len(), 2);
    let restored = &w.destination.events[&recurrence::instance_id(&master_id, &instant_key(fourth))];
    assert!(!restored.is_cancelled());
    assert_eq!(start_of(restored), fourth);
    assert_eq!(
        summary(&w.destination.events[&recurrence::instance_id(&master_id, &instant_key(second))]),
        "Weekly sync"
    );
    assert!(w.sync().is_empty());
}

#[test]
fn two_way_instance_edits_on_the_copy_reach_the_origin_series() {
    let mut w = world(SyncDirection::TwoWay);
    let first = day_at(1, 14);
    w.user_put(Side::Source, weekly("w1", "Weekly sync", first, 6));
    w.sync();
    let master_id = mirror_event_id(CONFIG_ID, Side::Source, "w1");
    let starts = instance_starts(&w.source.events["w1"]);
    let (second, third) = (starts[1], starts[2]);

    w.user_edit_instance(Side::Destination, &master_id, &instant_key(second), |e| {
        e.start = Some(timed(second + Duration::hours(1), Some(NEW_YORK)));
        e.end = Some(timed(second + Duration::hours(2), Some(NEW_YORK)));
    });
    w.user_cancel_instance(Side::Destination, &master_id, &instant_key(third));
    let plan = w.sync();
    assert_eq!(plan.operations.len(), 2);
    assert!(
        plan.operations
            .iter()
            .all(|op| op.operation.side() == Side::Source)
    );
    let moved = &w.source.events[&recurrence::instance_id("w1", &instant_key(second))];
    assert_eq!(start_of(moved), second + Duration::hours(1));
    assert!(w.source.events[&recurrence::instance_id("w1", &instant_key(third))].is_cancelled());
    assert!(w.sync().is_empty());
}

#[test]
fn all_day_events_and_time_zones_are_preserved_exactly() {
    let mut w = world(SyncDirection::OneWay);
    let date = |d| NaiveDate::from_ymd_opt(2026, 3, d).unwrap();
    w.user_put(
        Side::Source,
        google::Event {
            start: Some(EventDateTime::all_day(date(5))),
            end: Some(EventDateTime::all_day(date(7))),
            ..event("allday", "Conference", day_at(0, 0))
        },
    );
    w.user_put(
        Side::Source,
        google::Event {
            start: Some(EventDateTime {
                date_time: Some("2026-03-10T09:00:00+09:00".into()),
                time_zone: Some("Asia/Tokyo".into()),
                ..EventDateTime::default()
            }),
            end: Some(EventDateTime {
                date_time: Some("2026-03-10T10:30:00+09:00".into()),
                time_zone: Some("Asia/Tokyo".into()),
                ..EventDateTime::default()
            }),
            ..event("tokyo", "Call", day_at(0, 0))
        },
    );
    w.sync();
    let all_day = w.copy_of(Side::Source, "allday").unwrap();
    assert_eq!(all_day.start.as_ref().unwrap().naive_date(), Some(date(5)));
    assert_eq!(all_day.end.as_ref().unwrap().naive_date(), Some(date(7)));
    assert!(all_day.start.as_ref().unwrap().date_time.is_none());
    let tokyo = w.copy_of(Side::Source, "tokyo").unwrap();
    assert_eq!(
        tokyo.start.as_ref().unwrap().time_zone.as_deref(),
        Some("Asia/Tokyo")
    );
    assert_eq!(
        start_of(tokyo),
        Utc.with_ymd_and_hms(2026, 3, 10, 0, 0, 0).unwrap()
    );
    assert_eq!(content(tokyo), content(&w.source.events["tokyo"]));
    assert!(w.sync().is_empty());
}

#[test]
fn events_enter_and_leave_the_window_and_edges_count_as_inside() {
    let mut w = world(SyncDirection::OneWay);
    let spanning = |id: &str, start: DateTime<Utc>, end: DateTime<Utc>| google::Event {
        start: Some(timed(start, None)),
        end: Some(timed(end, None)),
        ..event(id, id, start)
    };
    // Started yesterday, ends in an hour: overlaps the window's start.
    w.user_put(
        Side::Source,
        spanning("ongoing", now() - Duration::days(1), now() + Duration::hours(1)),
    );
    // Ended exactly now: outside.
    w.user_put(Side::Source, spanning("ended", now() - Duration::hours(1), now()));
    // Crosses the window's end (now + 30 days).
    w.user_put(
        Side::Source,
        spanning(
            "edge",
            now() + Duration::days(30) - Duration::hours(1),
            now() + Duration::days(31),
        ),
    );
    w.user_put(Side::Source, event("later", "Later", day_at(40, 9)));
    let plan = w.sync();
    assert_eq!(plan.counts.created, 2);
    assert!(w.copy_of(Side::Source, "ongoing").is_some() && w.copy_of(Side::Source, "edge").is_some());
    assert!(w.copy_of(Side::Source, "ended").is_none() && w.copy_of(Side::Source, "later").is_none());

    w.user_edit(Side::Source, "later", |e| {
        e.start = Some(timed(day_at(5, 9), None));
        e.end = Some(timed(day_at(5, 10), None));
    });
    assert_eq!(
        w.sync().counts.created,
        1,
        "an event entering the window gains one mirror"
    );
    assert!(w.sync().is_empty());

    w.user_edit(Side::Source, "later", |e| {
        e.start = Some(timed(day_at(45, 9), None));
        e.end = Some(timed(day_at(45, 10), None));
    });
    assert_eq!(
        w.sync().counts.deleted,
        1,
        "an event leaving the window loses its mirror"
    );

    w.now = now() + Duration::hours(2);
    assert_eq!(w.sync().counts.deleted, 1, "time passing moves the window");
    assert!(w.copy_of(Side::Source, "ongoing").is_none());
    assert!(w.sync().is_empty());
}

#[test]
fn an_incomplete_listing_never_leads_to_a_deletion() {
    let mut w = world(SyncDirection::OneWay);
    w.user_put(Side::Source, event("a", "A", day_at(1, 9)));
    w.user_put(Side::Source, event("b", "B", day_at(1, 11)));
    w.sync();
    w.user_delete(Side::Source, "a");

    let mut input = w.input();
    input.source.complete = false;
    assert_eq!(deletes(&plan(&input)), 0);
    // A source that suddenly lists nothing (grant revoked, listing failed): nothing at all.
    input.source.events.clear();
    assert!(plan(&input).is_empty());
    assert_eq!(deletes(&w.plan()), 1, "a complete listing does delete");

    // TWO_WAY: a copy missing from an incomplete destination neither deletes its origin nor is recreated.
    let mut w = world(SyncDirection::TwoWay);
    w.user_put(Side::Source, event("s", "S", day_at(1, 9)));
    w.sync();
    w.user_delete(Side::Destination, &mirror_event_id(CONFIG_ID, Side::Source, "s"));
    let mut input = w.input();
    input.destination.complete = false;
    assert!(plan(&input).is_empty());
    input.destination.events.clear();
    assert!(plan(&input).is_empty());
    assert_eq!(deletes(&w.plan()), 1);
}

#[test]
fn the_mass_delete_guard_holds_back_every_deletion_until_overridden() {
    let mut w = world(SyncDirection::OneWay);
    for n in 0..12 {
        w.user_put(Side::Source, event(&format!("e{n}"), "E", day_at(1, n)));
    }
    w.sync();
    for n in 0..12 {
        w.user_delete(Side::Source, &format!("e{n}"));
    }
    w.user_put(Side::Source, event("new", "New", day_at(2, 9)));

    let halted = w.plan();
    assert_eq!(
        halted.halted,
        Some(Halt::MassDelete {
            would_delete: 12,
            mirrors: 12
        })
    );
    assert_eq!(deletes(&halted), 0);
    assert_eq!(
        (halted.counts.deleted, halted.counts.created),
        (0, 1),
        "the rest still applies"
    );

    w.allow_mass_delete = true;
    let forced = w.sync();
    assert_eq!((forced.halted, forced.counts.deleted), (None, 12));
    assert_eq!(w.live_count(Side::Destination), 1);
}

#[test]
fn the_mass_delete_guard_needs_both_the_share_and_the_minimum() {
    let setup = |events: i64| {
        let mut w = world(SyncDirection::OneWay);
        for n in 0..events {
            w.user_put(
                Side::Source,
                event(
                    &format!("e{n}"),
                    "E",
                    day_at(1 + n / 20, 0) + Duration::minutes(n % 20 * 60),
                ),
            );
        }
        w.sync();
        w
    };
    let delete_first = |w: &mut World, n: i64| {
        for i in 0..n {
            w.user_delete(Side::Source, &format!("e{i}"));
        }
        w.plan()
    };
    // Every mirror, but fewer than 10: allowed.
    let mut w = setup(9);
    assert_eq!((delete_first(&mut w, 9).halted, deletes(&w.plan())), (None, 9));
    // 10 of 40 is exactly 25%: allowed; 11 of 40 is more: halted.
    let mut w = setup(40);
    assert_eq!(delete_first(&mut w, 10).halted, None);
    let mut w = setup(40);
    assert!(delete_first(&mut w, 11).halted.is_some());
    // Thresholds are configurable.
    let mut w = setup(40);
    w.guard = DeleteGuard {
        max_delete_share: 0.5,
        min_delete_guard: 10,
    };
    assert_eq!(delete_first(&mut w, 11).halted, None);
}

#[test]
fn skipped_event_types_are_counted_and_never_written() {
    let mut w = world(SyncDirection::TwoWay);
    for (n, kind) in [
        "outOfOffice",
        "focusTime",
        "workingLocation",
        "fromGmail",
        "birthday",
    ]
    .into_iter()
    .enumerate()
    {
        w.user_put(
            Side::Source,
            google::Event {
                event_type: Some(kind.into()),
                ..event(&format!("k{n}"), kind, day_at(1, u32::try_from(n).unwrap()))
            },
        );
    }
    w.user_put(
        Side::Destination,
        google::Event {
            event_type: Some("focusTime".into()),
            ..event("later", "Focus", day_at(60, 9))
        },
    );
    w.user_put(Side::Source, event("normal", "Normal", day_at(1, 12)));
    let plan = w.sync();
    assert_eq!(
        (plan.counts.skipped, plan.counts.created, plan.operations.len()),
        (5, 1, 1)
    );
    let again = w.plan();
    assert!(again.is_empty(), "skipped events are never retried");
    assert_eq!(again.counts.skipped, 5, "but still counted");
}

#[test]
fn a_crash_before_links_were_recorded_converges_without_duplicates() {
    let mut w = world(SyncDirection::OneWay);
    for n in 0..5 {
        w.user_put(Side::Source, event(&format!("e{n}"), "E", day_at(1, n)));
    }
    let plan = w.plan();
    // The writes land, the process dies before recording any link.
    for op in &plan.operations {
        w.execute(&op.operation).unwrap();
    }
    assert!(w.links.is_empty());
    // The executor retries the stale plan: inserts answer 409 and turn into PUTs.
    assert!(w.apply(&plan, |_| false).is_empty());
    assert_eq!(w.live_count(Side::Destination), 5);

    w.forget_links();
    let rebuilt = w.plan();
    assert!(
        rebuilt.is_empty(),
        "links rebuild from the calendars alone: {rebuilt:#?}"
    );
    assert_eq!(rebuilt.link_changes.len(), 5);
    w.apply(&rebuilt, |_| false);
    assert!(w.plan().link_changes.is_empty());
    assert_eq!(w.links.len(), 5);
}

#[test]
fn two_way_links_rebuild_from_the_calendars_alone() {
    let mut w = world(SyncDirection::TwoWay);
    w.user_put(Side::Source, event("s", "S", day_at(1, 9)));
    w.user_put(Side::Destination, event("d", "D", day_at(1, 10)));
    w.sync();
    w.forget_links();
    let plan = w.plan();
    assert!(plan.is_empty());
    assert_eq!(plan.link_changes.len(), 2);
}

#[test]
fn duplicate_copies_are_deleted() {
    let mut w = world(SyncDirection::OneWay);
    w.user_put(Side::Source, event("a", "A", day_at(1, 9)));
    w.sync();
    let mut duplicate = w.copy_of(Side::Source, "a").unwrap().clone();
    duplicate.id = Some("legacyid0001".into());
    w.user_put(Side::Destination, duplicate);
    let plan = w.sync();
    assert_eq!(plan.operations.len(), 1);
    assert!(
        matches!(&plan.operations[0].operation, Operation::Delete { event_id, .. } if event_id == "legacyid0001")
    );
    assert_eq!(copies(&w, Side::Destination).len(), 1);
}

#[test]
fn the_plan_carries_deterministic_ids_markers_and_link_records() {
    let mut w = world(SyncDirection::TwoWay);
    w.user_put(Side::Destination, event("d1", "D", day_at(1, 9)));
    let plan = w.plan();
    let [planned] = &plan.operations[..] else {
        panic!("one insert expected: {plan:#?}");
    };
    let Operation::Insert { side, event_id, body } = &planned.operation else {
        panic!("insert expected");
    };
    assert_eq!(*side, Side::Source);
    assert_eq!(*event_id, mirror_event_id(CONFIG_ID, Side::Destination, "d1"));
    assert!(is_valid_event_id(event_id));
    let private = &body.extended_properties.as_ref().unwrap().private;
    assert_eq!(private[MIRROR_CONFIG_KEY], CONFIG_ID.to_string());
    assert_eq!(private[MIRROR_ORIGIN_KEY], "d1");
    assert_eq!(private[MIRROR_ORIGIN_SIDE_KEY], "DESTINATION");
    let Some(LinkChange::Upsert(link)) = &planned.link else {
        panic!("the insert records a link");
    };
    assert_eq!(link.origin, LinkOrigin::Destination);
    assert_eq!(
        (link.source_event_id.as_str(), link.mirror_event_id.as_str()),
        ("d1", event_id.as_str())
    );
    assert_eq!(
        link.source_hash,
        content_hash(&content(&w.destination.events["d1"]))
    );
    assert_eq!(link.mirror_hash, content_hash(&content(body)));
}

#[test]
fn batches_never_span_phases_and_respect_the_size() {
    let mut w = world(SyncDirection::OneWay);
    for n in 0..7 {
        let id = format!("w{n}");
        w.user_put(Side::Source, weekly(&id, "W", day_at(1, n), 4));
        let second = instance_starts(&w.source.events[&id])[1];
        w.user_cancel_instance(Side::Source, &id, &instant_key(second));
    }
    let plan = w.plan();
    assert_eq!(plan.operations.len(), 14);
    for size in [1, 3, 5, 50] {
        let batches = plan.batches(size);
        assert_eq!(batches.iter().map(|b| b.len()).sum::<usize>(), 14);
        for batch in &batches {
            assert!(batch.len() <= size);
            assert!(batch.iter().all(|op| op.phase == batch[0].phase));
        }
    }
    assert_eq!(plan.batches(50).len(), 2);
    assert_eq!(plan.batches(0).len(), 14, "a size below 1 means 1");
}

#[test]
fn google_rewriting_what_it_stores_causes_no_rewrites() {
    let mut w = world(SyncDirection::TwoWay);
    // Google answers with other offsets, defaults left out, CRLF kept as LF...
    w.user_put(
        Side::Source,
        google::Event {
            description: Some("line one\r\nline two".into()),
            transparency: Some("opaque".into()),
            visibility: Some("default".into()),
            recurrence: Some(vec![" rrule:freq=daily;count=3 ".into()]),
            ..event("s", "S", day_at(1, 9))
        },
    );
    w.sync();
    let copy_id = mirror_event_id(CONFIG_ID, Side::Source, "s");
    // ... or rewrites the copy's date-times in yet another offset.
    w.user_edit(Side::Destination, &copy_id, |e| {
        let instant = start_of(e);
        e.start = Some(EventDateTime {
            date_time: Some(
                instant
                    .with_timezone(&chrono::FixedOffset::west_opt(5 * 3600).unwrap())
                    .to_rfc3339(),
            ),
            time_zone: Some(NEW_YORK.into()),
            ..EventDateTime::default()
        });
        e.description = Some("line one\nline two".into());
        e.recurrence = Some(vec!["RRULE:FREQ=DAILY;COUNT=3".into()]);
    });
    let plan = w.plan();
    assert!(plan.is_empty(), "{plan:#?}");
}

#[test]
fn a_large_run_killed_halfway_resumes_without_duplicates() {
    let mut w = world(SyncDirection::OneWay);
    for n in 0..2_000 {
        w.user_put(
            Side::Source,
            event(
                &format!("e{n}"),
                "E",
                day_at(1 + n / 100, 0) + Duration::minutes(n % 100 * 10),
            ),
        );
    }
    let plan = w.plan();
    let batches = plan.batches(50);
    assert_eq!(batches.len(), 40, "2,000 inserts are 40 batches of 50");
    // The process dies after 17 batches landed and before the 18th recorded its links.
    for batch in &batches[..17] {
        for planned in *batch {
            w.execute(&planned.operation).unwrap();
            if let Some(LinkChange::Upsert(link)) = &planned.link {
                w.links.insert(
                    (Side::from(link.origin), link.source_event_id.clone()),
                    link.clone(),
                );
            }
        }
    }
    for planned in batches[17] {
        w.execute(&planned.operation).unwrap();
    }
    let resumed = w.plan();
    assert_eq!(resumed.counts.created, 2_000 - 18 * 50);
    assert_eq!(
        resumed.link_changes.len(),
        50,
        "the unrecorded batch is recognised, not rewritten"
    );
    w.apply(&resumed, |_| false);
    assert_eq!(copies(&w, Side::Destination).len(), 2_000);
    assert_eq!(w.live_count(Side::Destination), 2_000);
    assert!(w.sync().is_empty());
}
