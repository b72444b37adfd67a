//! `sync_configs`: a rule mirroring one calendar's events into another (and back, when TWO_WAY).

use sea_orm::entity::prelude::*;

use super::enums::{SyncConfigStatus, SyncDirection};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sync_configs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    pub source_calendar_id: Uuid,
    pub destination_calendar_id: Uuid,
    pub direction: SyncDirection,
    pub lookahead_days: i32,
    pub lookback_days: i32,
    /// Source -> destination: copy only busy time, titled `privacy_placeholder`.
    pub privacy_enabled: bool,
    pub privacy_placeholder: String,
    /// Destination -> source (TWO_WAY only).
    pub reverse_privacy_enabled: bool,
    pub reverse_privacy_placeholder: String,
    pub destination_color_id: Option<String>,
    pub reverse_color_id: Option<String>,
    pub enabled: bool,
    /// Scheduled runs every so many minutes; null = manual and push only.
    pub interval_minutes: Option<i32>,
    pub status: SyncConfigStatus,
    pub paused_reason: Option<String>,
    /// When the scheduler should next run this config.
    pub next_run_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

/// Both calendars are `calendars` rows, so there is no `Related<calendars::Entity>`: join with
/// `Relation::SourceCalendar` / `Relation::DestinationCalendar`, or the [`SourceCalendar`] and
/// [`DestinationCalendar`] links (`find_also_linked`).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::users::Entity",
        from = "Column::UserId",
        to = "super::users::Column::Id",
        on_update = "Cascade",
        on_delete = "Cascade"
    )]
    Users,
    #[sea_orm(
        belongs_to = "super::calendars::Entity",
        from = "Column::SourceCalendarId",
        to = "super::calendars::Column::Id",
        on_update = "Cascade",
        on_delete = "Cascade"
    )]
    SourceCalendar,
    #[sea_orm(
        belongs_to = "super::calendars::Entity",
        from = "Column::DestinationCalendarId",
        to = "super::calendars::Column::Id",
        on_update = "Cascade",
        on_delete = "Cascade"
    )]
    DestinationCalendar,
}

impl Related<super::users::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Users.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

/// sync config -> its source calendar.
#[derive(Debug)]
pub struct SourceCalendar;

impl Linked for SourceCalendar {
    type FromEntity = Entity;
    type ToEntity = super::calendars::Entity;

    fn link(&self) -> Vec<RelationDef> {
        vec![Relation::SourceCalendar.def()]
    }
}

/// sync config -> its destination calendar.
#[derive(Debug)]
pub struct DestinationCalendar;

impl Linked for DestinationCalendar {
    type FromEntity = Entity;
    type ToEntity = super::calendars::Entity;

    fn link(&self) -> Vec<RelationDef> {
        vec![Relation::DestinationCalendar.def()]
    }
}
