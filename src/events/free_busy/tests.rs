use chrono::{NaiveDate, Timelike as _};
use proptest::prelude::*;

use super::*;
use crate::entities::events;

fn at(raw: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(raw).unwrap().with_timezone(&Utc)
}

fn span(start: &str, end: &str) -> Interval {
    Interval::new(at(start), at(end))
}

fn field_of(error: AppError) -> String {
    match error {
        AppError::BadUserInput { field, .. } => field,
        other => panic!("expected BAD_USER_INPUT, got {other:?}"),
    }
}

#[test]
fn merging_joins_overlapping_touching_and_equal_intervals() {
    let merged = merge(vec![
        span("2026-03-02T13:00:00Z", "2026-03-02T14:00:00Z"),
        span("2026-03-02T09:00:00Z", "2026-03-02T10:00:00Z"),
        // The same time twice (an event and its copy): once.
        span("2026-03-02T09:00:00Z", "2026-03-02T10:00:00Z"),
        // Touching: one stretch.
        span("2026-03-02T10:00:00Z", "2026-03-02T10:30:00Z"),
        // Inside another.
        span("2026-03-02T13:15:00Z", "2026-03-02T13:45:00Z"),
        // Overlapping the end of another.
        span("2026-03-02T13:30:00Z", "2026-03-02T15:00:00Z"),
        // Empty: covers nothing.
        span("2026-03-02T12:00:00Z", "2026-03-02T12:00:00Z"),
    ]);
    assert_eq!(
        merged,
        vec![
            span("2026-03-02T09:00:00Z", "2026-03-02T10:30:00Z"),
            span("2026-03-02T13:00:00Z", "2026-03-02T15:00:00Z"),
        ]
    );
    assert!(merge(Vec::new()).is_empty());
}

#[test]
fn clock_times_are_two_digit_hours_and_minutes() {
    assert_eq!(
        parse_clock("f", "09:30").unwrap(),
        NaiveTime::from_hms_opt(9, 30, 0).unwrap()
    );
    assert_eq!(parse_clock("f", "00:00").unwrap(), NaiveTime::MIN);
    assert_eq!(
        parse_clock("f", "23:59").unwrap(),
        NaiveTime::from_hms_opt(23, 59, 0).unwrap()
    );
    for raw in [
        "",
        "9:00",
        "09:0",
        "24:00",
        "09:60",
        "09-00",
        "0900",
        "+9:00",
        "09:00:00",
        " 9:00",
        "٠٩:٠٠",
        "ab:cd",
    ] {
        assert_eq!(field_of(parse_clock("f", raw).unwrap_err()), "f", "{raw:?}");
    }
}

#[test]
fn working_hours_are_validated_field_by_field() {
    let hours = WorkingHours::parse("08:30", "12:00", Some(&[1, 7, 7])).unwrap();
    assert!(hours.includes(Weekday::Mon) && hours.includes(Weekday::Sun));
    assert!(!hours.includes(Weekday::Tue));
    let default = WorkingHours::parse("09:00", "17:00", None).unwrap();
    assert_eq!(default, WorkingHours::default());
    assert!(!default.includes(Weekday::Sat) && default.includes(Weekday::Fri));

    let cases: [(&str, &str, Option<&[i32]>, &str); 7] = [
        ("9", "17:00", None, "workingHours.start"),
        ("09:00", "17:60", None, "workingHours.end"),
        ("17:00", "09:00", None, "workingHours.end"),
        ("09:00", "09:00", None, "workingHours.end"),
        ("09:00", "17:00", Some(&[0]), "workingHours.weekdays"),
        ("09:00", "17:00", Some(&[1, 8]), "workingHours.weekdays"),
        ("09:00", "17:00", Some(&[]), "workingHours.weekdays"),
    ];
    for (start, end, weekdays, field) in cases {
        let error = WorkingHours::parse(start, end, weekdays).unwrap_err();
        assert_eq!(field_of(error), field, "{start} {end} {weekdays:?}");
    }
}

#[test]
fn durations_and_zones_are_validated() {
    assert_eq!(duration(1).unwrap(), TimeDelta::minutes(1));
    assert_eq!(duration(1440).unwrap(), TimeDelta::days(1));
    for minutes in [0, -5, 1441, i32::MAX] {
        assert_eq!(field_of(duration(minutes).unwrap_err()), "durationMinutes");
    }
    assert_eq!(
        time_zone("America/Los_Angeles").unwrap(),
        Tz::America__Los_Angeles
    );
    for raw in ["", "Mars/Olympus", "+02:00"] {
        assert_eq!(field_of(time_zone(raw).unwrap_err()), "timeZone", "{raw:?}");
    }
}

#[test]
fn windows_are_ordered_and_bounded() {
    assert!(window(at("2026-01-01T00:00:00Z"), at("2027-01-02T00:00:00Z")).is_ok());
    for (min, max) in [
        ("2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"),
        ("2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z"),
        ("2026-01-01T00:00:00Z", "2027-01-04T00:00:00Z"),
    ] {
        assert_eq!(field_of(window(at(min), at(max)).unwrap_err()), "timeMax");
    }
}

#[test]
fn working_blocks_keep_local_hours_across_a_dst_change() {
    // Los Angeles springs forward on Sunday 2026-03-08: 09:00 is 17:00Z before, 16:00Z after.
    let window = Window::new(at("2026-03-06T00:00:00Z"), at("2026-03-11T00:00:00Z"));
    let blocks = working_blocks(&WorkingHours::default(), Tz::America__Los_Angeles, window);
    assert_eq!(
        blocks,
        vec![
            // Thursday's last local hour (the window starts at 16:00 there).
            span("2026-03-06T00:00:00Z", "2026-03-06T01:00:00Z"),
            span("2026-03-06T17:00:00Z", "2026-03-07T01:00:00Z"),
            span("2026-03-09T16:00:00Z", "2026-03-10T00:00:00Z"),
            // Tuesday's block is cut at the window's end.
            span("2026-03-10T16:00:00Z", "2026-03-11T00:00:00Z"),
        ]
    );
    // And back in autumn (2026-11-01): 09:00 is 16:00Z on Friday, 17:00Z on Monday.
    let window = Window::new(at("2026-10-30T00:00:00Z"), at("2026-11-03T00:00:00Z"));
    let blocks = working_blocks(&WorkingHours::default(), Tz::America__Los_Angeles, window);
    assert_eq!(
        blocks,
        vec![
            span("2026-10-30T16:00:00Z", "2026-10-31T00:00:00Z"),
            span("2026-11-02T17:00:00Z", "2026-11-03T00:00:00Z"),
        ]
    );
}

#[test]
fn working_blocks_are_cut_to_the_window_and_read_in_the_zone() {
    // Brisbane (+10, no DST): Monday 09:00-17:00 is Sunday 23:00Z to Monday 07:00Z.
    let window = Window::new(at("2026-03-02T00:00:00Z"), at("2026-03-02T05:00:00Z"));
    let blocks = working_blocks(&WorkingHours::default(), Tz::Australia__Brisbane, window);
    assert_eq!(blocks, vec![span("2026-03-02T00:00:00Z", "2026-03-02T05:00:00Z")]);
    // Saturday only.
    let hours = WorkingHours::parse("10:00", "12:00", Some(&[6])).unwrap();
    let window = Window::new(at("2026-03-02T00:00:00Z"), at("2026-03-09T00:00:00Z"));
    assert_eq!(
        working_blocks(&hours, Tz::UTC, window),
        vec![span("2026-03-07T10:00:00Z", "2026-03-07T12:00:00Z")]
    );
}

#[test]
fn a_start_in_the_spring_gap_is_read_after_it() {
    // 02:30 does not exist in Los Angeles on 2026-03-08: read with the offset before the gap (-8), 10:30Z,
    // which is 03:30 local.
    let hours = WorkingHours::parse("02:30", "05:00", Some(&[7])).unwrap();
    let window = Window::new(at("2026-03-08T00:00:00Z"), at("2026-03-09T00:00:00Z"));
    assert_eq!(
        working_blocks(&hours, Tz::America__Los_Angeles, window),
        vec![span("2026-03-08T10:30:00Z", "2026-03-08T12:00:00Z")]
    );
}

#[test]
fn slots_are_the_long_enough_gaps_of_each_block() {
    let blocks = [
        span("2026-03-02T09:00:00Z", "2026-03-02T17:00:00Z"),
        span("2026-03-03T09:00:00Z", "2026-03-03T17:00:00Z"),
    ];
    let busy = [
        span("2026-03-02T08:00:00Z", "2026-03-02T09:30:00Z"),
        span("2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z"),
        span("2026-03-02T10:30:00Z", "2026-03-02T12:00:00Z"),
        // Into the next day's block.
        span("2026-03-02T16:00:00Z", "2026-03-03T10:00:00Z"),
    ];
    assert_eq!(
        free_slots(&busy, &blocks, TimeDelta::minutes(30)),
        vec![
            // Exactly the duration counts.
            span("2026-03-02T09:30:00Z", "2026-03-02T10:00:00Z"),
            span("2026-03-02T12:00:00Z", "2026-03-02T16:00:00Z"),
            span("2026-03-03T10:00:00Z", "2026-03-03T17:00:00Z"),
        ]
    );
    assert_eq!(
        free_slots(&busy, &blocks, TimeDelta::minutes(31)),
        vec![
            span("2026-03-02T12:00:00Z", "2026-03-02T16:00:00Z"),
            span("2026-03-03T10:00:00Z", "2026-03-03T17:00:00Z"),
        ]
    );
    // Nothing busy: the blocks themselves; a block shorter than the duration: nothing.
    assert_eq!(free_slots(&[], &blocks, TimeDelta::hours(8)), blocks.to_vec());
    assert!(free_slots(&[], &blocks, TimeDelta::minutes(481)).is_empty());
}

fn row(calendar_id: Uuid) -> TimedRow {
    let now = at("2026-03-02T09:00:00Z");
    TimedRow::from(&events::Model {
        id: Uuid::now_v7(),
        calendar_id,
        google_event_id: "e1".into(),
        i_cal_uid: None,
        summary: None,
        description: None,
        location: None,
        start_date: None,
        start_date_time: Some(now),
        start_time_zone: None,
        end_date: None,
        end_date_time: Some(now + TimeDelta::hours(1)),
        end_time_zone: None,
        all_day: false,
        range_start: now,
        range_end: now + TimeDelta::hours(1),
        long_span: false,
        recurrence: None,
        recurring_event_id: None,
        original_start_date: None,
        original_start_date_time: None,
        original_start_time_zone: None,
        status: EventStatus::Confirmed,
        transparency: None,
        visibility: None,
        color_id: None,
        event_type: None,
        etag: None,
        google_updated: None,
        extended_private: None,
        extended_shared: None,
        self_response_status: None,
        mirror_config_id: None,
        change_seq: 1,
        deleted_at: None,
        created_at: now,
        updated_at: now,
    })
}

#[test]
fn transparent_cancelled_and_declined_events_are_free() {
    let calendar = Uuid::now_v7();
    assert!(shows_busy(&row(calendar)));
    let with = |change: fn(&mut TimedRow)| {
        let mut row = row(calendar);
        change(&mut row);
        shows_busy(&row)
    };
    assert!(with(|r| r.status = EventStatus::Tentative));
    assert!(with(|r| r.transparency = Some("opaque".into())));
    for response in ["accepted", "tentative", "needsAction"] {
        let mut answered = row(calendar);
        answered.self_response_status = Some(response.into());
        assert!(shows_busy(&answered), "{response}");
    }
    assert!(!with(|r| r.transparency = Some("transparent".into())));
    assert!(!with(|r| r.status = EventStatus::Cancelled));
    assert!(!with(|r| r.self_response_status = Some("declined".into())));
}

#[test]
fn a_copy_is_left_out_when_its_original_calendar_is_selected() {
    let (source, destination, other) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let config = Uuid::now_v7();
    let configs = HashMap::from([(config, (source, destination))]);
    let mut copy = row(destination);
    copy.mirror_config_id = Some(config);
    let both: HashSet<Uuid> = [source, destination].into();
    let copy_only: HashSet<Uuid> = [destination, other].into();
    assert!(copies_selected(&copy, &configs, &both));
    assert!(!copies_selected(&copy, &configs, &copy_only));
    // A two-way config writes copies into its source too; their originals are in the destination.
    let mut back = row(source);
    back.mirror_config_id = Some(config);
    assert!(copies_selected(&back, &configs, &both));
    assert!(!copies_selected(&back, &configs, &[source].into()));
    // Ordinary events, and markers of configs that are not the user's, count.
    assert!(!copies_selected(&row(destination), &configs, &both));
    copy.mirror_config_id = Some(Uuid::now_v7());
    assert!(!copies_selected(&copy, &configs, &both));
}

/// Instants on a 15-minute grid from a fixed Monday, so every property can be checked cell by cell.
const CELL: i64 = 15;
const CELLS: i64 = 4 * 24 * 9;

fn epoch() -> DateTime<Utc> {
    at("2026-03-02T00:00:00Z")
}

fn cell(index: i64) -> DateTime<Utc> {
    epoch() + TimeDelta::minutes(index * CELL)
}

fn cell_of(instant: DateTime<Utc>) -> i64 {
    (instant - epoch()).num_minutes() / CELL
}

fn intervals(max_len: i64) -> impl Strategy<Value = Vec<Interval>> {
    proptest::collection::vec((0..CELLS, 0..max_len), 0..25).prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(start, len)| Interval::new(cell(start), cell((start + len).min(CELLS))))
            .collect()
    })
}

fn covered(intervals: &[Interval], index: i64) -> bool {
    let (start, end) = (cell(index), cell(index + 1));
    intervals.iter().any(|i| i.start <= start && end <= i.end)
}

const ZONES: [Tz; 6] = [
    Tz::UTC,
    Tz::America__Los_Angeles,
    Tz::Europe__Berlin,
    Tz::Australia__Brisbane,
    Tz::Asia__Kolkata,
    Tz::Australia__Sydney,
];

fn hours() -> impl Strategy<Value = WorkingHours> {
    // Quarter hours between 05:00 and 23:45, away from the night-time DST changes of these zones.
    (20u32..95, 1u32..40, proptest::collection::vec(1i32..=7, 1..7)).prop_map(|(start, length, days)| {
        let end = (start + length).min(95);
        let clock = |q: u32| format!("{:02}:{:02}", q / 4, (q % 4) * 15);
        WorkingHours::parse(&clock(start), &clock(end.max(start + 1)), Some(&days)).unwrap()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn merged_intervals_are_sorted_disjoint_and_cover_exactly_the_union(input in intervals(40)) {
        let merged = merge(input.clone());
        for pair in merged.windows(2) {
            prop_assert!(pair[0].end < pair[1].start, "sorted, neither overlapping nor touching");
        }
        for interval in &merged {
            prop_assert!(interval.start < interval.end);
        }
        for index in 0..CELLS {
            prop_assert_eq!(covered(&merged, index), covered(&input, index), "cell {}", index);
        }
    }

    #[test]
    fn slots_are_exactly_the_long_enough_free_runs_of_working_hours(
        busy in intervals(30),
        hours in hours(),
        zone in proptest::sample::select(ZONES.to_vec()),
        duration_cells in 1i64..20,
        (from, to) in (0..CELLS / 2, CELLS / 2..CELLS),
    ) {
        let window = Window::new(cell(from), cell(to));
        let duration = TimeDelta::minutes(duration_cells * CELL);
        let blocks = working_blocks(&hours, zone, window);
        let slots = free_slots(&busy, &blocks, duration);

        for block in &blocks {
            // Within the window, at the local working hours of a working day.
            prop_assert!(window.time_min <= block.start && block.end <= window.time_max);
            let local_start = block.start.with_timezone(&zone);
            let local_end = block.end.with_timezone(&zone);
            prop_assert!(hours.includes(local_start.weekday()));
            prop_assert_eq!(local_start.date_naive(), local_end.date_naive());
            prop_assert!(block.start == window.time_min || local_start.time() == hours.start);
            prop_assert!(block.end == window.time_max || local_end.time() == hours.end);
        }
        for slot in &slots {
            prop_assert!(slot.end - slot.start >= duration);
            prop_assert!(busy.iter().all(|b| b.start >= slot.end || b.end <= slot.start || b.start >= b.end));
            prop_assert!(blocks.iter().any(|b| b.start <= slot.start && slot.end <= b.end));
        }
        // The reference: walk each block cell by cell and keep the maximal free runs long enough.
        let mut expected = Vec::new();
        for block in &blocks {
            let mut run: Option<i64> = None;
            for index in cell_of(block.start)..=cell_of(block.end) {
                let free = index < cell_of(block.end) && !covered(&merge(busy.clone()), index);
                match (free, run) {
                    (true, None) => run = Some(index),
                    (false, Some(first)) => {
                        if index - first >= duration_cells {
                            expected.push(Interval::new(cell(first), cell(index)));
                        }
                        run = None;
                    }
                    _ => {}
                }
            }
        }
        prop_assert_eq!(slots, expected);
    }
}

#[test]
fn grid_instants_stay_on_the_grid() {
    // The property tests rely on every zone's working hours landing on whole quarter hours in UTC.
    let hours = WorkingHours::parse("09:15", "17:45", Some(&[1, 2, 3, 4, 5, 6, 7])).unwrap();
    let window = Window::new(cell(0), cell(CELLS));
    for zone in ZONES {
        for block in working_blocks(&hours, zone, window) {
            assert_eq!(block.start.minute() % 15, 0);
            assert_eq!(block.end.minute() % 15, 0);
        }
    }
    assert_eq!(cell_of(cell(17)), 17);
    assert_eq!(
        NaiveDate::from_ymd_opt(2026, 3, 2).unwrap().weekday(),
        Weekday::Mon
    );
}
