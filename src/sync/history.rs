//! Reading a config's run history (`sync_runs`): pages newest first, and the newest run of each config. The run
//! orchestration writes the rows; nothing here changes them.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Alias, Expr, ExprTrait, Func, Query},
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::configs;
use crate::{
    entities::sync_runs,
    error::{AppError, AppResult},
};

/// `first` of `syncRuns` when not given, and its bounds.
pub const DEFAULT_PAGE_SIZE: i32 = 20;
pub const MAX_PAGE_SIZE: i32 = 100;

/// Where a page ends: the sort key of its last run. Serialised into the opaque cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunCursor {
    #[serde(rename = "c")]
    created_at: DateTime<Utc>,
    #[serde(rename = "i")]
    id: Uuid,
}

impl RunCursor {
    pub fn of(run: &sync_runs::Model) -> Self {
        Self {
            created_at: run.created_at,
            id: run.id,
        }
    }
}

/// One page of runs, each with the cursor that continues after it.
#[derive(Debug, Clone)]
pub struct RunPage {
    pub runs: Vec<(RunCursor, sync_runs::Model)>,
    pub has_next_page: bool,
}

/// `first`: 1 to [`MAX_PAGE_SIZE`], [`DEFAULT_PAGE_SIZE`] when not given.
pub fn page_size(first: Option<i32>) -> AppResult<u64> {
    let first = first.unwrap_or(DEFAULT_PAGE_SIZE);
    if !(1..=MAX_PAGE_SIZE).contains(&first) {
        return Err(AppError::bad_input(
            "first",
            format!("must be between 1 and {MAX_PAGE_SIZE}"),
        ));
    }
    u64::try_from(first).map_err(|_| AppError::bad_input("first", "must be positive"))
}

/// Up to `first` runs of the user's config `config_id` after `after`, newest first (by creation, then id).
/// Another user's config is NOT_FOUND.
pub async fn page<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    config_id: Uuid,
    first: u64,
    after: Option<RunCursor>,
) -> AppResult<RunPage> {
    configs::find_owned(db, user_id, config_id).await?;
    let mut query = sync_runs::Entity::find().filter(sync_runs::Column::ConfigId.eq(config_id));
    if let Some(after) = after {
        query = query.filter(
            Condition::any()
                .add(sync_runs::Column::CreatedAt.lt(after.created_at))
                .add(
                    Condition::all()
                        .add(sync_runs::Column::CreatedAt.eq(after.created_at))
                        .add(sync_runs::Column::Id.lt(after.id)),
                ),
        );
    }
    let mut rows = query
        .order_by_desc(sync_runs::Column::CreatedAt)
        .order_by_desc(sync_runs::Column::Id)
        .limit(first + 1)
        .all(db)
        .await?;
    let has_next_page = rows.len() as u64 > first;
    rows.truncate(usize::try_from(first).unwrap_or(usize::MAX));
    Ok(RunPage {
        runs: rows.into_iter().map(|run| (RunCursor::of(&run), run)).collect(),
        has_next_page,
    })
}

/// The newest run of each of `config_ids` that has one, in two statements whatever their number: the
/// rows at each config's latest `created_at`, then the greatest id among ties (as the run pages order).
pub async fn latest_of_many<C: ConnectionTrait>(
    db: &C,
    config_ids: &[Uuid],
) -> AppResult<HashMap<Uuid, sync_runs::Model>> {
    if config_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let newer = Alias::new("newer");
    let newest_of_config = Query::select()
        .expr(Func::max(Expr::col((
            newer.clone(),
            sync_runs::Column::CreatedAt,
        ))))
        .from_as(sync_runs::Entity, newer.clone())
        .and_where(
            Expr::col((newer, sync_runs::Column::ConfigId))
                .equals((sync_runs::Entity, sync_runs::Column::ConfigId)),
        )
        .to_owned();
    let candidates = sync_runs::Entity::find()
        .filter(sync_runs::Column::ConfigId.is_in(config_ids.iter().copied()))
        .filter(
            Expr::col((sync_runs::Entity, sync_runs::Column::CreatedAt))
                .eq(Expr::SubQuery(None, Box::new(newest_of_config.into()))),
        )
        .all(db)
        .await?;
    let mut newest: HashMap<Uuid, sync_runs::Model> = HashMap::new();
    for run in candidates {
        match newest.get(&run.config_id) {
            Some(kept) if kept.id >= run.id => {}
            _ => {
                newest.insert(run.config_id, run);
            }
        }
    }
    Ok(newest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes_default_to_20_and_stop_at_100() {
        assert_eq!(page_size(None).unwrap(), 20);
        assert_eq!(page_size(Some(1)).unwrap(), 1);
        assert_eq!(page_size(Some(100)).unwrap(), 100);
        for bad in [0, -1, 101] {
            assert!(matches!(
                page_size(Some(bad)),
                Err(AppError::BadUserInput { ref field, .. }) if field == "first"
            ));
        }
    }
}
