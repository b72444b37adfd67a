//! The calendars domain's background work, on the job queue:
//! - `calendar.refresh`: list one calendar's events (full the first time, then incremental). Queued for
//!   new calendars, by push notifications and by the sweep; one queued and one running per calendar at
//!   most (dedupe and concurrency keys), so a burst of notifications costs at most two listings.
//! - `calendar_list.refresh`: list one account's calendars.
//! - `calendars.sweep` (every 5 minutes): queues a refresh of every calendar not refreshed for 15 minutes
//!   (covers missed notifications and calendars without push), and the first listing of accounts never
//!   listed.
//! - `calendars.maintenance` (hourly): renews push channels about to expire, opens channels where none is
//!   live, and lists every account's calendars again (calendars added or removed at Google).

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, QueryFilter, QuerySelect, RelationTrait, sea_query::Query,
};
use serde_json::json;
use uuid::Uuid;

use super::{cache, list, push};
use crate::{
    entities::{
        calendars,
        enums::{AccountStatus, JobStatus},
        google_accounts, jobs, push_channels,
    },
    error::{AppError, AppResult},
    jobs::{JobFailure, JobHandlers, NewJob},
    state::AppState,
};

pub const REFRESH_EVENTS: &str = "calendar.refresh";
pub const REFRESH_LIST: &str = "calendar_list.refresh";
pub const SWEEP: &str = "calendars.sweep";
pub const MAINTENANCE: &str = "calendars.maintenance";

const SWEEP_EVERY: Duration = Duration::from_secs(5 * 60);
/// A calendar not refreshed for this long is refreshed by the sweep.
pub const STALE_AFTER: Duration = Duration::from_secs(15 * 60);
/// Sweep refreshes are spread over this span, so calendars are not all listed in the same second.
const SWEEP_JITTER: Duration = Duration::from_secs(60);
const MAINTENANCE_EVERY: Duration = Duration::from_secs(3600);
/// Google often sends several notifications for one change: those arriving while a refresh of the
/// calendar runs are gathered for this long into one more listing.
pub const PUSH_DEBOUNCE: Duration = Duration::from_secs(1);

pub fn register(handlers: &mut JobHandlers<AppState>) {
    handlers
        .register_fn(REFRESH_EVENTS, |state, job| async move {
            run_events_refresh(&state, &job).await
        })
        .register_fn(REFRESH_LIST, |state, job| async move {
            run_list_refresh(&state, &job).await
        })
        .register_fn(
            SWEEP,
            |state, _job| async move { sweep(&state, Utc::now()).await },
        )
        .schedule_every(SWEEP, SWEEP_EVERY, || json!({}))
        .register_fn(
            MAINTENANCE,
            |state, _job| async move { maintenance(&state).await },
        )
        .schedule_every(MAINTENANCE, MAINTENANCE_EVERY, || json!({}));
}

fn refresh_key(calendar_id: Uuid) -> String {
    format!("{REFRESH_EVENTS}:{calendar_id}")
}

/// Queues a refresh of the calendar's events to run now (coalesced with a queued one).
pub async fn enqueue_events_refresh(state: &AppState, calendar_id: Uuid) -> AppResult<()> {
    enqueue_events_refresh_at(state, calendar_id, Utc::now()).await
}

/// Queues a refresh after a push notification. After a quiet spell it runs at once, so a lone change
/// reaches the cache (and live subscribers) without waiting; while a refresh of the calendar runs or
/// within [`PUSH_DEBOUNCE`] of one, it waits that long, and every notification until it starts shares
/// it. A burst costs two listings.
pub async fn enqueue_pushed_refresh(state: &AppState, calendar_id: Uuid) -> AppResult<()> {
    let now = Utc::now();
    let debounce = chrono::Duration::from_std(PUSH_DEBOUNCE).unwrap_or_default();
    let recent: Option<Uuid> = jobs::Entity::find()
        .select_only()
        .column(jobs::Column::Id)
        .filter(jobs::Column::ConcurrencyKey.eq(refresh_key(calendar_id)))
        .filter(
            Condition::any()
                .add(jobs::Column::Status.eq(JobStatus::Running))
                .add(jobs::Column::UpdatedAt.gt(now - debounce)),
        )
        .into_tuple()
        .one(&state.db)
        .await?;
    let at = if recent.is_some() { now + debounce } else { now };
    enqueue_events_refresh_at(state, calendar_id, at).await
}

async fn enqueue_events_refresh_at(state: &AppState, calendar_id: Uuid, at: DateTime<Utc>) -> AppResult<()> {
    let job = NewJob::new(REFRESH_EVENTS, json!({ "calendarId": calendar_id }))
        .dedupe_key(refresh_key(calendar_id))
        .concurrency_key(refresh_key(calendar_id))
        .run_at(at);
    state.jobs.enqueue(&state.db, job).await?;
    Ok(())
}

/// Queues a listing of the account's calendars (coalesced with a queued one).
pub async fn enqueue_list_refresh(state: &AppState, account_id: Uuid) -> AppResult<()> {
    let key = format!("{REFRESH_LIST}:{account_id}");
    let job = NewJob::new(REFRESH_LIST, json!({ "accountId": account_id }))
        .dedupe_key(key.clone())
        .concurrency_key(key);
    state.jobs.enqueue(&state.db, job).await?;
    Ok(())
}

fn payload_id(job: &jobs::Model, field: &str) -> Result<Uuid, JobFailure> {
    job.payload[field]
        .as_str()
        .and_then(|raw| Uuid::parse_str(raw).ok())
        .ok_or_else(|| JobFailure::permanent(format!("payload has no {field}")))
}

async fn run_events_refresh(state: &AppState, job: &jobs::Model) -> Result<(), JobFailure> {
    let calendar_id = payload_id(job, "calendarId")?;
    let Some(calendar) = calendars::Entity::find_by_id(calendar_id).one(&state.db).await? else {
        // Removed since (its account disconnected, or gone at Google): nothing to refresh.
        return Ok(());
    };
    match cache::refresh_events(state, calendar_id).await {
        Ok(outcome) => {
            if outcome.full
                && let Err(e) = push::ensure_channel(state, &calendar).await
            {
                // Push is an optimisation: the sweep still refreshes the calendar.
                tracing::warn!(%calendar_id, error = ?e, "could not open a push channel");
            }
            // Changes a notification (or the sweep) brought in: whoever reads the calendar reacts.
            if outcome.inserted + outcome.updated + outcome.deleted > 0 {
                state.calendar_changed(calendar_id).await?;
            }
            Ok(())
        }
        Err(AppError::NotFound(_)) => {
            // Gone or unshared at Google: the calendar list will say so and remove it.
            enqueue_list_refresh(state, calendar.account_id).await?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

async fn run_list_refresh(state: &AppState, job: &jobs::Model) -> Result<(), JobFailure> {
    let account_id = payload_id(job, "accountId")?;
    let Some(account) = google_accounts::Entity::find_by_id(account_id)
        .one(&state.db)
        .await?
    else {
        return Ok(());
    };
    refresh_account_list(state, &account).await?;
    Ok(())
}

/// Refreshes the account's calendar list and starts what follows from it: new calendars get an events
/// refresh job (which also opens their push channel), removed ones get their channels stopped.
pub async fn refresh_account_list(state: &AppState, account: &google_accounts::Model) -> AppResult<()> {
    let changes = list::refresh_account(state, account).await?;
    push::stop_all(state, account.id, &changes.orphaned_channels).await;
    for calendar_id in changes.added {
        enqueue_events_refresh(state, calendar_id).await?;
    }
    Ok(())
}

/// How long a sign-in waits for the account's calendar list before leaving it to a background job.
pub const LANDING_LIST_TIMEOUT: Duration = Duration::from_secs(10);

/// Lists a just signed-in or connected account's calendars at once, so the first `calendars` query after
/// the sign-in redirect has them; their events are listed by background jobs. When Google fails or is
/// slow, the listing and the first event refreshes are left to background jobs instead.
pub async fn list_at_landing(state: &AppState, account_id: Uuid) -> AppResult<()> {
    let Some(account) = google_accounts::Entity::find_by_id(account_id)
        .one(&state.db)
        .await?
    else {
        return Ok(());
    };
    let failure =
        match tokio::time::timeout(LANDING_LIST_TIMEOUT, refresh_account_list(state, &account)).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => format!("{e:?}"),
            Err(_) => format!("no answer within {} s", LANDING_LIST_TIMEOUT.as_secs()),
        };
    tracing::warn!(%account_id, error = %failure, "listing calendars at sign-in failed; a background job lists them");
    enqueue_list_refresh(state, account_id).await?;
    // A listing cut short by the timeout may have stored calendars without queueing their first refresh.
    let unlisted: Vec<Uuid> = calendars::Entity::find()
        .select_only()
        .column(calendars::Column::Id)
        .filter(calendars::Column::AccountId.eq(account_id))
        .filter(calendars::Column::EventsSyncToken.is_null())
        .into_tuple()
        .all(&state.db)
        .await?;
    for calendar_id in unlisted {
        enqueue_events_refresh(state, calendar_id).await?;
    }
    Ok(())
}

/// Queues refreshes of the stale calendars of active accounts, and the first listing of accounts
/// never listed.
pub async fn sweep(state: &AppState, now: DateTime<Utc>) -> Result<(), JobFailure> {
    let stale_before = now - chrono::Duration::from_std(STALE_AFTER).unwrap_or_default();
    let stale: Vec<Uuid> = calendars::Entity::find()
        .select_only()
        .column(calendars::Column::Id)
        .join(
            sea_orm::JoinType::InnerJoin,
            calendars::Relation::GoogleAccounts.def(),
        )
        .filter(google_accounts::Column::Status.eq(AccountStatus::Active))
        .filter(
            Condition::any()
                .add(calendars::Column::LastSyncedAt.lt(stale_before))
                .add(
                    Condition::all()
                        .add(calendars::Column::LastSyncedAt.is_null())
                        .add(calendars::Column::CreatedAt.lt(stale_before)),
                ),
        )
        .into_tuple()
        .all(&state.db)
        .await?;
    let jitter_ms = u64::try_from(SWEEP_JITTER.as_millis()).unwrap_or(u64::MAX);
    for calendar_id in &stale {
        let delay = Duration::from_millis(rand::random_range(0..jitter_ms));
        let at = now + chrono::Duration::from_std(delay).unwrap_or_default();
        enqueue_events_refresh_at(state, *calendar_id, at).await?;
    }
    for account_id in active_accounts(state, true).await? {
        enqueue_list_refresh(state, account_id).await?;
    }
    if !stale.is_empty() {
        tracing::info!(calendars = stale.len(), "stale calendars queued for a refresh");
    }
    Ok(())
}

async fn active_accounts(state: &AppState, never_listed_only: bool) -> AppResult<Vec<Uuid>> {
    let mut query = google_accounts::Entity::find()
        .select_only()
        .column(google_accounts::Column::Id)
        .filter(google_accounts::Column::Status.eq(AccountStatus::Active));
    if never_listed_only {
        query = query.filter(google_accounts::Column::CalendarListSyncToken.is_null());
    }
    Ok(query.into_tuple().all(&state.db).await?)
}

/// Renews expiring push channels, opens channels where none is live, and queues a listing of every
/// active account's calendars.
async fn maintenance(state: &AppState) -> Result<(), JobFailure> {
    let report = push::renew_expiring(state, Utc::now(), push::RENEW_MARGIN, push::CHANNEL_TTL).await?;
    if report.renewed + report.failed > 0 {
        tracing::info!(
            renewed = report.renewed,
            failed = report.failed,
            "push channels renewed"
        );
    }
    if push::push_enabled(&state.settings) {
        for calendar in calendars_without_channel(state).await? {
            if let Err(e) = push::ensure_channel(state, &calendar).await {
                tracing::debug!(calendar_id = %calendar.id, error = ?e, "no push channel for this calendar");
            }
        }
    }
    for account_id in active_accounts(state, false).await? {
        enqueue_list_refresh(state, account_id).await?;
    }
    Ok(())
}

/// Calendars of active accounts, already listed once, with no live push channel.
async fn calendars_without_channel(state: &AppState) -> AppResult<Vec<calendars::Model>> {
    let live = Query::select()
        .column(push_channels::Column::CalendarId)
        .from(push_channels::Entity)
        .and_where(push_channels::Column::StoppedAt.is_null())
        .and_where(push_channels::Column::ExpiresAt.gt(Utc::now()))
        .to_owned();
    Ok(calendars::Entity::find()
        .join(
            sea_orm::JoinType::InnerJoin,
            calendars::Relation::GoogleAccounts.def(),
        )
        .filter(google_accounts::Column::Status.eq(AccountStatus::Active))
        .filter(calendars::Column::EventsSyncToken.is_not_null())
        .filter(calendars::Column::Id.not_in_subquery(live))
        .all(&state.db)
        .await?)
}
