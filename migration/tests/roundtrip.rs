//! The migrations round-trip: up all, down all, up again, on SQLite and (when `TEST_DATABASE_URL`
//! is set, e.g. `postgres://postgres@127.0.0.1:5432/postgres`) on a fresh PostgreSQL database.

use migration::{Migrator, MigratorTrait, SchemaManager};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement};

/// The names of the tables the migrations create, parents before children.
const TABLES: &[&str] = &[
    "users",
    "google_accounts",
    "calendars",
    "sync_configs",
    "sync_runs",
    "event_links",
    "events",
    "event_change_sequences",
    "todo_lists",
    "todos",
    "push_channels",
    "sessions",
    "jobs",
    "google_quota_spends",
    "event_search_tokens",
];

/// Every secondary index, by name: `uq_` ones are unique, `idx_` ones are not.
const INDEXES: &[&str] = &[
    "idx_event_search_tokens_token_event_id",
    "idx_events_calendar_id_change_seq",
    "idx_events_calendar_id_long_span_range_start",
    "idx_events_calendar_id_range_end",
    "idx_events_calendar_id_range_start",
    "idx_events_calendar_id_recurring_event_id",
    "idx_events_change_seq",
    "idx_events_mirror_config_id",
    "idx_google_accounts_user_id",
    "idx_google_quota_spends_spent_at_ms",
    "idx_jobs_lease_expires_at",
    "idx_jobs_status_run_at",
    "idx_push_channels_calendar_id",
    "idx_push_channels_expires_at",
    "idx_sessions_expires_at",
    "idx_sessions_user_id",
    "idx_sync_configs_destination_calendar_id",
    "idx_sync_configs_next_run_at",
    "idx_sync_configs_source_calendar_id",
    "idx_sync_configs_user_id",
    "idx_sync_runs_config_id_created_at",
    "idx_todo_lists_user_id_position",
    "idx_todos_list_id_position",
    "idx_todos_user_id_completed_due_at",
    "uq_calendars_account_id_google_calendar_id",
    "uq_event_links_config_id_mirror_event_id",
    "uq_event_links_config_id_origin_source_event_id",
    "uq_events_calendar_id_google_event_id",
    "uq_google_accounts_google_sub",
    "uq_jobs_concurrency_key",
    "uq_jobs_dedupe_key",
    "uq_push_channels_channel_id",
    "uq_sync_configs_source_calendar_id_destination_calendar_id",
];

/// Columns added to existing tables by later migrations: (table, column).
const ADDED_COLUMNS: &[(&str, &str)] = &[
    ("jobs", "concurrency_key"),
    ("events", "self_response_status"),
    ("calendars", "include_in_free_busy"),
    ("events", "long_span"),
];

/// The secondary indexes in the database (not primary keys): (name, unique), sorted by name.
async fn indexes(db: &DatabaseConnection) -> Vec<(String, bool)> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "SELECT i.relname::text, x.indisunique \
             FROM pg_index x \
             JOIN pg_class i ON i.oid = x.indexrelid \
             JOIN pg_class t ON t.oid = x.indrelid \
             JOIN pg_namespace n ON n.oid = t.relnamespace \
             WHERE n.nspname = current_schema() AND NOT x.indisprimary \
             ORDER BY 1"
        }
        _ => {
            "SELECT name, sql LIKE 'CREATE UNIQUE INDEX%' FROM sqlite_master \
             WHERE type = 'index' AND sql IS NOT NULL ORDER BY 1"
        }
    };
    db.query_all_raw(Statement::from_string(backend, sql))
        .await
        .unwrap()
        .iter()
        .map(|row| {
            (
                row.try_get_by_index::<String>(0).unwrap(),
                row.try_get_by_index::<bool>(1).unwrap(),
            )
        })
        .collect()
}

async fn assert_tables(db: &DatabaseConnection, present: bool) {
    let expected: Vec<(String, bool)> = if present {
        INDEXES
            .iter()
            .map(|name| (name.to_string(), name.starts_with("uq_")))
            .collect()
    } else {
        Vec::new()
    };
    assert_eq!(indexes(db).await, expected, "indexes");

    let manager = SchemaManager::new(db);
    for table in TABLES {
        assert_eq!(
            manager.has_table(*table).await.unwrap(),
            present,
            "table {table} present should be {present}"
        );
    }
    if present {
        for (table, column) in ADDED_COLUMNS {
            assert!(
                manager.has_column(*table, *column).await.unwrap(),
                "column {table}.{column} present"
            );
        }
    }
}

/// Up, down, up; one step at a time; fresh. Removing the database is the caller's job, which it
/// does even when this panics (run it in a task).
async fn round_trip(db: DatabaseConnection) {
    let db = &db;
    Migrator::up(db, None).await.unwrap();
    assert_tables(db, true).await;
    // Nothing left pending, and a second `up` is a no-op.
    assert!(Migrator::get_pending_migrations(db).await.unwrap().is_empty());
    Migrator::up(db, None).await.unwrap();

    Migrator::down(db, None).await.unwrap();
    assert_tables(db, false).await;
    assert_eq!(
        Migrator::get_pending_migrations(db).await.unwrap().len(),
        Migrator::migrations().len()
    );

    Migrator::up(db, None).await.unwrap();
    assert_tables(db, true).await;

    // One step at a time, down and up again: every migration's `down` undoes its own `up`.
    for _ in Migrator::migrations() {
        Migrator::down(db, Some(1)).await.unwrap();
    }
    assert_tables(db, false).await;
    for _ in Migrator::migrations() {
        Migrator::up(db, Some(1)).await.unwrap();
    }
    assert_tables(db, true).await;

    // `fresh` drops everything and re-applies.
    Migrator::fresh(db).await.unwrap();
    assert_tables(db, true).await;
}

#[tokio::test]
async fn round_trip_sqlite() {
    let path = std::env::temp_dir().join(format!("chronos-migration-{}.db", uuid::Uuid::new_v4()));
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let db = Database::connect(&url).await.unwrap();
    // Foreign keys must be enforced for the cascades to mean anything.
    let fk = db
        .query_one_raw(Statement::from_string(DbBackend::Sqlite, "PRAGMA foreign_keys"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fk.try_get_by_index::<i32>(0).unwrap(), 1);

    let outcome = tokio::spawn(round_trip(db.clone())).await;
    db.close().await.unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}

#[tokio::test]
async fn round_trip_postgres() {
    let Ok(admin_url) = std::env::var("TEST_DATABASE_URL") else {
        eprintln!("TEST_DATABASE_URL not set: skipping the PostgreSQL round trip");
        return;
    };
    let name = format!("chronos_migration_{}", uuid::Uuid::new_v4().simple());
    let admin = Database::connect(&admin_url).await.unwrap();
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();

    let db = Database::connect(database_url(&admin_url, &name)).await.unwrap();
    let outcome = tokio::spawn(round_trip(db.clone())).await;
    db.close().await.unwrap();

    admin
        .execute_unprepared(&format!("DROP DATABASE {name}"))
        .await
        .unwrap();
    admin.close().await.unwrap();
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}

/// `admin_url` with its database name replaced by `name` (query string kept).
fn database_url(admin_url: &str, name: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (admin_url, None),
    };
    let authority_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}
