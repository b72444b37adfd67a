//! `google_quota_spends`: the project's Google requests in the last window, one row per paced call
//! (its cost in requests, batch parts counted), so that every instance on this database paces itself
//! against one project quota.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum GoogleQuotaSpends {
    Table,
    Id,
    SpentAtMs,
    Cost,
}

const INDEX: &str = "idx_google_quota_spends_spent_at_ms";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(GoogleQuotaSpends::Table)
                    .col(
                        ColumnDef::new(GoogleQuotaSpends::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(GoogleQuotaSpends::SpentAtMs)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(GoogleQuotaSpends::Cost).integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(INDEX)
                    .table(GoogleQuotaSpends::Table)
                    .col(GoogleQuotaSpends::SpentAtMs)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(GoogleQuotaSpends::Table).to_owned())
            .await
    }
}
