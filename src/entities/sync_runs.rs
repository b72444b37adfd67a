//! `sync_runs`: one row per run of a sync config, with its counters.

use sea_orm::entity::prelude::*;

use super::enums::{SyncRunStatus, SyncTrigger};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sync_runs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub config_id: Uuid,
    pub trigger: SyncTrigger,
    pub status: SyncRunStatus,
    pub started_at: Option<DateTimeUtc>,
    pub finished_at: Option<DateTimeUtc>,
    #[sea_orm(default_value = 0)]
    pub created: i32,
    #[sea_orm(default_value = 0)]
    pub updated: i32,
    #[sea_orm(default_value = 0)]
    pub deleted: i32,
    #[sea_orm(default_value = 0)]
    pub skipped: i32,
    #[sea_orm(default_value = 0)]
    pub failed: i32,
    /// HTTP requests made to Google by this run (a batch counts once).
    #[sea_orm(default_value = 0)]
    pub google_calls: i32,
    /// Both sides changed; resolved by the documented rule.
    #[sea_orm(default_value = 0)]
    pub conflicts: i32,
    pub error: Option<String>,
    /// Lets this run delete more mirrors than the mass-delete guard allows.
    #[sea_orm(default_value = false)]
    pub allow_mass_delete: bool,
    pub created_at: DateTimeUtc,
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
