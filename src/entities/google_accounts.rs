//! `google_accounts`: a Google account connected by a user, with its encrypted OAuth tokens.

use sea_orm::entity::prelude::*;

use super::enums::AccountStatus;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "google_accounts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    /// Google's stable account id (`sub`); unique: a Google account belongs to one user.
    #[sea_orm(unique)]
    pub google_sub: String,
    pub email: String,
    pub name: Option<String>,
    pub status: AccountStatus,
    /// Ciphertext.
    #[sea_orm(column_type = "Blob", nullable)]
    pub access_token: Option<Vec<u8>>,
    /// Ciphertext.
    #[sea_orm(column_type = "Blob", nullable)]
    pub refresh_token: Option<Vec<u8>>,
    pub access_token_expires_at: Option<DateTimeUtc>,
    /// Space-separated OAuth scopes granted.
    pub granted_scopes: String,
    pub calendar_list_sync_token: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
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
