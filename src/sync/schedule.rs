//! Scheduled runs: configs with an interval run again once their `next_run_at` has come.
//!
//! A periodic job (`sync.schedule`, one per slot across every instance) queues the due runs. Each config
//! is taken with a compare-and-set of `next_run_at` (moved one jittered interval ahead) in the same
//! transaction that queues its run, so however many instances look at the same due config, one run is
//! queued. Paused configs wait for `triggerSync`; configs needing re-authorisation are skipped (their
//! schedule still moves) until their accounts are connected again.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter};
use serde_json::json;

use super::{configs, runner};
use crate::{
    entities::{
        enums::{SyncConfigStatus, SyncTrigger},
        sync_configs,
    },
    error::AppResult,
    jobs::JobHandlers,
    state::AppState,
};

/// The job kind of the scheduler.
pub const SCHEDULE_KIND: &str = "sync.schedule";

/// How often due configs are looked for: a run starts at most this late.
pub const SCHEDULE_EVERY: Duration = Duration::from_secs(15);

pub fn register(handlers: &mut JobHandlers<AppState>) {
    handlers
        .register_fn(SCHEDULE_KIND, |state, _job| async move {
            enqueue_due(&state, Utc::now()).await?;
            Ok(())
        })
        .schedule_every(SCHEDULE_KIND, SCHEDULE_EVERY, || json!({}));
}

/// Queues a SCHEDULED run of every enabled config whose `next_run_at` has come (or was never set) and
/// moves its `next_run_at` one interval ahead. Returns how many runs were queued by this call.
pub async fn enqueue_due(state: &AppState, now: DateTime<Utc>) -> AppResult<usize> {
    let due = sync_configs::Entity::find()
        .filter(sync_configs::Column::Enabled.eq(true))
        .filter(sync_configs::Column::IntervalMinutes.is_not_null())
        .filter(sync_configs::Column::Status.ne(SyncConfigStatus::Paused))
        .filter(due_condition(now))
        .all(&state.db)
        .await?;
    let mut queued = 0;
    for config in due {
        let runnable = runner::runnable(&state.db, &config).await?;
        let next = configs::schedule(true, config.interval_minutes, now);
        let txn = crate::db::begin_write(&state.db).await?;
        let taken = sync_configs::Entity::update_many()
            .col_expr(sync_configs::Column::NextRunAt, next.into())
            .filter(sync_configs::Column::Id.eq(config.id))
            .filter(due_condition(now))
            .exec(&txn)
            .await?
            .rows_affected
            == 1;
        if taken && runnable {
            runner::enqueue(&txn, config.id, SyncTrigger::Scheduled, false).await?;
            queued += 1;
        }
        txn.commit().await?;
    }
    if queued > 0 {
        state.jobs.wake();
        tracing::info!(queued, "scheduled sync runs queued");
    }
    Ok(queued)
}

fn due_condition(now: DateTime<Utc>) -> Condition {
    Condition::any()
        .add(sync_configs::Column::NextRunAt.is_null())
        .add(sync_configs::Column::NextRunAt.lte(now))
}
