//! `event_change_sequences`: one counter per user that hands out `change_seq` for the rows of that
//! user's `events`.
//!
//! The guarantee `eventChanges` needs: a reader whose cursor passed value N never later finds a change
//! of the same user numbered N or below. A database sequence or an autoincrement cannot give it: their
//! values commit out of order (a transaction that took 7 may commit after one that took 8, and a reader
//! that already moved past 8 would never see 7). [`reserve`] increments the user's counter row with one
//! upsert inside the caller's transaction; the row lock it takes (PostgreSQL) or the database write lock
//! (SQLite) is held until commit, so a second writer of the same user waits there and takes its values
//! only after the first one's are visible: the user's values become visible in increasing order.
//!
//! A feed reads one user's events, so only writers of the same user need to queue: writers of different
//! users take different rows and never wait for each other (the single counter this table replaced made
//! every writer of every user queue).

use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{ExprTrait, OnConflict};
use sea_orm::{ActiveValue::Set, Insert};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "event_change_sequences")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    /// The last value handed out (0 before the first).
    #[sea_orm(default_value = 0)]
    pub value: i64,
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

impl ActiveModelBehavior for ActiveModel {}

/// Takes the next value (1, 2, ...) for `user_id`'s events, creating the counter on first use.
///
/// Run it on the transaction that writes the rows carrying the value, and commit promptly: the user's
/// other writers wait for that commit.
pub async fn next_value<C: ConnectionTrait>(db: &C, user_id: Uuid) -> Result<i64, DbErr> {
    reserve(db, user_id, 1).await
}

/// Takes the next `count` values for `user_id`'s events at once (one statement, same rules as
/// [`next_value`]); returns the first of them.
pub async fn reserve<C: ConnectionTrait>(db: &C, user_id: Uuid, count: usize) -> Result<i64, DbErr> {
    let count = i64::try_from(count.max(1)).unwrap_or(i64::MAX);
    let row = Insert::one(ActiveModel {
        user_id: Set(user_id),
        value: Set(count),
    })
    .on_conflict(
        OnConflict::column(Column::UserId)
            .value(Column::Value, Expr::col((Entity, Column::Value)).add(count))
            .to_owned(),
    )
    .exec_with_returning(db)
    .await?;
    Ok(row.value - count + 1)
}
