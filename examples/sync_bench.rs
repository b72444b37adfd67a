//! What sync runs cost, against the Google emulator in this process with 20 ms of latency per request:
//! 1. the first one-way sync of 10,000 events into an empty calendar (Google requests, wall time, peak
//!    memory);
//! 2. a re-run with no changes (Google requests, time);
//! 3. a run after 100 source events changed (Google requests, time).
//!
//! ```sh
//! cargo run --release --example sync_bench                      # SQLite (a temporary file)
//! BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!     cargo run --release --example sync_bench                  # PostgreSQL (a scratch database)
//! ```
//! `BENCH_QUOTA=google` turns on Google's quotas at the emulator (600 requests a minute per user, 10,000
//! per project, batch parts counted) and Chronos's pacing to them: the first sync then takes about the
//! quota's floor (10,000 / 600 minutes), and the figure to read is its ratio to that floor and the number
//! of refusals (0). Without it both are off and the runs measure Chronos alone.
//! `BENCH_EVENTS` changes the number of events (default 10,000), `BENCH_LATENCY_MS` the latency (20), and
//! `BENCH_PART_LATENCY_MS` adds latency to each part of a batch, parts in sequence (0: a batch is one
//! request, as the target counts it).
//! Runs execute in this process through `chronos::sync::runner::execute`, exactly as a worker runs them.
//! The emulator runs as its own process when its binary is built (`cargo build --release -p
//! google-emulator`), so the peak memory printed is the server's alone; otherwise it runs in this
//! process and the figure covers both.

// Each benchmark uses its part of the shared support.
#[allow(dead_code)]
#[path = "support/bench_database.rs"]
mod bench_database;
#[path = "support/google_host.rs"]
mod google_host;
#[path = "support/proc_status.rs"]
mod proc_status;
#[path = "support/seed.rs"]
mod seed;

use std::time::{Duration, Instant};

use anyhow::Context as _;
use bench_database::BenchDatabase;
use chrono::{TimeDelta, Utc};
use chronos::{
    app::Application,
    config::{GoogleQuota, GoogleSettings, Settings},
    entities::{
        enums::{SyncRunStatus, SyncTrigger},
        sync_runs,
    },
    state::AppState,
};
use google_host::GoogleHost;
use proc_status::memory_kib;
use sea_orm::{ActiveModelTrait, EntityTrait};
use serde_json::{Value, json};
use uuid::Uuid;

const SOURCE: &str = "source@bench.example.com";
const DESTINATION: &str = "destination@bench.example.com";
const CHANGED: usize = 100;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::var_os("RUST_LOG").is_some() {
        chronos::telemetry::init(chronos::config::LogFormat::Text);
    }
    let events: usize = env_number("BENCH_EVENTS", 10_000);
    let latency_ms: usize = env_number("BENCH_LATENCY_MS", 20);
    let part_latency_ms: usize = env_number("BENCH_PART_LATENCY_MS", 0);
    let dir = tempfile::tempdir()?;
    let database = BenchDatabase::from_env(dir.path()).await?;
    let latency = Latency {
        ms: latency_ms,
        batch_part_ms: part_latency_ms,
    };
    let result = bench(&database.url, dir.path(), events, latency).await;
    database.remove().await?;
    result
}

#[derive(Clone, Copy)]
struct Latency {
    ms: usize,
    batch_part_ms: usize,
}

impl Latency {
    fn body(self) -> Value {
        json!({ "ms": self.ms, "batchPartMs": self.batch_part_ms })
    }
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|raw| raw.parse().ok())
        .unwrap_or(default)
}

async fn bench(url: &str, data_dir: &std::path::Path, events: usize, latency: Latency) -> anyhow::Result<()> {
    let latency_ms = latency.ms;
    let emulator = GoogleHost::start().await?;
    emulator
        .post("/emulator/accounts", json!({ "email": SOURCE }))
        .await?;
    emulator
        .post("/emulator/accounts", json!({ "email": DESTINATION }))
        .await?;
    let start = Utc::now() + TimeDelta::hours(1);
    let mut source_ids = Vec::with_capacity(events);
    for i in 0..events {
        let at = start + TimeDelta::minutes(12 * i64::try_from(i)?);
        let event = emulator
            .post(
                &format!("/emulator/calendars/{SOURCE}/events"),
                json!({
                    "summary": format!("Event {i}"),
                    "description": "Agenda: the usual.",
                    "location": "Room 1",
                    "start": { "dateTime": at.to_rfc3339(), "timeZone": "Europe/Berlin" },
                    "end": { "dateTime": (at + TimeDelta::minutes(30)).to_rfc3339(), "timeZone": "Europe/Berlin" },
                }),
            )
            .await?;
        source_ids.push(event["id"].as_str().context("event id")?.to_owned());
    }
    let before_kib = memory_kib(None, "VmRSS");

    let mut settings = Settings::for_local(url, data_dir).map_err(|e| anyhow::anyhow!("{e}"))?;
    settings.google = GoogleSettings::single_host(&url::Url::parse(&emulator.base_url)?);
    let quota = std::env::var("BENCH_QUOTA").is_ok_and(|value| value == "google");
    settings.google.quota = if quota {
        emulator
            .put(
                "/emulator/quotas",
                json!({ "perUserPerMinute": 600, "perProjectPerMinute": 10_000 }),
            )
            .await?;
        GoogleQuota::GOOGLE
    } else {
        GoogleQuota::UNPACED
    };
    settings.scheduler_enabled = false;
    let app = Application::build(settings, true).await?;
    let state = app.state().clone();
    let config_id = seed(&state, &emulator).await?;
    emulator.put("/emulator/latency", latency.body()).await?;

    println!(
        "sync_bench: {events} events, {latency_ms} ms of emulator latency per request, {} ms per batch part",
        latency.batch_part_ms
    );
    let database = if url.starts_with("sqlite") {
        "SQLite"
    } else {
        "PostgreSQL"
    };
    println!("database: {database}; emulator: {}", emulator.describe());
    println!(
        "quotas: {}",
        if quota {
            "Google's (600/min per user, 10,000/min per project), Chronos paced to them"
        } else {
            "off at the emulator, Chronos unpaced"
        }
    );
    println!(
        "memory of this process before the first run: {} MiB",
        before_kib / 1024
    );

    // 1. First sync into an empty calendar.
    let first = measured_run(&state, &emulator, config_id).await?;
    let limit = events.div_ceil(50) + 10;
    println!(
        "\n1. first one-way sync of {events} events: {} created, {} Google requests (limit {limit}: {}), \
         {} batch parts, {:.1} s wall, peak RSS of this process {} MiB",
        first.run.created,
        first.requests,
        verdict(first.requests <= limit),
        first.batch_parts,
        first.elapsed.as_secs_f64(),
        memory_kib(None, "VmHWM") / 1024,
    );
    let refusals = emulator.get("/emulator/stats").await?["quotaRefusals"]["total"]
        .as_u64()
        .unwrap_or(0);
    if quota {
        let floor = events as f64 / 600.0 * 60.0;
        println!(
            "   with the quota: {:.0} s against the quota's floor of {floor:.0} s ({:.3} x, target <= 1.1: {}); \
             quota refusals {refusals} (target 0: {})",
            first.elapsed.as_secs_f64(),
            first.elapsed.as_secs_f64() / floor,
            verdict(first.elapsed.as_secs_f64() <= floor * 1.1),
            verdict(refusals == 0),
        );
    }

    // 2. Nothing changed (the first re-run also lists back the copies the first run wrote).
    // Runs that follow a writing run within seconds always plan (see `sync::runner::quiet`): leave the
    // pause a scheduled run would have.
    let pause = (chronos::sync::runner::quiet::MARGIN + TimeDelta::seconds(1)).to_std()?;
    for label in [
        "2. re-run with no changes (it lists back the first run's own writes)",
        "   re-run with no changes, steady state",
        "   and again",
    ] {
        tokio::time::sleep(pause).await;
        let quiet = measured_run(&state, &emulator, config_id).await?;
        let waiting_ms = quiet.requests * latency_ms;
        println!(
            "{label}: {} Google requests (limit 2: {}), {:.0} ms wall, of which {waiting_ms} ms is the \
             emulator's latency: {:.0} ms of server time; peak RSS so far {} MiB",
            quiet.requests,
            verdict(quiet.requests <= 2),
            quiet.elapsed.as_secs_f64() * 1000.0,
            (quiet.elapsed.as_secs_f64() * 1000.0 - waiting_ms as f64).max(0.0),
            memory_kib(None, "VmHWM") / 1024,
        );
    }

    // 3. A hundred source events changed.
    emulator.put("/emulator/latency", json!({ "ms": 0 })).await?;
    let token = emulator.token(SOURCE).await?;
    let http = reqwest::Client::new();
    for id in source_ids.iter().step_by((events / CHANGED).max(1)).take(CHANGED) {
        let response = http
            .patch(format!(
                "{}/calendar/v3/calendars/{SOURCE}/events/{id}",
                emulator.base_url
            ))
            .bearer_auth(&token)
            .json(&json!({ "summary": "Changed" }))
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success(),
            "patch failed: {}",
            response.status()
        );
    }
    emulator.put("/emulator/latency", latency.body()).await?;
    let changed = measured_run(&state, &emulator, config_id).await?;
    let limit = 2 + CHANGED.div_ceil(50);
    println!(
        "3. run after {CHANGED} changed events: {} updated, {} Google requests (limit {limit}: {}), {:.0} ms wall",
        changed.run.updated,
        changed.requests,
        verdict(changed.requests <= limit),
        changed.elapsed.as_secs_f64() * 1000.0,
    );
    println!(
        "peak RSS of this process over the whole benchmark: {} MiB",
        memory_kib(None, "VmHWM") / 1024
    );
    emulator.stop().await;
    Ok(())
}

fn verdict(ok: bool) -> &'static str {
    if ok { "ok" } else { "OVER" }
}

struct Measured {
    run: sync_runs::Model,
    /// HTTP requests Google received (a batch counts once).
    requests: usize,
    batch_parts: usize,
    elapsed: Duration,
}

/// Runs the config once, as a worker would, and counts what reached Google.
async fn measured_run(state: &AppState, emulator: &GoogleHost, config_id: Uuid) -> anyhow::Result<Measured> {
    emulator.delete("/emulator/stats").await?;
    // The run row alone, without its job: this process executes it, not a worker.
    let run = chronos::sync::runner::queued_run(config_id, SyncTrigger::Manual, false)
        .insert(&state.db)
        .await?;
    let started = Instant::now();
    chronos::sync::runner::execute(state, run.id)
        .await
        .map_err(|e| anyhow::anyhow!("run failed: {e:?}"))?;
    let elapsed = started.elapsed();
    let run = sync_runs::Entity::find_by_id(run.id)
        .one(&state.db)
        .await?
        .context("run row")?;
    anyhow::ensure!(
        run.status == SyncRunStatus::Succeeded,
        "run did not succeed: {run:?}"
    );
    let stats = emulator.get("/emulator/stats").await?;
    let number = |field: &str| usize::try_from(stats[field].as_u64().unwrap_or_default()).unwrap_or_default();
    Ok(Measured {
        requests: number("totalRequests").saturating_sub(number("batchParts")),
        batch_parts: number("batchParts"),
        run,
        elapsed,
    })
}

/// The user, both accounts (with access tokens the emulator issued), their primary calendars and a
/// ONE_WAY config between them.
async fn seed(state: &AppState, emulator: &GoogleHost) -> anyhow::Result<Uuid> {
    let user_id = seed::user(state, SOURCE).await?;
    let mut calendar_ids = Vec::new();
    for email in [SOURCE, DESTINATION] {
        let account_id = seed::account(state, user_id, email, emulator.token(email).await?).await?;
        calendar_ids.push(seed::calendar(state, account_id, email, true).await?);
    }
    seed::one_way_config(state, user_id, calendar_ids[0], calendar_ids[1], None, None).await
}
