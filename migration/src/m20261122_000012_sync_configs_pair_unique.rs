//! `sync_configs`: one config per (source, destination) pair of calendar rows, held by the database as
//! well as by the create path, so two simultaneous creates cannot both land.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SyncConfigs {
    Table,
    SourceCalendarId,
    DestinationCalendarId,
}

const NAME: &str = "uq_sync_configs_source_calendar_id_destination_calendar_id";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(NAME)
                    .table(SyncConfigs::Table)
                    .col(SyncConfigs::SourceCalendarId)
                    .col(SyncConfigs::DestinationCalendarId)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().name(NAME).table(SyncConfigs::Table).to_owned())
            .await
    }
}
