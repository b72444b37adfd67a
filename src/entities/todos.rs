//! `todos`: the items of a todo list, ordered by `position` (not unique, so a reorder can rewrite
//! every position of a list in one transaction).

use sea_orm::entity::prelude::*;

use super::enums::Priority;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "todos")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub list_id: Uuid,
    /// The list's owner, denormalised to scope queries by user; keep it equal to the list's.
    pub user_id: Uuid,
    /// Ciphertext.
    #[sea_orm(column_type = "Blob")]
    pub title: Vec<u8>,
    /// Ciphertext.
    #[sea_orm(column_type = "Blob", nullable)]
    pub notes: Option<Vec<u8>>,
    pub due_date: Option<Date>,
    pub due_at: Option<DateTimeUtc>,
    pub priority: Priority,
    pub completed: bool,
    pub completed_at: Option<DateTimeUtc>,
    pub position: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::todo_lists::Entity",
        from = "Column::ListId",
        to = "super::todo_lists::Column::Id",
        on_update = "Cascade",
        on_delete = "Cascade"
    )]
    TodoLists,
    #[sea_orm(
        belongs_to = "super::users::Entity",
        from = "Column::UserId",
        to = "super::users::Column::Id",
        on_update = "Cascade",
        on_delete = "Cascade"
    )]
    Users,
}

impl Related<super::todo_lists::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::TodoLists.def()
    }
}

impl Related<super::users::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Users.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
