//! Many tenants: 1,000 users with 3 calendars and 2 sync configs each (their primary copied into each of
//! the other two), every config scheduled every 5 minutes, served by two `chronos serve` processes on one
//! PostgreSQL database, with the Google emulator answering every request 20 ms late.
//!
//! 1. Catch-up: every config is due at once when the servers start (the first run of each copies 5
//!    events); how long until each has run once, and the runs completed per minute meanwhile.
//! 2. Steady state: the configs' next runs are then spread evenly over the next 5 minutes (where the
//!    schedule's jitter leaves them after a cycle, without waiting for one), and for `BENCH_MINUTES` (3)
//!    the benchmark measures, from the run rows: runs completed per minute (the schedule asks 2,000 / 5 =
//!    400), the Google requests of every idle run (a scheduled run that changed nothing; target at most 2),
//!    and the wait between a run being queued and a worker taking it. Meanwhile a signed-in user reads a
//!    week page (`events`, `first: 100`, a week of 200 events) over HTTP 5 times a second, alternating
//!    between the two servers: p50 and p99 (target p99 < 50 ms).
//!
//! ```sh
//! cargo build --release --bin chronos && cargo build --release -p google-emulator
//! BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo run --release --example tenants_bench
//! ```
//! The tenants are seeded straight into the database (users, accounts holding access tokens the emulator
//! issued, encrypted as sign-in encrypts them, calendars and configs: `support/seed.rs`) and at the emulator
//! over its control API; the reader signs in through the emulator. The servers run unpaced
//! (`GOOGLE_QUOTA_PER_*=0`: the emulator enforces no quota here) with the other limits at their defaults.
//! `BENCH_USERS` (1,000) and `BENCH_MINUTES` (3) scale it.

// Each benchmark uses its part of the shared support.
#[allow(dead_code)]
#[path = "support/bench_database.rs"]
mod bench_database;
#[allow(dead_code)]
#[path = "support/browser.rs"]
mod browser;
#[allow(dead_code)]
#[path = "support/google_host.rs"]
mod google_host;
#[allow(dead_code)]
#[path = "support/seed.rs"]
mod seed;
#[allow(dead_code)]
#[path = "support/server_process.rs"]
mod server_process;

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use base64::Engine as _;
use bench_database::BenchDatabase;
use browser::Browser;
use chrono::{DateTime, Datelike as _, TimeDelta, Utc};
use chronos::{
    app::Application,
    config::Settings,
    entities::{
        enums::{SyncRunStatus, SyncTrigger},
        sync_runs,
    },
    state::AppState,
};
use futures::StreamExt as _;
use google_host::GoogleHost;
use sea_orm::{
    ColumnTrait as _, ConnectionTrait as _, EntityTrait as _, PaginatorTrait as _, QueryFilter as _,
    QuerySelect as _,
};
use serde_json::json;
use server_process::{ServerProcess, chronos_binary, google_emulator_env};
use uuid::Uuid;

const INTERVAL_MINUTES: i32 = 5;
const EVENTS_PER_SOURCE: usize = 5;
const READER: &str = "reader@tenants.bench.example.com";
const READER_EVENTS: usize = 200;
/// The reader's pace: 5 week pages a second, within the default API rate limit (600 a minute).
const READ_EVERY: Duration = Duration::from_millis(200);
const LATENCY_MS: u64 = 20;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let users = env_number("BENCH_USERS", 1_000);
    let minutes = env_number("BENCH_MINUTES", 3).max(1);
    let dir = tempfile::tempdir()?;
    let database = BenchDatabase::from_env(dir.path()).await?;
    if database.label != "PostgreSQL" {
        database.remove().await?;
        bail!("two instances share one PostgreSQL database: set BENCH_DATABASE_URL");
    }
    let result = bench(&database, dir.path(), users, minutes).await;
    database.remove().await?;
    result
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|raw| raw.parse().ok())
        .unwrap_or(default)
}

fn random_base64() -> String {
    base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>())
}

async fn bench(
    database: &BenchDatabase,
    dir: &std::path::Path,
    users: usize,
    minutes: usize,
) -> anyhow::Result<()> {
    let binary = chronos_binary()?;
    let emulator = GoogleHost::start().await?;
    // One key ring and CSRF secret for the servers and the seeding below.
    let secrets = [
        ("ENCRYPTION_KEYS".to_owned(), format!("k1:{}", random_base64())),
        ("CSRF_SECRET".to_owned(), random_base64()),
    ];
    let vars: HashMap<String, String> = secrets
        .iter()
        .cloned()
        .chain([
            ("DATABASE_URL".to_owned(), database.url.clone()),
            ("BIND_ADDR".to_owned(), "127.0.0.1:0".to_owned()),
            ("CHRONOS_DATA_DIR".to_owned(), dir.display().to_string()),
        ])
        .collect();
    let settings = Settings::from_vars(&vars).map_err(|e| anyhow::anyhow!("{e}"))?;
    // Migrates the database; never serves (the servers below do).
    let seeding = Application::build(settings, true).await?;
    let state = seeding.state().clone();

    println!(
        "tenants_bench: {users} users x 3 calendars x 2 sync configs every {INTERVAL_MINUTES} min, two servers \
         on one PostgreSQL database, {LATENCY_MS} ms of emulator latency; emulator: {}",
        emulator.describe()
    );
    println!("load average before: {}", load_average());
    let seeded = Instant::now();
    let configs = seed_tenants(&state, &emulator, users).await?;
    let monday = seed_reader(&emulator).await?;
    println!(
        "seeded {users} users and {configs} configs in {:.1} s",
        seeded.elapsed().as_secs_f64()
    );

    let mut env = google_emulator_env(&database.url, &emulator.base_url);
    env.extend(secrets);
    for (name, value) in [
        ("GOOGLE_QUOTA_PER_USER_PER_MINUTE", "0"),
        ("GOOGLE_QUOTA_PER_PROJECT_PER_MINUTE", "0"),
    ] {
        env.push((name.to_owned(), value.to_owned()));
    }
    emulator
        .put("/emulator/latency", json!({ "ms": LATENCY_MS }))
        .await?;
    let started = Instant::now();
    let first = ServerProcess::start(&binary, dir, &env).await?;
    let second = ServerProcess::start(&binary, dir, &env).await?;
    let bases = [first.base.clone(), second.base.clone()];

    // The reader signs in meanwhile; its primary calendar is cached once it is READY.
    let reader = Browser::new(&bases[0])?;
    reader.sign_in(READER).await?;
    reader.wait_for_primary_ready().await?;

    // 1. Catch-up: every config due at once.
    let deadline = Instant::now() + Duration::from_secs(1_800);
    loop {
        let ran = configs_run_once(&state).await?;
        if ran >= configs {
            break;
        }
        if Instant::now() > deadline {
            bail!("{ran} of {configs} configs ran within 30 minutes");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let caught_up = started.elapsed();
    let failed = sync_runs::Entity::find()
        .filter(sync_runs::Column::Status.eq(SyncRunStatus::Failed))
        .count(&state.db)
        .await?;
    println!(
        "\n1. catch-up: all {configs} configs ran once (first runs, {EVENTS_PER_SOURCE} events copied each) \
         {:.1} s after the servers started: {:.0} runs a minute; failed runs: {failed}",
        caught_up.as_secs_f64(),
        configs as f64 / caught_up.as_secs_f64() * 60.0,
    );

    // 2. Steady state: the next runs spread over one interval, as the schedule's jitter leaves them.
    state
        .db
        .execute_unprepared(&format!(
            "UPDATE sync_configs SET next_run_at = now() + random() * interval '{INTERVAL_MINUTES} minutes' \
             WHERE interval_minutes IS NOT NULL"
        ))
        .await?;
    emulator.delete("/emulator/stats").await?;
    let window_start = Utc::now();
    let reading = Arc::new(AtomicBool::new(true));
    let sampler = tokio::spawn(read_week_pages(reader, bases, monday, reading.clone()));
    tokio::time::sleep(Duration::from_secs(60 * minutes as u64)).await;
    reading.store(false, Ordering::Relaxed);
    let window_end = Utc::now();
    let mut page_latencies = sampler.await??;
    let stats = emulator.get("/emulator/stats").await?;

    let runs = sync_runs::Entity::find()
        .filter(sync_runs::Column::FinishedAt.gte(window_start))
        .filter(sync_runs::Column::FinishedAt.lt(window_end))
        .all(&state.db)
        .await?;
    let window_minutes = (window_end - window_start).num_milliseconds() as f64 / 60_000.0;
    let idle: Vec<&sync_runs::Model> = runs
        .iter()
        .filter(|run| {
            run.trigger == SyncTrigger::Scheduled
                && run.status == SyncRunStatus::Succeeded
                && run.created + run.updated + run.deleted + run.failed == 0
        })
        .collect();
    let mut idle_calls: Vec<i32> = idle.iter().map(|run| run.google_calls).collect();
    idle_calls.sort_unstable();
    let over_two = idle_calls.iter().filter(|&&calls| calls > 2).count();
    let mut waits: Vec<f64> = runs
        .iter()
        .filter_map(|run| {
            run.started_at
                .map(|started| (started - run.created_at).num_milliseconds() as f64)
        })
        .collect();
    waits.sort_by(f64::total_cmp);
    let not_succeeded = runs
        .iter()
        .filter(|run| run.status != SyncRunStatus::Succeeded)
        .count();
    let requests = stats["totalRequests"].as_u64().unwrap_or(0) - stats["batchParts"].as_u64().unwrap_or(0);
    println!(
        "\n2. steady state, {window_minutes:.1} min: {} runs completed, {:.0} a minute (the schedule asks {:.0}); \
         not succeeded: {not_succeeded}",
        runs.len(),
        runs.len() as f64 / window_minutes,
        configs as f64 / f64::from(INTERVAL_MINUTES),
    );
    println!(
        "   idle runs: {}, Google requests each: mean {:.2}, max {} ({over_two} over 2; target <= 2: {}); \
         all Google requests in the window / runs: {:.2}",
        idle_calls.len(),
        idle_calls.iter().map(|&c| f64::from(c)).sum::<f64>() / idle_calls.len().max(1) as f64,
        idle_calls.last().copied().unwrap_or(0),
        verdict(over_two == 0 && !idle_calls.is_empty()),
        requests as f64 / runs.len().max(1) as f64,
    );
    println!(
        "   queued to taken by a worker: p50 {:.0} ms, p99 {:.0} ms",
        quantile(&waits, 50),
        quantile(&waits, 99),
    );
    page_latencies.sort_by(f64::total_cmp);
    println!(
        "   week page (events, first: 100, {READER_EVENTS} events in the week) over HTTP, {} requests: p50 \
         {:.1} ms, p99 {:.1} ms, worst {:.1} ms (target p99 < 50 ms: {})",
        page_latencies.len(),
        quantile(&page_latencies, 50),
        quantile(&page_latencies, 99),
        quantile(&page_latencies, 100),
        verdict(quantile(&page_latencies, 99) < 50.0),
    );
    println!("load average after: {}", load_average());
    drop((first, second));
    emulator.stop().await;
    Ok(())
}

fn verdict(ok: bool) -> &'static str {
    if ok { "ok" } else { "MISSED" }
}

fn quantile(sorted: &[f64], p: usize) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// Every tenant at the emulator (an account with two more calendars, 5 events in the primary) and in the
/// database (user, account, calendars, two configs due now). Returns the number of configs.
async fn seed_tenants(state: &AppState, emulator: &GoogleHost, users: usize) -> anyhow::Result<usize> {
    let seeded: Vec<anyhow::Result<usize>> = futures::stream::iter(0..users)
        .map(|n| async move {
            let email = format!("tenant{n}@tenants.bench.example.com");
            emulator
                .post("/emulator/accounts", json!({ "email": email }))
                .await?;
            let mut google_ids = vec![email.clone()];
            for summary in ["Team", "Family"] {
                let calendar = emulator
                    .post(
                        &format!("/emulator/accounts/{email}/calendars"),
                        json!({ "summary": summary }),
                    )
                    .await?;
                google_ids.push(calendar["id"].as_str().context("calendar id")?.to_owned());
            }
            let start = Utc::now() + TimeDelta::days(1);
            for i in 0..EVENTS_PER_SOURCE {
                let at = start + TimeDelta::hours(5 * i64::try_from(i)?);
                emulator
                    .post(
                        &format!("/emulator/calendars/{email}/events"),
                        json!({
                            "summary": format!("Tenant {n} event {i}"),
                            "start": { "dateTime": at.to_rfc3339() },
                            "end": { "dateTime": (at + TimeDelta::minutes(45)).to_rfc3339() },
                        }),
                    )
                    .await?;
            }
            let user_id = seed::user(state, &email).await?;
            let account_id = seed::account(state, user_id, &email, emulator.token(&email).await?).await?;
            let mut calendars = Vec::with_capacity(3);
            for (i, google_id) in google_ids.iter().enumerate() {
                calendars.push(seed::calendar(state, account_id, google_id, i == 0).await?);
            }
            for destination in &calendars[1..] {
                seed::one_way_config(
                    state,
                    user_id,
                    calendars[0],
                    *destination,
                    Some(INTERVAL_MINUTES),
                    Some(Utc::now()),
                )
                .await?;
            }
            Ok(2)
        })
        .buffer_unordered(16)
        .collect()
        .await;
    seeded.into_iter().sum()
}

/// The reader's account at the emulator with 200 events in next week; returns that week's Monday.
async fn seed_reader(emulator: &GoogleHost) -> anyhow::Result<DateTime<Utc>> {
    emulator
        .post("/emulator/accounts", json!({ "email": READER }))
        .await?;
    let today = Utc::now().date_naive();
    let days_to_monday = 7 - i64::from(today.weekday().num_days_from_monday());
    let monday = (today + TimeDelta::days(days_to_monday))
        .and_hms_opt(0, 0, 0)
        .context("midnight")?
        .and_utc();
    for i in 0..READER_EVENTS {
        // Spread over the week's working hours.
        let i = i64::try_from(i)?;
        let at = monday + TimeDelta::days(i % 7) + TimeDelta::hours(8) + TimeDelta::minutes((i / 7) * 20);
        emulator
            .post(
                &format!("/emulator/calendars/{READER}/events"),
                json!({
                    "summary": format!("Reading {i}"),
                    "description": "Agenda: the usual.",
                    "location": "Room 1",
                    "start": { "dateTime": at.to_rfc3339() },
                    "end": { "dateTime": (at + TimeDelta::minutes(20)).to_rfc3339() },
                }),
            )
            .await?;
    }
    Ok(monday)
}

/// Configs with at least one succeeded run.
async fn configs_run_once(state: &AppState) -> anyhow::Result<usize> {
    let configs: Vec<Uuid> = sync_runs::Entity::find()
        .select_only()
        .column(sync_runs::Column::ConfigId)
        .distinct()
        .filter(sync_runs::Column::Status.eq(SyncRunStatus::Succeeded))
        .into_tuple()
        .all(&state.db)
        .await?;
    Ok(configs.len())
}

const WEEK_PAGE: &str = "query($min: DateTime!, $max: DateTime!) { events(timeMin: $min, timeMax: $max, first: 100) \
    { edges { node { id summary description location start { dateTime date } end { dateTime date } status } } \
    pageInfo { hasNextPage endCursor } } }";

/// Reads the week page every [`READ_EVERY`] while `reading`, alternating servers; each request's time.
async fn read_week_pages(
    mut reader: Browser,
    bases: [String; 2],
    monday: DateTime<Utc>,
    reading: Arc<AtomicBool>,
) -> anyhow::Result<Vec<f64>> {
    let variables = json!({
        "min": monday.to_rfc3339(),
        "max": (monday + TimeDelta::days(7)).to_rfc3339(),
    });
    let mut latencies = Vec::new();
    let mut next = tokio::time::Instant::now();
    while reading.load(Ordering::Relaxed) {
        reader.base.clone_from(&bases[latencies.len() % 2]);
        let started = Instant::now();
        let data = reader.data(WEEK_PAGE, variables.clone()).await?;
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
        let edges = data["events"]["edges"].as_array().map_or(0, Vec::len);
        anyhow::ensure!(edges == 100, "the week page held {edges} events, not 100");
        next += READ_EVERY;
        tokio::time::sleep_until(next).await;
    }
    Ok(latencies)
}
