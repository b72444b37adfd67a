//! The rules an event write must pass before it goes to Google. Pure: each failure is BAD_USER_INPUT
//! naming the GraphQL field (`start.timeZone`, `colorId`, ...).

use chrono_tz::Tz;

use super::recurrence::{self, EventTime, Series};
use crate::error::{AppError, AppResult};

pub const MAX_SUMMARY_CHARS: usize = 1024;
pub const MAX_DESCRIPTION_CHARS: usize = 8192;
pub const MAX_LOCATION_CHARS: usize = 1024;
/// Google sets no documented limit; real series carry a handful of lines.
pub const MAX_RECURRENCE_LINES: usize = 100;
const MAX_RECURRENCE_LINE_CHARS: usize = 2048;
const RECURRENCE_PROPERTIES: [&str; 4] = ["RRULE", "EXRULE", "RDATE", "EXDATE"];

/// A text field: at most `max` characters.
pub fn text(field: &str, value: Option<&str>, max: usize) -> AppResult<()> {
    match value {
        Some(value) if value.chars().count() > max => Err(AppError::bad_input(
            field,
            format!("must be at most {max} characters"),
        )),
        _ => Ok(()),
    }
}

/// An IANA zone name such as `Europe/Berlin`.
pub fn time_zone(field: &str, value: &str) -> AppResult<()> {
    value
        .parse::<Tz>()
        .map(|_| ())
        .map_err(|_| AppError::bad_input(field, "must be an IANA time zone such as Europe/Berlin"))
}

/// The zone label of a time must name a real zone.
pub fn event_time(field: &str, value: &EventTime) -> AppResult<()> {
    match value {
        EventTime::DateTime {
            time_zone: Some(zone),
            ..
        } => time_zone(&format!("{field}.timeZone"), zone),
        _ => Ok(()),
    }
}

/// Start and end are both dates or both date-times, and the end comes after the start.
pub fn start_and_end(start: &EventTime, end: &EventTime) -> AppResult<()> {
    let ordered = match (start, end) {
        (EventTime::Date(start), EventTime::Date(end)) => end > start,
        (EventTime::DateTime { instant: start, .. }, EventTime::DateTime { instant: end, .. }) => end > start,
        _ => {
            return Err(AppError::bad_input(
                "end",
                "must be a date when start is a date, and a dateTime when start is a dateTime",
            ));
        }
    };
    if ordered {
        Ok(())
    } else {
        Err(AppError::bad_input(
            "end",
            "must be after start (all-day end dates are exclusive)",
        ))
    }
}

/// Recurrence lines: RRULE, EXRULE, RDATE or EXDATE properties the expansion understands, on a series
/// whose rules have a zone to run in (a timed start needs `timeZone`; all-day series need none).
pub fn recurrence_lines(lines: &[String], start: &EventTime, end: &EventTime) -> AppResult<()> {
    if lines.len() > MAX_RECURRENCE_LINES {
        return Err(AppError::bad_input(
            "recurrence",
            format!("at most {MAX_RECURRENCE_LINES} lines"),
        ));
    }
    for line in lines {
        let name = line
            .split([':', ';'])
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_uppercase();
        if !RECURRENCE_PROPERTIES.contains(&name.as_str()) || !line.contains(':') {
            return Err(AppError::bad_input(
                "recurrence",
                "each line must start with RRULE:, EXRULE:, RDATE or EXDATE (no DTSTART)",
            ));
        }
        if line.chars().count() > MAX_RECURRENCE_LINE_CHARS {
            return Err(AppError::bad_input("recurrence", "line too long"));
        }
    }
    if let EventTime::DateTime { time_zone: None, .. } = start {
        return Err(AppError::bad_input(
            "start.timeZone",
            "a recurring event needs a time zone (or all-day dates)",
        ));
    }
    let series = Series {
        start,
        end,
        recurrence: lines,
    };
    recurrence::series_range(&series, None)
        .map(|_| ())
        .map_err(|e| AppError::bad_input("recurrence", e.to_string()))
}

/// Google's event palette: `"1"` to `"11"`.
pub fn color_id(value: &str) -> AppResult<()> {
    match value.parse::<u8>() {
        Ok(1..=11) if !value.starts_with('0') => Ok(()),
        _ => Err(AppError::bad_input("colorId", "must be one of \"1\" to \"11\"")),
    }
}

pub fn transparency(value: &str) -> AppResult<()> {
    one_of("transparency", value, &["opaque", "transparent"])
}

pub fn visibility(value: &str) -> AppResult<()> {
    one_of(
        "visibility",
        value,
        &["default", "public", "private", "confidential"],
    )
}

fn one_of(field: &str, value: &str, allowed: &[&str]) -> AppResult<()> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(AppError::bad_input(
            field,
            format!("must be one of {}", allowed.join(", ")),
        ))
    }
}

/// Events can be written in calendars the account owns or may write to.
pub fn writable(field: &str, access_role: &str) -> AppResult<()> {
    if matches!(access_role, "owner" | "writer") {
        Ok(())
    } else {
        Err(AppError::bad_input(
            field,
            format!("the calendar is read-only for this account (access role {access_role})"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, NaiveDate, Utc};

    use super::*;

    fn field_of(result: AppResult<()>) -> String {
        match result {
            Err(AppError::BadUserInput { field, .. }) => field,
            other => panic!("expected BAD_USER_INPUT, got {other:?}"),
        }
    }

    fn at(raw: &str, tz: Option<&str>) -> EventTime {
        EventTime::DateTime {
            instant: DateTime::parse_from_rfc3339(raw).unwrap().with_timezone(&Utc),
            time_zone: tz.map(str::to_owned),
        }
    }

    fn day(d: u32) -> EventTime {
        EventTime::Date(NaiveDate::from_ymd_opt(2026, 3, d).unwrap())
    }

    #[test]
    fn texts_are_counted_in_characters() {
        assert!(text("summary", Some(&"é".repeat(1024)), MAX_SUMMARY_CHARS).is_ok());
        assert_eq!(
            field_of(text("summary", Some(&"a".repeat(1025)), MAX_SUMMARY_CHARS)),
            "summary"
        );
        assert!(text("location", None, MAX_LOCATION_CHARS).is_ok());
    }

    #[test]
    fn ends_follow_starts_of_the_same_kind() {
        assert!(start_and_end(&day(1), &day(2)).is_ok());
        assert_eq!(field_of(start_and_end(&day(2), &day(2))), "end");
        assert_eq!(
            field_of(start_and_end(&day(1), &at("2026-03-02T00:00:00Z", None))),
            "end"
        );
        let start = at("2026-03-01T09:00:00Z", None);
        assert!(start_and_end(&start, &at("2026-03-01T09:00:01Z", None)).is_ok());
        assert_eq!(field_of(start_and_end(&start, &start)), "end");
    }

    #[test]
    fn zones_must_exist() {
        assert!(event_time("start", &at("2026-03-01T09:00:00Z", Some("Australia/Brisbane"))).is_ok());
        assert_eq!(
            field_of(event_time(
                "end",
                &at("2026-03-01T09:00:00Z", Some("Mars/Olympus"))
            )),
            "end.timeZone"
        );
    }

    #[test]
    fn recurrences_need_known_lines_and_a_zone() {
        let start = at("2026-03-02T09:00:00Z", Some("Europe/Berlin"));
        let end = at("2026-03-02T10:00:00Z", Some("Europe/Berlin"));
        let weekly = vec![
            "RRULE:FREQ=WEEKLY;COUNT=5".to_owned(),
            "EXDATE;TZID=Europe/Berlin:20260309T100000".to_owned(),
        ];
        assert!(recurrence_lines(&weekly, &start, &end).is_ok());
        assert!(recurrence_lines(&weekly, &day(1), &day(2)).is_ok());
        let floating = at("2026-03-02T09:00:00Z", None);
        assert_eq!(
            field_of(recurrence_lines(&weekly, &floating, &end)),
            "start.timeZone"
        );
        let dtstart = vec!["DTSTART:20260302T090000Z".to_owned()];
        assert_eq!(field_of(recurrence_lines(&dtstart, &start, &end)), "recurrence");
        let nonsense = vec!["RRULE:FREQ=SOMETIMES".to_owned()];
        assert_eq!(field_of(recurrence_lines(&nonsense, &start, &end)), "recurrence");
    }

    #[test]
    fn palette_and_enumerations() {
        for ok in ["1", "7", "11"] {
            assert!(color_id(ok).is_ok(), "{ok}");
        }
        for bad in ["0", "12", "01", "red", ""] {
            assert_eq!(field_of(color_id(bad)), "colorId", "{bad}");
        }
        assert!(transparency("transparent").is_ok());
        assert_eq!(field_of(transparency("busy")), "transparency");
        assert!(visibility("confidential").is_ok());
        assert_eq!(field_of(visibility("secret")), "visibility");
    }

    #[test]
    fn only_owners_and_writers_write() {
        assert!(writable("calendarId", "owner").is_ok());
        assert!(writable("calendarId", "writer").is_ok());
        assert_eq!(field_of(writable("calendarId", "reader")), "calendarId");
        assert_eq!(field_of(writable("calendarId", "freeBusyReader")), "calendarId");
    }
}
