//! `sync_configs` (calendar-to-calendar mirroring rules), `sync_runs` (one row per run, with its
//! counters) and `event_links` (which source event each mirror event copies).

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261121_000001_create_users::Users;
use crate::m20261121_000003_create_calendars::Calendars;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
pub enum SyncConfigs {
    Table,
    Id,
    UserId,
    SourceCalendarId,
    DestinationCalendarId,
    /// ONE_WAY | TWO_WAY
    Direction,
    LookaheadDays,
    LookbackDays,
    PrivacyEnabled,
    PrivacyPlaceholder,
    ReversePrivacyEnabled,
    ReversePrivacyPlaceholder,
    DestinationColorId,
    ReverseColorId,
    Enabled,
    IntervalMinutes,
    /// ACTIVE | PAUSED | NEEDS_REAUTH
    Status,
    PausedReason,
    NextRunAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum SyncRuns {
    Table,
    Id,
    ConfigId,
    /// MANUAL | SCHEDULED | PUSH
    Trigger,
    /// QUEUED | RUNNING | SUCCEEDED | PARTIAL | FAILED
    Status,
    StartedAt,
    FinishedAt,
    Created,
    Updated,
    Deleted,
    Skipped,
    Failed,
    GoogleCalls,
    Conflicts,
    Error,
    AllowMassDelete,
    CreatedAt,
}

#[derive(DeriveIden)]
enum EventLinks {
    Table,
    Id,
    ConfigId,
    SourceCalendarId,
    SourceEventId,
    MirrorCalendarId,
    MirrorEventId,
    /// SOURCE | DESTINATION
    Origin,
    SourceHash,
    MirrorHash,
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
                    .table(SyncConfigs::Table)
                    .col(pk_uuid(SyncConfigs::Id))
                    .col(uuid(SyncConfigs::UserId))
                    .col(uuid(SyncConfigs::SourceCalendarId))
                    .col(uuid(SyncConfigs::DestinationCalendarId))
                    .col(string_len(SyncConfigs::Direction, 32))
                    .col(integer(SyncConfigs::LookaheadDays))
                    .col(integer(SyncConfigs::LookbackDays))
                    .col(boolean(SyncConfigs::PrivacyEnabled))
                    .col(string(SyncConfigs::PrivacyPlaceholder))
                    .col(boolean(SyncConfigs::ReversePrivacyEnabled))
                    .col(string(SyncConfigs::ReversePrivacyPlaceholder))
                    .col(string_null(SyncConfigs::DestinationColorId))
                    .col(string_null(SyncConfigs::ReverseColorId))
                    .col(boolean(SyncConfigs::Enabled))
                    .col(integer_null(SyncConfigs::IntervalMinutes))
                    .col(string_len(SyncConfigs::Status, 32))
                    .col(string_null(SyncConfigs::PausedReason))
                    .col(timestamp_with_time_zone_null(SyncConfigs::NextRunAt))
                    .col(timestamp_with_time_zone(SyncConfigs::CreatedAt))
                    .col(timestamp_with_time_zone(SyncConfigs::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_sync_configs_user_id")
                            .from(SyncConfigs::Table, SyncConfigs::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade)
                            .on_update(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_sync_configs_source_calendar_id")
                            .from(SyncConfigs::Table, SyncConfigs::SourceCalendarId)
                            .to(Calendars::Table, Calendars::Id)
                            .on_delete(ForeignKeyAction::Cascade)
                            .on_update(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_sync_configs_destination_calendar_id")
                            .from(SyncConfigs::Table, SyncConfigs::DestinationCalendarId)
                            .to(Calendars::Table, Calendars::Id)
                            .on_delete(ForeignKeyAction::Cascade)
                            .on_update(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            ("idx_sync_configs_user_id", SyncConfigs::UserId),
            // Scheduler: due configs.
            ("idx_sync_configs_next_run_at", SyncConfigs::NextRunAt),
            // Push notifications and calendar deletion: configs touching a calendar.
            (
                "idx_sync_configs_source_calendar_id",
                SyncConfigs::SourceCalendarId,
            ),
            (
                "idx_sync_configs_destination_calendar_id",
                SyncConfigs::DestinationCalendarId,
            ),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(SyncConfigs::Table)
                        .col(col)
                        .to_owned(),
                )
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(SyncRuns::Table)
                    .col(pk_uuid(SyncRuns::Id))
                    .col(uuid(SyncRuns::ConfigId))
                    .col(string_len(SyncRuns::Trigger, 32))
                    .col(string_len(SyncRuns::Status, 32))
                    .col(timestamp_with_time_zone_null(SyncRuns::StartedAt))
                    .col(timestamp_with_time_zone_null(SyncRuns::FinishedAt))
                    .col(integer(SyncRuns::Created).default(0))
                    .col(integer(SyncRuns::Updated).default(0))
                    .col(integer(SyncRuns::Deleted).default(0))
                    .col(integer(SyncRuns::Skipped).default(0))
                    .col(integer(SyncRuns::Failed).default(0))
                    .col(integer(SyncRuns::GoogleCalls).default(0))
                    .col(integer(SyncRuns::Conflicts).default(0))
                    .col(string_null(SyncRuns::Error))
                    .col(boolean(SyncRuns::AllowMassDelete).default(false))
                    .col(timestamp_with_time_zone(SyncRuns::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_sync_runs_config_id")
                            .from(SyncRuns::Table, SyncRuns::ConfigId)
                            .to(SyncConfigs::Table, SyncConfigs::Id)
                            .on_delete(ForeignKeyAction::Cascade)
                            .on_update(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // A config's runs, newest first (syncRuns, lastRun, "is a run live").
        manager
            .create_index(
                Index::create()
                    .name("idx_sync_runs_config_id_created_at")
                    .table(SyncRuns::Table)
                    .col(SyncRuns::ConfigId)
                    .col(SyncRuns::CreatedAt)
                    .to_owned(),
            )
            .await?;

        // source_calendar_id / mirror_calendar_id copy the config's calendars (swapped when the
        // link originates on the destination side); the link goes away with its config.
        manager
            .create_table(
                Table::create()
                    .table(EventLinks::Table)
                    .col(pk_uuid(EventLinks::Id))
                    .col(uuid(EventLinks::ConfigId))
                    .col(uuid(EventLinks::SourceCalendarId))
                    .col(string(EventLinks::SourceEventId))
                    .col(uuid(EventLinks::MirrorCalendarId))
                    .col(string(EventLinks::MirrorEventId))
                    .col(string_len(EventLinks::Origin, 32))
                    .col(string(EventLinks::SourceHash))
                    .col(string(EventLinks::MirrorHash))
                    .col(timestamp_with_time_zone(EventLinks::CreatedAt))
                    .col(timestamp_with_time_zone(EventLinks::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_event_links_config_id")
                            .from(EventLinks::Table, EventLinks::ConfigId)
                            .to(SyncConfigs::Table, SyncConfigs::Id)
                            .on_delete(ForeignKeyAction::Cascade)
                            .on_update(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            (
                "uq_event_links_config_id_source_event_id",
                EventLinks::SourceEventId,
            ),
            (
                "uq_event_links_config_id_mirror_event_id",
                EventLinks::MirrorEventId,
            ),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(EventLinks::Table)
                        .col(EventLinks::ConfigId)
                        .col(col)
                        .unique()
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(EventLinks::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(SyncRuns::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(SyncConfigs::Table).to_owned())
            .await
    }
}
