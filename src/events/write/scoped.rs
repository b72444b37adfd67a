//! Writes to a recurring series by scope: one instance, the instance and all that follow it (the series
//! is split in two, as Google Calendar does), or the whole series.
//!
//! | target | no scope | THIS | THIS_AND_FOLLOWING | ALL |
//! |---|---|---|---|---|
//! | single event | the event | the event | BAD_USER_INPUT `scope` | the event |
//! | series master | the series | BAD_USER_INPUT `scope` | BAD_USER_INPUT `scope` | the series |
//! | instance / exception | that instance | that instance | split at it (first instance: ALL) | the series |
//!
//! A copy a ONE_WAY sync keeps equal to its origin is not split (BAD_USER_INPUT `scope`).
//!
//! A split writes, in order: the original master's recurrence cut before the instance (If-Match: a
//! series changed at Google since it was cached answers CONFLICT before anything else is written), the
//! new series (the original's texts and settings with the change applied; cancelled exceptions that move
//! become EXDATEs), the changed exceptions that move as instance edits of the new series (the change
//! applied to their texts and settings, their own times kept), and last the cancellation of the moved
//! exceptions in the original series. Every answer is cached.

use sea_orm::EntityTrait;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::{Current, EventPatch, cache_answer, patch_body, refresh_one, validate};
use crate::{
    entities::{
        calendars,
        enums::{EventStatus, SyncDirection},
        events, sync_configs,
    },
    error::{AppError, AppResult},
    events::{
        lookup::{self, EventRef, EventView, Target},
        recurrence::{
            self, EventTime, InstanceKey, Series,
            split::{self, SplitError, SplitInput, SplitPlan},
        },
        store,
    },
    google::{self, EventChange, GoogleError},
    state::AppState,
};

/// Which instances of a series a write covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// One instance (on a series master or single event: the event itself).
    This,
    /// The instance and every later one: the series is split at the instance.
    ThisAndFollowing,
    /// The whole series.
    All,
}

/// What a scoped write found at the id.
enum Found {
    /// A single event or a series master: scopes other than the default only name it as a whole.
    Whole { is_master: bool },
    /// An instance (generated or an exception) of the series `master`.
    Instance {
        master: Box<events::Model>,
        calendar: Box<calendars::Model>,
        /// The instance's original start, and its start and end without its own changes.
        original: EventTime,
        regular_end: EventTime,
    },
}

async fn find(state: &AppState, user_id: Uuid, id: EventRef) -> AppResult<Found> {
    let target = lookup::resolve(&state.db, user_id, id)
        .await?
        .ok_or(AppError::NotFound("event"))?;
    match target {
        Target::Instance {
            master,
            calendar,
            occurrence,
        } => Ok(Found::Instance {
            master: Box::new(master),
            calendar: Box::new(calendar),
            original: occurrence.original_start,
            regular_end: occurrence.end,
        }),
        // A cancelled instance is gone, as its instance id says.
        Target::Row { row, .. }
            if row.recurring_event_id.is_some() && row.status == EventStatus::Cancelled =>
        {
            Err(AppError::NotFound("event"))
        }
        Target::Row { row, calendar } if row.recurring_event_id.is_some() => {
            let (_, _, original) = store::row_times(&row)?;
            let master = lookup::master_of(&state.db, &row).await?;
            let (Some(master), Some(original)) = (master, original) else {
                return Err(AppError::bad_input(
                    "scope",
                    "the series of this instance is not known; only THIS applies",
                ));
            };
            let regular_end = regular_end(&master, &original)?;
            Ok(Found::Instance {
                master: Box::new(master),
                calendar: Box::new(calendar),
                original,
                regular_end,
            })
        }
        Target::Row { row, .. } => Ok(Found::Whole {
            is_master: store::row_recurrence(&row)?.is_some(),
        }),
    }
}

/// The end an instance at `original` has without changes of its own (the master's length).
fn regular_end(master: &events::Model, original: &EventTime) -> AppResult<EventTime> {
    let (start, end, _) = store::row_times(master)?;
    Ok(same_length(original, &start, &end).unwrap_or(end))
}

/// The end that gives an event starting at `at` the length from `from` to `to` (in days for all-day
/// times, the zone of `to`); `None` when the three are not of one kind.
fn same_length(at: &EventTime, from: &EventTime, to: &EventTime) -> Option<EventTime> {
    match (at, from, to) {
        (EventTime::Date(at), EventTime::Date(from), EventTime::Date(to)) => {
            Some(EventTime::Date(*at + (*to - *from)))
        }
        (
            EventTime::DateTime { instant, .. },
            EventTime::DateTime { instant: from, .. },
            EventTime::DateTime {
                instant: to,
                time_zone,
            },
        ) => Some(EventTime::DateTime {
            instant: *instant + (*to - *from),
            time_zone: time_zone.clone(),
        }),
        _ => None,
    }
}

fn whole_only(scope: Scope, is_master: bool) -> AppResult<()> {
    match (scope, is_master) {
        (Scope::ThisAndFollowing, false) => Err(AppError::bad_input(
            "scope",
            "THIS_AND_FOLLOWING needs an instance of a recurring series",
        )),
        (Scope::This | Scope::ThisAndFollowing, true) => Err(AppError::bad_input(
            "scope",
            "on a series master only ALL applies; give an instance id for THIS or THIS_AND_FOLLOWING",
        )),
        _ => Ok(()),
    }
}

/// `updateEvent` with a scope (`None`: THIS). Live subscribers are told to read on afterwards.
pub async fn update(
    state: &AppState,
    user_id: Uuid,
    id: EventRef,
    patch: EventPatch,
    scope: Option<Scope>,
) -> AppResult<EventView> {
    let updated = update_in_scope(state, user_id, id, patch, scope).await;
    super::announced(state, user_id, updated).await
}

async fn update_in_scope(
    state: &AppState,
    user_id: Uuid,
    id: EventRef,
    patch: EventPatch,
    scope: Option<Scope>,
) -> AppResult<EventView> {
    let Some(scope) = scope else {
        return super::update(state, user_id, id, patch).await;
    };
    match find(state, user_id, id).await? {
        Found::Whole { is_master } => {
            whole_only(scope, is_master)?;
            super::update(state, user_id, id, patch).await
        }
        Found::Instance {
            master,
            calendar,
            original,
            regular_end,
        } => {
            if scope == Scope::This {
                return super::update(state, user_id, id, patch).await;
            }
            validate::writable("id", &calendar.access_role)?;
            if scope == Scope::All {
                return update_series(state, user_id, &master, &original, &regular_end, patch).await;
            }
            one_way_copy(state, &master).await?;
            if patch.recurrence.is_some() {
                return Err(AppError::bad_input(
                    "recurrence",
                    "THIS_AND_FOLLOWING keeps the series' rule; change the new series' rule with scope ALL",
                ));
            }
            split_update(state, user_id, &master, &calendar, &original, &regular_end, patch).await
        }
    }
}

/// `deleteEvent` with a scope (`None`: THIS). Live subscribers are told to read on afterwards.
pub async fn delete(state: &AppState, user_id: Uuid, id: EventRef, scope: Option<Scope>) -> AppResult<()> {
    let deleted = delete_in_scope(state, user_id, id, scope).await;
    super::announced(state, user_id, deleted).await
}

async fn delete_in_scope(
    state: &AppState,
    user_id: Uuid,
    id: EventRef,
    scope: Option<Scope>,
) -> AppResult<()> {
    let Some(scope) = scope else {
        return super::delete(state, user_id, id).await;
    };
    match find(state, user_id, id).await? {
        Found::Whole { is_master } => {
            whole_only(scope, is_master)?;
            super::delete(state, user_id, id).await
        }
        Found::Instance {
            master,
            calendar,
            original,
            ..
        } => {
            if scope == Scope::This {
                return super::delete(state, user_id, id).await;
            }
            validate::writable("id", &calendar.access_role)?;
            let master_id = EventRef::Stored(master.id);
            if scope == Scope::All {
                return super::delete(state, user_id, master_id).await;
            }
            one_way_copy(state, &master).await?;
            let exceptions = lookup::exceptions_of(&state.db, &master).await?;
            let plan = plan_split(&master, &calendar, &exceptions, &original, None, None)?;
            let SplitPlan::Split(split) = plan else {
                return super::delete(state, user_id, master_id).await;
            };
            truncate(state, user_id, &master, &calendar, &split.truncated).await?;
            cancel_moved(state, user_id, &calendar, &exceptions, &split).await
        }
    }
}

/// ALL from an instance: the change applies to the master; a new start or end of the instance moves the
/// series' start by as much (in wall-clock time of the series' zone), and its length follows the instance.
async fn update_series(
    state: &AppState,
    user_id: Uuid,
    master: &events::Model,
    original: &EventTime,
    regular_end: &EventTime,
    mut patch: EventPatch,
) -> AppResult<EventView> {
    if patch.start.is_some() || patch.end.is_some() {
        let (master_start, _, _) = store::row_times(master)?;
        let new_start = patch.start.clone().unwrap_or(original.clone());
        let new_end = patch.end.clone().unwrap_or(regular_end.clone());
        let start = moved_like(&master_start, original, &new_start)?;
        let end = same_length(&start, &new_start, &new_end)
            .ok_or_else(|| AppError::bad_input("end", "must be of the same kind as the start"))?;
        patch.start = Some(start);
        patch.end = Some(end);
    }
    super::update(state, user_id, EventRef::Stored(master.id), patch).await
}

/// `master_start` moved by the change from `from` to `to` (dates: by days; times: in wall-clock time of
/// the zone `to` names, else the master's).
fn moved_like(master_start: &EventTime, from: &EventTime, to: &EventTime) -> AppResult<EventTime> {
    match (master_start, from, to) {
        (EventTime::Date(start), EventTime::Date(from), EventTime::Date(to)) => {
            Ok(EventTime::Date(*start + (*to - *from)))
        }
        (
            EventTime::DateTime {
                instant: start,
                time_zone: master_zone,
            },
            EventTime::DateTime { instant: from, .. },
            EventTime::DateTime {
                instant: to,
                time_zone,
            },
        ) => {
            let zone: chrono_tz::Tz = time_zone
                .as_deref()
                .or(master_zone.as_deref())
                .and_then(|z| z.parse().ok())
                .unwrap_or(chrono_tz::UTC);
            let local = |at: &chrono::DateTime<chrono::Utc>| at.with_timezone(&zone).naive_local();
            let moved = local(start) + (local(to) - local(from));
            let instant = recurrence::local_instant(moved, zone);
            Ok(EventTime::DateTime {
                instant,
                time_zone: time_zone.clone().or(master_zone.clone()),
            })
        }
        _ => Err(AppError::bad_input(
            "start",
            "a series stays all-day or timed; with scope ALL the start must be of the series' kind",
        )),
    }
}

/// A series a one-way sync keeps equal to its origin cannot be split: the next run would restore the
/// copy and leave the new series beside it. (A two-way copy can: the cut flows back to the origin, and
/// the new series is an event of its own that the sync mirrors.)
async fn one_way_copy(state: &AppState, master: &events::Model) -> AppResult<()> {
    let Some(config_id) = master.mirror_config_id else {
        return Ok(());
    };
    let config = sync_configs::Entity::find_by_id(config_id).one(&state.db).await?;
    if config.is_some_and(|c| c.direction == SyncDirection::OneWay) {
        return Err(AppError::bad_input(
            "scope",
            "this series is a copy a one-way sync keeps equal to its origin; split the origin instead",
        ));
    }
    Ok(())
}

fn plan_split(
    master: &events::Model,
    calendar: &calendars::Model,
    exceptions: &[events::Model],
    original: &EventTime,
    new_start: Option<&EventTime>,
    new_end: Option<&EventTime>,
) -> AppResult<SplitPlan> {
    let (start, end, _) = store::row_times(master)?;
    let lines = store::row_recurrence(master)?.unwrap_or_default();
    let mut keys = Vec::with_capacity(exceptions.len());
    for exception in exceptions {
        if let (_, _, Some(original)) = store::row_times(exception)? {
            keys.push((
                original.instance_key(),
                exception.status == EventStatus::Cancelled,
            ));
        } else {
            // Keep indices aligned with `exceptions`: an exception without an original start moves nowhere.
            keys.push((InstanceKey::Date(chrono::NaiveDate::MIN), false));
        }
    }
    let input = SplitInput {
        series: Series {
            start: &start,
            end: &end,
            recurrence: &lines,
        },
        calendar_time_zone: calendar.time_zone.as_deref(),
        exceptions: &keys,
        at: original.instance_key(),
        new_start,
        new_end,
    };
    split::split(&input).map_err(|e| match e {
        SplitError::Unsupported(field, reason) => AppError::bad_input(field, reason),
        SplitError::NotAnInstance => AppError::NotFound("event"),
        SplitError::Recurrence(e) => {
            AppError::bad_input("scope", format!("the series' recurrence cannot be split: {e}"))
        }
        SplitError::Unsplittable => AppError::bad_input("scope", SplitError::Unsplittable.to_string()),
    })
}

/// THIS_AND_FOLLOWING on an instance: splits the series there; answers with the new series' master.
async fn split_update(
    state: &AppState,
    user_id: Uuid,
    master: &events::Model,
    calendar: &calendars::Model,
    original: &EventTime,
    regular_end: &EventTime,
    patch: EventPatch,
) -> AppResult<EventView> {
    // Texts, settings and times are checked as for the instance itself.
    let instance = Current {
        google_id: recurrence::instance_id(&master.google_event_id, original),
        etag: None,
        start: original.clone(),
        end: regular_end.clone(),
        recurrence: None,
        is_instance: true,
        is_master: false,
    };
    let changes = patch_body(&patch, &instance)?;
    let exceptions = lookup::exceptions_of(&state.db, master).await?;
    let plan = plan_split(
        master,
        calendar,
        &exceptions,
        original,
        patch.start.as_ref(),
        patch.end.as_ref(),
    )?;
    let SplitPlan::Split(split) = plan else {
        return update_series(state, user_id, master, original, regular_end, patch).await;
    };
    truncate(state, user_id, master, calendar, &split.truncated).await?;

    let google = state.google()?.account(calendar.account_id).interactive();
    let stored = store::decode(&state.cipher, user_id, master)?;
    let mut body = google::Event {
        summary: stored.summary,
        description: stored.description,
        location: stored.location,
        start: Some(store::time_to_google(&split.start)),
        end: Some(store::time_to_google(&split.end)),
        recurrence: (!split.recurrence.is_empty()).then(|| split.recurrence.clone()),
        transparency: stored.transparency,
        visibility: stored.visibility,
        color_id: stored.color_id,
        extended_properties: extended_properties(stored.extended_private, stored.extended_shared),
        ..google::Event::default()
    };
    apply_settings(&mut body, &changes);
    let created = google.insert_event(&calendar.google_calendar_id, &body).await?;
    let view = cache_answer(state, user_id, calendar, &created).await?;
    let new_id = created
        .id
        .clone()
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("Google created an event without an id")))?;

    for moved in split.moved.iter().filter(|m| !m.cancelled) {
        let exception = &exceptions[moved.index];
        let content = store::decode(&state.cipher, user_id, exception)?;
        let mut edit = Map::new();
        edit.insert("summary".into(), json!(content.summary));
        edit.insert("description".into(), json!(content.description));
        edit.insert("location".into(), json!(content.location));
        edit.insert("transparency".into(), json!(content.transparency));
        edit.insert("visibility".into(), json!(content.visibility));
        edit.insert("colorId".into(), json!(content.color_id));
        let at_split = moved.original_start == split.start
            || content.original_start.as_ref().map(EventTime::instance_key) == Some(original.instance_key());
        let (start, end) = if at_split && (patch.start.is_some() || patch.end.is_some()) {
            (split.start.clone(), split.end.clone())
        } else {
            (content.start, content.end)
        };
        edit.insert("start".into(), super::explicit_time(&start));
        edit.insert("end".into(), super::explicit_time(&end));
        for (key, value) in &changes {
            if !matches!(key.as_str(), "start" | "end") {
                edit.insert(key.clone(), value.clone());
            }
        }
        // Without a recurrence the new series is a single event: the moved exception is that event.
        let target = if split.recurrence.is_empty() {
            new_id.clone()
        } else {
            recurrence::instance_id(&new_id, &moved.original_start)
        };
        let edit = Value::Object(edit);
        let answer = google
            .change_event(
                &calendar.google_calendar_id,
                &target,
                EventChange::Patch(&edit),
                None,
            )
            .await?;
        store::upsert_from_google(&state.db, &state.cipher, user_id, calendar, &answer).await?;
    }
    cancel_moved(state, user_id, calendar, &exceptions, &split).await?;
    if split.recurrence.is_empty() {
        return lookup::find(&state.db, &state.cipher, user_id, view.id)
            .await?
            .ok_or(AppError::NotFound("event"));
    }
    Ok(view)
}

/// Cuts the original series' recurrence (If-Match its cached etag).
async fn truncate(
    state: &AppState,
    user_id: Uuid,
    master: &events::Model,
    calendar: &calendars::Model,
    lines: &[String],
) -> AppResult<()> {
    let body = json!({ "recurrence": lines });
    let answer = state
        .google()?
        .account(calendar.account_id)
        .interactive()
        .change_event(
            &calendar.google_calendar_id,
            &master.google_event_id,
            EventChange::Patch(&body),
            master.etag.as_deref(),
        )
        .await;
    match answer {
        Ok(event) => {
            store::upsert_from_google(&state.db, &state.cipher, user_id, calendar, &event).await?;
            Ok(())
        }
        Err(GoogleError::PreconditionFailed) => {
            refresh_one(state, user_id, calendar, &master.google_event_id).await?;
            Err(AppError::Conflict(
                "the series changed in Google Calendar since it was read; the current version is now cached"
                    .into(),
            ))
        }
        Err(GoogleError::NotFound | GoogleError::Gone) => {
            store::tombstone(&state.db, user_id, calendar.id, master.id, true).await?;
            Err(AppError::NotFound("event"))
        }
        Err(e) => Err(e.into()),
    }
}

/// Cancels the live exceptions that left the original series (they lie after its end now).
async fn cancel_moved(
    state: &AppState,
    user_id: Uuid,
    calendar: &calendars::Model,
    exceptions: &[events::Model],
    split: &split::Split,
) -> AppResult<()> {
    let google = state.google()?.account(calendar.account_id).interactive();
    let cancel = json!({ "status": "cancelled" });
    for moved in &split.moved {
        let exception = &exceptions[moved.index];
        if exception.status == EventStatus::Cancelled {
            continue;
        }
        let answer = google
            .change_event(
                &calendar.google_calendar_id,
                &exception.google_event_id,
                EventChange::Patch(&cancel),
                None,
            )
            .await;
        match answer {
            Ok(event) => {
                store::upsert_from_google(&state.db, &state.cipher, user_id, calendar, &event).await?;
            }
            Err(GoogleError::NotFound | GoogleError::Gone) => {
                store::tombstone(&state.db, user_id, calendar.id, exception.id, false).await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The master's extended properties for the new series, without another config's mirror markers: the new
/// series is an event of its own.
fn extended_properties(
    mut private: std::collections::BTreeMap<String, String>,
    shared: std::collections::BTreeMap<String, String>,
) -> Option<google::ExtendedProperties> {
    private.retain(|key, _| !key.starts_with(MIRROR_MARKER_PREFIX));
    let properties = google::ExtendedProperties { private, shared };
    (!properties.is_empty()).then_some(properties)
}

/// Every key Chronos marks its copies with starts so (`chronosMirrorConfig`, `chronosMirrorOrigin`, ...).
const MIRROR_MARKER_PREFIX: &str = "chronosMirror";

/// Puts the change's texts and settings (not its times) into the new series' body.
fn apply_settings(body: &mut google::Event, changes: &Map<String, Value>) {
    let text = |value: &Value| value.as_str().map(str::to_owned);
    for (key, value) in changes {
        match key.as_str() {
            "summary" => body.summary = text(value),
            "description" => body.description = text(value),
            "location" => body.location = text(value),
            "transparency" => body.transparency = text(value),
            "visibility" => body.visibility = text(value),
            "colorId" => body.color_id = text(value),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, Utc};

    use super::*;

    fn timed(raw: &str, zone: Option<&str>) -> EventTime {
        EventTime::DateTime {
            instant: chrono::DateTime::parse_from_rfc3339(raw)
                .unwrap()
                .with_timezone(&Utc),
            time_zone: zone.map(str::to_owned),
        }
    }

    #[test]
    fn scopes_fit_single_events_and_masters_only_as_a_whole() {
        let field = |result: AppResult<()>| match result {
            Err(AppError::BadUserInput { field, .. }) => Some(field),
            _ => None,
        };
        assert_eq!(field(whole_only(Scope::This, false)), None);
        assert_eq!(field(whole_only(Scope::All, false)), None);
        assert_eq!(
            field(whole_only(Scope::ThisAndFollowing, false)).as_deref(),
            Some("scope")
        );
        assert_eq!(field(whole_only(Scope::All, true)), None);
        assert_eq!(field(whole_only(Scope::This, true)).as_deref(), Some("scope"));
        assert_eq!(
            field(whole_only(Scope::ThisAndFollowing, true)).as_deref(),
            Some("scope")
        );
    }

    #[test]
    fn all_from_an_instance_moves_the_series_start_in_local_time() {
        let zone = Some("America/New_York");
        // The series starts in winter (EST); the instance moved an hour later is in summer (EDT).
        let master = timed("2027-02-15T14:00:00Z", zone);
        let from = timed("2027-03-15T13:00:00Z", zone);
        let to = timed("2027-03-15T14:00:00Z", zone);
        assert_eq!(
            moved_like(&master, &from, &to).unwrap(),
            timed("2027-02-15T15:00:00Z", zone)
        );
        let date = |d: u32| EventTime::Date(NaiveDate::from_ymd_opt(2027, 3, d).unwrap());
        assert_eq!(moved_like(&date(1), &date(15), &date(17)).unwrap(), date(3));
        assert!(matches!(
            moved_like(&master, &from, &date(15)),
            Err(AppError::BadUserInput { field, .. }) if field == "start"
        ));
    }

    #[test]
    fn the_new_series_drops_mirror_markers_and_takes_the_changed_settings() {
        let private = [
            ("chronosMirrorConfig".to_owned(), "c".to_owned()),
            ("chronosMirrorOrigin".to_owned(), "o".to_owned()),
            ("mine".to_owned(), "1".to_owned()),
        ]
        .into_iter()
        .collect();
        let properties = extended_properties(private, Default::default()).unwrap();
        assert_eq!(properties.private.keys().collect::<Vec<_>>(), ["mine"]);
        assert!(extended_properties(Default::default(), Default::default()).is_none());

        let mut body = google::Event {
            summary: Some("Weekly".into()),
            location: Some("Room 1".into()),
            ..google::Event::default()
        };
        let mut changes = Map::new();
        changes.insert("summary".into(), json!("Renamed"));
        changes.insert("location".into(), Value::Null);
        changes.insert("start".into(), json!({ "date": "2027-03-15" }));
        apply_settings(&mut body, &changes);
        assert_eq!(body.summary.as_deref(), Some("Renamed"));
        assert_eq!(body.location, None);
        assert_eq!(body.start, None);
    }
}
