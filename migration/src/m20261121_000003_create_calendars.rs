//! `calendars`: the cached calendar list of each Google account.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261121_000002_create_google_accounts::GoogleAccounts;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
pub enum Calendars {
    Table,
    Id,
    AccountId,
    GoogleCalendarId,
    Summary,
    Description,
    TimeZone,
    AccessRole,
    IsPrimary,
    BackgroundColor,
    ForegroundColor,
    ColorId,
    EventsSyncToken,
    LastFullSyncAt,
    LastSyncedAt,
    /// Set when the calendar disappeared from the account's calendar list at Google.
    DeletedAt,
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
                    .table(Calendars::Table)
                    .col(pk_uuid(Calendars::Id))
                    .col(uuid(Calendars::AccountId))
                    .col(string(Calendars::GoogleCalendarId))
                    .col(string(Calendars::Summary))
                    .col(string_null(Calendars::Description))
                    .col(string_null(Calendars::TimeZone))
                    .col(string(Calendars::AccessRole))
                    .col(boolean(Calendars::IsPrimary))
                    .col(string_null(Calendars::BackgroundColor))
                    .col(string_null(Calendars::ForegroundColor))
                    .col(string_null(Calendars::ColorId))
                    .col(string_null(Calendars::EventsSyncToken))
                    .col(timestamp_with_time_zone_null(Calendars::LastFullSyncAt))
                    .col(timestamp_with_time_zone_null(Calendars::LastSyncedAt))
                    .col(timestamp_with_time_zone_null(Calendars::DeletedAt))
                    .col(timestamp_with_time_zone(Calendars::CreatedAt))
                    .col(timestamp_with_time_zone(Calendars::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_calendars_account_id")
                            .from(Calendars::Table, Calendars::AccountId)
                            .to(GoogleAccounts::Table, GoogleAccounts::Id)
                            .on_delete(ForeignKeyAction::Cascade)
                            .on_update(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // Also serves every lookup by account_id (leftmost column).
        manager
            .create_index(
                Index::create()
                    .name("uq_calendars_account_id_google_calendar_id")
                    .table(Calendars::Table)
                    .col(Calendars::AccountId)
                    .col(Calendars::GoogleCalendarId)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Calendars::Table).to_owned())
            .await
    }
}
