//! Splitting a series at one of its instances ("this and following"), as Google Calendar does: the
//! series ends before the instance (its rules get an UNTIL, or a smaller COUNT), and a new series starts
//! at the instance with the same rules (COUNT reduced by the instances before, UNTIL kept). RDATEs and
//! EXDATEs go to the side they fall on; exceptions at or after the instance move to the new series.
//!
//! The new series' first instance may take another time of day (or another length): the following
//! instances move with it in wall-clock time. Its date stays: a split never moves instances to other days.
//!
//! Pure: the caller writes the result to Google. Every split is checked by expanding both halves against
//! the original around the split; a series whose rules would not survive the split unchanged (a rule that
//! does not produce the split instance and depends on DTSTART, an explicit BYHOUR with a new time of day)
//! is refused rather than silently changed.

use super::{
    DateValue, EventTime, InstanceKey, Plan, RecurrenceError, STEP_BUDGET, Series, Window, add, add_days,
    expand, localize, midnight_utc, parse_date_value, parse_zone, series_range, sub,
};
use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use rrule::{RRule, RRuleSet, Unvalidated};
use std::collections::BTreeSet;

/// What to split, and where.
#[derive(Debug, Clone, Copy)]
pub struct SplitInput<'a> {
    /// The series master as stored.
    pub series: Series<'a>,
    pub calendar_time_zone: Option<&'a str>,
    /// The original starts of the series' exceptions, each with whether it is cancelled.
    pub exceptions: &'a [(InstanceKey, bool)],
    /// The instance the new series starts at.
    pub at: InstanceKey,
    /// The start the instance at the split takes (the new series' start); `None` keeps its own.
    pub new_start: Option<&'a EventTime>,
    /// The end the instance at the split takes; `None` keeps its length.
    pub new_end: Option<&'a EventTime>,
}

/// The outcome of [`split`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SplitPlan {
    /// Nothing of the series comes before the instance: the change is one to the whole series.
    Whole,
    Split(Split),
}

/// A series cut in two.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// The original series' new recurrence lines: it ends before the split.
    pub truncated: Vec<String>,
    /// The new series' start (the split instance, changed as asked).
    pub start: EventTime,
    pub end: EventTime,
    /// The new series' recurrence lines (empty when only the split instance is left: a single event).
    /// Cancelled exceptions that moved are EXDATEs here.
    pub recurrence: Vec<String>,
    /// The exceptions at or after the split, in the order of `exceptions`.
    pub moved: Vec<Moved>,
}

/// An exception that leaves the original series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    /// Index into [`SplitInput::exceptions`].
    pub index: usize,
    pub cancelled: bool,
    /// The instance of the new series it replaces (changed exceptions are re-created on it).
    pub original_start: EventTime,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    #[error("not an instance of the series")]
    NotAnInstance,
    #[error("{0}")]
    Recurrence(#[from] RecurrenceError),
    /// The change itself is not one a split can carry (field, reason).
    #[error("{1}")]
    Unsupported(&'static str, &'static str),
    #[error("this series' rules cannot be split at this instance without changing its other instances")]
    Unsplittable,
}

/// How far before the split the result is checked against the original, and at least how far after.
const CHECK_DAYS: i64 = 400;
/// How far after the split the result is checked at most (a bounded series: to its end).
const CHECK_YEARS: i64 = 10;
/// Most instances the check expands per series; a series denser than that is checked on what fits.
const CHECK_LIMIT: usize = 5_000;

/// Splits `input.series` at `input.at`.
pub fn split(input: &SplitInput<'_>) -> Result<SplitPlan, SplitError> {
    let series = &input.series;
    let calendar = input.calendar_time_zone;
    let plan = Plan::parse(series, calendar)?;
    let at_key = match (input.at, plan.all_day) {
        (InstanceKey::Date(date), true) => midnight_utc(date),
        (InstanceKey::Instant(at), false) => at,
        _ => return Err(SplitError::NotAnInstance),
    };
    let (at_start, _) = plan.instant_range(at_key);
    let around = Window::new(
        sub(at_start, TimeDelta::seconds(1)),
        add(at_start, TimeDelta::seconds(1)),
    );
    let occurrence = expand(series, calendar, around, 64)?
        .occurrences
        .into_iter()
        .find(|o| o.original_start.instance_key() == input.at)
        .ok_or(SplitError::NotAnInstance)?;
    let (range_start, _) = series_range(series, calendar)?;
    if expand(series, calendar, Window::new(range_start, at_start), 1)?
        .occurrences
        .is_empty()
    {
        return Ok(SplitPlan::Whole);
    }

    let shift = Shift::new(&plan, at_key, &occurrence.start, input.new_start)?;
    let start = input.new_start.cloned().unwrap_or(occurrence.start.clone());
    let end = match input.new_end {
        Some(end) if end.is_all_day() != plan.all_day => {
            return Err(SplitError::Unsupported(
                "end",
                "the end must stay of the same kind as the start",
            ));
        }
        Some(end) => end.clone(),
        None => shifted_end(&start, &occurrence.start, &occurrence.end),
    };

    let mut truncated = Vec::new();
    let mut following = Vec::new();
    for line in series.recurrence {
        split_line(&plan, line, at_key, &shift, &mut truncated, &mut following)?;
    }
    let mut moved = Vec::new();
    for (index, (key, cancelled)) in input.exceptions.iter().enumerate() {
        let key_at = match (key, plan.all_day) {
            (InstanceKey::Date(date), true) => midnight_utc(*date),
            (InstanceKey::Instant(at), false) => *at,
            // An exception of the other kind replaces no instance: it stays where it is.
            _ => continue,
        };
        if key_at < at_key {
            continue;
        }
        let original_start = shift.time(key_at, &start);
        if *cancelled {
            following.push(exdate_line(&original_start));
        }
        moved.push(Moved {
            index,
            cancelled: *cancelled,
            original_start,
        });
    }
    let result = Split {
        truncated,
        start,
        end,
        recurrence: following,
        moved,
    };
    check(input, &plan, at_key, &shift, &result)?;
    Ok(SplitPlan::Split(result))
}

/// How instances from the split on move: in wall-clock time of the series' zone (none for all-day).
#[derive(Debug, Clone)]
struct Shift {
    /// The series' zone and the new series' zone.
    from: Tz,
    to: Tz,
    /// Wall-clock change of the split instance.
    delta: TimeDelta,
    all_day: bool,
}

impl Shift {
    fn new(
        plan: &Plan,
        at_key: DateTime<Utc>,
        current: &EventTime,
        new_start: Option<&EventTime>,
    ) -> Result<Self, SplitError> {
        let identity = Self {
            from: plan.zone,
            to: plan.zone,
            delta: TimeDelta::zero(),
            all_day: plan.all_day,
        };
        let Some(new_start) = new_start else {
            return Ok(identity);
        };
        match (current, new_start) {
            (EventTime::Date(old), EventTime::Date(new)) if old == new => Ok(identity),
            (EventTime::Date(_), EventTime::Date(_)) => Err(SplitError::Unsupported(
                "start",
                "splitting a series keeps the date of the instance it splits at",
            )),
            (EventTime::DateTime { .. }, EventTime::DateTime { instant, time_zone }) => {
                let to = parse_zone(time_zone.as_deref()).unwrap_or(plan.zone);
                let old_local = at_key.with_timezone(&plan.zone).naive_local();
                let new_local = instant.with_timezone(&to).naive_local();
                if old_local.date() != new_local.date() {
                    return Err(SplitError::Unsupported(
                        "start",
                        "splitting a series keeps the date of the instance it splits at",
                    ));
                }
                Ok(Self {
                    from: plan.zone,
                    to,
                    delta: new_local - old_local,
                    all_day: false,
                })
            }
            _ => Err(SplitError::Unsupported(
                "start",
                "splitting a series cannot turn timed instances into all-day ones or back",
            )),
        }
    }

    fn is_identity(&self) -> bool {
        self.all_day || (self.delta == TimeDelta::zero() && self.from == self.to)
    }

    /// Where the instance at `key` (on the rules' timeline) lands in the new series.
    fn key(&self, key: DateTime<Utc>) -> DateTime<Utc> {
        if self.is_identity() {
            return key;
        }
        let local = key.with_timezone(&self.from).naive_local();
        localize(local.checked_add_signed(self.delta).unwrap_or(local), self.to)
    }

    /// The new series' instance at `key` as an original start, labelled like `start`.
    fn time(&self, key: DateTime<Utc>, start: &EventTime) -> EventTime {
        match start {
            EventTime::Date(_) => EventTime::Date(key.date_naive()),
            EventTime::DateTime { time_zone, .. } => EventTime::DateTime {
                instant: self.key(key),
                time_zone: time_zone.clone(),
            },
        }
    }
}

/// The end that keeps an instance's length when its start moves to `start`.
fn shifted_end(start: &EventTime, old_start: &EventTime, old_end: &EventTime) -> EventTime {
    match (start, old_start, old_end) {
        (EventTime::Date(new), EventTime::Date(old), EventTime::Date(end)) => {
            EventTime::Date(add_days(*new, (*end - *old).num_days()))
        }
        (
            EventTime::DateTime { instant, .. },
            EventTime::DateTime { instant: old, .. },
            EventTime::DateTime {
                instant: end,
                time_zone,
            },
        ) => EventTime::DateTime {
            instant: add(*instant, *end - *old),
            time_zone: time_zone.clone(),
        },
        _ => old_end.clone(),
    }
}

fn exdate_line(original: &EventTime) -> String {
    match original {
        EventTime::Date(date) => format!("EXDATE;VALUE=DATE:{}", date.format("%Y%m%d")),
        EventTime::DateTime { instant, .. } => format!("EXDATE:{}", instant.format("%Y%m%dT%H%M%SZ")),
    }
}

/// Sends one recurrence line to the side(s) it belongs to.
fn split_line(
    plan: &Plan,
    line: &str,
    at_key: DateTime<Utc>,
    shift: &Shift,
    truncated: &mut Vec<String>,
    following: &mut Vec<String>,
) -> Result<(), SplitError> {
    let trimmed = line.trim();
    if trimmed.is_empty() {
        return Ok(());
    }
    let invalid = |reason: &str| RecurrenceError::InvalidLine {
        line: line.to_owned(),
        reason: reason.to_owned(),
    };
    let (head, value) = trimmed.split_once(':').ok_or_else(|| invalid("no ':'"))?;
    let mut head_parts = head.split(';');
    let name = head_parts.next().unwrap_or_default().trim().to_ascii_uppercase();
    let mut zone = None;
    for parameter in head_parts {
        if let Some((key, tzid)) = parameter.split_once('=')
            && key.trim().eq_ignore_ascii_case("TZID")
        {
            zone = Some(
                tzid.trim()
                    .trim_matches('"')
                    .parse::<Tz>()
                    .map_err(|_| invalid("unknown TZID"))?,
            );
        }
    }
    match name.as_str() {
        "RRULE" | "EXRULE" => {
            let (old, new) = split_rule(plan, &name, value, at_key, shift).map_err(|r| invalid(&r))?;
            truncated.extend(old);
            following.extend(new);
        }
        "RDATE" | "EXDATE" => {
            let mut old = Vec::new();
            let mut new_raw = Vec::new();
            let mut new_moved = Vec::new();
            let at_day = at_key.with_timezone(&plan.zone).date_naive();
            for raw in value.split(',').map(str::trim).filter(|v| !v.is_empty()) {
                let date = parse_date_value(raw, zone).ok_or_else(|| invalid("bad date"))?;
                match date {
                    // A date-only EXDATE of a timed series removes a whole local day.
                    DateValue::Date(day) if name == "EXDATE" && !plan.all_day => {
                        if day <= at_day {
                            old.push(raw);
                        }
                        if day >= at_day {
                            new_raw.push(raw.to_owned());
                        }
                    }
                    // A date-only RDATE of a timed series takes the series' time of day, wherever it is.
                    DateValue::Date(_) if !plan.all_day => {
                        if plan.rdate_key(date) < at_key {
                            old.push(raw);
                        } else {
                            new_raw.push(raw.to_owned());
                        }
                    }
                    other => {
                        let key = plan.rdate_key(other);
                        if key < at_key {
                            old.push(raw);
                        } else if shift.is_identity() {
                            new_raw.push(raw.to_owned());
                        } else {
                            new_moved.push(shift.key(key).format("%Y%m%dT%H%M%SZ").to_string());
                        }
                    }
                }
            }
            if !old.is_empty() {
                truncated.push(format!("{head}:{}", old.join(",")));
            }
            if !new_raw.is_empty() {
                following.push(format!("{head}:{}", new_raw.join(",")));
            }
            if !new_moved.is_empty() {
                following.push(format!("{name}:{}", new_moved.join(",")));
            }
        }
        // Anything else (experimental lines) stays with both.
        _ => {
            truncated.push(line.to_owned());
            following.push(line.to_owned());
        }
    }
    Ok(())
}

/// One RRULE/EXRULE for each side; `None` when a side has nothing of it.
fn split_rule(
    plan: &Plan,
    name: &str,
    value: &str,
    at_key: DateTime<Utc>,
    shift: &Shift,
) -> Result<(Option<String>, Option<String>), String> {
    let parsed = plan.parse_rule(value)?;
    let original = format!("{name}:{value}");
    if let Some(until) = parsed.get_until()
        && until.with_timezone(&Utc) < at_key
    {
        // It ends before the split already.
        return Ok((Some(original), None));
    }
    let parts: Vec<(String, String)> = value
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.trim().to_ascii_uppercase(), v.trim().to_owned()))
        .collect();
    let with = |parts: &[(String, String)], key: &str, new: Option<String>| -> String {
        let mut out: Vec<String> = parts
            .iter()
            .filter(|(k, _)| k != key && !(key == "UNTIL" && k == "COUNT"))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if let Some(new) = new {
            out.push(format!("{key}={new}"));
        }
        format!("{name}:{}", out.join(";"))
    };
    let until_before = if plan.all_day {
        add_days(at_key.date_naive(), -1).format("%Y%m%d").to_string()
    } else {
        sub(at_key, TimeDelta::seconds(1))
            .format("%Y%m%dT%H%M%SZ")
            .to_string()
    };
    if let Some(count) = parsed.get_count() {
        let before = count_before(plan, &parsed, at_key)?;
        if before >= count {
            return Ok((Some(original), None));
        }
        let old = if before > 0 {
            with(&parts, "COUNT", Some(before.to_string()))
        } else {
            with(&parts, "UNTIL", Some(until_before))
        };
        return Ok((
            Some(old),
            Some(with(&parts, "COUNT", Some((count - before).to_string()))),
        ));
    }
    let old = with(&parts, "UNTIL", Some(until_before));
    let new = match parsed.get_until() {
        Some(until) if !shift.is_identity() => {
            let until = shift.key(until.with_timezone(&Utc));
            with(&parts, "UNTIL", Some(until.format("%Y%m%dT%H%M%SZ").to_string()))
        }
        _ => original,
    };
    Ok((Some(old), Some(new)))
}

/// How many instances `rule` alone generates before `at_key` (COUNT counts them, EXDATEs or not).
fn count_before(plan: &Plan, rule: &RRule<Unvalidated>, at_key: DateTime<Utc>) -> Result<u32, String> {
    let validated = rule.clone().validate(plan.dtstart).map_err(|e| e.to_string())?;
    let set = RRuleSet::new(plan.dtstart).limit().rrule(validated);
    let mut count = 0u32;
    for (steps, at) in (&set).into_iter().enumerate() {
        if steps > STEP_BUDGET as usize {
            return Err(RecurrenceError::TooExpensive.to_string());
        }
        let key = if plan.all_day {
            midnight_utc(at.date_naive())
        } else {
            at.with_timezone(&Utc)
        };
        if key >= at_key {
            break;
        }
        count += 1;
    }
    Ok(count)
}

/// An instance key on the rules' timeline.
fn key_of(key: InstanceKey) -> DateTime<Utc> {
    match key {
        InstanceKey::Date(date) => midnight_utc(date),
        InstanceKey::Instant(at) => at,
    }
}

/// Expands both halves around the split and compares them with the original: before the split the
/// original series is unchanged, from the split on the new series holds the original's instances (moved
/// as asked, cancelled exceptions left out), and no instance is in both.
fn check(
    input: &SplitInput<'_>,
    plan: &Plan,
    at_key: DateTime<Utc>,
    shift: &Shift,
    split: &Split,
) -> Result<(), SplitError> {
    let calendar = input.calendar_time_zone;
    let day = |n: i64| TimeDelta::try_days(n).unwrap_or_default();
    let (at_start, _) = plan.instant_range(at_key);
    // From a while before the split to the series' end (within reason): a COUNT or an UNTIL that came
    // out wrong shows there.
    let (_, range_end) = series_range(&input.series, calendar)?;
    // Three days past the end: instances may move by up to a day, and the comparison keeps a margin of two.
    let time_max = add(range_end, day(3))
        .min(add(at_start, day(CHECK_YEARS * 366)))
        .max(add(at_start, day(CHECK_DAYS)));
    let window = Window::new(sub(at_start, day(CHECK_DAYS)), time_max);
    // Each expansion, and how far it is complete (a dense series stops at the limit).
    let keys = |series: &Series<'_>| -> Result<(BTreeSet<InstanceKey>, DateTime<Utc>), SplitError> {
        let expansion = expand(series, calendar, window, CHECK_LIMIT)?;
        let keys: BTreeSet<InstanceKey> = expansion
            .occurrences
            .iter()
            .map(|o| o.original_start.instance_key())
            .collect();
        let complete_to = match (expansion.truncated, keys.last()) {
            (true, Some(last)) => key_of(*last),
            _ => window.time_max,
        };
        Ok((keys, complete_to))
    };
    let (original, original_to) = keys(&input.series)?;
    let old = Series {
        start: input.series.start,
        end: input.series.end,
        recurrence: &split.truncated,
    };
    let new = Series {
        start: &split.start,
        end: &split.end,
        recurrence: &split.recurrence,
    };
    let (old, old_to) = keys(&old)?;
    let (new, new_to) = keys(&new)?;
    // Compare where all three are complete, with a margin for instances that move by up to a day.
    let cutoff = sub(original_to.min(old_to).min(new_to), day(2));
    let inner = |key: &InstanceKey| key_of(*key) < cutoff;
    let cancelled: BTreeSet<InstanceKey> = split
        .moved
        .iter()
        .filter(|m| m.cancelled)
        .map(|m| m.original_start.instance_key())
        .collect();
    // Filtered after the move: an instance just past the margin may move inside it.
    let old: BTreeSet<InstanceKey> = old.into_iter().filter(inner).collect();
    let new: BTreeSet<InstanceKey> = new.into_iter().filter(inner).collect();
    let expected_old: BTreeSet<InstanceKey> = original
        .iter()
        .copied()
        .filter(|k| key_of(*k) < at_key)
        .filter(inner)
        .collect();
    let expected_new: BTreeSet<InstanceKey> = original
        .iter()
        .filter(|k| key_of(**k) >= at_key)
        .map(|k| match k {
            InstanceKey::Date(date) => InstanceKey::Date(*date),
            InstanceKey::Instant(at) => InstanceKey::Instant(shift.key(*at)),
        })
        .filter(|k| !cancelled.contains(k))
        .filter(inner)
        .collect();
    if old != expected_old || new != expected_new {
        return Err(SplitError::Unsplittable);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, TimeZone};

    use super::*;

    const NEW_YORK: &str = "America/New_York";

    fn date(year: i32, month: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(year, month, day).unwrap()
    }

    fn at(year: i32, month: u32, day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(year, month, day, hour, minute, 0).unwrap()
    }

    fn timed(instant: DateTime<Utc>, zone: &str) -> EventTime {
        EventTime::DateTime {
            instant,
            time_zone: Some(zone.to_owned()),
        }
    }

    struct Fixture {
        start: EventTime,
        end: EventTime,
        lines: Vec<String>,
    }

    impl Fixture {
        /// 09:00 to 10:00 New York, from Monday 2026-10-05 (EDT) on.
        fn new_york(lines: &[&str]) -> Self {
            Self {
                start: timed(at(2026, 10, 5, 13, 0), NEW_YORK),
                end: timed(at(2026, 10, 5, 14, 0), NEW_YORK),
                lines: lines.iter().map(|l| (*l).to_owned()).collect(),
            }
        }

        /// All-day on Monday 2026-10-05, one day long.
        fn all_day(lines: &[&str]) -> Self {
            Self {
                start: EventTime::Date(date(2026, 10, 5)),
                end: EventTime::Date(date(2026, 10, 6)),
                lines: lines.iter().map(|l| (*l).to_owned()).collect(),
            }
        }

        fn series(&self) -> Series<'_> {
            Series {
                start: &self.start,
                end: &self.end,
                recurrence: &self.lines,
            }
        }

        fn split(
            &self,
            exceptions: &[(InstanceKey, bool)],
            at: InstanceKey,
        ) -> Result<SplitPlan, SplitError> {
            split(&SplitInput {
                series: self.series(),
                calendar_time_zone: Some(NEW_YORK),
                exceptions,
                at,
                new_start: None,
                new_end: None,
            })
        }

        fn split_ok(&self, exceptions: &[(InstanceKey, bool)], at: InstanceKey) -> Split {
            match self.split(exceptions, at) {
                Ok(SplitPlan::Split(split)) => split,
                other => panic!("expected a split, got {other:?}"),
            }
        }
    }

    fn keys(start: &EventTime, end: &EventTime, lines: &[String]) -> Vec<InstanceKey> {
        let series = Series {
            start,
            end,
            recurrence: lines,
        };
        let window = Window::new(at(2026, 1, 1, 0, 0), at(2028, 12, 31, 0, 0));
        let expansion = expand(&series, Some(NEW_YORK), window, 10_000).unwrap();
        assert!(!expansion.truncated);
        expansion
            .occurrences
            .iter()
            .map(|o| o.original_start.instance_key())
            .collect()
    }

    fn union(fixture: &Fixture, split: &Split) -> Vec<InstanceKey> {
        let mut old = keys(&fixture.start, &fixture.end, &split.truncated);
        let new = keys(&split.start, &split.end, &split.recurrence);
        assert!(old.iter().all(|k| !new.contains(k)), "an instance in both halves");
        old.extend(new);
        old
    }

    /// The `n`th (from 0) weekly Monday 09:00 New York from 2026-10-05.
    fn monday(n: i64) -> DateTime<Utc> {
        let local = date(2026, 10, 5) + TimeDelta::weeks(n);
        localize(local.and_hms_opt(9, 0, 0).unwrap(), NEW_YORK.parse().unwrap())
    }

    #[test]
    fn a_timed_weekly_series_ends_one_second_before_the_split_across_the_dst_change() {
        let fixture = Fixture::new_york(&["RRULE:FREQ=WEEKLY;BYDAY=MO"]);
        // The fifth instance is on November 2, the first Monday in EST.
        let fifth = monday(4);
        assert_eq!(fifth, at(2026, 11, 2, 14, 0));
        let split = fixture.split_ok(&[], InstanceKey::Instant(fifth));
        assert_eq!(
            split.truncated,
            ["RRULE:FREQ=WEEKLY;BYDAY=MO;UNTIL=20261102T135959Z"]
        );
        assert_eq!(split.recurrence, ["RRULE:FREQ=WEEKLY;BYDAY=MO"]);
        assert_eq!(split.start, timed(fifth, NEW_YORK));
        assert_eq!(split.end, timed(fifth + TimeDelta::hours(1), NEW_YORK));
        assert!(split.moved.is_empty());
        assert_eq!(
            union(&fixture, &split),
            keys(&fixture.start, &fixture.end, &fixture.lines)
        );
        let old = keys(&fixture.start, &fixture.end, &split.truncated);
        assert_eq!(
            old,
            (0..4)
                .map(|n| InstanceKey::Instant(monday(n)))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn an_all_day_series_ends_the_day_before() {
        let fixture = Fixture::all_day(&["RRULE:FREQ=WEEKLY;UNTIL=20261228"]);
        let split = fixture.split_ok(&[], InstanceKey::Date(date(2026, 11, 2)));
        assert_eq!(split.truncated, ["RRULE:FREQ=WEEKLY;UNTIL=20261101"]);
        // UNTIL is kept as it was.
        assert_eq!(split.recurrence, ["RRULE:FREQ=WEEKLY;UNTIL=20261228"]);
        assert_eq!(split.start, EventTime::Date(date(2026, 11, 2)));
        assert_eq!(split.end, EventTime::Date(date(2026, 11, 3)));
        assert_eq!(
            union(&fixture, &split),
            keys(&fixture.start, &fixture.end, &fixture.lines)
        );
        assert_eq!(keys(&fixture.start, &fixture.end, &split.truncated).len(), 4);
        assert_eq!(keys(&split.start, &split.end, &split.recurrence).len(), 9);
    }

    #[test]
    fn count_is_cut_in_two() {
        let fixture = Fixture::new_york(&["RRULE:FREQ=WEEKLY;COUNT=10"]);
        let split = fixture.split_ok(&[], InstanceKey::Instant(monday(4)));
        assert_eq!(split.truncated, ["RRULE:FREQ=WEEKLY;COUNT=4"]);
        assert_eq!(split.recurrence, ["RRULE:FREQ=WEEKLY;COUNT=6"]);
        assert_eq!(
            union(&fixture, &split),
            keys(&fixture.start, &fixture.end, &fixture.lines)
        );
        // EXDATEs do not change what COUNT counts.
        let fixture = Fixture::new_york(&["RRULE:FREQ=WEEKLY;COUNT=10", "EXDATE:20261012T130000Z"]);
        let split = fixture.split_ok(&[], InstanceKey::Instant(monday(4)));
        assert_eq!(
            split.truncated,
            ["RRULE:FREQ=WEEKLY;COUNT=4", "EXDATE:20261012T130000Z"]
        );
        assert_eq!(split.recurrence, ["RRULE:FREQ=WEEKLY;COUNT=6"]);
        assert_eq!(
            union(&fixture, &split),
            keys(&fixture.start, &fixture.end, &fixture.lines)
        );
    }

    #[test]
    fn a_split_after_a_bound_ends_keeps_the_rule_on_the_old_side_only() {
        // The RDATE lies after the rule's end; splitting there leaves the rule whole.
        let fixture = Fixture::new_york(&["RRULE:FREQ=WEEKLY;COUNT=3", "RDATE:20261201T140000Z"]);
        let split = fixture.split_ok(&[], InstanceKey::Instant(at(2026, 12, 1, 14, 0)));
        assert_eq!(split.truncated, ["RRULE:FREQ=WEEKLY;COUNT=3"]);
        assert_eq!(split.recurrence, ["RDATE:20261201T140000Z"]);
        assert_eq!(
            union(&fixture, &split),
            keys(&fixture.start, &fixture.end, &fixture.lines)
        );
    }

    #[test]
    fn exdates_and_rdates_go_to_their_side() {
        let fixture = Fixture::new_york(&[
            "RRULE:FREQ=WEEKLY;COUNT=12",
            "EXDATE;TZID=America/New_York:20261012T090000,20261116T090000",
            "EXDATE;VALUE=DATE:20261102,20261123",
            "RDATE:20261014T130000Z,20261118T140000Z",
            "X-CUSTOM:kept",
        ]);
        let split = fixture.split_ok(&[], InstanceKey::Instant(monday(5)));
        assert_eq!(
            split.truncated,
            [
                "RRULE:FREQ=WEEKLY;COUNT=5",
                "EXDATE;TZID=America/New_York:20261012T090000",
                "EXDATE;VALUE=DATE:20261102",
                "RDATE:20261014T130000Z",
                "X-CUSTOM:kept",
            ]
        );
        assert_eq!(
            split.recurrence,
            [
                "RRULE:FREQ=WEEKLY;COUNT=7",
                "EXDATE;TZID=America/New_York:20261116T090000",
                "EXDATE;VALUE=DATE:20261123",
                "RDATE:20261118T140000Z",
                "X-CUSTOM:kept",
            ]
        );
        assert_eq!(
            union(&fixture, &split),
            keys(&fixture.start, &fixture.end, &fixture.lines)
        );
    }

    #[test]
    fn exceptions_from_the_split_on_move_and_cancelled_ones_become_exdates() {
        let fixture = Fixture::new_york(&["RRULE:FREQ=WEEKLY"]);
        let exceptions = [
            (InstanceKey::Instant(monday(1)), false),
            (InstanceKey::Instant(monday(2)), true),
            (InstanceKey::Instant(monday(4)), false),
            (InstanceKey::Instant(monday(6)), true),
            (InstanceKey::Instant(monday(7)), false),
        ];
        let split = fixture.split_ok(&exceptions, InstanceKey::Instant(monday(4)));
        assert_eq!(
            split.moved,
            [
                Moved {
                    index: 2,
                    cancelled: false,
                    original_start: timed(monday(4), NEW_YORK),
                },
                Moved {
                    index: 3,
                    cancelled: true,
                    original_start: timed(monday(6), NEW_YORK),
                },
                Moved {
                    index: 4,
                    cancelled: false,
                    original_start: timed(monday(7), NEW_YORK),
                },
            ]
        );
        assert_eq!(
            split.recurrence,
            [
                "RRULE:FREQ=WEEKLY".to_owned(),
                format!("EXDATE:{}", monday(6).format("%Y%m%dT%H%M%SZ"))
            ]
        );
        let new = keys(&split.start, &split.end, &split.recurrence);
        assert!(!new.contains(&InstanceKey::Instant(monday(6))));
        assert!(new.contains(&InstanceKey::Instant(monday(7))));
    }

    #[test]
    fn splitting_at_the_first_instance_is_the_whole_series() {
        let fixture = Fixture::new_york(&["RRULE:FREQ=WEEKLY;COUNT=5"]);
        assert_eq!(
            fixture.split(&[], InstanceKey::Instant(monday(0))),
            Ok(SplitPlan::Whole)
        );
        // The first instance left, when DTSTART is excluded.
        let fixture = Fixture::new_york(&["RRULE:FREQ=WEEKLY;COUNT=5", "EXDATE:20261005T130000Z"]);
        assert_eq!(
            fixture.split(&[], InstanceKey::Instant(monday(1))),
            Ok(SplitPlan::Whole)
        );
        let fixture = Fixture::all_day(&["RRULE:FREQ=DAILY"]);
        assert_eq!(
            fixture.split(&[], InstanceKey::Date(date(2026, 10, 5))),
            Ok(SplitPlan::Whole)
        );
    }

    #[test]
    fn only_instances_can_be_split_at() {
        let fixture = Fixture::new_york(&["RRULE:FREQ=WEEKLY;COUNT=5"]);
        for at in [
            InstanceKey::Instant(monday(1) + TimeDelta::hours(1)),
            InstanceKey::Instant(monday(5)),
            InstanceKey::Date(date(2026, 10, 12)),
        ] {
            assert_eq!(fixture.split(&[], at), Err(SplitError::NotAnInstance), "{at:?}");
        }
        let excluded = Fixture::new_york(&["RRULE:FREQ=WEEKLY", "EXDATE:20261019T130000Z"]);
        assert_eq!(
            excluded.split(&[], InstanceKey::Instant(monday(2))),
            Err(SplitError::NotAnInstance)
        );
    }

    #[test]
    fn a_new_time_of_day_moves_every_following_instance_in_local_time() {
        let fixture = Fixture::new_york(&[
            "RRULE:FREQ=WEEKLY;UNTIL=20261130T140000Z",
            "EXDATE:20261116T140000Z",
        ]);
        // From the third instance (October 19, EDT) on, at 10:30 local for 30 minutes.
        let new_start = timed(at(2026, 10, 19, 14, 30), NEW_YORK);
        let new_end = timed(at(2026, 10, 19, 15, 0), NEW_YORK);
        let exceptions = [(InstanceKey::Instant(monday(5)), false)];
        let plan = split(&SplitInput {
            series: fixture.series(),
            calendar_time_zone: Some(NEW_YORK),
            exceptions: &exceptions,
            at: InstanceKey::Instant(monday(2)),
            new_start: Some(&new_start),
            new_end: Some(&new_end),
        })
        .unwrap();
        let SplitPlan::Split(split) = plan else {
            panic!("not a split")
        };
        assert_eq!(split.truncated, ["RRULE:FREQ=WEEKLY;UNTIL=20261019T125959Z"]);
        // The EXDATE and the UNTIL move along (10:30 EST is 15:30Z).
        assert_eq!(
            split.recurrence,
            [
                "RRULE:FREQ=WEEKLY;UNTIL=20261130T153000Z",
                "EXDATE:20261116T153000Z"
            ]
        );
        assert_eq!(
            split.moved[0].original_start,
            timed(at(2026, 11, 9, 15, 30), NEW_YORK)
        );
        let new = keys(&split.start, &split.end, &split.recurrence);
        let expected: Vec<_> = [
            at(2026, 10, 19, 14, 30),
            at(2026, 10, 26, 14, 30),
            at(2026, 11, 2, 15, 30),
            at(2026, 11, 9, 15, 30),
            at(2026, 11, 23, 15, 30),
            at(2026, 11, 30, 15, 30),
        ]
        .into_iter()
        .map(InstanceKey::Instant)
        .collect();
        assert_eq!(new, expected);
    }

    #[test]
    fn changes_a_split_cannot_carry_are_refused() {
        let fixture = Fixture::new_york(&["RRULE:FREQ=WEEKLY"]);
        let refuse = |new_start: EventTime, field: &str| {
            let result = split(&SplitInput {
                series: fixture.series(),
                calendar_time_zone: Some(NEW_YORK),
                exceptions: &[],
                at: InstanceKey::Instant(monday(2)),
                new_start: Some(&new_start),
                new_end: None,
            });
            assert!(
                matches!(result, Err(SplitError::Unsupported(f, _)) if f == field),
                "{result:?}"
            );
        };
        refuse(timed(monday(2) + TimeDelta::days(1), NEW_YORK), "start");
        refuse(EventTime::Date(date(2026, 10, 19)), "start");
        // A rule that does not produce the split instance depends on DTSTART for its phase.
        let fixture = Fixture::new_york(&["RRULE:FREQ=WEEKLY;INTERVAL=2", "RDATE:20261014T130000Z"]);
        assert_eq!(
            fixture.split(&[], InstanceKey::Instant(at(2026, 10, 14, 13, 0))),
            Err(SplitError::Unsplittable)
        );
        // Cut at an RDATE, a COUNT would count from the RDATE; the instance years later would be lost.
        let fixture = Fixture::new_york(&["RRULE:FREQ=YEARLY;INTERVAL=2;COUNT=2", "RDATE:20261015T130000Z"]);
        assert_eq!(
            fixture.split(&[], InstanceKey::Instant(at(2026, 10, 15, 13, 0))),
            Err(SplitError::Unsplittable)
        );
        // An explicit BYHOUR keeps the old time of day: the new one cannot apply.
        let fixture = Fixture::new_york(&["RRULE:FREQ=WEEKLY;BYHOUR=9"]);
        let later = timed(monday(2) + TimeDelta::hours(1), NEW_YORK);
        let result = split(&SplitInput {
            series: fixture.series(),
            calendar_time_zone: Some(NEW_YORK),
            exceptions: &[],
            at: InstanceKey::Instant(monday(2)),
            new_start: Some(&later),
            new_end: None,
        });
        assert_eq!(result, Err(SplitError::Unsplittable));
    }
}

#[cfg(test)]
mod properties {
    use chrono::NaiveDate;
    use proptest::prelude::*;
    use proptest::sample::{select, subsequence};

    use super::*;

    const ZONES: [&str; 5] = [
        "UTC",
        "America/New_York",
        "Europe/Berlin",
        "Australia/Sydney",
        "Pacific/Chatham",
    ];

    /// A weekly or monthly rule with an optional INTERVAL and BYDAY (or BYMONTHDAY), and COUNT, UNTIL or
    /// no bound.
    fn rule() -> impl Strategy<Value = String> {
        let days =
            subsequence(vec!["MO", "TU", "WE", "TH", "FR", "SA", "SU"], 1..=3).prop_map(|d| d.join(","));
        (
            any::<bool>(),
            proptest::option::of(1u16..=3),
            proptest::option::of(days),
            0..4usize,
            prop_oneof![Just(1i8), Just(2), Just(-1)],
            1i8..=31,
            0..3usize,
            2u32..40,
            20i64..900,
        )
            .prop_map(
                |(weekly, interval, days, monthly_shape, nth, month_day, bound, count, until_days)| {
                    let mut parts = vec![if weekly { "FREQ=WEEKLY" } else { "FREQ=MONTHLY" }.to_owned()];
                    if let Some(interval) = interval {
                        parts.push(format!("INTERVAL={interval}"));
                    }
                    match (weekly, days) {
                        (true, Some(days)) => parts.push(format!("BYDAY={days}")),
                        (false, Some(days)) if monthly_shape == 0 => {
                            let first = days.split(',').next().unwrap_or("MO").to_owned();
                            parts.push(format!("BYDAY={nth}{first}"));
                        }
                        (false, _) if monthly_shape == 1 => parts.push(format!("BYMONTHDAY={month_day}")),
                        _ => {}
                    }
                    match bound {
                        0 => parts.push(format!("COUNT={count}")),
                        1 => parts.push(format!("UNTIL=@{until_days}")),
                        _ => {}
                    }
                    parts.join(";")
                },
            )
    }

    #[derive(Debug)]
    struct Case {
        start: EventTime,
        end: EventTime,
        lines: Vec<String>,
        zone: &'static str,
        /// A date-only RDATE: splitting there may be refused (the rules depend on DTSTART).
        rdate: Option<NaiveDate>,
        split_index: usize,
        shift_minutes: i64,
        exceptions: Vec<(usize, bool)>,
    }

    /// A daily or yearly rule, with an optional INTERVAL and BYDAY (daily) or BYMONTH (yearly), and COUNT,
    /// UNTIL or no bound.
    fn other_rule() -> impl Strategy<Value = String> {
        let days =
            subsequence(vec!["MO", "TU", "WE", "TH", "FR", "SA", "SU"], 1..=4).prop_map(|d| d.join(","));
        (
            any::<bool>(),
            proptest::option::of(1u16..=3),
            proptest::option::of(days),
            proptest::option::of(1u32..=12),
            0..3usize,
            2u32..40,
            20i64..900,
        )
            .prop_map(|(daily, interval, days, month, bound, count, until_days)| {
                let mut parts = vec![if daily { "FREQ=DAILY" } else { "FREQ=YEARLY" }.to_owned()];
                if let Some(interval) = interval {
                    parts.push(format!("INTERVAL={interval}"));
                }
                match (daily, days, month) {
                    (true, Some(days), _) => parts.push(format!("BYDAY={days}")),
                    (false, _, Some(month)) => parts.push(format!("BYMONTH={month}")),
                    _ => {}
                }
                match bound {
                    0 => parts.push(format!("COUNT={count}")),
                    1 => parts.push(format!("UNTIL=@{until_days}")),
                    _ => {}
                }
                parts.join(";")
            })
    }

    fn case() -> impl Strategy<Value = Case> {
        case_of(rule().boxed())
    }

    fn case_of(rule: BoxedStrategy<String>) -> impl Strategy<Value = Case> {
        (
            rule,
            select(ZONES.to_vec()),
            any::<bool>(),
            0i64..1500,
            6u32..18,
            prop_oneof![Just(0u32), Just(30)],
            1usize..30,
            prop_oneof![Just(0i64), -120i64..=180],
            proptest::collection::vec((0usize..45, any::<bool>()), 0..6),
            0..4u8,
        )
            .prop_map(
                |(rule, zone, all_day, start_day, hour, minute, split_index, shift, exceptions, extra)| {
                    let day =
                        NaiveDate::from_ymd_opt(2019, 1, 1).unwrap_or_default() + TimeDelta::days(start_day);
                    let tz: Tz = zone.parse().unwrap_or(Tz::UTC);
                    let (start, end, until) = if all_day {
                        (
                            EventTime::Date(day),
                            EventTime::Date(day + TimeDelta::days(1)),
                            "%Y%m%d",
                        )
                    } else {
                        let instant = localize(day.and_hms_opt(hour, minute, 0).unwrap_or_default(), tz);
                        (
                            EventTime::DateTime {
                                instant,
                                time_zone: Some(zone.to_owned()),
                            },
                            EventTime::DateTime {
                                instant: instant + TimeDelta::minutes(50),
                                time_zone: Some(zone.to_owned()),
                            },
                            "%Y%m%dT235959Z",
                        )
                    };
                    let rule = match rule.split_once("UNTIL=@") {
                        Some((head, days)) => {
                            let days: i64 = days.parse().unwrap_or(100);
                            format!("{head}UNTIL={}", (day + TimeDelta::days(days)).format(until))
                        }
                        None => rule,
                    };
                    let mut lines = vec![format!("RRULE:{rule}")];
                    if extra & 1 != 0 {
                        lines.push(format!(
                            "EXDATE;VALUE=DATE:{}",
                            (day + TimeDelta::days(7)).format("%Y%m%d")
                        ));
                    }
                    let rdate = (extra & 2 != 0).then(|| day + TimeDelta::days(10));
                    if let Some(rdate) = rdate {
                        lines.push(format!("RDATE;VALUE=DATE:{}", rdate.format("%Y%m%d")));
                    }
                    Case {
                        start,
                        end,
                        lines,
                        rdate,
                        zone,
                        split_index,
                        shift_minutes: if all_day { 0 } else { shift },
                        exceptions,
                    }
                },
            )
    }

    fn expand_keys(
        start: &EventTime,
        end: &EventTime,
        lines: &[String],
        zone: &str,
        window: Window,
    ) -> Vec<InstanceKey> {
        let series = Series {
            start,
            end,
            recurrence: lines,
        };
        let expansion = expand(&series, Some(zone), window, 20_000).unwrap();
        assert!(!expansion.truncated);
        expansion
            .occurrences
            .iter()
            .map(|o| o.original_start.instance_key())
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        /// The two halves hold exactly the original's instances (those from the split on moved as asked,
        /// cancelled exceptions left out), none twice; splitting at the first instance is the whole series.
        #[test]
        fn the_halves_partition_the_series(case in case()) {
            partition(&case)?;
        }

        /// The same for daily and yearly rules.
        #[test]
        fn the_halves_partition_daily_and_yearly_series(case in case_of(other_rule().boxed())) {
            partition(&case)?;
        }
    }

    fn partition(case: &Case) -> Result<(), TestCaseError> {
        {
            let first = case.start.to_instant(Some(case.zone));
            let window = Window::new(first - TimeDelta::days(2), first + TimeDelta::days(4 * 366));
            let original = expand_keys(&case.start, &case.end, &case.lines, case.zone, window);
            // The series always has its first instance; short ones are split somewhere in them.
            prop_assert!(!original.is_empty());
            let split_index = case.split_index % original.len();
            let at = original[split_index];
            let tz: Tz = case.zone.parse().unwrap_or(Tz::UTC);
            let delta = TimeDelta::minutes(case.shift_minutes);
            let moved = |key: InstanceKey| match key {
                InstanceKey::Date(date) => InstanceKey::Date(date),
                InstanceKey::Instant(at) => {
                    InstanceKey::Instant(localize(at.with_timezone(&tz).naive_local() + delta, tz))
                }
            };
            let new_start = match at {
                InstanceKey::Date(date) => EventTime::Date(date),
                InstanceKey::Instant(_) => {
                    let InstanceKey::Instant(instant) = moved(at) else {
                        unreachable!()
                    };
                    EventTime::DateTime {
                        instant,
                        time_zone: Some(case.zone.to_owned()),
                    }
                }
            };
            let exceptions: Vec<(InstanceKey, bool)> = case
                .exceptions
                .iter()
                .filter(|(index, _)| *index < original.len())
                .map(|(index, cancelled)| (original[*index], *cancelled))
                .collect::<std::collections::BTreeMap<_, _>>()
                .into_iter()
                .collect();
            let result = split(&SplitInput {
                series: Series {
                    start: &case.start,
                    end: &case.end,
                    recurrence: &case.lines,
                },
                calendar_time_zone: Some(case.zone),
                exceptions: &exceptions,
                at,
                new_start: Some(&new_start),
                new_end: None,
            });
            let split = match result {
                Ok(SplitPlan::Whole) => {
                    prop_assert_eq!(split_index, 0);
                    return Ok(());
                }
                Ok(SplitPlan::Split(split)) => split,
                Err(SplitError::Unsplittable)
                    if case.rdate.is_some_and(|rdate| match at {
                        InstanceKey::Date(date) => date == rdate,
                        InstanceKey::Instant(at) => at.with_timezone(&tz).date_naive() == rdate,
                    }) =>
                {
                    return Ok(());
                }
                Err(e) => return Err(TestCaseError::fail(format!("{e}"))),
            };
            prop_assert!(split_index > 0);
            prop_assert_eq!(&split.start, &new_start);
            let wider = Window::new(window.time_min, window.time_max + TimeDelta::days(2));
            let old = expand_keys(&case.start, &case.end, &split.truncated, case.zone, wider);
            let new = expand_keys(&split.start, &split.end, &split.recurrence, case.zone, wider);
            prop_assert_eq!(&old[..], &original[..split_index]);
            let cancelled: BTreeSet<InstanceKey> = exceptions
                .iter()
                .filter(|(key, cancelled)| *cancelled && *key >= at)
                .map(|(key, _)| moved(*key))
                .collect();
            let expected: Vec<InstanceKey> = original[split_index..]
                .iter()
                .map(|key| moved(*key))
                .filter(|key| !cancelled.contains(key))
                .collect();
            let last = *original.last().unwrap_or(&at);
            // The original was cut by the window: compare up to its last instance.
            let new: Vec<InstanceKey> = new.into_iter().filter(|key| *key <= moved(last)).collect();
            prop_assert_eq!(new, expected);
            for key in &old {
                prop_assert!(*key < at);
            }
            let moved_keys: Vec<InstanceKey> = split
                .moved
                .iter()
                .map(|m| m.original_start.instance_key())
                .collect();
            let expected_moved: Vec<InstanceKey> = exceptions
                .iter()
                .filter(|(k, _)| *k >= at)
                .map(|(k, _)| moved(*k))
                .collect();
            prop_assert_eq!(moved_keys, expected_moved);
        }
        Ok(())
    }
}
