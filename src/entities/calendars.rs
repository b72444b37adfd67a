//! `calendars`: the cached calendar list of a Google account.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "calendars")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Unique with `google_calendar_id`.
    pub account_id: Uuid,
    pub google_calendar_id: String,
    pub summary: String,
    pub description: Option<String>,
    pub time_zone: Option<String>,
    /// Google's access role: `freeBusyReader`, `reader`, `writer` or `owner`.
    pub access_role: String,
    pub is_primary: bool,
    pub background_color: Option<String>,
    pub foreground_color: Option<String>,
    pub color_id: Option<String>,
    pub events_sync_token: Option<String>,
    pub last_full_sync_at: Option<DateTimeUtc>,
    pub last_synced_at: Option<DateTimeUtc>,
    /// Set when the calendar disappeared from the account's calendar list at Google.
    pub deleted_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// Whether free/busy counts the calendar when no calendars are named; null until the user chooses,
    /// which means "only the account's primary calendar" (see [`Model::includes_in_free_busy`]).
    pub include_in_free_busy: Option<bool>,
}

/// Sync configs reach a calendar twice (source and destination): see
/// [`super::sync_configs::SourceCalendar`] and [`super::sync_configs::DestinationCalendar`].
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::google_accounts::Entity",
        from = "Column::AccountId",
        to = "super::google_accounts::Column::Id",
        on_update = "Cascade",
        on_delete = "Cascade"
    )]
    GoogleAccounts,
}

impl Related<super::google_accounts::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::GoogleAccounts.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    /// Whether free/busy counts the calendar by default: the user's choice, else primary calendars only.
    pub fn includes_in_free_busy(&self) -> bool {
        self.include_in_free_busy.unwrap_or(self.is_primary)
    }
}
