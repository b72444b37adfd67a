//! `todo_lists` and `todos`; names, titles and notes are encrypted.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261121_000001_create_users::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum TodoLists {
    Table,
    Id,
    UserId,
    /// Encrypted.
    Name,
    Color,
    Position,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Todos {
    Table,
    Id,
    ListId,
    /// Denormalised from the list, to scope queries by user.
    UserId,
    /// Encrypted.
    Title,
    /// Encrypted.
    Notes,
    DueDate,
    DueAt,
    /// NONE | LOW | MEDIUM | HIGH
    Priority,
    Completed,
    CompletedAt,
    Position,
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
                    .table(TodoLists::Table)
                    .col(pk_uuid(TodoLists::Id))
                    .col(uuid(TodoLists::UserId))
                    .col(blob(TodoLists::Name))
                    .col(string_null(TodoLists::Color))
                    .col(integer(TodoLists::Position))
                    .col(timestamp_with_time_zone(TodoLists::CreatedAt))
                    .col(timestamp_with_time_zone(TodoLists::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_todo_lists_user_id")
                            .from(TodoLists::Table, TodoLists::UserId)
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
                    .name("idx_todo_lists_user_id_position")
                    .table(TodoLists::Table)
                    .col(TodoLists::UserId)
                    .col(TodoLists::Position)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Todos::Table)
                    .col(pk_uuid(Todos::Id))
                    .col(uuid(Todos::ListId))
                    .col(uuid(Todos::UserId))
                    .col(blob(Todos::Title))
                    .col(blob_null(Todos::Notes))
                    .col(date_null(Todos::DueDate))
                    .col(timestamp_with_time_zone_null(Todos::DueAt))
                    .col(string_len(Todos::Priority, 32))
                    .col(boolean(Todos::Completed))
                    .col(timestamp_with_time_zone_null(Todos::CompletedAt))
                    .col(integer(Todos::Position))
                    .col(timestamp_with_time_zone(Todos::CreatedAt))
                    .col(timestamp_with_time_zone(Todos::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_todos_list_id")
                            .from(Todos::Table, Todos::ListId)
                            .to(TodoLists::Table, TodoLists::Id)
                            .on_delete(ForeignKeyAction::Cascade)
                            .on_update(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_todos_user_id")
                            .from(Todos::Table, Todos::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade)
                            .on_update(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // Not unique: reorderTodos rewrites every position of a list in one transaction.
        manager
            .create_index(
                Index::create()
                    .name("idx_todos_list_id_position")
                    .table(Todos::Table)
                    .col(Todos::ListId)
                    .col(Todos::Position)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_todos_user_id_completed_due_at")
                    .table(Todos::Table)
                    .col(Todos::UserId)
                    .col(Todos::Completed)
                    .col(Todos::DueAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Todos::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(TodoLists::Table).to_owned())
            .await
    }
}
