//! Google's quotas: Chronos paces itself so that steady work never trips them. The windows are shortened
//! (the emulator's and Chronos's alike) so that a run spanning several windows takes seconds, not minutes;
//! the arithmetic is the same as with Google's minute.

use std::time::{Duration, Instant};

use chronos::config::GoogleQuota;
use google_emulator::EmulatorConfig;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    helpers::TestApp,
    sync_runs::{SOURCE, World, hour, timed},
};

/// Requests one user may make per window at the emulator, and what Chronos paces to.
const PER_USER: u32 = 30;
const EVENTS: usize = 150;

async fn quota_world(window: Duration, paced: bool) -> World {
    let emulator = EmulatorConfig {
        quota_per_user_per_minute: u64::from(PER_USER),
        quota_per_project_per_minute: 0,
        quota_window_ms: u64::try_from(window.as_millis()).expect("ms"),
        ..EmulatorConfig::default()
    };
    let app = TestApp::spawn_with_emulator(emulator, move |settings| {
        settings.google.quota = if paced {
            GoogleQuota {
                per_user_per_minute: PER_USER,
                per_project_per_minute: 0,
                window,
            }
        } else {
            GoogleQuota::UNPACED
        };
    })
    .await;
    World::on(app).await
}

/// Puts `count` events in `email`'s primary calendar directly (not through the API: no quota spent).
fn seed_events(app: &TestApp, email: &str, count: usize) {
    for i in 0..count {
        let start = hour(1 + (i / 10) as i64, 8 + (i % 10) as u32);
        app.emulator()
            .insert_event(email, timed(&format!("Event {i}"), start))
            .expect("seed event");
    }
}

async fn quota_refusals(world: &World) -> u64 {
    let stats = world.control(Method::GET, "/emulator/stats", json!({})).await;
    stats["quotaRefusals"]["total"].as_u64().expect("refusal count")
}

async fn create_event(world: &World, summary: &str) -> Value {
    world
        .app
        .graphql(
            "mutation($input: CreateEventInput!) { createEvent(input: $input) { id summary } }",
            json!({ "input": {
                "calendarId": world.destination_calendar,
                "summary": summary,
                "start": { "dateTime": hour(3, 12).to_rfc3339() },
                "end": { "dateTime": hour(3, 13).to_rfc3339() },
            }}),
        )
        .await
}

#[tokio::test]
async fn a_paced_first_sync_meets_no_refusals_near_the_floor_and_people_go_first() {
    let window = Duration::from_secs(6);
    let world = quota_world(window, true).await;
    seed_events(&world.app, SOURCE, EVENTS);
    let config = world.config("ONE_WAY", json!({})).await;
    let before = quota_refusals(&world).await;

    let run = world.trigger(&config, false).await;
    let run_id = Uuid::parse_str(run["id"].as_str().expect("run id")).expect("uuid");
    // Once the run is writing to the destination, a person creates an event in that same account.
    let deadline = Instant::now() + Duration::from_secs(60);
    // (Watched in the database: asking Google would spend the quota under test.)
    while world.links(&config).await == 0 {
        assert!(Instant::now() < deadline, "the run never started writing");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let asked = Instant::now();
    let created = create_event(&world, "Lunch").await;
    let waited = asked.elapsed();
    assert!(created.get("errors").is_none(), "{created}");
    assert!(
        waited < Duration::from_secs(2),
        "createEvent waited {waited:?} behind the sync"
    );

    let finished = world.finished(run_id).await;
    assert_eq!(
        finished.created,
        i32::try_from(EVENTS).expect("count"),
        "{finished:?}"
    );
    assert_eq!(quota_refusals(&world).await, before, "no request was refused");
    let took = (finished.finished_at.expect("finished") - finished.started_at.expect("started"))
        .to_std()
        .expect("duration");
    // The quota's floor: every event is one request, PER_USER of them a window.
    let floor = window.mul_f64(EVENTS as f64 / f64::from(PER_USER));
    assert!(
        took <= floor.mul_f64(1.15),
        "the run took {took:?}; the quota's floor is {floor:?}"
    );
    // Positive control of the pacing itself: the run could not have finished inside one window.
    assert!(took >= window, "the run took {took:?}: was it paced at all?");
    world.idle().await;
}

#[tokio::test]
async fn without_pacing_the_same_sync_is_refused_by_the_quota() {
    let world = quota_world(Duration::from_secs(6), false).await;
    seed_events(&world.app, SOURCE, EVENTS);
    let config = world.config("ONE_WAY", json!({})).await;
    let before = quota_refusals(&world).await;
    let run = world.trigger(&config, false).await;
    let run_id = Uuid::parse_str(run["id"].as_str().expect("run id")).expect("uuid");
    world.finished(run_id).await;
    assert!(
        quota_refusals(&world).await > before,
        "an unpaced burst of {EVENTS} writes must meet the quota of {PER_USER}"
    );
    world.idle().await;
}

/// The second user of the two-instance test: their own pair of accounts, signed in in their own browser.
const OTHER_SOURCE: &str = "other-source@example.com";
const OTHER_DESTINATION: &str = "other-destination@example.com";

/// Two instances on one PostgreSQL, each running a sync for a different user at the same moment, pace
/// themselves to one project budget between them.
#[tokio::test]
#[ignore = "needs TEST_DATABASE_URL (CI runs it in its PostgreSQL pass)"]
async fn postgres_only_two_instances_share_one_project_budget() {
    assert!(
        std::env::var("TEST_DATABASE_URL").is_ok_and(|url| !url.is_empty()),
        "run with TEST_DATABASE_URL"
    );
    let window = Duration::from_secs(4);
    let per_project: u32 = 40;
    let emulator = EmulatorConfig {
        quota_per_user_per_minute: 0,
        quota_per_project_per_minute: u64::from(per_project),
        quota_window_ms: 4_000,
        ..EmulatorConfig::default()
    };
    let quota = GoogleQuota {
        per_user_per_minute: 0,
        per_project_per_minute: per_project,
        window,
    };
    // No workers: each run is executed by the instance the test chooses.
    let app = TestApp::spawn_with_emulator(emulator, move |settings| {
        settings.google.quota = quota;
        settings.scheduler_enabled = false;
    })
    .await;
    let world = World::without_workers(app).await;
    let other = world.app.new_browser();
    world.app.emulator().create_account(OTHER_SOURCE, None);
    world.app.emulator().create_account(OTHER_DESTINATION, None);
    other.sign_in(OTHER_SOURCE).await;
    other.connect_account(OTHER_DESTINATION).await;
    let mut other_calendars = std::collections::HashMap::new();
    for account in other.accounts().await.as_array().expect("accounts") {
        let data = other
            .data(
                "mutation($id: ID!) { refreshCalendars(accountId: $id) { id googleCalendarId } }",
                json!({ "id": account["id"] }),
            )
            .await;
        for calendar in data["refreshCalendars"].as_array().expect("calendars") {
            other_calendars.insert(
                calendar["googleCalendarId"]
                    .as_str()
                    .expect("google id")
                    .to_owned(),
                calendar["id"].as_str().expect("id").to_owned(),
            );
        }
    }
    seed_events(&world.app, SOURCE, 60);
    seed_events(&world.app, OTHER_SOURCE, 60);
    let first = world.config("ONE_WAY", json!({})).await;
    let second = other
        .data(
            "mutation($input: CreateSyncConfigInput!) { createSyncConfig(input: $input) { id } }",
            json!({ "input": {
                "sourceCalendarId": other_calendars[OTHER_SOURCE],
                "destinationCalendarId": other_calendars[OTHER_DESTINATION],
                "direction": "ONE_WAY",
            }}),
        )
        .await["createSyncConfig"]["id"]
        .as_str()
        .expect("config id")
        .to_owned();
    let first_run = run_id(&world.app, &first).await;
    let second_run = run_id(&other, &second).await;

    let mut settings = world.app.settings().clone();
    settings.bind_addr = "127.0.0.1:0".into();
    let instance_a = world.app.server_state().await;
    let instance_b = chronos::app::Application::build(settings, false)
        .await
        .expect("second instance")
        .state()
        .clone();
    let before = quota_refusals(&world).await;
    let started = Instant::now();
    let (a, b) = tokio::join!(
        chronos::sync::runner::execute(&instance_a, first_run),
        chronos::sync::runner::execute(&instance_b, second_run),
    );
    a.expect("run on instance A");
    b.expect("run on instance B");
    let took = started.elapsed();
    assert_eq!(world.finished(first_run).await.created, 60);
    assert_eq!(world.finished(second_run).await.created, 60);
    assert_eq!(quota_refusals(&world).await, before, "no request was refused");
    // Positive control: 120 writes at 40 a window cannot all have gone in the first window.
    assert!(
        took >= window * 2,
        "both runs took {took:?}: was the project budget shared?"
    );
}

/// `triggerSync` as `browser`; the run's id.
async fn run_id(browser: &TestApp, config_id: &str) -> Uuid {
    let data = browser
        .data(
            "mutation($id: ID!) { triggerSync(configId: $id) { id } }",
            json!({ "id": config_id }),
        )
        .await;
    Uuid::parse_str(data["triggerSync"]["id"].as_str().expect("run id")).expect("uuid")
}
