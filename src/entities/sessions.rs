//! `sessions`: the session store's rows (one per browser session).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sessions")]
pub struct Model {
    /// The session id, as tower-sessions renders it.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Set once signed in.
    pub user_id: Option<Uuid>,
    /// The serialised session record.
    #[sea_orm(column_type = "Blob")]
    pub data: Vec<u8>,
    pub expires_at: DateTimeUtc,
    pub user_agent: Option<String>,
    pub created_at: DateTimeUtc,
    pub last_seen_at: DateTimeUtc,
}

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
}

impl Related<super::users::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Users.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
