//! `jobs.concurrency_key`: at most one RUNNING job per key (one sync run per config at a time, across
//! instances).
//!
//! The rule is a partial unique index (`WHERE status = 'RUNNING'`), so the database itself refuses a
//! second running job with the same key even when two instances claim at the same moment; the claim
//! query retries when it meets the violation. The index also serves the claim's "is this key busy?"
//! lookup. Partial indexes exist on both SQLite and PostgreSQL.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Jobs {
    Table,
    Status,
    /// Jobs sharing a key never run at the same time; NULL means no such limit.
    ConcurrencyKey,
}

const INDEX: &str = "uq_jobs_concurrency_key";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// Atomic on SQLite too (transactional DDL), not only on PostgreSQL.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Jobs::Table)
                    .add_column(string_null(Jobs::ConcurrencyKey))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(INDEX)
                    .table(Jobs::Table)
                    .col(Jobs::ConcurrencyKey)
                    .unique()
                    .and_where(Expr::col(Jobs::Status).eq("RUNNING"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite refuses to drop an indexed column: the index goes first.
        manager
            .drop_index(Index::drop().name(INDEX).table(Jobs::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Jobs::Table)
                    .drop_column(Jobs::ConcurrencyKey)
                    .to_owned(),
            )
            .await
    }
}
