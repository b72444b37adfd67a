//! Cheaper event writes, on PostgreSQL above all.
//!
//! `event_search_tokens` loses its index on `key_id`: a few distinct values over every entry of every
//! event, which PostgreSQL paid for on each insert (a batch of 50 events, about 1,500 entries, took four
//! to ten times as long with it), while `rotate-keys`, the only reader, asks for the entries *not* under
//! the current key, which that index cannot answer anyway (it walks the primary key).
//!
//! `event_change_sequences`: one counter per user for `events.change_seq`, replacing the single
//! `change_sequences` row every writer of every user queued behind.
//!
//! A user's feed reads only that user's events, so it needs their changes, not everyone's, to become
//! visible in increasing order: the row lock of the user's own counter gives that (see
//! `entities::event_change_sequences`). Each existing user's counter starts at the old counter's value,
//! so every value handed out from now on is above every cursor a client already holds. `down` folds the
//! counters back into one, at the highest of them.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum EventChangeSequences {
    Table,
    UserId,
    /// The last `change_seq` handed out for the user's events.
    Value,
}

#[derive(DeriveIden)]
enum ChangeSequences {
    Table,
    Name,
    Value,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum EventSearchTokens {
    Table,
    KeyId,
}

const KEY_INDEX: &str = "idx_event_search_tokens_key_id";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(KEY_INDEX)
                    .table(EventSearchTokens::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(EventChangeSequences::Table)
                    .col(uuid(EventChangeSequences::UserId).primary_key())
                    .col(big_integer(EventChangeSequences::Value).default(0))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_event_change_sequences_user_id")
                            .from(EventChangeSequences::Table, EventChangeSequences::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade)
                            .on_update(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        let old_value = Query::select()
            .expr(Func::coalesce([
                Expr::col(ChangeSequences::Value).max(),
                Expr::val(0i64),
            ]))
            .from(ChangeSequences::Table)
            .and_where(Expr::col(ChangeSequences::Name).eq("events"))
            .to_owned();
        let seed = Query::insert()
            .into_table(EventChangeSequences::Table)
            .columns([EventChangeSequences::UserId, EventChangeSequences::Value])
            .select_from(
                Query::select()
                    .column(Users::Id)
                    .expr(SubQueryStatement::SelectStatement(old_value))
                    .from(Users::Table)
                    .to_owned(),
            )
            .map_err(|e| DbErr::Migration(e.to_string()))?
            .to_owned();
        manager.exec_stmt(seed).await?;
        manager
            .drop_table(Table::drop().table(ChangeSequences::Table).to_owned())
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ChangeSequences::Table)
                    .col(string(ChangeSequences::Name).primary_key())
                    .col(big_integer(ChangeSequences::Value).default(0))
                    .to_owned(),
            )
            .await?;
        let highest = Query::select()
            .expr(Expr::val("events"))
            .expr(Func::coalesce([
                Expr::col(EventChangeSequences::Value).max(),
                Expr::val(0i64),
            ]))
            .from(EventChangeSequences::Table)
            .to_owned();
        let fold = Query::insert()
            .into_table(ChangeSequences::Table)
            .columns([ChangeSequences::Name, ChangeSequences::Value])
            .select_from(highest)
            .map_err(|e| DbErr::Migration(e.to_string()))?
            .to_owned();
        manager.exec_stmt(fold).await?;
        manager
            .drop_table(Table::drop().table(EventChangeSequences::Table).to_owned())
            .await?;
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
}
