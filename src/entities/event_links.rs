//! `event_links`: which event a mirror copies, per sync config.
//!
//! `source_*` is the side holding the original event, `mirror_*` the copy Chronos wrote; `origin`
//! says which side of the config the original is on (for TWO_WAY configs, a link whose original
//! lives in the destination calendar has `origin = DESTINATION` and `source_calendar_id` equal to
//! the config's destination). The calendar ids copy the config's and carry no foreign key: a link
//! goes away with its config. Unique per config: (`origin`, `source_event_id`), and `mirror_event_id`.

use sea_orm::entity::prelude::*;

use super::enums::LinkOrigin;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "event_links")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub config_id: Uuid,
    pub source_calendar_id: Uuid,
    /// Google event id.
    pub source_event_id: String,
    pub mirror_calendar_id: Uuid,
    /// Google event id.
    pub mirror_event_id: String,
    pub origin: LinkOrigin,
    /// Hash of the source event's synced fields when last copied.
    pub source_hash: String,
    /// Hash of the mirror event's fields as last written (detects edits to the mirror).
    pub mirror_hash: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::sync_configs::Entity",
        from = "Column::ConfigId",
        to = "super::sync_configs::Column::Id",
        on_update = "Cascade",
        on_delete = "Cascade"
    )]
    SyncConfigs,
}

impl Related<super::sync_configs::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::SyncConfigs.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
