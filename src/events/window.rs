//! The `events` query: what occupies a time window in the user's calendars, read from the cache only.
//!
//! Rows are found through the `(calendar_id, long_span, range_start)` index ([`window_selects`]) and read
//! narrow, without their encrypted texts; exact overlap is then checked here, all-day dates in the
//! calendar's zone. Series masters and long events (few) are all read, and masters are expanded into
//! their instances in the window with their exceptions applied (moved instances appear once, at their new
//! time; cancelled ones not at all). Short single events (the many) are read in the order of their stored
//! start and only as far as the page needs. The result is ordered by start instant, then id, and
//! paginated with opaque cursors; only the page's rows (and the masters of its instances) are then read
//! in full and decrypted, so a page costs its size, not the window's.

use std::collections::{HashMap, hash_map::Entry};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select,
};
use uuid::Uuid;

use super::{
    lookup::{EventRef, EventView, user_calendars},
    recurrence::{self, EventTime, Exception, Instance, Occurrence, Series, Window},
    store::{self, TimedRow},
};
use crate::{
    crypto::Cipher,
    entities::{calendars, enums::EventStatus, events},
    error::{AppError, AppResult},
    work_budget::WorkBudget,
};

pub const DEFAULT_PAGE_SIZE: usize = 100;
pub const MAX_PAGE_SIZE: usize = 500;
/// Longest window a query may ask for: a year, plus a day so "this calendar year" fits in every zone.
pub const MAX_WINDOW: TimeDelta = TimeDelta::days(367);
/// Instances of one series in one window; a denser rule (every minute for a year) is cut here, latest
/// instances first, with a warning in the log.
const MAX_INSTANCES_PER_SERIES: usize = 10_000;
/// Exceptions are loaded for this many masters per query.
const MASTERS_PER_QUERY: usize = 500;
/// Short events read beyond the page in the first read of a window page: enough for the all-day events
/// and edge rows the page may not keep, so one read is usually all it takes.
const SINGLES_SLACK: usize = 16;

/// Checks `timeMin` / `timeMax` and makes the window.
pub fn window(time_min: DateTime<Utc>, time_max: DateTime<Utc>) -> AppResult<Window> {
    if time_max <= time_min {
        return Err(AppError::bad_input("timeMax", "must be after timeMin"));
    }
    if time_max - time_min > MAX_WINDOW {
        return Err(AppError::bad_input(
            "timeMax",
            "the window may span at most 367 days",
        ));
    }
    Ok(Window::new(time_min, time_max))
}

/// The page size: `first` or the default, between 1 and [`MAX_PAGE_SIZE`].
pub fn page_size(first: Option<i32>, default: usize, max: usize) -> AppResult<usize> {
    let Some(first) = first else {
        return Ok(default);
    };
    usize::try_from(first)
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| AppError::bad_input("first", format!("must be between 1 and {max}")))
}

/// The rows of `calendar_ids` whose stored range overlaps the window, as two queries that each read one
/// narrow range of the `(calendar_id, long_span, range_start)` index: the short rows starting at most
/// [`events::LONG_SPAN`] before the window (a short row that overlaps it cannot start earlier), and the
/// long ones (series masters, long events: few). A week in mid-history reads that week's rows, not the
/// half of the history on one side of it.
pub fn window_selects(calendar_ids: &[Uuid], window: Window) -> [Select<events::Entity>; 2] {
    let overlapping = |long_span: bool| {
        events::Entity::find()
            .filter(events::Column::CalendarId.is_in(calendar_ids.iter().copied()))
            .filter(events::Column::LongSpan.eq(long_span))
            .filter(events::Column::RangeStart.lt(window.time_max))
            .filter(events::Column::RangeEnd.gt(window.time_min))
            .filter(events::Column::DeletedAt.is_null())
    };
    [
        overlapping(false).filter(events::Column::RangeStart.gte(window.time_min - events::LONG_SPAN)),
        overlapping(true),
    ]
}

/// One page of a window.
#[derive(Debug, Clone, Default)]
pub struct WindowPage {
    /// Each event with its cursor.
    pub edges: Vec<(String, EventView)>,
    pub has_next_page: bool,
    pub has_previous_page: bool,
}

/// What a window query asks.
#[derive(Debug, Clone)]
pub struct WindowQuery<'a> {
    /// `None`: every calendar of the user.
    pub calendar_ids: Option<&'a [Uuid]>,
    pub window: Window,
    pub first: usize,
    /// The cursor of the last event of the previous page.
    pub after: Option<&'a str>,
}

/// Something in the window, before decryption.
struct Candidate {
    start: DateTime<Utc>,
    /// The event's id, the tie-breaker of the order.
    key: String,
    row: usize,
    occurrence: Option<Occurrence>,
}

/// The events of the user's calendars in the window, in order, one page. Reads only the cache.
/// Series expansion spends from `budget`: the page stops with an error rather than expanding past it, and
/// the task yields after each series so other requests on this worker keep going.
pub async fn events_in_window<C: ConnectionTrait>(
    db: &C,
    cipher: &Cipher,
    user_id: Uuid,
    query: WindowQuery<'_>,
    budget: &WorkBudget,
) -> AppResult<WindowPage> {
    let after = query.after.map(Cursor::decode).transpose()?;
    let calendars = user_calendars(db, user_id, query.calendar_ids).await?;
    let ids: Vec<Uuid> = calendars.iter().map(|calendar| calendar.id).collect();
    let zones = Zones::of(&calendars);
    let is_after = |candidate: &Candidate| {
        after
            .as_ref()
            .is_none_or(|cursor| (candidate.start, &candidate.key) > (cursor.start, &cursor.key))
    };

    // Series masters and long events are few: all of them are read and placed.
    let [short, long] = window_selects(&ids, query.window);
    let mut few = long.into_partial_model::<TimedRow>().all(db).await?;
    few.extend(
        short
            .clone()
            .filter(events::Column::Recurrence.is_not_null())
            .into_partial_model::<TimedRow>()
            .all(db)
            .await?,
    );
    let Occupied { mut rows, found } = place(db, few, &zones, query.window, budget).await?;
    let mut candidates: Vec<Candidate> = found
        .into_iter()
        .map(|found| match found.occurrence {
            Some(occurrence) => Candidate::instance(rows[found.row].id, found.start, found.row, occurrence),
            None => Candidate::stored(&rows[found.row], found.start, found.row),
        })
        .filter(|candidate| is_after(candidate))
        .collect();

    // Short single events and exceptions are the many (a busy week holds hundreds): only as many are read
    // as the page can need, in the order of their stored start, which is never after the exact start
    // and at most `ALL_DAY_SPREAD` before it (all-day events only).
    let wanted = query.first + 1;
    let mut singles = short
        .filter(events::Column::Recurrence.is_null())
        .filter(events::Column::Status.ne(EventStatus::Cancelled))
        .order_by_asc(events::Column::RangeStart)
        .order_by_asc(events::Column::Id);
    if let Some(cursor) = &after {
        singles = singles
            .filter(events::Column::RangeStart.gte(cursor.start - store::ALL_DAY_SPREAD))
            .filter(
                Condition::any()
                    .add(events::Column::RangeStart.gte(cursor.start))
                    .add(events::Column::StartDate.is_not_null()),
            );
    }
    let mut batch = wanted + SINGLES_SLACK;
    let mut resume: Option<(DateTime<Utc>, Uuid)> = None;
    loop {
        let mut select = singles.clone();
        if let Some((range_start, id)) = resume {
            select = select.filter(
                Condition::any()
                    .add(events::Column::RangeStart.gt(range_start))
                    .add(
                        Condition::all()
                            .add(events::Column::RangeStart.eq(range_start))
                            .add(events::Column::Id.gt(id)),
                    ),
            );
        }
        let read = select
            .limit(batch as u64)
            .into_partial_model::<TimedRow>()
            .all(db)
            .await?;
        let exhausted = read.len() < batch;
        for row in read {
            resume = Some((row.range_start, row.id));
            let Some((start, _)) = place_single(&row, zones.for_row(&row), query.window)? else {
                continue;
            };
            let index = rows.len();
            rows.push(row);
            let candidate = Candidate::stored(&rows[index], start, index);
            if is_after(&candidate) {
                candidates.push(candidate);
            }
        }
        // Every single not read yet starts at or after the last stored start read.
        let Some((bound, _)) = resume.filter(|_| !exhausted) else {
            break;
        };
        if candidates
            .iter()
            .filter(|candidate| candidate.start < bound)
            .count()
            >= wanted
        {
            break;
        }
        batch = batch.saturating_mul(4);
        budget.check_deadline()?;
    }

    candidates.sort_by(|a, b| (a.start, &a.key).cmp(&(b.start, &b.key)));
    let has_next_page = candidates.len() > query.first;
    candidates.truncate(query.first);
    let page = candidates;
    // The full rows (texts to decrypt) of this page alone: its events, and the masters of its instances.
    let mut ids: Vec<Uuid> = page.iter().map(|candidate| rows[candidate.row].id).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut full: HashMap<Uuid, events::Model> = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(MASTERS_PER_QUERY) {
        let read = events::Entity::find()
            .filter(events::Column::Id.is_in(chunk.iter().copied()))
            .all(db)
            .await?;
        full.extend(read.into_iter().map(|row| (row.id, row)));
    }
    let mut decoded: HashMap<Uuid, store::StoredEvent> = HashMap::new();
    let mut edges = Vec::new();
    for candidate in page {
        let id = rows[candidate.row].id;
        // A series' rows are decrypted once for all its instances on the page.
        let event = match decoded.entry(id) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                // Gone with its calendar since the narrow read.
                let Some(row) = full.get(&id) else {
                    continue;
                };
                entry.insert(store::decode(cipher, user_id, row)?)
            }
        };
        let view = match candidate.occurrence {
            Some(occurrence) => EventView::instance(event, occurrence),
            None => EventView::stored(event.clone()),
        };
        let cursor = Cursor {
            start: candidate.start,
            key: candidate.key,
        };
        edges.push((cursor.encode(), view));
    }
    Ok(WindowPage {
        edges,
        has_next_page,
        has_previous_page: after.is_some(),
    })
}

/// One thing that occupies time in a window: a stored event (a single event or a live exception) or an
/// instance generated from a series master that no exception replaces.
#[derive(Debug, Clone)]
pub struct Found {
    /// Its row in [`Occupied::rows`]: the event's own, or the master's for a generated instance.
    pub row: usize,
    /// Its instants; all-day dates read in its calendar's zone (UTC if none), end exclusive.
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Set on generated instances.
    pub occurrence: Option<Occurrence>,
}

/// What occupies a window in some calendars, read from the cache without decrypting anything.
#[derive(Debug, Clone, Default)]
pub struct Occupied {
    /// The narrow rows (no texts) of the events and masters found.
    pub rows: Vec<TimedRow>,
    /// In no particular order.
    pub found: Vec<Found>,
}

/// Everything that occupies the window in `calendars` (which the caller has checked are the user's):
/// live single events and exceptions that overlap it, and the instances of series expanded in it with
/// their exceptions applied (cancelled instances are left out). Series expansion spends from `budget`,
/// stopping with an error rather than expanding past it, and the task yields after each series so other
/// requests on this worker keep going.
pub async fn occupied<C: ConnectionTrait>(
    db: &C,
    calendars: &[calendars::Model],
    window: Window,
    budget: &WorkBudget,
) -> AppResult<Occupied> {
    let ids: Vec<Uuid> = calendars.iter().map(|calendar| calendar.id).collect();
    let mut rows: Vec<TimedRow> = Vec::new();
    for select in window_selects(&ids, window) {
        rows.extend(select.into_partial_model::<TimedRow>().all(db).await?);
    }
    place(db, rows, &Zones::of(calendars), window, budget).await
}

/// The calendars' zones, in which all-day dates are read.
struct Zones<'a>(HashMap<Uuid, Option<&'a str>>);

impl<'a> Zones<'a> {
    fn of(calendars: &'a [calendars::Model]) -> Self {
        Self(
            calendars
                .iter()
                .map(|calendar| (calendar.id, calendar.time_zone.as_deref()))
                .collect(),
        )
    }

    fn for_row(&self, row: &TimedRow) -> Option<&'a str> {
        self.0.get(&row.calendar_id).copied().flatten()
    }
}

/// Where a single event or exception sits in the window: its instants, or `None` when it is cancelled or
/// outside (its stored range is wider than its exact one for all-day dates).
fn place_single(
    row: &TimedRow,
    zone: Option<&str>,
    window: Window,
) -> AppResult<Option<(DateTime<Utc>, DateTime<Utc>)>> {
    if row.status == EventStatus::Cancelled {
        return Ok(None);
    }
    let (start, end, _) = store::timed_row_times(row)?;
    let (start, end) = recurrence::to_instant_range(&start, &end, zone);
    Ok(window.overlaps_range(start, end).then_some((start, end)))
}

/// What `rows` (read by a window query) put in the window: single events and exceptions as themselves,
/// series masters expanded with their exceptions applied.
async fn place<C: ConnectionTrait>(
    db: &C,
    rows: Vec<TimedRow>,
    zones: &Zones<'_>,
    window: Window,
    budget: &WorkBudget,
) -> AppResult<Occupied> {
    let mut found: Vec<Found> = Vec::new();
    let mut masters: Vec<(usize, Vec<String>)> = Vec::new();
    for (index, row) in rows.iter().enumerate() {
        if let Some(lines) = store::timed_row_recurrence(row)? {
            masters.push((index, lines));
        } else if let Some((start, end)) = place_single(row, zones.for_row(row), window)? {
            found.push(Found {
                row: index,
                start,
                end,
                occurrence: None,
            });
        }
    }
    let exceptions = exceptions_of(db, &masters, &rows).await?;
    for (index, lines) in masters {
        let master = &rows[index];
        let zone = zones.for_row(master);
        let replacing = exceptions
            .get(&(master.calendar_id, master.google_event_id.clone()))
            .map_or(&[][..], Vec::as_slice);
        budget.check_deadline()?;
        for occurrence in instances(master, &lines, replacing, zone, window, budget)? {
            let (start, end) = recurrence::to_instant_range(&occurrence.start, &occurrence.end, zone);
            found.push(Found {
                row: index,
                start,
                end,
                occurrence: Some(occurrence),
            });
        }
        tokio::task::yield_now().await;
    }
    Ok(Occupied { rows, found })
}

impl Candidate {
    fn stored(row: &TimedRow, start: DateTime<Utc>, index: usize) -> Self {
        Self {
            start,
            key: EventRef::Stored(row.id).to_string(),
            row: index,
            occurrence: None,
        }
    }

    fn instance(master: Uuid, start: DateTime<Utc>, index: usize, occurrence: Occurrence) -> Self {
        let id = EventRef::Instance {
            master,
            original: occurrence.original_start.instance_key(),
        };
        Self {
            start,
            key: id.to_string(),
            row: index,
            occurrence: Some(occurrence),
        }
    }
}

/// An exception's original start, and its own times unless it is cancelled.
type StoredException = (EventTime, Option<(EventTime, EventTime)>);

/// The live exceptions of the masters, by the master's calendar and Google id (narrow rows).
async fn exceptions_of<C: ConnectionTrait>(
    db: &C,
    masters: &[(usize, Vec<String>)],
    rows: &[TimedRow],
) -> AppResult<HashMap<(Uuid, String), Vec<StoredException>>> {
    let mut by_master: HashMap<(Uuid, String), Vec<StoredException>> = HashMap::new();
    for chunk in masters.chunks(MASTERS_PER_QUERY) {
        let calendar_ids: Vec<Uuid> = chunk.iter().map(|(index, _)| rows[*index].calendar_id).collect();
        let google_ids = chunk
            .iter()
            .map(|(index, _)| rows[*index].google_event_id.clone());
        let exceptions = events::Entity::find()
            .filter(events::Column::CalendarId.is_in(calendar_ids))
            .filter(events::Column::RecurringEventId.is_in(google_ids))
            .filter(events::Column::DeletedAt.is_null())
            .into_partial_model::<TimedRow>()
            .all(db)
            .await?;
        for exception in exceptions {
            let (start, end, original) = store::timed_row_times(&exception)?;
            let (Some(original), Some(master)) = (original, exception.recurring_event_id) else {
                continue;
            };
            let replacement = (exception.status != EventStatus::Cancelled).then_some((start, end));
            by_master
                .entry((exception.calendar_id, master))
                .or_default()
                .push((original, replacement));
        }
    }
    Ok(by_master)
}

/// The generated instances of a master in the window that no exception replaces (the live exceptions
/// themselves are rows of the window query). A series whose rules cannot be expanded shows its first
/// occurrence only, with a warning in the log.
fn instances(
    master: &TimedRow,
    lines: &[String],
    exceptions: &[StoredException],
    zone: Option<&str>,
    window: Window,
    budget: &WorkBudget,
) -> AppResult<Vec<Occurrence>> {
    let (start, end, _) = store::timed_row_times(master)?;
    let series = Series {
        start: &start,
        end: &end,
        recurrence: lines,
    };
    // One more than the budget allows, so that going over it shows.
    let limit = MAX_INSTANCES_PER_SERIES.min(budget.instances_left().saturating_add(1));
    let expansion = match recurrence::expand(&series, zone, window, limit) {
        Ok(expansion) => expansion,
        Err(e) => {
            tracing::warn!(event_id = %master.id, error = %e, "series does not expand; showing its first occurrence");
            let first = Occurrence {
                original_start: start.clone(),
                start: start.clone(),
                end: end.clone(),
            };
            return Ok(if recurrence::overlaps(&start, &end, zone, window) {
                vec![first]
            } else {
                Vec::new()
            });
        }
    };
    budget.spend_instances(expansion.occurrences.len())?;
    if expansion.truncated {
        tracing::warn!(event_id = %master.id, limit = MAX_INSTANCES_PER_SERIES, "series instances cut in a window");
    }
    let exceptions: Vec<Exception<'_>> = exceptions
        .iter()
        .map(|(original, replacement)| Exception {
            original_start: original,
            replacement: replacement.as_ref().map(|(start, end)| (start, end)),
        })
        .collect();
    Ok(
        recurrence::apply_exceptions(expansion.occurrences, &exceptions, zone, window)
            .into_iter()
            .filter_map(|instance| match instance {
                Instance::Expanded(occurrence) => Some(occurrence),
                Instance::Exception(_) => None,
            })
            .collect(),
    )
}

/// Position in the order of a window: start instant, then id.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cursor {
    start: DateTime<Utc>,
    key: String,
}

impl Cursor {
    fn encode(&self) -> String {
        let raw = format!(
            "w1|{}|{}",
            self.start.to_rfc3339_opts(SecondsFormat::Nanos, true),
            self.key
        );
        URL_SAFE_NO_PAD.encode(raw)
    }

    fn decode(raw: &str) -> AppResult<Self> {
        let invalid = || AppError::bad_input("after", "not a cursor of this query");
        let bytes = URL_SAFE_NO_PAD.decode(raw.trim()).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let mut parts = text.splitn(3, '|');
        let (Some("w1"), Some(start), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(invalid());
        };
        let start = DateTime::parse_from_rfc3339(start)
            .map_err(|_| invalid())?
            .with_timezone(&Utc);
        Ok(Self {
            start,
            key: key.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(raw: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(raw).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn windows_are_ordered_and_at_most_a_year() {
        let min = at("2026-01-01T00:00:00Z");
        assert!(window(min, at("2026-12-31T00:00:00Z")).is_ok());
        for max in [min, at("2025-12-31T00:00:00Z"), at("2027-01-05T00:00:00Z")] {
            match window(min, max) {
                Err(AppError::BadUserInput { field, .. }) => assert_eq!(field, "timeMax"),
                other => panic!("expected BAD_USER_INPUT, got {other:?}"),
            }
        }
    }

    #[test]
    fn page_sizes_are_bounded() {
        assert_eq!(page_size(None, 100, 500).unwrap(), 100);
        assert_eq!(page_size(Some(500), 100, 500).unwrap(), 500);
        assert!(page_size(Some(0), 100, 500).is_err());
        assert!(page_size(Some(501), 100, 500).is_err());
        assert!(page_size(Some(-3), 100, 500).is_err());
    }

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let cursor = Cursor {
            start: at("2026-03-29T01:30:00.000000001Z"),
            key: "0190b5b2-0000-7000-8000-000000000000:20260329T013000Z".into(),
        };
        assert_eq!(Cursor::decode(&cursor.encode()).unwrap(), cursor);
        for garbage in [
            "",
            "!!",
            &URL_SAFE_NO_PAD.encode("x|y|z"),
            &URL_SAFE_NO_PAD.encode("w1|soon|id"),
        ] {
            assert!(Cursor::decode(garbage).is_err(), "{garbage}");
        }
    }
}
