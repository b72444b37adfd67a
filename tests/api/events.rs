//! Events over HTTP against the Google emulator: window queries (overlap, all-day dates across zones,
//! series with exceptions across a DST change, pagination), writes through Google (create, update with
//! If-Match and its CONFLICT, delete, single instances), validation, isolation between users, and the
//! delta feed. Plus the query plan of the window query on SQLite.
//!
//! Google-side changes reach the cache through the calendars domain's refresh (`refresh_events`), run
//! here on a second Chronos instance sharing the test database (the server runs no background workers),
//! so each test decides when it happens.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, TimeDelta, Utc};
use chronos::{
    crypto::{Cipher, KeyRing},
    entities::{
        calendars,
        enums::{AccountStatus, EventStatus, SyncConfigStatus, SyncDirection},
        events, google_accounts, sync_configs, users,
    },
    events::{
        recurrence::Window,
        store::{self, UpsertOutcome},
        window::{self, WindowQuery, window_selects},
    },
    state::AppState,
    work_budget::WorkBudget,
};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ConnectionTrait, DbBackend, EntityTrait, QueryTrait, Statement,
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, TestDatabase, error_code};

const EVENT_FIELDS: &str = "id calendarId googleEventId summary description location allDay
    start { date dateTime timeZone } end { date dateTime timeZone } recurrence recurringEventId
    originalStartTime { date dateTime timeZone } status transparency visibility colorId updated";

/// A signed-in user with the Google account `email`, and a second Chronos instance on the same database
/// to run cache refreshes on demand.
struct Fixture {
    app: TestApp,
    email: String,
    account_id: String,
    side: AppState,
}

impl Fixture {
    /// Without background workers: push notifications and scheduled refreshes would change the cache at
    /// moments the test does not choose (a refresh racing the CONFLICT test, for one).
    async fn new(email: &str) -> Self {
        let app = TestApp::spawn_with(|settings| settings.scheduler_enabled = false).await;
        Self::signed_in(app, email).await
    }

    async fn signed_in(app: TestApp, email: &str) -> Self {
        app.emulator().create_account(email, None);
        app.sign_in(email).await;
        let account_id = app.accounts().await[0]["id"]
            .as_str()
            .expect("account id")
            .to_owned();
        let side = app.app_state().await;
        Self {
            app,
            email: email.to_owned(),
            account_id,
            side,
        }
    }

    /// A secondary calendar at Google; returns its Google id.
    fn google_calendar(&self, summary: &str, time_zone: &str) -> String {
        self.app
            .emulator()
            .create_calendar(&self.email, summary, Some(time_zone))
            .expect("create calendar")["id"]
            .as_str()
            .expect("calendar id")
            .to_owned()
    }

    /// Lists the account's calendars (as `refreshCalendars`); Google calendar id -> Chronos calendar.
    async fn calendars(&self) -> HashMap<String, Value> {
        let data = self
            .app
            .data(
                "mutation($id: ID!) { refreshCalendars(accountId: $id) { id googleCalendarId accessRole timeZone } }",
                json!({ "id": self.account_id }),
            )
            .await;
        data["refreshCalendars"]
            .as_array()
            .expect("calendars")
            .iter()
            .map(|c| {
                (
                    c["googleCalendarId"].as_str().expect("google id").to_owned(),
                    c.clone(),
                )
            })
            .collect()
    }

    async fn calendar_id(&self, google_id: &str) -> String {
        self.calendars().await[google_id]["id"]
            .as_str()
            .expect("calendar id")
            .to_owned()
    }

    /// Brings Google's changes to the calendar into the cache.
    async fn refresh(&self, calendar_id: &str) {
        let id = Uuid::parse_str(calendar_id).expect("uuid");
        chronos::calendars::refresh_events(&self.side, id)
            .await
            .unwrap_or_else(|e| panic!("refresh failed: {e:?}"));
    }

    /// An access token to call the emulator's Calendar API as the user.
    fn token(&self) -> String {
        self.app
            .emulator()
            .issue_access_token(&self.email)
            .expect("access token")
    }

    /// Calls the emulator's Calendar API as the user; returns status and JSON body (null when empty).
    async fn google(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = self.app.emulator_url(&format!("/calendar/v3/{path}"));
        let mut request = reqwest::Client::new()
            .request(method, url)
            .bearer_auth(self.token());
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("emulator request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn google_event(&self, calendar: &str, event: &str) -> Value {
        let (status, body) = self
            .google(
                reqwest::Method::GET,
                &format!("calendars/{calendar}/events/{event}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn create_event(&self, input: Value) -> Value {
        let query = format!(
            "mutation($input: CreateEventInput!) {{ createEvent(input: $input) {{ {EVENT_FIELDS} }} }}"
        );
        self.app.data(&query, json!({ "input": input })).await["createEvent"].clone()
    }

    async fn try_create_event(&self, input: Value) -> Value {
        let query = "mutation($input: CreateEventInput!) { createEvent(input: $input) { id } }";
        self.app.graphql(query, json!({ "input": input })).await
    }

    async fn update_event(&self, id: &str, input: Value) -> Value {
        let query = format!(
            "mutation($id: ID!, $input: UpdateEventInput!) {{ updateEvent(id: $id, input: $input) {{ {EVENT_FIELDS} }} }}"
        );
        self.app
            .graphql(&query, json!({ "id": id, "input": input }))
            .await
    }

    async fn delete_event(&self, id: &str) -> Value {
        self.app
            .graphql("mutation($id: ID!) { deleteEvent(id: $id) }", json!({ "id": id }))
            .await
    }

    async fn event(&self, id: &str) -> Value {
        let query = format!("query($id: ID!) {{ event(id: $id) {{ {EVENT_FIELDS} }} }}");
        self.app.data(&query, json!({ "id": id })).await["event"].clone()
    }

    /// `events` with these arguments: the raw response.
    async fn events_raw(&self, args: Value) -> Value {
        let query = format!(
            "query($calendarIds: [ID!], $timeMin: DateTime!, $timeMax: DateTime!, $first: Int, $after: String) {{
                events(calendarIds: $calendarIds, timeMin: $timeMin, timeMax: $timeMax, first: $first, after: $after) {{
                    edges {{ cursor node {{ {EVENT_FIELDS} }} }}
                    pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }}
                }}
            }}"
        );
        self.app.graphql(&query, args).await
    }

    /// `events` selecting ids and starts only (cheap enough for pages of 500).
    async fn events_light(&self, args: Value) -> Value {
        let query = "query($calendarIds: [ID!], $timeMin: DateTime!, $timeMax: DateTime!, $first: Int, $after: String) {
            events(calendarIds: $calendarIds, timeMin: $timeMin, timeMax: $timeMax, first: $first, after: $after) {
                edges { cursor node { id start { dateTime } } }
                pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
            }
        }";
        self.app.graphql(query, args).await
    }

    /// Every event of the window in `calendar` (one page: at most 50, what the complexity budget allows
    /// with every field selected).
    async fn window(&self, calendar: &str, time_min: &str, time_max: &str) -> Vec<Value> {
        let body = self
            .events_raw(
                json!({ "calendarIds": [calendar], "timeMin": time_min, "timeMax": time_max, "first": 50 }),
            )
            .await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        assert_eq!(body["data"]["events"]["pageInfo"]["hasNextPage"], json!(false));
        nodes(&body)
    }

    async fn summaries(&self, calendar: &str, time_min: &str, time_max: &str) -> Vec<String> {
        self.window(calendar, time_min, time_max)
            .await
            .iter()
            .map(|e| e["summary"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

fn nodes(body: &Value) -> Vec<Value> {
    body["data"]["events"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|edge| edge["node"].clone())
        .collect()
}

fn timed(calendar: &str, summary: &str, start: &str, end: &str) -> Value {
    json!({ "calendarId": calendar, "summary": summary, "start": { "dateTime": start }, "end": { "dateTime": end } })
}

fn all_day(calendar: &str, summary: &str, date: &str, end: &str) -> Value {
    json!({ "calendarId": calendar, "summary": summary, "start": { "date": date }, "end": { "date": end } })
}

/// The instant of a `DateTime` value, whatever UTC notation it uses.
fn instant(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .and_then(|raw| DateTime::parse_from_rfc3339(raw).ok())
        .map(|at| at.with_timezone(&Utc))
        .unwrap_or_else(|| panic!("not a DateTime: {value}"))
}

fn utc(raw: &str) -> DateTime<Utc> {
    instant(&json!(raw))
}

/// How many events were inserted at Google (the emulator's request log).
fn google_inserts(f: &Fixture) -> usize {
    f.app
        .emulator()
        .requests()
        .as_array()
        .expect("request log")
        .iter()
        .filter(|r| {
            r["method"] == json!("POST") && r["path"].as_str().is_some_and(|p| p.ends_with("/events"))
        })
        .count()
}

fn str_of<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} missing in {value}"))
}

fn error_field(body: &Value) -> Option<&str> {
    body["errors"][0]["extensions"]["field"].as_str()
}

fn assert_bad_input(body: &Value, field: &str) {
    assert_eq!(error_code(body), Some("BAD_USER_INPUT"), "{body}");
    assert_eq!(error_field(body), Some(field), "{body}");
}

#[tokio::test]
async fn windows_include_what_overlaps_and_exclude_what_only_touches() {
    let f = Fixture::new("overlap@example.com").await;
    let google_id = f.google_calendar("Work", "UTC");
    let calendar = f.calendar_id(&google_id).await;
    for (summary, start, end) in [
        ("inside", "2026-05-04T10:00:00Z", "2026-05-04T10:30:00Z"),
        ("spanning", "2026-05-03T22:00:00Z", "2026-05-05T01:00:00Z"),
        ("ends at timeMin", "2026-05-04T08:00:00Z", "2026-05-04T09:00:00Z"),
        (
            "starts at timeMax",
            "2026-05-04T12:00:00Z",
            "2026-05-04T13:00:00Z",
        ),
        ("crosses timeMin", "2026-05-04T08:30:00Z", "2026-05-04T09:00:01Z"),
        ("crosses timeMax", "2026-05-04T11:59:59Z", "2026-05-04T12:30:00Z"),
        ("next day", "2026-05-05T10:00:00Z", "2026-05-05T11:00:00Z"),
    ] {
        f.create_event(timed(&calendar, summary, start, end)).await;
    }
    let seen = f
        .summaries(&calendar, "2026-05-04T09:00:00Z", "2026-05-04T12:00:00Z")
        .await;
    assert_eq!(
        seen,
        ["spanning", "crosses timeMin", "inside", "crosses timeMax"],
        "ordered by start; touching events excluded"
    );
    // Offsets in the arguments are instants like any other.
    let seen = f
        .summaries(
            &calendar,
            "2026-05-04T11:00:00+02:00",
            "2026-05-04T14:00:00+02:00",
        )
        .await;
    assert_eq!(seen, ["spanning", "crosses timeMin", "inside", "crosses timeMax"]);

    // The cache answers alone: with every Google request failing, windows still answer.
    let client = reqwest::Client::new();
    let fault = client
        .post(f.app.emulator_url("/emulator/faults"))
        .json(&json!({ "status": 503 }))
        .send()
        .await
        .expect("fault");
    assert!(fault.status().is_success());
    let seen = f
        .summaries(&calendar, "2026-05-04T00:00:00Z", "2026-05-06T00:00:00Z")
        .await;
    assert_eq!(seen.len(), 7);
    client
        .delete(f.app.emulator_url("/emulator/faults"))
        .send()
        .await
        .expect("clear faults");
}

#[tokio::test]
async fn all_day_events_keep_their_dates_in_every_zone_and_end_exclusively() {
    let f = Fixture::new("allday@example.com").await;
    let la_google = f.google_calendar("Los Angeles", "America/Los_Angeles");
    let brisbane_google = f.google_calendar("Brisbane", "Australia/Brisbane");
    let calendars = f.calendars().await;
    let la = str_of(&calendars[&la_google], "id").to_owned();
    let brisbane = str_of(&calendars[&brisbane_google], "id").to_owned();

    let la_event = f
        .create_event(all_day(&la, "LA holiday", "2026-01-15", "2026-01-16"))
        .await;
    let bne_event = f
        .create_event(all_day(&brisbane, "Brisbane holiday", "2026-01-15", "2026-01-16"))
        .await;
    for event in [&la_event, &bne_event] {
        assert_eq!(event["allDay"], json!(true));
        assert_eq!(
            event["start"],
            json!({ "date": "2026-01-15", "dateTime": null, "timeZone": null })
        );
        assert_eq!(event["end"]["date"], json!("2026-01-16"));
    }
    // Google holds the same dates, and a refresh from Google keeps them.
    let at_google = f
        .google_event(&la_google, str_of(&la_event, "googleEventId"))
        .await;
    assert_eq!(at_google["start"]["date"], json!("2026-01-15"));
    f.refresh(&la).await;
    f.refresh(&brisbane).await;
    for event in [&la_event, &bne_event] {
        let cached = f.event(str_of(event, "id")).await;
        assert_eq!(cached["start"]["date"], json!("2026-01-15"));
        assert_eq!(cached["end"]["date"], json!("2026-01-16"));
    }

    // Los Angeles is UTC-8 in January: its 15th runs from 08:00Z to 08:00Z the next day.
    let la_day = f
        .summaries(&la, "2026-01-15T08:00:00Z", "2026-01-16T08:00:00Z")
        .await;
    assert_eq!(la_day, ["LA holiday"]);
    assert!(
        f.summaries(&la, "2026-01-16T08:00:00Z", "2026-01-17T08:00:00Z")
            .await
            .is_empty(),
        "end date exclusive"
    );
    assert!(
        f.summaries(&la, "2026-01-14T08:00:00Z", "2026-01-15T08:00:00Z")
            .await
            .is_empty()
    );
    // The UTC day of the 15th overlaps its first 16 hours.
    assert_eq!(
        f.summaries(&la, "2026-01-15T00:00:00Z", "2026-01-15T08:00:01Z")
            .await,
        ["LA holiday"]
    );

    // Brisbane is UTC+10: its 15th runs from 14:00Z on the 14th.
    let bne_day = f
        .summaries(&brisbane, "2026-01-14T14:00:00Z", "2026-01-15T14:00:00Z")
        .await;
    assert_eq!(bne_day, ["Brisbane holiday"]);
    assert!(
        f.summaries(&brisbane, "2026-01-15T14:00:00Z", "2026-01-16T14:00:00Z")
            .await
            .is_empty()
    );
    assert!(
        f.summaries(&brisbane, "2026-01-13T14:00:00Z", "2026-01-14T14:00:00Z")
            .await
            .is_empty()
    );

    // Both calendars at once, ordered by the instant each day starts where it is.
    let body = f
        .events_raw(
            json!({ "timeMin": "2026-01-14T00:00:00Z", "timeMax": "2026-01-17T00:00:00Z", "first": 50 }),
        )
        .await;
    let both: Vec<String> = nodes(&body)
        .iter()
        .map(|e| str_of(e, "summary").to_owned())
        .collect();
    assert_eq!(both, ["Brisbane holiday", "LA holiday"]);
    let data = f
        .app
        .data(
            "{ events(timeMin: \"2026-01-14T00:00:00Z\", timeMax: \"2026-01-17T00:00:00Z\", first: 10) {
                edges { node { calendarId calendar { id timeZone } } } } }",
            json!({}),
        )
        .await;
    let zones: Vec<(&Value, &Value, &Value)> = data["events"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|edge| {
            let node = &edge["node"];
            (
                &node["calendarId"],
                &node["calendar"]["id"],
                &node["calendar"]["timeZone"],
            )
        })
        .collect();
    assert_eq!(
        zones,
        [
            (&json!(brisbane), &json!(brisbane), &json!("Australia/Brisbane")),
            (&json!(la), &json!(la), &json!("America/Los_Angeles")),
        ]
    );
}

#[tokio::test]
async fn a_weekly_series_across_a_dst_change_shows_moved_and_cancelled_instances() {
    let f = Fixture::new("series@example.com").await;
    let google_id = f.google_calendar("Berlin", "Europe/Berlin");
    // Seeded at Google: Mondays 09:00 Berlin time; Europe moves to summer time on 29 March 2026.
    let master = f
        .app
        .emulator()
        .insert_event(
            &google_id,
            json!({
                "summary": "Weekly sync",
                "start": { "dateTime": "2026-03-09T09:00:00", "timeZone": "Europe/Berlin" },
                "end": { "dateTime": "2026-03-09T10:00:00", "timeZone": "Europe/Berlin" },
                "recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=MO"],
            }),
        )
        .expect("insert series");
    let master_google = str_of(&master, "id").to_owned();
    // Move the 23 March instance to Tuesday 14:00, cancel the 6 April one (09:00 CEST = 07:00Z).
    let (status, moved) = f
        .google(
            reqwest::Method::PATCH,
            &format!("calendars/{google_id}/events/{master_google}_20260323T080000Z"),
            Some(json!({
                "summary": "Moved sync",
                "start": { "dateTime": "2026-03-24T14:00:00", "timeZone": "Europe/Berlin" },
                "end": { "dateTime": "2026-03-24T15:00:00", "timeZone": "Europe/Berlin" },
            })),
        )
        .await;
    assert_eq!(status, 200, "{moved}");
    let (status, body) = f
        .google(
            reqwest::Method::DELETE,
            &format!("calendars/{google_id}/events/{master_google}_20260406T070000Z"),
            None,
        )
        .await;
    assert_eq!(status, 204, "{body}");

    let calendar = f.calendar_id(&google_id).await;
    f.refresh(&calendar).await;
    let window = f
        .window(&calendar, "2026-03-09T00:00:00Z", "2026-04-20T00:00:00Z")
        .await;
    let seen: Vec<(&str, DateTime<Utc>)> = window
        .iter()
        .map(|e| (str_of(e, "summary"), instant(&e["start"]["dateTime"])))
        .collect();
    assert_eq!(
        seen,
        [
            ("Weekly sync", utc("2026-03-09T08:00:00Z")),
            ("Weekly sync", utc("2026-03-16T08:00:00Z")),
            ("Moved sync", utc("2026-03-24T13:00:00Z")),
            ("Weekly sync", utc("2026-03-30T07:00:00Z")),
            ("Weekly sync", utc("2026-04-13T07:00:00Z")),
        ],
        "09:00 Berlin time on both sides of the DST change; moved once; the cancelled one gone"
    );
    let master_id = window[0]["id"]
        .as_str()
        .expect("id")
        .split(':')
        .next()
        .expect("master")
        .to_owned();
    let first = &window[0];
    assert_eq!(str_of(first, "id"), format!("{master_id}:20260309T080000Z"));
    assert_eq!(
        str_of(first, "googleEventId"),
        format!("{master_google}_20260309T080000Z")
    );
    assert_eq!(str_of(first, "recurringEventId"), master_google);
    assert_eq!(
        instant(&first["originalStartTime"]["dateTime"]),
        utc("2026-03-09T08:00:00Z")
    );
    assert_eq!(instant(&first["end"]["dateTime"]), utc("2026-03-09T09:00:00Z"));
    assert_eq!(first["recurrence"], Value::Null);
    let moved = &window[2];
    assert_eq!(str_of(moved, "recurringEventId"), master_google);
    assert_eq!(
        instant(&moved["originalStartTime"]["dateTime"]),
        utc("2026-03-23T08:00:00Z")
    );
    assert_eq!(
        str_of(moved, "googleEventId"),
        format!("{master_google}_20260323T080000Z")
    );

    // Instance ids resolve; a cancelled instance is gone; a replaced one resolves to its exception.
    assert_eq!(
        f.event(str_of(&window[3], "id")).await["start"],
        window[3]["start"]
    );
    assert_eq!(
        f.event(&format!("{master_id}:20260406T070000Z")).await,
        Value::Null
    );
    assert_eq!(
        f.event(&format!("{master_id}:20260323T080000Z")).await["summary"],
        json!("Moved sync")
    );
    assert_eq!(
        f.event(&format!("{master_id}:20260310T080000Z")).await,
        Value::Null,
        "not an instance"
    );
    let stored_master = f.event(&master_id).await;
    assert_eq!(stored_master["recurrence"], json!(["RRULE:FREQ=WEEKLY;BYDAY=MO"]));
    assert_eq!(stored_master["start"]["timeZone"], json!("Europe/Berlin"));

    // Editing one instance through Chronos makes Google create an exception for it.
    let updated = f
        .update_event(str_of(&window[3], "id"), json!({ "summary": "Special sync" }))
        .await;
    assert!(updated.get("errors").is_none(), "{updated}");
    let exception = &updated["data"]["updateEvent"];
    assert_eq!(exception["summary"], json!("Special sync"));
    assert_eq!(
        instant(&exception["originalStartTime"]["dateTime"]),
        utc("2026-03-30T07:00:00Z")
    );
    let at_google = f
        .google_event(&google_id, &format!("{master_google}_20260330T070000Z"))
        .await;
    assert_eq!(at_google["summary"], json!("Special sync"));
    // Deleting one instance cancels just that one.
    let deleted = f.delete_event(str_of(&window[4], "id")).await;
    assert_eq!(deleted["data"]["deleteEvent"], json!(true), "{deleted}");
    let at_google = f
        .google_event(&google_id, &format!("{master_google}_20260413T070000Z"))
        .await;
    assert_eq!(at_google["status"], json!("cancelled"));
    let seen: Vec<String> = f
        .summaries(&calendar, "2026-03-09T00:00:00Z", "2026-04-27T00:00:00Z")
        .await;
    assert_eq!(
        seen,
        [
            "Weekly sync",
            "Weekly sync",
            "Moved sync",
            "Special sync",
            "Weekly sync"
        ],
        "30 March edited, 13 April cancelled, 20 April as before"
    );
    // A refresh from Google agrees with what the writes cached.
    f.refresh(&calendar).await;
    let again: Vec<String> = f
        .summaries(&calendar, "2026-03-09T00:00:00Z", "2026-04-27T00:00:00Z")
        .await;
    assert_eq!(again, seen);
}

#[tokio::test]
async fn create_update_and_delete_go_through_google() {
    let f = Fixture::new("writes@example.com").await;
    let google_id = f.google_calendar("Writes", "Europe/Paris");
    let calendar = f.calendar_id(&google_id).await;

    let created = f
        .create_event(json!({
            "calendarId": calendar,
            "summary": "Lunch",
            "description": "with the team",
            "location": "Canteen",
            "start": { "dateTime": "2026-06-01T12:00:00+02:00", "timeZone": "Europe/Paris" },
            "end": { "dateTime": "2026-06-01T13:00:00+02:00", "timeZone": "Europe/Paris" },
            "transparency": "transparent",
            "visibility": "private",
            "colorId": "5",
        }))
        .await;
    assert_eq!(created["calendarId"], json!(calendar));
    assert_eq!(
        instant(&created["start"]["dateTime"]),
        utc("2026-06-01T10:00:00Z")
    );
    assert_eq!(created["start"]["timeZone"], json!("Europe/Paris"));
    assert_eq!(created["status"], json!("CONFIRMED"));
    let google_event_id = str_of(&created, "googleEventId").to_owned();
    let at_google = f.google_event(&google_id, &google_event_id).await;
    assert_eq!(at_google["summary"], json!("Lunch"));
    assert_eq!(at_google["location"], json!("Canteen"));
    assert_eq!(at_google["colorId"], json!("5"));
    assert_eq!(at_google["transparency"], json!("transparent"));
    assert_eq!(f.event(str_of(&created, "id")).await, created);

    let id = str_of(&created, "id").to_owned();
    let updated = f
        .update_event(
            &id,
            json!({
                "summary": "Long lunch",
                "location": null,
                "end": { "dateTime": "2026-06-01T14:30:00+02:00", "timeZone": "Europe/Paris" },
                "colorId": null,
            }),
        )
        .await;
    assert!(updated.get("errors").is_none(), "{updated}");
    let updated = &updated["data"]["updateEvent"];
    assert_eq!(updated["id"], json!(id), "same event");
    assert_eq!(updated["summary"], json!("Long lunch"));
    assert_eq!(updated["description"], json!("with the team"), "untouched");
    assert_eq!(updated["location"], Value::Null);
    assert_eq!(updated["colorId"], Value::Null);
    assert_eq!(instant(&updated["end"]["dateTime"]), utc("2026-06-01T12:30:00Z"));
    let at_google = f.google_event(&google_id, &google_event_id).await;
    assert_eq!(at_google["summary"], json!("Long lunch"));
    assert_eq!(at_google.get("location"), None);
    assert_eq!(
        instant(&at_google["end"]["dateTime"]),
        utc("2026-06-01T12:30:00Z")
    );

    let deleted = f.delete_event(&id).await;
    assert_eq!(deleted["data"]["deleteEvent"], json!(true), "{deleted}");
    assert_eq!(
        f.google_event(&google_id, &google_event_id).await["status"],
        json!("cancelled")
    );
    assert_eq!(f.event(&id).await, Value::Null);
    assert!(
        f.window(&calendar, "2026-06-01T00:00:00Z", "2026-06-02T00:00:00Z")
            .await
            .is_empty()
    );
    assert_eq!(
        error_code(&f.delete_event(&id).await),
        Some("NOT_FOUND"),
        "gone from the cache"
    );

    // An event deleted at Google behind Chronos's back: deleting it succeeds and tombstones the row.
    let other = f
        .create_event(timed(
            &calendar,
            "Doomed",
            "2026-06-02T09:00:00Z",
            "2026-06-02T10:00:00Z",
        ))
        .await;
    let (status, _) = f
        .google(
            reqwest::Method::DELETE,
            &format!("calendars/{google_id}/events/{}", str_of(&other, "googleEventId")),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let deleted = f.delete_event(str_of(&other, "id")).await;
    assert_eq!(deleted["data"]["deleteEvent"], json!(true), "{deleted}");
    assert_eq!(f.event(str_of(&other, "id")).await, Value::Null);

    // A recurring all-day event needs no zone.
    let series = f
        .create_event(json!({
            "calendarId": calendar, "summary": "Bins",
            "start": { "date": "2026-06-03" }, "end": { "date": "2026-06-04" },
            "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=3"],
        }))
        .await;
    assert_eq!(series["recurrence"], json!(["RRULE:FREQ=WEEKLY;COUNT=3"]));
    let dates: Vec<String> = f
        .window(&calendar, "2026-06-01T00:00:00Z", "2026-07-01T00:00:00Z")
        .await
        .iter()
        .map(|e| str_of(&e["start"], "date").to_owned())
        .collect();
    assert_eq!(dates, ["2026-06-03", "2026-06-10", "2026-06-17"]);
}

#[tokio::test]
async fn updating_an_event_changed_at_google_is_a_conflict_and_the_cache_takes_googles_version() {
    let f = Fixture::new("conflict@example.com").await;
    let google_id = f.google_calendar("Shared", "UTC");
    let calendar = f.calendar_id(&google_id).await;
    let created = f
        .create_event(timed(
            &calendar,
            "Planning",
            "2026-07-01T09:00:00Z",
            "2026-07-01T10:00:00Z",
        ))
        .await;
    let (status, _) = f
        .google(
            reqwest::Method::PATCH,
            &format!(
                "calendars/{google_id}/events/{}",
                str_of(&created, "googleEventId")
            ),
            Some(json!({ "summary": "Planning (moved by a colleague)" })),
        )
        .await;
    assert_eq!(status, 200);

    let body = f
        .update_event(str_of(&created, "id"), json!({ "summary": "Planning v2" }))
        .await;
    assert_eq!(error_code(&body), Some("CONFLICT"), "{body}");
    let cached = f.event(str_of(&created, "id")).await;
    assert_eq!(cached["summary"], json!("Planning (moved by a colleague)"));
    let at_google = f
        .google_event(&google_id, str_of(&created, "googleEventId"))
        .await;
    assert_eq!(
        at_google["summary"],
        json!("Planning (moved by a colleague)"),
        "nothing overwritten"
    );
    // Now the cache holds Google's etag: the same update goes through.
    let body = f
        .update_event(str_of(&created, "id"), json!({ "summary": "Planning v2" }))
        .await;
    assert_eq!(
        body["data"]["updateEvent"]["summary"],
        json!("Planning v2"),
        "{body}"
    );
}

#[tokio::test]
async fn invalid_input_is_refused_naming_the_field() {
    let f = Fixture::new("valid@example.com").await;
    let google_id = f.google_calendar("Mine", "UTC");
    f.app.emulator().create_account("owner@example.com", None);
    let foreign = f
        .app
        .emulator()
        .create_calendar("owner@example.com", "Theirs", None)
        .expect("calendar")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    f.app
        .emulator()
        .share_calendar(&foreign, &f.email, "reader")
        .expect("share");
    let calendars = f.calendars().await;
    let calendar = str_of(&calendars[&google_id], "id").to_owned();
    let read_only = str_of(&calendars[&foreign], "id").to_owned();
    assert_eq!(calendars[&foreign]["accessRole"], json!("reader"));
    let base = || timed(&calendar, "ok", "2026-08-01T09:00:00Z", "2026-08-01T10:00:00Z");
    let with = |patch: Value| {
        let mut input = base();
        for (k, v) in patch.as_object().expect("object") {
            input[k] = v.clone();
        }
        input
    };
    let cases = [
        (
            with(json!({ "end": { "dateTime": "2026-08-01T09:00:00Z" } })),
            "end",
        ),
        (
            with(json!({ "end": { "dateTime": "2026-08-01T08:00:00Z" } })),
            "end",
        ),
        (with(json!({ "end": { "date": "2026-08-02" } })), "end"),
        (
            with(json!({ "start": { "date": "2026-08-01", "dateTime": "2026-08-01T09:00:00Z" } })),
            "start",
        ),
        (with(json!({ "start": {} })), "start"),
        (
            with(json!({ "start": { "dateTime": "2026-08-01T09:00:00Z", "timeZone": "Mars/Base" } })),
            "start.timeZone",
        ),
        (with(json!({ "recurrence": ["FREQ=DAILY"] })), "recurrence"),
        (
            with(json!({ "recurrence": ["DTSTART:20260801T090000Z"] })),
            "recurrence",
        ),
        (
            with(json!({ "recurrence": ["RRULE:FREQ=DAILY"] })),
            "start.timeZone",
        ),
        (with(json!({ "colorId": "12" })), "colorId"),
        (with(json!({ "transparency": "busy" })), "transparency"),
        (with(json!({ "visibility": "secret" })), "visibility"),
        (with(json!({ "summary": "s".repeat(1025) })), "summary"),
        (with(json!({ "description": "d".repeat(8193) })), "description"),
        (with(json!({ "location": "l".repeat(1025) })), "location"),
        (with(json!({ "calendarId": read_only })), "calendarId"),
    ];
    for (input, field) in cases {
        let body = f.try_create_event(input.clone()).await;
        assert_bad_input(&body, field);
    }
    assert_eq!(google_inserts(&f), 0, "nothing reached Google");
    let body = f
        .try_create_event(with(json!({ "calendarId": Uuid::now_v7().to_string() })))
        .await;
    assert_eq!(error_code(&body), Some("NOT_FOUND"));

    let created = f.create_event(base()).await;
    let id = str_of(&created, "id");
    assert_bad_input(
        &f.update_event(id, json!({ "start": { "dateTime": "2026-08-01T11:00:00Z" } }))
            .await,
        "end",
    );
    assert_bad_input(&f.update_event(id, json!({ "colorId": "0" })).await, "colorId");
    assert_bad_input(
        &f.update_event(id, json!({ "recurrence": ["RRULE:FREQ=WEEKLY"] }))
            .await,
        "start.timeZone",
    );

    let window = |min: &str, max: &str, extra: Value| {
        let mut args = json!({ "timeMin": min, "timeMax": max });
        for (k, v) in extra.as_object().expect("object") {
            args[k] = v.clone();
        }
        args
    };
    let cases = [
        (
            window("2026-08-02T00:00:00Z", "2026-08-01T00:00:00Z", json!({})),
            "timeMax",
        ),
        (
            window("2026-08-01T00:00:00Z", "2026-08-01T00:00:00Z", json!({})),
            "timeMax",
        ),
        (
            window("2026-01-01T00:00:00Z", "2027-01-10T00:00:00Z", json!({})),
            "timeMax",
        ),
        (
            window(
                "2026-08-01T00:00:00Z",
                "2026-08-02T00:00:00Z",
                json!({ "first": 0 }),
            ),
            "first",
        ),
        (
            window(
                "2026-08-01T00:00:00Z",
                "2026-08-02T00:00:00Z",
                json!({ "first": 501 }),
            ),
            "first",
        ),
        (
            window(
                "2026-08-01T00:00:00Z",
                "2026-08-02T00:00:00Z",
                json!({ "after": "bm9wZQ" }),
            ),
            "after",
        ),
    ];
    for (args, field) in cases {
        assert_bad_input(&f.events_light(args).await, field);
    }
    let body = f
        .app
        .graphql("{ eventChanges(since: \"garbage\") { cursor } }", json!({}))
        .await;
    assert_bad_input(&body, "since");
}

#[tokio::test]
async fn another_users_calendars_and_events_behave_as_missing() {
    let alice = Fixture::new("alice@example.com").await;
    let google_id = alice.google_calendar("Alice's", "UTC");
    let calendar = alice.calendar_id(&google_id).await;
    let event = alice
        .create_event(timed(
            &calendar,
            "Private",
            "2026-09-01T09:00:00Z",
            "2026-09-01T10:00:00Z",
        ))
        .await;
    let id = str_of(&event, "id");

    let bob = Fixture::signed_in(alice.app.new_browser(), "bob@example.com").await;
    let body = bob
        .events_raw(json!({ "calendarIds": [calendar], "timeMin": "2026-09-01T00:00:00Z", "timeMax": "2026-09-02T00:00:00Z", "first": 50 }))
        .await;
    assert_eq!(error_code(&body), Some("NOT_FOUND"), "{body}");
    let body = bob
        .events_raw(
            json!({ "timeMin": "2026-09-01T00:00:00Z", "timeMax": "2026-09-02T00:00:00Z", "first": 50 }),
        )
        .await;
    assert!(nodes(&body).is_empty(), "{body}");
    assert_eq!(bob.event(id).await, Value::Null);
    assert_eq!(
        bob.event(&Uuid::now_v7().to_string()).await,
        Value::Null,
        "same as a missing id"
    );
    assert_eq!(
        error_code(&bob.update_event(id, json!({ "summary": "mine" })).await),
        Some("NOT_FOUND")
    );
    assert_eq!(error_code(&bob.delete_event(id).await), Some("NOT_FOUND"));
    assert_eq!(
        error_code(&bob.delete_event(&Uuid::now_v7().to_string()).await),
        Some("NOT_FOUND")
    );
    let body = bob
        .try_create_event(timed(
            &calendar,
            "Intruder",
            "2026-09-01T09:00:00Z",
            "2026-09-01T10:00:00Z",
        ))
        .await;
    assert_eq!(error_code(&body), Some("NOT_FOUND"));
    let feed = bob
        .app
        .data("{ eventChanges { changes { eventId } hasMore } }", json!({}))
        .await;
    assert_eq!(feed["eventChanges"]["changes"], json!([]));
    assert_eq!(alice.event(id).await["summary"], json!("Private"), "untouched");

    let anonymous = alice.app.new_browser();
    let body = anonymous
        .graphql(&format!("{{ event(id: \"{id}\") {{ id }} }}"), json!({}))
        .await;
    assert_eq!(error_code(&body), Some("UNAUTHENTICATED"));
}

/// Replays the whole feed, `page` changes at a time: event id -> event.
async fn replay(f: &Fixture, page: usize) -> (BTreeMap<String, Value>, Vec<String>, String) {
    let mut state = BTreeMap::new();
    let mut deletions = Vec::new();
    let mut since: Option<String> = None;
    loop {
        let feed = f
            .app
            .data(
                &format!(
                    "query($since: String, $first: Int) {{ eventChanges(since: $since, first: $first) {{
                        changes {{ eventId deleted event {{ {EVENT_FIELDS} }} }} cursor hasMore }} }}"
                ),
                json!({ "since": since, "first": page }),
            )
            .await["eventChanges"]
            .clone();
        for change in feed["changes"].as_array().expect("changes") {
            let id = str_of(change, "eventId").to_owned();
            if change["deleted"] == json!(true) {
                assert_eq!(change["event"], Value::Null);
                state.remove(&id);
                deletions.push(id);
            } else {
                assert_eq!(change["event"]["id"], json!(id));
                state.insert(id, change["event"].clone());
            }
        }
        since = Some(str_of(&feed, "cursor").to_owned());
        if feed["hasMore"] == json!(false) {
            break;
        }
    }
    (state, deletions, since.unwrap_or_default())
}

#[tokio::test]
async fn replaying_event_changes_from_the_start_yields_the_stored_view() {
    let f = Fixture::new("feed@example.com").await;
    let google_id = f.google_calendar("Feed", "UTC");
    let calendar = f.calendar_id(&google_id).await;
    let mut ids = Vec::new();
    for day in 1..=9 {
        let event = f
            .create_event(timed(
                &calendar,
                &format!("Event {day}"),
                &format!("2026-10-0{day}T09:00:00Z"),
                &format!("2026-10-0{day}T10:00:00Z"),
            ))
            .await;
        ids.push(str_of(&event, "id").to_owned());
    }
    for id in &ids[..3] {
        let body = f.update_event(id, json!({ "description": "edited" })).await;
        assert!(body.get("errors").is_none(), "{body}");
    }
    for id in &ids[6..] {
        assert_eq!(f.delete_event(id).await["data"]["deleteEvent"], json!(true));
    }
    // One change at Google, brought in by a refresh.
    let changed = f.event(&ids[4]).await;
    let (status, _) = f
        .google(
            reqwest::Method::PATCH,
            &format!(
                "calendars/{google_id}/events/{}",
                str_of(&changed, "googleEventId")
            ),
            Some(json!({ "summary": "Event 5 (renamed at Google)" })),
        )
        .await;
    assert_eq!(status, 200);
    f.refresh(&calendar).await;

    let (replayed, deletions, cursor) = replay(&f, 4).await;
    let window: BTreeMap<String, Value> = f
        .window(&calendar, "2026-10-01T00:00:00Z", "2026-10-31T00:00:00Z")
        .await
        .into_iter()
        .map(|e| (str_of(&e, "id").to_owned(), e))
        .collect();
    assert_eq!(window.len(), 6);
    assert_eq!(replayed, window, "the replayed copy equals the stored view");
    assert_eq!(replayed[&ids[4]]["summary"], json!("Event 5 (renamed at Google)"));
    assert_eq!(replayed[&ids[0]]["description"], json!("edited"));
    let deleted: BTreeSet<&String> = deletions.iter().collect();
    assert_eq!(
        deleted,
        ids[6..].iter().collect::<BTreeSet<_>>(),
        "tombstones in the feed"
    );

    // From the last cursor: nothing new, same cursor; then exactly the next change.
    let feed = f
        .app
        .data(
            "query($since: String) { eventChanges(since: $since) { changes { eventId deleted } cursor hasMore } }",
            json!({ "since": cursor }),
        )
        .await["eventChanges"]
        .clone();
    assert_eq!(feed["changes"], json!([]));
    assert_eq!(feed["cursor"], json!(cursor));
    assert_eq!(feed["hasMore"], json!(false));
    // From the latest cursor, read on its own: none of the history, then exactly the next change.
    let changes_since = |since: Value| {
        let app = &f.app;
        async move {
            app.data(
                "query($since: String) { eventChanges(since: $since) { changes { eventId deleted } } }",
                json!({ "since": since }),
            )
            .await["eventChanges"]["changes"]
                .clone()
        }
    };
    let latest = f.app.data("{ eventChangesCursor }", json!({})).await["eventChangesCursor"].clone();
    assert!(latest.is_string(), "{latest}");
    assert_eq!(changes_since(latest.clone()).await, json!([]));
    f.delete_event(&ids[5]).await;
    assert_eq!(
        changes_since(latest).await,
        json!([{ "eventId": ids[5], "deleted": true }])
    );
    let feed = f
        .app
        .data(
            "query($since: String) { eventChanges(since: $since) { changes { eventId deleted event { id } } } }",
            json!({ "since": cursor }),
        )
        .await["eventChanges"]
        .clone();
    assert_eq!(
        feed["changes"],
        json!([{ "eventId": ids[5], "deleted": true, "event": null }])
    );
    // A refresh that finds nothing new changes nothing.
    f.refresh(&calendar).await;
    let (_, _, after_refresh) = replay(&f, 500).await;
    let (_, _, before_refresh) = replay(&f, 7).await;
    assert_eq!(after_refresh, before_refresh);
}

#[tokio::test]
async fn paging_through_250_events_visits_each_once_in_order() {
    let f = Fixture::new("pages@example.com").await;
    let google_id = f.google_calendar("Busy", "UTC");
    let start: DateTime<Utc> = "2026-11-02T08:00:00Z".parse().expect("instant");
    for i in 0..250_i64 {
        // Pairs share a start, so the id decides their order.
        let at = start + TimeDelta::minutes(30 * (i / 2));
        f.app
            .emulator()
            .insert_event(
                &google_id,
                json!({
                    "summary": format!("Slot {i}"),
                    "start": { "dateTime": at.to_rfc3339() },
                    "end": { "dateTime": (at + TimeDelta::minutes(25)).to_rfc3339() },
                }),
            )
            .expect("insert");
    }
    let calendar = f.calendar_id(&google_id).await;
    f.refresh(&calendar).await;

    let mut after: Option<String> = None;
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let body = f
            .events_light(json!({
                "calendarIds": [calendar], "timeMin": "2026-11-01T00:00:00Z", "timeMax": "2026-11-30T00:00:00Z",
                "first": 100, "after": after,
            }))
            .await;
        assert!(body.get("errors").is_none(), "{body}");
        let page = &body["data"]["events"];
        let edges = page["edges"].as_array().expect("edges");
        pages += 1;
        assert_eq!(page["pageInfo"]["hasPreviousPage"], json!(after.is_some()));
        for edge in edges {
            seen.push((
                instant(&edge["node"]["start"]["dateTime"]),
                str_of(&edge["node"], "id").to_owned(),
            ));
        }
        if page["pageInfo"]["hasNextPage"] == json!(false) {
            assert_eq!(edges.len(), 50);
            break;
        }
        assert_eq!(edges.len(), 100);
        assert_eq!(page["pageInfo"]["endCursor"], edges[99]["cursor"]);
        after = page["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 250);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, seen, "in order of start then id, each once");
}

/// A week page reads in full (texts, to decrypt) only the rows it returns and the masters of its
/// instances, however many events the week holds: the other rows are read narrow, for their times.
#[tokio::test]
async fn a_week_page_reads_full_rows_for_the_page_alone() {
    let f = Fixture::new("alice@example.com").await;
    let calendar_id = f.calendar_id("alice@example.com").await;
    let state = f.app.server_state().await;
    let (calendar, account) = calendars::Entity::find_by_id(Uuid::parse_str(&calendar_id).expect("uuid"))
        .find_also_related(google_accounts::Entity)
        .one(&state.db)
        .await
        .expect("read")
        .expect("calendar");
    let user_id = account.expect("account").user_id;
    let monday: DateTime<Utc> = "2026-03-02T00:00:00Z".parse().expect("instant");
    let mut cached = 0;
    for in_week in [120, 600] {
        // More events in the same week, and three daily series.
        let listing: Vec<chronos::google::Event> = (cached..in_week)
            .map(|n| {
                let start = monday + TimeDelta::minutes(10 * i64::from(n));
                google_event(json!({
                    "id": format!("busy{n:04}"),
                    "status": "confirmed",
                    "summary": format!("Busy {n}"),
                    "start": { "dateTime": start.to_rfc3339() },
                    "end": { "dateTime": (start + TimeDelta::minutes(30)).to_rfc3339() },
                }))
            })
            .chain((0..3).map(|n| {
                google_event(json!({
                    "id": format!("daily{n}"),
                    "status": "confirmed",
                    "summary": format!("Daily {n}"),
                    "start": { "dateTime": format!("2026-03-01T0{n}:05:00Z") },
                    "end": { "dateTime": format!("2026-03-01T0{n}:20:00Z") },
                    "recurrence": ["RRULE:FREQ=DAILY"],
                }))
            }))
            .collect();
        store::upsert_listing(&state.db, &state.cipher, user_id, &calendar, &listing)
            .await
            .expect("cache");
        cached = in_week;

        state.statements.start_recording();
        let body = f
            .events_raw(json!({
                "timeMin": "2026-03-02T00:00:00Z", "timeMax": "2026-03-09T00:00:00Z", "first": 10,
            }))
            .await;
        let statements = state.statements.stop_recording();
        assert!(body.get("errors").is_none(), "{body}");
        let page = nodes(&body);
        assert_eq!(page.len(), 10);
        assert!(
            page.iter().any(|e| e["recurringEventId"].is_string()),
            "the page holds instances of the series: {page:#?}"
        );
        // Reading a row in full means selecting its ciphertext; each such statement names its rows by id.
        let full_reads: Vec<_> = statements
            .iter()
            .filter(|s| s.sql.contains("\"summary\"") && s.sql.contains("FROM \"events\""))
            .collect();
        assert!(
            !full_reads.is_empty(),
            "positive control: the page's rows are read in full"
        );
        assert!(
            full_reads
                .iter()
                .all(|s| s.sql.contains("\"events\".\"id\" IN (")),
            "only rows named by id are read in full: {full_reads:#?}"
        );
        let full_rows: usize = full_reads.iter().map(|s| s.values.len()).sum();
        assert!(
            full_rows <= 10,
            "{in_week} events in the week: {full_rows} rows read in full for a page of 10: {full_reads:#?}"
        );
    }
}

/// A week in the middle of a 10,000-event calendar is read through an index range, on SQLite and on
/// PostgreSQL (statistics gathered, as autovacuum would), with no scan of the table: both window queries
/// that free/busy reads, and every statement a week page and the page after it run.
#[tokio::test]
async fn a_mid_history_week_is_read_through_an_index_on_both_databases() {
    let database = TestDatabase::create().await;
    let mut db = chronos::db::connect(&database.url).await.expect("connect");
    let statements = chronos::db::StatementCounter::install(&mut db);
    <migration::Migrator as migration::MigratorTrait>::up(&db, None)
        .await
        .expect("migrate");
    let cipher = Cipher::new(KeyRing::generate("test").expect("keys"));
    let (user_id, calendar, _) = store_fixture(&db).await;
    let first: DateTime<Utc> = "2025-01-06T09:00:00Z".parse().expect("instant");
    let listing: Vec<chronos::google::Event> = (0..10_000)
        .map(|n| {
            let start = first + TimeDelta::hours(2 * n);
            google_event(json!({
                "id": format!("history{n:05}"),
                "status": "confirmed",
                "start": { "dateTime": start.to_rfc3339() },
                "end": { "dateTime": (start + TimeDelta::hours(1)).to_rfc3339() },
            }))
        })
        .chain(std::iter::once(google_event(json!({
            "id": "weekly",
            "status": "confirmed",
            "start": { "dateTime": "2025-01-06T08:00:00Z" },
            "end": { "dateTime": "2025-01-06T08:30:00Z" },
            "recurrence": ["RRULE:FREQ=WEEKLY"],
        }))))
        .collect();
    store::upsert_listing(&db, &cipher, user_id, &calendar, &listing)
        .await
        .expect("cache");
    let backend = db.get_database_backend();
    if backend == DbBackend::Postgres {
        db.execute_unprepared("ANALYZE events").await.expect("analyze");
    }
    let min = first + TimeDelta::days(400);
    let week = Window::new(min, min + TimeDelta::days(7));
    let mut window_reads: Vec<(String, Vec<sea_orm::Value>)> = window_selects(&[calendar.id], week)
        .into_iter()
        .map(|select| {
            let query = select.build(backend);
            (query.sql, query.values.map(|v| v.0).unwrap_or_default())
        })
        .collect();

    // The week's first page of 10 and the page after it.
    statements.start_recording();
    let first_page = window_page(&db, &cipher, user_id, week, 10, None).await;
    let after = first_page.edges.last().map(|(cursor, _)| cursor.as_str());
    let second_page = window_page(&db, &cipher, user_id, week, 10, after).await;
    let recorded = statements.stop_recording();
    assert_eq!((first_page.edges.len(), second_page.edges.len()), (10, 10));
    assert!(first_page.has_next_page && second_page.has_next_page);
    let event_reads: Vec<_> = recorded
        .into_iter()
        .filter(|s| s.sql.starts_with("SELECT") && s.sql.contains("FROM \"events\""))
        .map(|s| (s.sql, s.values))
        .collect();
    assert!(
        event_reads.len() >= 6,
        "positive control: the pages' reads were recorded: {event_reads:#?}"
    );
    window_reads.extend(event_reads);

    for (sql, values) in window_reads {
        let explain = match backend {
            DbBackend::Sqlite => format!("EXPLAIN QUERY PLAN {sql}"),
            _ => format!("EXPLAIN {sql}"),
        };
        let plan: Vec<String> = db
            .query_all_raw(Statement::from_sql_and_values(backend, explain, values))
            .await
            .expect("explain")
            .iter()
            .map(|row| match backend {
                DbBackend::Sqlite => row.try_get::<String>("", "detail").expect("detail"),
                _ => row.try_get::<String>("", "QUERY PLAN").expect("plan"),
            })
            .collect();
        // An index on the events (by calendar and range, or the primary key for rows named by id).
        let uses_an_index = plan.iter().any(|line| {
            line.contains("Index Scan using ")
                || line.contains("Index Only Scan using ")
                || line.contains("Bitmap Index Scan on ")
                || line.contains("USING INDEX ")
                || line.contains("USING COVERING INDEX ")
                || line.contains("USING PRIMARY KEY")
        });
        let scans = plan
            .iter()
            .any(|line| line.starts_with("SCAN") || line.contains("Seq Scan"));
        assert!(uses_an_index && !scans, "{sql}\nplan: {plan:#?}");
    }
}

/// Paging a busy window in small pages visits exactly what one large page holds, in the same order:
/// all-day events in a UTC+14 and a UTC−11 calendar (whose stored ranges start up to a day before them),
/// timed events at the same instants, and a daily series with a moved and a cancelled instance, whatever
/// the page size.
#[tokio::test]
async fn small_pages_visit_a_busy_window_as_one_large_page_does() {
    let database = TestDatabase::create().await;
    let db = chronos::db::connect(&database.url).await.expect("connect");
    <migration::Migrator as migration::MigratorTrait>::up(&db, None)
        .await
        .expect("migrate");
    let cipher = Cipher::new(KeyRing::generate("test").expect("keys"));
    let (user_id, east, west) = store_fixture(&db).await;
    let mut zoned = Vec::new();
    for (calendar, zone) in [(east, "Pacific/Kiritimati"), (west, "Pacific/Pago_Pago")] {
        let mut calendar: calendars::ActiveModel = calendar.into();
        calendar.time_zone = Set(Some(zone.into()));
        zoned.push(calendar.update(&db).await.expect("zone"));
    }
    let monday: DateTime<Utc> = "2026-03-02T00:00:00Z".parse().expect("instant");
    for (n, calendar) in zoned.iter().enumerate() {
        let listing: Vec<chronos::google::Event> = (0..40)
            .map(|day| {
                let date = (monday + TimeDelta::days(day - 10)).date_naive();
                google_event(json!({
                    "id": format!("allday{n}x{day}"),
                    "status": "confirmed",
                    "start": { "date": date.to_string() },
                    "end": { "date": date.succ_opt().expect("date").to_string() },
                }))
            })
            .chain((0..60).map(|k| {
                // Every hour from Monday, some at the very instants the all-day events start.
                let start = monday + TimeDelta::hours(3 * k - 14 + 25 * i64::try_from(n).expect("n"));
                google_event(json!({
                    "id": format!("timed{n}x{k}"),
                    "status": "confirmed",
                    "start": { "dateTime": start.to_rfc3339() },
                    "end": { "dateTime": (start + TimeDelta::hours(1)).to_rfc3339() },
                }))
            }))
            .chain([
                google_event(json!({
                    "id": format!("daily{n}"),
                    "status": "confirmed",
                    "start": { "dateTime": "2026-02-20T10:00:00Z" },
                    "end": { "dateTime": "2026-02-20T10:30:00Z" },
                    "recurrence": ["RRULE:FREQ=DAILY"],
                })),
                google_event(json!({
                    "id": format!("daily{n}_20260303T100000Z"),
                    "status": "confirmed",
                    "recurringEventId": format!("daily{n}"),
                    "originalStartTime": { "dateTime": "2026-03-03T10:00:00Z" },
                    "start": { "dateTime": "2026-03-06T23:00:00Z" },
                    "end": { "dateTime": "2026-03-06T23:30:00Z" },
                })),
                google_event(json!({
                    "id": format!("daily{n}_20260304T100000Z"),
                    "status": "cancelled",
                    "recurringEventId": format!("daily{n}"),
                    "originalStartTime": { "dateTime": "2026-03-04T10:00:00Z" },
                })),
            ])
            .collect();
        store::upsert_listing(&db, &cipher, user_id, calendar, &listing)
            .await
            .expect("cache");
    }
    let week = Window::new(monday, monday + TimeDelta::days(7));
    let whole = window_page(&db, &cipher, user_id, week, 500, None).await;
    assert!(!whole.has_next_page);
    let expected: Vec<String> = whole.edges.iter().map(|(cursor, _)| cursor.clone()).collect();
    // Positive control: all three kinds are in the window, the moved instance at its new time only.
    let ids: Vec<&str> = whole
        .edges
        .iter()
        .map(|(_, e)| e.event.google_event_id.as_str())
        .collect();
    for id in [
        "allday0x10",
        "allday1x16",
        "timed0x5",
        "daily1_20260305T100000Z",
        "daily0_20260303T100000Z",
    ] {
        assert!(ids.contains(&id), "{id} in {ids:?}");
    }
    assert!(
        !ids.contains(&"daily0_20260304T100000Z"),
        "the cancelled instance is left out"
    );
    assert!(expected.len() > 100, "{}", expected.len());
    for first in [1, 3, 10, 17] {
        let (mut visited, mut after) = (Vec::new(), None);
        loop {
            let page = window_page(&db, &cipher, user_id, week, first, after.as_deref()).await;
            assert!(page.edges.len() <= first);
            visited.extend(page.edges.iter().map(|(cursor, _)| cursor.clone()));
            after = page.edges.last().map(|(cursor, _)| cursor.clone());
            if !page.has_next_page {
                break;
            }
        }
        assert_eq!(visited, expected, "pages of {first}");
    }
}

/// One page of the user's events in `window`, through the domain function the `events` resolver calls.
async fn window_page(
    db: &sea_orm::DatabaseConnection,
    cipher: &Cipher,
    user_id: Uuid,
    window: Window,
    first: usize,
    after: Option<&str>,
) -> window::WindowPage {
    let query = WindowQuery {
        calendar_ids: None,
        window,
        first,
        after,
    };
    window::events_in_window(db, cipher, user_id, query, &WorkBudget::default())
        .await
        .expect("page")
}

/// A user, a Google account and two calendars written straight into a fresh database.
/// The guarantee `eventChanges` rests on, with writers side by side on PostgreSQL: a second writer of the
/// same user waits for the first one's commit before it takes its `change_seq`, so a reader never sees a
/// higher value while a lower one may still commit (it would move its cursor past it and never see it);
/// a writer of another user does not wait. Then many writers of one user at once, and a reader paging the
/// feed all along: every change reaches the reader, cursors only grow.
#[tokio::test]
#[ignore = "needs TEST_DATABASE_URL (CI runs it in its PostgreSQL pass)"]
async fn postgres_only_a_users_changes_become_visible_in_change_seq_order_and_other_users_never_wait() {
    let database = TestDatabase::create().await;
    assert!(database.url.starts_with("postgres"), "run with TEST_DATABASE_URL");
    let db = chronos::db::connect(&database.url).await.expect("connect");
    <migration::Migrator as migration::MigratorTrait>::up(&db, None)
        .await
        .expect("migrate");
    let cipher = Cipher::new(KeyRing::generate("test").expect("keys"));
    let (alice, alice_calendar, _) = store_fixture_for(&db, "alice").await;
    let (bob, bob_calendar, _) = store_fixture_for(&db, "bob").await;
    let write = |user: Uuid, calendar: &calendars::Model, id: String| {
        write_one(db.clone(), cipher.clone(), user, calendar.clone(), id)
    };
    let feed = |user: Uuid, since: Option<String>| {
        let (db, cipher) = (db.clone(), cipher.clone());
        async move {
            chronos::events::feed::changes(&db, &cipher, user, since.as_deref(), 1000)
                .await
                .expect("feed")
        }
    };

    // Alice's first writer takes its value and keeps its transaction open.
    let first = chronos::db::begin_write(&db).await.expect("begin");
    let first_row = store::upsert_batch(&first, &cipher, alice, &alice_calendar, &[&one_hour("a1")])
        .await
        .expect("write")[0]
        .row_id()
        .expect("row");
    // Her second writer, on another connection, queues behind it.
    let second = tokio::spawn(write(alice, &alice_calendar, "a2".into()));
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let waiting = db
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT count(*) AS waiting FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
            ))
            .await
            .expect("pg_stat_activity")
            .expect("row")
            .try_get::<i64>("", "waiting")
            .expect("count");
        if waiting == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the second writer of alice never waited for a lock"
        );
        tokio::task::yield_now().await;
    }
    // Bob's writer does not wait for alice's: it commits while her first transaction is still open.
    let bob_row = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        write(bob, &bob_calendar, "b1".into()),
    )
    .await
    .expect("bob's write waited for alice's transaction");
    let bobs = feed(bob, None).await;
    assert_eq!(
        bobs.changes.iter().map(|c| c.event_id).collect::<Vec<_>>(),
        [bob_row],
        "positive control: a committed change is in the feed at once"
    );
    let before = feed(alice, None).await;
    assert!(
        before.changes.is_empty(),
        "nothing of alice's is visible before her first writer commits: {before:?}"
    );
    assert!(!second.is_finished(), "the second writer waits");

    first.commit().await.expect("commit");
    let second_row = second.await.expect("second writer");
    let after = feed(alice, Some(before.cursor)).await;
    assert_eq!(
        after.changes.iter().map(|c| c.event_id).collect::<Vec<_>>(),
        [first_row, second_row],
        "the reader resuming from its cursor sees both, in the order they committed"
    );

    // Many writers of alice at once, a reader paging her feed meanwhile.
    const WRITERS: usize = 8;
    const WRITES: usize = 15;
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (db, cipher, calendar) = (db.clone(), cipher.clone(), alice_calendar.clone());
            tokio::spawn(async move {
                let mut rows = Vec::new();
                for n in 0..WRITES {
                    let id = format!("w{w}n{n}");
                    rows.push(write_one(db.clone(), cipher.clone(), alice, calendar.clone(), id).await);
                }
                rows
            })
        })
        .collect();
    let mut cursor = after.cursor;
    let mut seen: Vec<Uuid> = Vec::new();
    let mut last_seq = after.changes[1].event.as_ref().expect("live").change_seq;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    while seen.len() < WRITERS * WRITES {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the reader saw {} of {} changes: some were skipped",
            seen.len(),
            WRITERS * WRITES
        );
        let page = feed(alice, Some(cursor.clone())).await;
        for change in &page.changes {
            let seq = change.event.as_ref().expect("live").change_seq;
            assert!(
                seq > last_seq,
                "change_seq {seq} after {last_seq}: the feed went back"
            );
            last_seq = seq;
            seen.push(change.event_id);
        }
        cursor = page.cursor;
        tokio::task::yield_now().await;
    }
    let mut written = BTreeSet::new();
    for writer in writers {
        written.extend(writer.await.expect("writer"));
    }
    assert_eq!(written.len(), WRITERS * WRITES);
    assert_eq!(
        seen.iter().copied().collect::<BTreeSet<_>>(),
        written,
        "the reader saw every change exactly once"
    );
    assert_eq!(seen.len(), written.len());
}

/// A one-hour event `id` as Google sends it.
fn one_hour(id: &str) -> chronos::google::Event {
    google_event(json!({
        "id": id, "status": "confirmed", "etag": "\"1\"", "updated": "2026-02-01T10:00:00.000Z",
        "summary": id,
        "start": { "dateTime": "2026-03-02T09:00:00Z" }, "end": { "dateTime": "2026-03-02T10:00:00Z" },
    }))
}

/// Writes the event `id` into `calendar` of `user` in a transaction of its own; returns its row.
async fn write_one(
    db: sea_orm::DatabaseConnection,
    cipher: Cipher,
    user: Uuid,
    calendar: calendars::Model,
    id: String,
) -> Uuid {
    let txn = chronos::db::begin_write(&db).await.expect("begin");
    let outcome = store::upsert_batch(&txn, &cipher, user, &calendar, &[&one_hour(&id)])
        .await
        .expect("write");
    txn.commit().await.expect("commit");
    outcome[0].row_id().expect("row")
}

async fn store_fixture(db: &sea_orm::DatabaseConnection) -> (Uuid, calendars::Model, calendars::Model) {
    store_fixture_for(db, "store").await
}

/// A user `name`@example.com with one Google account and two calendars, `first` and `second`.
async fn store_fixture_for(
    db: &sea_orm::DatabaseConnection,
    name: &str,
) -> (Uuid, calendars::Model, calendars::Model) {
    let now = Utc::now();
    let user = users::ActiveModel {
        id: Set(Uuid::now_v7()),
        email: Set(format!("{name}@example.com")),
        name: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await
    .expect("user");
    let account = google_accounts::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user.id),
        google_sub: Set(format!("{name}-sub")),
        email: Set(format!("{name}@example.com")),
        name: Set(None),
        status: Set(AccountStatus::Active),
        access_token: Set(None),
        refresh_token: Set(None),
        access_token_expires_at: Set(None),
        granted_scopes: Set(String::new()),
        calendar_list_sync_token: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await
    .expect("account");
    let calendar = |google_id: &str| calendars::ActiveModel {
        id: Set(Uuid::now_v7()),
        account_id: Set(account.id),
        google_calendar_id: Set(google_id.to_owned()),
        summary: Set(google_id.to_owned()),
        description: Set(None),
        time_zone: Set(Some("Europe/Berlin".into())),
        access_role: Set("owner".into()),
        is_primary: Set(false),
        background_color: Set(None),
        foreground_color: Set(None),
        color_id: Set(None),
        include_in_free_busy: Set(None),
        events_sync_token: Set(None),
        last_full_sync_at: Set(None),
        last_synced_at: Set(None),
        deleted_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    };
    let first = calendar("first").insert(db).await.expect("calendar");
    let second = calendar("second").insert(db).await.expect("calendar");
    (user.id, first, second)
}

fn google_event(raw: Value) -> chronos::google::Event {
    serde_json::from_value(raw).expect("event")
}

async fn row(db: &sea_orm::DatabaseConnection, id: Uuid) -> events::Model {
    events::Entity::find_by_id(id)
        .one(db)
        .await
        .expect("read")
        .expect("row")
}

#[tokio::test]
async fn the_store_merges_google_versions_and_counts_every_change() {
    let database = TestDatabase::create().await;
    let db = chronos::db::connect(&database.url).await.expect("connect");
    <migration::Migrator as migration::MigratorTrait>::up(&db, None)
        .await
        .expect("migrate");
    let cipher = Cipher::new(KeyRing::generate("test").expect("keys"));
    let (user_id, calendar, other_calendar) = store_fixture(&db).await;
    let upsert = |event: Value| {
        let (db, cipher, calendar) = (&db, &cipher, &calendar);
        async move {
            store::upsert_from_google(db, cipher, user_id, calendar, &google_event(event))
                .await
                .unwrap_or_else(|e| panic!("upsert: {e:?}"))
        }
    };
    let version = |etag: &str, updated: &str, summary: &str| {
        json!({
            "id": "evt1", "status": "confirmed", "etag": etag, "updated": updated, "summary": summary,
            "location": "Room 1",
            "start": { "dateTime": "2026-03-02T09:00:00+01:00", "timeZone": "Europe/Berlin" },
            "end": { "dateTime": "2026-03-02T10:00:00+01:00", "timeZone": "Europe/Berlin" },
        })
    };

    let UpsertOutcome::Inserted(id) =
        upsert(version("\"1\"", "2026-02-01T10:00:00.000Z", "Secret plan")).await
    else {
        panic!("expected an insert");
    };
    let first = row(&db, id).await;
    let summary_bytes = first.summary.clone().expect("summary");
    assert!(
        !summary_bytes.windows(6).any(|w| w == b"Secret"),
        "texts are encrypted at rest"
    );
    assert_eq!(first.range_start, utc("2026-03-02T08:00:00Z"));
    assert_eq!(first.range_end, utc("2026-03-02T09:00:00Z"));
    let decoded = store::decode(&cipher, user_id, &first).expect("decode");
    assert_eq!(decoded.summary.as_deref(), Some("Secret plan"));
    assert_eq!(decoded.location.as_deref(), Some("Room 1"));

    // The same version again, and an older one (a listing that started before a write): nothing changes.
    assert_eq!(
        upsert(version("\"1\"", "2026-02-01T10:00:00.000Z", "Secret plan")).await,
        UpsertOutcome::Unchanged(id)
    );
    assert_eq!(
        upsert(version("\"0\"", "2026-01-01T10:00:00.000Z", "Old plan")).await,
        UpsertOutcome::Unchanged(id)
    );
    assert_eq!(
        row(&db, id).await.change_seq,
        first.change_seq,
        "no change, no sequence value"
    );

    let updated = upsert(version("\"2\"", "2026-02-02T10:00:00.000Z", "New plan")).await;
    assert_eq!(updated, UpsertOutcome::Updated(id));
    let second = row(&db, id).await;
    assert!(second.change_seq > first.change_seq);
    assert_eq!(
        store::decode(&cipher, user_id, &second)
            .expect("decode")
            .summary
            .as_deref(),
        Some("New plan")
    );

    // A series and one of its instances cancelled (Google sends only the id and the original start).
    let master = upsert(json!({
        "id": "series1", "status": "confirmed", "etag": "\"5\"", "updated": "2026-02-01T10:00:00.000Z",
        "summary": "Weekly",
        "start": { "dateTime": "2026-03-02T09:00:00+01:00", "timeZone": "Europe/Berlin" },
        "end": { "dateTime": "2026-03-02T10:00:00+01:00", "timeZone": "Europe/Berlin" },
        "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=4"],
    }))
    .await;
    let master = row(&db, master.row_id().expect("master row")).await;
    assert_eq!(master.range_start, utc("2026-03-02T08:00:00Z"));
    assert_eq!(
        master.range_end,
        utc("2026-03-23T09:00:00Z"),
        "COUNT bounds the series"
    );
    let cancelled = upsert(json!({
        "id": "series1_20260309T080000Z", "status": "cancelled", "recurringEventId": "series1",
        "originalStartTime": { "dateTime": "2026-03-09T09:00:00+01:00", "timeZone": "Europe/Berlin" },
    }))
    .await;
    let cancelled = row(&db, cancelled.row_id().expect("exception row")).await;
    assert_eq!(cancelled.status, EventStatus::Cancelled);
    assert_eq!(
        cancelled.deleted_at, None,
        "a cancelled instance is a live exception"
    );
    assert_eq!(cancelled.recurring_event_id.as_deref(), Some("series1"));

    // A deletion tombstones once; the deleted version coming back from an old listing does not revive it.
    let gone = upsert(json!({ "id": "evt1", "status": "cancelled" })).await;
    assert_eq!(gone, UpsertOutcome::Tombstoned(id));
    let tombstone = row(&db, id).await;
    assert!(tombstone.deleted_at.is_some());
    assert!(tombstone.change_seq > cancelled.change_seq);
    assert_eq!(
        upsert(json!({ "id": "evt1", "status": "cancelled" })).await,
        UpsertOutcome::Unchanged(id)
    );
    assert_eq!(
        upsert(version("\"2\"", "2026-02-02T10:00:00.000Z", "New plan")).await,
        UpsertOutcome::Unchanged(id)
    );
    assert_eq!(row(&db, id).await.change_seq, tombstone.change_seq);
    assert_eq!(
        upsert(json!({ "id": "never-seen", "status": "cancelled" })).await,
        UpsertOutcome::Ignored
    );

    // The mirror marker names a sync config of this user; an unknown id is ignored.
    let now = Utc::now();
    let config = sync_configs::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user_id),
        source_calendar_id: Set(calendar.id),
        destination_calendar_id: Set(other_calendar.id),
        direction: Set(SyncDirection::OneWay),
        lookahead_days: Set(90),
        lookback_days: Set(0),
        privacy_enabled: Set(false),
        privacy_placeholder: Set("Busy".into()),
        reverse_privacy_enabled: Set(false),
        reverse_privacy_placeholder: Set("Busy".into()),
        destination_color_id: Set(None),
        reverse_color_id: Set(None),
        enabled: Set(true),
        interval_minutes: Set(None),
        status: Set(SyncConfigStatus::Active),
        paused_reason: Set(None),
        next_run_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&db)
    .await
    .expect("config");
    let mirror = |id: &str, marker: String| {
        json!({
            "id": id, "status": "confirmed", "etag": "\"9\"", "updated": "2026-02-01T10:00:00.000Z",
            "start": { "date": "2026-03-05" }, "end": { "date": "2026-03-06" },
            "extendedProperties": { "private": { store::MIRROR_MARKER_KEY: marker } },
        })
    };
    let marked = upsert(mirror("copy1", config.id.to_string())).await;
    assert_eq!(
        row(&db, marked.row_id().expect("row")).await.mirror_config_id,
        Some(config.id)
    );
    let unknown = upsert(mirror("copy2", Uuid::now_v7().to_string())).await;
    assert_eq!(
        row(&db, unknown.row_id().expect("row")).await.mirror_config_id,
        None
    );

    // After a full listing, what was not seen is tombstoned, and only that.
    let seen: HashSet<String> = ["series1", "series1_20260309T080000Z", "copy1"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        store::tombstone_missing(&db, user_id, calendar.id, &seen)
            .await
            .expect("tombstone"),
        1
    );
    assert!(
        row(&db, unknown.row_id().expect("row"))
            .await
            .deleted_at
            .is_some()
    );
    assert_eq!(row(&db, master.id).await.deleted_at, None);
    assert_eq!(
        store::tombstone_missing(&db, user_id, calendar.id, &seen)
            .await
            .expect("again"),
        0
    );

    // A value that does not decrypt is an error, never an empty text.
    let mut broken = row(&db, master.id).await;
    if let Some(bytes) = broken.summary.as_mut() {
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
    }
    assert!(matches!(
        store::decode(&cipher, user_id, &broken),
        Err(chronos::error::AppError::Internal(_))
    ));
    db.close().await.ok();
}
