//! Deleting every copy a config wrote (`deleteSyncConfig(removeMirrors: true)`).
//!
//! Works from Google alone, never from links or the source's events: each copy carries the config's id in a
//! private extended property, so listing the calendar a copy can live in with
//! `privateExtendedProperty=<marker>=<config id>` finds them all, even after the source account lost access
//! (ONE_WAY copies live only in the destination; TWO_WAY copies of destination events live in the source).
//!
//! Every calendar is listed before anything is deleted, so a calendar that cannot be listed stops the
//! removal with nothing done. Deletions go out in batches; 404 and 410 mean already gone. Each deleted copy
//! is tombstoned in the cache. Any failure returns an error and the caller keeps the config: calling again
//! finishes the job.

use std::collections::HashSet;

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};

use crate::{
    entities::{calendars, enums::SyncDirection, events, sync_configs},
    error::{AppError, AppResult},
    events::store,
    google::{BatchRequest, Event, GoogleError, ListEvents, MAX_BATCH_SIZE},
    state::AppState,
    sync::mirror::{MIRROR_CONFIG_KEY, is_mirror},
};

/// Deletes the config's copies in every calendar they can live in; returns how many are gone now.
pub async fn remove_mirrors(state: &AppState, config: &sync_configs::Model) -> AppResult<usize> {
    let mut sides = vec![config.destination_calendar_id];
    if config.direction == SyncDirection::TwoWay {
        sides.push(config.source_calendar_id);
    }
    let mut found = Vec::with_capacity(sides.len());
    for calendar_id in sides {
        let calendar = calendars::Entity::find_by_id(calendar_id)
            .one(&state.db)
            .await?
            .ok_or(AppError::NotFound("calendar"))?;
        let copies = list_copies(state, &calendar, config).await?;
        found.push((calendar, copies));
    }
    let mut removed = 0;
    for (calendar, copies) in found {
        let deleted = delete_copies(state, config.user_id, &calendar, &copies).await;
        if !copies.is_empty() {
            state.cache_changes.events_changed(config.user_id).await;
        }
        removed += deleted?;
    }
    Ok(removed)
}

/// The Google ids of the config's copies in `calendar` to delete: whole events, and exceptions whose
/// series is not deleted with them.
async fn list_copies(
    state: &AppState,
    calendar: &calendars::Model,
    config: &sync_configs::Model,
) -> AppResult<Vec<String>> {
    let params = ListEvents {
        private_extended_properties: vec![(MIRROR_CONFIG_KEY.to_owned(), config.id.to_string())],
        max_results: Some(2500),
        ..ListEvents::full()
    };
    let listing = state
        .google()?
        .account(calendar.account_id)
        .list_events(&calendar.google_calendar_id, &params)
        .await?;
    Ok(copies_to_delete(&listing.items, config))
}

/// Only events whose marker names this config (whatever the filter matched), never cancelled ones; an
/// exception goes with its series when the series is deleted too.
fn copies_to_delete(items: &[Event], config: &sync_configs::Model) -> Vec<String> {
    let ours: Vec<&Event> = items
        .iter()
        .filter(|event| !event.is_cancelled())
        .filter(|event| is_mirror(event).is_some_and(|marker| marker.is_of(config.id)))
        .collect();
    let series: HashSet<&str> = ours
        .iter()
        .filter(|event| event.recurring_event_id.is_none())
        .filter_map(|event| event.id.as_deref())
        .collect();
    ours.iter()
        .filter(|event| {
            event
                .recurring_event_id
                .as_deref()
                .is_none_or(|master| !series.contains(master))
        })
        .filter_map(|event| event.id.clone())
        .collect()
}

/// Deletes `ids` in `calendar` in batches and tombstones them in the cache; returns how many are gone.
/// Ids whose deletion failed (other than 404/410) make the whole call fail, after the rest is done.
async fn delete_copies(
    state: &AppState,
    user_id: uuid::Uuid,
    calendar: &calendars::Model,
    ids: &[String],
) -> AppResult<usize> {
    let google = state.google()?.account(calendar.account_id);
    let mut gone: Vec<String> = Vec::with_capacity(ids.len());
    let mut failure: Option<GoogleError> = None;
    for chunk in ids.chunks(MAX_BATCH_SIZE) {
        let requests: Vec<BatchRequest> = chunk
            .iter()
            .map(|id| BatchRequest::delete_event(&calendar.google_calendar_id, id))
            .collect();
        let answers = google.batch(&requests).await;
        let answers = match answers {
            Ok(answers) => answers,
            Err(e) => {
                failure.get_or_insert(e);
                break;
            }
        };
        for (id, answer) in chunk.iter().zip(answers) {
            match answer {
                Ok(_) | Err(GoogleError::NotFound | GoogleError::Gone) => gone.push(id.clone()),
                Err(e) => {
                    tracing::warn!(calendar_id = %calendar.id, error = %e, "deleting a mirror failed");
                    failure.get_or_insert(e);
                }
            }
        }
    }
    tombstone_cached(state, user_id, calendar, &gone).await?;
    match failure {
        Some(e) => Err(e.into()),
        None => Ok(gone.len()),
    }
}

/// Tombstones the cached rows of events deleted at Google (with the exceptions of deleted series).
async fn tombstone_cached(
    state: &AppState,
    user_id: uuid::Uuid,
    calendar: &calendars::Model,
    google_ids: &[String],
) -> AppResult<()> {
    for chunk in google_ids.chunks(500) {
        let rows: Vec<uuid::Uuid> = events::Entity::find()
            .select_only()
            .column(events::Column::Id)
            .filter(events::Column::CalendarId.eq(calendar.id))
            .filter(events::Column::GoogleEventId.is_in(chunk.iter().cloned()))
            .filter(events::Column::DeletedAt.is_null())
            .into_tuple()
            .all(&state.db)
            .await?;
        for row in rows {
            store::tombstone(&state.db, user_id, calendar.id, row, true).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use serde_json::json;
    use uuid::Uuid;

    use super::*;
    use crate::entities::enums::SyncConfigStatus;

    fn config(id: Uuid) -> sync_configs::Model {
        let now = Utc::now();
        sync_configs::Model {
            id,
            user_id: Uuid::nil(),
            source_calendar_id: Uuid::nil(),
            destination_calendar_id: Uuid::nil(),
            direction: SyncDirection::OneWay,
            lookahead_days: 90,
            lookback_days: 0,
            privacy_enabled: false,
            privacy_placeholder: "Busy".into(),
            reverse_privacy_enabled: false,
            reverse_privacy_placeholder: "Busy".into(),
            destination_color_id: None,
            reverse_color_id: None,
            enabled: true,
            interval_minutes: None,
            status: SyncConfigStatus::Active,
            paused_reason: None,
            next_run_at: None,
            created_at: now,
            updated_at: now,
        }
    }

    fn event(raw: serde_json::Value) -> Event {
        serde_json::from_value(raw).unwrap()
    }

    #[test]
    fn only_this_configs_live_copies_are_deleted_and_exceptions_go_with_their_series() {
        let ours = Uuid::from_u128(1);
        let marker = |config: Uuid| json!({"private": {MIRROR_CONFIG_KEY: config.to_string()}});
        let items = vec![
            event(json!({"id": "single1", "extendedProperties": marker(ours)})),
            event(
                json!({"id": "series1", "recurrence": ["RRULE:FREQ=DAILY"], "extendedProperties": marker(ours)}),
            ),
            event(
                json!({"id": "series1_20261201", "recurringEventId": "series1", "extendedProperties": marker(ours)}),
            ),
            event(
                json!({"id": "lonely_20261201", "recurringEventId": "lonely", "extendedProperties": marker(ours)}),
            ),
            event(json!({"id": "gone1", "status": "cancelled", "extendedProperties": marker(ours)})),
            event(json!({"id": "other1", "extendedProperties": marker(Uuid::from_u128(2))})),
            event(json!({"id": "plain1"})),
        ];
        assert_eq!(
            copies_to_delete(&items, &config(ours)),
            ["single1", "series1", "lonely_20261201"]
        );
    }
}
