//! Free/busy over HTTP against the emulator: one user with two Google accounts. Busy time merges across
//! the accounts and leaves out transparent, cancelled and declined events; all-day events are busy from
//! midnight in their calendar's zone; a copy written by a real sync run counts once with its original;
//! the per-calendar setting chooses the default calendars; free slots keep local working hours across a
//! DST change; bad input names its field; another user's calendar behaves as a missing one; series
//! expansion spends the request's work budget.
//!
//! Events are written at Google (the emulator's Calendar API), then brought into the cache by the
//! calendars domain's refresh, run on a second Chronos instance sharing the test database, so each test
//! decides when that happens. Push is silenced so the server does not refresh or sync on its own.

use std::{collections::HashMap, time::Duration};

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use chronos::{entities::push_channels, state::AppState};
use reqwest::Method;
use sea_orm::{DatabaseConnection, EntityTrait};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, error_code};

const ADA: &str = "ada@example.com";
const WORK: &str = "ada.work@example.com";

const FREE_BUSY: &str = "query($timeMin: DateTime!, $timeMax: DateTime!, $calendarIds: [ID!]) {
    freeBusy(timeMin: $timeMin, timeMax: $timeMax, calendarIds: $calendarIds) { start end }
}";

const FREE_SLOTS: &str = "query($duration: Int!, $timeMin: DateTime!, $timeMax: DateTime!, $hours: WorkingHoursInput, $zone: String) {
    freeSlots(durationMinutes: $duration, timeMin: $timeMin, timeMax: $timeMax, workingHours: $hours, timeZone: $zone) { start end }
}";

/// Ada, signed in with her own account and connected to her work account, push silenced.
struct Fixture {
    app: TestApp,
    db: DatabaseConnection,
    side: AppState,
    /// Google calendar id -> Chronos calendar id.
    calendars: HashMap<String, String>,
}

impl Fixture {
    async fn new() -> Self {
        let app = TestApp::spawn().await;
        app.emulator().create_account(ADA, Some("Ada"));
        app.emulator().create_account(WORK, Some("Ada at work"));
        app.sign_in(ADA).await;
        app.connect_account(WORK).await;
        let db = chronos::db::connect(&app.server.db.url).await.expect("connect");
        let side = app.app_state().await;
        let mut fixture = Self {
            app,
            db,
            side,
            calendars: HashMap::new(),
        };
        fixture.list_calendars().await;
        fixture.idle().await;
        fixture.silence_push().await;
        fixture
    }

    /// Forgets the push channels: notifications are then ignored, and refreshes and runs happen only
    /// when a test asks.
    async fn silence_push(&self) {
        push_channels::Entity::delete_many()
            .exec(&self.db)
            .await
            .expect("forget channels");
    }

    async fn idle(&self) {
        let timeout = Duration::from_secs(120);
        assert!(
            chronos::jobs::wait_idle(&self.db, timeout)
                .await
                .expect("wait_idle"),
            "jobs still running after {timeout:?}"
        );
    }

    /// Lists both accounts' calendars (as `refreshCalendars`).
    async fn list_calendars(&mut self) {
        let accounts = self.app.accounts().await;
        for account in accounts.as_array().expect("accounts") {
            let data = self
                .app
                .data(
                    "mutation($id: ID!) { refreshCalendars(accountId: $id) { id googleCalendarId } }",
                    json!({ "id": account["id"] }),
                )
                .await;
            for calendar in data["refreshCalendars"].as_array().expect("calendars") {
                self.calendars.insert(
                    calendar["googleCalendarId"]
                        .as_str()
                        .expect("google id")
                        .to_owned(),
                    calendar["id"].as_str().expect("id").to_owned(),
                );
            }
        }
    }

    /// A secondary calendar of `owner` in `zone`, known to Chronos; returns (Google id, Chronos id).
    async fn calendar(&mut self, owner: &str, summary: &str, zone: &str) -> (String, String) {
        let google_id = self
            .app
            .emulator()
            .create_calendar(owner, summary, Some(zone))
            .expect("calendar")["id"]
            .as_str()
            .expect("calendar id")
            .to_owned();
        self.list_calendars().await;
        self.idle().await;
        self.silence_push().await;
        let id = self.calendars[&google_id].clone();
        (google_id, id)
    }

    fn id(&self, google_id: &str) -> &str {
        &self.calendars[google_id]
    }

    /// The Calendar API as `email`; returns status and JSON body (null when empty).
    async fn google(&self, email: &str, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let token = self.app.emulator().issue_access_token(email).expect("token");
        let url = self.app.emulator_url(&format!("/calendar/v3/{path}"));
        let mut request = reqwest::Client::new().request(method, url).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("emulator request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Inserts an event into `calendar` (owned by `owner`) at Google; returns Google's answer.
    async fn insert(&self, owner: &str, calendar: &str, event: Value) -> Value {
        let (status, body) = self
            .google(
                owner,
                Method::POST,
                &format!("calendars/{calendar}/events"),
                Some(event),
            )
            .await;
        assert_eq!(status, 200, "insert: {body}");
        body
    }

    async fn delete(&self, owner: &str, calendar: &str, event_id: &str) {
        let (status, body) = self
            .google(
                owner,
                Method::DELETE,
                &format!("calendars/{calendar}/events/{event_id}"),
                None,
            )
            .await;
        assert_eq!(status, 204, "delete: {body}");
    }

    /// Brings Google's changes to every known calendar into the cache.
    async fn refresh(&self) {
        for id in self.calendars.values() {
            let id = Uuid::parse_str(id).expect("uuid");
            chronos::calendars::refresh_events(&self.side, id)
                .await
                .unwrap_or_else(|e| panic!("refresh failed: {e:?}"));
        }
    }

    async fn free_busy_raw(&self, min: &str, max: &str, calendars: Option<&[&str]>) -> Value {
        self.app
            .graphql(
                FREE_BUSY,
                json!({ "timeMin": min, "timeMax": max, "calendarIds": calendars }),
            )
            .await
    }

    /// `freeBusy` as (start, end) pairs.
    async fn busy(&self, min: &str, max: &str, calendars: Option<&[&str]>) -> Vec<(String, String)> {
        let body = self.free_busy_raw(min, max, calendars).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        pairs(&body["data"]["freeBusy"])
    }

    async fn slots(&self, variables: Value) -> Vec<(String, String)> {
        let body = self.app.graphql(FREE_SLOTS, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        pairs(&body["data"]["freeSlots"])
    }

    async fn include(&self, calendar_id: &str, include: bool) -> Value {
        self.app
            .graphql(
                "mutation($id: ID!, $include: Boolean) {
                    updateCalendar(id: $id, input: { includeInFreeBusy: $include }) { id primary includeInFreeBusy }
                }",
                json!({ "id": calendar_id, "include": include }),
            )
            .await
    }
}

fn pairs(list: &Value) -> Vec<(String, String)> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|i| {
            (
                i["start"].as_str().expect("start").to_owned(),
                i["end"].as_str().expect("end").to_owned(),
            )
        })
        .collect()
}

fn span(start: &str, end: &str) -> (String, String) {
    (start.to_owned(), end.to_owned())
}

fn timed(summary: &str, start: &str, end: &str) -> Value {
    json!({
        "summary": summary,
        "start": { "dateTime": start, "timeZone": "UTC" },
        "end": { "dateTime": end, "timeZone": "UTC" },
    })
}

fn all_day(summary: &str, start: NaiveDate, end: NaiveDate) -> Value {
    json!({
        "summary": summary,
        "start": { "date": start.to_string() },
        "end": { "date": end.to_string() },
    })
}

fn rfc(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Local midnight of `date` in `zone`, in UTC, as the API writes it.
fn midnight(date: NaiveDate, zone: Tz) -> String {
    rfc(zone
        .from_local_datetime(&date.and_hms_opt(0, 0, 0).expect("midnight"))
        .single()
        .expect("one midnight")
        .with_timezone(&Utc))
}

fn field(body: &Value) -> Option<&str> {
    body["errors"][0]["extensions"]["field"].as_str()
}

#[tokio::test]
async fn busy_time_merges_both_accounts_and_leaves_out_free_events() {
    let fx = Fixture::new().await;
    // Both primaries (UTC) count by default.
    fx.insert(
        ADA,
        ADA,
        timed("A", "2030-01-07T09:00:00Z", "2030-01-07T10:00:00Z"),
    )
    .await;
    fx.insert(
        WORK,
        WORK,
        timed("B", "2030-01-07T09:30:00Z", "2030-01-07T11:00:00Z"),
    )
    .await;
    fx.insert(
        WORK,
        WORK,
        timed("C touches B", "2030-01-07T11:00:00Z", "2030-01-07T11:30:00Z"),
    )
    .await;
    fx.insert(
        WORK,
        WORK,
        timed("Across timeMin", "2030-01-06T23:00:00Z", "2030-01-07T01:00:00Z"),
    )
    .await;
    let mut transparent = timed("Free", "2030-01-07T13:00:00Z", "2030-01-07T14:00:00Z");
    transparent["transparency"] = json!("transparent");
    fx.insert(ADA, ADA, transparent).await;
    let mut tentative = timed("Maybe", "2030-01-08T10:00:00Z", "2030-01-08T11:00:00Z");
    tentative["status"] = json!("tentative");
    fx.insert(ADA, ADA, tentative).await;
    // Invitations: Google marks the calendar owner's own attendee entry `self`.
    let invitation = |summary: &str, start: &str, end: &str, me: &str, answer: &str| {
        let mut event = timed(summary, start, end);
        event["attendees"] = json!([
            { "email": "boss@example.com", "organizer": true, "responseStatus": "accepted" },
            { "email": me, "responseStatus": answer },
        ]);
        event
    };
    let declined = fx
        .insert(
            WORK,
            WORK,
            invitation(
                "Declined",
                "2030-01-07T14:00:00Z",
                "2030-01-07T15:00:00Z",
                WORK,
                "declined",
            ),
        )
        .await;
    let own = declined["attendees"]
        .as_array()
        .expect("attendees")
        .iter()
        .find(|a| a["email"] == WORK)
        .expect("own entry");
    assert_eq!(
        (&own["self"], &own["responseStatus"]),
        (&json!(true), &json!("declined"))
    );
    fx.insert(
        ADA,
        ADA,
        invitation(
            "Accepted",
            "2030-01-07T15:00:00Z",
            "2030-01-07T16:00:00Z",
            ADA,
            "accepted",
        ),
    )
    .await;
    // Someone else declining does not free the user.
    fx.insert(
        ADA,
        ADA,
        invitation(
            "Others decline",
            "2030-01-09T09:00:00Z",
            "2030-01-09T09:30:00Z",
            "guest@example.com",
            "declined",
        ),
    )
    .await;
    // A deleted event, and a daily series with its middle instance cancelled.
    let gone = fx
        .insert(
            ADA,
            ADA,
            timed("Gone", "2030-01-07T12:00:00Z", "2030-01-07T12:30:00Z"),
        )
        .await;
    fx.delete(ADA, ADA, gone["id"].as_str().expect("id")).await;
    let mut series = timed("Daily", "2030-01-07T16:00:00Z", "2030-01-07T17:00:00Z");
    series["recurrence"] = json!(["RRULE:FREQ=DAILY;COUNT=3"]);
    let series = fx.insert(ADA, ADA, series).await;
    let master = series["id"].as_str().expect("id");
    fx.delete(ADA, ADA, &format!("{master}_20300108T160000Z")).await;
    fx.refresh().await;

    let (min, max) = ("2030-01-07T00:00:00Z", "2030-01-10T00:00:00Z");
    assert_eq!(
        fx.busy(min, max, None).await,
        vec![
            span("2030-01-07T00:00:00Z", "2030-01-07T01:00:00Z"),
            span("2030-01-07T09:00:00Z", "2030-01-07T11:30:00Z"),
            span("2030-01-07T15:00:00Z", "2030-01-07T17:00:00Z"),
            span("2030-01-08T10:00:00Z", "2030-01-08T11:00:00Z"),
            span("2030-01-09T09:00:00Z", "2030-01-09T09:30:00Z"),
            span("2030-01-09T16:00:00Z", "2030-01-09T17:00:00Z"),
        ]
    );
    // One account's calendar only.
    assert_eq!(
        fx.busy(min, max, Some(&[fx.id(WORK)])).await,
        vec![
            span("2030-01-07T00:00:00Z", "2030-01-07T01:00:00Z"),
            span("2030-01-07T09:30:00Z", "2030-01-07T11:30:00Z"),
        ]
    );
    // Accepting later makes the declined invitation busy.
    let (status, body) = fx
        .google(
            WORK,
            Method::PATCH,
            &format!("calendars/{WORK}/events/{}", declined["id"].as_str().expect("id")),
            Some(json!({ "attendees": [
                { "email": "boss@example.com", "organizer": true, "responseStatus": "accepted" },
                { "email": WORK, "responseStatus": "accepted" },
            ] })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    fx.refresh().await;
    assert_eq!(
        fx.busy(min, max, Some(&[fx.id(WORK)])).await,
        vec![
            span("2030-01-07T00:00:00Z", "2030-01-07T01:00:00Z"),
            span("2030-01-07T09:30:00Z", "2030-01-07T11:30:00Z"),
            span("2030-01-07T14:00:00Z", "2030-01-07T15:00:00Z"),
        ]
    );
}

#[tokio::test]
async fn all_day_events_are_busy_from_midnight_in_their_calendars_zone() {
    let mut fx = Fixture::new().await;
    let (pacific, pacific_id) = fx.calendar(ADA, "Pacific", "America/Los_Angeles").await;
    let (brisbane, brisbane_id) = fx.calendar(WORK, "Brisbane", "Australia/Brisbane").await;
    let day = |d: u32| NaiveDate::from_ymd_opt(2030, 1, d).expect("date");
    fx.insert(ADA, &pacific, all_day("Offsite", day(15), day(16)))
        .await;
    fx.insert(WORK, &brisbane, all_day("Conference", day(20), day(23)))
        .await;
    fx.refresh().await;

    let ids = [pacific_id.as_str(), brisbane_id.as_str()];
    assert_eq!(
        fx.busy("2030-01-14T00:00:00Z", "2030-01-25T00:00:00Z", Some(&ids))
            .await,
        vec![
            // UTC-8: local midnight is 08:00Z.
            span("2030-01-15T08:00:00Z", "2030-01-16T08:00:00Z"),
            // UTC+10: local midnight is 14:00Z the day before; three days, the end date exclusive.
            span("2030-01-19T14:00:00Z", "2030-01-22T14:00:00Z"),
        ]
    );
    // A window ending inside an all-day event cuts it.
    assert_eq!(
        fx.busy("2030-01-15T00:00:00Z", "2030-01-15T12:00:00Z", Some(&ids))
            .await,
        vec![span("2030-01-15T08:00:00Z", "2030-01-15T12:00:00Z")]
    );
}

#[tokio::test]
async fn a_copy_from_a_sync_run_counts_once_with_its_original() {
    let mut fx = Fixture::new().await;
    // Across the accounts and across zones: an all-day copy covers other hours than its original.
    let (pacific, pacific_id) = fx.calendar(ADA, "Pacific", "America/Los_Angeles").await;
    let (_, brisbane_id) = fx.calendar(WORK, "Brisbane", "Australia/Brisbane").await;
    let date = (Utc::now() + TimeDelta::days(10)).date_naive();
    fx.insert(
        ADA,
        &pacific,
        all_day("Offsite", date, date.succ_opt().expect("date")),
    )
    .await;
    let meeting = (date + TimeDelta::days(1))
        .and_hms_opt(18, 0, 0)
        .expect("time")
        .and_utc();
    fx.insert(
        ADA,
        &pacific,
        timed("Meeting", &rfc(meeting), &rfc(meeting + TimeDelta::hours(1))),
    )
    .await;
    let config = fx
        .app
        .data(
            "mutation($input: CreateSyncConfigInput!) { createSyncConfig(input: $input) { id } }",
            json!({ "input": {
                "sourceCalendarId": pacific_id,
                "destinationCalendarId": brisbane_id,
                "direction": "ONE_WAY",
            } }),
        )
        .await["createSyncConfig"]["id"]
        .as_str()
        .expect("config id")
        .to_owned();
    let run = fx
        .app
        .data(
            "mutation($id: ID!) { triggerSync(configId: $id) { id } }",
            json!({ "id": config }),
        )
        .await;
    assert!(run["triggerSync"]["id"].is_string());
    fx.idle().await;
    fx.refresh().await;

    // The copies are in the cache, marked as written by the config.
    let copies = fx
        .app
        .data(
            "query($ids: [ID!], $min: DateTime!, $max: DateTime!) {
                events(calendarIds: $ids, timeMin: $min, timeMax: $max) { edges { node { summary mirrorOf { id } } } }
            }",
            json!({
                "ids": [brisbane_id],
                "min": rfc(Utc::now()),
                "max": rfc(Utc::now() + TimeDelta::days(30)),
            }),
        )
        .await;
    let copies = copies["events"]["edges"].as_array().expect("edges").clone();
    assert_eq!(copies.len(), 2, "{copies:?}");
    assert!(copies.iter().all(|edge| edge["node"]["mirrorOf"]["id"] == config));

    let (min, max) = (rfc(Utc::now()), rfc(Utc::now() + TimeDelta::days(30)));
    let next = date.succ_opt().expect("date");
    let original = vec![
        span(
            &midnight(date, Tz::America__Los_Angeles),
            &midnight(next, Tz::America__Los_Angeles),
        ),
        span(&rfc(meeting), &rfc(meeting + TimeDelta::hours(1))),
    ];
    assert_eq!(fx.busy(&min, &max, Some(&[&pacific_id])).await, original);
    // On its own the copy calendar is busy at its own reading of the date.
    assert_eq!(
        fx.busy(&min, &max, Some(&[&brisbane_id])).await,
        vec![
            span(
                &midnight(date, Tz::Australia__Brisbane),
                &midnight(next, Tz::Australia__Brisbane)
            ),
            span(&rfc(meeting), &rfc(meeting + TimeDelta::hours(1))),
        ]
    );
    // Together: the originals only.
    assert_eq!(
        fx.busy(&min, &max, Some(&[&pacific_id, &brisbane_id])).await,
        original
    );
    // And by default, once both calendars are marked.
    for id in [&pacific_id, &brisbane_id] {
        let body = fx.include(id, true).await;
        assert_eq!(
            body["data"]["updateCalendar"]["includeInFreeBusy"], true,
            "{body}"
        );
    }
    assert_eq!(fx.busy(&min, &max, None).await, original);
}

#[tokio::test]
async fn the_free_busy_setting_chooses_the_default_calendars() {
    let mut fx = Fixture::new().await;
    let (side, side_id) = fx.calendar(ADA, "Side", "UTC").await;
    fx.insert(
        ADA,
        ADA,
        timed("Primary", "2030-02-04T09:00:00Z", "2030-02-04T10:00:00Z"),
    )
    .await;
    fx.insert(
        ADA,
        &side,
        timed("Side", "2030-02-04T12:00:00Z", "2030-02-04T13:00:00Z"),
    )
    .await;
    fx.refresh().await;

    let marks = fx
        .app
        .data("{ calendars { id primary includeInFreeBusy } }", json!({}))
        .await;
    for calendar in marks["calendars"].as_array().expect("calendars") {
        assert_eq!(calendar["includeInFreeBusy"], calendar["primary"], "{calendar}");
    }
    let (min, max) = ("2030-02-04T00:00:00Z", "2030-02-05T00:00:00Z");
    let primary = span("2030-02-04T09:00:00Z", "2030-02-04T10:00:00Z");
    let secondary = span("2030-02-04T12:00:00Z", "2030-02-04T13:00:00Z");
    assert_eq!(fx.busy(min, max, None).await, vec![primary.clone()]);
    // Named, a calendar counts whatever its mark.
    assert_eq!(
        fx.busy(min, max, Some(&[&side_id])).await,
        vec![secondary.clone()]
    );

    let body = fx.include(&side_id, true).await;
    assert_eq!(
        body["data"]["updateCalendar"],
        json!({ "id": side_id, "primary": false, "includeInFreeBusy": true })
    );
    assert_eq!(
        fx.busy(min, max, None).await,
        vec![primary.clone(), secondary.clone()]
    );
    let body = fx.include(fx.id(ADA), false).await;
    assert_eq!(
        body["data"]["updateCalendar"]["includeInFreeBusy"], false,
        "{body}"
    );
    assert_eq!(fx.busy(min, max, None).await, vec![secondary]);
    // The mark is kept.
    let marks = fx
        .app
        .data("{ calendars { id includeInFreeBusy } }", json!({}))
        .await;
    let marked: HashMap<String, bool> = marks["calendars"]
        .as_array()
        .expect("calendars")
        .iter()
        .map(|c| {
            (
                c["id"].as_str().expect("id").to_owned(),
                c["includeInFreeBusy"] == true,
            )
        })
        .collect();
    assert_eq!(
        (marked[&side_id], marked[fx.id(ADA)], marked[fx.id(WORK)]),
        (true, false, true),
        "{marked:?}"
    );
}

#[tokio::test]
async fn free_slots_keep_local_working_hours_across_a_dst_change() {
    let fx = Fixture::new().await;
    // Los Angeles springs forward on Sunday 2030-03-10: 09:00 there is 17:00Z on Friday, 16:00Z on Monday.
    fx.insert(
        ADA,
        ADA,
        timed("Fri", "2030-03-08T18:00:00Z", "2030-03-08T19:00:00Z"),
    )
    .await;
    fx.insert(
        WORK,
        WORK,
        timed("Sat", "2030-03-09T18:00:00Z", "2030-03-09T19:00:00Z"),
    )
    .await;
    fx.insert(
        WORK,
        WORK,
        timed("Mon", "2030-03-11T20:00:00Z", "2030-03-11T21:00:00Z"),
    )
    .await;
    fx.refresh().await;
    let window = |duration: i32| {
        json!({
            "duration": duration,
            "timeMin": "2030-03-08T08:00:00Z",
            "timeMax": "2030-03-12T07:00:00Z",
            "zone": "America/Los_Angeles",
        })
    };
    assert_eq!(
        fx.slots(window(60)).await,
        vec![
            span("2030-03-08T17:00:00Z", "2030-03-08T18:00:00Z"),
            span("2030-03-08T19:00:00Z", "2030-03-09T01:00:00Z"),
            span("2030-03-11T16:00:00Z", "2030-03-11T20:00:00Z"),
            span("2030-03-11T21:00:00Z", "2030-03-12T00:00:00Z"),
        ]
    );
    // Longer than an hour: Friday's first hour no longer fits.
    assert_eq!(
        fx.slots(window(61)).await,
        vec![
            span("2030-03-08T19:00:00Z", "2030-03-09T01:00:00Z"),
            span("2030-03-11T16:00:00Z", "2030-03-11T20:00:00Z"),
            span("2030-03-11T21:00:00Z", "2030-03-12T00:00:00Z"),
        ]
    );
    // Saturday mornings only.
    let mut saturday = window(30);
    saturday["hours"] = json!({ "start": "09:30", "end": "12:00", "weekdays": [6] });
    assert_eq!(
        fx.slots(saturday).await,
        vec![
            span("2030-03-09T17:30:00Z", "2030-03-09T18:00:00Z"),
            span("2030-03-09T19:00:00Z", "2030-03-09T20:00:00Z"),
        ]
    );
    // Without a zone: the primary calendar's (UTC at the emulator).
    let mut utc = window(60);
    utc["zone"] = Value::Null;
    assert_eq!(
        fx.slots(utc).await,
        vec![
            span("2030-03-08T09:00:00Z", "2030-03-08T17:00:00Z"),
            span("2030-03-11T09:00:00Z", "2030-03-11T17:00:00Z"),
        ]
    );
    assert_eq!(
        (
            NaiveDate::from_ymd_opt(2030, 3, 8).expect("date").weekday(),
            NaiveDate::from_ymd_opt(2030, 3, 10).expect("date").weekday(),
        ),
        (Weekday::Fri, Weekday::Sun)
    );
}

#[tokio::test]
async fn bad_windows_durations_zones_and_hours_name_their_field() {
    let fx = Fixture::new().await;
    let (min, max) = ("2030-01-07T00:00:00Z", "2030-01-08T00:00:00Z");
    for (min, max) in [
        (min, min),
        (max, min),
        ("2030-01-01T00:00:00Z", "2031-01-04T00:00:00Z"),
    ] {
        let body = fx.free_busy_raw(min, max, None).await;
        assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "{body}");
        assert_eq!(field(&body), Some("timeMax"), "{body}");
    }
    // A year and a day is fine.
    assert!(
        fx.free_busy_raw("2030-01-01T00:00:00Z", "2031-01-02T00:00:00Z", None)
            .await
            .get("errors")
            .is_none()
    );
    let cases = [
        (json!({ "duration": 0 }), "durationMinutes"),
        (json!({ "duration": 1441 }), "durationMinutes"),
        (json!({ "zone": "Mars/Olympus_Mons" }), "timeZone"),
        (json!({ "timeMax": min }), "timeMax"),
        (
            json!({ "hours": { "start": "9am", "end": "17:00" } }),
            "workingHours.start",
        ),
        (
            json!({ "hours": { "start": "09:00", "end": "24:00" } }),
            "workingHours.end",
        ),
        (
            json!({ "hours": { "start": "17:00", "end": "09:00" } }),
            "workingHours.end",
        ),
        (
            json!({ "hours": { "start": "09:00", "end": "17:00", "weekdays": [0] } }),
            "workingHours.weekdays",
        ),
        (
            json!({ "hours": { "start": "09:00", "end": "17:00", "weekdays": [8] } }),
            "workingHours.weekdays",
        ),
    ];
    for (change, name) in cases {
        let mut variables = json!({ "duration": 30, "timeMin": min, "timeMax": max });
        variables
            .as_object_mut()
            .expect("object")
            .extend(change.as_object().expect("object").clone());
        let body = fx.app.graphql(FREE_SLOTS, variables).await;
        assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "{body}");
        assert_eq!(field(&body), Some(name), "{body}");
    }
    // The positive control: the same query with valid arguments answers.
    assert_eq!(
        fx.slots(json!({ "duration": 1440, "timeMin": min, "timeMax": max, "hours": { "start": "00:00", "end": "23:59", "weekdays": [1] } }))
            .await,
        Vec::<(String, String)>::new()
    );
    assert_eq!(
        fx.slots(json!({ "duration": 1, "timeMin": min, "timeMax": max, "hours": { "start": "00:00", "end": "23:59", "weekdays": [1] } }))
            .await,
        vec![span("2030-01-07T00:00:00Z", "2030-01-07T23:59:00Z")]
    );
}

#[tokio::test]
async fn another_users_calendar_behaves_as_a_missing_one() {
    let fx = Fixture::new().await;
    fx.insert(
        ADA,
        ADA,
        timed("Mine", "2030-01-07T09:00:00Z", "2030-01-07T10:00:00Z"),
    )
    .await;
    fx.refresh().await;
    let (min, max) = ("2030-01-07T00:00:00Z", "2030-01-08T00:00:00Z");
    let own = fx.id(ADA).to_owned();
    // Positive control: Ada's own calendar answers.
    assert_eq!(
        fx.busy(min, max, Some(&[&own])).await,
        vec![span("2030-01-07T09:00:00Z", "2030-01-07T10:00:00Z")]
    );

    let bob = fx.app.new_browser();
    fx.app.emulator().create_account("bob@example.com", None);
    bob.sign_in("bob@example.com").await;
    let as_bob = |ids: Vec<String>| json!({ "timeMin": min, "timeMax": max, "calendarIds": ids });
    let foreign = bob.graphql(FREE_BUSY, as_bob(vec![own.clone()])).await;
    let missing = bob
        .graphql(FREE_BUSY, as_bob(vec![Uuid::now_v7().to_string()]))
        .await;
    let malformed = bob.graphql(FREE_BUSY, as_bob(vec!["not-an-id".to_owned()])).await;
    assert_eq!(error_code(&foreign), Some("NOT_FOUND"), "{foreign}");
    assert_eq!(foreign["errors"][0]["message"], missing["errors"][0]["message"]);
    assert_eq!(
        foreign["errors"][0]["extensions"],
        missing["errors"][0]["extensions"]
    );
    assert_eq!(error_code(&malformed), Some("NOT_FOUND"), "{malformed}");
    // Mixed with Ada's own calendar the foreign one still refuses the whole query.
    let mixed = fx
        .free_busy_raw(min, max, Some(&[&own, &Uuid::now_v7().to_string()]))
        .await;
    assert_eq!(error_code(&mixed), Some("NOT_FOUND"), "{mixed}");
    // Bob sees nothing of Ada by default either, and cannot mark her calendar.
    let bobs = bob
        .data(FREE_BUSY, json!({ "timeMin": min, "timeMax": max }))
        .await;
    assert_eq!(pairs(&bobs["freeBusy"]), Vec::<(String, String)>::new());
    let mark = bob
        .graphql(
            "mutation($id: ID!) { updateCalendar(id: $id, input: { includeInFreeBusy: false }) { id } }",
            json!({ "id": own }),
        )
        .await;
    assert_eq!(error_code(&mark), Some("NOT_FOUND"), "{mark}");
    assert_eq!(
        fx.busy(min, max, None).await,
        vec![span("2030-01-07T09:00:00Z", "2030-01-07T10:00:00Z")]
    );
}

#[tokio::test]
async fn series_expansion_spends_the_request_budget() {
    let fx = Fixture::new().await;
    // Six series of 10,000 instances a year each (the per-series cap): more than one request may expand.
    for i in 0..6 {
        fx.insert(
            ADA,
            ADA,
            json!({
                "summary": format!("tick {i}"),
                "start": { "dateTime": "2029-06-01T00:00:00Z", "timeZone": "UTC" },
                "end": { "dateTime": "2029-06-01T00:00:30Z", "timeZone": "UTC" },
                "recurrence": ["RRULE:FREQ=MINUTELY"],
            }),
        )
        .await;
    }
    fx.refresh().await;
    // Positive control: a day of them is within the budget (the six series share their minutes).
    let day = fx
        .busy("2030-03-01T00:00:00Z", "2030-03-02T00:00:00Z", None)
        .await;
    assert_eq!(day.len(), 1440);
    assert_eq!(day[1], span("2030-03-01T00:01:00Z", "2030-03-01T00:01:30Z"));
    let year = fx
        .free_busy_raw("2030-01-01T00:00:00Z", "2030-12-31T00:00:00Z", None)
        .await;
    assert_eq!(error_code(&year), Some("BAD_USER_INPUT"), "{year}");
    let message = year["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("instances of recurring events"), "{year}");
    let slots = fx
        .app
        .graphql(
            FREE_SLOTS,
            json!({ "duration": 30, "timeMin": "2030-01-01T00:00:00Z", "timeMax": "2030-12-31T00:00:00Z" }),
        )
        .await;
    assert_eq!(error_code(&slots), Some("BAD_USER_INPUT"), "{slots}");
}
