//! Calendars and the event cache against the emulator: refreshCalendars, removal of calendars gone at
//! Google, full and incremental listings, the 410 fallback, push notifications, the webhook's checks,
//! channel renewal and stopping, and a refresh Google answers "busy" going back to the queue until its
//! Retry-After.
//!
//! Tests that count Google requests exactly either run without workers (`no_workers`) and call the
//! domain functions themselves, or wait for the job queue to be idle.

use std::{collections::HashMap, sync::Arc, time::Duration};

use chrono::Utc;
use chronos::{
    calendars::{self, list::ListChanges, push},
    config::Settings,
    entities::{
        calendars as calendar_rows,
        enums::{JobStatus, LinkOrigin, SyncConfigStatus, SyncDirection},
        event_links, events, jobs, push_channels, sync_configs,
    },
    events::store::{self, StoredEvent},
    google::{CalendarListEntry, CalendarListing},
    jobs::{JobHandlers, WorkerConfig, WorkerPool},
    state::AppState,
};
use reqwest::StatusCode;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, IntoActiveModel, PaginatorTrait,
    QueryFilter, QueryOrder,
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, error_code};

const EVENTS_LIST: (&str, &str) = ("GET", "/calendar/v3/calendars/{calendarId}/events");
const CALENDAR_LIST: (&str, &str) = ("GET", "/calendar/v3/users/me/calendarList");
const WATCH: (&str, &str) = ("POST", "/calendar/v3/calendars/{calendarId}/events/watch");
const STOP: (&str, &str) = ("POST", "/calendar/v3/channels/stop");
const CALENDAR_FIELDS: &str =
    "id accountId googleCalendarId summary timeZone accessRole primary backgroundColor";

fn no_workers(settings: &mut Settings) {
    settings.scheduler_enabled = false;
}

impl TestApp {
    async fn account_id(&self, email: &str) -> String {
        let accounts = self.accounts().await;
        accounts
            .as_array()
            .expect("accounts")
            .iter()
            .find(|a| a["email"] == email)
            .and_then(|a| a["id"].as_str())
            .expect("account id")
            .to_string()
    }

    async fn refresh_calendars(&self, account_id: &str) -> Vec<Value> {
        let query =
            format!("mutation($id: ID!) {{ refreshCalendars(accountId: $id) {{ {CALENDAR_FIELDS} }} }}");
        let data = self.data(&query, json!({ "id": account_id })).await;
        data["refreshCalendars"].as_array().expect("calendars").clone()
    }

    async fn calendars(&self, account_id: Option<&str>) -> Vec<Value> {
        let query = format!("query($id: ID) {{ calendars(accountId: $id) {{ {CALENDAR_FIELDS} }} }}");
        let data = self.data(&query, json!({ "id": account_id })).await;
        data["calendars"].as_array().expect("calendars").clone()
    }

    /// The emulator's request log log the last [`TestApp::forget_google_requests`].
    fn google_requests(&self) -> Vec<Value> {
        self.emulator().requests().as_array().cloned().unwrap_or_default()
    }

    async fn forget_google_requests(&self) {
        let response = self
            .client
            .delete(self.emulator_url("/emulator/requests"))
            .send()
            .await
            .expect("control API");
        assert!(response.status().is_success());
    }

    /// Control API call that must succeed.
    async fn emulator_control(&self, path: &str, body: Value) {
        let response = self
            .client
            .post(self.emulator_url(path))
            .json(&body)
            .send()
            .await
            .expect("control API");
        assert!(response.status().is_success(), "{path}: {}", response.status());
    }

    async fn post_push(
        &self,
        channel_id: &str,
        token: Option<&str>,
        resource_state: &str,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(self.url("/webhooks/google"))
            .header("X-Goog-Channel-ID", channel_id)
            .header("X-Goog-Resource-ID", "resource")
            .header("X-Goog-Resource-State", resource_state)
            .header("X-Goog-Message-Number", "2");
        if let Some(token) = token {
            request = request.header("X-Goog-Channel-Token", token);
        }
        request.send().await.expect("POST /webhooks/google")
    }
}

fn is_route(request: &Value, (method, route): (&str, &str)) -> bool {
    request["method"] == method && request["route"] == route
}

/// Requests of `(method, route template)` in `log` (optionally only those naming `calendar`).
fn of_route<'a>(log: &'a [Value], route: (&str, &str), calendar: Option<&str>) -> Vec<&'a Value> {
    log.iter()
        .filter(|r| is_route(r, route))
        .filter(|r| {
            calendar.is_none_or(|id| {
                r["path"]
                    .as_str()
                    .is_some_and(|p| p.replace("%40", "@").contains(id))
            })
        })
        .collect()
}

fn has_sync_token(request: &Value) -> bool {
    request["query"]
        .as_str()
        .is_some_and(|q| q.contains("syncToken="))
}

fn uuid(value: &Value) -> Uuid {
    Uuid::parse_str(value.as_str().expect("id")).expect("uuid")
}

fn by_summary<'a>(calendars: &'a [Value], summary: &str) -> &'a Value {
    calendars
        .iter()
        .find(|c| c["summary"] == summary)
        .unwrap_or_else(|| panic!("no calendar {summary} in {calendars:?}"))
}

fn primary(calendars: &[Value]) -> &Value {
    calendars
        .iter()
        .find(|c| c["primary"] == true)
        .expect("primary calendar")
}

/// Calls the Calendar API as a Google user, as another app or Google's own UI would.
struct GoogleUser {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl GoogleUser {
    fn new(app: &TestApp, email: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: app.emulator_url("/calendar/v3"),
            token: app.emulator().issue_access_token(email).expect("access token"),
        }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("Calendar API");
        assert!(response.status().is_success(), "{path}: {}", response.status());
        response.json().await.unwrap_or(Value::Null)
    }

    /// Inserts a one-hour event on day `day` of December 2026; returns its id.
    async fn insert(&self, calendar: &str, summary: &str, day: u32) -> String {
        let body = json!({
            "summary": summary,
            "start": { "dateTime": format!("2026-12-{day:02}T10:00:00Z") },
            "end": { "dateTime": format!("2026-12-{day:02}T11:00:00Z") },
        });
        let event = self
            .send(
                reqwest::Method::POST,
                &format!("/calendars/{calendar}/events"),
                Some(body),
            )
            .await;
        event["id"].as_str().expect("event id").to_string()
    }

    async fn rename(&self, calendar: &str, event: &str, summary: &str) {
        self.send(
            reqwest::Method::PATCH,
            &format!("/calendars/{calendar}/events/{event}"),
            Some(json!({ "summary": summary })),
        )
        .await;
    }

    async fn delete(&self, calendar: &str, event: &str) {
        self.send(
            reqwest::Method::DELETE,
            &format!("/calendars/{calendar}/events/{event}"),
            None,
        )
        .await;
    }
}

/// Every cached row of a calendar (tombstones included), decrypted, by Google id.
async fn cached(state: &AppState, calendar_id: Uuid) -> HashMap<String, StoredEvent> {
    let user_id = calendar_rows::Entity::find_by_id(calendar_id)
        .find_also_related(chronos::entities::google_accounts::Entity)
        .one(&state.db)
        .await
        .expect("query")
        .and_then(|(_, account)| account)
        .expect("calendar and account")
        .user_id;
    events::Entity::find()
        .filter(events::Column::CalendarId.eq(calendar_id))
        .all(&state.db)
        .await
        .expect("events")
        .iter()
        .map(|row| {
            let event = store::decode(&state.cipher, user_id, row).expect("decode");
            (event.google_event_id.clone(), event)
        })
        .collect()
}

async fn event_rows(state: &AppState, calendar_id: Uuid) -> u64 {
    events::Entity::find()
        .filter(events::Column::CalendarId.eq(calendar_id))
        .count(&state.db)
        .await
        .expect("count")
}

fn live_summaries(cache: &HashMap<String, StoredEvent>) -> Vec<String> {
    let mut summaries: Vec<String> = cache
        .values()
        .filter(|e| !e.is_tombstone())
        .filter_map(|e| e.summary.clone())
        .collect();
    summaries.sort();
    summaries
}

async fn wait_idle(state: &AppState) {
    assert!(
        chronos::jobs::wait_idle(&state.db, Duration::from_secs(20))
            .await
            .expect("wait_idle"),
        "jobs still busy"
    );
}

/// Waits until no calendar refresh is queued or running, debounced ones included.
async fn wait_for_refreshes(state: &AppState) {
    for _ in 0..400 {
        let busy = jobs::Entity::find()
            .filter(jobs::Column::Kind.eq(calendars::jobs::REFRESH_EVENTS))
            .filter(jobs::Column::Status.is_in([JobStatus::Queued, JobStatus::Running]))
            .count(&state.db)
            .await
            .expect("jobs");
        if busy == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("calendar refreshes still pending");
}

async fn refresh_jobs(state: &AppState) -> u64 {
    jobs::Entity::find()
        .filter(jobs::Column::Kind.eq(calendars::jobs::REFRESH_EVENTS))
        .count(&state.db)
        .await
        .expect("jobs")
}

async fn live_channels(state: &AppState, calendar_id: Uuid) -> Vec<push_channels::Model> {
    push_channels::Entity::find()
        .filter(push_channels::Column::CalendarId.eq(calendar_id))
        .filter(push_channels::Column::StoppedAt.is_null())
        .order_by_asc(push_channels::Column::CreatedAt)
        .all(&state.db)
        .await
        .expect("channels")
}

// -------------------------------------------------------------------------------------------------
// Calendar list
// -------------------------------------------------------------------------------------------------

#[tokio::test]
async fn refresh_calendars_lists_the_primary_and_secondary_calendars_of_the_users_own_account() {
    let alice = TestApp::spawn_with(no_workers).await;
    alice.sign_in("alice@example.com").await;
    alice
        .emulator()
        .create_calendar("alice@example.com", "Work", Some("Europe/Berlin"))
        .expect("Work calendar");
    let account = alice.account_id("alice@example.com").await;

    let listed = alice.refresh_calendars(&account).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    let main = primary(&listed);
    assert_eq!(main["googleCalendarId"], "alice@example.com");
    assert_eq!(main["accessRole"], "owner");
    assert_eq!(main["accountId"], account.as_str());
    let work = by_summary(&listed, "Work");
    assert_eq!(work["primary"], false);
    assert_eq!(work["timeZone"], "Europe/Berlin");
    assert_eq!(work["accessRole"], "owner");
    assert!(
        work["googleCalendarId"]
            .as_str()
            .expect("id")
            .ends_with("@group.calendar.google.com")
    );
    assert!(
        work["backgroundColor"]
            .as_str()
            .is_some_and(|c| c.starts_with('#'))
    );

    // The same through `calendars`, with or without the account, and through `accounts`.
    assert_eq!(alice.calendars(Some(&account)).await, listed);
    assert_eq!(alice.calendars(None).await, listed);
    let accounts = alice
        .data("{ accounts { id calendars { id summary } } }", json!({}))
        .await;
    let ids: Vec<&Value> = accounts["accounts"][0]["calendars"]
        .as_array()
        .expect("calendars")
        .iter()
        .map(|c| &c["id"])
        .collect();
    assert_eq!(ids, listed.iter().map(|c| &c["id"]).collect::<Vec<_>>());

    // The next refresh asks only for the changes, and keeps the rows.
    alice.forget_google_requests().await;
    assert_eq!(alice.refresh_calendars(&account).await, listed);
    let log = alice.google_requests();
    let lists = of_route(&log, CALENDAR_LIST, None);
    assert_eq!(lists.len(), 1, "{lists:?}");
    assert!(has_sync_token(lists[0]), "{lists:?}");

    // Another user sees nothing of Alice's account.
    let bob = alice.new_browser();
    bob.sign_in("bob@example.com").await;
    let refused = bob
        .graphql(
            "query($id: ID) { calendars(accountId: $id) { id } }",
            json!({ "id": account }),
        )
        .await;
    assert_eq!(error_code(&refused), Some("NOT_FOUND"), "{refused}");
    let refused = bob
        .graphql(
            "mutation($id: ID!) { refreshCalendars(accountId: $id) { id } }",
            json!({ "id": account }),
        )
        .await;
    assert_eq!(error_code(&refused), Some("NOT_FOUND"), "{refused}");
    let bobs = bob.calendars(None).await;
    assert!(
        bobs.iter().all(|c| c["accountId"] != account.as_str()),
        "{bobs:?}"
    );
}

#[tokio::test]
async fn an_expired_calendar_list_token_falls_back_to_a_full_listing() {
    let app = TestApp::spawn_with(no_workers).await;
    app.sign_in("alice@example.com").await;
    let account = app.account_id("alice@example.com").await;
    let first = app.refresh_calendars(&account).await;
    assert_eq!(first.len(), 1);

    app.emulator_control(
        "/emulator/accounts/alice@example.com/invalidate-sync-tokens",
        json!({}),
    )
    .await;
    app.emulator()
        .create_calendar("alice@example.com", "Side", None)
        .expect("Side calendar");
    app.forget_google_requests().await;
    let second = app.refresh_calendars(&account).await;

    assert_eq!(second.len(), 2, "{second:?}");
    assert_eq!(
        primary(&second)["id"],
        primary(&first)["id"],
        "rows are kept, not recreated"
    );
    by_summary(&second, "Side");
    let log = app.google_requests();
    let lists = of_route(&log, CALENDAR_LIST, None);
    assert_eq!(lists.len(), 2, "{lists:?}");
    assert!(has_sync_token(lists[0]) && lists[0]["status"] == 410, "{lists:?}");
    assert!(
        !has_sync_token(lists[1]) && lists[1]["status"] == 200,
        "{lists:?}"
    );
}

#[tokio::test]
async fn a_revoked_grant_surfaces_needs_reauth() {
    let app = TestApp::spawn_with(no_workers).await;
    app.sign_in("alice@example.com").await;
    app.connect_account("alice.work@example.com").await;
    let account = app.account_id("alice.work@example.com").await;
    app.emulator()
        .revoke_account("alice.work@example.com")
        .expect("revoke");
    app.emulator().expire_access_tokens();

    let refused = app
        .graphql(
            "mutation($id: ID!) { refreshCalendars(accountId: $id) { id } }",
            json!({ "id": account }),
        )
        .await;
    assert_eq!(error_code(&refused), Some("NEEDS_REAUTH"), "{refused}");
    let accounts = app.accounts().await;
    let work = accounts
        .as_array()
        .expect("accounts")
        .iter()
        .find(|a| a["email"] == "alice.work@example.com")
        .expect("account");
    assert_eq!(work["status"], "NEEDS_REAUTH");
}

/// The emulator cannot remove a calendar from a list, so the listings Google would send are given to
/// the function that applies them.
#[tokio::test]
async fn calendars_gone_at_google_are_removed_with_their_events_and_nothing_else() {
    let app = TestApp::spawn_with(no_workers).await;
    app.sign_in("alice@example.com").await;
    let emulator = app.emulator();
    for summary in ["Work", "Side"] {
        emulator
            .create_calendar("alice@example.com", summary, None)
            .expect("calendar");
    }
    let account = app.account_id("alice@example.com").await;
    let listed = app.refresh_calendars(&account).await;
    assert_eq!(listed.len(), 3);
    let state = app.app_state().await;
    let google = GoogleUser::new(&app, "alice@example.com");
    for calendar in &listed {
        let gid = calendar["googleCalendarId"].as_str().expect("google id");
        google.insert(gid, "Planning", 1).await;
        calendars::refresh_events(&state, uuid(&calendar["id"]))
            .await
            .expect("refresh");
    }
    let [main, work, side] = [
        primary(&listed),
        by_summary(&listed, "Work"),
        by_summary(&listed, "Side"),
    ]
    .map(|c| {
        (
            uuid(&c["id"]),
            c["googleCalendarId"].as_str().expect("id").to_string(),
        )
    });
    let main_row = calendar_rows::Entity::find_by_id(main.0)
        .one(&state.db)
        .await
        .expect("query");
    let main_events = cached(&state, main.0).await;
    for (id, _) in [&work, &side] {
        assert_eq!(event_rows(&state, *id).await, 1);
    }
    // A sync config from the primary calendar into Work: it goes with Work (the data model's choice).
    let config_id = insert_sync_config(&state, &account, main.0, work.0).await;

    // An incremental listing says Work was deleted.
    let account_id = Uuid::parse_str(&account).expect("uuid");
    let incremental = CalendarListing {
        items: vec![CalendarListEntry {
            id: work.1.clone(),
            deleted: true,
            ..CalendarListEntry::default()
        }],
        next_sync_token: Some("after-work".into()),
    };
    let changes = calendars::list::apply_listing(&state.db, account_id, &incremental, false, Utc::now())
        .await
        .expect("apply");
    assert_eq!(changes.removed, vec![work.0]);
    assert!(changes.added.is_empty());
    assert_eq!(event_rows(&state, work.0).await, 0, "Work's events are gone");
    let config = sync_configs::Entity::find_by_id(config_id).one(&state.db).await;
    assert_eq!(config.expect("query"), None);

    // A full listing no longer holds Side.
    let full = CalendarListing {
        items: vec![CalendarListEntry {
            id: main.1.clone(),
            summary: Some(main.1.clone()),
            access_role: Some("owner".into()),
            primary: true,
            time_zone: main_row.as_ref().and_then(|r| r.time_zone.clone()),
            background_color: main_row.as_ref().and_then(|r| r.background_color.clone()),
            foreground_color: main_row.as_ref().and_then(|r| r.foreground_color.clone()),
            color_id: main_row.as_ref().and_then(|r| r.color_id.clone()),
            ..CalendarListEntry::default()
        }],
        next_sync_token: Some("after-side".into()),
    };
    let changes: ListChanges = calendars::list::apply_listing(&state.db, account_id, &full, true, Utc::now())
        .await
        .expect("apply");
    assert_eq!(changes.removed, vec![side.0]);
    assert_eq!(event_rows(&state, side.0).await, 0, "Side's events are gone");

    // The primary calendar and its events are untouched.
    let remaining = app.calendars(Some(&account)).await;
    assert_eq!(remaining, vec![primary(&listed).clone()]);
    let after = calendar_rows::Entity::find_by_id(main.0)
        .one(&state.db)
        .await
        .expect("query")
        .expect("primary row");
    let before = main_row.expect("primary row");
    assert_eq!(after.events_sync_token, before.events_sync_token);
    assert_eq!(after.id, before.id);
    assert_eq!(cached(&state, main.0).await, main_events);
}

async fn insert_sync_config(state: &AppState, account: &str, source: Uuid, destination: Uuid) -> Uuid {
    let user_id =
        chronos::entities::google_accounts::Entity::find_by_id(Uuid::parse_str(account).expect("uuid"))
            .one(&state.db)
            .await
            .expect("query")
            .expect("account")
            .user_id;
    let now = Utc::now();
    let id = Uuid::now_v7();
    sync_configs::ActiveModel {
        id: Set(id),
        user_id: Set(user_id),
        source_calendar_id: Set(source),
        destination_calendar_id: Set(destination),
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
    .insert(&state.db)
    .await
    .expect("sync config");
    id
}

// -------------------------------------------------------------------------------------------------
// Event cache
// -------------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_full_listing_then_an_incremental_one_applies_exactly_the_changes_made_at_google() {
    let app = TestApp::spawn_with(no_workers).await;
    app.sign_in("alice@example.com").await;
    let google = GoogleUser::new(&app, "alice@example.com");
    let gid = "alice@example.com";
    let kept = google.insert(gid, "Kept", 1).await;
    let renamed = google.insert(gid, "Before", 2).await;
    let removed = google.insert(gid, "Removed", 3).await;
    let account = app.account_id(gid).await;
    let calendar_id = uuid(&primary(&app.refresh_calendars(&account).await)["id"]);
    let state = app.app_state().await;

    let first = calendars::refresh_events(&state, calendar_id)
        .await
        .expect("full");
    assert!(first.full);
    assert_eq!((first.inserted, first.updated, first.deleted), (3, 0, 0));
    assert_eq!(first.google_calls, 1);
    assert_eq!(
        live_summaries(&cached(&state, calendar_id).await),
        ["Before", "Kept", "Removed"]
    );
    let kept_before = cached(&state, calendar_id).await[&kept].clone();

    let added = google.insert(gid, "Added", 4).await;
    google.rename(gid, &renamed, "After").await;
    google.delete(gid, &removed).await;
    app.forget_google_requests().await;
    let second = calendars::refresh_events(&state, calendar_id)
        .await
        .expect("incremental");

    assert!(!second.full);
    assert_eq!(second.listed, 3);
    assert_eq!((second.inserted, second.updated, second.deleted), (1, 1, 1));
    assert_eq!(second.google_calls, 1);
    let log = app.google_requests();
    let lists = of_route(&log, EVENTS_LIST, Some(gid));
    assert_eq!(lists.len(), 1, "{lists:?}");
    assert!(has_sync_token(lists[0]));
    let cache = cached(&state, calendar_id).await;
    assert_eq!(live_summaries(&cache), ["Added", "After", "Kept"]);
    assert!(cache[&removed].is_tombstone());
    assert!(!cache[&added].is_tombstone());
    assert_eq!(cache[&kept], kept_before, "untouched events are not rewritten");

    // Nothing changed since: one request, nothing written.
    let third = calendars::refresh_events(&state, calendar_id)
        .await
        .expect("quiet");
    assert_eq!(
        (third.listed, third.inserted, third.updated, third.deleted),
        (0, 0, 0, 0)
    );
    assert_eq!(cached(&state, calendar_id).await, cache);
}

#[tokio::test]
async fn a_failed_listing_keeps_the_sync_token_and_the_next_one_catches_up() {
    let app = TestApp::spawn_with(no_workers).await;
    app.sign_in("alice@example.com").await;
    let gid = "alice@example.com";
    let account = app.account_id(gid).await;
    let calendar_id = uuid(&primary(&app.refresh_calendars(&account).await)["id"]);
    let state = app.app_state().await;
    calendars::refresh_events(&state, calendar_id)
        .await
        .expect("full");
    let token = |state: AppState| async move {
        calendar_rows::Entity::find_by_id(calendar_id)
            .one(&state.db)
            .await
            .expect("query")
            .expect("row")
            .events_sync_token
    };
    let saved = token(state.clone()).await;
    assert!(saved.is_some());

    GoogleUser::new(&app, gid).insert(gid, "Late", 5).await;
    app.emulator_control(
        "/emulator/faults",
        json!({ "method": "GET", "path": "/calendar/v3/calendars/*/events", "status": 403,
                "reason": "forbiddenForNonOrganizer", "times": 1 }),
    )
    .await;
    assert!(calendars::refresh_events(&state, calendar_id).await.is_err());
    assert_eq!(token(state.clone()).await, saved);
    assert!(live_summaries(&cached(&state, calendar_id).await).is_empty());

    let caught_up = calendars::refresh_events(&state, calendar_id)
        .await
        .expect("retry");
    assert!(!caught_up.full);
    assert_eq!(caught_up.inserted, 1);
    assert_eq!(live_summaries(&cached(&state, calendar_id).await), ["Late"]);
    assert_ne!(token(state.clone()).await, saved);
}

#[tokio::test]
async fn an_expired_events_token_falls_back_to_a_full_listing_that_merges() {
    let app = TestApp::spawn_with(no_workers).await;
    app.sign_in("alice@example.com").await;
    app.emulator()
        .create_calendar("alice@example.com", "Work", None)
        .expect("Work");
    let gid = "alice@example.com";
    let google = GoogleUser::new(&app, gid);
    let kept = google.insert(gid, "Kept", 1).await;
    let deleted = google.insert(gid, "Deleted", 2).await;
    let account = app.account_id(gid).await;
    let listed = app.refresh_calendars(&account).await;
    let calendar_id = uuid(&primary(&listed)["id"]);
    let work_id = uuid(&by_summary(&listed, "Work")["id"]);
    let state = app.app_state().await;
    calendars::refresh_events(&state, calendar_id)
        .await
        .expect("full");

    // App-owned data: a sync config with a link on "Kept", and a cached row Google no longer has.
    let config_id = insert_sync_config(&state, &account, calendar_id, work_id).await;
    let now = Utc::now();
    event_links::ActiveModel {
        id: Set(Uuid::now_v7()),
        config_id: Set(config_id),
        source_calendar_id: Set(calendar_id),
        source_event_id: Set(kept.clone()),
        mirror_calendar_id: Set(work_id),
        mirror_event_id: Set("mirror00001".into()),
        origin: Set(LinkOrigin::Source),
        source_hash: Set("h1".into()),
        mirror_hash: Set("h2".into()),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&state.db)
    .await
    .expect("link");
    let calendar_row = calendar_rows::Entity::find_by_id(calendar_id)
        .one(&state.db)
        .await
        .expect("query")
        .expect("row");
    let user_id = state_user(&state, calendar_id).await;
    let ghost = chronos::google::Event {
        id: Some("ghost00001".into()),
        status: Some("confirmed".into()),
        summary: Some("Purged at Google".into()),
        etag: Some("\"1\"".into()),
        start: Some(chronos::google::EventDateTime::at(now, None)),
        end: Some(chronos::google::EventDateTime::at(now, None)),
        ..chronos::google::Event::default()
    };
    store::upsert_from_google(&state.db, &state.cipher, user_id, &calendar_row, &ghost)
        .await
        .expect("ghost");
    let before_cache = cached(&state, calendar_id).await;

    app.emulator().invalidate_sync_tokens(gid).expect("invalidate");
    google.delete(gid, &deleted).await;
    let added = google.insert(gid, "Added", 3).await;
    app.forget_google_requests().await;
    let outcome = calendars::refresh_events(&state, calendar_id)
        .await
        .expect("refresh");

    assert!(outcome.full);
    assert_eq!((outcome.inserted, outcome.updated, outcome.deleted), (1, 0, 2));
    let log = app.google_requests();
    let lists = of_route(&log, EVENTS_LIST, Some(gid));
    assert_eq!(lists.len(), 2, "{lists:?}");
    assert!(has_sync_token(lists[0]) && lists[0]["status"] == 410);
    assert!(!has_sync_token(lists[1]) && lists[1]["status"] == 200);

    let cache = cached(&state, calendar_id).await;
    assert_eq!(live_summaries(&cache), ["Added", "Kept"]);
    assert_eq!(
        cache[&kept], before_cache[&kept],
        "unchanged rows keep id and change_seq"
    );
    for gone in [&deleted, &"ghost00001".to_string()] {
        assert!(cache[gone].is_tombstone(), "{gone} is a tombstone, not wiped");
        assert_eq!(cache[gone].id, before_cache[gone].id);
    }
    assert!(cache.contains_key(&added));
    let links = event_links::Entity::find()
        .filter(event_links::Column::ConfigId.eq(config_id))
        .count(&state.db)
        .await
        .expect("links");
    assert_eq!(links, 1, "the link survives");

    // Incremental again afterwards.
    assert!(
        !calendars::refresh_events(&state, calendar_id)
            .await
            .expect("next")
            .full
    );
}

async fn state_user(state: &AppState, calendar_id: Uuid) -> Uuid {
    calendar_rows::Entity::find_by_id(calendar_id)
        .find_also_related(chronos::entities::google_accounts::Entity)
        .one(&state.db)
        .await
        .expect("query")
        .and_then(|(_, account)| account)
        .expect("account")
        .user_id
}

#[tokio::test]
async fn after_sign_in_the_first_calendars_query_fills_the_calendars_and_their_events() {
    let app = TestApp::spawn().await;
    app.emulator().create_account("alice@example.com", Some("Alice"));
    app.emulator()
        .insert_event(
            "alice@example.com",
            json!({ "summary": "Existing", "start": { "date": "2026-12-24" }, "end": { "date": "2026-12-25" } }),
        )
        .expect("event");
    app.sign_in("alice@example.com").await;
    let state = app.app_state().await;

    app.calendars(None).await;
    wait_idle(&state).await;
    let calendars = app.calendars(None).await;
    assert_eq!(calendars.len(), 1, "{calendars:?}");
    let calendar_id = uuid(&calendars[0]["id"]);
    assert_eq!(live_summaries(&cached(&state, calendar_id).await), ["Existing"]);
    let channels = live_channels(&state, calendar_id).await;
    assert_eq!(
        channels.len(),
        1,
        "a push channel is opened after the first listing"
    );
    assert_eq!(channels[0].token.len(), 32, "only the token's digest is stored");
}

// -------------------------------------------------------------------------------------------------
// Push
// -------------------------------------------------------------------------------------------------

/// Signs in, lists the calendars and waits for the first refresh (and the push channel) of the primary.
async fn pushed_app() -> (TestApp, AppState, Uuid) {
    pushed_app_with(|_| {}).await
}

async fn pushed_app_with(configure: impl FnOnce(&mut Settings)) -> (TestApp, AppState, Uuid) {
    let app = TestApp::spawn_with(configure).await;
    app.sign_in("alice@example.com").await;
    let account = app.account_id("alice@example.com").await;
    let calendar_id = uuid(&primary(&app.refresh_calendars(&account).await)["id"]);
    let state = app.app_state().await;
    wait_idle(&state).await;
    assert_eq!(live_channels(&state, calendar_id).await.len(), 1);
    (app, state, calendar_id)
}

async fn wait_for_summaries(state: &AppState, calendar_id: Uuid, count: usize) -> Vec<String> {
    for _ in 0..400 {
        let summaries = live_summaries(&cached(state, calendar_id).await);
        if summaries.len() >= count {
            return summaries;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the cache never held {count} events");
}

#[tokio::test]
async fn a_change_at_google_reaches_the_cache_through_push_with_one_listing() {
    let (app, state, calendar_id) = pushed_app().await;
    let gid = "alice@example.com";
    app.forget_google_requests().await;

    GoogleUser::new(&app, gid).insert(gid, "Pushed", 7).await;

    assert_eq!(wait_for_summaries(&state, calendar_id, 1).await, ["Pushed"]);
    wait_for_refreshes(&state).await;
    let log = app.google_requests();
    let lists = of_route(&log, EVENTS_LIST, Some(gid));
    assert_eq!(lists.len(), 1, "{lists:?}");
    assert!(has_sync_token(lists[0]));
}

#[tokio::test]
async fn a_burst_of_twenty_changes_costs_at_most_two_listings() {
    let (app, state, calendar_id) = pushed_app().await;
    let gid = "alice@example.com";
    let google = GoogleUser::new(&app, gid);
    app.forget_google_requests().await;

    for day in 1..=20 {
        google.insert(gid, &format!("Burst {day:02}"), day).await;
    }

    assert_eq!(wait_for_summaries(&state, calendar_id, 20).await.len(), 20);
    wait_for_refreshes(&state).await;
    let log = app.google_requests();
    let lists = of_route(&log, EVENTS_LIST, Some(gid));
    assert!(
        (1..=2).contains(&lists.len()),
        "{} listings: {lists:?}",
        lists.len()
    );
}

#[tokio::test]
async fn the_webhook_acts_only_on_change_messages_of_live_channels_with_their_token() {
    // Rate limits on, as in production (tests run without them otherwise).
    let (app, state, calendar_id) = pushed_app_with(|s| s.rate_limits.api_per_min = 600).await;
    // Channels whose token the test knows: live, stopped, expired.
    let now = Utc::now();
    let channel =
        |channel_id: &str, stopped: bool, expires_in: chrono::Duration| push_channels::ActiveModel {
            id: Set(Uuid::now_v7()),
            calendar_id: Set(calendar_id),
            channel_id: Set(channel_id.into()),
            resource_id: Set("resource".into()),
            token: Set(push::token_digest("right-token")),
            expires_at: Set(now + expires_in),
            stopped_at: Set(stopped.then_some(now)),
            created_at: Set(now),
        };
    for model in [
        channel("live", false, chrono::Duration::hours(1)),
        channel("stopped", true, chrono::Duration::hours(1)),
        channel("expired", false, chrono::Duration::hours(-1)),
    ] {
        model.insert(&state.db).await.expect("channel");
    }
    let jobs_before = refresh_jobs(&state).await;

    let ignored = [
        ("live", Some("wrong-token"), "exists"),
        ("live", None, "exists"),
        ("live", Some("right-token"), "sync"),
        ("unknown", Some("right-token"), "exists"),
        ("stopped", Some("right-token"), "exists"),
        ("expired", Some("right-token"), "exists"),
    ];
    for (channel_id, token, resource_state) in ignored {
        assert_eq!(
            app.post_push(channel_id, token, resource_state).await.status(),
            StatusCode::OK
        );
    }
    assert_eq!(
        refresh_jobs(&state).await,
        jobs_before,
        "ignored messages queue nothing"
    );

    // The right token on a live channel works, and twenty of them share the listing.
    app.forget_google_requests().await;
    for _ in 0..20 {
        assert_eq!(
            app.post_push("live", Some("right-token"), "exists")
                .await
                .status(),
            StatusCode::OK
        );
    }
    let queued = refresh_jobs(&state).await - jobs_before;
    assert!((1..=2).contains(&queued), "{queued} refresh jobs");
    wait_for_refreshes(&state).await;
    let log = app.google_requests();
    let lists = of_route(&log, EVENTS_LIST, Some("alice@example.com"));
    assert!((1..=2).contains(&lists.len()), "{lists:?}");

    // A flood on one genuine channel meets that channel's budget: 503 with Retry-After, which Google
    // retries (a 4xx it would drop).
    let mut refused = None;
    for _ in 0..1_000 {
        let response = app.post_push("live", Some("right-token"), "exists").await;
        if response.status() != StatusCode::OK {
            refused = Some(response);
            break;
        }
    }
    let refused = refused.expect("the channel's budget ran out");
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(refused.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn disconnecting_an_account_stops_its_push_channels_before_revoking_the_grant() {
    let app = TestApp::spawn().await;
    app.sign_in("alice@example.com").await;
    app.connect_account("alice.work@example.com").await;
    let account = app.account_id("alice.work@example.com").await;
    let calendar_id = uuid(&primary(&app.refresh_calendars(&account).await)["id"]);
    let state = app.app_state().await;
    wait_idle(&state).await;
    assert_eq!(live_channels(&state, calendar_id).await.len(), 1);
    app.forget_google_requests().await;

    assert_eq!(
        app.disconnect_account(&account).await["data"]["disconnectGoogleAccount"],
        true
    );

    let log = app.google_requests();
    let stop = log
        .iter()
        .position(|r| is_route(r, STOP))
        .unwrap_or_else(|| panic!("no channels/stop in {log:?}"));
    assert_eq!(log[stop]["status"], 204);
    let revoke = log
        .iter()
        .position(|r| r["path"] == "/revoke")
        .unwrap_or_else(|| panic!("no revoke in {log:?}"));
    assert!(stop < revoke);
    assert!(live_channels(&state, calendar_id).await.is_empty());
}

#[tokio::test]
async fn renewal_saves_the_new_channel_before_stopping_the_old_and_keeps_it_on_failure() {
    let app = TestApp::spawn_with(no_workers).await;
    app.sign_in("alice@example.com").await;
    let account = app.account_id("alice@example.com").await;
    let calendar_id = uuid(&primary(&app.refresh_calendars(&account).await)["id"]);
    let state = app.app_state().await;
    let calendar = calendar_rows::Entity::find_by_id(calendar_id)
        .one(&state.db)
        .await
        .expect("query")
        .expect("row");
    let old = push::open_channel(&state, &calendar, Duration::from_secs(60))
        .await
        .expect("short channel");
    assert!(old.expires_at <= Utc::now() + chrono::Duration::seconds(61));
    app.forget_google_requests().await;

    let report = push::renew_expiring(&state, Utc::now(), push::RENEW_MARGIN, push::CHANNEL_TTL)
        .await
        .expect("renew");

    assert_eq!((report.renewed, report.failed), (1, 0));
    let old_after = push_channels::Entity::find_by_id(old.id)
        .one(&state.db)
        .await
        .expect("query")
        .expect("old row");
    let stopped_at = old_after.stopped_at.expect("old channel stopped");
    let live = live_channels(&state, calendar_id).await;
    assert_eq!(live.len(), 1);
    assert!(
        live[0].created_at <= stopped_at,
        "saved before the old one was stopped"
    );
    assert!(live[0].expires_at > Utc::now() + chrono::Duration::days(6));
    let log = app.google_requests();
    let watch = log.iter().position(|r| is_route(r, WATCH)).expect("watch");
    let stop = log.iter().position(|r| is_route(r, STOP)).expect("stop");
    assert!(watch < stop);

    // A failed renewal keeps the expiring channel, to be renewed next time.
    let short = push::open_channel(&state, &calendar, Duration::from_secs(60))
        .await
        .expect("short channel");
    app.emulator_control(
        "/emulator/faults",
        json!({ "method": "POST", "path": "*/events/watch", "status": 403,
                "reason": "forbiddenForNonOrganizer", "times": 1 }),
    )
    .await;
    let report = push::renew_expiring(&state, Utc::now(), push::RENEW_MARGIN, push::CHANNEL_TTL)
        .await
        .expect("renew");
    assert_eq!((report.renewed, report.failed), (0, 1));
    let short_after = push_channels::Entity::find_by_id(short.id)
        .one(&state.db)
        .await
        .expect("query")
        .expect("row");
    assert_eq!(short_after.stopped_at, None);
}

// -------------------------------------------------------------------------------------------------
// Retry-After
// -------------------------------------------------------------------------------------------------

/// Workers on `state` that run only the real `calendar.refresh` handler (no periodic job that could
/// queue or move a refresh meanwhile), with short polling.
fn refresh_workers(state: &AppState) -> WorkerPool {
    let all = chronos::app::job_handlers();
    let refresh = all
        .get(calendars::jobs::REFRESH_EVENTS)
        .expect("the refresh handler")
        .clone();
    let mut handlers = JobHandlers::default();
    handlers.register_fn(calendars::jobs::REFRESH_EVENTS, move |state, job| {
        let refresh = refresh.clone();
        async move { refresh.run(&state, &job).await }
    });
    let config = WorkerConfig {
        workers: 1,
        poll_interval: Duration::from_millis(20),
        ..WorkerConfig::default()
    };
    WorkerPool::start(state, Arc::new(handlers), config)
}

/// The calendar's queued refresh job (found by its dedupe key, which a claim clears).
async fn queued_refresh_job(state: &AppState, calendar_id: Uuid) -> jobs::Model {
    jobs::Entity::find()
        .filter(jobs::Column::DedupeKey.eq(format!("{}:{calendar_id}", calendars::jobs::REFRESH_EVENTS)))
        .one(&state.db)
        .await
        .expect("jobs")
        .expect("the calendar's refresh job")
}

/// Waits until job `id` has made `attempts` attempts and is `status`.
async fn wait_for_attempt(state: &AppState, id: Uuid, attempts: i32, status: JobStatus) -> jobs::Model {
    let load = || async {
        jobs::Entity::find_by_id(id)
            .one(&state.db)
            .await
            .expect("jobs")
            .expect("the job")
    };
    for _ in 0..800 {
        let job = load().await;
        if job.attempts == attempts && job.status == status {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "expected attempt {attempts} to leave the job {status:?}: {:?}",
        load().await
    );
}

#[tokio::test]
async fn a_refresh_google_answers_busy_goes_back_to_the_queue_until_its_retry_after() {
    let app = TestApp::spawn_with(no_workers).await;
    app.sign_in("alice@example.com").await;
    let gid = "alice@example.com";
    let account = app.account_id(gid).await;
    let calendar_id = uuid(&primary(&app.refresh_calendars(&account).await)["id"]);
    let state = app.app_state().await;
    // Queued, and no worker runs it yet.
    calendars::jobs::enqueue_events_refresh(&state, calendar_id)
        .await
        .expect("enqueue");
    let queued = queued_refresh_job(&state, calendar_id).await;
    assert_eq!((queued.status, queued.attempts), (JobStatus::Queued, 0));

    // Busy for two minutes: far longer than a worker waits, so the job goes back to the queue for then.
    app.emulator_control(
        "/emulator/faults",
        json!({ "method": "GET", "path": "/calendar/v3/calendars/*/events", "status": 503,
                "retryAfter": 120, "times": 1 }),
    )
    .await;
    app.forget_google_requests().await;
    let started = Utc::now();
    let workers = refresh_workers(&state);
    let job = wait_for_attempt(&state, queued.id, 1, JobStatus::Queued).await;
    let settled = Utc::now();
    workers.stop().await;
    assert!(
        job.run_at >= started + chrono::Duration::seconds(119)
            && job.run_at <= settled + chrono::Duration::seconds(121),
        "rescheduled for {} (attempt between {started} and {settled})",
        job.run_at
    );
    let error = job.last_error.clone().unwrap_or_default();
    assert!(error.starts_with("UPSTREAM_UNAVAILABLE"), "{error}");
    let lists = of_route(&app.google_requests(), EVENTS_LIST, Some(gid))
        .into_iter()
        .map(|r| r["status"].clone())
        .collect::<Vec<_>>();
    assert_eq!(lists, [json!(503)], "one listing, and no retry in process");
    assert!(
        live_summaries(&cached(&state, calendar_id).await).is_empty()
            && event_rows(&state, calendar_id).await == 0
    );

    // A short Retry-After is waited for in process: the same attempt lists again and succeeds.
    GoogleUser::new(&app, gid).insert(gid, "After the wait", 3).await;
    let mut due = job.into_active_model();
    due.run_at = Set(Utc::now());
    due.update(&state.db).await.expect("make the job due");
    app.emulator_control(
        "/emulator/faults",
        json!({ "method": "GET", "path": "/calendar/v3/calendars/*/events", "status": 429,
                "retryAfter": 1, "times": 1 }),
    )
    .await;
    app.forget_google_requests().await;
    let workers = refresh_workers(&state);
    wait_for_attempt(&state, queued.id, 2, JobStatus::Done).await;
    workers.stop().await;
    let lists = of_route(&app.google_requests(), EVENTS_LIST, Some(gid))
        .into_iter()
        .map(|r| r["status"].clone())
        .collect::<Vec<_>>();
    assert_eq!(lists, [json!(429), json!(200)]);
    assert_eq!(
        live_summaries(&cached(&state, calendar_id).await),
        ["After the wait"]
    );
}

/// Junk notifications from the address Google's come from spend nothing of a real channel's budget.
#[tokio::test]
async fn ten_thousand_junk_notifications_do_not_keep_a_genuine_one_out() {
    use futures::StreamExt as _;
    // Rate limits on, as in production (tests run without them otherwise).
    let (app, state, calendar_id) = pushed_app_with(|s| s.rate_limits.api_per_min = 600).await;
    let refreshes_before = refresh_jobs(&state).await;
    let junk = futures::stream::iter(0..10_000)
        .map(|i| {
            let app = &app;
            async move {
                app.post_push(&format!("junk-{}", i % 97), Some("not-the-token"), "exists")
                    .await
                    .status()
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    assert!(
        junk.iter().all(|status| *status == StatusCode::OK),
        "junk answered other than 200"
    );
    assert_eq!(refresh_jobs(&state).await, refreshes_before, "junk queued work");

    // The genuine notification, sent by the emulator from the same address, is acted on.
    let gid = "alice@example.com";
    GoogleUser::new(&app, gid).insert(gid, "Genuine", 3).await;
    let started = tokio::time::Instant::now();
    assert_eq!(wait_for_summaries(&state, calendar_id, 1).await, ["Genuine"]);
    // Before channels were checked ahead of the limit, the junk spent the address's budget, the genuine
    // notification got 429 (which Google never retries) and the change never arrived.
    println!("genuine change cached {:?} after the change", started.elapsed());
}
