//! `users`: one row per Chronos user.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub email: String,
    pub name: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::google_accounts::Entity")]
    GoogleAccounts,
    #[sea_orm(has_many = "super::todo_lists::Entity")]
    TodoLists,
    #[sea_orm(has_many = "super::todos::Entity")]
    Todos,
    #[sea_orm(has_many = "super::sync_configs::Entity")]
    SyncConfigs,
    #[sea_orm(has_many = "super::sessions::Entity")]
    Sessions,
}

impl Related<super::google_accounts::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::GoogleAccounts.def()
    }
}

impl Related<super::todo_lists::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::TodoLists.def()
    }
}

impl Related<super::todos::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Todos.def()
    }
}

impl Related<super::sync_configs::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::SyncConfigs.def()
    }
}

impl Related<super::sessions::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Sessions.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
