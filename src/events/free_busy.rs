//! Free/busy: when the user is busy across their calendars, and the free slots of their working hours.
//!
//! Busy time is read from the cache only, through [`window::occupied`]: the same rows, series
//! expansion, exceptions and all-day reading (in the calendar's zone) as the `events` query. An event is
//! busy unless it is `transparent`, cancelled, or an invitation the user declined (their own attendee
//! entry, the one Google marks `self`, says `declined`). A copy written by one of the user's sync
//! configs is left out when the calendar it copies from is among those asked about: the original counts,
//! once (an all-day copy in a calendar of another zone would otherwise cover other hours, and a copy not
//! yet moved with its original would add time the user is not busy).
//!
//! [`merge`], [`working_blocks`] and [`free_slots`] are pure and hold the rules; [`busy`] and [`slots`]
//! read the cache.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Datelike as _, NaiveTime, TimeDelta, Utc, Weekday};
use chrono_tz::Tz;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, JoinType, QueryFilter, QueryOrder, QuerySelect, RelationTrait,
};
use uuid::Uuid;

use super::{
    lookup::user_calendars,
    recurrence::{Window, localize},
    store::TimedRow,
    validate,
    window::{self, Occupied},
};
use crate::{
    entities::{calendars, enums::EventStatus, google_accounts, sync_configs},
    error::{AppError, AppResult},
    work_budget::WorkBudget,
};

/// The longest slot a client may ask for, in minutes: a day.
pub const MAX_DURATION_MINUTES: i32 = 1440;

/// A stretch of time, `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Interval {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Interval {
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Self {
        Self { start, end }
    }

    fn length(&self) -> TimeDelta {
        self.end - self.start
    }
}

/// The union of the intervals, sorted, as few intervals as possible: no two overlap or touch (one that
/// ends when the next starts is joined to it). Empty intervals cover nothing and are dropped.
pub fn merge(mut intervals: Vec<Interval>) -> Vec<Interval> {
    intervals.retain(|interval| interval.start < interval.end);
    intervals.sort_unstable();
    let mut merged: Vec<Interval> = Vec::with_capacity(intervals.len());
    for interval in intervals {
        match merged.last_mut() {
            Some(last) if interval.start <= last.end => last.end = last.end.max(interval.end),
            _ => merged.push(interval),
        }
    }
    merged
}

/// Working hours: from `start` to `end` local time on each of `weekdays`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkingHours {
    start: NaiveTime,
    end: NaiveTime,
    /// Indexed by days from Monday.
    weekdays: [bool; 7],
}

impl Default for WorkingHours {
    /// 09:00 to 17:00, Monday to Friday.
    fn default() -> Self {
        Self {
            start: NaiveTime::from_hms_opt(9, 0, 0).unwrap_or(NaiveTime::MIN),
            end: NaiveTime::from_hms_opt(17, 0, 0).unwrap_or(NaiveTime::MIN),
            weekdays: [true, true, true, true, true, false, false],
        }
    }
}

impl WorkingHours {
    /// Reads `"HH:MM"` times (00:00 to 23:59; `start` before `end`) and ISO weekdays (1 = Monday to
    /// 7 = Sunday; absent: Monday to Friday).
    pub fn parse(start: &str, end: &str, weekdays: Option<&[i32]>) -> AppResult<Self> {
        let start = parse_clock("workingHours.start", start)?;
        let end = parse_clock("workingHours.end", end)?;
        if start >= end {
            return Err(AppError::bad_input(
                "workingHours.end",
                "must be after workingHours.start (working hours end on the day they start)",
            ));
        }
        let weekdays = match weekdays {
            None => Self::default().weekdays,
            Some(days) => {
                if days.is_empty() {
                    return Err(AppError::bad_input(
                        "workingHours.weekdays",
                        "name at least one weekday",
                    ));
                }
                let mut set = [false; 7];
                for day in days {
                    let index = usize::try_from(*day - 1)
                        .ok()
                        .filter(|index| *index < 7)
                        .ok_or_else(|| {
                            AppError::bad_input(
                                "workingHours.weekdays",
                                "weekdays are 1 (Monday) to 7 (Sunday)",
                            )
                        })?;
                    set[index] = true;
                }
                set
            }
        };
        Ok(Self { start, end, weekdays })
    }

    fn includes(&self, day: Weekday) -> bool {
        self.weekdays[day.num_days_from_monday() as usize]
    }
}

/// `"HH:MM"`, two digits each, 00:00 to 23:59.
fn parse_clock(field: &str, raw: &str) -> AppResult<NaiveTime> {
    let invalid = || AppError::bad_input(field, "must be a time of day as HH:MM, 00:00 to 23:59");
    let bytes = raw.as_bytes();
    if bytes.len() != 5 || bytes[2] != b':' {
        return Err(invalid());
    }
    let number = |digits: &[u8]| -> Option<u32> {
        digits
            .iter()
            .all(u8::is_ascii_digit)
            .then(|| digits.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
    };
    let (Some(hours), Some(minutes)) = (number(&bytes[..2]), number(&bytes[3..])) else {
        return Err(invalid());
    };
    NaiveTime::from_hms_opt(hours, minutes, 0).ok_or_else(invalid)
}

/// The working-hours blocks in `zone` that overlap the window, cut to it, in order. Each day's block
/// runs from its local start to its local end, so across a DST change the blocks stay at the same local
/// hours and their UTC instants move. A local time that does not exist that day (in a spring-forward
/// gap) is read with the offset from before the gap, as series expansion does.
pub fn working_blocks(hours: &WorkingHours, zone: Tz, window: Window) -> Vec<Interval> {
    let first = window.time_min.with_timezone(&zone).date_naive();
    let last = window.time_max.with_timezone(&zone).date_naive();
    let mut blocks = Vec::new();
    let mut day = first.pred_opt().unwrap_or(first);
    while day <= last {
        if hours.includes(day.weekday()) {
            let start = localize(day.and_time(hours.start), zone).max(window.time_min);
            let end = localize(day.and_time(hours.end), zone).min(window.time_max);
            if start < end {
                blocks.push(Interval::new(start, end));
            }
        }
        let Some(next) = day.succ_opt() else {
            break;
        };
        day = next;
    }
    blocks
}

/// The free slots: within each block, every maximal interval that no busy interval overlaps, when it
/// lasts at least `duration`; in order. A free stretch that crosses from one block into the next is two
/// slots (one per block): blocks are separate working days.
pub fn free_slots(busy: &[Interval], blocks: &[Interval], duration: TimeDelta) -> Vec<Interval> {
    let busy = merge(busy.to_vec());
    let mut slots = Vec::new();
    let mut push = |slot: Interval| {
        if slot.length() >= duration && slot.start < slot.end {
            slots.push(slot);
        }
    };
    for block in blocks {
        let mut free_from = block.start;
        // The busy intervals are sorted and disjoint: those ending after the block's start, in order.
        let first = busy.partition_point(|interval| interval.end <= block.start);
        for interval in busy[first..]
            .iter()
            .take_while(|interval| interval.start < block.end)
        {
            if interval.start > free_from {
                push(Interval::new(free_from, interval.start));
            }
            free_from = free_from.max(interval.end);
        }
        if free_from < block.end {
            push(Interval::new(free_from, block.end));
        }
    }
    slots
}

/// Whether an event makes its time busy: confirmed or tentative, opaque (the default), and not an
/// invitation the user declined. For an instance of a series this is asked of its master.
pub fn shows_busy(row: &TimedRow) -> bool {
    row.status != EventStatus::Cancelled
        && row.transparency.as_deref() != Some("transparent")
        && row.self_response_status.as_deref() != Some("declined")
}

/// Whether `row` is a copy written by one of the user's sync configs (`configs`: id -> the two
/// calendars it joins) whose original lives in one of the `selected` calendars: the calendar on the
/// config's other side.
fn copies_selected(row: &TimedRow, configs: &HashMap<Uuid, (Uuid, Uuid)>, selected: &HashSet<Uuid>) -> bool {
    let Some((source, destination)) = row.mirror_config_id.and_then(|id| configs.get(&id)) else {
        return false;
    };
    let origin = if row.calendar_id == *source {
        *destination
    } else {
        *source
    };
    selected.contains(&origin)
}

/// Checks the window of a free/busy query: `timeMax` after `timeMin`, at most the `events` query's
/// longest window ([`window::MAX_WINDOW`], 367 days).
pub fn window(time_min: DateTime<Utc>, time_max: DateTime<Utc>) -> AppResult<Window> {
    window::window(time_min, time_max)
}

/// `durationMinutes`: 1 to [`MAX_DURATION_MINUTES`].
pub fn duration(minutes: i32) -> AppResult<TimeDelta> {
    if !(1..=MAX_DURATION_MINUTES).contains(&minutes) {
        return Err(AppError::bad_input(
            "durationMinutes",
            format!("must be between 1 and {MAX_DURATION_MINUTES}"),
        ));
    }
    Ok(TimeDelta::minutes(i64::from(minutes)))
}

/// `timeZone`: an IANA zone.
pub fn time_zone(raw: &str) -> AppResult<Tz> {
    validate::time_zone("timeZone", raw)?;
    raw.parse()
        .map_err(|_| AppError::bad_input("timeZone", "must be an IANA time zone such as Europe/Berlin"))
}

/// The calendars a query reads: exactly those of `ids` (any unknown or another user's is NOT_FOUND),
/// else every calendar of the user that counts for free/busy.
async fn selected_calendars<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    ids: Option<&[Uuid]>,
) -> AppResult<Vec<calendars::Model>> {
    let mut found = user_calendars(db, user_id, ids).await?;
    if ids.is_none() {
        found.retain(calendars::Model::includes_in_free_busy);
    }
    Ok(found)
}

/// The user's busy time in the window, merged (sorted, disjoint) and cut to the window: of the calendars
/// `calendar_ids`, else of every calendar that counts for free/busy. Series expansion spends from
/// `budget` as the `events` query does.
pub async fn busy<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    calendar_ids: Option<&[Uuid]>,
    window: Window,
    budget: &WorkBudget,
) -> AppResult<Vec<Interval>> {
    let calendars = selected_calendars(db, user_id, calendar_ids).await?;
    let Occupied { rows, found } = window::occupied(db, &calendars, window, budget).await?;
    let selected: HashSet<Uuid> = calendars.iter().map(|calendar| calendar.id).collect();
    let configs = mirror_configs(db, user_id, &rows).await?;
    let intervals = found
        .iter()
        .filter(|found| {
            let row = &rows[found.row];
            shows_busy(row) && !copies_selected(row, &configs, &selected)
        })
        .map(|found| Interval::new(found.start.max(window.time_min), found.end.min(window.time_max)))
        .collect();
    Ok(merge(intervals))
}

/// The user's sync configs named by the rows' mirror markers: id -> (source, destination) calendar.
async fn mirror_configs<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    rows: &[TimedRow],
) -> AppResult<HashMap<Uuid, (Uuid, Uuid)>> {
    let named: HashSet<Uuid> = rows.iter().filter_map(|row| row.mirror_config_id).collect();
    if named.is_empty() {
        return Ok(HashMap::new());
    }
    let found: Vec<(Uuid, Uuid, Uuid)> = sync_configs::Entity::find()
        .select_only()
        .column(sync_configs::Column::Id)
        .column(sync_configs::Column::SourceCalendarId)
        .column(sync_configs::Column::DestinationCalendarId)
        .filter(sync_configs::Column::Id.is_in(named))
        .filter(sync_configs::Column::UserId.eq(user_id))
        .into_tuple()
        .all(db)
        .await?;
    Ok(found
        .into_iter()
        .map(|(id, source, destination)| (id, (source, destination)))
        .collect())
}

/// What a free-slot query asks.
#[derive(Debug, Clone, Copy)]
pub struct SlotQuery {
    pub duration: TimeDelta,
    pub window: Window,
    pub hours: WorkingHours,
    /// The zone of the working hours; `None`: the zone of the user's primary calendar, else UTC.
    pub time_zone: Option<Tz>,
}

/// The free slots of the user's working hours in the window ([`free_slots`]), busy time being that of
/// every calendar that counts for free/busy.
pub async fn slots<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    query: SlotQuery,
    budget: &WorkBudget,
) -> AppResult<Vec<Interval>> {
    let zone = match query.time_zone {
        Some(zone) => zone,
        None => primary_zone(db, user_id).await?,
    };
    let busy = busy(db, user_id, None, query.window, budget).await?;
    let blocks = working_blocks(&query.hours, zone, query.window);
    Ok(free_slots(&busy, &blocks, query.duration))
}

/// The zone of the user's primary calendar (that of the account connected first), else UTC.
async fn primary_zone<C: ConnectionTrait>(db: &C, user_id: Uuid) -> AppResult<Tz> {
    let zone: Option<Option<String>> = calendars::Entity::find()
        .select_only()
        .column(calendars::Column::TimeZone)
        .join(JoinType::InnerJoin, calendars::Relation::GoogleAccounts.def())
        .filter(google_accounts::Column::UserId.eq(user_id))
        .filter(calendars::Column::IsPrimary.eq(true))
        .filter(calendars::Column::DeletedAt.is_null())
        .order_by_asc(google_accounts::Column::CreatedAt)
        .order_by_asc(calendars::Column::Id)
        .into_tuple()
        .one(db)
        .await?;
    Ok(zone
        .flatten()
        .and_then(|zone| zone.trim().parse().ok())
        .unwrap_or(Tz::UTC))
}

#[cfg(test)]
mod tests;
