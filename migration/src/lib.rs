//! Database schema of Chronos, as sea-orm-migration migrations.
//!
//! The migrations run unchanged on SQLite and PostgreSQL: tables, foreign keys and indexes are built
//! with the SeaQuery schema builder only. Foreign keys are declared inside `CREATE TABLE` (SQLite
//! cannot add them later). Indexes are named `idx_<table>_<columns>` (unique ones `uq_...`), foreign
//! keys `fk_<table>_<column>`.
//!
//! Every `down` drops what its `up` created, so `down` all then `up` all round-trips on both
//! backends (see `tests/roundtrip.rs`).

pub use sea_orm_migration::prelude::*;

mod m20261121_000001_create_users;
mod m20261121_000002_create_google_accounts;
mod m20261121_000003_create_calendars;
mod m20261121_000004_create_sync_configs;
mod m20261121_000005_create_events;
mod m20261121_000006_create_todos;
mod m20261121_000007_create_push_channels;
mod m20261121_000008_create_sessions;
mod m20261121_000009_create_jobs;
mod m20261121_000010_jobs_concurrency;
mod m20261121_000011_event_links_origin_key;
mod m20261122_000012_sync_configs_pair_unique;
mod m20261203_000013_google_quota_spends;
mod m20261203_000014_event_search_tokens;
mod m20261203_000015_events_self_response;
mod m20261203_000016_events_long_span;
mod m20261203_000017_cheaper_event_writes;

/// All migrations of Chronos, in the order they apply.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261121_000001_create_users::Migration),
            Box::new(m20261121_000002_create_google_accounts::Migration),
            Box::new(m20261121_000003_create_calendars::Migration),
            Box::new(m20261121_000004_create_sync_configs::Migration),
            Box::new(m20261121_000005_create_events::Migration),
            Box::new(m20261121_000006_create_todos::Migration),
            Box::new(m20261121_000007_create_push_channels::Migration),
            Box::new(m20261121_000008_create_sessions::Migration),
            Box::new(m20261121_000009_create_jobs::Migration),
            Box::new(m20261121_000010_jobs_concurrency::Migration),
            Box::new(m20261121_000011_event_links_origin_key::Migration),
            Box::new(m20261122_000012_sync_configs_pair_unique::Migration),
            Box::new(m20261203_000013_google_quota_spends::Migration),
            Box::new(m20261203_000014_event_search_tokens::Migration),
            Box::new(m20261203_000015_events_self_response::Migration),
            Box::new(m20261203_000016_events_long_span::Migration),
            Box::new(m20261203_000017_cheaper_event_writes::Migration),
        ]
    }
}

/// Applies every pending migration.
pub async fn run<'c, C>(db: C) -> Result<(), DbErr>
where
    C: IntoSchemaManagerConnection<'c>,
{
    Migrator::up(db, None).await
}
