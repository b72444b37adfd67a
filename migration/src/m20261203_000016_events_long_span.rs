//! `events.long_span`: whether the row's stored range spans more than a week (series masters, long
//! events). A window query then reads two narrow index ranges instead of half a calendar's history: the
//! short rows starting at most a week before the window, and the few long ones.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Events {
    Table,
    CalendarId,
    LongSpan,
    RangeStart,
}

const INDEX: &str = "idx_events_calendar_id_long_span_range_start";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Events::Table)
                    .add_column(
                        ColumnDef::new(Events::LongSpan)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .to_owned(),
            )
            .await?;
        let backfill = match manager.get_database_backend() {
            DbBackend::Postgres => {
                "UPDATE events SET long_span = (range_end - range_start > INTERVAL '7 days')"
            }
            _ => "UPDATE events SET long_span = (julianday(range_end) - julianday(range_start) > 7)",
        };
        manager.get_connection().execute_unprepared(backfill).await?;
        manager
            .create_index(
                Index::create()
                    .name(INDEX)
                    .table(Events::Table)
                    .col(Events::CalendarId)
                    .col(Events::LongSpan)
                    .col(Events::RangeStart)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().name(INDEX).table(Events::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Events::Table)
                    .drop_column(Events::LongSpan)
                    .to_owned(),
            )
            .await
    }
}
