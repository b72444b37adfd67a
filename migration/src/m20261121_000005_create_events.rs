//! `events`: the local cache of Google events (encrypted texts, window bounds, delta-feed sequence)
//! and `change_sequences`, the counters that hand out `events.change_seq`.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261121_000003_create_calendars::Calendars;
use crate::m20261121_000004_create_sync_configs::SyncConfigs;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Events {
    Table,
    Id,
    CalendarId,
    GoogleEventId,
    ICalUid,
    /// Encrypted.
    Summary,
    /// Encrypted.
    Description,
    /// Encrypted.
    Location,
    StartDate,
    StartDateTime,
    StartTimeZone,
    EndDate,
    EndDateTime,
    EndTimeZone,
    AllDay,
    /// Earliest instant the event (or the whole series) can occupy.
    RangeStart,
    /// Latest instant the event (or the whole series) can occupy; far future when unbounded.
    RangeEnd,
    Recurrence,
    RecurringEventId,
    OriginalStartDate,
    OriginalStartDateTime,
    OriginalStartTimeZone,
    /// CONFIRMED | TENTATIVE | CANCELLED
    Status,
    Transparency,
    Visibility,
    ColorId,
    EventType,
    Etag,
    GoogleUpdated,
    ExtendedPrivate,
    ExtendedShared,
    MirrorConfigId,
    ChangeSeq,
    DeletedAt,
    CreatedAt,
    UpdatedAt,
}

/// One counter per name. `events.change_seq` values are allocated with a single upsert,
/// `INSERT INTO change_sequences (name, value) VALUES ('events', 1)
///  ON CONFLICT (name) DO UPDATE SET value = change_sequences.value + 1 RETURNING value`,
/// run in the same transaction as the event write. The row lock it takes (PostgreSQL) or the
/// database write lock (SQLite) is held until commit, so sequence numbers become visible in
/// increasing order and a delta-feed reader never skips a change that commits late (which a
/// PostgreSQL SEQUENCE or an autoincrement would allow).
#[derive(DeriveIden)]
enum ChangeSequences {
    Table,
    Name,
    Value,
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
                    .table(Events::Table)
                    .col(pk_uuid(Events::Id))
                    .col(uuid(Events::CalendarId))
                    .col(string(Events::GoogleEventId))
                    .col(string_null(Events::ICalUid))
                    .col(blob_null(Events::Summary))
                    .col(blob_null(Events::Description))
                    .col(blob_null(Events::Location))
                    .col(date_null(Events::StartDate))
                    .col(timestamp_with_time_zone_null(Events::StartDateTime))
                    .col(string_null(Events::StartTimeZone))
                    .col(date_null(Events::EndDate))
                    .col(timestamp_with_time_zone_null(Events::EndDateTime))
                    .col(string_null(Events::EndTimeZone))
                    .col(boolean(Events::AllDay))
                    .col(timestamp_with_time_zone(Events::RangeStart))
                    .col(timestamp_with_time_zone(Events::RangeEnd))
                    .col(json_binary_null(Events::Recurrence))
                    .col(string_null(Events::RecurringEventId))
                    .col(date_null(Events::OriginalStartDate))
                    .col(timestamp_with_time_zone_null(Events::OriginalStartDateTime))
                    .col(string_null(Events::OriginalStartTimeZone))
                    .col(string_len(Events::Status, 32))
                    .col(string_null(Events::Transparency))
                    .col(string_null(Events::Visibility))
                    .col(string_null(Events::ColorId))
                    .col(string_null(Events::EventType))
                    .col(string_null(Events::Etag))
                    .col(timestamp_with_time_zone_null(Events::GoogleUpdated))
                    .col(json_binary_null(Events::ExtendedPrivate))
                    .col(json_binary_null(Events::ExtendedShared))
                    .col(uuid_null(Events::MirrorConfigId))
                    .col(big_integer(Events::ChangeSeq))
                    .col(timestamp_with_time_zone_null(Events::DeletedAt))
                    .col(timestamp_with_time_zone(Events::CreatedAt))
                    .col(timestamp_with_time_zone(Events::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_events_calendar_id")
                            .from(Events::Table, Events::CalendarId)
                            .to(Calendars::Table, Calendars::Id)
                            .on_delete(ForeignKeyAction::Cascade)
                            .on_update(ForeignKeyAction::Cascade),
                    )
                    // A mirror event outlives its config (deleteSyncConfig without removeMirrors).
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_events_mirror_config_id")
                            .from(Events::Table, Events::MirrorConfigId)
                            .to(SyncConfigs::Table, SyncConfigs::Id)
                            .on_delete(ForeignKeyAction::SetNull)
                            .on_update(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        let indexes: [(&str, &[Events], bool); 7] = [
            // Upserts from Google; also every lookup by calendar_id alone.
            (
                "uq_events_calendar_id_google_event_id",
                &[Events::CalendarId, Events::GoogleEventId],
                true,
            ),
            // Window queries `range_start < :max AND range_end > :min` per calendar: the planner
            // picks the bound that selects fewer rows; the other bound is checked in the index.
            (
                "idx_events_calendar_id_range_start",
                &[Events::CalendarId, Events::RangeStart, Events::RangeEnd],
                false,
            ),
            (
                "idx_events_calendar_id_range_end",
                &[Events::CalendarId, Events::RangeEnd, Events::RangeStart],
                false,
            ),
            // Instances and exceptions of a series.
            (
                "idx_events_calendar_id_recurring_event_id",
                &[Events::CalendarId, Events::RecurringEventId],
                false,
            ),
            // Delta feed, globally and per calendar.
            ("idx_events_change_seq", &[Events::ChangeSeq], false),
            (
                "idx_events_calendar_id_change_seq",
                &[Events::CalendarId, Events::ChangeSeq],
                false,
            ),
            // Mirrors of a config (removeMirrors, SET NULL on config deletion).
            ("idx_events_mirror_config_id", &[Events::MirrorConfigId], false),
        ];
        for (name, cols, unique) in indexes {
            let mut index = Index::create();
            index.name(name).table(Events::Table);
            for col in cols {
                index.col(*col);
            }
            if unique {
                index.unique();
            }
            manager.create_index(index).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(ChangeSequences::Table)
                    .col(string(ChangeSequences::Name).primary_key())
                    .col(big_integer(ChangeSequences::Value).default(0))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ChangeSequences::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Events::Table).to_owned())
            .await
    }
}
