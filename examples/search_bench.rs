//! How long `searchEvents` takes over HTTP for a user with 10,000 cached events: a real server on a free
//! port, signed in through the Google emulator's OAuth flow, the events written into the cache through
//! the cache's own codec (as a refresh writes them, search index included), then each query of a set
//! timed end to end (request, index lookup, decryption of the page, JSON).
//!
//! ```sh
//! cargo run --release --example search_bench                 # SQLite (a temporary file)
//! BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!     cargo run --release --example search_bench             # PostgreSQL (a scratch database)
//! ```
//! `BENCH_RUNS` sets the number of timed runs per query (default 50), `BENCH_EVENTS` the number of events
//! (default 10,000). The target is a p95 under 50 ms.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{TimeDelta, TimeZone, Utc};
use chronos::{
    app::Application,
    config::{GoogleQuota, GoogleSettings, Settings},
    entities::calendars,
    events::{search, store},
    google::{Event, EventDateTime},
};
use google_emulator::{Emulator, EmulatorConfig};
use reqwest::{Client, StatusCode, cookie::CookieStore, cookie::Jar};
use sea_orm::{ConnectionTrait, DbBackend, EntityTrait, QueryTrait, Statement};
use serde_json::{Value, json};
use std::sync::Arc;
use uuid::Uuid;

const EMAIL: &str = "bench.search@example.com";

/// What the queries look for: a rare word, common words, two-letter and longer beginnings, accents
/// either way, several words, and a word nobody wrote.
const QUERIES: [&str; 9] = [
    "dentist",
    "standup",
    "review",
    "re",
    "plan",
    "café müller",
    "cafe muller",
    "quarterly budget review",
    "nowhere",
];

const SUBJECTS: [&str; 12] = [
    "Standup",
    "Quarterly budget review",
    "Planning session",
    "Design review",
    "Dentist",
    "Lunch with Zoë",
    "1:1 with Renée",
    "Retrospective",
    "Customer call",
    "Interview",
    "Release party",
    "Gym",
];
const PLACES: [&str; 6] = [
    "Café Müller, Berlin",
    "Room 4B",
    "Zürich office",
    "Video call",
    "Straße des 17. Juni",
    "São Paulo HQ",
];
const NOTES: [&str; 5] = [
    "Agenda: status, risks, next steps. Bring the numbers from last week.",
    "Prepare the slides and share them beforehand; notes go to the shared folder.",
    "Reminder: reschedule if the customer cannot make it.",
    "Quarterly objectives and the hiring plan, then open questions.",
    "",
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let runs = env_number("BENCH_RUNS", 50).max(1);
    let events = env_number("BENCH_EVENTS", 10_000);
    let dir = tempfile::tempdir()?;
    // BENCH_KEEP=1 keeps the SQLite database for a look with `sqlite3` (its path is printed).
    let dir = if std::env::var_os("BENCH_KEEP").is_some() {
        tempfile::Builder::new().disable_cleanup(true).tempdir()?
    } else {
        dir
    };
    match std::env::var("BENCH_DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty())
    {
        Some(admin_url) => {
            let name = format!("chronos_bench_{}", Uuid::new_v4().simple());
            let admin = chronos::db::connect(&admin_url).await?;
            admin
                .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                .await?;
            let mut url = url::Url::parse(&admin_url)?;
            url.set_path(&format!("/{name}"));
            let result = bench("PostgreSQL", url.as_str(), dir.path(), events, runs).await;
            admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .await?;
            result
        }
        None => {
            let url = format!("sqlite://{}?mode=rwc", dir.path().join("bench.db").display());
            println!("database: {}", dir.path().display());
            bench("SQLite", &url, dir.path(), events, runs).await
        }
    }
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|raw| raw.parse().ok())
        .unwrap_or(default)
}

async fn bench(
    label: &str,
    url: &str,
    data_dir: &std::path::Path,
    events: usize,
    runs: usize,
) -> anyhow::Result<()> {
    let emulator = Emulator::spawn(EmulatorConfig::without_quotas()).await?;
    emulator.emulator.create_account(EMAIL, None);
    let mut settings = Settings::for_local(url, data_dir).map_err(|e| anyhow::anyhow!("{e}"))?;
    settings.google = GoogleSettings::single_host(&url::Url::parse(&emulator.base_url())?);
    settings.google.quota = GoogleQuota::UNPACED;
    settings.scheduler_enabled = false;
    let app = Application::build(settings, true).await?;
    let address = format!("http://{}", app.local_addr());
    let state = app.state().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));

    let browser = Browser::new(&address)?;
    browser.sign_in().await?;
    let accounts = browser.data("{ accounts { id } }", json!({})).await?;
    let account = accounts["accounts"][0]["id"].clone();
    let listed = browser
        .data(
            "mutation($id: ID!) { refreshCalendars(accountId: $id) { id primary } }",
            json!({ "id": account }),
        )
        .await?;
    let calendar_id = listed["refreshCalendars"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["primary"] == json!(true)))
        .and_then(|c| c["id"].as_str())
        .context("primary calendar")?;
    let calendar = calendars::Entity::find_by_id(Uuid::parse_str(calendar_id)?)
        .one(&state.db)
        .await?
        .context("calendar row")?;
    let me = browser.data("{ me { id } }", json!({})).await?;
    let user_id = Uuid::parse_str(me["me"]["id"].as_str().context("user id")?)?;

    let filled = Instant::now();
    fill(&state, user_id, &calendar, events).await?;
    let entries = state
        .db
        .query_one_raw(Statement::from_string(
            state.db.get_database_backend(),
            "SELECT COUNT(*) FROM event_search_tokens",
        ))
        .await?
        .context("count")?
        .try_get_by_index::<i64>(0)?;
    println!(
        "== {label}: {events} events cached with their search index ({entries} entries) in {:.1} s",
        filled.elapsed().as_secs_f64()
    );
    if state.db.get_database_backend() == DbBackend::Postgres {
        // What autovacuum would have done by now on a live server.
        state.db.execute_unprepared("VACUUM ANALYZE").await?;
    }

    for query in ["re", "quarterly budget review"] {
        print_plan(&state, user_id, query).await?;
    }

    let search = "query($q: String!) { searchEvents(query: $q, first: 100) { edges { node { id summary location start { dateTime date } } } pageInfo { hasNextPage } } }";
    let mut all = Vec::new();
    for query in QUERIES {
        let variables = json!({ "q": query });
        let warm = browser.data(search, variables.clone()).await?;
        let found = warm["searchEvents"]["edges"].as_array().map_or(0, Vec::len);
        let more = warm["searchEvents"]["pageInfo"]["hasNextPage"] == json!(true);
        let mut timings = Vec::with_capacity(runs);
        for _ in 0..runs {
            let started = Instant::now();
            browser.data(search, variables.clone()).await?;
            timings.push(started.elapsed());
        }
        all.extend_from_slice(&timings);
        timings.sort();
        println!(
            "{query:>25}: {found:>3}{} results; p50 {}, p95 {}, max {}",
            if more { "+" } else { " " },
            millis(percentile(&timings, 50)),
            millis(percentile(&timings, 95)),
            millis(timings[timings.len() - 1]),
        );
    }
    all.sort();
    let p95 = percentile(&all, 95);
    println!(
        "all {} requests: p50 {}, p95 {} (target p95 < 50 ms: {})",
        all.len(),
        millis(percentile(&all, 50)),
        millis(p95),
        if p95 < Duration::from_millis(50) {
            "met"
        } else {
            "MISSED"
        }
    );

    let _ = stop.send(());
    server.await??;
    Ok(())
}

/// Writes the events as a listing would, 250 per transaction.
async fn fill(
    state: &chronos::state::AppState,
    user_id: Uuid,
    calendar: &calendars::Model,
    events: usize,
) -> anyhow::Result<()> {
    let first_day = Utc
        .with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
        .single()
        .context("date")?;
    let span_minutes = 2 * 365 * 24 * 60;
    let all: Vec<Event> = (0..events)
        .map(|i| {
            let offset = i64::try_from(i * span_minutes / events.max(1)).unwrap_or_default();
            let start = first_day + TimeDelta::minutes(offset);
            Event {
                id: Some(format!("bench{i:06}")),
                status: Some("confirmed".into()),
                etag: Some(format!("\"{i}\"")),
                updated: Some("2025-01-01T00:00:00.000Z".into()),
                summary: Some(format!("{} #{i}", SUBJECTS[i % SUBJECTS.len()])),
                description: Some(NOTES[i % NOTES.len()].to_owned()).filter(|d| !d.is_empty()),
                location: Some(PLACES[(i / 3) % PLACES.len()].to_owned()),
                start: Some(EventDateTime::at(start, Some("Europe/Berlin"))),
                end: Some(EventDateTime::at(
                    start + TimeDelta::minutes(45),
                    Some("Europe/Berlin"),
                )),
                ..Event::default()
            }
        })
        .collect();
    for chunk in all.chunks(250) {
        let listed: Vec<&Event> = chunk.iter().collect();
        let txn = chronos::db::begin_write(&state.db).await?;
        store::upsert_batch(&txn, &state.cipher, user_id, calendar, &listed)
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        txn.commit().await?;
    }
    Ok(())
}

/// The plan the database uses for the index lookup of `query`.
async fn print_plan(state: &chronos::state::AppState, user_id: Uuid, query: &str) -> anyhow::Result<()> {
    let backend = state.db.get_database_backend();
    let words = search::parse_query(query).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let indexes = state.cipher.blind_indexes(user_id)?;
    let probes = search::query_probes(&words, &indexes);
    let statement = search::lookup_select(probes.keys()).build(backend);
    let explain = match backend {
        DbBackend::Sqlite => format!("EXPLAIN QUERY PLAN {}", statement.sql),
        _ => format!("EXPLAIN {}", statement.sql),
    };
    let values = statement.values.map(|v| v.0).unwrap_or_default();
    let rows = state
        .db
        .query_all_raw(Statement::from_sql_and_values(backend, explain, values))
        .await?;
    println!("plan of the index lookup for {query:?}:");
    if std::env::var_os("BENCH_SQL").is_some() {
        println!("  {}", statement.sql);
    }
    for row in rows {
        let line = match backend {
            DbBackend::Sqlite => row.try_get::<String>("", "detail")?,
            _ => row.try_get::<String>("", "QUERY PLAN")?,
        };
        println!("  {line}");
    }
    Ok(())
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    let index = (sorted.len() * p).div_ceil(100).saturating_sub(1);
    sorted[index.min(sorted.len() - 1)]
}

fn millis(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// A cookie-keeping client that speaks to the server as the web app does.
struct Browser {
    address: String,
    client: Client,
    jar: Arc<Jar>,
}

impl Browser {
    fn new(address: &str) -> anyhow::Result<Self> {
        let jar = Arc::new(Jar::default());
        let client = Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            address: address.to_owned(),
            client,
            jar,
        })
    }

    fn csrf(&self) -> Option<String> {
        let url = url::Url::parse(&self.address).ok()?;
        let header = self.jar.cookies(&url)?;
        header
            .to_str()
            .ok()?
            .split(';')
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == "chronos_csrf")
            .map(|(_, value)| value.to_owned())
    }

    async fn data(&self, query: &str, variables: Value) -> anyhow::Result<Value> {
        let mut request = self
            .client
            .post(format!("{}/graphql", self.address))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = self.csrf() {
            request = request.header("x-csrf-token", token);
        }
        let response = request.send().await?;
        anyhow::ensure!(response.status() == StatusCode::OK, "HTTP {}", response.status());
        let body: Value = response.json().await?;
        anyhow::ensure!(body.get("errors").is_none(), "errors: {body}");
        Ok(body["data"].clone())
    }

    /// Google's OAuth flow as a browser follows it (the emulator consents at once).
    async fn sign_in(&self) -> anyhow::Result<()> {
        let start = self
            .data(
                "mutation($hint: String) { startGoogleSignIn(loginHint: $hint) { url } }",
                json!({ "hint": EMAIL }),
            )
            .await?;
        let authorize = start["startGoogleSignIn"]["url"]
            .as_str()
            .context("authorization URL")?;
        let consent = self.client.get(authorize).send().await?;
        let callback = location(&consent)?;
        let landing = self.client.get(&callback).send().await?;
        let landed = location(&landing)?;
        anyhow::ensure!(!landed.contains("error="), "sign-in failed: {landed}");
        Ok(())
    }
}

fn location(response: &reqwest::Response) -> anyhow::Result<String> {
    Ok(response
        .headers()
        .get(reqwest::header::LOCATION)
        .context("a redirect")?
        .to_str()?
        .to_owned())
}
