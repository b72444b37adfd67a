//! The event cache of each calendar, kept fresh by Google's sync tokens.
//!
//! The first refresh lists everything (`showDeleted=true`, `singleEvents=false`: series masters and their
//! exceptions arrive as Google keeps them) and stores the last page's `nextSyncToken`; later refreshes list
//! only the changes since that token. A 410 (token expired) lists everything again and MERGES it into the
//! cache: entries are upserted and rows Google no longer has become tombstones, so nothing the app owns
//! (sync links, mirror markers, todos) is wiped.
//!
//! Every write is an idempotent upsert and the token is saved only after the last of them: a refresh
//! that fails midway leaves the old token, and the next one lists the same changes again.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, PoisonError},
};

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use crate::{
    entities::{calendars, events, google_accounts},
    error::{AppError, AppResult},
    events::store::{UpsertOutcome, tombstone_missing, upsert_listing},
    google::{EventsListing, GoogleError, ListEvents},
    state::AppState,
};

/// Largest page Google serves: fewer requests per listing.
const PAGE_SIZE: u32 = 2500;

/// What one refresh did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefreshOutcome {
    /// Whether everything was listed (first refresh, or the sync token had expired).
    pub full: bool,
    /// Entries Google sent.
    pub listed: usize,
    pub inserted: usize,
    pub updated: usize,
    /// Rows that became tombstones (deleted at Google).
    pub deleted: usize,
    /// HTTP requests sent to Google (token refreshes excluded).
    pub google_calls: u64,
}

impl RefreshOutcome {
    fn count(&mut self, outcome: UpsertOutcome) {
        match outcome {
            UpsertOutcome::Inserted(_) => self.inserted += 1,
            UpsertOutcome::Updated(_) => self.updated += 1,
            UpsertOutcome::Tombstoned(_) => self.deleted += 1,
            UpsertOutcome::Unchanged(_) | UpsertOutcome::Ignored => {}
        }
    }
}

/// Lists the calendar's events at Google (incrementally when it has a sync token) and applies them to
/// the cache. Refreshes of one calendar run one at a time in this process.
pub async fn refresh_events(state: &AppState, calendar_id: Uuid) -> AppResult<RefreshOutcome> {
    let lock = calendar_lock(calendar_id);
    let _guard = lock.lock().await;
    let (calendar, account) = calendars::Entity::find_by_id(calendar_id)
        .find_also_related(google_accounts::Entity)
        .one(&state.db)
        .await?
        .and_then(|(calendar, account)| Some((calendar, account?)))
        .ok_or(AppError::NotFound("calendar"))?;
    let google = state.google()?.account(calendar.account_id);
    let started = Utc::now();
    let list = |params: ListEvents| {
        let google = &google;
        let calendar_id = calendar.google_calendar_id.as_str();
        async move { google.list_events(calendar_id, &params).await }
    };
    let (listing, full) = match calendar.events_sync_token.clone() {
        None => (list(full_listing()).await?, true),
        Some(token) => match list(incremental_listing(token)).await {
            Ok(listing) => (listing, false),
            Err(GoogleError::FullSyncRequired) => {
                tracing::info!(%calendar_id, "events sync token expired; listing everything and merging");
                (list(full_listing()).await?, true)
            }
            Err(e) => return Err(e.into()),
        },
    };
    let mut outcome = RefreshOutcome {
        full,
        listed: listing.items.len(),
        google_calls: google.calls(),
        ..RefreshOutcome::default()
    };
    for written in upsert_listing(
        &state.db,
        &state.cipher,
        account.user_id,
        &calendar,
        &listing.items,
    )
    .await?
    {
        outcome.count(written);
    }
    if full {
        let seen = seen_ids(&state.db, calendar_id, &listing, started).await?;
        let tombstoned = tombstone_missing(&state.db, account.user_id, calendar_id, &seen).await?;
        outcome.deleted += usize::try_from(tombstoned).unwrap_or(usize::MAX);
    }
    save_sync_token(
        &state.db,
        &calendar,
        listing.next_sync_token.as_deref(),
        full,
        Utc::now(),
    )
    .await?;
    if outcome.inserted + outcome.updated + outcome.deleted > 0 {
        state.cache_changes.events_changed(account.user_id).await;
    }
    if calendar.events_sync_token.is_none() || calendar.last_synced_at.is_none() {
        // The first listing finished: the calendar's cache became READY.
        state.cache_changes.calendars_changed(account.user_id).await;
    }
    tracing::debug!(
        %calendar_id,
        full,
        listed = outcome.listed,
        inserted = outcome.inserted,
        updated = outcome.updated,
        deleted = outcome.deleted,
        google_calls = outcome.google_calls,
        "calendar events refreshed"
    );
    Ok(outcome)
}

/// The parameters of a full listing. Incremental ones must keep `singleEvents` the same.
fn full_listing() -> ListEvents {
    ListEvents {
        show_deleted: Some(true),
        single_events: Some(false),
        max_results: Some(PAGE_SIZE),
        ..ListEvents::default()
    }
}

fn incremental_listing(sync_token: String) -> ListEvents {
    ListEvents {
        single_events: Some(false),
        max_results: Some(PAGE_SIZE),
        ..ListEvents::incremental(sync_token)
    }
}

/// The Google ids a full listing vouches for: what it listed, plus what the app wrote to the cache while
/// it ran (an event created through Chronos after Google took the listing's snapshot is not missing).
async fn seen_ids(
    db: &DatabaseConnection,
    calendar_id: Uuid,
    listing: &EventsListing,
    started: DateTime<Utc>,
) -> AppResult<HashSet<String>> {
    let mut seen: HashSet<String> = listing.items.iter().filter_map(|e| e.id.clone()).collect();
    let written_meanwhile: Vec<String> = events::Entity::find()
        .select_only()
        .column(events::Column::GoogleEventId)
        .filter(events::Column::CalendarId.eq(calendar_id))
        .filter(events::Column::UpdatedAt.gte(started))
        .into_tuple()
        .all(db)
        .await?;
    seen.extend(written_meanwhile);
    Ok(seen)
}

/// Saves the token the listing ended with, unless another refresh (another instance) saved one since
/// this refresh read the calendar: a token never moves back.
async fn save_sync_token(
    db: &DatabaseConnection,
    calendar: &calendars::Model,
    next_sync_token: Option<&str>,
    full: bool,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let mut update = calendars::Entity::update_many()
        .col_expr(calendars::Column::EventsSyncToken, next_sync_token.into())
        .col_expr(calendars::Column::LastSyncedAt, Some(now).into())
        .filter(calendars::Column::Id.eq(calendar.id));
    if full {
        update = update.col_expr(calendars::Column::LastFullSyncAt, Some(now).into());
    }
    update = match &calendar.events_sync_token {
        Some(token) => update.filter(calendars::Column::EventsSyncToken.eq(token.as_str())),
        None => update.filter(calendars::Column::EventsSyncToken.is_null()),
    };
    if update.exec(db).await?.rows_affected == 0 {
        tracing::debug!(calendar_id = %calendar.id, "another refresh saved a newer sync token; keeping it");
    }
    Ok(())
}

/// One lock per calendar, so two refreshes in this process never interleave their writes.
fn calendar_lock(calendar_id: Uuid) -> Arc<tokio::sync::Mutex<()>> {
    static LOCKS: Mutex<Option<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>> = Mutex::new(None);
    let mut locks = LOCKS.lock().unwrap_or_else(PoisonError::into_inner);
    let locks = locks.get_or_insert_with(HashMap::new);
    if locks.len() > 10_000 {
        locks.retain(|_, lock| Arc::strong_count(lock) > 1);
    }
    locks.entry(calendar_id).or_default().clone()
}
