//! The codec between Google's event model and the `events` table: every write of a Google event into
//! the cache goes through [`upsert_from_google`], every read out of it through [`decode`].
//!
//! Rules kept here so that the refresh (calendars), the mutations (events) and the sync executor agree:
//! - a row is keyed by `(calendar_id, google_event_id)`;
//! - every change of a row takes a fresh `change_seq` from its user's counter in the transaction that
//!   writes it (tombstones too),
//!   and an entry Google sends again unchanged (same etag and `updated`), or older than the cached one
//!   (a listing that started before one of our writes), changes nothing;
//! - a `cancelled` entry tombstones the row (`deleted_at`), except a cancelled exception of a live series
//!   (it carries `recurringEventId` and `originalStartTime`), which stays as a live row with status
//!   CANCELLED: it removes one instance of the series;
//! - summary, description and location are encrypted with [`Aad`] `(user, "events", column, row id)`,
//!   and indexed for search ([`search_index::reindex`]) in the same transaction; tombstones and cancelled
//!   exceptions are not indexed;
//! - Google's strings are stored without the characters plain text may not hold ([`crate::text`]), so an
//!   event with a NUL or another control character at Google never makes a refresh fail; an event whose
//!   id holds one is ignored (it could not be addressed at Google again).

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Datelike as _, Duration, NaiveDate, NaiveTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ActiveValue::Unchanged, ColumnTrait, ConnectionTrait,
    DatabaseConnection, DbBackend, DerivePartialModel, EntityTrait, QueryFilter, QuerySelect, Statement,
    TransactionSession, TransactionTrait,
};
use uuid::Uuid;

use crate::{
    crypto::{Aad, Cipher},
    entities::{calendars, enums::EventStatus, event_change_sequences, events, sync_configs},
    error::{AppError, AppResult},
    google::{self, EventDateTime},
    text,
};

use super::{
    recurrence::{self, EventTime, Series},
    search::index as search_index,
};

/// Private extended property that marks an event as a copy written by a sync config; its value is the
/// config's id. The sync executor writes it, [`upsert_from_google`] turns it into `mirror_config_id`.
pub const MIRROR_MARKER_KEY: &str = "chronosMirrorConfig";

/// Table name in the encryption scope of the event texts.
const TABLE: &str = "events";

/// UTC offsets span -12:00 to +14:00: an all-day date starts, in some zone, as early as 14 hours before
/// its UTC midnight and ends as late as 12 hours after it. The stored range of an all-day event is that
/// widest reading, so it holds whatever the calendar's zone is (or becomes); the window query then checks
/// the exact bounds in the calendar's zone.
const EARLIEST_OFFSET_HOURS: i64 = 14;
const LATEST_OFFSET_HOURS: i64 = 12;
/// How far after its stored `range_start` an event can start in its calendar's zone: none for a timed
/// event, up to the span of the world's zones for an all-day one (stored from the earliest zone's midnight).
pub const ALL_DAY_SPREAD: Duration = Duration::hours(EARLIEST_OFFSET_HOURS + LATEST_OFFSET_HOURS);

/// The latest `range_end` stored: the last microsecond of year 9999. An all-day event on 9999-12-31 would
/// otherwise end in year 10000, which SQLite keeps as text (`+10000-...`) sorting before every other year,
/// so the window query would miss it there and find it on PostgreSQL. No window reaches past it (inputs
/// end in 9999), so clamping changes no answer.
fn latest_stored() -> DateTime<Utc> {
    // UNBOUNDED_END is 9999-12-31T00:00:00Z.
    recurrence::UNBOUNDED_END + Duration::days(1) - Duration::microseconds(1)
}

/// Reads Google's start, end or original start; `None` when it holds neither a parseable date nor a
/// parseable instant (a local time without a zone included).
pub fn time_from_google(value: &EventDateTime) -> Option<EventTime> {
    if value.date_time.is_some() {
        let time_zone = value.time_zone.clone().filter(|tz| !tz.trim().is_empty());
        return value
            .instant()
            .map(|instant| EventTime::DateTime { instant, time_zone });
    }
    value.naive_date().map(EventTime::Date)
}

/// Google's form of a time, for writes.
pub fn time_to_google(value: &EventTime) -> EventDateTime {
    match value {
        EventTime::Date(date) => EventDateTime::all_day(*date),
        EventTime::DateTime { instant, time_zone } => EventDateTime::at(*instant, time_zone.as_deref()),
    }
}

fn in_supported_years(time: &EventTime) -> bool {
    let year = match time {
        EventTime::Date(date) => date.year(),
        EventTime::DateTime { instant, .. } => instant.year(),
    };
    (1..=9999).contains(&year)
}

/// The first instant a time can mean in any zone (a date: the earliest zone's midnight).
fn earliest_instant(value: &EventTime) -> DateTime<Utc> {
    match value {
        EventTime::DateTime { instant, .. } => *instant,
        EventTime::Date(date) => utc_midnight(*date) - Duration::hours(EARLIEST_OFFSET_HOURS),
    }
}

/// The last instant a time can mean in any zone (a date: the latest zone's midnight).
fn latest_instant(value: &EventTime) -> DateTime<Utc> {
    match value {
        EventTime::DateTime { instant, .. } => *instant,
        EventTime::Date(date) => utc_midnight(*date) + Duration::hours(LATEST_OFFSET_HOURS),
    }
}

type TimeColumns = (Option<NaiveDate>, Option<DateTime<Utc>>, Option<String>);

fn to_columns(value: &EventTime) -> TimeColumns {
    match value {
        EventTime::Date(date) => (Some(*date), None, None),
        EventTime::DateTime { instant, time_zone } => (None, Some(*instant), time_zone.clone()),
    }
}

fn from_columns(
    date: Option<NaiveDate>,
    date_time: Option<DateTime<Utc>>,
    time_zone: Option<String>,
) -> Option<EventTime> {
    match (date_time, date) {
        (Some(instant), _) => Some(EventTime::DateTime { instant, time_zone }),
        (None, Some(date)) => Some(EventTime::Date(date)),
        (None, None) => None,
    }
}

fn utc_midnight(date: NaiveDate) -> DateTime<Utc> {
    date.and_time(NaiveTime::MIN).and_utc()
}

/// An event of the cache, decrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub id: Uuid,
    pub calendar_id: Uuid,
    pub google_event_id: String,
    pub i_cal_uid: Option<String>,
    pub summary: Option<String>,
    pub description: Option<String>,
    pub location: Option<String>,
    pub start: EventTime,
    pub end: EventTime,
    pub all_day: bool,
    /// RRULE / EXRULE / RDATE / EXDATE lines of a series master.
    pub recurrence: Option<Vec<String>>,
    /// Google id of the series master, on exceptions.
    pub recurring_event_id: Option<String>,
    pub original_start: Option<EventTime>,
    pub status: EventStatus,
    pub transparency: Option<String>,
    pub visibility: Option<String>,
    pub color_id: Option<String>,
    pub event_type: Option<String>,
    pub etag: Option<String>,
    pub google_updated: Option<DateTime<Utc>>,
    pub extended_private: BTreeMap<String, String>,
    pub extended_shared: BTreeMap<String, String>,
    pub mirror_config_id: Option<Uuid>,
    pub change_seq: i64,
    pub deleted_at: Option<DateTime<Utc>>,
    pub range_start: DateTime<Utc>,
    pub range_end: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl StoredEvent {
    pub fn is_series_master(&self) -> bool {
        self.recurrence.as_ref().is_some_and(|lines| !lines.is_empty())
    }

    /// An exception (changed or cancelled instance) of a series.
    pub fn is_exception(&self) -> bool {
        self.recurring_event_id.is_some() && self.original_start.is_some()
    }

    pub fn is_tombstone(&self) -> bool {
        self.deleted_at.is_some()
    }

    /// When the event last changed: Google's `updated`, else when the cache last wrote it.
    pub fn updated(&self) -> DateTime<Utc> {
        self.google_updated.unwrap_or(self.updated_at)
    }
}

/// Decrypts a row. A value that does not decrypt is an internal error (logged), never empty text.
pub fn decode(cipher: &Cipher, user_id: Uuid, row: &events::Model) -> AppResult<StoredEvent> {
    let text = |column: &'static str, value: Option<&Vec<u8>>| -> AppResult<Option<String>> {
        cipher
            .decrypt_opt_string(
                &Aad::new(user_id, TABLE, column, row.id),
                value.map(Vec::as_slice),
            )
            .map_err(|e| {
                tracing::error!(event_id = %row.id, column, error = %e, "event text does not decrypt");
                AppError::internal(anyhow::anyhow!("event {} {column}: {e}", row.id))
            })
    };
    let (start, end, original_start) = row_times(row)?;
    Ok(StoredEvent {
        id: row.id,
        calendar_id: row.calendar_id,
        google_event_id: row.google_event_id.clone(),
        i_cal_uid: row.i_cal_uid.clone(),
        summary: text("summary", row.summary.as_ref())?,
        description: text("description", row.description.as_ref())?,
        location: text("location", row.location.as_ref())?,
        start,
        end,
        all_day: row.all_day,
        recurrence: row_recurrence(row)?,
        recurring_event_id: row.recurring_event_id.clone(),
        original_start,
        status: row.status,
        transparency: row.transparency.clone(),
        visibility: row.visibility.clone(),
        color_id: row.color_id.clone(),
        event_type: row.event_type.clone(),
        etag: row.etag.clone(),
        google_updated: row.google_updated,
        extended_private: string_map(row.extended_private.as_ref()),
        extended_shared: string_map(row.extended_shared.as_ref()),
        mirror_config_id: row.mirror_config_id,
        change_seq: row.change_seq,
        deleted_at: row.deleted_at,
        range_start: row.range_start,
        range_end: row.range_end,
        updated_at: row.updated_at,
    })
}

/// The times of a row without decrypting anything: start, end and (on exceptions) original start.
pub fn row_times(row: &events::Model) -> AppResult<(EventTime, EventTime, Option<EventTime>)> {
    times_of(
        row.id,
        (row.start_date, row.start_date_time, row.start_time_zone.clone()),
        (row.end_date, row.end_date_time, row.end_time_zone.clone()),
        (
            row.original_start_date,
            row.original_start_date_time,
            row.original_start_time_zone.clone(),
        ),
    )
}

/// [`row_times`] of a narrow row.
pub fn timed_row_times(row: &TimedRow) -> AppResult<(EventTime, EventTime, Option<EventTime>)> {
    times_of(
        row.id,
        (row.start_date, row.start_date_time, row.start_time_zone.clone()),
        (row.end_date, row.end_date_time, row.end_time_zone.clone()),
        (
            row.original_start_date,
            row.original_start_date_time,
            row.original_start_time_zone.clone(),
        ),
    )
}

fn times_of(
    id: Uuid,
    start: TimeColumns,
    end: TimeColumns,
    original_start: TimeColumns,
) -> AppResult<(EventTime, EventTime, Option<EventTime>)> {
    let start = from_columns(start.0, start.1, start.2).ok_or_else(|| corrupt(id, "start"))?;
    let end = from_columns(end.0, end.1, end.2).ok_or_else(|| corrupt(id, "end"))?;
    let original_start = from_columns(original_start.0, original_start.1, original_start.2);
    Ok((start, end, original_start))
}

/// The recurrence lines of a series master (`None` on every other row).
pub fn row_recurrence(row: &events::Model) -> AppResult<Option<Vec<String>>> {
    recurrence_of(row.id, row.recurring_event_id.as_deref(), row.recurrence.as_ref())
}

/// [`row_recurrence`] of a narrow row.
pub fn timed_row_recurrence(row: &TimedRow) -> AppResult<Option<Vec<String>>> {
    recurrence_of(row.id, row.recurring_event_id.as_deref(), row.recurrence.as_ref())
}

fn recurrence_of(
    id: Uuid,
    recurring_event_id: Option<&str>,
    recurrence: Option<&serde_json::Value>,
) -> AppResult<Option<Vec<String>>> {
    if recurring_event_id.is_some() {
        return Ok(None);
    }
    let lines = recurrence
        .map(|json| serde_json::from_value::<Vec<String>>(json.clone()))
        .transpose()
        .map_err(|_| corrupt(id, "recurrence"))?;
    Ok(lines.filter(|lines| !lines.is_empty()))
}

/// The columns of an event row that place it in time and say whether it makes time busy, without the
/// encrypted texts: what window queries read of every row they consider (the full row is read for the
/// page alone).
#[derive(Debug, Clone, PartialEq, Eq, DerivePartialModel)]
#[sea_orm(entity = "events::Entity", from_query_result)]
pub struct TimedRow {
    pub id: Uuid,
    pub calendar_id: Uuid,
    pub google_event_id: String,
    pub start_date: Option<NaiveDate>,
    pub start_date_time: Option<DateTime<Utc>>,
    pub start_time_zone: Option<String>,
    pub end_date: Option<NaiveDate>,
    pub end_date_time: Option<DateTime<Utc>>,
    pub end_time_zone: Option<String>,
    pub recurrence: Option<serde_json::Value>,
    pub recurring_event_id: Option<String>,
    pub original_start_date: Option<NaiveDate>,
    pub original_start_date_time: Option<DateTime<Utc>>,
    pub original_start_time_zone: Option<String>,
    pub status: EventStatus,
    pub transparency: Option<String>,
    pub self_response_status: Option<String>,
    pub mirror_config_id: Option<Uuid>,
    /// Where the window query's index places the row: the earliest instant it can start.
    pub range_start: DateTime<Utc>,
}

impl From<&events::Model> for TimedRow {
    fn from(row: &events::Model) -> Self {
        Self {
            id: row.id,
            calendar_id: row.calendar_id,
            google_event_id: row.google_event_id.clone(),
            start_date: row.start_date,
            start_date_time: row.start_date_time,
            start_time_zone: row.start_time_zone.clone(),
            end_date: row.end_date,
            end_date_time: row.end_date_time,
            end_time_zone: row.end_time_zone.clone(),
            recurrence: row.recurrence.clone(),
            recurring_event_id: row.recurring_event_id.clone(),
            original_start_date: row.original_start_date,
            original_start_date_time: row.original_start_date_time,
            original_start_time_zone: row.original_start_time_zone.clone(),
            status: row.status,
            transparency: row.transparency.clone(),
            self_response_status: row.self_response_status.clone(),
            mirror_config_id: row.mirror_config_id,
            range_start: row.range_start,
        }
    }
}

fn corrupt(id: Uuid, column: &str) -> AppError {
    tracing::error!(event_id = %id, column, "event row is inconsistent");
    AppError::internal(anyhow::anyhow!("event {id}: unreadable {column}"))
}

fn string_map(json: Option<&serde_json::Value>) -> BTreeMap<String, String> {
    json.and_then(|v| v.as_object())
        .map(|object| {
            object
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// What [`upsert_from_google`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpsertOutcome {
    Inserted(Uuid),
    Updated(Uuid),
    /// The row became a tombstone.
    Tombstoned(Uuid),
    /// Google sent what the cache already holds, or an older version of it: nothing written, no
    /// `change_seq` taken.
    Unchanged(Uuid),
    /// Nothing to store: a cancellation of an event the cache never held, or an entry without readable
    /// times (logged).
    Ignored,
}

impl UpsertOutcome {
    /// The row, when there is one.
    pub fn row_id(self) -> Option<Uuid> {
        match self {
            Self::Inserted(id) | Self::Updated(id) | Self::Tombstoned(id) | Self::Unchanged(id) => Some(id),
            Self::Ignored => None,
        }
    }
}

/// What a Google entry means for the cache, read without the database.
#[derive(Debug, Clone, PartialEq)]
enum Incoming {
    /// A live event, series master or exception (possibly a cancelled exception).
    Live(Box<Fields>),
    /// The event is gone.
    Deleted,
}

#[derive(Debug, Clone, PartialEq)]
struct Fields {
    start: EventTime,
    end: EventTime,
    all_day: bool,
    range_start: DateTime<Utc>,
    range_end: DateTime<Utc>,
    recurrence: Option<Vec<String>>,
    recurring_event_id: Option<String>,
    original_start: Option<EventTime>,
    status: EventStatus,
}

fn read_status(raw: Option<&str>) -> EventStatus {
    match raw {
        Some("cancelled") => EventStatus::Cancelled,
        Some("tentative") => EventStatus::Tentative,
        _ => EventStatus::Confirmed,
    }
}

/// Reads the times and the kind of a Google entry. `Err` holds why a live entry cannot be stored.
fn interpret(event: &google::Event, calendar_time_zone: Option<&str>) -> Result<Incoming, &'static str> {
    let recurring_event_id = event.recurring_event_id.clone().filter(|id| !id.is_empty());
    let original_start = event.original_start_time.as_ref().and_then(time_from_google);
    let is_exception = recurring_event_id.is_some() && original_start.is_some();
    let status = read_status(event.status.as_deref());
    if status == EventStatus::Cancelled && !is_exception {
        return Ok(Incoming::Deleted);
    }
    let parsed_start = event.start.as_ref().and_then(time_from_google);
    let start = match (parsed_start, &original_start) {
        (Some(start), _) => start,
        // Cancelled exceptions usually carry only their original start: they occupy no time.
        (None, Some(original)) if status == EventStatus::Cancelled => original.clone(),
        _ => return Err("no readable start"),
    };
    let end = event
        .end
        .as_ref()
        .and_then(time_from_google)
        .filter(|end| end.is_all_day() == start.is_all_day())
        .unwrap_or_else(|| start.clone());
    // What clients may ask for is refused outside years 0001-9999, and SQLite cannot order instants past
    // them: such an entry is not stored, on either database.
    if ![Some(&start), Some(&end), original_start.as_ref()]
        .into_iter()
        .flatten()
        .all(in_supported_years)
    {
        return Err("a time outside the years 0001 to 9999 (UTC)");
    }
    let all_day = start.is_all_day();
    let recurrence = event
        .recurrence
        .clone()
        .filter(|lines| !lines.is_empty() && !is_exception);
    let (range_start, range_end) = match &recurrence {
        Some(lines) => series_range(&start, &end, lines, calendar_time_zone),
        None => (
            earliest_instant(&start),
            latest_instant(&end).max(earliest_instant(&start)),
        ),
    };
    Ok(Incoming::Live(Box::new(Fields {
        start,
        end,
        all_day,
        range_start,
        range_end: range_end.min(latest_stored()),
        recurrence,
        recurring_event_id: if is_exception { recurring_event_id } else { None },
        original_start: if is_exception { original_start } else { None },
        status,
    })))
}

/// Bounds of every instance of a series. Rules the expansion cannot read still get stored (Google accepted
/// them), with the widest range from their start: the window query then reports them instead of losing them.
fn series_range(
    start: &EventTime,
    end: &EventTime,
    lines: &[String],
    calendar_time_zone: Option<&str>,
) -> (DateTime<Utc>, DateTime<Utc>) {
    let series = Series {
        start,
        end,
        recurrence: lines,
    };
    recurrence::series_range(&series, calendar_time_zone).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "recurrence not understood; indexing the series as unbounded");
        (earliest_instant(start), recurrence::UNBOUNDED_END)
    })
}

/// Writes one event as Google sent it (from a listing, or the answer to a write) into the cache of
/// `calendar`, which must belong to `user_id`. Runs in its own transaction (a savepoint when `db` is one).
pub async fn upsert_from_google<C>(
    db: &C,
    cipher: &Cipher,
    user_id: Uuid,
    calendar: &calendars::Model,
    event: &google::Event,
) -> AppResult<UpsertOutcome>
where
    C: ConnectionTrait + TransactionTrait,
{
    // Unchanged entries cost one read and no write lock.
    if let Some(google_id) = event.id.as_deref().filter(|id| !id.is_empty())
        && let Ok(incoming) = interpret(event, calendar.time_zone.as_deref())
    {
        match find_row(db, calendar.id, google_id).await? {
            Some(row) if is_current(&row, event, &incoming) => return Ok(UpsertOutcome::Unchanged(row.id)),
            None if incoming == Incoming::Deleted => return Ok(UpsertOutcome::Ignored),
            _ => {}
        }
    }
    let txn = db.begin().await?;
    let outcome = upsert_batch(&txn, cipher, user_id, calendar, &[event]).await?;
    txn.commit().await?;
    Ok(outcome.into_iter().next().unwrap_or(UpsertOutcome::Ignored))
}

/// Writes events of `calendar` as Google sent them, in the caller's transaction, which must be one that
/// writes ([`crate::db::begin_write`]). The change sequence values are taken first, as one block: that
/// locks the user's counter, so concurrent writers of these events queue there and the rows read next
/// are current. Besides one write per changed event it costs three statements (the block, the cached
/// rows, the configs named by mirror markers), and, when something changed, the search index's rewrite
/// (one delete when rows that held entries changed, and one insert per thousand entries). Outcomes come
/// in the order of `listed`.
pub async fn upsert_batch<C: ConnectionTrait>(
    txn: &C,
    cipher: &Cipher,
    user_id: Uuid,
    calendar: &calendars::Model,
    listed: &[&google::Event],
) -> AppResult<Vec<UpsertOutcome>> {
    let cleaned: Vec<google::Event> = listed.iter().map(|event| cleaned_event(event)).collect();
    let listed: Vec<&google::Event> = cleaned.iter().collect();
    let readable: Vec<Option<(&str, Incoming)>> = listed
        .iter()
        .map(|event| {
            let Some(google_id) = event.id.as_deref().filter(|id| !id.is_empty()) else {
                tracing::warn!(calendar_id = %calendar.id, "Google event without an id ignored");
                return None;
            };
            if google_id.chars().any(text::is_forbidden) {
                tracing::warn!(calendar_id = %calendar.id, "Google event with a control character in its id ignored");
                return None;
            }
            match interpret(event, calendar.time_zone.as_deref()) {
                Ok(incoming) => Some((google_id, incoming)),
                Err(why) => {
                    tracing::warn!(calendar_id = %calendar.id, google_event_id = google_id, why, "Google event ignored");
                    None
                }
            }
        })
        .collect();
    let ids: Vec<&str> = readable.iter().flatten().map(|(id, _)| *id).collect();
    if ids.is_empty() {
        return Ok(vec![UpsertOutcome::Ignored; listed.len()]);
    }
    let mut change_seq = event_change_sequences::reserve(txn, user_id, ids.len()).await?;
    let mut cached = cached_rows(txn, calendar.id, ids).await?;
    let configs = mirror_configs(txn, user_id, &listed).await?;
    // New rows go in as multi-row inserts at the end, unless an id comes twice (then each entry must see
    // the row the one before it wrote).
    let distinct: HashSet<&str> = readable.iter().flatten().map(|(id, _)| *id).collect();
    let defer_inserts = distinct.len() == readable.iter().flatten().count();
    let mut new_rows = Vec::new();
    // Each written row's texts for the search index (the last entry of a row wins).
    let mut reindexed: HashMap<Uuid, search_index::Texts<'_>> = HashMap::new();
    // Rows this batch inserts: they have no index entries to replace.
    let mut inserted: HashSet<Uuid> = HashSet::new();

    let mut outcomes = Vec::with_capacity(listed.len());
    for (event, readable) in listed.iter().zip(readable) {
        let Some((google_id, incoming)) = readable else {
            outcomes.push(UpsertOutcome::Ignored);
            continue;
        };
        let seq = change_seq;
        change_seq += 1;
        let existing = cached.get(google_id);
        let (outcome, written) = match (existing, incoming) {
            (Some(row), incoming) if is_current(row, event, &incoming) => {
                (UpsertOutcome::Unchanged(row.id), None)
            }
            (None, Incoming::Deleted) => (UpsertOutcome::Ignored, None),
            (Some(row), Incoming::Deleted) => {
                let mut tombstone = tombstone_model(row.id, seq);
                tombstone.etag = Set(event.etag.clone().or_else(|| row.etag.clone()));
                tombstone.google_updated = Set(event.updated_at().or(row.google_updated));
                (
                    UpsertOutcome::Tombstoned(row.id),
                    Some(tombstone.update(txn).await?),
                )
            }
            (Some(row), Incoming::Live(fields)) => {
                let mirror_config_id = mirror_config_of(event, &configs);
                let mut model = live_model(cipher, user_id, row.id, event, &fields, mirror_config_id)?;
                model.id = Unchanged(row.id);
                model.calendar_id = Unchanged(row.calendar_id);
                model.google_event_id = Unchanged(row.google_event_id.clone());
                model.change_seq = Set(seq);
                (UpsertOutcome::Updated(row.id), Some(model.update(txn).await?))
            }
            (None, Incoming::Live(fields)) => {
                let id = Uuid::now_v7();
                let mirror_config_id = mirror_config_of(event, &configs);
                let mut model = live_model(cipher, user_id, id, event, &fields, mirror_config_id)?;
                model.id = Set(id);
                model.calendar_id = Set(calendar.id);
                model.google_event_id = Set(google_id.to_owned());
                model.change_seq = Set(seq);
                model.created_at = Set(Utc::now());
                inserted.insert(id);
                if defer_inserts {
                    new_rows.push(model);
                    (UpsertOutcome::Inserted(id), None)
                } else {
                    (UpsertOutcome::Inserted(id), Some(model.insert(txn).await?))
                }
            }
        };
        match outcome {
            UpsertOutcome::Inserted(id) | UpsertOutcome::Updated(id) => {
                let live = (event.status.as_deref() != Some("cancelled")).then_some([
                    event.summary.as_deref(),
                    event.description.as_deref(),
                    event.location.as_deref(),
                ]);
                reindexed.insert(id, live);
            }
            UpsertOutcome::Tombstoned(id) => {
                reindexed.insert(id, None);
            }
            UpsertOutcome::Unchanged(_) | UpsertOutcome::Ignored => {}
        }
        // A later entry for the same id in this batch compares with what was just written.
        if let Some(row) = written {
            cached.insert(row.google_event_id.clone(), row);
        }
        outcomes.push(outcome);
    }
    while !new_rows.is_empty() {
        let rest = new_rows.split_off(new_rows.len().min(INSERT_ROWS));
        events::Entity::insert_many(std::mem::replace(&mut new_rows, rest))
            .exec_without_returning(txn)
            .await?;
    }
    let reindexed: Vec<(Uuid, search_index::Texts<'_>)> = reindexed.into_iter().collect();
    search_index::reindex(txn, cipher, user_id, &reindexed, &inserted).await?;
    Ok(outcomes)
}

/// `event` with the characters plain text may not hold removed from every string the cache stores (the
/// id aside: an id holding one is refused by the caller).
fn cleaned_event(event: &google::Event) -> google::Event {
    let clean = |value: &Option<String>| value.as_deref().map(text::cleaned);
    let clean_time = |time: &Option<EventDateTime>| {
        time.as_ref().map(|time| EventDateTime {
            date: clean(&time.date),
            date_time: clean(&time.date_time),
            time_zone: clean(&time.time_zone),
        })
    };
    let clean_map = |map: &BTreeMap<String, String>| {
        map.iter()
            .map(|(key, value)| (text::cleaned(key), text::cleaned(value)))
            .collect()
    };
    let mut event = event.clone();
    event.status = clean(&event.status);
    event.etag = clean(&event.etag);
    event.updated = clean(&event.updated);
    event.summary = clean(&event.summary);
    event.description = clean(&event.description);
    event.location = clean(&event.location);
    event.start = clean_time(&event.start);
    event.end = clean_time(&event.end);
    event.original_start_time = clean_time(&event.original_start_time);
    event.recurrence = event
        .recurrence
        .as_ref()
        .map(|lines| lines.iter().map(|line| text::cleaned(line)).collect());
    event.recurring_event_id = clean(&event.recurring_event_id);
    event.transparency = clean(&event.transparency);
    event.visibility = clean(&event.visibility);
    event.color_id = clean(&event.color_id);
    event.ical_uid = clean(&event.ical_uid);
    event.event_type = clean(&event.event_type);
    if let Some(properties) = &mut event.extended_properties {
        properties.private = clean_map(&properties.private);
        properties.shared = clean_map(&properties.shared);
    }
    event
}

/// Rows per multi-row insert: well under SQLite's and PostgreSQL's bound-parameter limits.
const INSERT_ROWS: usize = 200;

/// Events of a listing applied per transaction by [`upsert_listing`].
const LISTING_CHUNK: usize = 250;

/// Writes a listing's events into the cache of `calendar`, as [`upsert_from_google`] would one by one,
/// with fewer round trips: the cached rows of each chunk are read in one query, entries the cache already
/// holds cost nothing more, and the rest of the chunk is written in one transaction.
pub async fn upsert_listing(
    db: &DatabaseConnection,
    cipher: &Cipher,
    user_id: Uuid,
    calendar: &calendars::Model,
    listed: &[google::Event],
) -> AppResult<Vec<UpsertOutcome>> {
    let mut outcomes = Vec::with_capacity(listed.len());
    for chunk in listed.chunks(LISTING_CHUNK) {
        let ids: Vec<&str> = chunk.iter().filter_map(|e| e.id.as_deref()).collect();
        let cached = cached_rows(db, calendar.id, ids).await?;
        let mut changed = Vec::new();
        for event in chunk {
            let current = event.id.as_deref().and_then(|id| cached.get(id)).filter(|row| {
                interpret(event, calendar.time_zone.as_deref())
                    .is_ok_and(|incoming| is_current(row, event, &incoming))
            });
            match current {
                Some(row) => outcomes.push(UpsertOutcome::Unchanged(row.id)),
                None => changed.push(event),
            }
        }
        if changed.is_empty() {
            continue;
        }
        let txn = crate::db::begin_write(db).await?;
        outcomes.extend(upsert_batch(&txn, cipher, user_id, calendar, &changed).await?);
        txn.commit().await?;
    }
    Ok(outcomes)
}

/// The cached rows of `calendar_id` among the Google ids, by Google id: one lookup of the
/// `(calendar_id, google_event_id)` key per id, so the cost follows the ids asked for, not the calendar.
///
/// SQLite plans the `IN` list that way. PostgreSQL, while a table has no statistics yet (a new database,
/// a table that grew since autovacuum last analyzed it), guesses that a calendar holds a handful of rows
/// and reads all of them to filter the list; there each id is looked up in a lateral subquery (its
/// `LIMIT 1`, harmless on a unique key, keeps the planner from folding it back into a join), which
/// leaves one plan: a probe of the unique key per id.
async fn cached_rows<C: ConnectionTrait>(
    db: &C,
    calendar_id: Uuid,
    google_ids: Vec<&str>,
) -> AppResult<HashMap<String, events::Model>> {
    if google_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = match db.get_database_backend() {
        DbBackend::Postgres => {
            let wanted: Vec<String> = (0..google_ids.len()).map(|n| format!("(${})", n + 2)).collect();
            let sql = format!(
                "SELECT cached.* FROM (VALUES {}) AS wanted (google_event_id) CROSS JOIN LATERAL \
                 (SELECT * FROM events WHERE events.calendar_id = $1 \
                  AND events.google_event_id = wanted.google_event_id LIMIT 1) AS cached",
                wanted.join(", ")
            );
            let values = std::iter::once(calendar_id.into()).chain(google_ids.into_iter().map(Into::into));
            events::Entity::find()
                .from_raw_sql(Statement::from_sql_and_values(DbBackend::Postgres, sql, values))
                .all(db)
                .await?
        }
        _ => {
            events::Entity::find()
                .filter(events::Column::CalendarId.eq(calendar_id))
                .filter(events::Column::GoogleEventId.is_in(google_ids))
                .all(db)
                .await?
        }
    };
    Ok(rows
        .into_iter()
        .map(|row| (row.google_event_id.clone(), row))
        .collect())
}

async fn find_row<C: ConnectionTrait>(
    db: &C,
    calendar_id: Uuid,
    google_id: &str,
) -> AppResult<Option<events::Model>> {
    Ok(events::Entity::find()
        .filter(events::Column::CalendarId.eq(calendar_id))
        .filter(events::Column::GoogleEventId.eq(google_id))
        .one(db)
        .await?)
}

/// Whether the cache already holds `event` or something newer, so writing it would change nothing or go
/// back in time. A listing taken before one of our own writes can arrive after it: Google's `updated`
/// only grows, and a tombstone keeps the etag of the version that was deleted.
fn is_current(row: &events::Model, event: &google::Event, incoming: &Incoming) -> bool {
    let incoming_updated = event.updated_at();
    let older = matches!((incoming_updated, row.google_updated), (Some(new), Some(held)) if new < held);
    match incoming {
        // A deletion of what is already a tombstone (for example after our own delete).
        Incoming::Deleted => row.deleted_at.is_some() || older,
        Incoming::Live(fields) => {
            let same_version = row.etag.is_some() && row.etag == event.etag;
            let identical = row.deleted_at.is_none()
                && row.status == fields.status
                && same_version
                && row.google_updated == incoming_updated;
            let deleted_version = row.deleted_at.is_some() && same_version;
            identical || deleted_version || older
        }
    }
}

fn marker_of(event: &google::Event) -> Option<Uuid> {
    event
        .private_property(MIRROR_MARKER_KEY)
        .and_then(|raw| Uuid::parse_str(raw.trim()).ok())
}

/// The sync configs named by the events' mirror markers that exist and belong to `user_id`.
async fn mirror_configs<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    listed: &[&google::Event],
) -> AppResult<HashSet<Uuid>> {
    let named: HashSet<Uuid> = listed.iter().filter_map(|event| marker_of(event)).collect();
    if named.is_empty() {
        return Ok(HashSet::new());
    }
    let found: Vec<Uuid> = sync_configs::Entity::find()
        .filter(sync_configs::Column::Id.is_in(named))
        .filter(sync_configs::Column::UserId.eq(user_id))
        .select_only()
        .column(sync_configs::Column::Id)
        .into_tuple()
        .all(db)
        .await?;
    Ok(found.into_iter().collect())
}

fn mirror_config_of(event: &google::Event, configs: &HashSet<Uuid>) -> Option<Uuid> {
    marker_of(event).filter(|id| configs.contains(id))
}

/// Every column of a live row except the key, `change_seq` and `created_at`.
fn live_model(
    cipher: &Cipher,
    user_id: Uuid,
    row_id: Uuid,
    event: &google::Event,
    fields: &Fields,
    mirror_config_id: Option<Uuid>,
) -> AppResult<events::ActiveModel> {
    let encrypt = |column: &'static str, value: Option<&String>| -> AppResult<Option<Vec<u8>>> {
        cipher
            .encrypt_opt_str(
                &Aad::new(user_id, TABLE, column, row_id),
                value.map(String::as_str),
            )
            .map_err(|e| AppError::internal(anyhow::anyhow!("encrypting event {column}: {e}")))
    };
    let (start_date, start_date_time, start_time_zone) = to_columns(&fields.start);
    let (end_date, end_date_time, end_time_zone) = to_columns(&fields.end);
    let (original_start_date, original_start_date_time, original_start_time_zone) =
        fields.original_start.as_ref().map(to_columns).unwrap_or_default();
    let properties = event.extended_properties.clone().unwrap_or_default();
    let json_map = |map: BTreeMap<String, String>| {
        (!map.is_empty())
            .then(|| serde_json::Value::Object(map.into_iter().map(|(k, v)| (k, v.into())).collect()))
    };
    Ok(events::ActiveModel {
        i_cal_uid: Set(event.ical_uid.clone()),
        summary: Set(encrypt("summary", event.summary.as_ref())?),
        description: Set(encrypt("description", event.description.as_ref())?),
        location: Set(encrypt("location", event.location.as_ref())?),
        start_date: Set(start_date),
        start_date_time: Set(start_date_time),
        start_time_zone: Set(start_time_zone),
        end_date: Set(end_date),
        end_date_time: Set(end_date_time),
        end_time_zone: Set(end_time_zone),
        all_day: Set(fields.all_day),
        range_start: Set(fields.range_start),
        range_end: Set(fields.range_end),
        long_span: Set(fields.range_end - fields.range_start > events::LONG_SPAN),
        recurrence: Set(fields.recurrence.as_ref().map(|lines| serde_json::json!(lines))),
        recurring_event_id: Set(fields.recurring_event_id.clone()),
        original_start_date: Set(original_start_date),
        original_start_date_time: Set(original_start_date_time),
        original_start_time_zone: Set(original_start_time_zone),
        status: Set(fields.status),
        transparency: Set(event.transparency.clone()),
        visibility: Set(event.visibility.clone()),
        color_id: Set(event.color_id.clone()),
        event_type: Set(event.event_type.clone()),
        etag: Set(event.etag.clone()),
        google_updated: Set(event.updated_at()),
        extended_private: Set(json_map(properties.private)),
        extended_shared: Set(json_map(properties.shared)),
        self_response_status: Set(self_response(event)),
        mirror_config_id: Set(mirror_config_id),
        deleted_at: Set(None),
        updated_at: Set(Utc::now()),
        ..Default::default()
    })
}

/// Google's answers to an invitation.
const RESPONSES: [&str; 4] = ["needsAction", "declined", "tentative", "accepted"];

/// The user's own answer to the invitation: the `responseStatus` of the attendee Google marks `self`
/// (the calendar's owner), when it is one of Google's values. `None` when the user is not an attendee.
fn self_response(event: &google::Event) -> Option<String> {
    event
        .attendees
        .as_ref()?
        .as_array()?
        .iter()
        .find(|attendee| attendee.get("self").and_then(serde_json::Value::as_bool) == Some(true))?
        .get("responseStatus")?
        .as_str()
        .filter(|status| RESPONSES.contains(status))
        .map(str::to_owned)
}

/// The columns that turn a row into a tombstone (texts and times are kept for the sync domain's
/// bookkeeping; the delta feed shows tombstones without them).
fn tombstone_model(row_id: Uuid, change_seq: i64) -> events::ActiveModel {
    let now = Utc::now();
    events::ActiveModel {
        id: Unchanged(row_id),
        status: Set(EventStatus::Cancelled),
        change_seq: Set(change_seq),
        deleted_at: Set(Some(now)),
        updated_at: Set(now),
        ..Default::default()
    }
}

/// Tombstones one row of `calendar_id`, a calendar of `user_id`, (after a delete at Google) unless it is
/// one already; with `with_exceptions`, also the exceptions of the series it is the master of. Returns how
/// many rows changed.
pub async fn tombstone<C>(
    db: &C,
    user_id: Uuid,
    calendar_id: Uuid,
    row_id: Uuid,
    with_exceptions: bool,
) -> AppResult<u64>
where
    C: ConnectionTrait + TransactionTrait,
{
    let Some(row) = events::Entity::find_by_id(row_id)
        .filter(events::Column::CalendarId.eq(calendar_id))
        .one(db)
        .await?
    else {
        return Ok(0);
    };
    let mut ids = vec![row.id];
    if with_exceptions {
        let exceptions: Vec<Uuid> = events::Entity::find()
            .select_only()
            .column(events::Column::Id)
            .filter(events::Column::CalendarId.eq(calendar_id))
            .filter(events::Column::RecurringEventId.eq(row.google_event_id))
            .filter(events::Column::DeletedAt.is_null())
            .into_tuple()
            .all(db)
            .await?;
        ids.extend(exceptions);
    }
    tombstone_ids(db, user_id, &ids).await
}

/// After a FULL listing of a calendar of `user_id` (for example after a 410): tombstones the live events
/// of the calendar whose Google id was not seen. Merges, never wipes: rows are kept as tombstones, and nothing
/// outside `events` (sync links, todos) is touched. Returns how many rows were tombstoned.
pub async fn tombstone_missing<C>(
    db: &C,
    user_id: Uuid,
    calendar_id: Uuid,
    seen_google_ids: &HashSet<String>,
) -> AppResult<u64>
where
    C: ConnectionTrait + TransactionTrait,
{
    let live: Vec<(Uuid, String)> = events::Entity::find()
        .select_only()
        .column(events::Column::Id)
        .column(events::Column::GoogleEventId)
        .filter(events::Column::CalendarId.eq(calendar_id))
        .filter(events::Column::DeletedAt.is_null())
        .into_tuple()
        .all(db)
        .await?;
    let missing: Vec<Uuid> = live
        .into_iter()
        .filter(|(_, google_id)| !seen_google_ids.contains(google_id))
        .map(|(id, _)| id)
        .collect();
    tombstone_ids(db, user_id, &missing).await
}

/// Tombstones the rows among `ids` (rows of `user_id`) that are live, in one transaction.
async fn tombstone_ids<C>(db: &C, user_id: Uuid, ids: &[Uuid]) -> AppResult<u64>
where
    C: ConnectionTrait + TransactionTrait,
{
    if ids.is_empty() {
        return Ok(0);
    }
    let txn = db.begin().await?;
    // Each tombstone takes its own value: a feed page may end between any two changes. A value taken for
    // a row that turned out to be a tombstone already is a harmless gap in the sequence.
    let first = event_change_sequences::reserve(&txn, user_id, ids.len()).await?;
    let mut count = 0;
    for (change_seq, id) in (first..).zip(ids) {
        let result = events::Entity::update_many()
            .set(tombstone_model(*id, change_seq))
            .filter(events::Column::Id.eq(*id))
            .filter(events::Column::DeletedAt.is_null())
            .exec(&txn)
            .await?;
        count += result.rows_affected;
    }
    // A tombstone is not searchable.
    search_index::forget(&txn, ids).await?;
    txn.commit().await?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timed(raw: &str, tz: Option<&str>) -> EventDateTime {
        EventDateTime {
            date_time: Some(raw.into()),
            time_zone: tz.map(str::to_owned),
            ..EventDateTime::default()
        }
    }

    fn day(raw: &str) -> EventDateTime {
        EventDateTime {
            date: Some(raw.into()),
            ..EventDateTime::default()
        }
    }

    fn at(raw: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(raw).unwrap().with_timezone(&Utc)
    }

    fn instant(raw: &str, tz: Option<&str>) -> EventTime {
        EventTime::DateTime {
            instant: at(raw),
            time_zone: tz.map(str::to_owned),
        }
    }

    fn live(event: &google::Event) -> Fields {
        match interpret(event, None).unwrap() {
            Incoming::Live(fields) => *fields,
            Incoming::Deleted => panic!("expected a live event"),
        }
    }

    #[test]
    fn timed_events_keep_their_instants_and_zone() {
        let fields = live(&google::Event {
            id: Some("e1".into()),
            start: Some(timed("2026-03-08T01:30:00-08:00", Some("America/Los_Angeles"))),
            end: Some(timed("2026-03-08T03:30:00-07:00", Some("America/Los_Angeles"))),
            ..google::Event::default()
        });
        assert_eq!(
            fields.start,
            instant("2026-03-08T09:30:00Z", Some("America/Los_Angeles"))
        );
        assert_eq!(
            fields.end,
            instant("2026-03-08T10:30:00Z", Some("America/Los_Angeles"))
        );
        assert!(!fields.all_day);
        assert_eq!(fields.range_start, at("2026-03-08T09:30:00Z"));
        assert_eq!(fields.range_end, at("2026-03-08T10:30:00Z"));
        assert_eq!(fields.status, EventStatus::Confirmed);
    }

    #[test]
    fn all_day_ranges_cover_every_zone() {
        let fields = live(&google::Event {
            start: Some(day("2026-07-01")),
            end: Some(day("2026-07-02")),
            ..google::Event::default()
        });
        assert!(fields.all_day);
        assert_eq!(
            fields.start,
            EventTime::Date(NaiveDate::from_ymd_opt(2026, 7, 1).unwrap())
        );
        // Kiribati (+14) starts the day first, Baker Island (-12) ends it last.
        assert_eq!(fields.range_start, at("2026-06-30T10:00:00Z"));
        assert_eq!(fields.range_end, at("2026-07-02T12:00:00Z"));
    }

    #[test]
    fn cancellations_delete_except_for_exceptions_of_a_series() {
        let gone = google::Event {
            id: Some("e1".into()),
            status: Some("cancelled".into()),
            ..google::Event::default()
        };
        assert_eq!(interpret(&gone, None), Ok(Incoming::Deleted));
        let cancelled_instance = google::Event {
            id: Some("s1_20260302T170000Z".into()),
            status: Some("cancelled".into()),
            recurring_event_id: Some("s1".into()),
            original_start_time: Some(timed("2026-03-02T17:00:00Z", Some("Europe/Berlin"))),
            ..google::Event::default()
        };
        let fields = live(&cancelled_instance);
        assert_eq!(fields.status, EventStatus::Cancelled);
        assert_eq!(fields.recurring_event_id.as_deref(), Some("s1"));
        assert_eq!(fields.original_start, Some(fields.start.clone()));
        assert_eq!(
            fields.start,
            instant("2026-03-02T17:00:00Z", Some("Europe/Berlin"))
        );
    }

    #[test]
    fn series_masters_reach_far_ahead_and_exceptions_keep_no_rules() {
        let master = live(&google::Event {
            start: Some(timed("2026-03-02T09:00:00", Some("Europe/Berlin"))),
            end: Some(timed("2026-03-02T10:00:00", Some("Europe/Berlin"))),
            recurrence: Some(vec!["RRULE:FREQ=WEEKLY".into()]),
            ..google::Event::default()
        });
        assert_eq!(master.range_start, at("2026-03-02T08:00:00Z"));
        assert_eq!(master.range_end, recurrence::UNBOUNDED_END);
        assert_eq!(
            master.recurrence.as_deref(),
            Some(&["RRULE:FREQ=WEEKLY".to_owned()][..])
        );
    }

    #[test]
    fn unreadable_times_are_refused_not_invented() {
        let event = google::Event {
            id: Some("e1".into()),
            start: Some(timed("soon", None)),
            ..google::Event::default()
        };
        assert!(interpret(&event, None).is_err());
        let no_zone = google::Event {
            start: Some(timed("2026-03-02T09:00:00", None)),
            ..google::Event::default()
        };
        assert!(interpret(&no_zone, None).is_err());
    }

    #[test]
    fn a_missing_or_mismatched_end_is_the_start() {
        let fields = live(&google::Event {
            start: Some(timed("2026-03-02T09:00:00Z", None)),
            end: Some(day("2026-03-03")),
            ..google::Event::default()
        });
        assert_eq!(fields.end, fields.start);
    }

    #[test]
    fn the_self_attendee_gives_the_response() {
        let with = |attendees: serde_json::Value| google::Event {
            attendees: Some(attendees),
            ..google::Event::default()
        };
        let declined = with(serde_json::json!([
            {"email": "boss@example.com", "responseStatus": "accepted", "organizer": true},
            {"email": "me@example.com", "self": true, "responseStatus": "declined"},
        ]));
        assert_eq!(self_response(&declined).as_deref(), Some("declined"));
        // Others' answers, a `self` that is not true, and values Google does not send are not the user's.
        for attendees in [
            serde_json::json!([{"email": "boss@example.com", "responseStatus": "declined"}]),
            serde_json::json!([{"email": "me@example.com", "self": false, "responseStatus": "declined"}]),
            serde_json::json!([{"email": "me@example.com", "self": true, "responseStatus": "maybe"}]),
            serde_json::json!([{"email": "me@example.com", "self": true}]),
            serde_json::json!({"email": "me@example.com", "self": true, "responseStatus": "declined"}),
        ] {
            assert_eq!(self_response(&with(attendees.clone())), None, "{attendees}");
        }
        assert_eq!(self_response(&google::Event::default()), None);
    }

    #[test]
    fn event_times_round_trip_through_google_and_columns() {
        let values = [
            EventTime::Date(NaiveDate::from_ymd_opt(2026, 1, 31).unwrap()),
            instant("2026-01-31T23:15:00Z", Some("Australia/Brisbane")),
        ];
        for value in values {
            assert_eq!(time_from_google(&time_to_google(&value)), Some(value.clone()));
            let (date, date_time, tz) = to_columns(&value);
            assert_eq!(from_columns(date, date_time, tz), Some(value));
        }
    }
}
