//! Event writes: validated here, sent to Google, and cached from Google's answer (never the other way
//! round, so the cache only ever holds what Google holds).
//!
//! - update: PATCH with `If-Match: <cached etag>`; a 412 answers CONFLICT after the cache took Google's
//!   current version of the event.
//! - delete: Google's 404/410 mean the event is already gone: the row is tombstoned and the call succeeds.
//! - one instance of a series (an instance id): written to Google's instance id, which makes Google
//!   create an exception; deleting an instance cancels it (a cancelled exception).

pub mod scoped;

use sea_orm::EntityTrait;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::{
    lookup::{self, EventRef, EventView, Target},
    recurrence::{self, EventTime},
    store::{self, UpsertOutcome},
    validate,
};
use crate::{
    entities::{calendars, events},
    error::{AppError, AppResult},
    google::{self, EventChange, GoogleError},
    state::AppState,
};

/// A new event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub calendar_id: Uuid,
    pub summary: Option<String>,
    pub description: Option<String>,
    pub location: Option<String>,
    pub start: EventTime,
    pub end: EventTime,
    pub recurrence: Option<Vec<String>>,
    pub transparency: Option<String>,
    pub visibility: Option<String>,
    pub color_id: Option<String>,
}

/// Changes to an event: `None` leaves a field as it is; `Some(None)` clears a clearable field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventPatch {
    pub summary: Option<Option<String>>,
    pub description: Option<Option<String>>,
    pub location: Option<Option<String>>,
    pub start: Option<EventTime>,
    pub end: Option<EventTime>,
    pub recurrence: Option<Option<Vec<String>>>,
    pub transparency: Option<String>,
    pub visibility: Option<String>,
    pub color_id: Option<Option<String>>,
}

fn validate_texts(summary: Option<&str>, description: Option<&str>, location: Option<&str>) -> AppResult<()> {
    validate::text("summary", summary, validate::MAX_SUMMARY_CHARS)?;
    validate::text("description", description, validate::MAX_DESCRIPTION_CHARS)?;
    validate::text("location", location, validate::MAX_LOCATION_CHARS)
}

fn validate_settings(
    transparency: Option<&str>,
    visibility: Option<&str>,
    color_id: Option<&str>,
) -> AppResult<()> {
    transparency.map(validate::transparency).transpose()?;
    visibility.map(validate::visibility).transpose()?;
    color_id.map(validate::color_id).transpose()?;
    Ok(())
}

/// Creates the event at Google in the user's calendar, then caches Google's answer. Live subscribers are
/// told to read on afterwards.
pub async fn create(state: &AppState, user_id: Uuid, input: NewEvent) -> AppResult<EventView> {
    let created = create_event(state, user_id, input).await;
    announced(state, user_id, created).await
}

/// Tells live subscribers (the user's other tabs) to read on after a write, whatever its outcome: a
/// refused write may still have brought Google's version into the cache.
async fn announced<T>(state: &AppState, user_id: Uuid, outcome: AppResult<T>) -> AppResult<T> {
    state.cache_changes.events_changed(user_id).await;
    outcome
}

async fn create_event(state: &AppState, user_id: Uuid, input: NewEvent) -> AppResult<EventView> {
    let (start, end) = (input.start, input.end);
    validate_texts(
        input.summary.as_deref(),
        input.description.as_deref(),
        input.location.as_deref(),
    )?;
    validate::event_time("start", &start)?;
    validate::event_time("end", &end)?;
    validate::start_and_end(&start, &end)?;
    let recurrence = input.recurrence.filter(|lines| !lines.is_empty());
    if let Some(lines) = &recurrence {
        validate::recurrence_lines(lines, &start, &end)?;
    }
    validate_settings(
        input.transparency.as_deref(),
        input.visibility.as_deref(),
        input.color_id.as_deref(),
    )?;
    let calendar = lookup::user_calendar(&state.db, user_id, input.calendar_id).await?;
    validate::writable("calendarId", &calendar.access_role)?;

    let body = google::Event {
        summary: input.summary,
        description: input.description,
        location: input.location,
        start: Some(store::time_to_google(&start)),
        end: Some(store::time_to_google(&end)),
        recurrence,
        transparency: input.transparency,
        visibility: input.visibility,
        color_id: input.color_id,
        ..google::Event::default()
    };
    let created = state
        .google()?
        .account(calendar.account_id)
        .interactive()
        .insert_event(&calendar.google_calendar_id, &body)
        .await?;
    cache_answer(state, user_id, &calendar, &created).await
}

/// Changes the event (or one instance of a series) at Google, then caches Google's answer.
pub async fn update(
    state: &AppState,
    user_id: Uuid,
    id: EventRef,
    patch: EventPatch,
) -> AppResult<EventView> {
    let target = lookup::resolve(&state.db, user_id, id)
        .await?
        .ok_or(AppError::NotFound("event"))?;
    let calendar = target.calendar().clone();
    validate::writable("id", &calendar.access_role)?;
    let current = Current::of(&target)?;
    let body = patch_body(&patch, &current)?;
    if body.is_empty() {
        return lookup::find(&state.db, &state.cipher, user_id, id)
            .await?
            .ok_or(AppError::NotFound("event"));
    }
    let body = Value::Object(body);
    let answer = state
        .google()?
        .account(calendar.account_id)
        .interactive()
        .change_event(
            &calendar.google_calendar_id,
            &current.google_id,
            EventChange::Patch(&body),
            current.etag.as_deref(),
        )
        .await;
    match answer {
        Ok(event) => cache_answer(state, user_id, &calendar, &event).await,
        Err(GoogleError::PreconditionFailed) => {
            refresh_one(state, user_id, &calendar, &current.google_id).await?;
            Err(AppError::Conflict(
                "the event changed in Google Calendar since it was read; the current version is now cached"
                    .into(),
            ))
        }
        Err(GoogleError::NotFound | GoogleError::Gone) => {
            if let Target::Row { row, .. } = &target {
                store::tombstone(&state.db, user_id, calendar.id, row.id, current.is_master).await?;
            }
            Err(AppError::NotFound("event"))
        }
        Err(e) => Err(e.into()),
    }
}

/// Deletes the event at Google (an instance or an exception: cancels it there), then updates the cache.
/// An event Google no longer has counts as deleted.
pub async fn delete(state: &AppState, user_id: Uuid, id: EventRef) -> AppResult<()> {
    let target = lookup::resolve(&state.db, user_id, id)
        .await?
        .ok_or(AppError::NotFound("event"))?;
    let calendar = target.calendar().clone();
    validate::writable("id", &calendar.access_role)?;
    let current = Current::of(&target)?;
    let google = state.google()?.account(calendar.account_id).interactive();
    if current.is_instance {
        // Google cancels one instance through its instance id; the answer is the cancelled exception.
        let body = json!({ "status": "cancelled" });
        let answer = google
            .change_event(
                &calendar.google_calendar_id,
                &current.google_id,
                EventChange::Patch(&body),
                None,
            )
            .await;
        return match answer {
            Ok(event) => store::upsert_from_google(&state.db, &state.cipher, user_id, &calendar, &event)
                .await
                .map(|_| ()),
            Err(GoogleError::NotFound | GoogleError::Gone) => {
                if let Target::Row { row, .. } = &target {
                    store::tombstone(&state.db, user_id, calendar.id, row.id, false).await?;
                }
                Ok(())
            }
            Err(e) => Err(e.into()),
        };
    }
    let answer = google
        .delete_event(&calendar.google_calendar_id, &current.google_id)
        .await;
    match answer {
        Ok(_) | Err(GoogleError::NotFound | GoogleError::Gone) => {
            if let Target::Row { row, .. } = &target {
                store::tombstone(&state.db, user_id, calendar.id, row.id, current.is_master).await?;
            }
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// What a write needs to know about its target.
struct Current {
    /// The id to write to at Google (an instance id for a generated instance).
    google_id: String,
    /// The cached etag, for If-Match (none for a generated instance: it has no etag of its own).
    etag: Option<String>,
    start: EventTime,
    end: EventTime,
    recurrence: Option<Vec<String>>,
    /// An instance or exception of a series.
    is_instance: bool,
    is_master: bool,
}

impl Current {
    fn of(target: &Target) -> AppResult<Self> {
        Ok(match target {
            Target::Row { row, .. } => {
                let (start, end, _) = store::row_times(row)?;
                let recurrence = store::row_recurrence(row)?;
                Self {
                    google_id: row.google_event_id.clone(),
                    etag: row.etag.clone(),
                    start,
                    end,
                    is_master: recurrence.is_some(),
                    recurrence,
                    is_instance: row.recurring_event_id.is_some(),
                }
            }
            Target::Instance {
                master, occurrence, ..
            } => Self {
                google_id: recurrence::instance_id(&master.google_event_id, &occurrence.original_start),
                etag: None,
                start: occurrence.start.clone(),
                end: occurrence.end.clone(),
                recurrence: None,
                is_instance: true,
                is_master: false,
            },
        })
    }
}

/// Validates `patch` against the event as it is, and builds the PATCH body (only what changes).
fn patch_body(patch: &EventPatch, current: &Current) -> AppResult<Map<String, Value>> {
    validate_texts(
        patch.summary.as_ref().and_then(Option::as_deref),
        patch.description.as_ref().and_then(Option::as_deref),
        patch.location.as_ref().and_then(Option::as_deref),
    )?;
    validate_settings(
        patch.transparency.as_deref(),
        patch.visibility.as_deref(),
        patch.color_id.as_ref().and_then(Option::as_deref),
    )?;
    if let Some(start) = &patch.start {
        validate::event_time("start", start)?;
    }
    if let Some(end) = &patch.end {
        validate::event_time("end", end)?;
    }
    let start = patch.start.as_ref().unwrap_or(&current.start);
    let end = patch.end.as_ref().unwrap_or(&current.end);
    validate::start_and_end(start, end)?;
    let recurrence = match &patch.recurrence {
        Some(lines) => lines.as_ref().filter(|lines| !lines.is_empty()),
        None => current.recurrence.as_ref(),
    };
    if let Some(lines) = recurrence {
        if current.is_instance {
            return Err(AppError::bad_input(
                "recurrence",
                "an instance of a series cannot have a recurrence of its own",
            ));
        }
        validate::recurrence_lines(lines, start, end)?;
    }

    let mut body = Map::new();
    let mut put = |key: &str, value: Value| {
        body.insert(key.to_owned(), value);
    };
    if let Some(summary) = &patch.summary {
        put("summary", json!(summary));
    }
    if let Some(description) = &patch.description {
        put("description", json!(description));
    }
    if let Some(location) = &patch.location {
        put("location", json!(location));
    }
    // Both ends go together, with every key spelled out: PATCH merges objects, and a date next to a
    // stale dateTime would be refused.
    if patch.start.is_some() || patch.end.is_some() {
        put("start", explicit_time(start));
        put("end", explicit_time(end));
    }
    if let Some(lines) = &patch.recurrence {
        put("recurrence", json!(lines.clone().unwrap_or_default()));
    }
    if let Some(transparency) = &patch.transparency {
        put("transparency", json!(transparency));
    }
    if let Some(visibility) = &patch.visibility {
        put("visibility", json!(visibility));
    }
    if let Some(color_id) = &patch.color_id {
        put("colorId", json!(color_id));
    }
    Ok(body)
}

fn explicit_time(value: &EventTime) -> Value {
    let google = store::time_to_google(value);
    json!({ "date": google.date, "dateTime": google.date_time, "timeZone": google.time_zone })
}

/// Caches Google's answer to a write and returns the cached event.
async fn cache_answer(
    state: &AppState,
    user_id: Uuid,
    calendar: &calendars::Model,
    event: &google::Event,
) -> AppResult<EventView> {
    let outcome = store::upsert_from_google(&state.db, &state.cipher, user_id, calendar, event).await?;
    let row_id = match outcome {
        UpsertOutcome::Ignored | UpsertOutcome::Tombstoned(_) => {
            return Err(AppError::internal(anyhow::anyhow!(
                "Google answered a write with an event the cache cannot show ({outcome:?})"
            )));
        }
        other => other.row_id().unwrap_or_default(),
    };
    let row = events::Entity::find_by_id(row_id)
        .one(&state.db)
        .await?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("cached event {row_id} vanished")))?;
    Ok(EventView::stored(store::decode(&state.cipher, user_id, &row)?))
}

/// Takes Google's current version of one event into the cache (after a 412).
async fn refresh_one(
    state: &AppState,
    user_id: Uuid,
    calendar: &calendars::Model,
    google_id: &str,
) -> AppResult<()> {
    let current = state
        .google()?
        .account(calendar.account_id)
        .interactive()
        .get_event(&calendar.google_calendar_id, google_id)
        .await?;
    store::upsert_from_google(&state.db, &state.cipher, user_id, calendar, &current).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;

    fn at(raw: &str, tz: Option<&str>) -> EventTime {
        EventTime::DateTime {
            instant: DateTime::parse_from_rfc3339(raw).unwrap().with_timezone(&Utc),
            time_zone: tz.map(str::to_owned),
        }
    }

    fn current() -> Current {
        Current {
            google_id: "abc".into(),
            etag: Some("\"1\"".into()),
            start: at("2026-03-02T09:00:00Z", Some("Europe/Berlin")),
            end: at("2026-03-02T10:00:00Z", Some("Europe/Berlin")),
            recurrence: None,
            is_instance: false,
            is_master: false,
        }
    }

    #[test]
    fn patches_send_only_what_changes_and_both_ends_together() {
        let patch = EventPatch {
            summary: Some(Some("Standup".into())),
            location: Some(None),
            start: Some(at("2026-03-02T08:30:00Z", Some("Europe/Berlin"))),
            ..EventPatch::default()
        };
        let body = patch_body(&patch, &current()).unwrap();
        assert_eq!(body["summary"], json!("Standup"));
        assert_eq!(body["location"], Value::Null);
        assert!(!body.contains_key("description"));
        assert_eq!(body["start"]["dateTime"], json!("2026-03-02T08:30:00Z"));
        assert_eq!(body["start"]["date"], Value::Null);
        assert_eq!(body["end"]["dateTime"], json!("2026-03-02T10:00:00Z"));
        assert_eq!(body["end"]["timeZone"], json!("Europe/Berlin"));
    }

    #[test]
    fn patches_are_checked_against_the_event_as_it_is() {
        let late_start = EventPatch {
            start: Some(at("2026-03-02T11:00:00Z", None)),
            ..EventPatch::default()
        };
        assert!(matches!(
            patch_body(&late_start, &current()),
            Err(AppError::BadUserInput { field, .. }) if field == "end"
        ));
        let mut instance = current();
        instance.is_instance = true;
        let recurring = EventPatch {
            recurrence: Some(Some(vec!["RRULE:FREQ=DAILY".into()])),
            ..EventPatch::default()
        };
        assert!(matches!(
            patch_body(&recurring, &instance),
            Err(AppError::BadUserInput { field, .. }) if field == "recurrence"
        ));
        assert!(patch_body(&EventPatch::default(), &current()).unwrap().is_empty());
    }
}
