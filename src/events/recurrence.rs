//! Recurrence expansion for the event cache: pure, no I/O, no clock, no database.
//!
//! Chronos stores Google events as Google sends them with `singleEvents=false`: series masters carrying
//! `recurrence` lines (RRULE, EXRULE, RDATE, EXDATE), exceptions (`recurringEventId` +
//! `originalStartTime`; cancelled = a deleted instance, otherwise a moved or edited one) and single events.
//! A window query uses this module as follows:
//!
//! 1. index every master under [`series_range`] and load the masters whose range overlaps the window,
//!    plus every exception of those masters and every live exception that itself [`overlaps`] the window;
//! 2. [`expand`] each master in the window;
//! 3. [`apply_exceptions`]: instances that have an exception are dropped from the expansion, and the
//!    live exceptions that overlap the window are returned in their place, wherever their original
//!    instance was.
//!
//! Timed series expand in their own zone (`start.timeZone`, else the calendar's, else UTC), so a weekly
//! 09:00 America/New_York meeting stays at 09:00 local across DST while its UTC instant moves. All-day
//! series expand on dates, which have no zone; only turning a date into instants uses the calendar's zone
//! (UTC if none). End dates are exclusive, as at Google.

pub mod split;

use std::collections::{BTreeSet, HashSet};
use std::str::FromStr;

use chrono::{
    DateTime, Datelike, LocalResult, Month, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeDelta, TimeZone,
    Timelike, Utc,
};
use chrono_tz::Tz;
use rrule::{Frequency, NWeekday, RRule, RRuleSet, RRuleSetIter, Unvalidated};

/// The zone type of the `rrule` crate (a wrapper around `chrono_tz::Tz`).
type RuleTz = rrule::Tz;

/// Where [`series_range`] ends a series that never ends (9999-12-31T00:00:00Z): storable in every database.
pub const UNBOUNDED_END: DateTime<Utc> = match DateTime::from_timestamp(253_402_214_400, 0) {
    Some(end) => end,
    None => DateTime::<Utc>::MAX_UTC,
};

/// How many iteration steps one call may spend before giving up with [`RecurrenceError::TooExpensive`].
/// A rule that can be fast-forwarded to the window needs a handful; only COUNT rules (which must be
/// counted from their start) and EXRULEs that exclude nearly everything come close.
const STEP_BUDGET: u32 = 200_000;

/// Google's `start`, `end` or `originalStartTime`: a date (all-day) or an instant with its zone label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventTime {
    Date(NaiveDate),
    DateTime {
        instant: DateTime<Utc>,
        /// IANA name (`timeZone`); for a series start it is the zone the rules run in.
        time_zone: Option<String>,
    },
}

impl EventTime {
    pub fn is_all_day(&self) -> bool {
        matches!(self, Self::Date(_))
    }

    /// What identifies an instance: the date or the instant, whatever zone label it carries.
    pub fn instance_key(&self) -> InstanceKey {
        match self {
            Self::Date(date) => InstanceKey::Date(*date),
            Self::DateTime { instant, .. } => InstanceKey::Instant(*instant),
        }
    }

    /// The instant this time stands for; a date means local midnight in the calendar's zone (UTC if none).
    pub fn to_instant(&self, calendar_time_zone: Option<&str>) -> DateTime<Utc> {
        match self {
            Self::Date(date) => local_midnight(*date, parse_zone(calendar_time_zone).unwrap_or(Tz::UTC)),
            Self::DateTime { instant, .. } => *instant,
        }
    }
}

/// The identity of one instance of a series ([`EventTime::instance_key`]), comparable and hashable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum InstanceKey {
    Date(NaiveDate),
    Instant(DateTime<Utc>),
}

/// A query window: Google's `timeMin` (inclusive bound on ends) and `timeMax` (exclusive bound on starts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub time_min: DateTime<Utc>,
    pub time_max: DateTime<Utc>,
}

impl Window {
    pub fn new(time_min: DateTime<Utc>, time_max: DateTime<Utc>) -> Self {
        Self { time_min, time_max }
    }

    /// Whether `[start, end)` overlaps: it starts before `time_max` and ends after `time_min`.
    pub fn overlaps_range(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
        start < self.time_max && end > self.time_min
    }
}

/// A series master as stored. Timed rules run in the start's `time_zone` (Google's `start.timeZone`,
/// which Google requires on recurring timed events), else the calendar's zone, else UTC.
#[derive(Debug, Clone, Copy)]
pub struct Series<'a> {
    pub start: &'a EventTime,
    pub end: &'a EventTime,
    /// Google's `recurrence` lines, verbatim.
    pub recurrence: &'a [String],
}

/// One instance of a series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    /// What identifies the instance: Google's `originalStartTime` (equal to `start` for an expansion).
    pub original_start: EventTime,
    pub start: EventTime,
    pub end: EventTime,
}

/// The instances of a series in a window, in start order, without duplicates.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Expansion {
    pub occurrences: Vec<Occurrence>,
    /// More instances overlap the window than the `limit` that was asked for.
    pub truncated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecurrenceError {
    #[error("invalid recurrence line {line:?}: {reason}")]
    InvalidLine { line: String, reason: String },
    #[error("series start and end must both be dates or both be date-times")]
    MixedStartEnd,
    #[error("recurrence needs more than {STEP_BUDGET} steps to reach the window")]
    TooExpensive,
}

/// An exception of a series as stored.
#[derive(Debug, Clone, Copy)]
pub struct Exception<'a> {
    /// Google's `originalStartTime`: which instance it replaces.
    pub original_start: &'a EventTime,
    /// The exception's own start and end; `None` when it is cancelled (a deleted instance).
    pub replacement: Option<(&'a EventTime, &'a EventTime)>,
}

/// One entry of a window after [`apply_exceptions`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instance {
    /// An instance generated from the master.
    Expanded(Occurrence),
    /// The exception at this index of the `exceptions` slice, returned on its own.
    Exception(usize),
}

/// Whether an event overlaps the window: it starts before `time_max` and ends after `time_min`. All-day
/// dates are read in the calendar's zone (UTC if none) and their end date is exclusive.
pub fn overlaps(
    start: &EventTime,
    end: &EventTime,
    calendar_time_zone: Option<&str>,
    window: Window,
) -> bool {
    let (start, end) = to_instant_range(start, end, calendar_time_zone);
    window.overlaps_range(start, end)
}

/// The instants an event covers, `[start, end)`; all-day dates are read in the calendar's zone (UTC if
/// none). Useful to index single events and exceptions.
pub fn to_instant_range(
    start: &EventTime,
    end: &EventTime,
    calendar_time_zone: Option<&str>,
) -> (DateTime<Utc>, DateTime<Utc>) {
    (
        start.to_instant(calendar_time_zone),
        end.to_instant(calendar_time_zone),
    )
}

/// Google's id of an instance: `<master>_<YYYYMMDDTHHMMSSZ>` (UTC) when timed, `<master>_<YYYYMMDD>` when
/// all-day.
pub fn instance_id(master_id: &str, original_start: &EventTime) -> String {
    match original_start {
        EventTime::Date(date) => format!("{master_id}_{}", date.format("%Y%m%d")),
        EventTime::DateTime { instant, .. } => format!("{master_id}_{}", instant.format("%Y%m%dT%H%M%SZ")),
    }
}

/// Splits an instance id made by [`instance_id`] into the master's id and the instance's original start.
/// `None` when the id is not of that form (Google's event ids never contain `_`).
pub fn parse_instance_id(id: &str) -> Option<(&str, InstanceKey)> {
    let (master_id, suffix) = id.rsplit_once('_')?;
    if master_id.is_empty() {
        return None;
    }
    let key = if suffix.len() == 8 {
        InstanceKey::Date(NaiveDate::parse_from_str(suffix, "%Y%m%d").ok()?)
    } else {
        let utc = suffix.strip_suffix('Z')?;
        InstanceKey::Instant(
            NaiveDateTime::parse_from_str(utc, "%Y%m%dT%H%M%S")
                .ok()?
                .and_utc(),
        )
    };
    Some((master_id, key))
}

/// The instances of `series` that overlap `window`, at most `limit` of them (`truncated` tells when more
/// exist). Each instance lasts as long as the master (the same duration when timed, the same number of
/// days when all-day). A series without `recurrence` lines yields its start alone.
pub fn expand(
    series: &Series<'_>,
    calendar_time_zone: Option<&str>,
    window: Window,
    limit: usize,
) -> Result<Expansion, RecurrenceError> {
    expand_with(series, calendar_time_zone, window, limit, FastForward::Allowed)
        .map(|(expansion, _)| expansion)
}

/// The span `[first start, last end)` of a series, to index masters by: a query window only needs the
/// masters whose span overlaps it. Series that never end end at [`UNBOUNDED_END`]; COUNT and UNTIL give a
/// real end (UNTIL's instant plus the duration: a bound, not necessarily the last instance). All-day spans
/// are widened by a day on each side so they stay valid in whatever zone the calendar is read.
pub fn series_range(
    series: &Series<'_>,
    calendar_time_zone: Option<&str>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), RecurrenceError> {
    let plan = Plan::parse(series, calendar_time_zone)?;
    let first = plan.rdates.iter().copied().fold(plan.start_key, std::cmp::min);
    let mut last = plan.rdates.iter().copied().fold(plan.start_key, std::cmp::max);
    for rule in &plan.rrules {
        match last_start(rule, &plan.dtstart) {
            LastStart::Never => {}
            LastStart::At(at) => last = last.max(at),
            LastStart::Unbounded => return Ok((plan.range_start(first), UNBOUNDED_END)),
        }
    }
    Ok((plan.range_start(first), plan.range_end(last).min(UNBOUNDED_END)))
}

/// Folds a series' exceptions into its expansion: every expanded instance that has an exception (cancelled
/// or not) is dropped, and every live exception that overlaps the window is returned as
/// [`Instance::Exception`], whether its original instance was in the window or not. The result is in start
/// order.
pub fn apply_exceptions(
    occurrences: Vec<Occurrence>,
    exceptions: &[Exception<'_>],
    calendar_time_zone: Option<&str>,
    window: Window,
) -> Vec<Instance> {
    let replaced: HashSet<InstanceKey> = exceptions
        .iter()
        .map(|e| e.original_start.instance_key())
        .collect();
    let mut merged: Vec<(DateTime<Utc>, DateTime<Utc>, Instance)> = occurrences
        .into_iter()
        .filter(|o| !replaced.contains(&o.original_start.instance_key()))
        .map(|o| {
            let (start, end) = to_instant_range(&o.start, &o.end, calendar_time_zone);
            (start, end, Instance::Expanded(o))
        })
        .collect();
    for (index, exception) in exceptions.iter().enumerate() {
        if let Some((start, end)) = exception.replacement {
            let (start, end) = to_instant_range(start, end, calendar_time_zone);
            if window.overlaps_range(start, end) {
                merged.push((start, end, Instance::Exception(index)));
            }
        }
    }
    merged.sort_by_key(|(start, end, _)| (*start, *end));
    merged.into_iter().map(|(_, _, instance)| instance).collect()
}

/// Whether rules may start iterating near the window rather than at DTSTART. Only tests turn it off, to
/// check that both give the same instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FastForward {
    Allowed,
    #[cfg(test)]
    Disabled,
}

/// Expands and also reports how many iteration steps it took.
fn expand_with(
    series: &Series<'_>,
    calendar_time_zone: Option<&str>,
    window: Window,
    limit: usize,
    fast_forward: FastForward,
) -> Result<(Expansion, u32), RecurrenceError> {
    let plan = Plan::parse(series, calendar_time_zone)?;
    let (lower, upper) = plan.candidate_bounds(window);
    let mut budget = Budget(STEP_BUDGET);
    let mut expansion = Expansion::default();
    if lower >= upper {
        return Ok((expansion, 0));
    }

    let mut cursors = Vec::with_capacity(plan.rrules.len());
    for rule in &plan.rrules {
        cursors.push(Cursor::open(rule, &plan, lower, fast_forward, &mut budget)?);
    }
    let mut exrules = Vec::with_capacity(plan.exrules.len());
    for rule in &plan.exrules {
        exrules.push(Cursor::open(rule, &plan, lower, fast_forward, &mut budget)?);
    }
    // DTSTART is always the first instance (RFC 5545), whether or not the rules produce it.
    let mut fixed: Vec<DateTime<Utc>> = plan
        .rdates
        .iter()
        .copied()
        .chain(std::iter::once(plan.start_key))
        .filter(|at| (lower..upper).contains(at))
        .collect();
    fixed.sort_unstable();
    fixed.dedup();
    let mut fixed = fixed.into_iter().peekable();

    let mut previous = None;
    loop {
        let next_cursor = cursors
            .iter()
            .enumerate()
            .filter_map(|(index, cursor)| cursor.head.map(|at| (at, index)))
            .min();
        let candidate = match (fixed.peek().copied(), next_cursor) {
            (None, None) => break,
            (Some(at), None) => {
                fixed.next();
                at
            }
            (Some(at), Some((cursor_at, _))) if at <= cursor_at => {
                fixed.next();
                at
            }
            (_, Some((at, index))) => {
                cursors[index].advance(&mut budget)?;
                at
            }
        };
        if candidate >= upper {
            break;
        }
        if previous == Some(candidate) {
            continue;
        }
        previous = Some(candidate);
        if plan.is_excluded(candidate, &mut exrules, &mut budget)? {
            continue;
        }
        let (start, end) = plan.instant_range(candidate);
        if !window.overlaps_range(start, end) {
            continue;
        }
        if expansion.occurrences.len() >= limit {
            expansion.truncated = true;
            break;
        }
        expansion.occurrences.push(plan.occurrence(candidate, series));
    }
    Ok((expansion, STEP_BUDGET - budget.0))
}

/// How long each instance lasts.
#[derive(Debug, Clone, Copy)]
enum Length {
    Days(i64),
    Exact(TimeDelta),
}

/// A validated rule: as parsed (to rebuild it from another start) and as validated against DTSTART.
#[derive(Debug, Clone)]
struct ParsedRule {
    parsed: RRule<Unvalidated>,
    validated: RRule,
}

/// A series ready to expand. Candidate instants ("keys") live on the rules' timeline: the real instant for
/// timed series, UTC midnight of the date for all-day ones.
struct Plan {
    zone: Tz,
    all_day: bool,
    calendar_zone: Tz,
    dtstart: DateTime<RuleTz>,
    start_key: DateTime<Utc>,
    length: Length,
    rrules: Vec<ParsedRule>,
    exrules: Vec<ParsedRule>,
    rdates: Vec<DateTime<Utc>>,
    exdates: BTreeSet<DateTime<Utc>>,
    /// Date-only EXDATEs of a timed series: every instance on that local date goes.
    exdate_days: BTreeSet<NaiveDate>,
}

impl Plan {
    fn parse(series: &Series<'_>, calendar_time_zone: Option<&str>) -> Result<Self, RecurrenceError> {
        let calendar_zone = parse_zone(calendar_time_zone).unwrap_or(Tz::UTC);
        let (zone, all_day, start_key, length) = match (series.start, series.end) {
            (EventTime::Date(start), EventTime::Date(end)) => {
                // An all-day event covers at least its own date.
                let days = (*end - *start).num_days().max(1);
                (Tz::UTC, true, midnight_utc(*start), Length::Days(days))
            }
            (EventTime::DateTime { instant, time_zone }, EventTime::DateTime { instant: end, .. }) => {
                let zone = parse_zone(time_zone.as_deref())
                    .or(parse_zone(calendar_time_zone))
                    .unwrap_or(Tz::UTC);
                let duration = (*end - *instant).max(TimeDelta::zero());
                (zone, false, *instant, Length::Exact(duration))
            }
            _ => return Err(RecurrenceError::MixedStartEnd),
        };
        let dtstart = start_key.with_timezone(&RuleTz::Tz(zone));
        let mut plan = Self {
            zone,
            all_day,
            calendar_zone,
            dtstart,
            start_key,
            length,
            rrules: Vec::new(),
            exrules: Vec::new(),
            rdates: Vec::new(),
            exdates: BTreeSet::new(),
            exdate_days: BTreeSet::new(),
        };
        for line in series.recurrence {
            plan.add_line(line)?;
        }
        Ok(plan)
    }

    fn add_line(&mut self, line: &str) -> Result<(), RecurrenceError> {
        let invalid = |reason: &str| RecurrenceError::InvalidLine {
            line: line.to_owned(),
            reason: reason.to_owned(),
        };
        let trimmed = line.trim();
        if trimmed.is_empty() {
            return Ok(());
        }
        let (head, value) = trimmed.split_once(':').ok_or_else(|| invalid("no ':'"))?;
        let mut head_parts = head.split(';');
        let name = head_parts.next().unwrap_or_default().trim().to_ascii_uppercase();
        // Parameters other than TZID (VALUE, X-...) change nothing: the value's own form tells.
        let mut zone = None;
        for parameter in head_parts {
            if let Some((key, tzid)) = parameter.split_once('=')
                && key.trim().eq_ignore_ascii_case("TZID")
            {
                let tzid = tzid.trim().trim_matches('"');
                zone = Some(tzid.parse::<Tz>().map_err(|_| invalid("unknown TZID"))?);
            }
        }
        match name.as_str() {
            "RRULE" | "EXRULE" => {
                let rule = self.parse_rule(value).map_err(|reason| invalid(&reason))?;
                // A rule whose UNTIL precedes DTSTART generates nothing; DTSTART itself still counts.
                if rule.get_until().is_some_and(|until| *until < self.dtstart) {
                    return Ok(());
                }
                let validated = rule
                    .clone()
                    .validate(self.dtstart)
                    .map_err(|error| invalid(&error.to_string()))?;
                let parsed = ParsedRule {
                    parsed: rule,
                    validated,
                };
                if name == "RRULE" {
                    self.rrules.push(parsed);
                } else {
                    self.exrules.push(parsed);
                }
            }
            "RDATE" | "EXDATE" => {
                for raw in value.split(',').map(str::trim).filter(|v| !v.is_empty()) {
                    let date = parse_date_value(raw, zone).ok_or_else(|| invalid("bad date"))?;
                    if name == "RDATE" {
                        self.rdates.push(self.rdate_key(date));
                    } else {
                        self.add_exdate(date);
                    }
                }
            }
            // Experimental properties are tolerated like experimental parameters.
            other if other.starts_with("X-") => {}
            _ => return Err(invalid("not RRULE, EXRULE, RDATE or EXDATE")),
        }
        Ok(())
    }

    /// Parses an RRULE/EXRULE value the way the `rrule` crate accepts it: drops `X-` parts and turns
    /// UNTIL into UTC on the series' timeline.
    fn parse_rule(&self, value: &str) -> Result<RRule<Unvalidated>, String> {
        let mut parts = Vec::new();
        for part in value.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, part_value) = part.split_once('=').ok_or("a rule part without '='")?;
            let key = key.trim().to_ascii_uppercase();
            let part_value = part_value.trim();
            if key.starts_with("X-") {
                continue;
            }
            if key == "UNTIL" {
                let until = self.until(part_value).ok_or("bad UNTIL")?;
                parts.push(format!("UNTIL={}", until.format("%Y%m%dT%H%M%SZ")));
            } else {
                parts.push(format!("{key}={}", part_value.to_ascii_uppercase()));
            }
        }
        if parts.is_empty() {
            return Err("empty rule".to_owned());
        }
        RRule::<Unvalidated>::from_str(&parts.join(";")).map_err(|error| error.to_string())
    }

    /// UNTIL on the rules' timeline: a date is inclusive (its end for timed series), a floating time is
    /// local to the series.
    fn until(&self, value: &str) -> Option<DateTime<Utc>> {
        Some(match parse_date_value(value, None)? {
            DateValue::Utc(at) => at,
            DateValue::Date(date) if self.all_day => midnight_utc(date),
            DateValue::Date(date) => localize(date.and_hms_opt(23, 59, 59)?, self.zone),
            DateValue::Local { at, .. } if self.all_day => at.and_utc(),
            DateValue::Local { at, zone } => localize(at, zone.unwrap_or(self.zone)),
        })
    }

    fn rdate_key(&self, date: DateValue) -> DateTime<Utc> {
        match date {
            DateValue::Utc(at) if self.all_day => midnight_utc(at.date_naive()),
            DateValue::Utc(at) => at,
            DateValue::Date(date) if self.all_day => midnight_utc(date),
            // A date added to a timed series takes the series' local start time.
            DateValue::Date(date) => localize(date.and_time(self.dtstart.time()), self.zone),
            DateValue::Local { at, .. } if self.all_day => midnight_utc(at.date()),
            DateValue::Local { at, zone } => localize(at, zone.unwrap_or(self.zone)),
        }
    }

    fn add_exdate(&mut self, date: DateValue) {
        match date {
            DateValue::Date(date) if !self.all_day => {
                self.exdate_days.insert(date);
            }
            other => {
                let key = self.rdate_key(other);
                self.exdates.insert(key);
            }
        }
    }

    /// Keys that may give an instance overlapping the window: `[lower, upper)`, exact for timed series,
    /// with two days of slack for all-day ones (their instants depend on the calendar's zone).
    fn candidate_bounds(&self, window: Window) -> (DateTime<Utc>, DateTime<Utc>) {
        match self.length {
            Length::Exact(duration) => (sub(window.time_min, duration), window.time_max),
            Length::Days(days) => {
                let slack = TimeDelta::try_days(2).unwrap_or_default();
                let length = TimeDelta::try_days(days).unwrap_or(TimeDelta::MAX);
                (
                    sub(sub(window.time_min, length), slack),
                    add(window.time_max, slack),
                )
            }
        }
    }

    fn is_excluded(
        &self,
        key: DateTime<Utc>,
        exrules: &mut [Cursor],
        budget: &mut Budget,
    ) -> Result<bool, RecurrenceError> {
        if self.exdates.contains(&key)
            || (!self.all_day
                && self
                    .exdate_days
                    .contains(&key.with_timezone(&self.zone).date_naive()))
        {
            return Ok(true);
        }
        for exrule in exrules {
            exrule.skip_before(key, budget)?;
            if exrule.head == Some(key) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The instants the instance at `key` covers (all-day dates read in the calendar's zone).
    fn instant_range(&self, key: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        match self.length {
            Length::Exact(duration) => (key, add(key, duration)),
            Length::Days(days) => {
                let date = key.date_naive();
                (
                    local_midnight(date, self.calendar_zone),
                    local_midnight(add_days(date, days), self.calendar_zone),
                )
            }
        }
    }

    fn occurrence(&self, key: DateTime<Utc>, series: &Series<'_>) -> Occurrence {
        let (start, end) = match self.length {
            Length::Days(days) => {
                let date = key.date_naive();
                (EventTime::Date(date), EventTime::Date(add_days(date, days)))
            }
            Length::Exact(duration) => {
                let zone_of = |time: &EventTime| match time {
                    EventTime::DateTime { time_zone, .. } => time_zone.clone(),
                    EventTime::Date(_) => None,
                };
                let start = EventTime::DateTime {
                    instant: key,
                    time_zone: zone_of(series.start),
                };
                let end = EventTime::DateTime {
                    instant: add(key, duration),
                    time_zone: zone_of(series.end),
                };
                (start, end)
            }
        };
        Occurrence {
            original_start: start.clone(),
            start,
            end,
        }
    }

    fn range_start(&self, first_key: DateTime<Utc>) -> DateTime<Utc> {
        match self.length {
            Length::Exact(_) => first_key,
            Length::Days(_) => sub(first_key, TimeDelta::try_days(1).unwrap_or_default()),
        }
    }

    fn range_end(&self, last_key: DateTime<Utc>) -> DateTime<Utc> {
        match self.length {
            Length::Exact(duration) => add(last_key, duration),
            Length::Days(days) => add(last_key, TimeDelta::try_days(days + 1).unwrap_or(TimeDelta::MAX)),
        }
    }
}

enum LastStart {
    /// The rule generates nothing.
    Never,
    /// No instance of the rule starts after this key.
    At(DateTime<Utc>),
    Unbounded,
}

fn last_start(rule: &ParsedRule, dtstart: &DateTime<RuleTz>) -> LastStart {
    let validated = &rule.validated;
    if validated.get_interval() == 0 || validated.get_count() == Some(0) {
        return LastStart::Never;
    }
    if let Some(until) = validated.get_until() {
        return LastStart::At(until.with_timezone(&Utc));
    }
    if validated.get_count().is_none() {
        return LastStart::Unbounded;
    }
    // COUNT gives no date: count the instances. Too many to count is as good as unbounded for an index.
    let mut budget = Budget(STEP_BUDGET);
    let set = RRuleSet::new(*dtstart).limit().rrule(validated.clone());
    let mut last = LastStart::Never;
    for at in &set {
        if budget.spend().is_err() {
            return LastStart::Unbounded;
        }
        last = LastStart::At(at.with_timezone(&Utc));
    }
    last
}

struct Budget(u32);

impl Budget {
    fn spend(&mut self) -> Result<(), RecurrenceError> {
        self.0 = self.0.checked_sub(1).ok_or(RecurrenceError::TooExpensive)?;
        Ok(())
    }
}

/// One rule's instances in order, as keys, with the next one at hand.
struct Cursor {
    iter: RRuleSetIter,
    head: Option<DateTime<Utc>>,
    /// All-day series: a rule with BYHOUR may hit a date twice; the key is the date's midnight.
    dates_only: bool,
}

impl Cursor {
    /// Opens a rule at its first instance at or after `lower`, starting near `lower` when it can.
    fn open(
        rule: &ParsedRule,
        plan: &Plan,
        lower: DateTime<Utc>,
        fast_forward: FastForward,
        budget: &mut Budget,
    ) -> Result<Self, RecurrenceError> {
        let dtstart = &plan.dtstart;
        let forwarded = match fast_forward {
            FastForward::Allowed => fast_forward_start(&rule.parsed, dtstart, lower),
            #[cfg(test)]
            FastForward::Disabled => None,
        };
        let set = match forwarded {
            Some((_, start)) if rule.validated.get_until().is_some_and(|until| *until < start) => {
                RRuleSet::new(start)
            }
            Some((explicit, start)) => match explicit.validate(start) {
                Ok(validated) => RRuleSet::new(start).limit().rrule(validated),
                Err(_) => RRuleSet::new(*dtstart).limit().rrule(rule.validated.clone()),
            },
            None => RRuleSet::new(*dtstart).limit().rrule(rule.validated.clone()),
        };
        let mut cursor = Self {
            iter: (&set).into_iter(),
            head: None,
            dates_only: plan.all_day,
        };
        cursor.advance(budget)?;
        cursor.skip_before(lower, budget)?;
        Ok(cursor)
    }

    fn advance(&mut self, budget: &mut Budget) -> Result<(), RecurrenceError> {
        budget.spend()?;
        self.head = self.iter.next().map(|at| {
            let at = at.with_timezone(&Utc);
            if self.dates_only {
                midnight_utc(at.date_naive())
            } else {
                at
            }
        });
        Ok(())
    }

    fn skip_before(&mut self, key: DateTime<Utc>, budget: &mut Budget) -> Result<(), RecurrenceError> {
        while self.head.is_some_and(|head| head < key) {
            self.advance(budget)?;
        }
        Ok(())
    }
}

/// A later start for `rule` from which it generates exactly the instances it would from `dtstart` at or
/// after `lower`: a whole number of intervals after DTSTART, at the start of that year, month, day, hour
/// or minute, and before `lower` by a margin. The parts the rule took from DTSTART (its day, weekday,
/// month, time) are written into the returned rule. `None` when the rule cannot skip: COUNT must be
/// counted from the start, and there is nothing to gain when `lower` is near DTSTART.
fn fast_forward_start(
    rule: &RRule<Unvalidated>,
    dtstart: &DateTime<RuleTz>,
    lower: DateTime<Utc>,
) -> Option<(RRule<Unvalidated>, DateTime<RuleTz>)> {
    if rule.get_count().is_some() || rule.get_interval() == 0 {
        return None;
    }
    let interval = i64::from(rule.get_interval());
    let freq = rule.get_freq();
    let zone = dtstart.timezone();
    let origin = dtstart.naive_local();
    // The rules count in local wall-clock time; the margin covers any DST shift between it and instants.
    let margin = if freq >= Frequency::Hourly {
        TimeDelta::try_hours(3)?
    } else {
        TimeDelta::try_days(1)?
    };
    let target = lower
        .with_timezone(&zone)
        .naive_local()
        .checked_sub_signed(margin)?;
    if target <= origin {
        return None;
    }
    let periods = |elapsed: i64| -> Option<i64> {
        let k = elapsed / interval;
        (k >= 1).then_some(k * interval)
    };
    let midnight = NaiveTime::MIN;
    let start = match freq {
        Frequency::Yearly => {
            let years = periods(i64::from(target.year() - origin.year()))?;
            let year = origin.year().checked_add(i32::try_from(years).ok()?)?;
            NaiveDate::from_ymd_opt(year, 1, 1)?.and_time(midnight)
        }
        Frequency::Monthly => {
            let month_index = |at: NaiveDateTime| i64::from(at.year()) * 12 + i64::from(at.month0());
            let months = periods(month_index(target) - month_index(origin))?;
            let index = month_index(origin) + months;
            let year = i32::try_from(index.div_euclid(12)).ok()?;
            let month = u32::try_from(index.rem_euclid(12)).ok()? + 1;
            NaiveDate::from_ymd_opt(year, month, 1)?.and_time(midnight)
        }
        Frequency::Weekly => {
            let weeks = periods((target.date() - origin.date()).num_days() / 7)?;
            // Mid-week is fine: `rrule` moves on to the next WKST itself, and what the rule would have
            // produced earlier in this week is before `target`.
            origin
                .date()
                .checked_add_signed(TimeDelta::try_weeks(weeks)?)?
                .and_time(midnight)
        }
        Frequency::Daily => {
            let days = periods((target.date() - origin.date()).num_days())?;
            origin
                .date()
                .checked_add_signed(TimeDelta::try_days(days)?)?
                .and_time(midnight)
        }
        Frequency::Hourly => {
            let hours = periods((target - origin).num_hours())?;
            let at = origin.checked_add_signed(TimeDelta::try_hours(hours)?)?;
            at.date().and_hms_opt(at.hour(), 0, 0)?
        }
        Frequency::Minutely => {
            let minutes = periods((target - origin).num_minutes())?;
            let at = origin.checked_add_signed(TimeDelta::try_minutes(minutes)?)?;
            at.date().and_hms_opt(at.hour(), at.minute(), 0)?
        }
        Frequency::Secondly => {
            let seconds = periods((target - origin).num_seconds())?;
            origin.checked_add_signed(TimeDelta::try_seconds(seconds)?)?
        }
    };
    // A start inside a DST gap or overlap would not keep the rule's wall-clock phase: don't skip.
    let LocalResult::Single(start) = zone.from_local_datetime(&start) else {
        return None;
    };
    Some((with_implicit_parts(rule.clone(), dtstart), start))
}

/// Writes into the rule the parts RFC 5545 takes from DTSTART when absent (mirrors what `rrule` does on
/// validation), so the rule means the same from another start.
fn with_implicit_parts(mut rule: RRule<Unvalidated>, dtstart: &DateTime<RuleTz>) -> RRule<Unvalidated> {
    let freq = rule.get_freq();
    let no_day_parts = rule.get_by_week_no().is_empty()
        && rule.get_by_year_day().is_empty()
        && rule.get_by_month_day().is_empty()
        && rule.get_by_weekday().is_empty();
    // Day of month is 1..=31: it fits an i8.
    let day = i8::try_from(dtstart.day()).unwrap_or(1);
    if no_day_parts {
        match freq {
            Frequency::Yearly => {
                if rule.get_by_month().is_empty()
                    && let Ok(month) = Month::try_from(u8::try_from(dtstart.month()).unwrap_or(1))
                {
                    rule = rule.by_month(&[month]);
                }
                rule = rule.by_month_day(vec![day]);
            }
            Frequency::Monthly => rule = rule.by_month_day(vec![day]),
            Frequency::Weekly => rule = rule.by_weekday(vec![NWeekday::Every(dtstart.weekday())]),
            _ => {}
        }
    }
    // Hours, minutes and seconds fit a u8.
    let time_part = |value: u32| u8::try_from(value).unwrap_or(0);
    if rule.get_by_hour().is_empty() && freq < Frequency::Hourly {
        rule = rule.by_hour(vec![time_part(dtstart.hour())]);
    }
    if rule.get_by_minute().is_empty() && freq < Frequency::Minutely {
        rule = rule.by_minute(vec![time_part(dtstart.minute())]);
    }
    if rule.get_by_second().is_empty() && freq < Frequency::Secondly {
        rule = rule.by_second(vec![time_part(dtstart.second())]);
    }
    rule
}

/// An RDATE/EXDATE/UNTIL value.
#[derive(Debug, Clone, Copy)]
enum DateValue {
    /// `...Z`
    Utc(DateTime<Utc>),
    /// `YYYYMMDD`
    Date(NaiveDate),
    /// `YYYYMMDDTHHMMSS`, with its TZID if any (else local to the series).
    Local { at: NaiveDateTime, zone: Option<Tz> },
}

fn parse_date_value(raw: &str, zone: Option<Tz>) -> Option<DateValue> {
    // A PERIOD (`start/end` or `start/duration`) counts by its start.
    let value = raw.split('/').next().unwrap_or(raw).trim();
    if value.len() == 8 {
        return NaiveDate::parse_from_str(value, "%Y%m%d")
            .ok()
            .map(DateValue::Date);
    }
    if let Some(utc) = value.strip_suffix(['Z', 'z']) {
        let at = NaiveDateTime::parse_from_str(utc, "%Y%m%dT%H%M%S").ok()?;
        return Some(DateValue::Utc(at.and_utc()));
    }
    let at = NaiveDateTime::parse_from_str(value, "%Y%m%dT%H%M%S").ok()?;
    Some(DateValue::Local { at, zone })
}

fn parse_zone(name: Option<&str>) -> Option<Tz> {
    name.and_then(|name| name.trim().parse().ok())
}

fn midnight_utc(date: NaiveDate) -> DateTime<Utc> {
    date.and_time(NaiveTime::MIN).and_utc()
}

fn local_midnight(date: NaiveDate, zone: Tz) -> DateTime<Utc> {
    localize(date.and_time(NaiveTime::MIN), zone)
}

/// A wall-clock time in `zone`, read as [`localize`] reads it (the rules' own reading).
pub fn local_instant(at: NaiveDateTime, zone: Tz) -> DateTime<Utc> {
    localize(at, zone)
}

/// A wall-clock time in `zone`. In a DST overlap the earlier instant; in a gap the time is read with the
/// offset from before the gap (02:30 in a one-hour spring gap is 03:30), as the `rrule` crate does.
pub fn localize(at: NaiveDateTime, zone: Tz) -> DateTime<Utc> {
    match zone.from_local_datetime(&at) {
        LocalResult::Single(local) | LocalResult::Ambiguous(local, _) => local.with_timezone(&Utc),
        LocalResult::None => {
            let before_gap = sub(at.and_utc(), TimeDelta::try_days(1).unwrap_or_default());
            let offset = zone.offset_from_utc_datetime(&before_gap.naive_utc()).fix();
            sub(
                at.and_utc(),
                TimeDelta::try_seconds(i64::from(offset.local_minus_utc())).unwrap_or_default(),
            )
        }
    }
}

fn add_days(date: NaiveDate, days: i64) -> NaiveDate {
    TimeDelta::try_days(days)
        .and_then(|length| date.checked_add_signed(length))
        .unwrap_or(NaiveDate::MAX)
}

fn add(at: DateTime<Utc>, delta: TimeDelta) -> DateTime<Utc> {
    at.checked_add_signed(delta)
        .unwrap_or(if delta < TimeDelta::zero() {
            DateTime::<Utc>::MIN_UTC
        } else {
            DateTime::<Utc>::MAX_UTC
        })
}

fn sub(at: DateTime<Utc>, delta: TimeDelta) -> DateTime<Utc> {
    at.checked_sub_signed(delta)
        .unwrap_or(if delta < TimeDelta::zero() {
            DateTime::<Utc>::MAX_UTC
        } else {
            DateTime::<Utc>::MIN_UTC
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEW_YORK: &str = "America/New_York";
    const BERLIN: &str = "Europe/Berlin";

    fn at(year: i32, month: u32, day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(year, month, day, hour, minute, 0).unwrap()
    }

    fn date(year: i32, month: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(year, month, day).unwrap()
    }

    /// A wall-clock time in `zone` that exists exactly once.
    fn local(zone: &str, year: i32, month: u32, day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
        let zone: Tz = zone.parse().unwrap();
        zone.with_ymd_and_hms(year, month, day, hour, minute, 0)
            .single()
            .unwrap()
            .with_timezone(&Utc)
    }

    fn timed(instant: DateTime<Utc>, zone: Option<&str>) -> EventTime {
        EventTime::DateTime {
            instant,
            time_zone: zone.map(str::to_owned),
        }
    }

    fn window(time_min: DateTime<Utc>, time_max: DateTime<Utc>) -> Window {
        Window::new(time_min, time_max)
    }

    struct Fixture {
        start: EventTime,
        end: EventTime,
        recurrence: Vec<String>,
    }

    impl Fixture {
        fn timed(start: DateTime<Utc>, minutes: i64, zone: &str, lines: &[&str]) -> Self {
            Self {
                start: timed(start, Some(zone)),
                end: timed(start + TimeDelta::minutes(minutes), Some(zone)),
                recurrence: lines.iter().map(|line| (*line).to_owned()).collect(),
            }
        }

        fn all_day(start: NaiveDate, days: i64, lines: &[&str]) -> Self {
            Self {
                start: EventTime::Date(start),
                end: EventTime::Date(start + TimeDelta::days(days)),
                recurrence: lines.iter().map(|line| (*line).to_owned()).collect(),
            }
        }

        fn series(&self) -> Series<'_> {
            Series {
                start: &self.start,
                end: &self.end,
                recurrence: &self.recurrence,
            }
        }

        fn expand(&self, calendar: Option<&str>, window: Window) -> Vec<Occurrence> {
            let expansion = expand(&self.series(), calendar, window, 10_000).unwrap();
            assert!(!expansion.truncated);
            expansion.occurrences
        }

        fn starts(&self, window: Window) -> Vec<DateTime<Utc>> {
            self.expand(None, window)
                .iter()
                .map(|o| o.start.to_instant(None))
                .collect()
        }

        fn dates(&self, calendar: Option<&str>, window: Window) -> Vec<NaiveDate> {
            self.expand(calendar, window)
                .iter()
                .map(|o| match o.start {
                    EventTime::Date(date) => date,
                    EventTime::DateTime { .. } => panic!("timed instance of an all-day series"),
                })
                .collect()
        }

        fn steps(&self, window: Window, fast_forward: FastForward) -> (Expansion, u32) {
            expand_with(&self.series(), None, window, 10_000, fast_forward).unwrap()
        }

        fn range(&self, calendar: Option<&str>) -> (DateTime<Utc>, DateTime<Utc>) {
            series_range(&self.series(), calendar).unwrap()
        }
    }

    fn local_time(instant: DateTime<Utc>, zone: &str) -> NaiveTime {
        instant.with_timezone(&zone.parse::<Tz>().unwrap()).time()
    }

    #[test]
    fn weekly_new_york_series_stays_at_nine_local_across_both_dst_changes() {
        let series = Fixture::timed(
            local(NEW_YORK, 2026, 3, 2, 9, 0),
            60,
            NEW_YORK,
            &["RRULE:FREQ=WEEKLY"],
        );
        let spring = series.expand(None, window(at(2026, 2, 28, 0, 0), at(2026, 3, 20, 0, 0)));
        let starts: Vec<_> = spring.iter().map(|o| o.start.to_instant(None)).collect();
        // EST (UTC-5) before March 8, EDT (UTC-4) after.
        assert_eq!(
            starts,
            vec![
                at(2026, 3, 2, 14, 0),
                at(2026, 3, 9, 13, 0),
                at(2026, 3, 16, 13, 0)
            ]
        );
        for occurrence in &spring {
            let (start, end) = to_instant_range(&occurrence.start, &occurrence.end, None);
            assert_eq!(end - start, TimeDelta::hours(1));
            assert_eq!(occurrence.original_start, occurrence.start);
            assert_eq!(occurrence.start, timed(start, Some(NEW_YORK)));
        }
        // Back to EST on November 1; this window is far enough for the rule to skip ahead.
        let autumn = series.starts(window(at(2026, 10, 26, 0, 0), at(2026, 11, 10, 0, 0)));
        assert_eq!(
            autumn,
            vec![
                at(2026, 10, 26, 13, 0),
                at(2026, 11, 2, 14, 0),
                at(2026, 11, 9, 14, 0)
            ]
        );
    }

    #[test]
    fn berlin_series_keep_local_time_across_the_autumn_change() {
        let weekly = Fixture::timed(
            local(BERLIN, 2026, 10, 18, 10, 0),
            30,
            BERLIN,
            &["RRULE:FREQ=WEEKLY"],
        );
        let starts = weekly.starts(window(at(2026, 10, 17, 0, 0), at(2026, 11, 2, 0, 0)));
        // CEST (UTC+2) until October 25 03:00, CET (UTC+1) after.
        assert_eq!(
            starts,
            vec![
                at(2026, 10, 18, 8, 0),
                at(2026, 10, 25, 9, 0),
                at(2026, 11, 1, 9, 0)
            ]
        );

        // 02:30 happens twice on October 25: the first one counts.
        let night = Fixture::timed(
            local(BERLIN, 2026, 10, 24, 2, 30),
            15,
            BERLIN,
            &["RRULE:FREQ=DAILY"],
        );
        let starts = night.starts(window(at(2026, 10, 24, 0, 0), at(2026, 10, 27, 0, 0)));
        assert_eq!(
            starts,
            vec![
                at(2026, 10, 24, 0, 30),
                at(2026, 10, 25, 0, 30),
                at(2026, 10, 26, 1, 30)
            ]
        );
    }

    #[test]
    fn a_wall_clock_time_inside_the_spring_gap_moves_past_it() {
        let night = Fixture::timed(
            local(NEW_YORK, 2026, 3, 7, 2, 30),
            15,
            NEW_YORK,
            &["RRULE:FREQ=DAILY"],
        );
        let starts = night.starts(window(at(2026, 3, 7, 0, 0), at(2026, 3, 10, 0, 0)));
        // 02:30 does not exist on March 8: it becomes 03:30 EDT, the same instant as 02:30 EST.
        assert_eq!(
            starts,
            vec![
                at(2026, 3, 7, 7, 30),
                at(2026, 3, 8, 7, 30),
                at(2026, 3, 9, 6, 30)
            ]
        );
        // An RDATE there reads the same way.
        assert_eq!(
            localize(
                date(2026, 3, 8).and_hms_opt(2, 30, 0).unwrap(),
                Tz::America__New_York
            ),
            at(2026, 3, 8, 7, 30)
        );
    }

    #[test]
    fn exdate_forms_remove_one_timed_instance() {
        let week = window(at(2026, 3, 9, 0, 0), at(2026, 3, 12, 0, 0));
        let all = vec![
            at(2026, 3, 9, 13, 0),
            at(2026, 3, 10, 13, 0),
            at(2026, 3, 11, 13, 0),
        ];
        let without_tenth = vec![all[0], all[2]];
        for exdate in [
            "EXDATE:20260310T130000Z",
            "EXDATE;TZID=America/New_York:20260310T090000",
            "EXDATE;TZID=\"America/New_York\":20260310T090000",
            "EXDATE:20260310T090000",
            "EXDATE;VALUE=DATE:20260310",
            "EXDATE;TZID=Europe/Berlin:20260310T140000",
            "EXDATE;VALUE=DATE-TIME;X-GOOGLE-ORIGIN=1:20260310T130000Z",
            "EXDATE:20260301T130000Z,20260310T130000Z",
            "exdate:20260310T130000Z",
        ] {
            let series = Fixture::timed(
                local(NEW_YORK, 2026, 3, 9, 9, 0),
                60,
                NEW_YORK,
                &["RRULE:FREQ=DAILY", exdate],
            );
            assert_eq!(series.starts(week), without_tenth, "{exdate}");
        }
        // An EXDATE at another time of day removes nothing.
        let series = Fixture::timed(
            local(NEW_YORK, 2026, 3, 9, 9, 0),
            60,
            NEW_YORK,
            &["RRULE:FREQ=DAILY", "EXDATE:20260310T140000Z"],
        );
        assert_eq!(series.starts(week), all);
        // The form from Google's documentation, on a 10:00 series.
        let series = Fixture::timed(
            local(NEW_YORK, 2026, 3, 9, 10, 0),
            60,
            NEW_YORK,
            &["RRULE:FREQ=DAILY", "EXDATE:20260310T140000Z"],
        );
        assert_eq!(
            series.starts(week),
            vec![at(2026, 3, 9, 14, 0), at(2026, 3, 11, 14, 0)]
        );
    }

    #[test]
    fn exdate_forms_remove_one_all_day_instance_and_the_start_itself() {
        let days = window(at(2026, 3, 9, 0, 0), at(2026, 3, 12, 0, 0));
        for exdate in [
            "EXDATE;VALUE=DATE:20260310",
            "EXDATE:20260310",
            "EXDATE:20260310T000000Z",
            "EXDATE;TZID=Australia/Sydney:20260310T000000",
        ] {
            let series = Fixture::all_day(date(2026, 3, 9), 1, &["RRULE:FREQ=DAILY", exdate]);
            assert_eq!(
                series.dates(None, days),
                vec![date(2026, 3, 9), date(2026, 3, 11)],
                "{exdate}"
            );
        }
        let series = Fixture::all_day(
            date(2026, 3, 9),
            1,
            &["RRULE:FREQ=DAILY", "EXDATE;VALUE=DATE:20260309"],
        );
        assert_eq!(
            series.dates(None, days),
            vec![date(2026, 3, 10), date(2026, 3, 11)]
        );
    }

    #[test]
    fn all_day_series_give_each_date_once_whatever_the_rule_hours() {
        let series = Fixture::all_day(
            date(2026, 3, 9),
            1,
            &[
                "RRULE:FREQ=DAILY;BYHOUR=0,12",
                "EXRULE:FREQ=WEEKLY;BYDAY=TU;BYHOUR=12",
            ],
        );
        let days = window(at(2026, 3, 9, 0, 0), at(2026, 3, 12, 0, 0));
        assert_eq!(
            series.dates(None, days),
            vec![date(2026, 3, 9), date(2026, 3, 11)]
        );
    }

    #[test]
    fn rdates_add_instances_with_the_master_duration() {
        let series = Fixture::timed(
            local(NEW_YORK, 2026, 3, 2, 9, 0),
            60,
            NEW_YORK,
            &[
                "RRULE:FREQ=WEEKLY;COUNT=3",
                "RDATE;TZID=America/New_York:20260311T150000",
                "RDATE;VALUE=PERIOD:20260312T100000Z/20260312T120000Z",
                "RDATE:20260316T130000Z",
                "RDATE;VALUE=DATE:20260318",
            ],
        );
        let occurrences = series.expand(None, window(at(2026, 3, 1, 0, 0), at(2026, 4, 1, 0, 0)));
        let starts: Vec<_> = occurrences.iter().map(|o| o.start.to_instant(None)).collect();
        assert_eq!(
            starts,
            vec![
                at(2026, 3, 2, 14, 0),
                at(2026, 3, 9, 13, 0),
                at(2026, 3, 11, 19, 0),
                at(2026, 3, 12, 10, 0),
                at(2026, 3, 16, 13, 0),
                at(2026, 3, 18, 13, 0),
            ]
        );
        for occurrence in &occurrences {
            let (start, end) = to_instant_range(&occurrence.start, &occurrence.end, None);
            assert_eq!(end - start, TimeDelta::hours(1));
        }
        assert_eq!(
            series.range(None),
            (at(2026, 3, 2, 14, 0), at(2026, 3, 18, 14, 0))
        );

        let all_day = Fixture::all_day(
            date(2026, 3, 1),
            1,
            &["RRULE:FREQ=DAILY;COUNT=2", "RDATE;VALUE=DATE:20260320,20260325"],
        );
        assert_eq!(
            all_day.dates(None, window(at(2026, 1, 1, 0, 0), at(2027, 1, 1, 0, 0))),
            vec![
                date(2026, 3, 1),
                date(2026, 3, 2),
                date(2026, 3, 20),
                date(2026, 3, 25)
            ]
        );
    }

    #[test]
    fn exrule_subtracts_its_instances_also_when_skipping_ahead() {
        let series = Fixture::timed(
            local(BERLIN, 2026, 1, 5, 9, 0),
            60,
            BERLIN,
            &["RRULE:FREQ=DAILY", "EXRULE:FREQ=WEEKLY;BYDAY=SA,SU"],
        );
        for year in [2026, 2031] {
            let week = window(at(year, 3, 2, 0, 0), at(year, 3, 9, 0, 0));
            let starts = series.starts(week);
            assert_eq!(starts.len(), 5, "{year}");
            for start in starts {
                let weekday = start.with_timezone(&Tz::Europe__Berlin).weekday();
                assert!(
                    !matches!(weekday, chrono::Weekday::Sat | chrono::Weekday::Sun),
                    "{start}"
                );
                assert_eq!(
                    local_time(start, BERLIN),
                    NaiveTime::from_hms_opt(9, 0, 0).unwrap()
                );
            }
        }
    }

    #[test]
    fn count_and_until_bound_the_series_and_its_range() {
        let start = local(NEW_YORK, 2026, 3, 1, 9, 0);
        let everything = window(at(2020, 1, 1, 0, 0), at(2030, 1, 1, 0, 0));
        let fifth = at(2026, 3, 5, 14, 0);
        for rule in [
            "RRULE:FREQ=DAILY;COUNT=5",
            "RRULE:FREQ=DAILY;UNTIL=20260305T140000Z",
        ] {
            let series = Fixture::timed(start, 60, NEW_YORK, &[rule]);
            let starts = series.starts(everything);
            assert_eq!(starts.len(), 5, "{rule}");
            assert_eq!(starts.last(), Some(&fifth), "{rule}");
            assert_eq!(series.range(None), (start, fifth + TimeDelta::hours(1)), "{rule}");
        }
        // A date UNTIL includes its whole local day; the range ends at that day's end plus the duration.
        let series = Fixture::timed(start, 60, NEW_YORK, &["RRULE:FREQ=DAILY;UNTIL=20260305"]);
        assert_eq!(series.starts(everything).last(), Some(&fifth));
        let end_of_day = local(NEW_YORK, 2026, 3, 5, 23, 59) + TimeDelta::seconds(59);
        assert_eq!(series.range(None), (start, end_of_day + TimeDelta::hours(1)));

        let unbounded = Fixture::timed(start, 60, NEW_YORK, &["RRULE:FREQ=WEEKLY;BYDAY=MO,WE"]);
        assert_eq!(unbounded.range(None), (start, UNBOUNDED_END));
        assert_eq!(UNBOUNDED_END, at(9999, 12, 31, 0, 0));

        // All-day ranges get a day of slack on each side, whatever the calendar's zone.
        let all_day = Fixture::all_day(date(2026, 3, 10), 1, &["RRULE:FREQ=DAILY;COUNT=3"]);
        assert_eq!(
            all_day.dates(None, everything),
            vec![date(2026, 3, 10), date(2026, 3, 11), date(2026, 3, 12)]
        );
        for calendar in [None, Some("America/Los_Angeles"), Some("Pacific/Kiritimati")] {
            assert_eq!(
                all_day.range(calendar),
                (at(2026, 3, 9, 0, 0), at(2026, 3, 14, 0, 0))
            );
        }

        let single = Fixture::timed(start, 90, NEW_YORK, &[]);
        assert_eq!(single.range(None), (start, start + TimeDelta::minutes(90)));
        assert_eq!(single.starts(everything), vec![start]);
    }

    #[test]
    fn all_day_series_keep_their_dates_and_read_them_in_the_calendar_zone() {
        let series = Fixture::all_day(date(2026, 3, 10), 1, &["RRULE:FREQ=WEEKLY"]);
        let march = window(at(2026, 3, 1, 0, 0), at(2026, 4, 1, 0, 0));
        let tuesdays = vec![
            date(2026, 3, 10),
            date(2026, 3, 17),
            date(2026, 3, 24),
            date(2026, 3, 31),
        ];
        let calendars = [
            None,
            Some("America/Los_Angeles"),
            Some("Australia/Sydney"),
            Some("Australia/Brisbane"),
        ];
        for calendar in calendars {
            assert_eq!(series.dates(calendar, march), tuesdays, "{calendar:?}");
            for occurrence in series.expand(calendar, march) {
                let EventTime::Date(start) = occurrence.start else {
                    panic!("timed")
                };
                assert_eq!(occurrence.end, EventTime::Date(start + TimeDelta::days(1)));
            }
        }
        let tenth = (
            EventTime::Date(date(2026, 3, 10)),
            EventTime::Date(date(2026, 3, 11)),
        );
        let range = |calendar| to_instant_range(&tenth.0, &tenth.1, calendar);
        // PDT (UTC-7) since March 8; AEDT (UTC+11) until April 5; Brisbane has no DST (UTC+10).
        assert_eq!(
            range(Some("America/Los_Angeles")),
            (at(2026, 3, 10, 7, 0), at(2026, 3, 11, 7, 0))
        );
        assert_eq!(
            range(Some("Australia/Sydney")),
            (at(2026, 3, 9, 13, 0), at(2026, 3, 10, 13, 0))
        );
        assert_eq!(
            range(Some("Australia/Brisbane")),
            (at(2026, 3, 9, 14, 0), at(2026, 3, 10, 14, 0))
        );
        assert_eq!(range(None), (at(2026, 3, 10, 0, 0), at(2026, 3, 11, 0, 0)));

        // Early UTC hours of the 10th are still the 9th in Los Angeles, already the 10th in Australia.
        let early = window(at(2026, 3, 10, 0, 0), at(2026, 3, 10, 6, 0));
        assert_eq!(series.dates(Some("America/Los_Angeles"), early), vec![]);
        assert_eq!(
            series.dates(Some("Australia/Brisbane"), early),
            vec![date(2026, 3, 10)]
        );
        assert_eq!(
            series.dates(Some("Australia/Sydney"), early),
            vec![date(2026, 3, 10)]
        );
        assert_eq!(series.dates(None, early), vec![date(2026, 3, 10)]);
        // At 14:00 UTC the 10th is over in Brisbane (the end is exclusive) and in Sydney.
        let late = window(at(2026, 3, 10, 14, 0), at(2026, 3, 10, 15, 0));
        assert_eq!(
            series.dates(Some("America/Los_Angeles"), late),
            vec![date(2026, 3, 10)]
        );
        assert_eq!(series.dates(Some("Australia/Brisbane"), late), vec![]);
        assert_eq!(series.dates(Some("Australia/Sydney"), late), vec![]);
    }

    #[test]
    fn overlap_edges() {
        let start = timed(at(2026, 3, 10, 10, 0), Some(NEW_YORK));
        let end = timed(at(2026, 3, 10, 11, 0), Some(NEW_YORK));
        let check = |from, to| overlaps(&start, &end, None, window(from, to));
        assert!(
            !check(at(2026, 3, 10, 11, 0), at(2026, 3, 10, 12, 0)),
            "ends exactly at timeMin"
        );
        assert!(
            !check(at(2026, 3, 10, 9, 0), at(2026, 3, 10, 10, 0)),
            "starts exactly at timeMax"
        );
        assert!(
            check(at(2026, 3, 10, 10, 59), at(2026, 3, 10, 12, 0)),
            "ends just after timeMin"
        );
        assert!(
            check(at(2026, 3, 10, 9, 0), at(2026, 3, 10, 10, 1)),
            "starts just before timeMax"
        );
        assert!(
            check(at(2026, 3, 10, 10, 20), at(2026, 3, 10, 10, 40)),
            "spans the whole window"
        );
        assert!(
            check(at(2026, 3, 10, 9, 0), at(2026, 3, 10, 12, 0)),
            "inside the window"
        );
        assert!(
            !check(at(2026, 3, 10, 12, 0), at(2026, 3, 10, 9, 0)),
            "inverted window"
        );

        let day = EventTime::Date(date(2026, 3, 10));
        let next = EventTime::Date(date(2026, 3, 11));
        let check_day = |from, to| overlaps(&day, &next, None, window(from, to));
        assert!(
            !check_day(at(2026, 3, 11, 0, 0), at(2026, 3, 12, 0, 0)),
            "all-day end is exclusive"
        );
        assert!(
            !check_day(at(2026, 3, 9, 0, 0), at(2026, 3, 10, 0, 0)),
            "starts at timeMax"
        );
        assert!(check_day(at(2026, 3, 10, 23, 59), at(2026, 3, 12, 0, 0)));
        assert!(
            check_day(at(2026, 3, 10, 12, 0), at(2026, 3, 10, 13, 0)),
            "spans the window"
        );

        // Instances that started before the window and still run are in it.
        let late = Fixture::timed(at(2026, 3, 1, 23, 0), 180, "UTC", &["RRULE:FREQ=DAILY"]);
        assert_eq!(
            late.starts(window(at(2026, 3, 10, 1, 0), at(2026, 3, 10, 2, 0))),
            vec![at(2026, 3, 9, 23, 0)]
        );
        assert_eq!(
            late.starts(window(at(2026, 3, 10, 2, 0), at(2026, 3, 10, 3, 0))),
            Vec::<DateTime<Utc>>::new()
        );
        let long = Fixture::all_day(date(2026, 3, 2), 3, &["RRULE:FREQ=WEEKLY"]);
        let occurrences = long.expand(None, window(at(2026, 3, 11, 12, 0), at(2026, 3, 11, 13, 0)));
        assert_eq!(occurrences.len(), 1);
        assert_eq!(occurrences[0].start, EventTime::Date(date(2026, 3, 9)));
        assert_eq!(occurrences[0].end, EventTime::Date(date(2026, 3, 12)));
        assert_eq!(
            late.starts(window(at(2026, 3, 12, 0, 0), at(2026, 3, 11, 0, 0))),
            Vec::<DateTime<Utc>>::new()
        );
    }

    #[test]
    fn instance_ids_have_googles_form() {
        let instant = timed(local(NEW_YORK, 2026, 3, 10, 9, 0), Some(NEW_YORK));
        assert_eq!(instance_id("abc123", &instant), "abc123_20260310T130000Z");
        let day = EventTime::Date(date(2026, 3, 10));
        assert_eq!(instance_id("abc123", &day), "abc123_20260310");
        assert_eq!(
            parse_instance_id("abc123_20260310T130000Z"),
            Some(("abc123", instant.instance_key()))
        );
        assert_eq!(
            parse_instance_id("abc123_20260310"),
            Some(("abc123", InstanceKey::Date(date(2026, 3, 10))))
        );
        for bad in [
            "abc123",
            "_20260310",
            "abc123_2026031",
            "abc123_20260310T130000",
            "abc123_20261340",
        ] {
            assert_eq!(parse_instance_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn unknown_x_parts_and_lines_are_tolerated() {
        let start = at(2026, 3, 1, 14, 0);
        let everything = window(at(2026, 1, 1, 0, 0), at(2027, 1, 1, 0, 0));
        let evolution = Fixture::timed(
            start,
            60,
            NEW_YORK,
            &[
                "RRULE;X-EVOLUTION-ENDDATE=20260305T140000Z:FREQ=DAILY;COUNT=5;X-EVOLUTION-ENDDATE=20260305T140000Z",
            ],
        );
        assert_eq!(evolution.starts(everything).len(), 5);
        let lower_case = Fixture::timed(
            start,
            60,
            NEW_YORK,
            &["rrule:freq=daily;count=2", "X-APPLE-FOO:bar", ""],
        );
        assert_eq!(lower_case.starts(everything).len(), 2);
    }

    #[test]
    fn bad_lines_are_errors() {
        for line in [
            "RRULE:FREQ=SOMETIMES",
            "RRULE:FREQ=WEEKLY;BYDAY=XX",
            "RRULE:",
            "RRULE:FREQ=WEEKLY;BYMONTHDAY=3",
            "RRULE:FREQ=DAILY;COUNT",
            "RRULE:FREQ=DAILY;UNTIL=soon",
            "FREQ=DAILY",
            "DTSTART:20260101T000000Z",
            "EXDATE:notadate",
            "RDATE;TZID=Mars/Olympus_Mons:20260310T090000",
        ] {
            let series = Fixture::timed(at(2026, 3, 1, 14, 0), 60, NEW_YORK, &["RRULE:FREQ=DAILY", line]);
            let expected = Err(RecurrenceError::InvalidLine {
                line: line.to_owned(),
                reason: String::new(),
            });
            let strip = |result: Result<_, RecurrenceError>| {
                result.map_err(|error| match error {
                    RecurrenceError::InvalidLine { line, .. } => RecurrenceError::InvalidLine {
                        line,
                        reason: String::new(),
                    },
                    other => other,
                })
            };
            let window = window(at(2026, 3, 1, 0, 0), at(2026, 4, 1, 0, 0));
            assert_eq!(
                strip(expand(&series.series(), None, window, 10).map(|_| ())),
                expected,
                "{line}"
            );
            assert_eq!(
                strip(series_range(&series.series(), None).map(|_| ())),
                expected,
                "{line}"
            );
        }
        let mixed = Fixture {
            start: EventTime::Date(date(2026, 3, 1)),
            end: timed(at(2026, 3, 2, 0, 0), None),
            recurrence: vec!["RRULE:FREQ=DAILY".to_owned()],
        };
        assert_eq!(
            series_range(&mixed.series(), None),
            Err(RecurrenceError::MixedStartEnd)
        );
    }

    #[test]
    fn limit_caps_instances_and_reports_truncation() {
        let secondly = Fixture::timed(at(2026, 3, 10, 13, 0), 0, NEW_YORK, &["RRULE:FREQ=SECONDLY"]);
        let series = secondly.series();
        for year in [2026, 2030] {
            let hour = window(at(year, 3, 10, 13, 0), at(year, 3, 10, 14, 0));
            // Zero-length instances exactly at timeMin do not overlap it.
            let expansion = expand(&series, None, hour, 100).unwrap();
            assert!(expansion.truncated);
            assert_eq!(expansion.occurrences.len(), 100);
            let first = at(year, 3, 10, 13, 0) + TimeDelta::seconds(1);
            for (index, occurrence) in expansion.occurrences.iter().enumerate() {
                assert_eq!(
                    occurrence.start.to_instant(None),
                    first + TimeDelta::seconds(index as i64)
                );
            }
        }

        let three = Fixture::timed(
            at(2026, 3, 10, 13, 0),
            60,
            NEW_YORK,
            &["RRULE:FREQ=DAILY;COUNT=3"],
        );
        let everything = window(at(2026, 1, 1, 0, 0), at(2027, 1, 1, 0, 0));
        let exact = expand(&three.series(), None, everything, 3).unwrap();
        assert_eq!((exact.occurrences.len(), exact.truncated), (3, false));
        let short = expand(&three.series(), None, everything, 2).unwrap();
        assert_eq!((short.occurrences.len(), short.truncated), (2, true));
        let none = expand(&three.series(), None, everything, 0).unwrap();
        assert_eq!((none.occurrences.len(), none.truncated), (0, true));
    }

    #[test]
    fn a_ten_year_old_daily_series_expands_a_week_in_a_few_steps() {
        let week = window(at(2026, 3, 2, 0, 0), at(2026, 3, 9, 0, 0));
        let expected: Vec<_> = (2..9).map(|day| at(2026, 3, day, 7, 0)).collect();
        let series = Fixture::timed(local(BERLIN, 2016, 1, 1, 8, 0), 60, BERLIN, &["RRULE:FREQ=DAILY"]);
        let (expansion, steps) = series.steps(week, FastForward::Allowed);
        let starts: Vec<_> = expansion
            .occurrences
            .iter()
            .map(|o| o.start.to_instant(None))
            .collect();
        assert_eq!(starts, expected);
        assert!(steps < 20, "{steps} steps");
        let (slow, slow_steps) = series.steps(week, FastForward::Disabled);
        assert_eq!(slow, expansion);
        assert!(slow_steps > 3_000, "{slow_steps} steps");

        // COUNT must be counted from the start: slower, same answer.
        let counted = Fixture::timed(
            local(BERLIN, 2016, 1, 1, 8, 0),
            60,
            BERLIN,
            &["RRULE:FREQ=DAILY;COUNT=5000"],
        );
        assert_eq!(counted.steps(week, FastForward::Allowed).0, expansion);

        // A month-end rule skips ahead too and still skips short months.
        let month_end = Fixture::timed(at(2020, 1, 31, 9, 0), 60, "UTC", &["RRULE:FREQ=MONTHLY"]);
        let half_year = window(at(2026, 1, 1, 0, 0), at(2026, 7, 1, 0, 0));
        let (expansion, steps) = month_end.steps(half_year, FastForward::Allowed);
        let starts: Vec<_> = expansion
            .occurrences
            .iter()
            .map(|o| o.start.to_instant(None))
            .collect();
        assert_eq!(
            starts,
            vec![
                at(2026, 1, 31, 9, 0),
                at(2026, 3, 31, 9, 0),
                at(2026, 5, 31, 9, 0)
            ]
        );
        assert!(steps < 20, "{steps} steps");
    }

    #[test]
    fn yearly_rules_skip_ahead_to_the_start_of_a_year() {
        let rest_of_year = window(at(2026, 1, 20, 0, 0), at(2027, 1, 1, 0, 0));
        for (rule, expected) in [
            // Month and day come from DTSTART (June 15).
            ("RRULE:FREQ=YEARLY", vec![at(2026, 6, 15, 9, 0)]),
            // February comes before DTSTART's month: skipping to June would lose it.
            (
                "RRULE:FREQ=YEARLY;BYMONTH=2,6",
                vec![at(2026, 2, 15, 9, 0), at(2026, 6, 15, 9, 0)],
            ),
            (
                "RRULE:FREQ=YEARLY;INTERVAL=4;BYMONTH=2",
                vec![at(2026, 2, 15, 9, 0)],
            ),
        ] {
            let series = Fixture::timed(at(2018, 6, 15, 9, 0), 60, "UTC", &[rule]);
            let (fast, steps) = series.steps(rest_of_year, FastForward::Allowed);
            let starts: Vec<_> = fast
                .occurrences
                .iter()
                .map(|o| o.start.to_instant(None))
                .collect();
            assert_eq!(starts, expected, "{rule}");
            assert!(steps < 10, "{rule}: {steps} steps");
            assert_eq!(
                series.steps(rest_of_year, FastForward::Disabled).0,
                fast,
                "{rule}"
            );
        }
    }

    #[test]
    fn abusive_counted_rules_give_up_instead_of_spinning() {
        let series = Fixture::timed(
            at(2016, 1, 1, 0, 0),
            0,
            NEW_YORK,
            &["RRULE:FREQ=SECONDLY;COUNT=4000000000"],
        );
        let day = window(at(2026, 1, 1, 0, 0), at(2026, 1, 2, 0, 0));
        assert_eq!(
            expand(&series.series(), None, day, 10),
            Err(RecurrenceError::TooExpensive)
        );
        assert_eq!(series.range(None), (at(2016, 1, 1, 0, 0), UNBOUNDED_END));
    }

    #[test]
    fn dtstart_always_counts() {
        // UNTIL before the start: the start alone.
        let series = Fixture::all_day(date(2026, 3, 10), 1, &["RRULE:FREQ=DAILY;UNTIL=20200101"]);
        assert_eq!(
            series.dates(None, window(at(2020, 1, 1, 0, 0), at(2030, 1, 1, 0, 0))),
            vec![date(2026, 3, 10)]
        );
        assert_eq!(series.range(None), (at(2026, 3, 9, 0, 0), at(2026, 3, 12, 0, 0)));
        // A Tuesday start of a Mondays-only rule.
        let tuesday = Fixture::timed(at(2026, 3, 3, 9, 0), 60, "UTC", &["RRULE:FREQ=WEEKLY;BYDAY=MO"]);
        assert_eq!(
            tuesday.starts(window(at(2026, 3, 1, 0, 0), at(2026, 3, 17, 0, 0))),
            vec![at(2026, 3, 3, 9, 0), at(2026, 3, 9, 9, 0), at(2026, 3, 16, 9, 0)]
        );
    }

    #[test]
    fn degenerate_times_are_normalised() {
        let instant = Fixture::timed(at(2026, 3, 10, 10, 30), 0, "UTC", &["RRULE:FREQ=DAILY;COUNT=2"]);
        assert_eq!(
            instant.starts(window(at(2026, 3, 10, 10, 0), at(2026, 3, 10, 11, 0))),
            vec![at(2026, 3, 10, 10, 30)]
        );
        let backwards = Fixture::timed(at(2026, 3, 10, 10, 30), -30, "UTC", &["RRULE:FREQ=DAILY;COUNT=2"]);
        let occurrences = backwards.expand(None, window(at(2026, 3, 10, 10, 0), at(2026, 3, 10, 11, 0)));
        assert_eq!(occurrences[0].end, timed(at(2026, 3, 10, 10, 30), Some("UTC")));
        let empty_day = Fixture::all_day(date(2026, 3, 10), 0, &["RRULE:FREQ=DAILY;COUNT=1"]);
        let occurrences = empty_day.expand(None, window(at(2026, 3, 10, 0, 0), at(2026, 3, 11, 0, 0)));
        assert_eq!(occurrences[0].end, EventTime::Date(date(2026, 3, 11)));
        // No time zone anywhere: UTC.
        let bare = Fixture {
            start: timed(at(2026, 3, 10, 10, 0), None),
            end: timed(at(2026, 3, 10, 11, 0), None),
            recurrence: vec!["RRULE:FREQ=DAILY;COUNT=2".to_owned()],
        };
        assert_eq!(
            bare.starts(window(at(2026, 3, 1, 0, 0), at(2026, 4, 1, 0, 0)))
                .len(),
            2
        );
        // The calendar's zone stands in for a missing start zone.
        let weekly = Fixture {
            start: timed(local(NEW_YORK, 2026, 3, 2, 9, 0), None),
            end: timed(local(NEW_YORK, 2026, 3, 2, 10, 0), None),
            recurrence: vec!["RRULE:FREQ=WEEKLY".to_owned()],
        };
        let expansion = expand(
            &weekly.series(),
            Some(NEW_YORK),
            window(at(2026, 3, 9, 0, 0), at(2026, 3, 10, 0, 0)),
            10,
        )
        .unwrap();
        assert_eq!(expansion.occurrences[0].start, timed(at(2026, 3, 9, 13, 0), None));
    }

    #[test]
    fn exceptions_replace_or_remove_their_instances() {
        let series = Fixture::timed(
            local(NEW_YORK, 2026, 3, 9, 9, 0),
            60,
            NEW_YORK,
            &["RRULE:FREQ=DAILY"],
        );
        let window = window(at(2026, 3, 10, 0, 0), at(2026, 3, 14, 0, 0));
        let occurrences = series.expand(None, window);
        assert_eq!(occurrences.len(), 4);
        let original = |day| timed(at(2026, 3, day, 13, 0), Some(NEW_YORK));
        let moved_here = (
            timed(at(2026, 3, 11, 19, 0), None),
            timed(at(2026, 3, 11, 20, 0), None),
        );
        let moved_away = (
            timed(at(2026, 3, 20, 13, 0), None),
            timed(at(2026, 3, 20, 14, 0), None),
        );
        let moved_in = (
            timed(at(2026, 3, 12, 8, 0), None),
            timed(at(2026, 3, 12, 9, 0), None),
        );
        // Labels do not matter to identity: a UTC-labelled original start still matches.
        let eleventh = timed(at(2026, 3, 11, 13, 0), Some("UTC"));
        let (tenth, twelfth, twenty_fifth, thirtieth) =
            (original(10), original(12), original(25), original(30));
        let exceptions = [
            Exception {
                original_start: &tenth,
                replacement: None,
            },
            Exception {
                original_start: &eleventh,
                replacement: Some((&moved_here.0, &moved_here.1)),
            },
            Exception {
                original_start: &twelfth,
                replacement: Some((&moved_away.0, &moved_away.1)),
            },
            Exception {
                original_start: &twenty_fifth,
                replacement: Some((&moved_in.0, &moved_in.1)),
            },
            Exception {
                original_start: &thirtieth,
                replacement: None,
            },
        ];
        let thirteenth = occurrences[3].clone();
        assert_eq!(thirteenth.start, original(13));
        assert_eq!(
            apply_exceptions(occurrences, &exceptions, None, window),
            vec![
                Instance::Exception(1),
                Instance::Exception(3),
                Instance::Expanded(thirteenth)
            ]
        );

        let days = Fixture::all_day(date(2026, 3, 9), 1, &["RRULE:FREQ=DAILY;COUNT=3"]);
        let window = super::Window::new(at(2026, 3, 1, 0, 0), at(2026, 4, 1, 0, 0));
        let occurrences = days.expand(Some("Australia/Sydney"), window);
        let cancelled = EventTime::Date(date(2026, 3, 10));
        let exceptions = [Exception {
            original_start: &cancelled,
            replacement: None,
        }];
        let kept: Vec<_> = apply_exceptions(occurrences, &exceptions, Some("Australia/Sydney"), window)
            .into_iter()
            .map(|instance| match instance {
                Instance::Expanded(occurrence) => occurrence.start,
                Instance::Exception(index) => panic!("exception {index}"),
            })
            .collect();
        assert_eq!(
            kept,
            vec![
                EventTime::Date(date(2026, 3, 9)),
                EventTime::Date(date(2026, 3, 11))
            ]
        );
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;
    use proptest::sample::select;

    use super::*;

    const ZONES: [&str; 7] = [
        "UTC",
        "America/New_York",
        "America/Los_Angeles",
        "Europe/Berlin",
        "Australia/Sydney",
        "Asia/Kolkata",
        "Pacific/Chatham",
    ];

    /// A rule valid for its frequency, whether it is hourly (windows stay near the start so the reference
    /// expansion from DTSTART stays cheap) and how much longer its windows get (to hold yearly instances).
    fn rule() -> impl Strategy<Value = (String, bool, i64)> {
        let weekdays = proptest::sample::subsequence(vec!["MO", "TU", "WE", "TH", "FR", "SA", "SU"], 1..=3)
            .prop_map(|days| days.join(","));
        let set_pos = prop_oneof![Just(1i8), Just(-1i8), Just(2i8)];
        (
            0..11usize,
            1u16..=3,
            weekdays,
            -3i8..=28,
            1u32..=12,
            set_pos,
            0u32..12,
        )
            .prop_map(|(shape, interval, days, month_day, month, set_pos, hour)| {
                let month_day = if month_day == 0 { 1 } else { month_day };
                let hours = format!("{hour},{}", hour + 12);
                let text = match shape {
                    0 => format!("FREQ=DAILY;INTERVAL={interval}"),
                    1 => format!("FREQ=DAILY;BYDAY={days}"),
                    2 => format!("FREQ=DAILY;INTERVAL={interval};BYHOUR={hours};BYMINUTE=0,45"),
                    3 => format!("FREQ=WEEKLY;INTERVAL={interval};BYDAY={days}"),
                    4 => format!("FREQ=WEEKLY;INTERVAL={interval};BYDAY={days};BYHOUR={hours};WKST=SU"),
                    5 => format!("FREQ=MONTHLY;INTERVAL={interval};BYMONTHDAY={month_day}"),
                    6 => format!("FREQ=MONTHLY;BYDAY={days};BYSETPOS={set_pos}"),
                    7 => format!("FREQ=YEARLY;INTERVAL={interval};BYMONTH={month}"),
                    8 => format!("FREQ=YEARLY;INTERVAL={interval}"),
                    9 => format!("FREQ=YEARLY;BYMONTH={month};BYMONTHDAY={month_day}"),
                    _ => format!("FREQ=HOURLY;INTERVAL={interval};BYDAY={days}"),
                };
                let scale = match shape {
                    5 | 6 => 5,
                    7..=9 => 25,
                    _ => 1,
                };
                (text, shape == 10, scale)
            })
    }

    fn case() -> impl Strategy<Value = (Fixture, Option<&'static str>, Window)> {
        (
            rule(),
            proptest::option::of(0i64..4000),
            0..4usize,
            select(ZONES.to_vec()),
            select(ZONES.to_vec()),
            any::<bool>(),
            0i64..2500,
            0u32..24,
            prop_oneof![Just(0u32), Just(30)],
            1i64..3 * 24 * 60,
            0i64..3000 * 24,
            1i64..20 * 24,
        )
            .prop_map(
                |(
                    (rule, hourly, scale),
                    until_days,
                    extra,
                    zone,
                    calendar,
                    all_day,
                    start_day,
                    hour,
                    minute,
                    minutes,
                    offset,
                    hours,
                )| {
                    let start = date(2018, 1, 1) + TimeDelta::days(start_day);
                    let offset = if hourly { offset % (40 * 24) } else { offset };
                    let mut lines = vec![match until_days {
                        Some(days) => format!(
                            "RRULE:{rule};UNTIL={}",
                            (start + TimeDelta::days(days)).format("%Y%m%d")
                        ),
                        None => format!("RRULE:{rule}"),
                    }];
                    lines.push(format!(
                        "EXDATE;VALUE=DATE:{}",
                        (start + TimeDelta::days(7)).format("%Y%m%d")
                    ));
                    match extra {
                        0 => lines.push("EXRULE:FREQ=WEEKLY;BYDAY=SA".to_owned()),
                        1 => lines.push(format!(
                            "RDATE;VALUE=DATE:{}",
                            (start + TimeDelta::days(10)).format("%Y%m%d")
                        )),
                        _ => {}
                    }
                    let fixture = if all_day && !hourly {
                        Fixture {
                            start: EventTime::Date(start),
                            end: EventTime::Date(start + TimeDelta::days(1 + minutes % 3)),
                            recurrence: lines,
                        }
                    } else {
                        let instant = localize(
                            start.and_hms_opt(hour, minute, 0).unwrap_or_default(),
                            zone.parse().unwrap_or(Tz::UTC),
                        );
                        Fixture {
                            start: EventTime::DateTime {
                                instant,
                                time_zone: Some(zone.to_owned()),
                            },
                            end: EventTime::DateTime {
                                instant: instant + TimeDelta::minutes(minutes),
                                time_zone: Some(zone.to_owned()),
                            },
                            recurrence: lines,
                        }
                    };
                    let time_min = midnight_utc(start) + TimeDelta::hours(offset);
                    let window = Window::new(time_min, time_min + TimeDelta::hours(hours * scale));
                    (fixture, Some(calendar), window)
                },
            )
    }

    fn date(year: i32, month: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(year, month, day).unwrap_or_default()
    }

    struct Fixture {
        start: EventTime,
        end: EventTime,
        recurrence: Vec<String>,
    }

    impl std::fmt::Debug for Fixture {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{:?} .. {:?} {:?}", self.start, self.end, self.recurrence)
        }
    }

    impl Fixture {
        fn series(&self) -> Series<'_> {
            Series {
                start: &self.start,
                end: &self.end,
                recurrence: &self.recurrence,
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 160, ..ProptestConfig::default() })]

        /// Skipping ahead gives exactly what iterating from DTSTART gives, and the result is sorted,
        /// unique, within the limit and inside the window.
        #[test]
        fn skipping_ahead_changes_nothing((fixture, calendar, window) in case(), limit in 1usize..300) {
            let series = fixture.series();
            let (fast, _) = expand_with(&series, calendar, window, limit, FastForward::Allowed).unwrap();
            let (slow, _) = expand_with(&series, calendar, window, limit, FastForward::Disabled).unwrap();
            prop_assert_eq!(&fast, &slow);
            prop_assert!(fast.occurrences.len() <= limit);
            let mut previous = None;
            for occurrence in &fast.occurrences {
                prop_assert!(overlaps(&occurrence.start, &occurrence.end, calendar, window));
                let key = occurrence.original_start.instance_key();
                prop_assert!(previous < Some(key), "not sorted or not unique: {:?}", fast.occurrences);
                previous = Some(key);
            }
        }

        /// A window's expansion is the full expansion filtered by overlap, and lies inside series_range.
        #[test]
        fn windows_cut_the_full_expansion((fixture, calendar, window) in case()) {
            let series = fixture.series();
            let (range_start, range_end) = series_range(&series, calendar).unwrap();
            let windowed = expand(&series, calendar, window, 100_000).unwrap();
            prop_assert!(!windowed.truncated);
            for occurrence in &windowed.occurrences {
                let (start, end) = to_instant_range(&occurrence.start, &occurrence.end, calendar);
                prop_assert!(range_start <= start && end <= range_end, "{start}..{end} outside {range_start}..{range_end}");
            }
            if range_end < UNBOUNDED_END && range_end - range_start < TimeDelta::days(800) {
                let full = expand(&series, calendar, Window::new(range_start, range_end), 100_000).unwrap();
                let filtered: Vec<_> = full
                    .occurrences
                    .into_iter()
                    .filter(|o| overlaps(&o.start, &o.end, calendar, window))
                    .collect();
                prop_assert_eq!(windowed.occurrences, filtered);
            }
        }

        /// Daily and weekly timed series keep their local start time in every zone, across DST.
        #[test]
        fn local_time_survives_dst(
            zone in select(ZONES.to_vec()),
            weekly in any::<bool>(),
            start_day in 0i64..3000,
            hour in 5u32..23,
            offset_days in 0i64..3000,
        ) {
            let tz: Tz = zone.parse().unwrap_or(Tz::UTC);
            let day = date(2018, 1, 1) + TimeDelta::days(start_day);
            let instant = localize(day.and_hms_opt(hour, 15, 0).unwrap_or_default(), tz);
            let fixture = Fixture {
                start: EventTime::DateTime { instant, time_zone: Some(zone.to_owned()) },
                end: EventTime::DateTime { instant: instant + TimeDelta::minutes(45), time_zone: Some(zone.to_owned()) },
                recurrence: vec![if weekly { "RRULE:FREQ=WEEKLY" } else { "RRULE:FREQ=DAILY" }.to_owned()],
            };
            let time_min = instant + TimeDelta::days(offset_days);
            let window = Window::new(time_min, time_min + TimeDelta::days(60));
            let expansion = expand(&fixture.series(), None, window, 1000).unwrap();
            let least = if weekly { 8 } else { 59 };
            prop_assert!(expansion.occurrences.len() >= least);
            for occurrence in expansion.occurrences {
                let start = occurrence.start.to_instant(None).with_timezone(&tz);
                prop_assert_eq!(start.time(), NaiveTime::from_hms_opt(hour, 15, 0).unwrap_or_default());
                if weekly {
                    prop_assert_eq!(start.weekday(), day.weekday());
                }
                let (from, to) = to_instant_range(&occurrence.start, &occurrence.end, None);
                prop_assert_eq!(to - from, TimeDelta::minutes(45));
            }
        }
    }
}
