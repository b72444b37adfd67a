//! `google_accounts`: the Google accounts a user connected, with their (encrypted) OAuth tokens.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261121_000001_create_users::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
pub enum GoogleAccounts {
    Table,
    Id,
    UserId,
    /// Google's stable account id (`sub` claim); a Google account belongs to one user.
    GoogleSub,
    Email,
    Name,
    /// ACTIVE | NEEDS_REAUTH
    Status,
    /// Encrypted.
    AccessToken,
    /// Encrypted.
    RefreshToken,
    AccessTokenExpiresAt,
    /// Space-separated OAuth scopes granted.
    GrantedScopes,
    CalendarListSyncToken,
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
                    .table(GoogleAccounts::Table)
                    .col(pk_uuid(GoogleAccounts::Id))
                    .col(uuid(GoogleAccounts::UserId))
                    .col(string(GoogleAccounts::GoogleSub))
                    .col(string(GoogleAccounts::Email))
                    .col(string_null(GoogleAccounts::Name))
                    .col(string_len(GoogleAccounts::Status, 32))
                    .col(blob_null(GoogleAccounts::AccessToken))
                    .col(blob_null(GoogleAccounts::RefreshToken))
                    .col(timestamp_with_time_zone_null(
                        GoogleAccounts::AccessTokenExpiresAt,
                    ))
                    .col(string(GoogleAccounts::GrantedScopes))
                    .col(string_null(GoogleAccounts::CalendarListSyncToken))
                    .col(timestamp_with_time_zone(GoogleAccounts::CreatedAt))
                    .col(timestamp_with_time_zone(GoogleAccounts::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_google_accounts_user_id")
                            .from(GoogleAccounts::Table, GoogleAccounts::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade)
                            .on_update(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_google_accounts_google_sub")
                    .table(GoogleAccounts::Table)
                    .col(GoogleAccounts::GoogleSub)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_google_accounts_user_id")
                    .table(GoogleAccounts::Table)
                    .col(GoogleAccounts::UserId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(GoogleAccounts::Table).to_owned())
            .await
    }
}
