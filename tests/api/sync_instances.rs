//! Sync runs across processes and instances: `syncProgress` over a websocket (same instance and, on
//! PostgreSQL, another instance) with its counts, total and estimate over a long run and a run taken over
//! midway, push-triggered runs, the scheduler with two instances on one database, and the real `chronos`
//! binary killed with SIGKILL in the middle of a 2,000-event run.

use std::{collections::BTreeSet, time::Duration};

use chrono::{DateTime, TimeDelta, Utc};
use chronos::{
    app::Application,
    crypto::ExposeSecret,
    entities::{
        enums::{JobStatus, SyncRunStatus, SyncTrigger},
        jobs, sync_configs, sync_runs,
    },
    state::AppState,
    sync::{runner::RUN_KIND, schedule},
};
use reqwest::Method;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use crate::{
    helpers::{Socket, TestApp},
    sync_runs::{DESTINATION, SOURCE, World, hour, origin_of, timed},
};

const PROGRESS_FIELDS: &str =
    "runId configId phase created updated deleted failed done total expectedFinishAt at";

fn on_postgres() -> bool {
    std::env::var("TEST_DATABASE_URL").is_ok_and(|url| !url.is_empty())
}

async fn subscribe(socket: &mut Socket, id: &str, config_id: Option<&str>) {
    socket
        .subscribe(
            id,
            json!({
                "query": format!("subscription($id: ID) {{ syncProgress(configId: $id) {{ {PROGRESS_FIELDS} }} }}"),
                "variables": { "id": config_id },
            }),
        )
        .await;
}

/// Progress messages of subscription `id` up to and including the run's last one (FINISHED or FAILED).
async fn progress_until_done(socket: &mut Socket, id: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    while let Some(message) = socket.receive(Duration::from_secs(60)).await {
        assert_eq!(message["id"], id, "{message}");
        assert_eq!(message["type"], "next", "{message}");
        let progress = message["payload"]["data"]["syncProgress"].clone();
        let done = matches!(progress["phase"].as_str(), Some("FINISHED" | "FAILED"));
        seen.push(progress);
        if done {
            return seen;
        }
    }
    panic!("the run never finished: {seen:#?}");
}

fn phases(progress: &[Value]) -> Vec<String> {
    let mut phases: Vec<String> = progress
        .iter()
        .map(|p| p["phase"].as_str().expect("phase").to_owned())
        .collect();
    phases.dedup();
    phases
}

#[tokio::test]
async fn sync_progress_streams_the_phases_to_the_owner_only() {
    let world = World::new().await;
    let config = world.config("ONE_WAY", json!({})).await;
    for i in 0..3 {
        world
            .insert(SOURCE, timed(&format!("P{i}"), hour(i + 1, 9)))
            .await;
    }
    let mut one = world.app.websocket().await;
    subscribe(&mut one, "one", Some(&config)).await;
    let mut all = world.app.websocket().await;
    subscribe(&mut all, "all", None).await;

    // Another user: someone else's config is NOT_FOUND; their own stream stays silent.
    let other = world.app.new_browser();
    other.sign_in("other@example.com").await;
    let mut stranger = other.websocket().await;
    subscribe(&mut stranger, "theirs", Some(&config)).await;
    let refused = stranger.receive(Duration::from_secs(10)).await.expect("answer");
    // A field error: `next` with errors and no data (the operation itself was valid).
    assert_eq!(refused["payload"]["data"], Value::Null, "{refused}");
    assert_eq!(
        refused["payload"]["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{refused}"
    );
    let closed = stranger.receive(Duration::from_secs(10)).await.expect("complete");
    assert_eq!(
        (closed["id"].as_str(), closed["type"].as_str()),
        (Some("theirs"), Some("complete"))
    );
    subscribe(&mut stranger, "mine", None).await;
    // "one", "all" and "mine" are live before the run starts.
    world.app.wait_for_progress_subscribers(3).await;

    let run = world.trigger(&config, false).await;
    let progress = progress_until_done(&mut one, "one").await;
    assert_eq!(
        phases(&progress),
        ["STARTED", "LISTING", "APPLYING", "FINISHED"],
        "{progress:#?}"
    );
    assert!(
        progress
            .iter()
            .all(|p| p["runId"] == run["id"] && p["configId"] == config)
    );
    let last = progress.last().expect("last");
    assert_eq!(
        (last["created"].as_i64(), last["failed"].as_i64()),
        (Some(3), Some(0))
    );
    assert_eq!(
        phases(&progress_until_done(&mut all, "all").await)
            .last()
            .map(String::as_str),
        Some("FINISHED")
    );
    assert!(
        stranger.receive(Duration::from_millis(500)).await.is_none(),
        "another user's run is not shown"
    );

    // The control on the same stream: the stranger's own run is shown, and nothing came before it.
    world
        .app
        .emulator()
        .create_calendar("other@example.com", "Copies", Some("UTC"))
        .expect("calendar");
    let account = other.accounts().await[0]["id"].clone();
    let listed = other
        .data(
            "mutation($id: ID!) { refreshCalendars(accountId: $id) { id primary } }",
            json!({ "id": account }),
        )
        .await;
    let listed = listed["refreshCalendars"].as_array().expect("calendars").clone();
    let calendar =
        |primary: bool| listed.iter().find(|c| c["primary"] == primary).expect("calendar")["id"].clone();
    let own_config = other
        .data(
            "mutation($s: ID!, $d: ID!) { createSyncConfig(input: { sourceCalendarId: $s, destinationCalendarId: $d, direction: ONE_WAY }) { id } }",
            json!({ "s": calendar(true), "d": calendar(false) }),
        )
        .await["createSyncConfig"]["id"]
        .clone();
    let own_run = other
        .data(
            "mutation($id: ID!) { triggerSync(configId: $id) { id } }",
            json!({ "id": own_config }),
        )
        .await["triggerSync"]["id"]
        .clone();
    let own_progress = progress_until_done(&mut stranger, "mine").await;
    assert!(
        own_progress.iter().all(|p| p["runId"] == own_run),
        "{own_progress:#?}"
    );
    world.idle().await;
}

fn int(value: &Value) -> i64 {
    value
        .as_i64()
        .unwrap_or_else(|| panic!("not an integer: {value}"))
}

fn instant(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().expect("a date-time"))
        .expect("RFC 3339")
        .into()
}

/// What a run's messages must say, from its first (with `done_before` changes done by an earlier
/// attempt) to its last: `done` is the sum of the counts and never goes down; `total` is null until the
/// plan is made, then fixed, and `done` reaches it at FINISHED; an estimate once this attempt has done
/// something (or nothing is left), only while applying, never before `at`. Returns the total.
fn assert_counts_add_up(progress: &[Value], done_before: i64) -> i64 {
    let mut last_done = done_before;
    let mut total = None;
    for p in progress {
        let done = int(&p["done"]);
        let sum: i64 = ["created", "updated", "deleted", "failed"]
            .iter()
            .map(|field| int(&p[field]))
            .sum();
        assert_eq!(done, sum, "{p}");
        assert!(done >= last_done, "done went back: {progress:#?}");
        last_done = done;
        let estimate = &p["expectedFinishAt"];
        match p["phase"].as_str().expect("phase") {
            "STARTED" | "LISTING" => {
                assert_eq!(done, done_before, "{p}");
                assert_eq!((&p["total"], estimate), (&Value::Null, &Value::Null), "{p}");
            }
            "APPLYING" => {
                let this = int(&p["total"]);
                assert_eq!(*total.get_or_insert(this), this, "the total moved: {progress:#?}");
                assert!(done <= this, "{p}");
                if done > done_before || done == this {
                    assert!(instant(estimate) >= instant(&p["at"]), "{p}");
                } else {
                    assert_eq!(estimate, &Value::Null, "no rate yet: {p}");
                }
            }
            "FINISHED" => {
                assert_eq!(p["total"].as_i64(), Some(done), "{progress:#?}");
                assert_eq!(total.get_or_insert(done), &done, "{progress:#?}");
                assert_eq!(estimate, &Value::Null, "{p}");
            }
            other => panic!("{other}: {progress:#?}"),
        }
    }
    total.expect("a total")
}

/// `count` single events on the source, half an hour apart from an hour from now.
fn insert_many(world: &World, count: i64) {
    let start = Utc::now() + TimeDelta::hours(1);
    for i in 0..count {
        let at = start + TimeDelta::minutes(30 * i);
        world
            .app
            .emulator()
            .insert_event(SOURCE, timed(&format!("Many {i}"), at))
            .expect("insert");
    }
}

#[tokio::test]
async fn sync_progress_counts_up_to_the_plan_and_estimates_the_finish() {
    let world = World::new().await;
    let config = world.config("ONE_WAY", json!({})).await;
    insert_many(&world, 400);
    // Google answers each chunk of 50 writes after 4 s, 4 chunks at a time: two waves, and no answer at
    // all for longer than the progress keepalive.
    world
        .control(
            Method::PUT,
            "/emulator/latency",
            json!({ "ms": 0, "batchPartMs": 80 }),
        )
        .await;
    let mut socket = world.app.websocket().await;
    subscribe(&mut socket, "long", Some(&config)).await;
    world.app.wait_for_progress_subscribers(1).await;
    let run = world.trigger(&config, false).await;
    let progress = progress_until_done(&mut socket, "long").await;
    assert_eq!(
        phases(&progress),
        ["STARTED", "LISTING", "APPLYING", "FINISHED"],
        "{progress:#?}"
    );
    assert!(progress.iter().all(|p| p["runId"] == run["id"]));
    // The plan is one copy per event.
    assert_eq!(assert_counts_add_up(&progress, 0), 400);
    assert_eq!(progress.last().expect("last")["created"], 400);
    let midway: Vec<&Value> = progress
        .iter()
        .filter(|p| p["phase"] == "APPLYING" && (1..400).contains(&int(&p["done"])))
        .collect();
    assert!(midway.len() >= 2, "{progress:#?}");
    assert!(
        midway.iter().all(|p| p["expectedFinishAt"].is_string()),
        "{midway:#?}"
    );
    // Never quiet for long while applying, though Google is (the keepalive is 2 s, checked twice a second).
    let times: Vec<DateTime<Utc>> = progress
        .iter()
        .skip_while(|p| p["phase"] != "APPLYING")
        .map(|p| instant(&p["at"]))
        .collect();
    for pair in times.windows(2) {
        assert!(
            pair[1] - pair[0] <= TimeDelta::milliseconds(3_500),
            "{} quiet: {progress:#?}",
            pair[1] - pair[0]
        );
    }
    world.idle().await;
}

#[tokio::test]
async fn a_run_taken_over_midway_counts_what_it_did_before_and_finishes_at_its_total() {
    // No workers: the test executes the run as a worker would, twice.
    let app = TestApp::spawn_with(|settings| settings.scheduler_enabled = false).await;
    let world = World::without_workers(app).await;
    let config = world.config("ONE_WAY", json!({})).await;
    insert_many(&world, 300);
    world
        .control(
            Method::PUT,
            "/emulator/latency",
            json!({ "ms": 0, "batchPartMs": 10 }),
        )
        .await;
    let run = world.trigger(&config, false).await;
    let run_id = Uuid::parse_str(run["id"].as_str().expect("id")).expect("uuid");
    let state = world.app.server_state().await;

    // The first attempt stops dead, as with a crash of its server, once some chunks have landed.
    let first = tokio::spawn({
        let state = state.clone();
        async move { chronos::sync::runner::execute(&state, run_id).await }
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let done_before = loop {
        let row = sync_runs::Entity::find_by_id(run_id)
            .one(&world.db)
            .await
            .expect("run")
            .expect("row");
        if row.created > 0 {
            first.abort();
            assert!(first.await.is_err_and(|e| e.is_cancelled()), "stopped midway");
            let row = sync_runs::Entity::find_by_id(run_id)
                .one(&world.db)
                .await
                .expect("run")
                .expect("row");
            assert_eq!(row.status, SyncRunStatus::Running, "{row:?}");
            break i64::from(row.created + row.updated + row.deleted + row.failed);
        }
        assert!(tokio::time::Instant::now() < deadline, "the run never got going");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!((1..300).contains(&done_before), "{done_before}");

    // Taken over: it starts where the row says and plans only what is left.
    let mut socket = world.app.websocket().await;
    subscribe(&mut socket, "resumed", Some(&config)).await;
    world.app.wait_for_progress_subscribers(1).await;
    chronos::sync::runner::execute(&state, run_id)
        .await
        .expect("the run is taken over");
    let progress = progress_until_done(&mut socket, "resumed").await;
    assert_eq!(
        phases(&progress),
        ["STARTED", "LISTING", "APPLYING", "FINISHED"],
        "{progress:#?}"
    );
    let total = assert_counts_add_up(&progress, done_before);
    // Copies that landed unrecorded are found by the listing, not written again: at most 300 in all.
    assert!(total > done_before && total <= 300, "{total}: {progress:#?}");
    let finished = world.finished(run_id).await;
    assert_eq!(finished.status, SyncRunStatus::Succeeded, "{finished:?}");
    assert_eq!(
        i64::from(finished.created + finished.updated + finished.deleted + finished.failed),
        total
    );
    assert_eq!(world.mirrors(DESTINATION).await.len(), 300);
}

#[tokio::test]
async fn a_push_notification_queues_a_push_run() {
    let world = World::with_push().await;
    let config = world.config("ONE_WAY", json!({})).await;
    world.sync(&config).await;
    let id = world.insert(SOURCE, timed("Pushed", hour(2, 9))).await;
    // Google notifies, the calendar is refreshed, the change queues a run: no triggerSync needed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let mirrored = world
            .mirrors(DESTINATION)
            .await
            .values()
            .any(|m| origin_of(m) == id);
        if mirrored {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the push never led to a run"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    world.idle().await;
    let push_runs = sync_runs::Entity::find()
        .filter(sync_runs::Column::Trigger.eq(SyncTrigger::Push))
        .all(&world.db)
        .await
        .expect("runs");
    assert!(!push_runs.is_empty());
    assert!(
        push_runs.iter().all(|r| r.status == SyncRunStatus::Succeeded),
        "{push_runs:?}"
    );
}

/// Another server on the test database (its own port and state), running until `stop` is dropped.
pub async fn second_instance(
    app: &TestApp,
    scheduler_enabled: bool,
) -> (String, AppState, tokio::sync::oneshot::Sender<()>) {
    let mut settings = app.settings().clone();
    settings.bind_addr = "127.0.0.1:0".into();
    settings.scheduler_enabled = scheduler_enabled;
    let instance = Application::build(settings, false)
        .await
        .expect("second instance");
    let address = format!("http://{}", instance.local_addr());
    let state = instance.state().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(instance.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    (address, state, stop)
}

/// LISTEN/NOTIFY across instances.
#[tokio::test]
#[ignore = "needs TEST_DATABASE_URL (CI runs it in its PostgreSQL pass)"]
async fn postgres_only_a_subscriber_on_another_instance_sees_the_run() {
    assert!(on_postgres(), "run with TEST_DATABASE_URL");
    let world = World::new().await;
    let config = world.config("ONE_WAY", json!({})).await;
    world.insert(SOURCE, timed("Across", hour(1, 9))).await;
    // Instance B runs no jobs: the run executes on A, the subscriber listens on B.
    let (b, b_state, _stop) = second_instance(&world.app, false).await;
    let mut socket = world.app.websocket_to(&b).await;
    subscribe(&mut socket, "b", Some(&config)).await;
    crate::helpers::wait_for_progress_subscribers(&b_state, 1).await;
    let run = world.trigger(&config, false).await;
    let progress = progress_until_done(&mut socket, "b").await;
    assert_eq!(
        phases(&progress),
        ["STARTED", "LISTING", "APPLYING", "FINISHED"],
        "{progress:#?}"
    );
    assert!(progress.iter().all(|p| p["runId"] == run["id"]));
    assert_eq!(progress.last().expect("last")["created"], 1);
    world.idle().await;
}

/// Two instances on one PostgreSQL.
#[tokio::test]
#[ignore = "needs TEST_DATABASE_URL (CI runs it in its PostgreSQL pass)"]
async fn postgres_only_two_instances_run_each_due_config_exactly_once() {
    assert!(on_postgres(), "run with TEST_DATABASE_URL");
    let world = World::new().await;
    // Twenty configs, each from its own calendar, all due now.
    for i in 0..20 {
        world
            .app
            .emulator()
            .create_calendar(SOURCE, &format!("Team {i}"), Some("UTC"))
            .expect("calendar");
    }
    let source_account = world
        .app
        .accounts()
        .await
        .as_array()
        .expect("accounts")
        .iter()
        .find(|a| a["email"] == SOURCE)
        .expect("source account")["id"]
        .clone();
    let data = world
        .app
        .data(
            "mutation($id: ID!) { refreshCalendars(accountId: $id) { id primary } }",
            json!({ "id": source_account }),
        )
        .await;
    let teams: Vec<String> = data["refreshCalendars"]
        .as_array()
        .expect("calendars")
        .iter()
        .filter(|c| c["primary"] == false)
        .map(|c| c["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(teams.len(), 20);
    world.idle().await;
    let mut configs = Vec::new();
    for team in &teams {
        let data = world
            .app
            .data(
                "mutation($input: CreateSyncConfigInput!) { createSyncConfig(input: $input) { id } }",
                json!({ "input": {
                    "sourceCalendarId": team,
                    "destinationCalendarId": world.destination_calendar,
                    "direction": "ONE_WAY",
                    "intervalMinutes": 60,
                } }),
            )
            .await;
        configs.push(data["createSyncConfig"]["id"].as_str().expect("id").to_owned());
    }
    // Due a little ahead of the clock: the two direct calls below ask as of that moment, while the
    // instances' periodic scheduler (asking as of now) cannot take any of them first.
    let due_at = Utc::now() + TimeDelta::seconds(30);
    sync_configs::Entity::update_many()
        .col_expr(sync_configs::Column::NextRunAt, Some(due_at).into())
        .exec(&world.db)
        .await
        .expect("make them due");

    // Instance B runs jobs too; A and B race for the due configs, and both execute the runs.
    let (_, b_state, _stop) = second_instance(&world.app, true).await;
    let a_state = world.app.app_state().await;
    let (a, b) = tokio::join!(
        schedule::enqueue_due(&a_state, due_at),
        schedule::enqueue_due(&b_state, due_at)
    );
    assert_eq!(a.expect("A") + b.expect("B"), 20);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let finished = sync_runs::Entity::find()
            .filter(sync_runs::Column::Status.eq(SyncRunStatus::Succeeded))
            .filter(sync_runs::Column::Trigger.eq(SyncTrigger::Scheduled))
            .count(&world.db)
            .await
            .expect("count");
        if finished >= 20 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{finished} of 20 scheduled runs finished"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The periodic scheduler finds nothing more due; every config ran exactly once, in one attempt.
    assert_eq!(
        schedule::enqueue_due(&a_state, Utc::now()).await.expect("again"),
        0
    );
    world.idle().await;
    for config in &configs {
        let runs = sync_runs::Entity::find()
            .filter(sync_runs::Column::ConfigId.eq(Uuid::parse_str(config).expect("uuid")))
            .all(&world.db)
            .await
            .expect("runs");
        assert_eq!(runs.len(), 1, "{runs:?}");
        assert_eq!(runs[0].trigger, SyncTrigger::Scheduled);
        let next = world.config_row(config).await.next_run_at.expect("rescheduled");
        assert!(next > Utc::now() + TimeDelta::minutes(50), "{next}");
    }
    let run_jobs = jobs::Entity::find()
        .filter(jobs::Column::Kind.eq(RUN_KIND))
        .all(&world.db)
        .await
        .expect("jobs");
    assert_eq!(run_jobs.len(), 20);
    assert!(
        run_jobs
            .iter()
            .all(|j| j.status == JobStatus::Done && j.attempts == 1),
        "{run_jobs:?}"
    );
    let owners: BTreeSet<Option<String>> = run_jobs.iter().map(|j| j.lease_owner.clone()).collect();
    eprintln!("runs executed by {} instance(s)", owners.len());
}

/// The real server binary on the test database and emulator, with workers.
async fn spawn_binary(app: &TestApp) -> Child {
    let settings = app.settings();
    let emulator = app.server.emulator.base_url();
    let mut child = Command::new(env!("CARGO_BIN_EXE_chronos"))
        .arg("serve")
        .current_dir(app.server.db.dir())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &settings.database_url)
        .env("BIND_ADDR", "127.0.0.1:0")
        .env("GOOGLE_ACCOUNTS_URL", &emulator)
        .env("GOOGLE_OAUTH_URL", &emulator)
        .env("GOOGLE_API_URL", &emulator)
        .env(
            "GOOGLE_CLIENT_ID",
            settings.google.client_id.clone().unwrap_or_default(),
        )
        .env(
            "GOOGLE_CLIENT_SECRET",
            settings
                .google
                .client_secret
                .as_ref()
                .map(|s| s.expose_secret().to_owned())
                .unwrap_or_default(),
        )
        .env("ENCRYPTION_KEYS", settings.encryption_keys.to_env_string())
        .env("CSRF_SECRET", settings.csrf_secret.expose_secret())
        .env("SCHEDULER_ENABLED", "true")
        // The emulator has no quotas here: neither has the server.
        .env("GOOGLE_QUOTA_PER_USER_PER_MINUTE", "0")
        .env("GOOGLE_QUOTA_PER_PROJECT_PER_MINUTE", "0")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn chronos");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("the server starts")
        .expect("stdout")
        .expect("a line");
    assert!(first.starts_with("listening on http://"), "{first}");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    child
}

#[tokio::test]
async fn a_run_killed_midway_converges_on_the_rerun_without_duplicates() {
    // This server serves the API only; the binary runs the jobs.
    let app = TestApp::spawn_with(|settings| settings.scheduler_enabled = false).await;
    let world = World::without_workers(app).await;
    let config = world.config("ONE_WAY", json!({})).await;
    let start = Utc::now() + TimeDelta::hours(1);
    let mut originals = BTreeSet::new();
    for i in 0..2_000 {
        let at = start + TimeDelta::minutes(30 * i);
        let event = world
            .app
            .emulator()
            .insert_event(SOURCE, timed(&format!("Bulk {i}"), at))
            .expect("insert");
        originals.insert(event["id"].as_str().expect("id").to_owned());
    }
    // Slow Google down so the run is still writing when it is killed.
    world
        .control(
            Method::PUT,
            "/emulator/latency",
            json!({ "ms": 5, "batchPartMs": 5 }),
        )
        .await;
    let run = world.trigger(&config, false).await;
    let run_id = Uuid::parse_str(run["id"].as_str().expect("id")).expect("uuid");

    let mut first = spawn_binary(&world.app).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    loop {
        let row = sync_runs::Entity::find_by_id(run_id)
            .one(&world.db)
            .await
            .expect("run")
            .expect("row");
        if row.created >= 300 {
            assert!(row.created < 2_000, "killed too late: {row:?}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the run never got going: {row:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.start_kill().expect("SIGKILL");
    first.wait().await.expect("killed");
    let killed = sync_runs::Entity::find_by_id(run_id)
        .one(&world.db)
        .await
        .expect("run")
        .expect("row");
    assert_eq!(killed.status, SyncRunStatus::Running, "{killed:?}");
    world
        .control(Method::PUT, "/emulator/latency", json!({ "ms": 0 }))
        .await;

    // A new process takes the run over once its lease has expired, and finishes it.
    let mut second = spawn_binary(&world.app).await;
    let finished = world.finished(run_id).await;
    assert_eq!(finished.status, SyncRunStatus::Succeeded, "{finished:?}");
    // Copies that landed just before the kill are found by the rerun's listing, not created again.
    assert!(finished.created > 0 && finished.created <= 2_000, "{finished:?}");
    let mirrors = world.mirrors(DESTINATION).await;
    assert_eq!(mirrors.len(), 2_000, "exactly one mirror per event");
    let origins: BTreeSet<String> = mirrors.values().map(origin_of).collect();
    assert_eq!(origins, originals);
    assert_eq!(world.links(&config).await, 2_000);
    second.start_kill().expect("stop");
    second.wait().await.ok();
}

/// The websocket answers as POST does: every error carries a contract code, and text inputs are checked.
#[tokio::test]
async fn websocket_errors_carry_codes_and_text_inputs_are_checked() {
    let app = TestApp::spawn().await;
    app.sign_in("socket@example.com").await;
    let mut socket = app.websocket().await;
    let cases = [
        ("syntax", json!({ "query": "subscription { syncProgress(" })),
        ("unknown", json!({ "query": "subscription { noSuchField }" })),
        (
            "control",
            json!({
                "query": "subscription($id: ID) { syncProgress(configId: $id) { runId } }",
                "variables": { "id": "a\u{0}b" },
            }),
        ),
        // Cookie-changing operations need the HTTP session: refused with what to do instead.
        ("signout", json!({ "query": "mutation { signOut }" })),
    ];
    for (id, payload) in cases {
        socket.subscribe(id, payload.clone()).await;
        let answer = socket.receive(Duration::from_secs(10)).await.expect("answer");
        assert_eq!(answer["id"], id, "{answer}");
        let errors = if answer["type"] == "error" {
            answer["payload"].clone()
        } else {
            answer["payload"]["errors"].clone()
        };
        let first = &errors[0];
        assert_eq!(first["extensions"]["code"], "BAD_USER_INPUT", "{id}: {answer}");
        if id == "signout" {
            assert!(
                first["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("POST /graphql"),
                "{answer}"
            );
        }
        if id == "control" {
            assert!(
                first["message"].as_str().unwrap_or_default().contains("$id"),
                "{answer}"
            );
        }
        // Drain a trailing `complete` of the same operation, if the protocol sends one.
        if answer["type"] == "next" {
            let complete = socket.receive(Duration::from_secs(10)).await.expect("complete");
            assert_eq!(
                (complete["id"].as_str(), complete["type"].as_str()),
                (Some(id), Some("complete"))
            );
        }
    }
}

/// Mutations over the socket spend the same per-user rate limit as over POST, and a message larger than
/// a POST body may be is refused.
#[tokio::test]
async fn websocket_operations_are_rate_limited_and_capped_like_post() {
    let app = TestApp::spawn_with(|settings| settings.rate_limits.api_per_min = 10).await;
    app.sign_in("limited@example.com").await;
    let mut socket = app.websocket().await;
    let create = json!({ "query": "mutation { createTodoList(input: { name: \"Socket\" }) { id } }" });
    let mut codes = Vec::new();
    for i in 0..12 {
        let id = format!("m{i}");
        socket.subscribe(&id, create.clone()).await;
        let answer = socket.receive(Duration::from_secs(10)).await.expect("answer");
        assert_eq!(answer["id"], id, "{answer}");
        let code = answer["payload"]["errors"][0]["extensions"]["code"]
            .as_str()
            .map(str::to_owned);
        let complete = socket.receive(Duration::from_secs(10)).await.expect("complete");
        assert_eq!(complete["type"], "complete", "{complete}");
        let refused = code.is_some();
        codes.push(code);
        if refused {
            break;
        }
    }
    // What the sign-in left of the budget runs; the next one is refused as POST would refuse it.
    let (refused, ran) = codes.split_last().expect("answers");
    assert_eq!(refused.as_deref(), Some("RATE_LIMITED"), "{codes:?}");
    assert!(!ran.is_empty() && ran.iter().all(Option::is_none), "{codes:?}");
    // The same budget as POST: it is spent there too.
    let response = app.post_graphql("{ todoLists { id } }", json!({})).await;
    assert_eq!(response.status(), reqwest::StatusCode::TOO_MANY_REQUESTS);

    // A 2 MiB message closes the socket instead of being read.
    let mut socket = app.websocket().await;
    let huge = "x".repeat(2 * 1024 * 1024);
    let _ = socket
        .try_send(Message::text(
            json!({ "id": "huge", "type": "subscribe", "payload": { "query": huge } }).to_string(),
        ))
        .await;
    // Any message but the close fails the wait.
    socket.closed(Duration::from_secs(10)).await;
}

/// A message many times the socket's read buffer is read whole: a document near the document limit and
/// a message near the cap (variables the operation leaves unused) are both answered.
#[tokio::test]
async fn websocket_messages_longer_than_the_read_buffer_are_read_whole() {
    let app = TestApp::spawn().await;
    app.sign_in("long@example.com").await;
    let mut socket = app.websocket().await;
    let read_buffer = chronos::http::WEBSOCKET_READ_BUFFER_BYTES;

    // Positive control: a short operation.
    let short = socket.run("short", "{ me { email } }").await;
    assert_eq!(short["data"]["me"]["email"], "long@example.com", "{short}");

    let padded = format!("{{ me {{ email }} }}\n#{}", "x".repeat(15 * read_buffer));
    assert!(padded.len() > 10 * read_buffer);
    let answer = socket.run("padded", &padded).await;
    assert_eq!(answer["data"]["me"]["email"], "long@example.com", "{answer}");

    let padding = "y".repeat(chronos::http::MAX_BODY_BYTES - 64 * 1024);
    socket
        .subscribe(
            "variables",
            json!({ "query": "{ me { email } }", "variables": { "pad": padding } }),
        )
        .await;
    let next = socket.next_message().await;
    assert_eq!(
        (next["id"].as_str(), next["type"].as_str()),
        (Some("variables"), Some("next")),
        "{next}"
    );
    assert_eq!(
        next["payload"]["data"]["me"]["email"], "long@example.com",
        "{next}"
    );
}
