//! Quiet runs: most runs find nothing to do. When the last run of the config planned nothing (it
//! succeeded without a single write or conflict) and nothing the planner reads has changed since it
//! started, this run's plan would be empty too, so it is not made: no event is loaded or decrypted.
//!
//! "Nothing changed" means, since the last run started (minus [`MARGIN`], so a write that was still
//! committing then is not missed): no event row of either calendar was written (listings, our own writes,
//! tombstones), no link of the config and neither calendar row changed, the config was not edited, and no
//! event's stored range crossed an edge of the moving window (so none entered or left it). Both listings
//! of this run must have completed.

use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
};

use uuid::Uuid;

use crate::{
    entities::{calendars, enums::SyncRunStatus, event_links, events, sync_configs, sync_runs},
    error::AppResult,
};

/// Writes committing around the previous run's start count as changes: a row's `updated_at` is taken
/// inside its (short) transaction, so a write that was still committing then is not missed.
pub const MARGIN: TimeDelta = TimeDelta::seconds(10);

/// An all-day event's stored range holds its dates in any zone: its edges lie up to 26 hours from where
/// they fall in the calendar's zone, so its crossings are looked for this much beyond each edge.
const EDGE_MARGIN: TimeDelta = TimeDelta::days(2);

/// The previous finished run of `config` (other than `run_id`), when a run at `now` can skip planning
/// because of it.
pub async fn unchanged_since_last_run<C: ConnectionTrait>(
    db: &C,
    config: &sync_configs::Model,
    run_id: Uuid,
    now: DateTime<Utc>,
) -> AppResult<Option<sync_runs::Model>> {
    let Some(previous) = sync_runs::Entity::find()
        .filter(sync_runs::Column::ConfigId.eq(config.id))
        .filter(sync_runs::Column::Id.ne(run_id))
        .filter(sync_runs::Column::FinishedAt.is_not_null())
        .order_by_desc(sync_runs::Column::FinishedAt)
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let Some(started) = previous.started_at else {
        return Ok(None);
    };
    let planned_nothing = previous.status == SyncRunStatus::Succeeded
        && previous.created == 0
        && previous.updated == 0
        && previous.deleted == 0
        && previous.failed == 0
        && previous.conflicts == 0;
    let since = started - MARGIN;
    if !planned_nothing || config.updated_at > since {
        return Ok(None);
    }
    let calendar_ids = [config.source_calendar_id, config.destination_calendar_id];
    let touched_calendars = calendars::Entity::find()
        .filter(calendars::Column::Id.is_in(calendar_ids))
        .filter(calendars::Column::UpdatedAt.gt(since))
        .count(db)
        .await?;
    if touched_calendars > 0 {
        tracing::debug!(config_id = %config.id, "a calendar row changed since the last run: planning");
        return Ok(None);
    }
    let touched_links = event_links::Entity::find()
        .filter(event_links::Column::ConfigId.eq(config.id))
        .filter(event_links::Column::UpdatedAt.gt(since))
        .count(db)
        .await?;
    if touched_links > 0 {
        tracing::debug!(config_id = %config.id, "links changed since the last run: planning");
        return Ok(None);
    }
    let lookahead = TimeDelta::days(i64::from(config.lookahead_days.max(0)));
    let lookback = TimeDelta::days(i64::from(config.lookback_days.max(0)));
    // The window's edges moved from [started - lookback, started + lookahead) to [now - lookback, now +
    // lookahead). A timed event's stored range is exact; an all-day one's is widened (less than a day).
    let crossed = |all_day: bool| {
        let slack = if all_day { EDGE_MARGIN } else { TimeDelta::zero() };
        Condition::all().add(events::Column::AllDay.eq(all_day)).add(
            Condition::any()
                .add(
                    Condition::all()
                        .add(events::Column::RangeStart.gte(started + lookahead - slack))
                        .add(events::Column::RangeStart.lt(now + lookahead)),
                )
                .add(
                    Condition::all()
                        .add(events::Column::RangeEnd.gt(started - lookback))
                        .add(events::Column::RangeEnd.lte(now - lookback + slack)),
                ),
        )
    };
    for calendar_id in calendar_ids {
        let changed = events::Entity::find()
            .filter(events::Column::CalendarId.eq(calendar_id))
            .filter(
                Condition::any()
                    .add(events::Column::UpdatedAt.gt(since))
                    .add(crossed(false))
                    .add(crossed(true)),
            )
            .count(db)
            .await?;
        if changed > 0 {
            tracing::debug!(config_id = %config.id, %calendar_id, changed, "events changed or crossed the window's edges: planning");
            return Ok(None);
        }
    }
    Ok(Some(previous))
}
