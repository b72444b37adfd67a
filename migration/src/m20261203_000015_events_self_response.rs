//! What free/busy reads besides the event times:
//! - `events.self_response_status`: the user's own answer to an invitation (Google's `responseStatus` of
//!   the attendee marked `self`), so a declined invitation counts as free; null when the user is not
//!   among the attendees (their own event).
//! - `calendars.include_in_free_busy`: whether the calendar counts when free/busy names no calendars;
//!   null until the user chooses, which means "only if it is the account's primary calendar".
//!
//! Events cached before this migration have no response until Google sends them again (any change).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Events {
    Table,
    SelfResponseStatus,
}

#[derive(DeriveIden)]
enum Calendars {
    Table,
    IncludeInFreeBusy,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// Atomic on SQLite too (transactional DDL), not only on PostgreSQL.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(Events::Table)
                    .add_column(string_null(Events::SelfResponseStatus))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Calendars::Table)
                    .add_column(boolean_null(Calendars::IncludeInFreeBusy))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Calendars::Table)
                    .drop_column(Calendars::IncludeInFreeBusy)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Events::Table)
                    .drop_column(Events::SelfResponseStatus)
                    .to_owned(),
            )
            .await
    }
}
