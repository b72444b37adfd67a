//! How clients name events, and finding what a name points to within one user's calendars.
//!
//! A stored event (single, series master, exception) is named by its row id. An instance generated from a
//! series master is named `<master row id>:<original start>` (`20260302T090000Z` timed, `20260302`
//! all-day); once Google turns the instance into an exception, the name resolves to the exception's row.
//! Another user's event resolves exactly like a missing one.

use std::fmt;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, JoinType, QueryFilter, QuerySelect, RelationTrait};
use uuid::Uuid;

use super::{
    recurrence::{self, EventTime, InstanceKey, Occurrence, Series, Window},
    store::{self, StoredEvent},
};
use crate::{
    crypto::Cipher,
    entities::{calendars, enums::EventStatus, events, google_accounts},
    error::{AppError, AppResult},
};

/// The name of an event in the GraphQL API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventRef {
    Stored(Uuid),
    Instance { master: Uuid, original: InstanceKey },
}

impl EventRef {
    /// `None` for anything that is not a name this API gives out.
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        let Some((master, suffix)) = raw.split_once(':') else {
            return Uuid::parse_str(raw).ok().map(Self::Stored);
        };
        let master = Uuid::parse_str(master).ok()?;
        let original = if let Some(utc) = suffix.strip_suffix('Z') {
            InstanceKey::Instant(
                NaiveDateTime::parse_from_str(utc, "%Y%m%dT%H%M%S")
                    .ok()?
                    .and_utc(),
            )
        } else {
            InstanceKey::Date(NaiveDate::parse_from_str(suffix, "%Y%m%d").ok()?)
        };
        Some(Self::Instance { master, original })
    }
}

impl fmt::Display for EventRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stored(id) => write!(f, "{id}"),
            Self::Instance {
                master,
                original: InstanceKey::Date(date),
            } => write!(f, "{master}:{}", date.format("%Y%m%d")),
            Self::Instance {
                master,
                original: InstanceKey::Instant(at),
            } => write!(f, "{master}:{}", at.format("%Y%m%dT%H%M%SZ")),
        }
    }
}

/// An event as a client sees it: a stored row, or an instance generated from a stored series master
/// (the master's texts and settings, the instance's times, Google's instance id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventView {
    pub id: EventRef,
    pub event: StoredEvent,
}

impl EventView {
    pub fn stored(event: StoredEvent) -> Self {
        Self {
            id: EventRef::Stored(event.id),
            event,
        }
    }

    pub fn instance(master: &StoredEvent, occurrence: Occurrence) -> Self {
        let mut event = master.clone();
        event.google_event_id = recurrence::instance_id(&master.google_event_id, &occurrence.original_start);
        event.recurring_event_id = Some(master.google_event_id.clone());
        event.recurrence = None;
        event.start = occurrence.start;
        event.end = occurrence.end;
        let original = occurrence.original_start.instance_key();
        event.original_start = Some(occurrence.original_start);
        Self {
            id: EventRef::Instance {
                master: master.id,
                original,
            },
            event,
        }
    }
}

/// The user's calendars: all of them, or exactly those of `ids` (any unknown or foreign id is NOT_FOUND).
pub async fn user_calendars<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    ids: Option<&[Uuid]>,
) -> AppResult<Vec<calendars::Model>> {
    let mut query = calendars::Entity::find()
        .join(JoinType::InnerJoin, calendars::Relation::GoogleAccounts.def())
        .filter(google_accounts::Column::UserId.eq(user_id))
        .filter(calendars::Column::DeletedAt.is_null());
    if let Some(ids) = ids {
        query = query.filter(calendars::Column::Id.is_in(ids.iter().copied()));
    }
    let found = query.all(db).await?;
    if let Some(ids) = ids
        && ids.iter().any(|id| !found.iter().any(|c| c.id == *id))
    {
        return Err(AppError::NotFound("calendar"));
    }
    Ok(found)
}

/// One calendar of the user, or NOT_FOUND.
pub async fn user_calendar<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    id: Uuid,
) -> AppResult<calendars::Model> {
    user_calendars(db, user_id, Some(&[id]))
        .await?
        .pop()
        .ok_or(AppError::NotFound("calendar"))
}

/// What an event name points to.
#[derive(Debug, Clone)]
pub enum Target {
    /// A stored row: a single event, a series master or an exception.
    Row {
        row: events::Model,
        calendar: calendars::Model,
    },
    /// An instance the master generates and no exception replaces.
    Instance {
        master: events::Model,
        calendar: calendars::Model,
        occurrence: Occurrence,
    },
}

impl Target {
    pub fn calendar(&self) -> &calendars::Model {
        match self {
            Self::Row { calendar, .. } | Self::Instance { calendar, .. } => calendar,
        }
    }
}

/// Finds the live event `event` names among the user's calendars. `None` when it does not exist, is
/// another user's, or is a deleted instance.
pub async fn resolve<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    event: EventRef,
) -> AppResult<Option<Target>> {
    match event {
        EventRef::Stored(id) => {
            let Some((row, calendar)) = live_row(db, user_id, id).await? else {
                return Ok(None);
            };
            Ok(Some(Target::Row { row, calendar }))
        }
        EventRef::Instance { master, original } => {
            let Some((master, calendar)) = live_row(db, user_id, master).await? else {
                return Ok(None);
            };
            let Some(lines) = store::row_recurrence(&master)? else {
                return Ok(None);
            };
            if let Some(exception) = exception_of(db, &master, original).await? {
                if exception.status == EventStatus::Cancelled {
                    return Ok(None);
                }
                return Ok(Some(Target::Row {
                    row: exception,
                    calendar,
                }));
            }
            let (start, end, _) = store::row_times(&master)?;
            let series = Series {
                start: &start,
                end: &end,
                recurrence: &lines,
            };
            let zone = calendar.time_zone.as_deref();
            let at = key_instant(original, zone);
            let around = Window::new(at - TimeDelta::seconds(1), at + TimeDelta::seconds(1));
            let expansion = match recurrence::expand(&series, zone, around, 16) {
                Ok(expansion) => expansion,
                Err(e) => {
                    tracing::warn!(event_id = %master.id, error = %e, "series does not expand");
                    return Ok(None);
                }
            };
            let occurrence = expansion
                .occurrences
                .into_iter()
                .find(|o| o.original_start.instance_key() == original);
            Ok(occurrence.map(|occurrence| Target::Instance {
                master,
                calendar,
                occurrence,
            }))
        }
    }
}

/// The event `event` names, decrypted, as a client sees it.
pub async fn find<C: ConnectionTrait>(
    db: &C,
    cipher: &Cipher,
    user_id: Uuid,
    event: EventRef,
) -> AppResult<Option<EventView>> {
    Ok(match resolve(db, user_id, event).await? {
        None => None,
        Some(Target::Row { row, .. }) => Some(EventView::stored(store::decode(cipher, user_id, &row)?)),
        Some(Target::Instance {
            master, occurrence, ..
        }) => Some(EventView::instance(
            &store::decode(cipher, user_id, &master)?,
            occurrence,
        )),
    })
}

/// A live row of one of the user's calendars, with its calendar.
async fn live_row<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    id: Uuid,
) -> AppResult<Option<(events::Model, calendars::Model)>> {
    let Some(row) = events::Entity::find_by_id(id)
        .filter(events::Column::DeletedAt.is_null())
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    match user_calendar(db, user_id, row.calendar_id).await {
        Ok(calendar) => Ok(Some((row, calendar))),
        Err(AppError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The live exceptions (cancelled ones included) of `master`.
pub async fn exceptions_of<C: ConnectionTrait>(
    db: &C,
    master: &events::Model,
) -> AppResult<Vec<events::Model>> {
    Ok(events::Entity::find()
        .filter(events::Column::CalendarId.eq(master.calendar_id))
        .filter(events::Column::RecurringEventId.eq(master.google_event_id.as_str()))
        .filter(events::Column::DeletedAt.is_null())
        .all(db)
        .await?)
}

/// The live series master of an exception, in the exception's calendar.
pub async fn master_of<C: ConnectionTrait>(
    db: &C,
    exception: &events::Model,
) -> AppResult<Option<events::Model>> {
    let Some(master_id) = exception.recurring_event_id.as_deref() else {
        return Ok(None);
    };
    Ok(events::Entity::find()
        .filter(events::Column::CalendarId.eq(exception.calendar_id))
        .filter(events::Column::GoogleEventId.eq(master_id))
        .filter(events::Column::RecurringEventId.is_null())
        .filter(events::Column::DeletedAt.is_null())
        .one(db)
        .await?)
}

/// The live exception (possibly cancelled) that replaces the instance `original` of `master`.
pub async fn exception_of<C: ConnectionTrait>(
    db: &C,
    master: &events::Model,
    original: InstanceKey,
) -> AppResult<Option<events::Model>> {
    for exception in exceptions_of(db, master).await? {
        if let (_, _, Some(start)) = store::row_times(&exception)?
            && start.instance_key() == original
        {
            return Ok(Some(exception));
        }
    }
    Ok(None)
}

/// The instant an instance key stands for (a date: its midnight in `zone`).
pub fn key_instant(key: InstanceKey, zone: Option<&str>) -> DateTime<Utc> {
    match key {
        InstanceKey::Instant(at) => at,
        InstanceKey::Date(date) => EventTime::Date(date).to_instant(zone),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let master = Uuid::now_v7();
        let names = [
            EventRef::Stored(master),
            EventRef::Instance {
                master,
                original: InstanceKey::Instant(
                    DateTime::parse_from_rfc3339("2026-03-29T07:00:00Z")
                        .unwrap()
                        .with_timezone(&Utc),
                ),
            },
            EventRef::Instance {
                master,
                original: InstanceKey::Date(NaiveDate::from_ymd_opt(2026, 2, 28).unwrap()),
            },
        ];
        for name in names {
            assert_eq!(EventRef::parse(&name.to_string()), Some(name));
        }
        assert_eq!(
            EventRef::Instance {
                master,
                original: InstanceKey::Date(NaiveDate::from_ymd_opt(2026, 2, 28).unwrap()),
            }
            .to_string(),
            format!("{master}:20260228")
        );
    }

    #[test]
    fn foreign_names_do_not_parse() {
        for raw in [
            "",
            "abc",
            "x:20260101",
            "6f1e0b0c-0000-0000-0000-000000000000:2026",
            "6f1e0b0c-0000-0000-0000-000000000000:20261301",
        ] {
            assert_eq!(EventRef::parse(raw), None, "{raw}");
        }
    }
}
