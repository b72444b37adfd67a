//! How long the `events` query takes for a one-week window over a calendar holding 10,000 cached events
//! spread over two years, through the domain function the resolver calls (decryption included), and the
//! plan the database uses for the window query.
//!
//! ```sh
//! cargo run --release --example events_window_bench                 # SQLite (a temporary file)
//! BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!     cargo run --release --example events_window_bench             # also PostgreSQL (a scratch database)
//! ```
//! `TEST_DATABASE_URL` is used when `BENCH_DATABASE_URL` is not set. `BENCH_RUNS` sets the number of
//! timed runs (default 50).

// Each benchmark uses its part of the shared support.
#[allow(dead_code)]
#[path = "support/bench_database.rs"]
mod bench_database;

use std::time::{Duration, Instant};

use anyhow::Context as _;
use bench_database::BenchDatabase;
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use chronos::{
    crypto::{Cipher, KeyRing},
    entities::{calendars, enums::AccountStatus, google_accounts, users},
    events::{
        recurrence::Window,
        store,
        window::{WindowQuery, events_in_window, window_selects},
    },
    google::{Event, EventDateTime},
    work_budget::WorkBudget,
};
use migration::MigratorTrait;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ConnectionTrait, DatabaseConnection, DbBackend, QueryTrait,
    Statement, TransactionTrait,
};
use uuid::Uuid;

const EVENTS: usize = 10_000;
/// One in this many events is an all-day event, one in `SERIES_EVERY` a weekly series.
const ALL_DAY_EVERY: usize = 10;
const SERIES_EVERY: usize = 500;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(50)
        .max(1);
    let dir = tempfile::tempdir()?;
    let sqlite = format!("sqlite://{}?mode=rwc", dir.path().join("bench.db").display());
    bench("SQLite", &sqlite, runs).await?;

    let postgres = ["BENCH_DATABASE_URL", "TEST_DATABASE_URL"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|url| !url.is_empty()));
    match postgres {
        Some(admin_url) => {
            let database = BenchDatabase::postgres(&admin_url).await?;
            let result = bench(database.label, &database.url, runs).await;
            database.remove().await?;
            result?;
        }
        None => println!("\n(PostgreSQL skipped: set BENCH_DATABASE_URL or TEST_DATABASE_URL)"),
    }
    Ok(())
}

async fn bench(label: &str, url: &str, runs: usize) -> anyhow::Result<()> {
    println!("== {label}");
    let db = chronos::db::connect(url).await.context("connect")?;
    migration::Migrator::up(&db, None).await.context("migrate")?;
    let cipher = Cipher::new(KeyRing::generate("bench")?);
    let (user_id, calendar) = seed_owner(&db).await?;

    let first_day = Utc
        .with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
        .single()
        .context("date")?;
    let filled = Instant::now();
    fill(&db, &cipher, user_id, &calendar, first_day).await?;
    println!(
        "filled {EVENTS} events over 2 years in {:.1} s",
        filled.elapsed().as_secs_f64()
    );
    if db.get_database_backend() == DbBackend::Postgres {
        // What autovacuum would have done by now on a live server.
        db.execute_unprepared("ANALYZE events").await?;
    }

    // "This week" near the end of the history (the usual query), and a week in the middle of it (where
    // half the rows lie on either side and a planner guessing from each bound alone expects many).
    for (label, day) in [("last-weeks", 700), ("mid-history", 365)] {
        let time_min = first_day + TimeDelta::days(day);
        let window = Window::new(time_min, time_min + TimeDelta::days(7));
        measure(&db, &cipher, user_id, calendar.id, label, window, runs).await?;
    }
    db.close().await?;
    Ok(())
}

/// Times `runs` window queries through the domain function and prints the figures and the plan.
async fn measure(
    db: &DatabaseConnection,
    cipher: &Cipher,
    user_id: Uuid,
    calendar_id: Uuid,
    label: &str,
    window: Window,
    runs: usize,
) -> anyhow::Result<()> {
    let calendar_ids = [calendar_id];
    let query = || WindowQuery {
        calendar_ids: Some(&calendar_ids),
        window,
        first: 500,
        after: None,
    };
    let warm = events_in_window(db, cipher, user_id, query(), &WorkBudget::default())
        .await
        .map_err(app_error)?;
    let mut timings = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        let page = events_in_window(db, cipher, user_id, query(), &WorkBudget::default())
            .await
            .map_err(app_error)?;
        timings.push(started.elapsed());
        anyhow::ensure!(
            page.edges.len() == warm.edges.len(),
            "results differ between runs"
        );
    }
    timings.sort();
    println!(
        "{label} week from {}: {} events (series instances included); {runs} runs: median {}, min {}, p90 {}, max {}",
        window.time_min.date_naive(),
        warm.edges.len(),
        millis(timings[runs / 2]),
        millis(timings[0]),
        millis(timings[(runs * 9 / 10).min(runs - 1)]),
        millis(timings[runs - 1]),
    );
    print_plan(db, calendar_id, window).await
}

/// `AppError` is deliberately not `Display` (it decides what clients see); here its debug form is fine.
fn app_error(e: chronos::error::AppError) -> anyhow::Error {
    anyhow::anyhow!("{e:?}")
}

fn millis(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

async fn seed_owner(db: &DatabaseConnection) -> anyhow::Result<(Uuid, calendars::Model)> {
    let now = Utc::now();
    let user = users::ActiveModel {
        id: Set(Uuid::now_v7()),
        email: Set("bench@example.com".into()),
        name: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await?;
    let account = google_accounts::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user.id),
        google_sub: Set("bench".into()),
        email: Set("bench@example.com".into()),
        name: Set(None),
        status: Set(AccountStatus::Active),
        access_token: Set(None),
        refresh_token: Set(None),
        access_token_expires_at: Set(None),
        granted_scopes: Set(String::new()),
        calendar_list_sync_token: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await?;
    let calendar = calendars::ActiveModel {
        id: Set(Uuid::now_v7()),
        account_id: Set(account.id),
        google_calendar_id: Set("bench@example.com".into()),
        summary: Set("Bench".into()),
        description: Set(None),
        time_zone: Set(Some("Europe/Berlin".into())),
        access_role: Set("owner".into()),
        is_primary: Set(true),
        background_color: Set(None),
        foreground_color: Set(None),
        color_id: Set(None),
        include_in_free_busy: Set(None),
        events_sync_token: Set(None),
        last_full_sync_at: Set(None),
        last_synced_at: Set(None),
        deleted_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await?;
    Ok((user.id, calendar))
}

/// Writes the events through the cache's own codec (as a refresh would), a few hundred per transaction:
/// one transaction for everything would make PostgreSQL walk an ever longer chain of versions of the
/// change-sequence row it updates for every event.
async fn fill(
    db: &DatabaseConnection,
    cipher: &Cipher,
    user_id: Uuid,
    calendar: &calendars::Model,
    first_day: DateTime<Utc>,
) -> anyhow::Result<()> {
    const PER_TRANSACTION: usize = 250;
    let span_minutes = 2 * 365 * 24 * 60;
    let mut txn = db.begin().await?;
    for i in 0..EVENTS {
        if i > 0 && i % PER_TRANSACTION == 0 {
            txn.commit().await?;
            txn = db.begin().await?;
        }
        // Spread evenly over two years, at varying times of day and lengths.
        let offset = i64::try_from(i * span_minutes / EVENTS)?;
        let start = first_day + TimeDelta::minutes(offset);
        let length = TimeDelta::minutes(30 + 15 * i64::try_from(i % 6)?);
        let mut event = Event {
            id: Some(format!("bench{i:06}")),
            status: Some("confirmed".into()),
            etag: Some(format!("\"{i}\"")),
            updated: Some("2025-01-01T00:00:00.000Z".into()),
            summary: Some(format!("Event {i}")),
            description: Some("A description long enough to be realistic about decryption costs.".into()),
            location: Some("Room 4".into()),
            start: Some(EventDateTime::at(start, Some("Europe/Berlin"))),
            end: Some(EventDateTime::at(start + length, Some("Europe/Berlin"))),
            ..Event::default()
        };
        if i % SERIES_EVERY == 0 {
            event.recurrence = Some(vec!["RRULE:FREQ=WEEKLY;COUNT=52".into()]);
        } else if i % ALL_DAY_EVERY == 0 {
            let day = start.date_naive();
            event.start = Some(EventDateTime::all_day(day));
            event.end = Some(EventDateTime::all_day(day + TimeDelta::days(1)));
        }
        store::upsert_from_google(&txn, cipher, user_id, calendar, &event)
            .await
            .map_err(app_error)?;
    }
    txn.commit().await?;
    Ok(())
}

async fn print_plan(db: &DatabaseConnection, calendar_id: Uuid, window: Window) -> anyhow::Result<()> {
    let backend = db.get_database_backend();
    println!("plans of the window queries (short rows, long rows):");
    for select in window_selects(&[calendar_id], window) {
        let query = select.build(backend);
        let explain = match backend {
            DbBackend::Sqlite => format!("EXPLAIN QUERY PLAN {}", query.sql),
            _ => format!("EXPLAIN {}", query.sql),
        };
        let values = query.values.map(|v| v.0).unwrap_or_default();
        let rows = db
            .query_all_raw(Statement::from_sql_and_values(backend, explain, values))
            .await?;
        for row in rows {
            let line = match backend {
                DbBackend::Sqlite => row.try_get::<String>("", "detail")?,
                _ => row.try_get::<String>("", "QUERY PLAN")?,
            };
            println!("  {line}");
        }
    }
    Ok(())
}
