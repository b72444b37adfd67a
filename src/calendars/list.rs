//! Each Google account's calendar list, cached in `calendars` and refreshed by calendarList sync tokens.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt as _};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, FromQueryResult,
    QueryFilter, QueryOrder, QuerySelect, RelationTrait, sea_query::OnConflict,
};
use uuid::Uuid;

use crate::{
    accounts::service::find_owned,
    cache_changes::{self, CacheChange},
    entities::{calendars, enums::AccountStatus, google_accounts, push_channels},
    error::AppResult,
    google::{CalendarListEntry, CalendarListing, GoogleError},
    state::AppState,
    text,
};

/// A calendar as the user's listings read it: the row, and the status of its account (a calendar of an
/// account that must be connected again cannot refresh its cache).
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct ListedCalendar {
    #[sea_orm(nested)]
    pub calendar: calendars::Model,
    pub account_status: AccountStatus,
}

/// How far a calendar's event cache is; what `Calendar.cacheStatus` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheState {
    /// Listed in the calendar list, its events not yet (the first listing is queued or running).
    Pending,
    /// Its events were listed; later changes arrive by push and the sweep.
    Ready,
    /// Its account must be connected again: the cache (empty, or as of `cachedAt`) cannot refresh.
    Failed,
}

impl ListedCalendar {
    pub fn cache_state(&self) -> CacheState {
        if self.account_status == AccountStatus::NeedsReauth {
            CacheState::Failed
        } else if self.calendar.events_sync_token.is_some() && self.calendar.last_synced_at.is_some() {
            CacheState::Ready
        } else {
            CacheState::Pending
        }
    }
}

/// The user's calendars (as [`list_for_user`] of all accounts), live: the list at once, then again each
/// time it differs from the last one sent, looked at whenever a calendar change is announced (a calendar
/// appears, disappears or changes at Google, its first listing finishes) and every
/// [`cache_changes::LOOK_AGAIN`] (an account found to need reconnecting is not announced). A failed read
/// ends the stream with the error.
pub fn live(
    state: AppState,
    user_id: Uuid,
) -> impl Stream<Item = AppResult<Vec<ListedCalendar>>> + Send + 'static + use<> {
    let wake_ups = state
        .cache_changes
        .wake_ups(user_id, CacheChange::Calendars, cache_changes::LOOK_AGAIN);
    let start = (state, Box::pin(wake_ups), None::<Vec<ListedCalendar>>, false);
    futures::stream::unfold(start, move |(state, mut wake_ups, mut last, ended)| async move {
        if ended {
            return None;
        }
        loop {
            wake_ups.next().await?;
            match list_for_user(&state.db, user_id, None).await {
                Err(e) => return Some((Err(e), (state, wake_ups, last, true))),
                Ok(now) if last.as_ref() != Some(&now) => {
                    last = Some(now.clone());
                    return Some((Ok(now), (state, wake_ups, last, false)));
                }
                Ok(_) => {}
            }
        }
    })
}

/// [`owned_by`], with what [`ListedCalendar`] reads besides the row: finish with
/// `.into_model::<ListedCalendar>()`. One query whatever the number of calendars.
pub fn listed_by(user_id: Uuid) -> sea_orm::Select<calendars::Entity> {
    owned_by(user_id).column_as(google_accounts::Column::Status, "account_status")
}

/// The user's calendars, of one account (another user's account is NOT_FOUND) or of all their accounts.
pub async fn list_for_user(
    db: &DatabaseConnection,
    user_id: Uuid,
    account_id: Option<Uuid>,
) -> AppResult<Vec<ListedCalendar>> {
    if let Some(account_id) = account_id {
        find_owned(db, user_id, account_id).await?;
    }
    let mut query = listed_by(user_id);
    if let Some(account_id) = account_id {
        query = query.filter(calendars::Column::AccountId.eq(account_id));
    }
    Ok(query
        .order_by_asc(google_accounts::Column::CreatedAt)
        .order_by_desc(calendars::Column::IsPrimary)
        .order_by_asc(calendars::Column::Summary)
        .order_by_asc(calendars::Column::Id)
        .into_model::<ListedCalendar>()
        .all(db)
        .await?)
}

/// Calendars whose account belongs to `user_id`: every read of the domain starts here.
pub fn owned_by(user_id: Uuid) -> sea_orm::Select<calendars::Entity> {
    calendars::Entity::find()
        .join(
            sea_orm::JoinType::InnerJoin,
            calendars::Relation::GoogleAccounts.def(),
        )
        .filter(google_accounts::Column::UserId.eq(user_id))
}

/// The user's calendar with `id`; another user's calendar is reported exactly like a missing one.
pub async fn find_owned_calendar<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    id: Uuid,
) -> AppResult<calendars::Model> {
    owned_by(user_id)
        .filter(calendars::Column::Id.eq(id))
        .one(db)
        .await?
        .ok_or(crate::error::AppError::NotFound("calendar"))
}

/// What a calendar-list refresh changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListChanges {
    /// Calendars seen for the first time (their event cache is empty).
    pub added: Vec<Uuid>,
    /// Calendars gone at Google, deleted here with their cached events.
    pub removed: Vec<Uuid>,
    /// The live push channels of the removed calendars: their rows are gone, stop them at Google.
    pub orphaned_channels: Vec<push_channels::Model>,
}

/// Lists the account's calendars at Google (incrementally when a sync token is stored; a stale token
/// falls back to a full listing) and stores the result. Returns what changed.
pub async fn refresh_account(state: &AppState, account: &google_accounts::Model) -> AppResult<ListChanges> {
    let google = state.google()?.account(account.id);
    let list = |sync_token: Option<String>| {
        let google = &google;
        async move { google.list_calendars(sync_token.as_deref()).await }
    };
    let (listing, full) = match account.calendar_list_sync_token.clone() {
        None => (list(None).await?, true),
        Some(token) => match list(Some(token)).await {
            Ok(listing) => (listing, false),
            Err(GoogleError::FullSyncRequired) => {
                tracing::info!(account_id = %account.id, "calendar list sync token expired; listing everything");
                (list(None).await?, true)
            }
            Err(e) => return Err(e.into()),
        },
    };
    tracing::debug!(
        account_id = %account.id,
        entries = listing.items.len(),
        full,
        google_calls = google.calls(),
        "calendar list fetched"
    );
    let changes = apply_listing(&state.db, account.id, &listing, full, Utc::now()).await?;
    if !listing.items.is_empty() || !changes.removed.is_empty() {
        state.cache_changes.calendars_changed(account.user_id).await;
    }
    Ok(changes)
}

/// Stores a calendar listing of `account_id` in one transaction, with its sync token.
///
/// Entries are upserted by (account, Google calendar id). A calendar gone at Google (`deleted: true` in an
/// incremental listing, or absent from a full one) is deleted here: its cached events, push channels and
/// the sync configs using it go with it (foreign keys cascade). Nothing of other calendars is touched.
pub async fn apply_listing(
    db: &DatabaseConnection,
    account_id: Uuid,
    listing: &CalendarListing,
    full: bool,
    now: DateTime<Utc>,
) -> AppResult<ListChanges> {
    let txn = crate::db::begin_write(db).await?;
    let existing: HashMap<String, Uuid> = calendars::Entity::find()
        .filter(calendars::Column::AccountId.eq(account_id))
        .all(&txn)
        .await?
        .into_iter()
        .map(|c| (c.google_calendar_id, c.id))
        .collect();
    let mut changes = ListChanges::default();
    let mut gone: HashSet<&str> = HashSet::new();
    let mut listed: HashSet<&str> = HashSet::new();
    for entry in &listing.items {
        if entry.id.chars().any(text::is_forbidden) {
            // Not an id Google hands out; nothing could be asked about it later.
            tracing::warn!(%account_id, "a calendar list entry with an unusable id was skipped");
            continue;
        }
        if entry.deleted {
            gone.insert(&entry.id);
            continue;
        }
        listed.insert(&entry.id);
        upsert_entry(&txn, account_id, entry, now).await?;
        if !existing.contains_key(&entry.id) {
            changes
                .added
                .push(calendar_id_of(&txn, account_id, &entry.id).await?);
        }
    }
    if full {
        gone.extend(
            existing
                .keys()
                .map(String::as_str)
                .filter(|id| !listed.contains(id)),
        );
    }
    for google_id in gone {
        if let Some(&id) = existing.get(google_id) {
            changes.orphaned_channels.extend(
                push_channels::Entity::find()
                    .filter(push_channels::Column::CalendarId.eq(id))
                    .filter(push_channels::Column::StoppedAt.is_null())
                    .all(&txn)
                    .await?,
            );
            calendars::Entity::delete_by_id(id).exec(&txn).await?;
            changes.removed.push(id);
        }
    }
    google_accounts::Entity::update_many()
        .col_expr(
            google_accounts::Column::CalendarListSyncToken,
            listing.next_sync_token.clone().into(),
        )
        .filter(google_accounts::Column::Id.eq(account_id))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    if !changes.removed.is_empty() {
        tracing::info!(%account_id, removed = changes.removed.len(), "calendars gone at Google were removed");
    }
    Ok(changes)
}

async fn upsert_entry<C: ConnectionTrait>(
    db: &C,
    account_id: Uuid,
    entry: &CalendarListEntry,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let row = calendars::ActiveModel {
        id: Set(Uuid::now_v7()),
        account_id: Set(account_id),
        google_calendar_id: Set(entry.id.clone()),
        // Google's strings are cleaned: what it sends must never make a refresh fail.
        summary: Set(text::cleaned(entry.display_name())),
        description: Set(entry.description.as_deref().map(text::cleaned)),
        time_zone: Set(entry.time_zone.as_deref().map(text::cleaned)),
        access_role: Set(entry
            .access_role
            .as_deref()
            .map_or_else(|| "reader".into(), text::cleaned)),
        is_primary: Set(entry.primary),
        background_color: Set(entry.background_color.as_deref().map(text::cleaned)),
        foreground_color: Set(entry.foreground_color.as_deref().map(text::cleaned)),
        color_id: Set(entry.color_id.as_deref().map(text::cleaned)),
        include_in_free_busy: Set(None),
        events_sync_token: Set(None),
        last_full_sync_at: Set(None),
        last_synced_at: Set(None),
        deleted_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    };
    calendars::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([calendars::Column::AccountId, calendars::Column::GoogleCalendarId])
                .update_columns([
                    calendars::Column::Summary,
                    calendars::Column::Description,
                    calendars::Column::TimeZone,
                    calendars::Column::AccessRole,
                    calendars::Column::IsPrimary,
                    calendars::Column::BackgroundColor,
                    calendars::Column::ForegroundColor,
                    calendars::Column::ColorId,
                    calendars::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

async fn calendar_id_of<C: ConnectionTrait>(db: &C, account_id: Uuid, google_id: &str) -> AppResult<Uuid> {
    calendars::Entity::find()
        .select_only()
        .column(calendars::Column::Id)
        .filter(calendars::Column::AccountId.eq(account_id))
        .filter(calendars::Column::GoogleCalendarId.eq(google_id))
        .into_tuple::<Uuid>()
        .one(db)
        .await?
        .ok_or_else(|| crate::error::AppError::internal(anyhow::anyhow!("upserted calendar row is missing")))
}
