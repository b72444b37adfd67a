//! `jobs`: the database job queue (sync runs, push-triggered refreshes, channel renewal, cleanup),
//! leased by workers so several instances share the work.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Jobs {
    Table,
    Id,
    Kind,
    Payload,
    /// At most one job per key. A plain unique index: NULLs are distinct on both backends, so
    /// jobs without a key never collide. Clear the key when the job finishes (DONE / FAILED) to
    /// allow the next job with the same key.
    DedupeKey,
    /// QUEUED | RUNNING | DONE | FAILED
    Status,
    RunAt,
    Attempts,
    MaxAttempts,
    LeaseOwner,
    LeaseExpiresAt,
    LastError,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// Atomic on SQLite too (transactional DDL), not only on PostgreSQL.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Jobs::Table)
                    .col(pk_uuid(Jobs::Id))
                    .col(string(Jobs::Kind))
                    .col(json_binary(Jobs::Payload))
                    .col(string_null(Jobs::DedupeKey))
                    .col(string_len(Jobs::Status, 32))
                    .col(timestamp_with_time_zone(Jobs::RunAt))
                    .col(integer(Jobs::Attempts).default(0))
                    .col(integer(Jobs::MaxAttempts))
                    .col(string_null(Jobs::LeaseOwner))
                    .col(timestamp_with_time_zone_null(Jobs::LeaseExpiresAt))
                    .col(string_null(Jobs::LastError))
                    .col(timestamp_with_time_zone(Jobs::CreatedAt))
                    .col(timestamp_with_time_zone(Jobs::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_jobs_dedupe_key")
                    .table(Jobs::Table)
                    .col(Jobs::DedupeKey)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // Workers: the next due job.
        manager
            .create_index(
                Index::create()
                    .name("idx_jobs_status_run_at")
                    .table(Jobs::Table)
                    .col(Jobs::Status)
                    .col(Jobs::RunAt)
                    .to_owned(),
            )
            .await?;
        // Reaper: expired leases.
        manager
            .create_index(
                Index::create()
                    .name("idx_jobs_lease_expires_at")
                    .table(Jobs::Table)
                    .col(Jobs::LeaseExpiresAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Jobs::Table).to_owned())
            .await
    }
}
