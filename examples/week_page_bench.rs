//! What a week page costs over HTTP: a signed-in user with 10,000 cached events, 875 of them in the week
//! asked for, reading one page of `events` for that week through `POST /graphql`, with 1 and 16 clients,
//! `first` 10 and 100, for a recent week and a week in mid-history. Then the GraphQL overhead: the same
//! domain read (`events_in_window`, the same page) served by a plain axum JSON route in this process, with
//! 16 clients, and the ratio of the two throughputs.
//!
//! ```sh
//! cargo run --release --example week_page_bench                      # SQLite (a temporary file)
//! BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!     cargo run --release --example week_page_bench                  # PostgreSQL (a scratch database)
//! ```
//! `BENCH_SECONDS` sets how long each measurement runs (5).

#[path = "support/bench_database.rs"]
mod bench_database;
// This benchmark uses its part of the shared support.
#[allow(dead_code)]
#[path = "support/browser.rs"]
mod browser;

use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::{Json, Router, extract::Query, routing::get};
use bench_database::BenchDatabase;
use browser::Browser;
use chrono::{DateTime, TimeDelta, Utc};
use chronos::{
    app::Application,
    config::{GoogleQuota, GoogleSettings, Settings},
    entities::{calendars, google_accounts},
    events::{
        recurrence::Window,
        store,
        window::{self, WindowQuery},
    },
    state::AppState,
    work_budget::{self, WorkBudget},
};
use google_emulator::{Emulator, EmulatorConfig};
use sea_orm::EntityTrait as _;
use serde_json::{Value, json};
use uuid::Uuid;

const EMAIL: &str = "week@bench.example.com";
const EVENTS: i64 = 10_000;
const IN_WEEK: i64 = 875;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let dir = tempfile::tempdir()?;
    let database = BenchDatabase::from_env(dir.path()).await?;
    let result = bench(&database, dir.path(), Duration::from_secs(seconds)).await;
    database.remove().await?;
    result
}

async fn bench(database: &BenchDatabase, data_dir: &std::path::Path, each: Duration) -> anyhow::Result<()> {
    let emulator = Emulator::spawn(EmulatorConfig::without_quotas()).await?;
    emulator.emulator.create_account(EMAIL, None);
    let mut settings = Settings::for_local(&database.url, data_dir).map_err(|e| anyhow::anyhow!("{e}"))?;
    settings.google = GoogleSettings::single_host(&url::Url::parse(&emulator.base_url())?);
    settings.google.quota = GoogleQuota::UNPACED;
    settings.scheduler_enabled = false;
    settings.rate_limits.api_per_min = 0;
    settings.rate_limits.in_flight_per_user = 0;
    let app = Application::build(settings, true).await?;
    let state = app.state().clone();
    let base = format!("http://{}", app.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    let browser = Browser::new(&base)?;
    // The sign-in lists the calendars; their events come from `fill` (no workers run here).
    browser.sign_in(EMAIL).await?;
    let (user_id, calendar) = primary_calendar(&state).await?;

    // 875 events in each of the two weeks measured, the rest spread over two years.
    let recent: DateTime<Utc> = "2026-11-30T00:00:00Z".parse()?;
    let mid_history = recent - TimeDelta::days(364);
    let filled = Instant::now();
    fill(&state, user_id, &calendar, recent, mid_history).await?;
    println!(
        "week_page_bench: {EVENTS} cached events ({IN_WEEK} in each week measured), database: {}, filled in {:.1} s",
        database.label,
        filled.elapsed().as_secs_f64()
    );

    let http = reqwest::Client::new();
    let csrf = browser.csrf().context("csrf cookie")?;
    let cookie = browser.cookies().context("cookies")?;
    for (label, monday) in [("recent week", recent), ("mid-history week", mid_history)] {
        for first in [100, 10] {
            for clients in [1, 16] {
                let request = GraphqlPage {
                    http: http.clone(),
                    url: format!("{base}/graphql"),
                    cookie: cookie.clone(),
                    csrf: csrf.clone(),
                    body: week_query(monday, first),
                };
                let figures = measure(clients, each, move || {
                    let request = request.clone();
                    async move { request.send().await }
                })
                .await?;
                println!("{label}, first {first:>3}, {clients:>2} client(s): {figures}");
            }
        }
    }

    // GraphQL's overhead: the same read through a plain JSON route.
    let plain = plain_route(state.clone(), user_id).await?;
    let graphql = GraphqlPage {
        http: http.clone(),
        url: format!("{base}/graphql"),
        cookie,
        csrf,
        body: week_query(recent, 100),
    };
    let through_graphql = measure(16, each, move || {
        let request = graphql.clone();
        async move { request.send().await }
    })
    .await?;
    let plain_url = format!(
        "{plain}/week?first=100&monday={}",
        recent.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let through_plain = measure(16, each, move || {
        let (http, url) = (http.clone(), plain_url.clone());
        async move {
            let response = http.get(&url).send().await?;
            anyhow::ensure!(
                response.status().is_success(),
                "plain route answered {}",
                response.status()
            );
            response.bytes().await?;
            Ok(())
        }
    })
    .await?;
    println!("recent week, first 100, 16 clients, plain JSON route: {through_plain}");
    println!(
        "GraphQL / plain throughput: {:.2} (target at least 0.8)",
        through_graphql.per_second / through_plain.per_second
    );

    let _ = stop.send(());
    server.await??;
    Ok(())
}

fn week_query(monday: DateTime<Utc>, first: i32) -> Value {
    json!({
        "query": "query($min: DateTime!, $max: DateTime!, $first: Int) { events(timeMin: $min, timeMax: $max, first: $first) { edges { node { id summary description location start { dateTime date } end { dateTime date } status } } pageInfo { hasNextPage endCursor } } }",
        "variables": {
            "min": monday.to_rfc3339(),
            "max": (monday + TimeDelta::days(7)).to_rfc3339(),
            "first": first,
        },
    })
}

async fn primary_calendar(state: &AppState) -> anyhow::Result<(Uuid, calendars::Model)> {
    let rows = calendars::Entity::find()
        .find_also_related(google_accounts::Entity)
        .all(&state.db)
        .await?;
    let (calendar, account) = rows
        .into_iter()
        .find(|(calendar, _)| calendar.is_primary)
        .context("the primary calendar")?;
    Ok((account.context("its account")?.user_id, calendar))
}

/// Writes the events into the cache as a listing from Google would.
async fn fill(
    state: &AppState,
    user_id: Uuid,
    calendar: &calendars::Model,
    recent: DateTime<Utc>,
    mid_history: DateTime<Utc>,
) -> anyhow::Result<()> {
    let weeks = [recent, mid_history];
    let in_weeks = weeks
        .iter()
        .flat_map(|monday| (0..IN_WEEK).map(move |n| *monday + TimeDelta::seconds(n * 604_800 / IN_WEEK)));
    // The rest over two years, outside the two weeks (so each holds exactly IN_WEEK).
    let spread = EVENTS - 2 * IN_WEEK;
    let first_day = recent - TimeDelta::days(730);
    let elsewhere = (0..spread * 2)
        .map(|n| first_day + TimeDelta::seconds(n * 730 * 86_400 / (spread * 2)))
        .filter(|start| {
            !weeks.iter().any(|monday| {
                *start >= *monday - TimeDelta::hours(1) && *start < *monday + TimeDelta::days(7)
            })
        })
        .take(usize::try_from(spread)?);
    let listing: Vec<chronos::google::Event> = in_weeks
        .chain(elsewhere)
        .enumerate()
        .map(|(n, start)| {
            serde_json::from_value(json!({
                "id": format!("bench{n:05}"),
                "status": "confirmed",
                "summary": format!("Meeting {n}"),
                "description": "Agenda: the usual, and whatever comes up.",
                "location": "Room 4",
                "start": { "dateTime": start.to_rfc3339() },
                "end": { "dateTime": (start + TimeDelta::minutes(45)).to_rfc3339() },
            }))
        })
        .collect::<Result<_, _>>()?;
    store::upsert_listing(&state.db, &state.cipher, user_id, calendar, &listing)
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    Ok(())
}

#[derive(Clone)]
struct GraphqlPage {
    http: reqwest::Client,
    url: String,
    cookie: reqwest::header::HeaderValue,
    csrf: String,
    body: Value,
}

impl GraphqlPage {
    async fn send(&self) -> anyhow::Result<()> {
        let response = self
            .http
            .post(&self.url)
            .header("cookie", self.cookie.clone())
            .header("x-csrf-token", &self.csrf)
            .json(&self.body)
            .send()
            .await?;
        let body: Value = response.json().await?;
        anyhow::ensure!(body.get("errors").is_none(), "GraphQL errors: {body}");
        Ok(())
    }
}

/// Throughput and latency of `clients` concurrent loops of `request` for `each`.
struct Figures {
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

impl std::fmt::Display for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.0} req/s, p50 {:.2} ms, p99 {:.2} ms",
            self.per_second,
            self.p50.as_secs_f64() * 1000.0,
            self.p99.as_secs_f64() * 1000.0
        )
    }
}

async fn measure<F, Fut>(clients: usize, each: Duration, request: F) -> anyhow::Result<Figures>
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    // One request first, out of the measurement: connections and caches warm.
    request().await?;
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for _ in 0..clients {
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while started.elapsed() < each {
                let sent = Instant::now();
                request().await?;
                latencies.push(sent.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let at = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
    Ok(Figures {
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: at(50),
        p99: at(99),
    })
}

#[derive(serde::Deserialize)]
struct WeekParams {
    first: usize,
    monday: DateTime<Utc>,
}

/// A plain axum route serving the same page from the same domain function, as JSON: what the page costs
/// without GraphQL. Returns its base URL.
async fn plain_route(state: AppState, user_id: Uuid) -> anyhow::Result<String> {
    let route = move |Query(params): Query<WeekParams>| {
        let state = state.clone();
        async move {
            let query = WindowQuery {
                calendar_ids: None,
                window: Window::new(params.monday, params.monday + TimeDelta::days(7)),
                first: params.first,
                after: None,
            };
            let budget = WorkBudget::new(work_budget::EXPANDED_INSTANCES, work_budget::DEADLINE);
            let page = window::events_in_window(&state.db, &state.cipher, user_id, query, &budget)
                .await
                .map_err(|e| (axum::http::StatusCode::INTERNAL_SERVER_ERROR, format!("{e:?}")))?;
            let edges: Vec<Value> = page
                .edges
                .iter()
                .map(|(cursor, view)| {
                    let event = &view.event;
                    json!({
                        "cursor": cursor,
                        "id": view.id.to_string(),
                        "summary": event.summary,
                        "description": event.description,
                        "location": event.location,
                        "start": format!("{:?}", event.start),
                        "end": format!("{:?}", event.end),
                        "status": format!("{:?}", event.status),
                    })
                })
                .collect();
            Ok::<_, (axum::http::StatusCode, String)>(Json(
                json!({ "edges": edges, "hasNextPage": page.has_next_page }),
            ))
        }
    };
    let router = Router::new().route("/week", get(route));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(format!("http://{address}"))
}
