//! `push_channels`: Google push-notification channels watching a calendar's events.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "push_channels")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub calendar_id: Uuid,
    /// The channel id we gave Google (`X-Goog-Channel-ID`); unique.
    #[sea_orm(unique)]
    pub channel_id: String,
    /// Google's id of the watched resource (`X-Goog-Resource-ID`), needed to stop the channel.
    pub resource_id: String,
    /// The channel token (`X-Goog-Channel-Token`), encrypted or hashed.
    #[sea_orm(column_type = "Blob")]
    pub token: Vec<u8>,
    pub expires_at: DateTimeUtc,
    pub stopped_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
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
}

impl Related<super::calendars::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Calendars.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
