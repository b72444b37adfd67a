//! Property tests: random histories of creates, edits and deletions on both sides (origins and copies,
//! whole events and instances), interleaved with runs whose operations randomly fail and whose listings
//! are randomly stale and incomplete, always converge: once the calendars stop changing, a few clean runs
//! reach a state where every origin in the window has exactly one copy equal to what it should be, no
//! other copy exists, and the plan is empty.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use chrono::{Duration, NaiveDate, TimeZone};
use proptest::prelude::*;

use super::super::*;
use super::simulator::{Listing, World, regular_instance};
use crate::google::EventDateTime;
use crate::sync::mirror::is_mirror;

const CONFIG_ID: Uuid = Uuid::from_u128(0x0195_6a1e_0000_7000_8000_0000_0000_0042);
const ZONE: &str = "Europe/Berlin";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 12, 0, 0).unwrap()
}

fn today() -> NaiveDate {
    now().date_naive()
}

#[derive(Debug, Clone)]
enum Action {
    Create {
        side: Side,
        day: i64,
        hour: u32,
        all_day: bool,
        series: bool,
        skipped: bool,
    },
    Rename {
        side: Side,
        pick: usize,
        title: u8,
    },
    /// Moves a single event (never a series master: see the module of the planner for why instances
    /// are keyed by original start).
    Move {
        side: Side,
        pick: usize,
        day: i64,
        hour: u32,
    },
    Delete {
        side: Side,
        pick: usize,
    },
    EditInstance {
        side: Side,
        pick: usize,
        nth: usize,
        title: u8,
        shift: bool,
    },
    CancelInstance {
        side: Side,
        pick: usize,
        nth: usize,
    },
    Sync {
        seed: u64,
        failure_percent: u64,
        source: Listing,
        destination: Listing,
    },
}

fn listing() -> impl Strategy<Value = Listing> {
    prop_oneof![
        12 => Just(Listing::Complete),
        2 => Just(Listing::Stale),
        2 => any::<u64>().prop_map(Listing::Partial),
        1 => Just(Listing::Lost),
    ]
}

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Source), Just(Side::Destination)]
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        3 => (side(), -4i64..14, 0u32..24, any::<bool>(), prop::bool::weighted(0.3), prop::bool::weighted(0.1))
            .prop_map(|(side, day, hour, all_day, series, skipped)| Action::Create { side, day, hour, all_day, series, skipped }),
        2 => (side(), any::<usize>(), any::<u8>()).prop_map(|(side, pick, title)| Action::Rename { side, pick, title }),
        2 => (side(), any::<usize>(), -4i64..14, 0u32..24).prop_map(|(side, pick, day, hour)| Action::Move { side, pick, day, hour }),
        1 => (side(), any::<usize>()).prop_map(|(side, pick)| Action::Delete { side, pick }),
        1 => (side(), any::<usize>(), 0usize..5, any::<u8>(), any::<bool>())
            .prop_map(|(side, pick, nth, title, shift)| Action::EditInstance { side, pick, nth, title, shift }),
        1 => (side(), any::<usize>(), 0usize..5).prop_map(|(side, pick, nth)| Action::CancelInstance { side, pick, nth }),
        3 => (any::<u64>(), 0u64..40, listing(), listing())
            .prop_map(|(seed, failure_percent, source, destination)| Action::Sync { seed, failure_percent, source, destination }),
    ]
}

fn plan_config() -> impl Strategy<Value = PlanConfig> {
    (
        any::<bool>(),
        prop::option::of(Just("Busy".to_owned())),
        prop::option::of(Just("Blocked".to_owned())),
        prop::option::of(Just("7".to_owned())),
        prop::option::of(Just("3".to_owned())),
    )
        .prop_map(
            |(two_way, privacy, reverse_privacy, color, reverse_color)| PlanConfig {
                id: CONFIG_ID,
                direction: if two_way {
                    SyncDirection::TwoWay
                } else {
                    SyncDirection::OneWay
                },
                lookahead_days: 10,
                lookback_days: 1,
                privacy_placeholder: privacy,
                reverse_privacy_placeholder: reverse_privacy,
                destination_color_id: color,
                reverse_color_id: reverse_color,
            },
        )
}

/// A small deterministic generator for failures inside one run.
struct XorShift(u64);

impl XorShift {
    fn percent(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % 100
    }
}

fn times(day: i64, hour: u32, all_day: bool) -> (EventDateTime, EventDateTime) {
    let date = today() + Duration::days(day);
    if all_day {
        (
            EventDateTime::all_day(date),
            EventDateTime::all_day(date + Duration::days(1)),
        )
    } else {
        let start = date.and_hms_opt(hour, 0, 0).unwrap().and_utc();
        (
            EventDateTime::at(start, Some(ZONE)),
            EventDateTime::at(start + Duration::minutes(90), Some(ZONE)),
        )
    }
}

fn pick_id(
    world: &World,
    side: Side,
    pick: usize,
    filter: impl Fn(&google::Event) -> bool,
) -> Option<String> {
    let ids: Vec<String> = world
        .calendar(side)
        .live()
        .filter(|e| e.recurring_event_id.is_none() && filter(e))
        .filter_map(|e| e.id.clone())
        .collect();
    (!ids.is_empty()).then(|| ids[pick % ids.len()].clone())
}

fn is_series(event: &google::Event) -> bool {
    event.recurrence.as_ref().is_some_and(|r| !r.is_empty())
}

/// The original start of the `nth` instance of a series (its first five).
fn nth_instance(master: &google::Event, nth: usize) -> Option<EventTime> {
    let content = MirrorContent::from_google(master)?;
    let start = content.start.to_instant(None);
    let series = Series {
        start: &content.start,
        end: &content.end,
        recurrence: &content.recurrence,
    };
    let window = Window::new(start - Duration::days(1), start + Duration::days(10));
    let expansion = recurrence::expand(&series, None, window, 5).ok()?;
    let occurrences = expansion.occurrences;
    (!occurrences.is_empty()).then(|| occurrences[nth % occurrences.len()].original_start.clone())
}

fn act(world: &mut World, action: &Action) {
    match action {
        Action::Create {
            side,
            day,
            hour,
            all_day,
            series,
            skipped,
        } => {
            let id = world.next_user_id();
            let (start, end) = times(*day, *hour, *all_day);
            world.user_put(
                *side,
                google::Event {
                    id: Some(id.clone()),
                    summary: Some(format!("Event {id}")),
                    description: Some("notes".into()),
                    start: Some(start),
                    end: Some(end),
                    recurrence: series.then(|| vec!["RRULE:FREQ=DAILY;COUNT=5".to_owned()]),
                    event_type: skipped.then(|| "focusTime".to_owned()),
                    ..google::Event::default()
                },
            );
        }
        Action::Rename { side, pick, title } => {
            if let Some(id) = pick_id(world, *side, *pick, |_| true) {
                world.user_edit(*side, &id, |e| e.summary = Some(format!("Title {title}")));
            }
        }
        Action::Move {
            side,
            pick,
            day,
            hour,
        } => {
            if let Some(id) = pick_id(world, *side, *pick, |e| !is_series(e)) {
                world.user_edit(*side, &id, |e| {
                    let all_day = e.start.as_ref().is_some_and(EventDateTime::is_all_day);
                    let (start, end) = times(*day, *hour, all_day);
                    e.start = Some(start);
                    e.end = Some(end);
                });
            }
        }
        Action::Delete { side, pick } => {
            if let Some(id) = pick_id(world, *side, *pick, |_| true) {
                world.user_delete(*side, &id);
            }
        }
        Action::EditInstance {
            side,
            pick,
            nth,
            title,
            shift,
        } => {
            let Some(id) = pick_id(world, *side, *pick, is_series) else {
                return;
            };
            let Some(original) = nth_instance(&world.calendar(*side).events[&id], *nth) else {
                return;
            };
            world.user_edit_instance(*side, &id, &original, |e| {
                e.summary = Some(format!("Instance {title}"));
                if *shift && let (Some(start), Some(end)) = (&e.start, &e.end) {
                    let moved = |t: &EventDateTime| match t.instant() {
                        Some(at) => EventDateTime::at(at + Duration::hours(1), t.time_zone.as_deref()),
                        None => t.clone(),
                    };
                    let (start, end) = (moved(start), moved(end));
                    e.start = Some(start);
                    e.end = Some(end);
                }
            });
        }
        Action::CancelInstance { side, pick, nth } => {
            let Some(id) = pick_id(world, *side, *pick, is_series) else {
                return;
            };
            if let Some(original) = nth_instance(&world.calendar(*side).events[&id], *nth) {
                world.user_cancel_instance(*side, &id, &original);
            }
        }
        Action::Sync {
            seed,
            failure_percent,
            source,
            destination,
        } => {
            let input = world.input_with_listings(*source, *destination);
            let plan = plan(&input);
            for (incomplete, complete) in [
                (&input.source, Side::Destination),
                (&input.destination, Side::Source),
            ] {
                if !incomplete.complete {
                    assert_no_deletion_on(world, &plan, complete);
                }
            }
            let mut random = XorShift(seed | 1);
            world.apply(&plan, |_| random.percent() < *failure_percent);
        }
    }
}

/// When one side's listing failed, every deletion on the other side is justified by that side's state, so
/// none may be planned (duplicates of a copy aside: a second copy is never right).
fn assert_no_deletion_on(world: &World, plan: &Plan, side: Side) {
    for planned in &plan.operations {
        if let Operation::Delete {
            side: target,
            event_id,
        } = &planned.operation
            && *target == side
        {
            let duplicate = world
                .calendar(side)
                .events
                .get(event_id)
                .and_then(is_mirror)
                .is_some_and(|marker| {
                    marker
                        .origin
                        .is_some_and(|o| mirror_event_id(CONFIG_ID, o.side, &o.event_id) != *event_id)
                });
            assert!(
                duplicate,
                "deletion of {event_id} on {side:?} decided from an incomplete listing"
            );
        }
    }
}

/// What a converged pair of calendars looks like.
fn assert_mirrored(world: &World) {
    let config = &world.config;
    let window = config.window(world.now);
    let mut expected: HashSet<(Side, String)> = HashSet::new();
    for origin_side in [Side::Source, Side::Destination] {
        if !config.mirrors_from(origin_side) {
            continue;
        }
        let settings = config.settings(origin_side);
        let calendar = world.calendar(origin_side);
        let copies = world.calendar(origin_side.other());
        for origin in calendar
            .live()
            .filter(|e| e.recurring_event_id.is_none() && is_mirror(e).is_none())
        {
            let origin_id = origin.id.clone().unwrap();
            let origin_content = MirrorContent::from_google(origin).unwrap();
            if skippable_event_type(origin.event_type.as_deref())
                || !in_window(&origin_content, calendar.time_zone.as_deref(), window)
            {
                continue;
            }
            let copy_id = mirror_event_id(config.id, origin_side, &origin_id);
            let copy = copies
                .events
                .get(&copy_id)
                .filter(|e| !e.is_cancelled())
                .unwrap_or_else(|| panic!("no copy of {origin_side:?} {origin_id}"));
            let marker = is_mirror(copy).expect("copies carry the marker");
            assert!(marker.is_of(config.id));
            assert_eq!(
                marker.origin.map(|o| (o.side, o.event_id)),
                Some((origin_side, origin_id.clone()))
            );
            assert_eq!(
                MirrorContent::from_google(copy).unwrap(),
                mirror_content(&origin_content, &settings)
            );
            expected.insert((origin_side.other(), copy_id.clone()));
            if origin_content.is_series() {
                assert_instances_mirrored(world, origin_side, origin, copy, &settings);
            }
        }
    }
    for side in [Side::Source, Side::Destination] {
        for event in world
            .calendar(side)
            .live()
            .filter(|e| e.recurring_event_id.is_none())
        {
            if is_mirror(event).is_some_and(|m| m.is_of(config.id)) {
                let id = event.id.clone().unwrap();
                assert!(expected.contains(&(side, id.clone())), "stray copy {side:?} {id}");
            }
        }
    }
}

fn assert_instances_mirrored(
    world: &World,
    origin_side: Side,
    origin: &google::Event,
    copy: &google::Event,
    settings: &DirectionSettings,
) {
    let exceptions = |side: Side, master: &google::Event| -> BTreeMap<InstanceKey, google::Event> {
        world
            .calendar(side)
            .events
            .values()
            .filter(|e| e.recurring_event_id == master.id)
            .filter_map(|e| {
                let key =
                    crate::events::store::time_from_google(e.original_start_time.as_ref()?)?.instance_key();
                Some((key, e.clone()))
            })
            .collect()
    };
    let copy_side = origin_side.other();
    let origin_exceptions = exceptions(origin_side, origin);
    let copy_exceptions = exceptions(copy_side, copy);
    let keys: BTreeSet<InstanceKey> = origin_exceptions
        .keys()
        .chain(copy_exceptions.keys())
        .copied()
        .collect();
    let state = |side: Side, master: &google::Event, found: Option<&google::Event>, key| {
        let instance = match found {
            Some(exception) => Some(exception.clone()),
            None => regular_instance(master, key, world.calendar(side).time_zone.as_deref()),
        };
        instance
            .filter(|e| !e.is_cancelled())
            .map(|e| MirrorContent::from_google(&e).unwrap())
    };
    for key in keys {
        let origin_state = state(origin_side, origin, origin_exceptions.get(&key), key);
        let copy_state = state(copy_side, copy, copy_exceptions.get(&key), key);
        assert_eq!(
            copy_state,
            origin_state.map(|c| mirror_content(&c, settings)),
            "instance {key:?} of {:?}",
            origin.id
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_histories_converge_without_duplicates(
        config in plan_config(),
        history in prop::collection::vec(action(), 1..40),
    ) {
        let mut world = World::new(config, now());
        for action in &history {
            act(&mut world, action);
        }
        // The calendars stop changing: clean runs converge, then plan nothing.
        world.allow_mass_delete = true;
        let mut runs = 0;
        loop {
            let plan = world.plan();
            if plan.is_empty() && plan.link_changes.is_empty() {
                break;
            }
            runs += 1;
            prop_assert!(runs <= 3, "no convergence after {} runs: {:#?}", runs, plan);
            let failures = world.apply(&plan, |_| false);
            prop_assert!(failures.is_empty(), "clean run failed: {:?}", failures);
        }
        assert_mirrored(&world);
    }
}

#[derive(Debug, Clone)]
enum CopyEdit {
    Rename {
        side: Side,
        pick: usize,
        title: u8,
    },
    Sync {
        seed: u64,
        failure_percent: u64,
        source: Listing,
        destination: Listing,
    },
}

fn copy_edit() -> impl Strategy<Value = CopyEdit> {
    prop_oneof![
        (side(), any::<usize>(), any::<u8>()).prop_map(|(side, pick, title)| CopyEdit::Rename {
            side,
            pick,
            title
        }),
        (any::<u64>(), 0u64..40, listing(), listing()).prop_map(
            |(seed, failure_percent, source, destination)| CopyEdit::Sync {
                seed,
                failure_percent,
                source,
                destination
            }
        ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// TWO_WAY with only copies edited (no conflict possible): however runs fail and listings go stale,
    /// the last edit of each copy ends up in its origin, and nothing is lost or reverted.
    #[test]
    fn two_way_edits_of_copies_always_reach_their_origins(
        per_side in 1usize..5,
        edits in prop::collection::vec(copy_edit(), 1..30),
    ) {
        let config = PlanConfig {
            id: CONFIG_ID,
            direction: SyncDirection::TwoWay,
            lookahead_days: 10,
            lookback_days: 1,
            privacy_placeholder: None,
            reverse_privacy_placeholder: None,
            destination_color_id: None,
            reverse_color_id: None,
        };
        let mut world = World::new(config, now());
        for side in [Side::Source, Side::Destination] {
            for n in 0..per_side {
                act(&mut world, &Action::Create { side, day: 1, hour: u32::try_from(n).unwrap(), all_day: false, series: false, skipped: false });
            }
        }
        world.sync();
        let mut last: BTreeMap<(Side, String), String> = BTreeMap::new();
        for edit in &edits {
            match edit {
                CopyEdit::Rename { side, pick, title } => {
                    let Some(copy_id) = pick_id(&world, *side, *pick, |e| is_mirror(e).is_some()) else { continue };
                    let origin = is_mirror(&world.calendar(*side).events[&copy_id]).and_then(|m| m.origin).unwrap();
                    let summary = format!("Title {title}");
                    world.user_edit(*side, &copy_id, |e| e.summary = Some(summary.clone()));
                    last.insert((origin.side, origin.event_id), summary);
                }
                CopyEdit::Sync { seed, failure_percent, source, destination } => {
                    act(&mut world, &Action::Sync {
                        seed: *seed,
                        failure_percent: *failure_percent,
                        source: *source,
                        destination: *destination,
                    });
                }
            }
        }
        let mut runs = 0;
        loop {
            let plan = world.plan();
            if plan.is_empty() && plan.link_changes.is_empty() {
                break;
            }
            runs += 1;
            prop_assert!(runs <= 3, "no convergence: {:#?}", plan);
            prop_assert_eq!(plan.counts.conflicts, 0);
            world.apply(&plan, |_| false);
        }
        assert_mirrored(&world);
        for ((side, origin_id), summary) in &last {
            let origin = &world.calendar(*side).events[origin_id];
            prop_assert_eq!(origin.summary.as_ref(), Some(summary), "edit of the copy of {} lost", origin_id);
        }
    }
}
