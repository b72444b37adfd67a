//! Recurrence lines (RRULE, EXRULE, RDATE, EXDATE), parsed leniently the way Google
//! echoes them (`;TZID=` and `X-` parameters), and expanded with the `rrule` crate in the
//! event's time zone.

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use rrule::{RRule, RRuleSet, Unvalidated};

/// Where a series starts.
#[derive(Debug, Clone, Copy)]
pub enum SeriesStart {
    AllDay(NaiveDate),
    Timed { at: DateTime<Utc>, tz: chrono_tz::Tz },
}

/// The original start of one occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Occ {
    AllDay(NaiveDate),
    Timed(DateTime<Utc>),
}

impl Occ {
    /// Suffix of the instance id: `YYYYMMDDTHHMMSSZ` or `YYYYMMDD`.
    pub fn suffix(&self) -> String {
        match self {
            Occ::AllDay(d) => d.format("%Y%m%d").to_string(),
            Occ::Timed(t) => t.format("%Y%m%dT%H%M%SZ").to_string(),
        }
    }

    pub fn parse_suffix(s: &str) -> Option<Occ> {
        if s.len() == 8 {
            return NaiveDate::parse_from_str(s, "%Y%m%d").ok().map(Occ::AllDay);
        }
        NaiveDateTime::parse_from_str(s, "%Y%m%dT%H%M%SZ")
            .ok()
            .map(|n| Occ::Timed(n.and_utc()))
    }

    /// The instant this occurrence starts; all-day dates start at midnight in `day_tz`.
    pub fn instant(&self, day_tz: chrono_tz::Tz) -> DateTime<Utc> {
        match self {
            Occ::Timed(t) => *t,
            Occ::AllDay(d) => local_midnight(*d, day_tz),
        }
    }
}

/// Midnight of `d` in `tz` (or the first valid instant after a gap).
pub fn local_midnight(d: NaiveDate, tz: chrono_tz::Tz) -> DateTime<Utc> {
    localize(d.and_time(NaiveTime::MIN), tz)
}

/// A local date-time in `tz`; in a DST gap, the instant just after the gap; when
/// ambiguous, the earlier one.
pub fn localize(n: NaiveDateTime, tz: chrono_tz::Tz) -> DateTime<Utc> {
    match tz.from_local_datetime(&n) {
        chrono::LocalResult::Single(t) => t.with_timezone(&Utc),
        chrono::LocalResult::Ambiguous(a, _) => a.with_timezone(&Utc),
        chrono::LocalResult::None => {
            let shifted = n + Duration::hours(1);
            tz.from_local_datetime(&shifted)
                .earliest()
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_else(|| n.and_utc())
        }
    }
}

#[derive(Debug, Clone)]
enum DateSpec {
    Instant(DateTime<Utc>),
    Date(NaiveDate),
    Floating(NaiveDateTime),
}

#[derive(Debug, Clone, Default)]
struct Parsed {
    rrules: Vec<String>,
    exrules: Vec<String>,
    rdates: Vec<DateSpec>,
    exdates: Vec<DateSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidRecurrence;

fn parse_date_value(v: &str, tzid: Option<chrono_tz::Tz>) -> Result<DateSpec, InvalidRecurrence> {
    // PERIOD values (`start/end` or `start/duration`): the start is what matters.
    let v = v.split('/').next().unwrap_or(v).trim();
    if v.len() == 8 {
        return NaiveDate::parse_from_str(v, "%Y%m%d")
            .map(DateSpec::Date)
            .map_err(|_| InvalidRecurrence);
    }
    if let Some(z) = v.strip_suffix('Z').or_else(|| v.strip_suffix('z')) {
        return NaiveDateTime::parse_from_str(z, "%Y%m%dT%H%M%S")
            .map(|n| DateSpec::Instant(n.and_utc()))
            .map_err(|_| InvalidRecurrence);
    }
    let n = NaiveDateTime::parse_from_str(v, "%Y%m%dT%H%M%S").map_err(|_| InvalidRecurrence)?;
    Ok(match tzid {
        Some(tz) => DateSpec::Instant(localize(n, tz)),
        None => DateSpec::Floating(n),
    })
}

/// Rewrites an RRULE/EXRULE value so the `rrule` crate accepts it: drops `X-` parts and
/// turns UNTIL into UTC.
fn normalize_rule(value: &str, start: &SeriesStart) -> Result<String, InvalidRecurrence> {
    let mut parts = Vec::new();
    for part in value.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').ok_or(InvalidRecurrence)?;
        let key = k.trim().to_ascii_uppercase();
        if key.starts_with("X-") {
            continue;
        }
        if key == "UNTIL" {
            let until = match parse_date_value(v.trim(), None)? {
                DateSpec::Instant(t) => t,
                DateSpec::Date(d) => match start {
                    SeriesStart::AllDay(_) => d.and_time(NaiveTime::MIN).and_utc(),
                    SeriesStart::Timed { tz, .. } => {
                        localize(d.and_hms_opt(23, 59, 59).ok_or(InvalidRecurrence)?, *tz)
                    }
                },
                DateSpec::Floating(n) => match start {
                    SeriesStart::AllDay(_) => n.and_utc(),
                    SeriesStart::Timed { tz, .. } => localize(n, *tz),
                },
            };
            parts.push(format!("UNTIL={}", until.format("%Y%m%dT%H%M%SZ")));
            continue;
        }
        parts.push(format!("{key}={}", v.trim().to_ascii_uppercase()));
    }
    if parts.is_empty() {
        return Err(InvalidRecurrence);
    }
    Ok(parts.join(";"))
}

fn parse_lines(lines: &[String], start: &SeriesStart) -> Result<Parsed, InvalidRecurrence> {
    let mut out = Parsed::default();
    for line in lines {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (head, value) = line.split_once(':').ok_or(InvalidRecurrence)?;
        let mut head_parts = head.split(';');
        let name = head_parts.next().unwrap_or("").trim().to_ascii_uppercase();
        let mut tzid = None;
        for p in head_parts {
            if let Some((k, v)) = p.split_once('=')
                && k.trim().eq_ignore_ascii_case("TZID")
            {
                tzid = Some(
                    v.trim()
                        .trim_matches('"')
                        .parse::<chrono_tz::Tz>()
                        .map_err(|_| InvalidRecurrence)?,
                );
            }
        }
        match name.as_str() {
            "RRULE" => out.rrules.push(normalize_rule(value, start)?),
            "EXRULE" => out.exrules.push(normalize_rule(value, start)?),
            "RDATE" | "EXDATE" => {
                let mut dates = Vec::new();
                for v in value.split(',').map(str::trim).filter(|v| !v.is_empty()) {
                    dates.push(parse_date_value(v, tzid)?);
                }
                if name == "RDATE" {
                    out.rdates.extend(dates);
                } else {
                    out.exdates.extend(dates);
                }
            }
            _ => return Err(InvalidRecurrence),
        }
    }
    Ok(out)
}

fn rrule_start(start: &SeriesStart) -> DateTime<rrule::Tz> {
    match start {
        SeriesStart::AllDay(d) => d
            .and_time(NaiveTime::MIN)
            .and_utc()
            .with_timezone(&rrule::Tz::UTC),
        SeriesStart::Timed { at, tz } => at.with_timezone(&rrule::Tz::Tz(*tz)),
    }
}

fn build_set(parsed: &Parsed, start: &SeriesStart) -> Result<RRuleSet, InvalidRecurrence> {
    let dt_start = rrule_start(start);
    let mut set = RRuleSet::new(dt_start).limit();
    for r in &parsed.rrules {
        let rule = RRule::<Unvalidated>::from_str(r)
            .map_err(|_| InvalidRecurrence)?
            .validate(dt_start)
            .map_err(|_| InvalidRecurrence)?;
        set = set.rrule(rule);
    }
    for r in &parsed.exrules {
        let rule = RRule::<Unvalidated>::from_str(r)
            .map_err(|_| InvalidRecurrence)?
            .validate(dt_start)
            .map_err(|_| InvalidRecurrence)?;
        set = set.exrule(rule);
    }
    Ok(set)
}

/// Checks that the recurrence lines parse and the rules are valid for this start.
pub fn validate(lines: &[String], start: &SeriesStart) -> Result<(), InvalidRecurrence> {
    let parsed = parse_lines(lines, start)?;
    build_set(&parsed, start).map(|_| ())
}

fn to_occ(t: DateTime<rrule::Tz>, start: &SeriesStart) -> Occ {
    match start {
        SeriesStart::AllDay(_) => Occ::AllDay(t.date_naive()),
        SeriesStart::Timed { .. } => Occ::Timed(t.with_timezone(&Utc)),
    }
}

fn spec_to_occ(s: &DateSpec, start: &SeriesStart) -> Occ {
    match (s, start) {
        (DateSpec::Instant(t), SeriesStart::Timed { .. }) => Occ::Timed(*t),
        (DateSpec::Instant(t), SeriesStart::AllDay(_)) => Occ::AllDay(t.date_naive()),
        (DateSpec::Date(d), SeriesStart::AllDay(_)) => Occ::AllDay(*d),
        (DateSpec::Date(d), SeriesStart::Timed { at, tz }) => {
            let time = at.with_timezone(tz).time();
            Occ::Timed(localize(d.and_time(time), *tz))
        }
        (DateSpec::Floating(n), SeriesStart::Timed { tz, .. }) => Occ::Timed(localize(*n, *tz)),
        (DateSpec::Floating(n), SeriesStart::AllDay(_)) => Occ::AllDay(n.date()),
    }
}

fn excluded(occ: &Occ, exdates: &[DateSpec], start: &SeriesStart) -> bool {
    exdates.iter().any(|x| match (x, occ, start) {
        (DateSpec::Date(d), Occ::Timed(t), SeriesStart::Timed { tz, .. }) => {
            t.with_timezone(tz).date_naive() == *d
        }
        _ => spec_to_occ(x, start) == *occ,
    })
}

/// Expands a series. Occurrences whose start is at or after `upper` are not produced;
/// those ending at or before `lower` (start + `duration`, all-day dates in `day_tz`) are
/// skipped. At most `max` occurrences are returned, in start order.
pub fn expand(
    lines: &[String],
    start: &SeriesStart,
    duration: Duration,
    day_tz: chrono_tz::Tz,
    lower: Option<DateTime<Utc>>,
    upper: Option<DateTime<Utc>>,
    max: usize,
) -> Result<Vec<Occ>, InvalidRecurrence> {
    let parsed = parse_lines(lines, start)?;
    let set = build_set(&parsed, start)?;
    let in_window = |o: &Occ| {
        let s = o.instant(day_tz);
        let before_upper = upper.is_none_or(|u| s < u);
        let after_lower = lower.is_none_or(|l| s + duration > l);
        before_upper && after_lower
    };
    let mut found: BTreeMap<Occ, ()> = BTreeMap::new();
    // DTSTART is always the first occurrence.
    let first = match start {
        SeriesStart::AllDay(d) => Occ::AllDay(*d),
        SeriesStart::Timed { at, .. } => Occ::Timed(*at),
    };
    if !excluded(&first, &parsed.exdates, start) && in_window(&first) {
        found.insert(first, ());
    }
    for r in &parsed.rdates {
        let o = spec_to_occ(r, start);
        if !excluded(&o, &parsed.exdates, start) && in_window(&o) {
            found.insert(o, ());
        }
    }
    if !parsed.rrules.is_empty() {
        let mut produced = 0usize;
        for (iterations, t) in (&set).into_iter().enumerate() {
            if iterations > 1_000_000 {
                break;
            }
            let o = to_occ(t, start);
            if let Some(u) = upper
                && o.instant(day_tz) >= u
            {
                break;
            }
            if excluded(&o, &parsed.exdates, start) || !in_window(&o) {
                continue;
            }
            if found.insert(o, ()).is_none() {
                produced += 1;
            }
            if produced > max {
                break;
            }
        }
    }
    Ok(found.into_keys().take(max).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ny() -> chrono_tz::Tz {
        chrono_tz::America::New_York
    }

    #[test]
    fn weekly_across_dst_keeps_local_time() {
        let at = localize(
            NaiveDate::from_ymd_opt(2024, 3, 1)
                .unwrap()
                .and_hms_opt(9, 0, 0)
                .unwrap(),
            ny(),
        );
        let start = SeriesStart::Timed { at, tz: ny() };
        let occ = expand(
            &["RRULE:FREQ=WEEKLY;COUNT=3".to_owned()],
            &start,
            Duration::hours(1),
            ny(),
            None,
            None,
            100,
        )
        .unwrap();
        let suffixes: Vec<String> = occ.iter().map(Occ::suffix).collect();
        assert_eq!(
            suffixes,
            vec!["20240301T140000Z", "20240308T140000Z", "20240315T130000Z"]
        );
    }

    /// UNTIL is inclusive: one second before an instance ends the series before it, the instant itself
    /// keeps it; an all-day UNTIL date keeps that date; COUNT counts instances across a DST change.
    #[test]
    fn until_and_count_bound_series_as_google_does() {
        let at = localize(
            NaiveDate::from_ymd_opt(2027, 2, 15)
                .unwrap()
                .and_hms_opt(9, 0, 0)
                .unwrap(),
            ny(),
        );
        let start = SeriesStart::Timed { at, tz: ny() };
        let suffixes = |line: &str| -> Vec<String> {
            expand(
                &[line.to_owned()],
                &start,
                Duration::hours(1),
                ny(),
                None,
                None,
                100,
            )
            .unwrap()
            .iter()
            .map(Occ::suffix)
            .collect()
        };
        // 2027-03-15 09:00 EDT is 13:00Z, the first Monday after the change.
        let before = [
            "20270215T140000Z",
            "20270222T140000Z",
            "20270301T140000Z",
            "20270308T140000Z",
        ];
        assert_eq!(suffixes("RRULE:FREQ=WEEKLY;UNTIL=20270315T125959Z"), before);
        assert_eq!(suffixes("RRULE:FREQ=WEEKLY;COUNT=4"), before);
        let mut through = before.to_vec();
        through.push("20270315T130000Z");
        assert_eq!(suffixes("RRULE:FREQ=WEEKLY;UNTIL=20270315T130000Z"), through);
        assert_eq!(suffixes("RRULE:FREQ=WEEKLY;COUNT=5"), through);
        // A date UNTIL of a timed series runs to the end of that local day.
        assert_eq!(suffixes("RRULE:FREQ=WEEKLY;UNTIL=20270315"), through);

        let all_day = SeriesStart::AllDay(NaiveDate::from_ymd_opt(2027, 2, 15).unwrap());
        let dates = |line: &str| -> Vec<String> {
            expand(
                &[line.to_owned()],
                &all_day,
                Duration::days(1),
                ny(),
                None,
                None,
                100,
            )
            .unwrap()
            .iter()
            .map(Occ::suffix)
            .collect()
        };
        assert_eq!(
            dates("RRULE:FREQ=WEEKLY;UNTIL=20270314"),
            ["20270215", "20270222", "20270301", "20270308"]
        );
        assert_eq!(dates("RRULE:FREQ=WEEKLY;UNTIL=20270315").len(), 5);
    }

    #[test]
    fn lenient_lines() {
        let at = Utc.with_ymd_and_hms(2024, 1, 1, 10, 0, 0).unwrap();
        let start = SeriesStart::Timed {
            at,
            tz: chrono_tz::Europe::Berlin,
        };
        let lines = vec![
            "RRULE;X-EVOLUTION-ENDDATE=20240110T100000Z:FREQ=DAILY;UNTIL=20240105;X-FOO=1".to_owned(),
            "EXDATE;TZID=Europe/Berlin:20240102T110000".to_owned(),
            "RDATE;VALUE=DATE-TIME:20240201T100000Z".to_owned(),
        ];
        let occ = expand(
            &lines,
            &start,
            Duration::hours(1),
            chrono_tz::UTC,
            None,
            None,
            100,
        )
        .unwrap();
        let suffixes: Vec<String> = occ.iter().map(Occ::suffix).collect();
        assert_eq!(
            suffixes,
            vec![
                "20240101T100000Z",
                "20240103T100000Z",
                "20240104T100000Z",
                "20240105T100000Z",
                "20240201T100000Z"
            ]
        );
    }

    #[test]
    fn bad_rules() {
        let start = SeriesStart::AllDay(NaiveDate::from_ymd_opt(2024, 1, 1).unwrap());
        assert!(validate(&["RRULE:FREQ=SOMETIMES".to_owned()], &start).is_err());
        assert!(validate(&["FOO:BAR".to_owned()], &start).is_err());
        assert!(validate(&["RRULE:FREQ=WEEKLY;BYMONTHDAY=3".to_owned()], &start).is_err());
        assert!(validate(&["RRULE:FREQ=DAILY;UNTIL=20240110".to_owned()], &start).is_ok());
    }

    #[test]
    fn all_day_window() {
        let start = SeriesStart::AllDay(NaiveDate::from_ymd_opt(2024, 1, 1).unwrap());
        let occ = expand(
            &[
                "RRULE:FREQ=DAILY".to_owned(),
                "EXDATE;VALUE=DATE:20240111".to_owned(),
            ],
            &start,
            Duration::days(1),
            chrono_tz::UTC,
            Some(Utc.with_ymd_and_hms(2024, 1, 10, 12, 0, 0).unwrap()),
            Some(Utc.with_ymd_and_hms(2024, 1, 13, 0, 0, 0).unwrap()),
            100,
        )
        .unwrap();
        let suffixes: Vec<String> = occ.iter().map(Occ::suffix).collect();
        assert_eq!(suffixes, vec!["20240110", "20240112"]);
    }
}

#[cfg(test)]
mod pathological {
    use super::*;

    #[test]
    fn weird_rules_do_not_panic_or_hang() {
        let at = Utc.with_ymd_and_hms(2024, 1, 31, 10, 0, 0).unwrap();
        let start = SeriesStart::Timed {
            at,
            tz: chrono_tz::UTC,
        };
        for rule in [
            "RRULE:FREQ=DAILY;INTERVAL=0",
            "RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
            "RRULE:FREQ=SECONDLY",
            "RRULE:FREQ=DAILY;COUNT=0",
            "RRULE:FREQ=DAILY;UNTIL=19000101",
            "RRULE:FREQ=MONTHLY;BYSETPOS=1",
            "RRULE:FREQ=MONTHLY",
            "RRULE:FREQ=WEEKLY;BYDAY=XX",
            "RRULE:FREQ=DAILY;INTERVAL=65536",
            "RRULE:",
            "RDATE:99999999T999999Z",
        ] {
            let r = expand(
                &[rule.to_owned()],
                &start,
                Duration::hours(1),
                chrono_tz::UTC,
                None,
                None,
                50,
            );
            if rule.contains("XX") || rule.contains("19000101") || rule == "RRULE:" {
                assert!(r.is_err(), "{rule}");
            }
        }
        let far = SeriesStart::AllDay(NaiveDate::from_ymd_opt(9999, 12, 30).unwrap());
        let r = expand(
            &["RRULE:FREQ=DAILY".to_owned()],
            &far,
            Duration::days(1),
            chrono_tz::UTC,
            None,
            None,
            50,
        );
        assert!(r.is_ok());
    }
}
