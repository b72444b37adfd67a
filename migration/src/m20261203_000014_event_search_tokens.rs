//! `event_search_tokens`: the blind index of the events' texts. One row per (event, keyed digest of a
//! word or of a word's beginning); the words themselves are never stored. Rows go with their event
//! (cascade), hence with its calendar, account and user.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum EventSearchTokens {
    Table,
    EventId,
    /// HMAC digest (16 bytes) under the user's search key.
    Token,
    /// The master key the digest depends on (re-indexed by `rotate-keys`).
    KeyId,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
}

const TOKEN_INDEX: &str = "idx_event_search_tokens_token_event_id";
const KEY_INDEX: &str = "idx_event_search_tokens_key_id";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(EventSearchTokens::Table)
                    .col(uuid(EventSearchTokens::EventId))
                    .col(blob(EventSearchTokens::Token))
                    .col(string_len(EventSearchTokens::KeyId, 16))
                    // Replacing an event's entries and the cascade read by event.
                    .primary_key(
                        Index::create()
                            .col(EventSearchTokens::EventId)
                            .col(EventSearchTokens::Token),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_event_search_tokens_event_id")
                            .from(EventSearchTokens::Table, EventSearchTokens::EventId)
                            .to(Events::Table, Events::Id)
                            .on_delete(ForeignKeyAction::Cascade)
                            .on_update(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // A search looks digests up, then joins their events.
        manager
            .create_index(
                Index::create()
                    .name(TOKEN_INDEX)
                    .table(EventSearchTokens::Table)
                    .col(EventSearchTokens::Token)
                    .col(EventSearchTokens::EventId)
                    .to_owned(),
            )
            .await?;
        // `rotate-keys` finds what was indexed under an older key.
        manager
            .create_index(
                Index::create()
                    .name(KEY_INDEX)
                    .table(EventSearchTokens::Table)
                    .col(EventSearchTokens::KeyId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(EventSearchTokens::Table).to_owned())
            .await
    }
}
