//! `push_channels`: Google push-notification channels watching a calendar's events.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261121_000003_create_calendars::Calendars;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum PushChannels {
    Table,
    Id,
    CalendarId,
    /// The channel id we gave Google (`X-Goog-Channel-ID`).
    ChannelId,
    /// Google's id of the watched resource (`X-Goog-Resource-ID`), needed to stop the channel.
    ResourceId,
    /// Encrypted channel token (or a hash of it) checked against `X-Goog-Channel-Token`.
    Token,
    ExpiresAt,
    StoppedAt,
    CreatedAt,
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
                    .table(PushChannels::Table)
                    .col(pk_uuid(PushChannels::Id))
                    .col(uuid(PushChannels::CalendarId))
                    .col(string(PushChannels::ChannelId))
                    .col(string(PushChannels::ResourceId))
                    .col(blob(PushChannels::Token))
                    .col(timestamp_with_time_zone(PushChannels::ExpiresAt))
                    .col(timestamp_with_time_zone_null(PushChannels::StoppedAt))
                    .col(timestamp_with_time_zone(PushChannels::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_push_channels_calendar_id")
                            .from(PushChannels::Table, PushChannels::CalendarId)
                            .to(Calendars::Table, Calendars::Id)
                            .on_delete(ForeignKeyAction::Cascade)
                            .on_update(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_push_channels_channel_id")
                    .table(PushChannels::Table)
                    .col(PushChannels::ChannelId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_push_channels_calendar_id")
                    .table(PushChannels::Table)
                    .col(PushChannels::CalendarId)
                    .to_owned(),
            )
            .await?;
        // Renewal: channels about to expire.
        manager
            .create_index(
                Index::create()
                    .name("idx_push_channels_expires_at")
                    .table(PushChannels::Table)
                    .col(PushChannels::ExpiresAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(PushChannels::Table).to_owned())
            .await
    }
}
