//! Sync configs and their run history over HTTP against the emulator: create with defaults, update,
//! delete; input rules naming their field; read-only calendars; another user's ids; removing the copies a
//! config wrote from Google alone (also after the source account lost access); `Event.mirrorOf`;
//! `syncRuns` pagination.
//!
//! The servers run without workers: no background refresh or sync run touches the calendars while a test
//! looks at them. The event cache is filled by calling the refresh directly on a second instance.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, TimeZone, Utc};
use chronos::{
    entities::{
        enums::{SyncRunStatus, SyncTrigger},
        events, sync_configs, sync_runs,
    },
    state::AppState,
    sync::mirror::{MIRROR_CONFIG_KEY, MIRROR_ORIGIN_KEY, MIRROR_ORIGIN_SIDE_KEY, Side, mirror_event_id},
};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, error_code};

const ALICE: &str = "alice@example.com";
const ALICE_WORK: &str = "alice.work@example.com";
const CONFIG_FIELDS: &str = "id source { id googleCalendarId } destination { id googleCalendarId } direction
    lookaheadDays lookbackDays privacy { enabled placeholder } reversePrivacy { enabled placeholder }
    destinationColorId reverseColorId enabled intervalMinutes nextRunAt status statusReason
    lastRun { id status } createdAt";
const RUN_FIELDS: &str = "id configId trigger status startedAt finishedAt created updated deleted skipped
    failed googleCalls conflicts error";

/// Alice signed in with two Google accounts: her own (primary calendar `alice@example.com`) and a work
/// account holding a secondary "Work" calendar.
struct Fixture {
    app: TestApp,
    /// A second instance on the same database, to fill the event cache directly.
    side: AppState,
    personal_account: String,
    work_account: String,
    /// Google calendar id of the work account's "Work" calendar.
    work_google_id: String,
}

impl Fixture {
    async fn new() -> Self {
        let app = TestApp::spawn_with(|settings| settings.scheduler_enabled = false).await;
        app.emulator().create_account(ALICE, None);
        app.emulator().create_account(ALICE_WORK, None);
        let work_google_id = app
            .emulator()
            .create_calendar(ALICE_WORK, "Work", Some("Europe/Berlin"))
            .expect("Work calendar")["id"]
            .as_str()
            .expect("calendar id")
            .to_owned();
        app.sign_in(ALICE).await;
        app.connect_account(ALICE_WORK).await;
        let accounts = app.accounts().await;
        let account = |email: &str| {
            accounts
                .as_array()
                .expect("accounts")
                .iter()
                .find(|a| a["email"] == email)
                .and_then(|a| a["id"].as_str())
                .expect("account")
                .to_owned()
        };
        let (personal_account, work_account) = (account(ALICE), account(ALICE_WORK));
        let side = app.app_state().await;
        let fixture = Self {
            app,
            side,
            personal_account,
            work_account,
            work_google_id,
        };
        fixture.refresh_calendars().await;
        fixture
    }

    /// Lists both accounts' calendars; Google calendar id -> calendar, per account.
    async fn refresh_calendars(&self) -> HashMap<String, Value> {
        let mut all = HashMap::new();
        for account in [&self.personal_account, &self.work_account] {
            let data = self
                .app
                .data(
                    "mutation($id: ID!) { refreshCalendars(accountId: $id) { id accountId googleCalendarId accessRole } }",
                    json!({ "id": account }),
                )
                .await;
            for calendar in data["refreshCalendars"].as_array().expect("calendars") {
                let key = format!(
                    "{}|{}",
                    calendar["accountId"].as_str().expect("account"),
                    calendar["googleCalendarId"].as_str().expect("google id")
                );
                all.insert(key, calendar.clone());
            }
        }
        all
    }

    /// The Chronos id of `google_id` as listed in `account`.
    async fn calendar_in(&self, account: &str, google_id: &str) -> String {
        self.refresh_calendars().await[&format!("{account}|{google_id}")]["id"]
            .as_str()
            .expect("calendar id")
            .to_owned()
    }

    async fn personal(&self) -> String {
        self.calendar_in(&self.personal_account, ALICE).await
    }

    async fn work(&self) -> String {
        self.calendar_in(&self.work_account, &self.work_google_id).await
    }

    async fn work_primary(&self) -> String {
        self.calendar_in(&self.work_account, ALICE_WORK).await
    }

    /// Fills the cache of a calendar from Google.
    async fn refresh_events(&self, calendar_id: &str) {
        chronos::calendars::refresh_events(&self.side, uuid(calendar_id))
            .await
            .unwrap_or_else(|e| panic!("refresh failed: {e:?}"));
    }

    /// Calls the emulator's Calendar API as `email`; returns status and JSON body (null when empty).
    async fn google(
        &self,
        email: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let token = self.app.emulator().issue_access_token(email).expect("token");
        let mut request = reqwest::Client::new()
            .request(method, self.app.emulator_url(&format!("/calendar/v3/{path}")))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("emulator request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Summaries of the live events (series masters and exceptions, not expanded) of a calendar at Google.
    async fn google_summaries(&self, email: &str, calendar: &str) -> Vec<String> {
        let (status, body) = self
            .google(
                email,
                reqwest::Method::GET,
                &format!("calendars/{calendar}/events?maxResults=2500"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let mut summaries: Vec<String> = body["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter(|e| e["status"] != "cancelled")
            .map(|e| e["summary"].as_str().unwrap_or_default().to_owned())
            .collect();
        summaries.sort();
        summaries
    }

    async fn create(&self, input: Value) -> Value {
        let query = format!(
            "mutation($input: CreateSyncConfigInput!) {{ createSyncConfig(input: $input) {{ {CONFIG_FIELDS} }} }}"
        );
        self.app.data(&query, json!({ "input": input })).await["createSyncConfig"].clone()
    }

    async fn try_create(&self, input: Value) -> Value {
        self.app
            .graphql(
                "mutation($input: CreateSyncConfigInput!) { createSyncConfig(input: $input) { id } }",
                json!({ "input": input }),
            )
            .await
    }

    async fn update(&self, id: &str, input: Value) -> Value {
        let query = format!(
            "mutation($id: ID!, $input: UpdateSyncConfigInput!) {{ updateSyncConfig(id: $id, input: $input) {{ {CONFIG_FIELDS} }} }}"
        );
        self.app.data(&query, json!({ "id": id, "input": input })).await["updateSyncConfig"].clone()
    }

    async fn try_update(&self, id: &str, input: Value) -> Value {
        self.app
            .graphql(
                "mutation($id: ID!, $input: UpdateSyncConfigInput!) { updateSyncConfig(id: $id, input: $input) { id } }",
                json!({ "id": id, "input": input }),
            )
            .await
    }

    async fn delete(&self, id: &str, remove_mirrors: Option<bool>) -> Value {
        self.app
            .graphql(
                "mutation($id: ID!, $remove: Boolean) { deleteSyncConfig(id: $id, removeMirrors: $remove) }",
                json!({ "id": id, "remove": remove_mirrors }),
            )
            .await
    }

    async fn config(&self, id: &str) -> Value {
        let query = format!("query($id: ID!) {{ syncConfig(id: $id) {{ {CONFIG_FIELDS} }} }}");
        self.app.graphql(&query, json!({ "id": id })).await
    }

    async fn configs(&self) -> Vec<Value> {
        let query = format!("{{ syncConfigs {{ {CONFIG_FIELDS} }} }}");
        self.app.data(&query, json!({})).await["syncConfigs"]
            .as_array()
            .expect("configs")
            .clone()
    }

    /// A ONE_WAY config from Alice's primary calendar into the Work calendar.
    async fn personal_to_work(&self, direction: &str) -> String {
        let input = json!({
            "sourceCalendarId": self.personal().await,
            "destinationCalendarId": self.work().await,
            "direction": direction,
        });
        self.create(input).await["id"]
            .as_str()
            .expect("config id")
            .to_owned()
    }

    /// `events` of one calendar in December 2026, with `mirrorOf`.
    async fn december(&self, calendar_id: &str) -> Vec<Value> {
        let data = self
            .app
            .data(
                "query($ids: [ID!]) { events(calendarIds: $ids, timeMin: \"2026-12-01T00:00:00Z\",
                    timeMax: \"2027-01-01T00:00:00Z\", first: 100) {
                    edges { node { summary recurringEventId mirrorOf { id direction } } } } }",
                json!({ "ids": [calendar_id] }),
            )
            .await;
        data["events"]["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .map(|edge| edge["node"].clone())
            .collect()
    }

    async fn emulator_control(&self, method: reqwest::Method, path: &str, body: Value) {
        let response = reqwest::Client::new()
            .request(method, self.app.emulator_url(path))
            .json(&body)
            .send()
            .await
            .expect("control API");
        assert!(response.status().is_success(), "{path}: {}", response.status());
    }
}

fn uuid(raw: &str) -> Uuid {
    Uuid::parse_str(raw).expect("uuid")
}

fn error_field(body: &Value) -> Option<&str> {
    body["errors"][0]["extensions"]["field"].as_str()
}

fn assert_bad_input(body: &Value, field: &str) {
    assert_eq!(error_code(body), Some("BAD_USER_INPUT"), "{body}");
    assert_eq!(error_field(body), Some(field), "{body}");
}

fn assert_not_found(body: &Value) {
    assert_eq!(error_code(body), Some("NOT_FOUND"), "{body}");
}

/// A copy as a run of `config` would have written it, of origin `origin` on the source side.
fn mirror(config: &str, origin: &str, summary: &str, day: u32) -> Value {
    json!({
        "id": mirror_event_id(uuid(config), Side::Source, origin),
        "summary": summary,
        "start": { "dateTime": format!("2026-12-{day:02}T10:00:00Z") },
        "end": { "dateTime": format!("2026-12-{day:02}T11:00:00Z") },
        "extendedProperties": { "private": {
            MIRROR_CONFIG_KEY: config, MIRROR_ORIGIN_KEY: origin, MIRROR_ORIGIN_SIDE_KEY: "SOURCE",
        } },
    })
}

fn plain(summary: &str, day: u32) -> Value {
    json!({
        "summary": summary,
        "start": { "dateTime": format!("2026-12-{day:02}T10:00:00Z") },
        "end": { "dateTime": format!("2026-12-{day:02}T11:00:00Z") },
    })
}

// -------------------------------------------------------------------------------------------------
// Create, update, delete
// -------------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_config_is_created_with_the_defaults_updated_and_deleted() {
    let f = Fixture::new().await;
    let (personal, work) = (f.personal().await, f.work().await);

    let created = f
        .create(
            json!({ "sourceCalendarId": personal, "destinationCalendarId": work, "direction": "ONE_WAY" }),
        )
        .await;
    let id = created["id"].as_str().expect("id").to_owned();
    assert_eq!(created["source"]["id"], personal.as_str());
    assert_eq!(created["source"]["googleCalendarId"], ALICE);
    assert_eq!(created["destination"]["id"], work.as_str());
    assert_eq!(created["direction"], "ONE_WAY");
    assert_eq!(
        (&created["lookaheadDays"], &created["lookbackDays"]),
        (&json!(90), &json!(0))
    );
    assert_eq!(
        created["privacy"],
        json!({ "enabled": false, "placeholder": "Busy" })
    );
    assert_eq!(
        created["reversePrivacy"],
        json!({ "enabled": false, "placeholder": "Busy" })
    );
    assert_eq!(created["destinationColorId"], Value::Null);
    assert_eq!(created["reverseColorId"], Value::Null);
    assert_eq!(created["enabled"], true);
    assert_eq!(created["intervalMinutes"], Value::Null);
    assert_eq!(created["nextRunAt"], Value::Null, "manual and push only");
    assert_eq!(created["status"], "ACTIVE");
    assert_eq!(created["statusReason"], Value::Null);
    assert_eq!(created["lastRun"], Value::Null);
    let created_at: DateTime<Utc> = created["createdAt"]
        .as_str()
        .expect("createdAt")
        .parse()
        .expect("instant");
    assert!((Utc::now() - created_at).num_seconds().abs() < 60);
    assert_eq!(f.configs().await, vec![created.clone()]);
    assert_eq!(f.config(&id).await["data"]["syncConfig"], created);

    // Every field at once; the interval schedules the next run one interval (plus up to 10%) ahead.
    let before = Utc::now();
    let updated = f
        .update(
            &id,
            json!({
                "lookaheadDays": 30, "lookbackDays": 7,
                "privacy": { "enabled": true, "placeholder": "  Away  " },
                "destinationColorId": "5", "reverseColorId": "11", "intervalMinutes": 60,
            }),
        )
        .await;
    assert_eq!(
        (&updated["lookaheadDays"], &updated["lookbackDays"]),
        (&json!(30), &json!(7))
    );
    assert_eq!(
        updated["privacy"],
        json!({ "enabled": true, "placeholder": "Away" })
    );
    assert_eq!(
        (&updated["destinationColorId"], &updated["reverseColorId"]),
        (&json!("5"), &json!("11"))
    );
    assert_eq!(updated["intervalMinutes"], 60);
    let next: DateTime<Utc> = updated["nextRunAt"]
        .as_str()
        .expect("scheduled")
        .parse()
        .expect("instant");
    assert!(next >= before + Duration::minutes(60), "{next}");
    assert!(next <= Utc::now() + Duration::minutes(66), "{next}");
    assert_eq!(updated["createdAt"], created["createdAt"]);

    // Omitted fields stay; a privacy choice without a placeholder keeps the current one; null clears a
    // colour; an unchanged schedule keeps its due time.
    let again = f
        .update(
            &id,
            json!({ "reversePrivacy": { "enabled": true }, "destinationColorId": null }),
        )
        .await;
    assert_eq!(
        again["reversePrivacy"],
        json!({ "enabled": true, "placeholder": "Busy" })
    );
    assert_eq!(again["privacy"], updated["privacy"]);
    assert_eq!(again["destinationColorId"], Value::Null);
    assert_eq!(again["reverseColorId"], "11");
    assert_eq!(again["lookaheadDays"], 30);
    assert_eq!(again["nextRunAt"], updated["nextRunAt"]);

    // Disabled, or without an interval: no scheduled run.
    let disabled = f.update(&id, json!({ "enabled": false })).await;
    assert_eq!(
        (&disabled["enabled"], &disabled["nextRunAt"]),
        (&json!(false), &Value::Null)
    );
    let enabled = f.update(&id, json!({ "enabled": true })).await;
    assert!(enabled["nextRunAt"].is_string(), "{enabled}");
    let manual = f.update(&id, json!({ "intervalMinutes": null })).await;
    assert_eq!(
        (&manual["intervalMinutes"], &manual["nextRunAt"]),
        (&Value::Null, &Value::Null)
    );
    let stored = sync_configs::Entity::find_by_id(uuid(&id))
        .one(&f.side.db)
        .await
        .expect("query")
        .expect("row");
    assert_eq!((stored.interval_minutes, stored.next_run_at), (None, None));

    // Created with an interval and colours from the start.
    let scheduled = f
        .create(json!({
            "sourceCalendarId": work, "destinationCalendarId": f.work_primary().await, "direction": "TWO_WAY",
            "intervalMinutes": 15, "enabled": true, "destinationColorId": "1", "reverseColorId": "2",
            "lookaheadDays": 730, "lookbackDays": 365,
            "privacy": { "enabled": true }, "reversePrivacy": { "enabled": true, "placeholder": "Blocked" },
        }))
        .await;
    assert_eq!(scheduled["direction"], "TWO_WAY");
    assert!(scheduled["nextRunAt"].is_string(), "{scheduled}");
    assert_eq!(
        scheduled["privacy"],
        json!({ "enabled": true, "placeholder": "Busy" })
    );
    assert_eq!(
        scheduled["reversePrivacy"],
        json!({ "enabled": true, "placeholder": "Blocked" })
    );
    assert_eq!(f.configs().await.len(), 2);

    assert_eq!(f.delete(&id, None).await["data"]["deleteSyncConfig"], true);
    assert_not_found(&f.config(&id).await);
    assert_not_found(&f.delete(&id, None).await);
    let left = f.configs().await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["id"], scheduled["id"]);
}

#[tokio::test]
async fn a_second_config_between_the_same_calendars_is_a_conflict() {
    let f = Fixture::new().await;
    let (personal, work) = (f.personal().await, f.work().await);
    let pair = |source: &str, destination: &str, direction: &str| json!({ "sourceCalendarId": source, "destinationCalendarId": destination, "direction": direction });
    f.create(pair(&personal, &work, "ONE_WAY")).await;
    for duplicate in [
        pair(&personal, &work, "ONE_WAY"),
        pair(&personal, &work, "TWO_WAY"),
        pair(&work, &personal, "TWO_WAY"),
    ] {
        let refused = f.try_create(duplicate.clone()).await;
        assert_eq!(error_code(&refused), Some("CONFLICT"), "{duplicate}: {refused}");
    }
    // The reverse direction one way copies other events (copies are never copied again): allowed.
    let reverse = f.create(pair(&work, &personal, "ONE_WAY")).await;
    assert_eq!(reverse["direction"], "ONE_WAY");
    assert_eq!(f.configs().await.len(), 2);
}

#[tokio::test]
async fn simultaneous_creates_of_one_pair_leave_exactly_one_config() {
    let f = Fixture::new().await;
    let (personal, work) = (f.personal().await, f.work().await);
    let input =
        json!({ "sourceCalendarId": personal, "destinationCalendarId": work, "direction": "TWO_WAY" });
    let answers = futures::future::join_all((0..8).map(|_| f.try_create(input.clone()))).await;
    let created = answers
        .iter()
        .filter(|a| a["data"]["createSyncConfig"]["id"].is_string())
        .count();
    let conflicts = answers
        .iter()
        .filter(|a| error_code(a) == Some("CONFLICT"))
        .count();
    assert_eq!((created, conflicts), (1, 7), "{answers:?}");
    assert_eq!(f.configs().await.len(), 1);
}

// -------------------------------------------------------------------------------------------------
// Input rules
// -------------------------------------------------------------------------------------------------

#[tokio::test]
async fn invalid_input_is_refused_naming_the_field() {
    let f = Fixture::new().await;
    let (personal, work) = (f.personal().await, f.work().await);
    let base = json!({ "sourceCalendarId": personal, "destinationCalendarId": work, "direction": "ONE_WAY" });
    let with = |extra: Value| {
        let mut input = base.clone();
        for (key, value) in extra.as_object().expect("object") {
            input[key] = value.clone();
        }
        input
    };
    let long = "x".repeat(101);
    let cases = [
        (
            json!({ "destinationCalendarId": personal }),
            "destinationCalendarId",
        ),
        (json!({ "destinationColorId": "12" }), "destinationColorId"),
        (json!({ "destinationColorId": "0" }), "destinationColorId"),
        (json!({ "destinationColorId": "blue" }), "destinationColorId"),
        (json!({ "reverseColorId": "05" }), "reverseColorId"),
        (json!({ "lookaheadDays": 0 }), "lookaheadDays"),
        (json!({ "lookaheadDays": 731 }), "lookaheadDays"),
        (json!({ "lookbackDays": -1 }), "lookbackDays"),
        (json!({ "lookbackDays": 366 }), "lookbackDays"),
        (
            json!({ "privacy": { "enabled": true, "placeholder": "" } }),
            "privacy.placeholder",
        ),
        (
            json!({ "privacy": { "enabled": true, "placeholder": "   " } }),
            "privacy.placeholder",
        ),
        (
            json!({ "reversePrivacy": { "enabled": false, "placeholder": long } }),
            "reversePrivacy.placeholder",
        ),
        (json!({ "intervalMinutes": 4 }), "intervalMinutes"),
        (json!({ "intervalMinutes": 10081 }), "intervalMinutes"),
    ];
    for (extra, field) in &cases {
        let refused = f.try_create(with(extra.clone())).await;
        assert_bad_input(&refused, field);
    }
    assert!(f.configs().await.is_empty(), "nothing was created");

    // The edges are accepted.
    let edges = f
        .create(with(json!({
            "lookaheadDays": 1, "lookbackDays": 365, "intervalMinutes": 10080,
            "privacy": { "enabled": true, "placeholder": "y".repeat(100) },
        })))
        .await;
    let id = edges["id"].as_str().expect("id");
    for (extra, field) in cases.iter().skip(1) {
        let refused = f.try_update(id, extra.clone()).await;
        assert_bad_input(&refused, field);
    }
    assert_eq!(
        f.config(id).await["data"]["syncConfig"],
        edges,
        "refused updates change nothing"
    );

    // The same Google calendar seen through a second account is still the same calendar.
    f.app
        .emulator()
        .share_calendar(ALICE, ALICE_WORK, "writer")
        .expect("share");
    let personal_seen_from_work = f.calendar_in(&f.work_account, ALICE).await;
    assert_ne!(personal_seen_from_work, personal);
    let refused = f
        .try_create(with(json!({ "destinationCalendarId": personal_seen_from_work })))
        .await;
    assert_bad_input(&refused, "destinationCalendarId");

    // Page sizes and cursors of the run history.
    for first in [0, 101] {
        let refused = f
            .app
            .graphql(
                "query($id: ID!, $first: Int) { syncRuns(configId: $id, first: $first) { edges { cursor } } }",
                json!({ "id": id, "first": first }),
            )
            .await;
        assert_bad_input(&refused, "first");
    }
    let refused = f
        .app
        .graphql(
            "query($id: ID!) { syncRuns(configId: $id, after: \"garbage\") { edges { cursor } } }",
            json!({ "id": id }),
        )
        .await;
    assert_bad_input(&refused, "after");
}

#[tokio::test]
async fn calendars_the_account_cannot_write_are_refused_where_copies_would_go() {
    let f = Fixture::new().await;
    let carol = "carol@example.com";
    f.app.emulator().create_account(carol, None);
    let team = f
        .app
        .emulator()
        .create_calendar(carol, "Team", None)
        .expect("Team")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let holidays = f
        .app
        .emulator()
        .create_calendar(carol, "Holidays", None)
        .expect("Holidays")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    f.app
        .emulator()
        .share_calendar(&team, ALICE_WORK, "reader")
        .expect("share reader");
    f.app
        .emulator()
        .share_calendar(&holidays, ALICE_WORK, "freeBusyReader")
        .expect("share free/busy");
    let calendars = f.refresh_calendars().await;
    let team_row = &calendars[&format!("{}|{team}", f.work_account)];
    let holidays_row = &calendars[&format!("{}|{holidays}", f.work_account)];
    assert_eq!(team_row["accessRole"], "reader");
    assert_eq!(holidays_row["accessRole"], "freeBusyReader");
    let (team, holidays) = (
        team_row["id"].as_str().expect("id"),
        holidays_row["id"].as_str().expect("id"),
    );
    let personal = f.personal().await;

    for read_only in [team, holidays] {
        let refused = f
            .try_create(json!({ "sourceCalendarId": personal, "destinationCalendarId": read_only, "direction": "ONE_WAY" }))
            .await;
        assert_bad_input(&refused, "destinationCalendarId");
        // TWO_WAY writes into the source too.
        let refused = f
            .try_create(json!({ "sourceCalendarId": read_only, "destinationCalendarId": personal, "direction": "TWO_WAY" }))
            .await;
        assert_bad_input(&refused, "sourceCalendarId");
    }
    // A read-only calendar is a fine source one way.
    let config = f
        .create(
            json!({ "sourceCalendarId": team, "destinationCalendarId": personal, "direction": "ONE_WAY" }),
        )
        .await;
    assert_eq!(config["source"]["id"], team);
}

// -------------------------------------------------------------------------------------------------
// Ownership
// -------------------------------------------------------------------------------------------------

#[tokio::test]
async fn another_users_calendars_and_configs_behave_as_missing() {
    let f = Fixture::new().await;
    let (personal, work) = (f.personal().await, f.work().await);
    let config = f.personal_to_work("ONE_WAY").await;

    let bob = f.app.new_browser();
    bob.sign_in("bob@example.com").await;
    let bobs_account = bob.accounts().await[0]["id"]
        .as_str()
        .expect("account")
        .to_owned();
    let bobs_calendar = bob
        .data(
            "mutation($id: ID!) { refreshCalendars(accountId: $id) { id } }",
            json!({ "id": bobs_account }),
        )
        .await["refreshCalendars"][0]["id"]
        .as_str()
        .expect("calendar")
        .to_owned();

    let missing = Uuid::new_v4().to_string();
    for id in [config.as_str(), missing.as_str(), "not-an-id"] {
        let read = bob
            .graphql(
                "query($id: ID!) { syncConfig(id: $id) { id } }",
                json!({ "id": id }),
            )
            .await;
        assert_not_found(&read);
        let updated = bob
            .graphql(
                "mutation($id: ID!) { updateSyncConfig(id: $id, input: { lookaheadDays: 5 }) { id } }",
                json!({ "id": id }),
            )
            .await;
        assert_not_found(&updated);
        for remove in [false, true] {
            let deleted = bob
                .graphql(
                    "mutation($id: ID!, $remove: Boolean) { deleteSyncConfig(id: $id, removeMirrors: $remove) }",
                    json!({ "id": id, "remove": remove }),
                )
                .await;
            assert_not_found(&deleted);
        }
        let runs = bob
            .graphql(
                "query($id: ID!) { syncRuns(configId: $id) { edges { cursor } } }",
                json!({ "id": id }),
            )
            .await;
        assert_not_found(&runs);
    }
    for (source, destination) in [
        (personal.as_str(), bobs_calendar.as_str()),
        (bobs_calendar.as_str(), work.as_str()),
        (missing.as_str(), bobs_calendar.as_str()),
    ] {
        let refused = bob
            .graphql(
                "mutation($input: CreateSyncConfigInput!) { createSyncConfig(input: $input) { id } }",
                json!({ "input": { "sourceCalendarId": source, "destinationCalendarId": destination, "direction": "ONE_WAY" } }),
            )
            .await;
        assert_not_found(&refused);
    }
    let bobs = bob.data("{ syncConfigs { id } }", json!({})).await;
    assert_eq!(bobs["syncConfigs"], json!([]));

    // Alice's config is untouched; signed out, nothing is answered.
    let alices = f.config(&config).await;
    assert_eq!(alices["data"]["syncConfig"]["lookaheadDays"], 90, "{alices}");
    let stranger = f.app.new_browser();
    let refused = stranger.graphql("{ syncConfigs { id } }", json!({})).await;
    assert_eq!(error_code(&refused), Some("UNAUTHENTICATED"), "{refused}");
}

// -------------------------------------------------------------------------------------------------
// Deleting, with and without the copies
// -------------------------------------------------------------------------------------------------

#[tokio::test]
async fn remove_mirrors_deletes_every_copy_found_in_the_destination_after_the_source_lost_access() {
    let f = Fixture::new().await;
    let work = f.work().await;
    let config = f.personal_to_work("ONE_WAY").await;
    let other_config = Uuid::new_v4().to_string();

    // What earlier runs left in the destination: two copies, a copied weekly series with a moved instance,
    // and next to them an ordinary event and a copy of some other config.
    let emulator = f.app.emulator();
    for event in [
        mirror(&config, "origin1", "Copy one", 2),
        mirror(&config, "origin2", "Copy two", 3),
        plain("Ordinary", 4),
        mirror(&other_config, "origin3", "Someone else's copy", 5),
    ] {
        emulator.insert_event(&f.work_google_id, event).expect("seed");
    }
    let mut series = mirror(&config, "origin4", "Copied series", 7);
    series["recurrence"] = json!(["RRULE:FREQ=WEEKLY;COUNT=4"]);
    series["start"]["timeZone"] = json!("UTC");
    series["end"]["timeZone"] = json!("UTC");
    let series_id = emulator.insert_event(&f.work_google_id, series).expect("series")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let (status, moved) = f
        .google(
            ALICE_WORK,
            reqwest::Method::PATCH,
            &format!("calendars/{}/events/{series_id}_20261214T100000Z", f.work_google_id),
            Some(json!({ "start": { "dateTime": "2026-12-14T12:00:00Z" }, "end": { "dateTime": "2026-12-14T13:00:00Z" } })),
        )
        .await;
    assert_eq!(status, 200, "{moved}");

    f.refresh_events(&work).await;
    let cached = f.december(&work).await;
    let mirrors_of =
        |events: &[Value], config: &str| events.iter().filter(|e| e["mirrorOf"]["id"] == config).count();
    assert_eq!(mirrors_of(&cached, &config), 2 + 4, "{cached:?}");
    assert!(
        cached
            .iter()
            .all(|e| e["mirrorOf"].is_null() || e["mirrorOf"]["direction"] == "ONE_WAY")
    );
    for summary in ["Ordinary", "Someone else's copy"] {
        let event = cached.iter().find(|e| e["summary"] == summary).expect(summary);
        assert_eq!(event["mirrorOf"], Value::Null, "{event}");
    }

    // The source account's grant is revoked: nothing of the source can be read any more.
    f.emulator_control(
        reqwest::Method::POST,
        &format!("/emulator/accounts/{ALICE}/revoke"),
        json!({}),
    )
    .await;
    let deleted = f.delete(&config, Some(true)).await;
    assert_eq!(deleted["data"]["deleteSyncConfig"], true, "{deleted}");

    assert_eq!(
        f.google_summaries(ALICE_WORK, &f.work_google_id).await,
        ["Ordinary", "Someone else's copy"]
    );
    let left: Vec<Value> = f.december(&work).await;
    let mut summaries: Vec<&str> = left
        .iter()
        .map(|e| e["summary"].as_str().unwrap_or_default())
        .collect();
    summaries.sort();
    assert_eq!(
        summaries,
        ["Ordinary", "Someone else's copy"],
        "the cache follows at once"
    );
    let rows = events::Entity::find()
        .filter(events::Column::CalendarId.eq(uuid(&work)))
        .all(&f.side.db)
        .await
        .expect("rows");
    let tombstoned = rows.iter().filter(|row| row.deleted_at.is_some()).count();
    assert_eq!(tombstoned, 4, "two copies, the series and its exception");
    assert_not_found(&f.config(&config).await);
}

#[tokio::test]
async fn remove_mirrors_cleans_both_sides_of_a_two_way_config_and_keeps_the_config_while_google_fails() {
    let f = Fixture::new().await;
    let (personal, work) = (f.personal().await, f.work().await);
    let config = f.personal_to_work("TWO_WAY").await;
    let emulator = f.app.emulator();
    emulator
        .insert_event(&f.work_google_id, mirror(&config, "origin1", "Copy in work", 2))
        .expect("seed");
    let mut back = mirror(&config, "origin2", "Copy in personal", 3);
    back["id"] = json!(mirror_event_id(uuid(&config), Side::Destination, "origin2"));
    back["extendedProperties"]["private"][MIRROR_ORIGIN_SIDE_KEY] = json!("DESTINATION");
    emulator.insert_event(ALICE, back).expect("seed");
    emulator.insert_event(ALICE, plain("Mine", 4)).expect("seed");
    f.refresh_events(&work).await;
    f.refresh_events(&personal).await;

    // Listing fails: nothing is deleted anywhere, the config stays.
    f.emulator_control(
        reqwest::Method::POST,
        "/emulator/faults",
        json!({ "method": "GET", "path": "/events", "status": 429, "retryAfter": 120 }),
    )
    .await;
    let refused = f.delete(&config, Some(true)).await;
    assert_eq!(error_code(&refused), Some("UPSTREAM_UNAVAILABLE"), "{refused}");
    f.emulator_control(reqwest::Method::DELETE, "/emulator/faults", json!({}))
        .await;
    assert_eq!(
        f.google_summaries(ALICE_WORK, &f.work_google_id).await,
        ["Copy in work"]
    );
    assert_eq!(
        f.google_summaries(ALICE, ALICE).await,
        ["Copy in personal", "Mine"]
    );

    // Deleting fails: the config stays, and Google still holds the copies.
    f.emulator_control(
        reqwest::Method::POST,
        "/emulator/faults",
        json!({ "method": "POST", "path": "/batch/calendar/v3", "status": 429, "retryAfter": 120 }),
    )
    .await;
    let refused = f.delete(&config, Some(true)).await;
    assert_eq!(error_code(&refused), Some("UPSTREAM_UNAVAILABLE"), "{refused}");
    f.emulator_control(reqwest::Method::DELETE, "/emulator/faults", json!({}))
        .await;
    assert_eq!(
        f.config(&config).await["data"]["syncConfig"]["id"],
        config.as_str()
    );
    assert_eq!(
        f.google_summaries(ALICE_WORK, &f.work_google_id).await,
        ["Copy in work"]
    );

    // Google answers again: both sides are cleaned, ordinary events stay.
    let deleted = f.delete(&config, Some(true)).await;
    assert_eq!(deleted["data"]["deleteSyncConfig"], true, "{deleted}");
    assert!(f.google_summaries(ALICE_WORK, &f.work_google_id).await.is_empty());
    assert_eq!(f.google_summaries(ALICE, ALICE).await, ["Mine"]);
    let personal_left: Vec<Value> = f.december(&personal).await;
    assert_eq!(personal_left.len(), 1, "{personal_left:?}");
    assert_eq!(personal_left[0]["summary"], "Mine");
    assert!(f.december(&work).await.is_empty());
}

#[tokio::test]
async fn without_remove_mirrors_the_copies_stay_as_ordinary_events() {
    let f = Fixture::new().await;
    let work = f.work().await;
    let config = f.personal_to_work("ONE_WAY").await;
    f.app
        .emulator()
        .insert_event(&f.work_google_id, mirror(&config, "origin1", "Copy", 2))
        .expect("seed");
    f.refresh_events(&work).await;
    let before = f.december(&work).await;
    assert_eq!(before.len(), 1);
    assert_eq!(before[0]["mirrorOf"]["id"], config.as_str());

    assert_eq!(f.delete(&config, None).await["data"]["deleteSyncConfig"], true);
    assert_eq!(f.google_summaries(ALICE_WORK, &f.work_google_id).await, ["Copy"]);
    let after = f.december(&work).await;
    assert_eq!(after.len(), 1);
    assert_eq!(after[0]["mirrorOf"], Value::Null, "{after:?}");
    let row = events::Entity::find()
        .filter(events::Column::CalendarId.eq(uuid(&work)))
        .one(&f.side.db)
        .await
        .expect("query")
        .expect("row");
    assert_eq!((row.mirror_config_id, row.deleted_at), (None, None));
}

// -------------------------------------------------------------------------------------------------
// Run history
// -------------------------------------------------------------------------------------------------

/// Inserts a run as the run orchestration would have recorded it.
async fn insert_run(state: &AppState, config: Uuid, n: i32, created_at: DateTime<Utc>) -> sync_runs::Model {
    let finished = n % 5 != 0;
    sync_runs::ActiveModel {
        id: Set(Uuid::new_v4()),
        config_id: Set(config),
        trigger: Set([SyncTrigger::Manual, SyncTrigger::Scheduled, SyncTrigger::Push][n as usize % 3]),
        status: Set(if finished {
            SyncRunStatus::Succeeded
        } else {
            SyncRunStatus::Failed
        }),
        started_at: Set(Some(created_at + Duration::seconds(1))),
        finished_at: Set(finished.then(|| created_at + Duration::seconds(9))),
        created: Set(n),
        updated: Set(n + 1),
        deleted: Set(n + 2),
        skipped: Set(n + 3),
        failed: Set(n + 4),
        google_calls: Set(n + 5),
        conflicts: Set(n + 6),
        error: Set((!finished).then(|| format!("run {n} failed"))),
        allow_mass_delete: Set(false),
        created_at: Set(created_at),
    }
    .insert(&state.db)
    .await
    .expect("insert run")
}

#[tokio::test]
async fn sync_runs_page_through_45_runs_newest_first_and_last_run_is_the_newest() {
    let f = Fixture::new().await;
    let config = f.personal_to_work("ONE_WAY").await;
    let other = f
        .create(json!({ "sourceCalendarId": f.work().await, "destinationCalendarId": f.work_primary().await, "direction": "ONE_WAY" }))
        .await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let base = Utc
        .with_ymd_and_hms(2026, 11, 1, 8, 0, 0)
        .single()
        .expect("instant");
    let mut runs = Vec::new();
    for n in 0..45 {
        // Runs 20 to 24 share one instant: the id orders them.
        let minute = if (20..25).contains(&n) { 20 } else { n };
        runs.push(
            insert_run(
                &f.side,
                uuid(&config),
                n,
                base + Duration::minutes(i64::from(minute)),
            )
            .await,
        );
    }
    for n in 0..3 {
        let at = base + Duration::days(1) + Duration::minutes(i64::from(n));
        insert_run(&f.side, uuid(&other), 101 + n, at).await;
    }
    runs.sort_by_key(|run| std::cmp::Reverse((run.created_at, run.id)));
    let expected: Vec<String> = runs.iter().map(|run| run.id.to_string()).collect();

    let page = |first: Option<i32>, after: Option<String>| {
        let app = &f.app;
        let config = config.clone();
        async move {
            let query = format!(
                "query($id: ID!, $first: Int, $after: String) {{ syncRuns(configId: $id, first: $first, after: $after) {{
                    edges {{ cursor node {{ {RUN_FIELDS} }} }}
                    pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }} }} }}"
            );
            app.data(&query, json!({ "id": config, "first": first, "after": after }))
                .await["syncRuns"]
                .clone()
        }
    };
    let mut seen = Vec::new();
    let mut after = None;
    let mut sizes = Vec::new();
    loop {
        let connection = page(None, after.clone()).await;
        let edges = connection["edges"].as_array().expect("edges").clone();
        sizes.push(edges.len());
        assert_eq!(connection["pageInfo"]["hasPreviousPage"], after.is_some());
        assert_eq!(connection["pageInfo"]["startCursor"], edges[0]["cursor"]);
        assert_eq!(
            connection["pageInfo"]["endCursor"],
            edges[edges.len() - 1]["cursor"]
        );
        seen.extend(
            edges
                .iter()
                .map(|e| e["node"]["id"].as_str().expect("id").to_owned()),
        );
        if connection["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = connection["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
    assert_eq!(sizes, [20, 20, 5], "default page size 20");
    assert_eq!(
        seen, expected,
        "each run once, newest first, none of the other config"
    );

    let all = page(Some(100), None).await;
    assert_eq!(all["edges"].as_array().expect("edges").len(), 45);
    assert_eq!(all["pageInfo"]["hasNextPage"], false);
    let small = page(Some(7), None).await;
    assert_eq!(small["edges"].as_array().expect("edges").len(), 7);
    assert_eq!(small["pageInfo"]["hasNextPage"], true);

    // Every field of the contract, as recorded.
    let newest = &runs[0];
    let node = &all["edges"][0]["node"];
    let n = newest.created;
    let rfc = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    let expected_node = json!({
        "id": newest.id.to_string(), "configId": config,
        "trigger": (["MANUAL", "SCHEDULED", "PUSH"][n as usize % 3]),
        "status": if newest.error.is_some() { "FAILED" } else { "SUCCEEDED" },
        "startedAt": newest.started_at.map(rfc), "finishedAt": newest.finished_at.map(rfc),
        "created": n, "updated": n + 1, "deleted": n + 2, "skipped": n + 3, "failed": n + 4,
        "googleCalls": n + 5, "conflicts": n + 6, "error": newest.error,
    });
    let as_map = |v: &Value| -> BTreeMap<String, Value> {
        v.as_object().expect("object").clone().into_iter().collect()
    };
    let mut got = as_map(node);
    for time in ["startedAt", "finishedAt"] {
        // Compare instants, whatever the fraction digits.
        let parse = |v: &Value| v.as_str().map(|s| s.parse::<DateTime<Utc>>().expect("instant"));
        assert_eq!(parse(&got[time]), parse(&expected_node[time]), "{time}");
        got.remove(time);
    }
    let mut want = as_map(&expected_node);
    want.remove("startedAt");
    want.remove("finishedAt");
    assert_eq!(got, want);

    let configs = f.configs().await;
    let with_runs = configs
        .iter()
        .find(|c| c["id"] == config.as_str())
        .expect("config");
    assert_eq!(with_runs["lastRun"]["id"], newest.id.to_string());
    let other_config = configs.iter().find(|c| c["id"] == other.as_str()).expect("other");
    assert_eq!(other_config["lastRun"]["status"], "SUCCEEDED");
}
