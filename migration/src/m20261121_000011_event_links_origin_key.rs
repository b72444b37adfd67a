//! `event_links`: an origin event is identified by its side as well as its id. One Google id can exist in
//! both calendars of a config (an invitation both accounts received), so in TWO_WAY both may be origins.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum EventLinks {
    Table,
    ConfigId,
    Origin,
    SourceEventId,
}

const OLD: &str = "uq_event_links_config_id_source_event_id";
const NEW: &str = "uq_event_links_config_id_origin_source_event_id";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().name(OLD).table(EventLinks::Table).to_owned())
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(NEW)
                    .table(EventLinks::Table)
                    .col(EventLinks::ConfigId)
                    .col(EventLinks::Origin)
                    .col(EventLinks::SourceEventId)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().name(NEW).table(EventLinks::Table).to_owned())
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(OLD)
                    .table(EventLinks::Table)
                    .col(EventLinks::ConfigId)
                    .col(EventLinks::SourceEventId)
                    .unique()
                    .to_owned(),
            )
            .await
    }
}
