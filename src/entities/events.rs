//! `events`: the local cache of Google events.
//!
//! Texts are ciphertext. `start_*` / `end_*` / `original_start_*` mirror Google's `EventTime`:
//! `*_date` for all-day events, `*_date_time` (UTC) otherwise, plus the IANA zone if Google gave one.
//! `range_start` / `range_end` bound every instant the event (or its whole series) can occupy, so
//! a window query is `range_start < :max AND range_end > :min`. `change_seq` orders the delta feed
//! (allocate it with [`super::event_change_sequences::next_value`], per user); `deleted_at` marks a tombstone.

use sea_orm::entity::prelude::*;

/// Rows whose range spans more than this are `long_span`; a short row overlapping a window starts at
/// most this long before it.
pub const LONG_SPAN: chrono::TimeDelta = chrono::TimeDelta::days(7);

use super::enums::EventStatus;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Unique with `google_event_id`.
    pub calendar_id: Uuid,
    pub google_event_id: String,
    pub i_cal_uid: Option<String>,
    /// Ciphertext.
    #[sea_orm(column_type = "Blob", nullable)]
    pub summary: Option<Vec<u8>>,
    /// Ciphertext.
    #[sea_orm(column_type = "Blob", nullable)]
    pub description: Option<Vec<u8>>,
    /// Ciphertext.
    #[sea_orm(column_type = "Blob", nullable)]
    pub location: Option<Vec<u8>>,
    pub start_date: Option<Date>,
    pub start_date_time: Option<DateTimeUtc>,
    pub start_time_zone: Option<String>,
    pub end_date: Option<Date>,
    pub end_date_time: Option<DateTimeUtc>,
    pub end_time_zone: Option<String>,
    pub all_day: bool,
    /// Earliest instant the event or series can occupy.
    pub range_start: DateTimeUtc,
    /// Latest instant the event or series can occupy; far future for an unbounded series.
    pub range_end: DateTimeUtc,
    /// RRULE / EXDATE / RDATE lines of a series master: a JSON array of strings.
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub recurrence: Option<Json>,
    /// Google id of the series master, on instances and exceptions.
    pub recurring_event_id: Option<String>,
    pub original_start_date: Option<Date>,
    pub original_start_date_time: Option<DateTimeUtc>,
    pub original_start_time_zone: Option<String>,
    pub status: EventStatus,
    pub transparency: Option<String>,
    pub visibility: Option<String>,
    pub color_id: Option<String>,
    pub event_type: Option<String>,
    pub etag: Option<String>,
    /// Google's `updated`.
    pub google_updated: Option<DateTimeUtc>,
    /// `extendedProperties.private`: a JSON object of strings.
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub extended_private: Option<Json>,
    /// `extendedProperties.shared`: a JSON object of strings.
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub extended_shared: Option<Json>,
    /// The sync config whose mirror marker the event carries (null when the config is deleted).
    pub mirror_config_id: Option<Uuid>,
    /// Local change sequence for the delta feed; bumped on every local change.
    pub change_seq: i64,
    /// Tombstone: the event is gone at Google (kept for the delta feed).
    pub deleted_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// The user's answer to the invitation (`responseStatus` of Google's attendee marked `self`:
    /// `needsAction`, `declined`, `tentative` or `accepted`); null when the user is not an attendee.
    pub self_response_status: Option<String>,
    /// The range spans more than [`LONG_SPAN`]: window queries read such rows apart from the short ones.
    pub long_span: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::calendars::Entity",
        from = "Column::CalendarId",
        to = "super::calendars::Column::Id",
        on_update = "Cascade",
        on_delete = "Cascade"
    )]
    Calendars,
    #[sea_orm(
        belongs_to = "super::sync_configs::Entity",
        from = "Column::MirrorConfigId",
        to = "super::sync_configs::Column::Id",
        on_update = "Cascade",
        on_delete = "SetNull"
    )]
    MirrorConfig,
}

impl Related<super::calendars::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Calendars.def()
    }
}

impl Related<super::sync_configs::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::MirrorConfig.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
