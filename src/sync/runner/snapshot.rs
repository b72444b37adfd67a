//! What the planner is given: each calendar's cached events as the planner's contract asks (the window
//! with a margin, tombstones included; every event a link names; every event carrying this config's
//! marker wherever it lies; the exceptions of every series master loaded) and the config's links.

use std::collections::{HashMap, HashSet};

use chrono::TimeDelta;
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::{
    crypto::Cipher,
    entities::{calendars, event_links, events},
    error::AppResult,
    events::{recurrence::Window, store},
    sync::{
        mirror::CalendarEvent,
        planner::{Link, Side},
    },
};

/// Widens the window on both sides: an all-day event's stored range depends on zones, and a slightly
/// larger horizon is harmless to the planner.
const MARGIN: TimeDelta = TimeDelta::days(1);

/// Ids per `IN (...)` list.
const IN_CHUNK: usize = 500;

/// Both calendars' rows (unordered, still encrypted) and the config's links.
pub struct Snapshot {
    pub source: Vec<events::Model>,
    pub destination: Vec<events::Model>,
    pub links: Vec<Link>,
}

pub async fn load<C: ConnectionTrait>(
    db: &C,
    config_id: Uuid,
    source: &calendars::Model,
    destination: &calendars::Model,
    window: Window,
) -> AppResult<Snapshot> {
    let link_rows = event_links::Entity::find()
        .filter(event_links::Column::ConfigId.eq(config_id))
        .all(db)
        .await?;
    let mut named: HashMap<Side, HashSet<&str>> = HashMap::new();
    for link in &link_rows {
        let origin = Side::from(link.origin);
        named
            .entry(origin)
            .or_default()
            .insert(link.source_event_id.as_str());
        named
            .entry(origin.other())
            .or_default()
            .insert(link.mirror_event_id.as_str());
    }
    let mut rows = |side: Side| named.remove(&side).unwrap_or_default();
    let source_named = rows(Side::Source);
    let destination_named = rows(Side::Destination);
    let source_rows = calendar_rows(db, source.id, config_id, window, source_named).await?;
    let destination_rows = calendar_rows(db, destination.id, config_id, window, destination_named).await?;
    Ok(Snapshot {
        source: source_rows,
        destination: destination_rows,
        links: link_rows.iter().map(Link::from_model).collect(),
    })
}

/// Decrypts rows into the planner's events, freeing each row as it goes (CPU-bound: run it off the
/// async workers).
pub fn decode(cipher: &Cipher, user_id: Uuid, rows: Vec<events::Model>) -> AppResult<Vec<CalendarEvent>> {
    rows.into_iter()
        .map(|row| Ok(CalendarEvent::from_stored(&store::decode(cipher, user_id, &row)?)))
        .collect()
}

async fn calendar_rows<C: ConnectionTrait>(
    db: &C,
    calendar_id: Uuid,
    config_id: Uuid,
    window: Window,
    named: HashSet<&str>,
) -> AppResult<Vec<events::Model>> {
    let time_min = window
        .time_min
        .checked_sub_signed(MARGIN)
        .unwrap_or(window.time_min);
    let time_max = window
        .time_max
        .checked_add_signed(MARGIN)
        .unwrap_or(window.time_max);
    let mut rows: HashMap<Uuid, events::Model> = HashMap::new();
    let in_window_or_marked = events::Entity::find()
        .filter(events::Column::CalendarId.eq(calendar_id))
        .filter(
            Condition::any()
                .add(
                    Condition::all()
                        .add(events::Column::RangeStart.lt(time_max))
                        .add(events::Column::RangeEnd.gt(time_min)),
                )
                .add(events::Column::MirrorConfigId.eq(config_id)),
        )
        .all(db)
        .await?;
    rows.extend(in_window_or_marked.into_iter().map(|row| (row.id, row)));

    let held: HashSet<&str> = rows.values().map(|row| row.google_event_id.as_str()).collect();
    let missing: Vec<String> = named
        .into_iter()
        .filter(|id| !held.contains(id))
        .map(str::to_owned)
        .collect();
    for chunk in missing.chunks(IN_CHUNK) {
        let found = events::Entity::find()
            .filter(events::Column::CalendarId.eq(calendar_id))
            .filter(events::Column::GoogleEventId.is_in(chunk.iter().cloned()))
            .all(db)
            .await?;
        rows.extend(found.into_iter().map(|row| (row.id, row)));
    }

    // Exceptions of the series loaded, wherever they lie in time.
    let masters: Vec<String> = rows
        .values()
        .filter(|row| row.recurring_event_id.is_none() && row.recurrence.is_some())
        .map(|row| row.google_event_id.clone())
        .collect();
    for chunk in masters.chunks(IN_CHUNK) {
        let found = events::Entity::find()
            .filter(events::Column::CalendarId.eq(calendar_id))
            .filter(events::Column::RecurringEventId.is_in(chunk.iter().cloned()))
            .all(db)
            .await?;
        rows.extend(found.into_iter().map(|row| (row.id, row)));
    }
    Ok(rows.into_values().collect())
}
