//! `change_sequences`: named counters that hand out `events.change_seq` (and any other sequence
//! a delta feed needs).
//!
//! Why not a database sequence or an autoincrement: their values can commit out of order (a
//! transaction that took 7 may commit after one that took 8), and a delta-feed reader that already
//! moved its cursor past 8 would never see 7. [`next_value`] increments the counter row with one
//! upsert inside the caller's transaction; the row lock it takes (PostgreSQL) or the database
//! write lock (SQLite) is held until commit, so values become visible in increasing order. Call it
//! late in the transaction that writes the event: it serialises writers of the same counter until
//! they commit.

use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{ExprTrait, OnConflict};
use sea_orm::{ActiveValue::Set, Insert};

/// The counter behind `events.change_seq`.
pub const EVENTS: &str = "events";

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "change_sequences")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    /// The last value handed out (0 before the first).
    #[sea_orm(default_value = 0)]
    pub value: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Takes the next value (1, 2, ...) of the counter `name`, creating the counter on first use.
///
/// Run it on the transaction that writes the rows carrying the value, and commit promptly.
pub async fn next_value<C: ConnectionTrait>(db: &C, name: &str) -> Result<i64, DbErr> {
    reserve(db, name, 1).await
}

/// Takes the next `count` values of the counter `name` at once (one statement, same rules as
/// [`next_value`]); returns the first of them.
pub async fn reserve<C: ConnectionTrait>(db: &C, name: &str, count: usize) -> Result<i64, DbErr> {
    let count = i64::try_from(count.max(1)).unwrap_or(i64::MAX);
    let row = Insert::one(ActiveModel {
        name: Set(name.to_owned()),
        value: Set(count),
    })
    .on_conflict(
        OnConflict::column(Column::Name)
            .value(Column::Value, Expr::col((Entity, Column::Value)).add(count))
            .to_owned(),
    )
    .exec_with_returning(db)
    .await?;
    Ok(row.value - count + 1)
}
