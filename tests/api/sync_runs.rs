//! Sync runs end to end over HTTP against the emulator: one user, two Google accounts, one calendar in
//! each. Runs are started with `triggerSync` and executed by the server's job workers; the test waits for
//! the run row to finish. Google-side edits are made through the emulator's Calendar API as the users.
//!
//! Push notifications would start runs on their own (after a refresh that found changes) and make the
//! counts of a given run depend on timing, so every fixture silences push (forgets the channels) unless a
//! test is about push.

use std::{collections::BTreeMap, time::Duration};

use chrono::{DateTime, TimeDelta, Timelike, Utc};
use chronos::entities::{
    enums::{SyncConfigStatus, SyncRunStatus},
    event_links, push_channels, sync_configs, sync_runs,
};
use reqwest::Method;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::TestApp;

pub const SOURCE: &str = "source@example.com";
pub const DESTINATION: &str = "destination@example.com";

/// How long a run may take in these tests.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

const RUN_FIELDS: &str = "id configId trigger status startedAt finishedAt created updated deleted skipped failed googleCalls conflicts error";

/// A signed-in user with two Google accounts and their primary calendars known to Chronos.
pub struct World {
    pub app: TestApp,
    pub db: DatabaseConnection,
    /// Chronos ids of the two primary calendars.
    pub source_calendar: String,
    pub destination_calendar: String,
}

impl World {
    pub async fn new() -> Self {
        Self::set_up(TestApp::spawn().await, true, true).await
    }

    /// Push notifications stay on: a change at Google starts a run by itself.
    pub async fn with_push() -> Self {
        Self::set_up(TestApp::spawn().await, true, false).await
    }

    /// On `app` as it was spawned (its own settings and emulator), waiting for jobs, push silenced.
    pub async fn on(app: TestApp) -> Self {
        Self::set_up(app, true, true).await
    }

    /// For a server without workers: nothing waits for jobs (someone else runs them).
    pub async fn without_workers(app: TestApp) -> Self {
        Self::set_up(app, false, true).await
    }

    async fn set_up(app: TestApp, wait_for_jobs: bool, silence_push: bool) -> Self {
        app.emulator().create_account(SOURCE, Some("Source"));
        app.emulator().create_account(DESTINATION, Some("Destination"));
        app.sign_in(SOURCE).await;
        app.connect_account(DESTINATION).await;
        let db = chronos::db::connect(&app.server.db.url).await.expect("connect");
        let mut world = Self {
            app,
            db,
            source_calendar: String::new(),
            destination_calendar: String::new(),
        };
        let accounts = world.app.accounts().await;
        for account in accounts.as_array().expect("accounts") {
            let data = world
                .app
                .data(
                    "mutation($id: ID!) { refreshCalendars(accountId: $id) { id googleCalendarId } }",
                    json!({ "id": account["id"] }),
                )
                .await;
            for calendar in data["refreshCalendars"].as_array().expect("calendars") {
                let id = calendar["id"].as_str().expect("id").to_owned();
                match calendar["googleCalendarId"].as_str() {
                    Some(SOURCE) => world.source_calendar = id,
                    Some(DESTINATION) => world.destination_calendar = id,
                    _ => {}
                }
            }
        }
        assert!(!world.source_calendar.is_empty() && !world.destination_calendar.is_empty());
        if wait_for_jobs {
            world.idle().await;
        }
        if silence_push {
            world.silence_push().await;
        }
        world
    }

    /// Waits until the job queue has nothing due or running.
    pub async fn idle(&self) {
        assert!(
            chronos::jobs::wait_idle(&self.db, RUN_TIMEOUT)
                .await
                .expect("wait_idle"),
            "jobs still running after {RUN_TIMEOUT:?}"
        );
    }

    /// Forgets the push channels: notifications are then ignored, and runs happen only when asked.
    pub async fn silence_push(&self) {
        push_channels::Entity::delete_many()
            .exec(&self.db)
            .await
            .expect("forget channels");
    }

    /// Creates a sync config from the source to the destination calendar; `extra` adds input fields.
    pub async fn config(&self, direction: &str, extra: Value) -> String {
        let mut input = json!({
            "sourceCalendarId": self.source_calendar,
            "destinationCalendarId": self.destination_calendar,
            "direction": direction,
        });
        if let (Some(input), Some(extra)) = (input.as_object_mut(), extra.as_object()) {
            input.extend(extra.clone());
        }
        let data = self
            .app
            .data(
                "mutation($input: CreateSyncConfigInput!) { createSyncConfig(input: $input) { id } }",
                json!({ "input": input }),
            )
            .await;
        data["createSyncConfig"]["id"]
            .as_str()
            .expect("config id")
            .to_owned()
    }

    /// `triggerSync` (with the override when asked); returns the run as the mutation answered.
    pub async fn trigger(&self, config_id: &str, allow_mass_delete: bool) -> Value {
        let query = format!(
            "mutation($id: ID!, $allow: Boolean) {{ triggerSync(configId: $id, allowMassDelete: $allow) {{ {RUN_FIELDS} }} }}"
        );
        let data = self
            .app
            .data(&query, json!({ "id": config_id, "allow": allow_mass_delete }))
            .await;
        data["triggerSync"].clone()
    }

    /// Triggers a run and waits for it to finish; returns its row.
    pub async fn sync(&self, config_id: &str) -> sync_runs::Model {
        self.sync_with(config_id, false).await
    }

    pub async fn sync_with(&self, config_id: &str, allow_mass_delete: bool) -> sync_runs::Model {
        let run = self.trigger(config_id, allow_mass_delete).await;
        let run_id = Uuid::parse_str(run["id"].as_str().expect("run id")).expect("uuid");
        let finished = self.finished(run_id).await;
        self.idle().await;
        finished
    }

    /// Waits for the run to reach a final status.
    pub async fn finished(&self, run_id: Uuid) -> sync_runs::Model {
        let deadline = tokio::time::Instant::now() + RUN_TIMEOUT;
        loop {
            let run = sync_runs::Entity::find_by_id(run_id)
                .one(&self.db)
                .await
                .expect("run row")
                .expect("run exists");
            if matches!(
                run.status,
                SyncRunStatus::Succeeded | SyncRunStatus::Partial | SyncRunStatus::Failed
            ) {
                return run;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "run {run_id} did not finish: {run:?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub async fn config_row(&self, config_id: &str) -> sync_configs::Model {
        sync_configs::Entity::find_by_id(Uuid::parse_str(config_id).expect("uuid"))
            .one(&self.db)
            .await
            .expect("config row")
            .expect("config exists")
    }

    pub async fn links(&self, config_id: &str) -> u64 {
        event_links::Entity::find()
            .filter(event_links::Column::ConfigId.eq(Uuid::parse_str(config_id).expect("uuid")))
            .count(&self.db)
            .await
            .expect("links")
    }

    /// The Calendar API as the owner of `email`; returns status and JSON body (null when empty).
    pub async fn google(&self, email: &str, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
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

    /// Inserts an event into the primary calendar of `email`; returns its id.
    pub async fn insert(&self, email: &str, event: Value) -> String {
        let (status, body) = self
            .google(
                email,
                Method::POST,
                &format!("calendars/{email}/events"),
                Some(event),
            )
            .await;
        assert_eq!(status, 200, "insert: {body}");
        body["id"].as_str().expect("id").to_owned()
    }

    pub async fn patch(&self, email: &str, event_id: &str, patch: Value) {
        let (status, body) = self
            .google(
                email,
                Method::PATCH,
                &format!("calendars/{email}/events/{event_id}"),
                Some(patch),
            )
            .await;
        assert_eq!(status, 200, "patch: {body}");
    }

    pub async fn delete(&self, email: &str, event_id: &str) {
        let (status, body) = self
            .google(
                email,
                Method::DELETE,
                &format!("calendars/{email}/events/{event_id}"),
                None,
            )
            .await;
        assert_eq!(status, 204, "delete: {body}");
    }

    /// The live events of the primary calendar of `email` (masters, singles and exceptions), by id.
    pub async fn events(&self, email: &str) -> BTreeMap<String, Value> {
        let mut events = BTreeMap::new();
        let mut page_token: Option<String> = None;
        loop {
            let mut path = format!("calendars/{email}/events?maxResults=2500&showDeleted=false");
            if let Some(token) = &page_token {
                path.push_str(&format!("&pageToken={token}"));
            }
            let (status, body) = self.google(email, Method::GET, &path, None).await;
            assert_eq!(status, 200, "list: {body}");
            for item in body["items"].as_array().cloned().unwrap_or_default() {
                if item["status"] != "cancelled" {
                    events.insert(item["id"].as_str().expect("id").to_owned(), item);
                }
            }
            match body["nextPageToken"].as_str() {
                Some(token) => page_token = Some(token.to_owned()),
                None => return events,
            }
        }
    }

    /// Live events of `email` carrying a mirror marker, by id.
    pub async fn mirrors(&self, email: &str) -> BTreeMap<String, Value> {
        self.events(email)
            .await
            .into_iter()
            .filter(|(_, event)| is_mirror(event))
            .collect()
    }

    /// Live events of `email` without a mirror marker, by id.
    pub async fn originals(&self, email: &str) -> BTreeMap<String, Value> {
        self.events(email)
            .await
            .into_iter()
            .filter(|(_, event)| !is_mirror(event))
            .collect()
    }

    /// Forgets the emulator's request log.
    pub async fn forget_requests(&self) {
        let response = self
            .app
            .client
            .delete(self.app.emulator_url("/emulator/requests"))
            .send()
            .await
            .expect("control API");
        assert!(response.status().is_success());
    }

    /// Requests to Google since the log was last forgotten, as `METHOD route`.
    pub fn requests(&self) -> Vec<String> {
        self.app
            .emulator()
            .requests()
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|r| {
                format!(
                    "{} {}",
                    r["method"].as_str().unwrap_or_default(),
                    r["path"].as_str().unwrap_or_default()
                )
            })
            .collect()
    }

    /// Emulator control call that must succeed; returns its JSON answer.
    pub async fn control(&self, method: Method, path: &str, body: Value) -> Value {
        let response = self
            .app
            .client
            .request(method, self.app.emulator_url(path))
            .json(&body)
            .send()
            .await
            .expect("control API");
        assert!(response.status().is_success(), "{path}: {}", response.status());
        response.json().await.unwrap_or(Value::Null)
    }
}

pub fn is_mirror(event: &Value) -> bool {
    event["extendedProperties"]["private"]["chronosMirrorConfig"].is_string()
}

/// The origin id a mirror names.
pub fn origin_of(mirror: &Value) -> String {
    mirror["extendedProperties"]["private"]["chronosMirrorOrigin"]
        .as_str()
        .expect("origin")
        .to_owned()
}

/// A whole hour `days` from now (UTC).
pub fn hour(days: i64, hour: u32) -> DateTime<Utc> {
    (Utc::now() + TimeDelta::days(days))
        .with_hour(hour)
        .and_then(|t| t.with_minute(0))
        .and_then(|t| t.with_second(0))
        .and_then(|t| t.with_nanosecond(0))
        .expect("valid hour")
}

/// A timed event body: `summary`, one hour from `start`.
pub fn timed(summary: &str, start: DateTime<Utc>) -> Value {
    json!({
        "summary": summary,
        "description": format!("about {summary}"),
        "location": "Room 1",
        "start": { "dateTime": start.to_rfc3339(), "timeZone": "Europe/Berlin" },
        "end": { "dateTime": (start + TimeDelta::hours(1)).to_rfc3339(), "timeZone": "Europe/Berlin" },
    })
}

pub fn start_of(event: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(event["start"]["dateTime"].as_str().expect("dateTime"))
        .expect("rfc3339")
        .with_timezone(&Utc)
}

/// Mirrors of `originals` found among `mirrors`, by origin id: one each, with the origin's summary.
fn assert_mirrored(originals: &BTreeMap<String, Value>, mirrors: &BTreeMap<String, Value>) {
    let by_origin: BTreeMap<String, &Value> = mirrors.values().map(|m| (origin_of(m), m)).collect();
    assert_eq!(
        by_origin.len(),
        mirrors.len(),
        "two mirrors of one origin: {mirrors:#?}"
    );
    assert_eq!(
        by_origin.keys().collect::<Vec<_>>(),
        originals.keys().collect::<Vec<_>>(),
        "every original has one mirror"
    );
    for (id, original) in originals {
        let mirror = by_origin[id];
        assert_eq!(mirror["summary"], original["summary"]);
        assert_eq!(start_of(mirror), start_of(original));
    }
}

#[tokio::test]
async fn one_way_follows_the_source_and_undoes_edits_of_mirrors() {
    let world = World::new().await;
    let config = world.config("ONE_WAY", json!({})).await;
    let standup = world.insert(SOURCE, timed("Standup", hour(1, 9))).await;
    let review = world.insert(SOURCE, timed("Review", hour(2, 14))).await;
    let lunch = world.insert(SOURCE, timed("Lunch", hour(3, 12))).await;

    let run = world.sync(&config).await;
    assert_eq!(run.status, SyncRunStatus::Succeeded, "{run:?}");
    assert_eq!((run.created, run.updated, run.deleted, run.failed), (3, 0, 0, 0));
    assert_mirrored(&world.originals(SOURCE).await, &world.mirrors(DESTINATION).await);
    assert_eq!(world.links(&config).await, 3);

    // Rename, move and delete at the source.
    world
        .patch(SOURCE, &standup, json!({ "summary": "Daily standup" }))
        .await;
    let moved = hour(5, 16);
    world
        .patch(
            SOURCE,
            &review,
            json!({
                "start": { "dateTime": moved.to_rfc3339(), "timeZone": "Europe/Berlin" },
                "end": { "dateTime": (moved + TimeDelta::hours(2)).to_rfc3339(), "timeZone": "Europe/Berlin" },
            }),
        )
        .await;
    world.delete(SOURCE, &lunch).await;
    let run = world.sync(&config).await;
    assert_eq!(run.status, SyncRunStatus::Succeeded, "{run:?}");
    assert_eq!((run.created, run.updated, run.deleted), (0, 2, 1));
    let mirrors = world.mirrors(DESTINATION).await;
    assert_mirrored(&world.originals(SOURCE).await, &mirrors);
    assert_eq!(mirrors.len(), 2);

    // A mirror edited at the destination is overwritten; a deleted one comes back.
    let by_origin: BTreeMap<String, String> =
        mirrors.iter().map(|(id, m)| (origin_of(m), id.clone())).collect();
    world
        .patch(
            DESTINATION,
            &by_origin[&standup],
            json!({ "summary": "Mine now" }),
        )
        .await;
    world.delete(DESTINATION, &by_origin[&review]).await;
    let run = world.sync(&config).await;
    assert_eq!(run.status, SyncRunStatus::Succeeded, "{run:?}");
    assert_eq!(run.created + run.updated, 2, "{run:?}");
    let mirrors = world.mirrors(DESTINATION).await;
    assert_mirrored(&world.originals(SOURCE).await, &mirrors);
    assert_eq!(
        mirrors.keys().collect::<Vec<_>>(),
        by_origin
            .values()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>(),
        "the deleted mirror came back under its own id"
    );

    // Runs with nothing to do list each calendar once and write nothing.
    for _ in 0..3 {
        world.forget_requests().await;
        let run = world.sync(&config).await;
        assert_eq!(run.status, SyncRunStatus::Succeeded, "{run:?}");
        assert_eq!(run.google_calls, 2, "{run:?}");
        assert_eq!((run.created, run.updated, run.deleted, run.failed), (0, 0, 0, 0));
        let requests = world.requests();
        assert!(
            requests
                .iter()
                .all(|r| r.starts_with("GET /calendar/v3/calendars/")),
            "only listings: {requests:?}"
        );
        assert_eq!(requests.len(), 2, "{requests:?}");
    }
    let config_row = world.config_row(&config).await;
    assert_eq!(config_row.status, SyncConfigStatus::Active);

    // The run history shows them, newest first.
    let data = world
        .app
        .data(
            &format!("query($id: ID!) {{ syncRuns(configId: $id, first: 2) {{ edges {{ node {{ {RUN_FIELDS} }} }} }} }}"),
            json!({ "id": config }),
        )
        .await;
    let newest = &data["syncRuns"]["edges"][0]["node"];
    assert_eq!(newest["status"], "SUCCEEDED");
    assert_eq!(newest["googleCalls"], 2);
    assert_eq!(newest["trigger"], "MANUAL");
}

/// Mirrors on `mirror_side` of the originals on the other side, by origin id.
async fn mirrors_by_origin(world: &World, mirror_side: &str) -> BTreeMap<String, Value> {
    world
        .mirrors(mirror_side)
        .await
        .into_values()
        .map(|m| (origin_of(&m), m))
        .collect()
}

/// Each side's originals are mirrored exactly once on the other side, and nothing else is there.
async fn assert_two_way_converged(world: &World) {
    for (origin_side, copy_side) in [(SOURCE, DESTINATION), (DESTINATION, SOURCE)] {
        assert_mirrored(
            &world.originals(origin_side).await,
            &world.mirrors(copy_side).await,
        );
    }
}

#[tokio::test]
async fn two_way_mirrors_both_sides_without_copying_mirrors_back() {
    let world = World::new().await;
    let config = world.config("TWO_WAY", json!({})).await;
    let mut source_ids = Vec::new();
    let mut destination_ids = Vec::new();
    for i in 0..3 {
        source_ids.push(
            world
                .insert(SOURCE, timed(&format!("A{i}"), hour(i + 1, 9)))
                .await,
        );
        destination_ids.push(
            world
                .insert(DESTINATION, timed(&format!("B{i}"), hour(i + 1, 15)))
                .await,
        );
    }
    let run = world.sync(&config).await;
    assert_eq!(run.status, SyncRunStatus::Succeeded, "{run:?}");
    assert_eq!(run.created, 6, "{run:?}");
    assert_eq!(world.events(SOURCE).await.len(), 6);
    assert_eq!(world.events(DESTINATION).await.len(), 6);
    assert_two_way_converged(&world).await;

    // A second cycle writes nothing: no mirror is copied back.
    world.forget_requests().await;
    let run = world.sync(&config).await;
    assert_eq!(
        (run.created, run.updated, run.deleted, run.failed),
        (0, 0, 0, 0),
        "{run:?}"
    );
    assert_eq!(run.google_calls, 2);
    assert!(world.requests().iter().all(|r| r.starts_with("GET ")));

    // Edits and deletions of originals on either side reach the other.
    world
        .patch(SOURCE, &source_ids[0], json!({ "summary": "A0 renamed" }))
        .await;
    world
        .patch(
            DESTINATION,
            &destination_ids[0],
            json!({ "summary": "B0 renamed" }),
        )
        .await;
    world.delete(SOURCE, &source_ids[1]).await;
    world.delete(DESTINATION, &destination_ids[1]).await;
    let run = world.sync(&config).await;
    assert_eq!(
        (run.created, run.updated, run.deleted, run.conflicts),
        (0, 2, 2, 0),
        "{run:?}"
    );
    assert_two_way_converged(&world).await;
    assert_eq!(world.events(SOURCE).await.len(), 4);

    // Edits and deletions of mirrors flow back to their originals.
    let on_destination = mirrors_by_origin(&world, DESTINATION).await;
    let on_source = mirrors_by_origin(&world, SOURCE).await;
    let copy_of_a0 = on_destination[&source_ids[0]]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let copy_of_b2 = on_source[&destination_ids[2]]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    world
        .patch(DESTINATION, &copy_of_a0, json!({ "summary": "A0 edited on B" }))
        .await;
    world.delete(SOURCE, &copy_of_b2).await;
    let run = world.sync(&config).await;
    assert_eq!((run.updated, run.deleted, run.conflicts), (1, 1, 0), "{run:?}");
    let source = world.originals(SOURCE).await;
    assert_eq!(source[&source_ids[0]]["summary"], "A0 edited on B");
    assert!(
        !world
            .originals(DESTINATION)
            .await
            .contains_key(&destination_ids[2])
    );
    assert_two_way_converged(&world).await;
    let run = world.sync(&config).await;
    assert_eq!((run.created, run.updated, run.deleted), (0, 0, 0), "{run:?}");

    // Both sides edited since the last run: the origin wins and one conflict is counted.
    let on_destination = mirrors_by_origin(&world, DESTINATION).await;
    let copy_of_a2 = on_destination[&source_ids[2]]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    world
        .patch(SOURCE, &source_ids[2], json!({ "summary": "A2 at the origin" }))
        .await;
    world
        .patch(DESTINATION, &copy_of_a2, json!({ "summary": "A2 on the copy" }))
        .await;
    let run = world.sync(&config).await;
    assert_eq!(run.conflicts, 1, "{run:?}");
    assert_eq!(
        world.originals(SOURCE).await[&source_ids[2]]["summary"],
        "A2 at the origin"
    );
    assert_eq!(
        world.events(DESTINATION).await[&copy_of_a2]["summary"],
        "A2 at the origin"
    );
    assert_two_way_converged(&world).await;

    // Every mirror names an original: no mirror of a mirror exists.
    for side in [SOURCE, DESTINATION] {
        for mirror in world.mirrors(side).await.values() {
            let other = if side == SOURCE { DESTINATION } else { SOURCE };
            assert!(world.originals(other).await.contains_key(&origin_of(mirror)));
        }
    }
    let run = world.sync(&config).await;
    assert_eq!(
        (run.created, run.updated, run.deleted, run.conflicts),
        (0, 0, 0, 0),
        "{run:?}"
    );
}

#[tokio::test]
async fn privacy_copies_stay_private_both_ways_and_converge() {
    let world = World::new().await;
    let config = world
        .config(
            "TWO_WAY",
            json!({
                "privacy": { "enabled": true, "placeholder": "Busy (work)" },
                "reversePrivacy": { "enabled": true, "placeholder": "Blocked (home)" },
            }),
        )
        .await;
    let secret = world.insert(SOURCE, timed("Salary talk", hour(2, 10))).await;
    let doctor = world.insert(DESTINATION, timed("Doctor", hour(3, 8))).await;
    world.sync(&config).await;

    let check = |events: BTreeMap<String, Value>, placeholder: &str, hidden: &str| {
        let mirrors: Vec<Value> = events.into_values().filter(is_mirror).collect();
        assert_eq!(mirrors.len(), 1);
        let mirror = &mirrors[0];
        assert_eq!(mirror["summary"], placeholder);
        assert!(mirror.get("description").is_none_or(Value::is_null), "{mirror}");
        assert!(mirror.get("location").is_none_or(Value::is_null), "{mirror}");
        assert!(!mirror.to_string().contains(hidden), "{mirror}");
        mirror.clone()
    };
    check(world.events(DESTINATION).await, "Busy (work)", "Salary");
    check(world.events(SOURCE).await, "Blocked (home)", "Doctor");

    // Source updates reach the copy, which stays private.
    let moved = hour(4, 11);
    world
        .patch(
            SOURCE,
            &secret,
            json!({
                "summary": "Salary talk, round two",
                "description": "bring the numbers",
                "start": { "dateTime": moved.to_rfc3339(), "timeZone": "Europe/Berlin" },
                "end": { "dateTime": (moved + TimeDelta::hours(1)).to_rfc3339(), "timeZone": "Europe/Berlin" },
            }),
        )
        .await;
    world
        .patch(DESTINATION, &doctor, json!({ "location": "Clinic" }))
        .await;
    let run = world.sync(&config).await;
    assert_eq!(run.status, SyncRunStatus::Succeeded, "{run:?}");
    let mirror = check(world.events(DESTINATION).await, "Busy (work)", "Salary");
    assert_eq!(start_of(&mirror), moved);
    check(world.events(SOURCE).await, "Blocked (home)", "Clinic");

    // Converged: the next runs write nothing.
    for _ in 0..2 {
        let run = world.sync(&config).await;
        assert_eq!(
            (run.created, run.updated, run.deleted, run.failed),
            (0, 0, 0, 0),
            "{run:?}"
        );
    }
}

/// The id Google gives an instance of series `master` starting at `start`.
fn instance_id(master: &str, start: DateTime<Utc>) -> String {
    format!("{master}_{}", start.format("%Y%m%dT%H%M%SZ"))
}

#[tokio::test]
async fn a_weekly_series_is_mirrored_as_one_series_with_its_exceptions() {
    let world = World::new().await;
    let config = world.config("ONE_WAY", json!({})).await;
    let first = hour(1, 9);
    let mut weekly = timed("Weekly sync", first);
    weekly["start"] = json!({ "dateTime": first.to_rfc3339(), "timeZone": "UTC" });
    weekly["end"] = json!({ "dateTime": (first + TimeDelta::hours(1)).to_rfc3339(), "timeZone": "UTC" });
    weekly["recurrence"] = json!(["RRULE:FREQ=WEEKLY;COUNT=6"]);
    let master = world.insert(SOURCE, weekly).await;
    // Move the second instance by two hours, cancel the fourth.
    let second = first + TimeDelta::weeks(1);
    let moved_to = second + TimeDelta::hours(2);
    world
        .patch(
            SOURCE,
            &instance_id(&master, second),
            json!({
                "start": { "dateTime": moved_to.to_rfc3339(), "timeZone": "UTC" },
                "end": { "dateTime": (moved_to + TimeDelta::hours(1)).to_rfc3339(), "timeZone": "UTC" },
            }),
        )
        .await;
    world
        .delete(SOURCE, &instance_id(&master, first + TimeDelta::weeks(3)))
        .await;

    let run = world.sync(&config).await;
    assert_eq!(run.status, SyncRunStatus::Succeeded, "{run:?}");
    let (status, body) = world
        .google(
            DESTINATION,
            Method::GET,
            &format!("calendars/{DESTINATION}/events?showDeleted=true&maxResults=2500"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let items = body["items"].as_array().cloned().unwrap_or_default();
    let masters: Vec<&Value> = items.iter().filter(|e| e["recurrence"].is_array()).collect();
    assert_eq!(masters.len(), 1, "one series: {items:#?}");
    let copy = masters[0]["id"].as_str().expect("id");
    assert_eq!(masters[0]["recurrence"], json!(["RRULE:FREQ=WEEKLY;COUNT=6"]));
    let exceptions: Vec<&Value> = items
        .iter()
        .filter(|e| e["recurringEventId"].as_str() == Some(copy))
        .collect();
    assert_eq!(exceptions.len(), 2, "two exceptions: {items:#?}");
    assert_eq!(items.len(), 3, "nothing else: {items:#?}");
    assert!(exceptions.iter().any(|e| e["status"] == "cancelled"));
    assert!(
        exceptions
            .iter()
            .any(|e| e["status"] != "cancelled" && start_of(e) == moved_to)
    );

    // The instances as Google expands them: five, one of them moved.
    let (_, body) = world
        .google(
            DESTINATION,
            Method::GET,
            &format!("calendars/{DESTINATION}/events?singleEvents=true&maxResults=2500"),
            None,
        )
        .await;
    let starts: Vec<DateTime<Utc>> = body["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(start_of)
        .collect();
    assert_eq!(starts.len(), 5, "{starts:?}");
    assert!(starts.contains(&moved_to));
    assert!(!starts.contains(&(first + TimeDelta::weeks(3))));

    let run = world.sync(&config).await;
    assert_eq!(
        (run.created, run.updated, run.deleted, run.failed),
        (0, 0, 0, 0),
        "{run:?}"
    );
}

#[tokio::test]
async fn injected_google_failures_never_duplicate_and_runs_converge() {
    use rand::{Rng, SeedableRng, rngs::StdRng};

    let world = World::new().await;
    let config = world.config("TWO_WAY", json!({})).await;
    // A new random history on every run; `SYNC_FAULT_SEED=<seed>` replays a printed one.
    let seed: u64 = std::env::var("SYNC_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("SYNC_FAULT_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut originals: BTreeMap<&str, Vec<String>> =
        BTreeMap::from([(SOURCE, vec![]), (DESTINATION, vec![])]);
    for side in [SOURCE, DESTINATION] {
        for i in 0..8 {
            let id = world
                .insert(side, timed(&format!("{side} {i}"), hour(i + 1, 10)))
                .await;
            originals.get_mut(side).expect("side").push(id);
        }
    }
    // 10 % of batch requests, batch parts and listings fail; some with retryable statuses, some not.
    for fault in [
        json!({ "path": "/batch/calendar/v3", "status": 500, "probability": 0.1 }),
        json!({ "method": "PUT", "path": "/calendar/v3/calendars/", "status": 400, "probability": 0.1 }),
        json!({ "path": "/calendar/v3/calendars/", "status": 503, "probability": 0.1 }),
    ] {
        world.control(Method::POST, "/emulator/faults", fault).await;
    }
    for round in 0..4 {
        for side in [SOURCE, DESTINATION] {
            let ids = originals.get_mut(side).expect("side");
            for _ in 0..3 {
                // Edits go around the faults (the emulator's control API is not faulted, the user's
                // calls are): retry until they land.
                match rng.random_range(0..4) {
                    0 => {
                        let id = loop {
                            let (status, body) = world
                                .google(
                                    side,
                                    Method::POST,
                                    &format!("calendars/{side}/events"),
                                    Some(timed(
                                        &format!("{side} r{round}"),
                                        hour(rng.random_range(1..20), 11),
                                    )),
                                )
                                .await;
                            if status == 200 {
                                break body["id"].as_str().expect("id").to_owned();
                            }
                        };
                        ids.push(id);
                    }
                    1 if !ids.is_empty() => {
                        let id = ids.remove(rng.random_range(0..ids.len()));
                        while !matches!(
                            world
                                .google(
                                    side,
                                    Method::DELETE,
                                    &format!("calendars/{side}/events/{id}"),
                                    None
                                )
                                .await
                                .0,
                            204 | 410
                        ) {}
                    }
                    _ if !ids.is_empty() => {
                        let id = ids[rng.random_range(0..ids.len())].clone();
                        let patch =
                            json!({ "summary": format!("{side} edited r{round} {}", rng.random::<u16>()) });
                        while world
                            .google(
                                side,
                                Method::PATCH,
                                &format!("calendars/{side}/events/{id}"),
                                Some(patch.clone()),
                            )
                            .await
                            .0
                            != 200
                        {}
                    }
                    _ => {}
                }
            }
        }
        let run = world.sync(&config).await;
        assert_ne!(run.status, SyncRunStatus::Failed, "{run:?}");
    }
    let faulted = world.app.emulator().requests().as_array().map_or(0, |log| {
        log.iter()
            .filter(|r| r["status"].as_u64().is_some_and(|s| s >= 400))
            .count()
    });
    assert!(faulted > 0, "the faults fired");
    world.control(Method::DELETE, "/emulator/faults", json!({})).await;
    // Two clean runs: the first repairs whatever failed, the second finds nothing left to do.
    let repair = world.sync(&config).await;
    assert_eq!(repair.status, SyncRunStatus::Succeeded, "{repair:?}");
    let quiet = world.sync(&config).await;
    assert_eq!(
        (quiet.created, quiet.updated, quiet.deleted, quiet.failed),
        (0, 0, 0, 0),
        "{quiet:?}"
    );
    for (side, ids) in &originals {
        let live: Vec<String> = world.originals(side).await.into_keys().collect();
        let mut expected = ids.clone();
        expected.sort();
        assert_eq!(live, expected, "originals on {side}");
    }
    assert_two_way_converged(&world).await;
    let total: usize = originals.values().map(Vec::len).sum();
    assert_eq!(world.links(&config).await, total as u64);
}

#[tokio::test]
async fn expired_tokens_failed_listings_and_revoked_grants_delete_nothing() {
    let world = World::new().await;
    let config = world.config("ONE_WAY", json!({})).await;
    let mut ids = Vec::new();
    for i in 0..12 {
        ids.push(
            world
                .insert(SOURCE, timed(&format!("E{i}"), hour(i % 20 + 1, 8)))
                .await,
        );
    }
    world.sync(&config).await;
    assert_eq!(world.mirrors(DESTINATION).await.len(), 12);

    // 410 on the source's sync token: a full listing merged into the cache; nothing deleted.
    world
        .app
        .emulator()
        .invalidate_sync_tokens(SOURCE)
        .expect("invalidate");
    let run = world.sync(&config).await;
    assert_eq!(run.status, SyncRunStatus::Succeeded, "{run:?}");
    assert_eq!((run.created, run.updated, run.deleted), (0, 0, 0), "{run:?}");
    assert!(run.google_calls >= 3, "the 410 and the full listing: {run:?}");
    assert_eq!(world.mirrors(DESTINATION).await.len(), 12);

    // The source's listing fails (every attempt): its deletions wait, the run is PARTIAL.
    world.delete(SOURCE, &ids[0]).await;
    world.delete(SOURCE, &ids[1]).await;
    world
        .control(
            Method::POST,
            "/emulator/faults",
            json!({ "method": "GET", "path": "/calendar/v3/calendars/source*/events", "status": 500 }),
        )
        .await;
    let run = world.sync(&config).await;
    assert_eq!(run.status, SyncRunStatus::Partial, "{run:?}");
    assert_eq!(run.deleted, 0, "{run:?}");
    assert!(
        run.error
            .as_deref()
            .unwrap_or_default()
            .contains("source calendar could not be listed")
    );
    assert_eq!(world.mirrors(DESTINATION).await.len(), 12);
    world.control(Method::DELETE, "/emulator/faults", json!({})).await;
    let run = world.sync(&config).await;
    assert_eq!(
        (run.status, run.deleted),
        (SyncRunStatus::Succeeded, 2),
        "{run:?}"
    );
    assert_eq!(world.mirrors(DESTINATION).await.len(), 10);

    // The source's grant is revoked: its calendar would list as nothing; the config waits instead.
    world
        .control(
            Method::POST,
            &format!("/emulator/accounts/{SOURCE}/revoke"),
            json!({}),
        )
        .await;
    let run = world.sync(&config).await;
    assert_eq!(run.status, SyncRunStatus::Failed, "{run:?}");
    assert_eq!(run.deleted, 0);
    let error = run.error.clone().unwrap_or_default();
    assert!(
        error.contains(SOURCE) && error.contains("connected again"),
        "{error}"
    );
    assert!(!error.to_lowercase().contains("token"), "no secrets: {error}");
    let row = world.config_row(&config).await;
    assert_eq!(row.status, SyncConfigStatus::NeedsReauth);
    assert_eq!(world.mirrors(DESTINATION).await.len(), 10);
    let data = world
        .app
        .data(
            "query($id: ID!) { syncConfig(id: $id) { status } }",
            json!({ "id": config }),
        )
        .await;
    assert_eq!(data["syncConfig"]["status"], "NEEDS_REAUTH");

    // Connected again: the next run resumes without duplicating anything.
    world.insert(SOURCE, timed("After reconnect", hour(6, 18))).await;
    world.app.connect_account(SOURCE).await;
    let run = world.sync(&config).await;
    assert_eq!(run.status, SyncRunStatus::Succeeded, "{run:?}");
    assert_eq!(run.created, 1, "{run:?}");
    assert_eq!(world.config_row(&config).await.status, SyncConfigStatus::Active);
    assert_mirrored(&world.originals(SOURCE).await, &world.mirrors(DESTINATION).await);
}

#[tokio::test]
async fn a_listing_that_fails_on_page_three_of_five_deletes_nothing() {
    let app = TestApp::spawn_with_emulator(
        google_emulator::EmulatorConfig {
            page_size_cap: Some(5),
            ..google_emulator::EmulatorConfig::without_quotas()
        },
        |_| {},
    )
    .await;
    let world = World::set_up(app, true, true).await;
    let config = world.config("ONE_WAY", json!({})).await;
    let mut ids = Vec::new();
    for i in 0..22 {
        ids.push(
            world
                .insert(SOURCE, timed(&format!("P{i}"), hour(i % 20 + 1, 9)))
                .await,
        );
    }
    assert_eq!(world.sync(&config).await.created, 22);

    // 22 changes at the source: its incremental listing has five pages of at most five.
    for id in &ids[..2] {
        world.delete(SOURCE, id).await;
    }
    for id in &ids[2..] {
        world.patch(SOURCE, id, json!({ "location": "Room 2" })).await;
    }
    world
        .control(
            Method::POST,
            "/emulator/faults",
            json!({ "method": "GET", "path": "/calendar/v3/calendars/source*/events", "status": 500, "skip": 2 }),
        )
        .await;
    world.forget_requests().await;
    let run = world.sync(&config).await;
    assert_eq!(
        (run.status, run.created, run.updated, run.deleted),
        (SyncRunStatus::Partial, 0, 0, 0),
        "{run:?}"
    );
    let pages: Vec<String> = world
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("GET /calendar/v3/calendars/source"))
        .collect();
    assert!(
        pages.len() > 3,
        "pages 1 and 2 answered, page 3 failed with its retries: {pages:?}"
    );
    assert_eq!(world.mirrors(DESTINATION).await.len(), 22, "no mirror deleted");

    world.control(Method::DELETE, "/emulator/faults", json!({})).await;
    let run = world.sync(&config).await;
    assert_eq!(
        (run.status, run.updated, run.deleted),
        (SyncRunStatus::Succeeded, 20, 2),
        "{run:?}"
    );
    assert_mirrored(&world.originals(SOURCE).await, &world.mirrors(DESTINATION).await);
}

#[tokio::test]
async fn the_mass_delete_guard_pauses_until_the_override() {
    let world = World::new().await;
    let config = world.config("ONE_WAY", json!({})).await;
    let mut ids = Vec::new();
    for i in 0..40 {
        ids.push(
            world
                .insert(SOURCE, timed(&format!("M{i}"), hour(i % 30 + 1, 7)))
                .await,
        );
    }
    let run = world.sync(&config).await;
    assert_eq!(run.created, 40, "{run:?}");
    for id in &ids[..20] {
        world.delete(SOURCE, id).await;
    }
    world.insert(SOURCE, timed("New one", hour(2, 20))).await;

    let run = world.sync(&config).await;
    assert_eq!(run.status, SyncRunStatus::Failed, "{run:?}");
    assert_eq!(
        (run.created, run.deleted),
        (1, 0),
        "the rest applies, no deletion: {run:?}"
    );
    let error = run.error.clone().unwrap_or_default();
    assert!(error.contains("20 of 40"), "{error}");
    let row = world.config_row(&config).await;
    assert_eq!(row.status, SyncConfigStatus::Paused);
    assert!(
        row.paused_reason
            .as_deref()
            .unwrap_or_default()
            .contains("allowMassDelete")
    );
    assert_eq!(world.mirrors(DESTINATION).await.len(), 41);

    // Without the override it halts again; with it the deletions go through and the config resumes.
    let run = world.sync(&config).await;
    assert_eq!((run.status, run.deleted), (SyncRunStatus::Failed, 0), "{run:?}");
    let run = world.sync_with(&config, true).await;
    assert_eq!(
        (run.status, run.deleted),
        (SyncRunStatus::Succeeded, 20),
        "{run:?}"
    );
    assert!(run.allow_mass_delete);
    let row = world.config_row(&config).await;
    assert_eq!(row.status, SyncConfigStatus::Active);
    assert!(row.paused_reason.is_none());
    assert_mirrored(&world.originals(SOURCE).await, &world.mirrors(DESTINATION).await);
}

#[tokio::test]
async fn the_mass_delete_limits_follow_the_settings() {
    let app = TestApp::spawn_with(|settings| {
        settings.mass_delete = chronos::config::MassDeleteLimits {
            percent: 60,
            at_least: 5,
        }
    })
    .await;
    let world = World::set_up(app, true, true).await;
    let config = world.config("ONE_WAY", json!({})).await;
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(
            world
                .insert(SOURCE, timed(&format!("L{i}"), hour(i + 1, 8)))
                .await,
        );
    }
    assert_eq!(world.sync(&config).await.created, 20);
    // Half the mirrors: within 60 %.
    for id in ids.drain(..10) {
        world.delete(SOURCE, &id).await;
    }
    let run = world.sync(&config).await;
    assert_eq!(
        (run.status, run.deleted),
        (SyncRunStatus::Succeeded, 10),
        "{run:?}"
    );
    // Seven of the remaining ten: over 60 % and at least five.
    for id in ids.drain(..7) {
        world.delete(SOURCE, &id).await;
    }
    let run = world.sync(&config).await;
    assert_eq!((run.status, run.deleted), (SyncRunStatus::Failed, 0), "{run:?}");
    assert!(run.error.unwrap_or_default().contains("7 of 10"));
    assert_eq!(world.config_row(&config).await.status, SyncConfigStatus::Paused);
}

#[tokio::test]
async fn quiet_runs_skip_planning_only_while_nothing_changed() {
    use chronos::sync::runner::quiet::{MARGIN, unchanged_since_last_run};

    let world = World::new().await;
    let config = world.config("ONE_WAY", json!({ "lookaheadDays": 30 })).await;
    let near = world.insert(SOURCE, timed("Near", hour(2, 9))).await;
    world.insert(SOURCE, timed("Far", hour(35, 9))).await;
    let run = world.sync(&config).await;
    assert_eq!(run.created, 1, "only the event inside the window: {run:?}");
    let skippable = |now: DateTime<Utc>| {
        let world = &world;
        let config = config.clone();
        async move {
            let row = world.config_row(&config).await;
            unchanged_since_last_run(&world.db, &row, Uuid::nil(), now)
                .await
                .expect("check")
                .is_some()
        }
    };
    // The last run wrote: the next one plans.
    assert!(!skippable(Utc::now()).await);
    tokio::time::sleep((MARGIN + TimeDelta::seconds(1)).to_std().expect("duration")).await;
    let run = world.sync(&config).await;
    assert_eq!((run.created, run.updated, run.deleted), (0, 0, 0), "{run:?}");

    // Nothing changed since a run that planned nothing: skippable, until the window reaches "Far".
    assert!(skippable(Utc::now()).await);
    assert!(!skippable(Utc::now() + TimeDelta::days(6)).await);
    let run = world.sync(&config).await;
    assert_eq!(run.status, SyncRunStatus::Succeeded);
    assert_eq!(
        (run.created, run.updated, run.deleted, run.google_calls),
        (0, 0, 0, 2),
        "{run:?}"
    );

    // An edit of the config, or a change listed from Google, makes the next run plan again.
    world
        .app
        .data(
            "mutation($id: ID!) { updateSyncConfig(id: $id, input: { destinationColorId: \"5\" }) { id } }",
            json!({ "id": config }),
        )
        .await;
    assert!(!skippable(Utc::now()).await);
    world
        .patch(SOURCE, &near, json!({ "summary": "Near, renamed" }))
        .await;
    let run = world.sync(&config).await;
    assert_eq!(run.updated, 1, "{run:?}");
    let mirror = world
        .mirrors(DESTINATION)
        .await
        .into_values()
        .next()
        .expect("mirror");
    assert_eq!(
        (mirror["summary"].as_str(), mirror["colorId"].as_str()),
        (Some("Near, renamed"), Some("5"))
    );
}

/// Recording a batch costs the same statements whatever the size of the calendars: a run that copies 50
/// new events runs the same statements on the events, their search entries and the links, with as many
/// values each, into calendars of 50 events as into calendars of 550. None of them deletes search
/// entries: rows just inserted have none (on PostgreSQL that delete read the whole index table when the
/// planner had no statistics, and the batch grew slower with every event cached).
#[tokio::test]
async fn a_sync_batch_runs_the_same_statements_whatever_the_calendar_size() {
    let world = World::new().await;
    let config = world.config("ONE_WAY", json!({})).await;
    let state = world.app.server_state().await;
    // Eight events a day from tomorrow on, all alike but for their times.
    let insert = |range: std::ops::Range<u32>| {
        for n in range {
            let start = hour(1 + i64::from(n / 8), 8 + n % 8);
            world
                .app
                .emulator()
                .insert_event(SOURCE, timed("Standup", start))
                .expect("insert");
        }
    };
    let mut measured = Vec::new();
    let mut inserted = 0;
    for size in [50, 550] {
        insert(inserted..size);
        let bulk = world.sync(&config).await;
        assert_eq!(bulk.status, SyncRunStatus::Succeeded, "{bulk:?}");
        // The next run lists back the bulk run's own writes; the measured one then lists only the new.
        world.sync(&config).await;
        insert(size..size + 50);
        inserted = size + 50;
        state.statements.start_recording();
        let run = world.sync(&config).await;
        let statements = state.statements.stop_recording();
        assert_eq!(run.status, SyncRunStatus::Succeeded, "{run:?}");
        assert_eq!(run.created, 50, "{run:?}");
        let on_events: Vec<(String, usize)> = statements
            .into_iter()
            .filter(|s| s.sql.contains("\"events\"") || s.sql.contains("\"event_"))
            .map(|s| (s.sql, s.values.len()))
            .collect();
        assert!(
            on_events
                .iter()
                .any(|(sql, _)| sql.starts_with("INSERT INTO \"event_search_tokens\"")),
            "positive control: the batch's search entries were recorded: {on_events:#?}"
        );
        assert!(
            !on_events
                .iter()
                .any(|(sql, _)| sql.starts_with("DELETE FROM \"event_search_tokens\"")),
            "no search entries deleted for new rows: {on_events:#?}"
        );
        measured.push(on_events);
    }
    // Each statement and its number of values, counted.
    let shape = |statements: &[(String, usize)]| {
        let mut shape: BTreeMap<(String, usize), usize> = BTreeMap::new();
        for statement in statements {
            *shape.entry(statement.clone()).or_default() += 1;
        }
        shape
    };
    let (small, large) = (shape(&measured[0]), shape(&measured[1]));
    let differing: Vec<_> = small
        .keys()
        .chain(large.keys())
        .filter(|key| small.get(*key) != large.get(*key))
        .map(|key| (key, small.get(key), large.get(key)))
        .collect();
    assert!(
        differing.is_empty(),
        "statements (with their number of values) run a different number of times for calendars of 50 \
         and of 550 events: {differing:#?}"
    );
}
