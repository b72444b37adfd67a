//! Recurring edits by scope over HTTP against the emulator: THIS_AND_FOLLOWING splits a weekly series at
//! its fifth instance (timed until a date, all-day, COUNT-limited), across the spring DST change in
//! America/New_York, with exceptions on both sides of the split; Google (read over HTTP, expanded with
//! `singleEvents=true`) ends with two series whose instances are the expected ones. Deleting with the
//! same scope ends the series; ALL changes or deletes the whole series from an instance; invalid
//! combinations are BAD_USER_INPUT naming `scope`; and a mirrored series follows a split in one sync run.
//!
//! The series lie in the coming March, wherever the clock is: the fifth instance is the first Monday
//! after the change to daylight time.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, TimeZone, Utc, Weekday};
use chrono_tz::America::New_York;
use chronos::entities::enums::SyncRunStatus;
use reqwest::Method;
use serde_json::{Value, json};

use crate::{
    helpers::error_code,
    sync_runs::{DESTINATION, SOURCE, World},
};

const NEW_YORK: &str = "America/New_York";
const FIELDS: &str = "id googleEventId summary recurrence start { date dateTime timeZone }";

/// The kinds of series the split is tried on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// 09:00 New York, weekly until the eleventh instance's day.
    TimedUntil,
    /// All-day, weekly until the eleventh instance's date.
    AllDay,
    /// 09:00 New York, weekly, COUNT=11.
    TimedCount,
}

/// The second Sunday of March (the change to daylight time in New York) of the year after now.
fn dst_sunday() -> NaiveDate {
    let year = Utc::now().year() + 1;
    let first = NaiveDate::from_ymd_opt(year, 3, 1).expect("date");
    let to_sunday = (7 - first.weekday().num_days_from_sunday()) % 7;
    first + TimeDelta::days(i64::from(to_sunday) + 7)
}

/// The local date of instance `n` (from 0): weekly Mondays, the fifth (n = 4) right after the change.
fn day(n: i64) -> NaiveDate {
    let split = dst_sunday() + TimeDelta::days(1);
    assert_eq!(split.weekday(), Weekday::Mon);
    split + TimeDelta::weeks(n - 4)
}

/// 09:00 New York on `date`, as an instant.
fn nine(date: NaiveDate) -> DateTime<Utc> {
    New_York
        .from_local_datetime(&date.and_hms_opt(9, 0, 0).expect("time"))
        .single()
        .expect("unambiguous")
        .with_timezone(&Utc)
}

fn rfc(at: DateTime<Utc>) -> String {
    at.to_rfc3339()
}

/// RFC 3339 with `Z` (fit for a query string).
fn compact_rfc(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn compact(at: DateTime<Utc>) -> String {
    at.format("%Y%m%dT%H%M%SZ").to_string()
}

fn time_input(kind: Kind, date: NaiveDate, hours: i64) -> Value {
    match kind {
        Kind::AllDay => json!({ "date": date.to_string() }),
        _ => json!({ "dateTime": rfc(nine(date) + TimeDelta::hours(hours)), "timeZone": NEW_YORK }),
    }
}

/// Chronos' id of instance `n` of the series `master` (a Chronos id).
fn instance(kind: Kind, master: &str, n: i64) -> String {
    match kind {
        Kind::AllDay => format!("{master}:{}", day(n).format("%Y%m%d")),
        _ => format!("{master}:{}", compact(nine(day(n)))),
    }
}

/// One instance as Google expands it: its start (a date or an instant), summary and location.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Seen {
    start: String,
    summary: String,
    location: Option<String>,
}

fn start_key(event: &Value) -> String {
    match event["start"]["date"].as_str() {
        Some(date) => date.to_owned(),
        None => {
            let raw = event["start"]["dateTime"].as_str().expect("dateTime");
            rfc(DateTime::parse_from_rfc3339(raw)
                .expect("rfc3339")
                .with_timezone(&Utc))
        }
    }
}

impl World {
    async fn create_series(&self, kind: Kind, calendar: &str) -> Value {
        let recurrence = match kind {
            Kind::TimedUntil => format!("RRULE:FREQ=WEEKLY;UNTIL={}T235959Z", day(10).format("%Y%m%d")),
            Kind::AllDay => format!("RRULE:FREQ=WEEKLY;UNTIL={}", day(10).format("%Y%m%d")),
            Kind::TimedCount => "RRULE:FREQ=WEEKLY;COUNT=11".to_owned(),
        };
        let (start, end) = match kind {
            Kind::AllDay => (
                time_input(kind, day(0), 0),
                json!({ "date": (day(0) + TimeDelta::days(1)).to_string() }),
            ),
            _ => (time_input(kind, day(0), 0), time_input(kind, day(0), 1)),
        };
        let query =
            format!("mutation($input: CreateEventInput!) {{ createEvent(input: $input) {{ {FIELDS} }} }}");
        let input = json!({
            "calendarId": calendar,
            "summary": "Weekly",
            "location": "Room 1",
            "start": start,
            "end": end,
            "recurrence": [recurrence],
        });
        self.app.data(&query, json!({ "input": input })).await["createEvent"].clone()
    }

    async fn update_in_scope(&self, id: &str, input: Value, scope: Option<&str>) -> Value {
        let query = format!(
            "mutation($id: ID!, $input: UpdateEventInput!, $scope: RecurrenceScope) {{ updateEvent(id: $id, input: $input, scope: $scope) {{ {FIELDS} }} }}"
        );
        self.app
            .graphql(&query, json!({ "id": id, "input": input, "scope": scope }))
            .await
    }

    async fn delete_in_scope(&self, id: &str, scope: Option<&str>) -> Value {
        self.app
            .graphql(
                "mutation($id: ID!, $scope: RecurrenceScope) { deleteEvent(id: $id, scope: $scope) }",
                json!({ "id": id, "scope": scope }),
            )
            .await
    }

    /// Moves instance 1 by two hours (all-day: a day) and renames it, cancels instance 2, moves instance
    /// 6 likewise to Room 9, cancels instance 8: exceptions on both sides of the split at instance 4.
    async fn add_exceptions(&self, kind: Kind, master: &str) {
        for (n, summary, location) in [(1, "Moved before", "Room 1"), (6, "Moved after", "Room 9")] {
            let (start, end) = match kind {
                Kind::AllDay => (
                    json!({ "date": (day(n) + TimeDelta::days(1)).to_string() }),
                    json!({ "date": (day(n) + TimeDelta::days(2)).to_string() }),
                ),
                _ => (time_input(kind, day(n), 2), time_input(kind, day(n), 3)),
            };
            let input = json!({ "summary": summary, "location": location, "start": start, "end": end });
            let body = self
                .update_in_scope(&instance(kind, master, n), input, None)
                .await;
            assert!(body["errors"].is_null(), "{body}");
        }
        for n in [2, 8] {
            let body = self
                .delete_in_scope(&instance(kind, master, n), Some("THIS"))
                .await;
            assert_eq!(body["data"]["deleteEvent"], json!(true), "{body}");
        }
    }

    /// The instances of `email`'s primary calendar as Google expands them, in start order.
    async fn expanded(&self, email: &str) -> Vec<Seen> {
        let time_min = compact_rfc(nine(day(-2)));
        let time_max = compact_rfc(nine(day(14)));
        let (status, body) = self
            .google(
                email,
                Method::GET,
                &format!(
                    "calendars/{email}/events?singleEvents=true&maxResults=2500&timeMin={time_min}&timeMax={time_max}"
                ),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let mut seen: Vec<Seen> = body["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter(|e| e["status"] != "cancelled")
            .map(|e| Seen {
                start: start_key(e),
                summary: e["summary"].as_str().unwrap_or_default().to_owned(),
                location: e["location"].as_str().map(str::to_owned),
            })
            .collect();
        seen.sort();
        seen
    }

    /// The live series masters of `email`'s primary calendar, by Google id.
    async fn masters(&self, email: &str) -> BTreeMap<String, Value> {
        self.events(email)
            .await
            .into_iter()
            .filter(|(_, e)| e["recurrence"].is_array())
            .collect()
    }
}

/// What Google should expand after the split at instance 4 with the summary "Renamed" (or `None`: the
/// series deleted from instance 4 on).
fn expected(kind: Kind, renamed: Option<&str>) -> Vec<Seen> {
    let mut out = Vec::new();
    for n in 0..11 {
        if n == 2 || n == 8 || (renamed.is_none() && n >= 4) {
            continue;
        }
        let moved = n == 1 || n == 6;
        let start = match (kind, moved) {
            (Kind::AllDay, false) => day(n).to_string(),
            (Kind::AllDay, true) => (day(n) + TimeDelta::days(1)).to_string(),
            (_, false) => rfc(nine(day(n))),
            (_, true) => rfc(nine(day(n)) + TimeDelta::hours(2)),
        };
        let summary = match (n, renamed) {
            (4.., Some(renamed)) => renamed,
            (1, _) => "Moved before",
            _ => "Weekly",
        };
        let location = if n == 6 { "Room 9" } else { "Room 1" };
        out.push(Seen {
            start,
            summary: summary.to_owned(),
            location: Some(location.to_owned()),
        });
    }
    out.sort();
    out
}

/// The recurrence lines Google should hold after the split: (original series, new series).
fn expected_lines(kind: Kind) -> (Vec<String>, Vec<String>) {
    let last = day(10).format("%Y%m%d");
    match kind {
        Kind::TimedUntil => (
            vec![format!(
                "RRULE:FREQ=WEEKLY;UNTIL={}",
                compact(nine(day(4)) - TimeDelta::seconds(1))
            )],
            vec![
                format!("RRULE:FREQ=WEEKLY;UNTIL={last}T235959Z"),
                format!("EXDATE:{}", compact(nine(day(8)))),
            ],
        ),
        Kind::AllDay => (
            vec![format!(
                "RRULE:FREQ=WEEKLY;UNTIL={}",
                (day(4) - TimeDelta::days(1)).format("%Y%m%d")
            )],
            vec![
                format!("RRULE:FREQ=WEEKLY;UNTIL={last}"),
                format!("EXDATE;VALUE=DATE:{}", day(8).format("%Y%m%d")),
            ],
        ),
        Kind::TimedCount => (
            vec!["RRULE:FREQ=WEEKLY;COUNT=4".to_owned()],
            vec![
                "RRULE:FREQ=WEEKLY;COUNT=7".to_owned(),
                format!("EXDATE:{}", compact(nine(day(8)))),
            ],
        ),
    }
}

async fn split_at_the_fifth_instance(kind: Kind) {
    let world = World::new().await;
    let series = world.create_series(kind, &world.source_calendar).await;
    let master = series["id"].as_str().expect("id");
    let google_id = series["googleEventId"].as_str().expect("google id").to_owned();
    world.add_exceptions(kind, master).await;
    // The daylight change lies between instance 3 and instance 4, at 09:00 local on both.
    if kind != Kind::AllDay {
        assert_eq!(
            nine(day(4)) - nine(day(3)),
            TimeDelta::weeks(1) - TimeDelta::hours(1)
        );
    }
    let original = world.expanded(SOURCE).await;
    assert_eq!(original.len(), 9, "{original:#?}");

    let body = world
        .update_in_scope(
            &instance(kind, master, 4),
            json!({ "summary": "Renamed" }),
            Some("THIS_AND_FOLLOWING"),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let new_series = &body["data"]["updateEvent"];
    let new_google_id = new_series["googleEventId"].as_str().expect("google id");
    assert_ne!(new_google_id, google_id);
    assert_eq!(new_series["summary"], "Renamed");

    let masters = world.masters(SOURCE).await;
    assert_eq!(masters.len(), 2, "{masters:#?}");
    let (old_lines, new_lines) = expected_lines(kind);
    assert_eq!(masters[&google_id]["recurrence"], json!(old_lines));
    assert_eq!(masters[&google_id]["summary"], "Weekly");
    assert_eq!(masters[new_google_id]["recurrence"], json!(new_lines));
    assert_eq!(
        start_key(&masters[new_google_id]),
        match kind {
            Kind::AllDay => day(4).to_string(),
            _ => rfc(nine(day(4))),
        }
    );
    // Every instance once: those before the split untouched, those after renamed; the moved exception
    // after the split keeps its time and room.
    assert_eq!(world.expanded(SOURCE).await, expected(kind, Some("Renamed")));
    // The exceptions left at the original series are all before the split.
    let live_exceptions: Vec<Value> = world
        .events(SOURCE)
        .await
        .into_values()
        .filter(|e| e["recurringEventId"].is_string())
        .collect();
    assert_eq!(live_exceptions.len(), 2, "{live_exceptions:#?}");
    assert!(
        live_exceptions
            .iter()
            .any(|e| e["recurringEventId"] == json!(google_id) && e["summary"] == "Moved before")
    );
    assert!(
        live_exceptions
            .iter()
            .any(|e| e["recurringEventId"] == json!(new_google_id) && e["location"] == "Room 9")
    );

    // Chronos' own view (the cache) shows the same instances.
    let data = world
        .app
        .data(
            "query($ids: [ID!], $min: DateTime!, $max: DateTime!) { events(calendarIds: $ids, timeMin: $min, timeMax: $max, first: 500) { edges { node { summary start { date dateTime } } } } }",
            json!({ "ids": [world.source_calendar], "min": rfc(nine(day(-2))), "max": rfc(nine(day(14))) }),
        )
        .await;
    let cached: Vec<String> = data["events"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["summary"].as_str().unwrap_or_default().to_owned())
        .collect();
    let mut expected_summaries: Vec<String> = expected(kind, Some("Renamed"))
        .into_iter()
        .map(|s| s.summary)
        .collect();
    let mut cached_sorted = cached.clone();
    cached_sorted.sort();
    expected_summaries.sort();
    assert_eq!(cached_sorted, expected_summaries, "{data}");
}

#[tokio::test]
async fn this_and_following_splits_a_timed_series_across_the_dst_change() {
    split_at_the_fifth_instance(Kind::TimedUntil).await;
}

#[tokio::test]
async fn this_and_following_splits_an_all_day_series() {
    split_at_the_fifth_instance(Kind::AllDay).await;
}

#[tokio::test]
async fn this_and_following_splits_a_count_limited_series() {
    split_at_the_fifth_instance(Kind::TimedCount).await;
}

#[tokio::test]
async fn deleting_this_and_following_ends_the_series_before_the_instance() {
    for kind in [Kind::TimedCount, Kind::AllDay] {
        let world = World::new().await;
        let series = world.create_series(kind, &world.source_calendar).await;
        let master = series["id"].as_str().expect("id");
        let google_id = series["googleEventId"].as_str().expect("google id").to_owned();
        world.add_exceptions(kind, master).await;
        let body = world
            .delete_in_scope(&instance(kind, master, 4), Some("THIS_AND_FOLLOWING"))
            .await;
        assert_eq!(body["data"]["deleteEvent"], json!(true), "{body}");
        let masters = world.masters(SOURCE).await;
        assert_eq!(masters.keys().collect::<Vec<_>>(), [&google_id], "{kind:?}");
        assert_eq!(masters[&google_id]["recurrence"], json!(expected_lines(kind).0));
        assert_eq!(world.expanded(SOURCE).await, expected(kind, None), "{kind:?}");
        // Instances after the end are gone for Chronos too.
        let gone = world
            .app
            .data(
                "query($id: ID!) { event(id: $id) { id } }",
                json!({ "id": instance(kind, master, 5) }),
            )
            .await;
        assert!(gone["event"].is_null(), "{gone}");
        let kept = world
            .app
            .data(
                "query($id: ID!) { event(id: $id) { id } }",
                json!({ "id": instance(kind, master, 3) }),
            )
            .await;
        assert!(kept["event"]["id"].is_string(), "{kept}");
    }
}

#[tokio::test]
async fn all_changes_and_deletes_the_whole_series_from_an_instance() {
    let kind = Kind::TimedUntil;
    let world = World::new().await;
    let series = world.create_series(kind, &world.source_calendar).await;
    let master = series["id"].as_str().expect("id");
    let google_id = series["googleEventId"].as_str().expect("google id").to_owned();
    let body = world
        .update_in_scope(
            &instance(kind, master, 6),
            json!({ "summary": "Everyone", "location": "Hall" }),
            Some("ALL"),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    assert_eq!(body["data"]["updateEvent"]["googleEventId"], json!(google_id));
    let seen = world.expanded(SOURCE).await;
    assert_eq!(seen.len(), 11, "{seen:#?}");
    assert!(
        seen.iter()
            .all(|s| s.summary == "Everyone" && s.location.as_deref() == Some("Hall"))
    );
    // A new time of the instance moves the whole series by as much in local time.
    let body = world
        .update_in_scope(
            &instance(kind, master, 6),
            json!({ "start": time_input(kind, day(6), 1), "end": time_input(kind, day(6), 2) }),
            Some("ALL"),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let seen = world.expanded(SOURCE).await;
    let starts: Vec<String> = (0..11).map(|n| rfc(nine(day(n)) + TimeDelta::hours(1))).collect();
    assert_eq!(seen.iter().map(|s| s.start.clone()).collect::<Vec<_>>(), starts);

    // Splitting at the first instance is ALL: still one series, renamed throughout.
    let body = world
        .update_in_scope(
            &format!("{master}:{}", compact(nine(day(0)) + TimeDelta::hours(1))),
            json!({ "summary": "From the start" }),
            Some("THIS_AND_FOLLOWING"),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    assert_eq!(world.masters(SOURCE).await.len(), 1);
    assert!(
        world
            .expanded(SOURCE)
            .await
            .iter()
            .all(|s| s.summary == "From the start")
    );

    let body = world
        .delete_in_scope(
            &format!("{master}:{}", compact(nine(day(3)) + TimeDelta::hours(1))),
            Some("ALL"),
        )
        .await;
    assert_eq!(body["data"]["deleteEvent"], json!(true), "{body}");
    assert!(world.masters(SOURCE).await.is_empty());
    assert!(world.expanded(SOURCE).await.is_empty());
}

#[tokio::test]
async fn scopes_that_do_not_fit_the_event_are_bad_input_naming_scope() {
    let kind = Kind::TimedUntil;
    let world = World::new().await;
    let series = world.create_series(kind, &world.source_calendar).await;
    let master = series["id"].as_str().expect("id");
    let single = world
        .app
        .data(
            "mutation($input: CreateEventInput!) { createEvent(input: $input) { id } }",
            json!({ "input": {
                "calendarId": world.source_calendar,
                "summary": "Once",
                "start": time_input(kind, day(1), 4),
                "end": time_input(kind, day(1), 5),
            } }),
        )
        .await["createEvent"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let bad = |body: &Value, field: &str| {
        assert_eq!(error_code(body), Some("BAD_USER_INPUT"), "{body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], json!(field), "{body}");
    };
    let rename = json!({ "summary": "x" });
    bad(
        &world
            .update_in_scope(&single, rename.clone(), Some("THIS_AND_FOLLOWING"))
            .await,
        "scope",
    );
    bad(
        &world.delete_in_scope(&single, Some("THIS_AND_FOLLOWING")).await,
        "scope",
    );
    bad(
        &world.update_in_scope(master, rename.clone(), Some("THIS")).await,
        "scope",
    );
    bad(
        &world
            .update_in_scope(master, rename.clone(), Some("THIS_AND_FOLLOWING"))
            .await,
        "scope",
    );
    bad(
        &world.delete_in_scope(master, Some("THIS_AND_FOLLOWING")).await,
        "scope",
    );
    // A split keeps the rule and the instances' dates.
    let fifth = instance(kind, master, 4);
    bad(
        &world
            .update_in_scope(
                &fifth,
                json!({ "recurrence": ["RRULE:FREQ=DAILY"] }),
                Some("THIS_AND_FOLLOWING"),
            )
            .await,
        "recurrence",
    );
    bad(
        &world
            .update_in_scope(
                &fifth,
                json!({ "start": time_input(kind, day(4) + TimeDelta::days(1), 0), "end": time_input(kind, day(4) + TimeDelta::days(1), 1) }),
                Some("THIS_AND_FOLLOWING"),
            )
            .await,
        "start",
    );
    // Nothing was written: one series, eleven instances, and the single event.
    assert_eq!(world.masters(SOURCE).await.len(), 1);
    assert_eq!(world.expanded(SOURCE).await.len(), 12);
    // The accepted scopes on the same events (positive controls).
    let body = world.update_in_scope(&single, rename.clone(), Some("ALL")).await;
    assert!(body["errors"].is_null(), "{body}");
    let body = world.update_in_scope(master, rename, Some("ALL")).await;
    assert!(body["errors"].is_null(), "{body}");
}

#[tokio::test]
async fn a_mirrored_series_follows_a_split_in_one_sync_run() {
    let kind = Kind::TimedUntil;
    let world = World::new().await;
    let config = world.config("ONE_WAY", json!({ "lookaheadDays": 730 })).await;
    let series = world.create_series(kind, &world.source_calendar).await;
    let master = series["id"].as_str().expect("id");
    world.add_exceptions(kind, master).await;
    let run = world.sync(&config).await;
    assert_eq!(run.status, SyncRunStatus::Succeeded, "{run:?}");
    assert_eq!(world.expanded(DESTINATION).await, world.expanded(SOURCE).await);
    assert_eq!(world.masters(DESTINATION).await.len(), 1);

    // The copy cannot be split: the one-way sync keeps it equal to its origin.
    let data = world
        .app
        .data(
            "query($ids: [ID!], $min: DateTime!, $max: DateTime!) { events(calendarIds: $ids, timeMin: $min, timeMax: $max) { edges { node { id } } } }",
            json!({ "ids": [world.destination_calendar], "min": rfc(nine(day(5))), "max": rfc(nine(day(5)) + TimeDelta::minutes(1)) }),
        )
        .await;
    let copy_instance = data["events"]["edges"][0]["node"]["id"]
        .as_str()
        .expect("copy instance")
        .to_owned();
    assert!(copy_instance.contains(':'), "{copy_instance}");
    let refused = world
        .update_in_scope(
            &copy_instance,
            json!({ "summary": "Renamed" }),
            Some("THIS_AND_FOLLOWING"),
        )
        .await;
    assert_eq!(error_code(&refused), Some("BAD_USER_INPUT"), "{refused}");
    assert_eq!(
        refused["errors"][0]["extensions"]["field"],
        json!("scope"),
        "{refused}"
    );

    let body = world
        .update_in_scope(
            &instance(kind, master, 4),
            json!({ "summary": "Renamed" }),
            Some("THIS_AND_FOLLOWING"),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let run = world.sync(&config).await;
    assert_eq!(run.status, SyncRunStatus::Succeeded, "{run:?}");
    assert_eq!(run.failed, 0, "{run:?}");

    // Two mirrored series, each instance once, equal to the source's.
    let source = world.expanded(SOURCE).await;
    assert_eq!(source, expected(kind, Some("Renamed")));
    assert_eq!(world.expanded(DESTINATION).await, source);
    let mirrors = world.masters(DESTINATION).await;
    assert_eq!(mirrors.len(), 2, "{mirrors:#?}");
    let source_masters = world.masters(SOURCE).await;
    for (id, original) in &source_masters {
        let copy = mirrors
            .values()
            .find(|m| crate::sync_runs::origin_of(m) == *id)
            .unwrap_or_else(|| panic!("no copy of {id}: {mirrors:#?}"));
        assert_eq!(copy["recurrence"], original["recurrence"]);
    }
    // No orphans: every live event at the destination is a copy of a live source event.
    let source_ids: Vec<String> = world.events(SOURCE).await.into_keys().collect();
    let destination = world.events(DESTINATION).await;
    assert_eq!(destination.len(), source_ids.len(), "{destination:#?}");
    // A second run has nothing left to do.
    let run = world.sync(&config).await;
    assert_eq!(
        (run.created, run.updated, run.deleted, run.failed),
        (0, 0, 0, 0),
        "{run:?}"
    );
}

#[tokio::test]
async fn a_split_can_give_the_following_instances_another_time_of_day() {
    let kind = Kind::TimedUntil;
    let world = World::new().await;
    let series = world.create_series(kind, &world.source_calendar).await;
    let master = series["id"].as_str().expect("id");
    world.add_exceptions(kind, master).await;
    // From the fifth instance on: 10:30 to 11:00 local (the first of them in daylight time).
    let start = nine(day(4)) + TimeDelta::minutes(90);
    let body = world
        .update_in_scope(
            &instance(kind, master, 4),
            json!({
                "summary": "Later",
                "start": { "dateTime": rfc(start), "timeZone": NEW_YORK },
                "end": { "dateTime": rfc(start + TimeDelta::minutes(30)), "timeZone": NEW_YORK },
            }),
            Some("THIS_AND_FOLLOWING"),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let new_id = body["data"]["updateEvent"]["googleEventId"]
        .as_str()
        .expect("id")
        .to_owned();
    let mut expected = Vec::new();
    for n in 0..11 {
        let (at, summary, location) = match n {
            2 | 8 => continue,
            1 => (nine(day(n)) + TimeDelta::hours(2), "Moved before", "Room 1"),
            // The moved exception keeps its own time; the change's texts reach it.
            6 => (nine(day(n)) + TimeDelta::hours(2), "Later", "Room 9"),
            0 | 3 => (nine(day(n)), "Weekly", "Room 1"),
            _ => (nine(day(n)) + TimeDelta::minutes(90), "Later", "Room 1"),
        };
        expected.push(Seen {
            start: rfc(at),
            summary: summary.to_owned(),
            location: Some(location.to_owned()),
        });
    }
    expected.sort();
    assert_eq!(world.expanded(SOURCE).await, expected);
    let masters = world.masters(SOURCE).await;
    // UNTIL and the EXDATE move along with the instances.
    let until =
        Utc.from_utc_datetime(&day(10).and_hms_opt(23, 59, 59).expect("time")) + TimeDelta::minutes(90);
    assert_eq!(
        masters[&new_id]["recurrence"],
        json!([
            format!("RRULE:FREQ=WEEKLY;UNTIL={}", compact(until)),
            format!("EXDATE:{}", compact(nine(day(8)) + TimeDelta::minutes(90))),
        ])
    );
}

#[tokio::test]
async fn a_series_splits_at_an_instance_that_is_an_exception() {
    let kind = Kind::TimedCount;
    let world = World::new().await;
    let series = world.create_series(kind, &world.source_calendar).await;
    let master = series["id"].as_str().expect("id");
    let google_id = series["googleEventId"].as_str().expect("google id").to_owned();
    world.add_exceptions(kind, master).await;
    // Instance 6 is a moved exception: its id now resolves to the exception's own row.
    let body = world
        .update_in_scope(
            &instance(kind, master, 6),
            json!({ "summary": "From six" }),
            Some("THIS_AND_FOLLOWING"),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let masters = world.masters(SOURCE).await;
    assert_eq!(masters.len(), 2, "{masters:#?}");
    assert_eq!(
        masters[&google_id]["recurrence"],
        json!(["RRULE:FREQ=WEEKLY;COUNT=6"])
    );
    let seen = world.expanded(SOURCE).await;
    let moved = seen
        .iter()
        .find(|s| s.start == rfc(nine(day(6)) + TimeDelta::hours(2)))
        .expect("the moved instance");
    assert_eq!(
        (moved.summary.as_str(), moved.location.as_deref()),
        ("From six", Some("Room 9"))
    );
    // 11 instances, two cancelled, each once.
    assert_eq!(seen.len(), 9, "{seen:#?}");
    assert_eq!(
        seen.iter().filter(|s| s.summary == "From six").count(),
        4,
        "{seen:#?}"
    );

    // Deleting from an exception on ends the series before it.
    let world = World::new().await;
    let series = world.create_series(kind, &world.source_calendar).await;
    let master = series["id"].as_str().expect("id");
    world.add_exceptions(kind, master).await;
    let body = world
        .delete_in_scope(&instance(kind, master, 1), Some("THIS_AND_FOLLOWING"))
        .await;
    assert_eq!(body["data"]["deleteEvent"], json!(true), "{body}");
    let seen = world.expanded(SOURCE).await;
    assert_eq!(
        seen,
        vec![Seen {
            start: rfc(nine(day(0))),
            summary: "Weekly".to_owned(),
            location: Some("Room 1".to_owned()),
        }]
    );
}
