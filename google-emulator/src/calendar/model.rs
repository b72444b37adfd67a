//! The event resource: times, validation, PATCH merging and rendering.

use base64::Engine;
use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};
use serde_json::{Map, Value, json};

use super::recurrence::{self, Occ, SeriesStart};
use crate::error::ApiError;

/// `start` / `end` of an event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum When {
    Date(NaiveDate),
    DateTime {
        at: DateTime<Utc>,
        tz: Option<chrono_tz::Tz>,
    },
}

impl When {
    /// The instant it denotes; dates are midnight in `day_tz`.
    pub fn instant(&self, day_tz: chrono_tz::Tz) -> DateTime<Utc> {
        match self {
            When::Date(d) => recurrence::local_midnight(*d, day_tz),
            When::DateTime { at, .. } => *at,
        }
    }
}

pub const EVENT_TYPES: [&str; 5] = [
    "default",
    "outOfOffice",
    "focusTime",
    "workingLocation",
    "fromGmail",
];

/// Fields the server owns: whatever the client sends for them is ignored.
const READ_ONLY: [&str; 8] = [
    "kind",
    "etag",
    "created",
    "updated",
    "creator",
    "htmlLink",
    "hangoutLink",
    "privateCopy",
];

pub fn parse_when(v: Option<&Value>, which: &str) -> Result<When, ApiError> {
    let obj = match v {
        None | Some(Value::Null) => {
            return Err(ApiError::required(&format!("Missing {which} time.")));
        }
        Some(Value::Object(o)) => o,
        Some(_) => return Err(ApiError::invalid(&format!("Invalid {which} time."))),
    };
    let tz = match obj.get("timeZone") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(
            s.parse::<chrono_tz::Tz>()
                .map_err(|_| ApiError::invalid(&format!("Invalid time zone definition for {which} time.")))?,
        ),
        Some(_) => {
            return Err(ApiError::invalid(&format!(
                "Invalid time zone definition for {which} time."
            )));
        }
    };
    let date = obj.get("date").filter(|v| !v.is_null());
    let date_time = obj.get("dateTime").filter(|v| !v.is_null());
    match (date, date_time) {
        (Some(_), Some(_)) => Err(ApiError::invalid(&format!("Invalid {which} time."))),
        (Some(d), None) => {
            let s = d
                .as_str()
                .ok_or_else(|| ApiError::invalid(&format!("Invalid {which} time.")))?;
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map(When::Date)
                .map_err(|_| ApiError::invalid(&format!("Invalid {which} time.")))
        }
        (None, Some(dt)) => {
            let s = dt
                .as_str()
                .ok_or_else(|| ApiError::invalid(&format!("Invalid {which} time.")))?;
            if let Ok(t) = DateTime::parse_from_rfc3339(s) {
                return Ok(When::DateTime {
                    at: t.with_timezone(&Utc),
                    tz,
                });
            }
            let naive = parse_local(s).ok_or_else(|| ApiError::invalid(&format!("Invalid {which} time.")))?;
            let Some(zone) = tz else {
                return Err(ApiError::required(&format!(
                    "Missing time zone definition for {which} time."
                )));
            };
            Ok(When::DateTime {
                at: recurrence::localize(naive, zone),
                tz: Some(zone),
            })
        }
        (None, None) => Err(ApiError::required(&format!("Missing {which} time."))),
    }
}

/// A `dateTime` without an offset (a wall-clock time in the `timeZone` beside it).
fn parse_local(s: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M"))
        .ok()
}

fn zone_of(when: &Map<String, Value>) -> Option<chrono_tz::Tz> {
    when.get("timeZone")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<chrono_tz::Tz>().ok())
}

/// `dateTime` as Google echoes it: RFC 3339 with an offset, the same instant shown in `zone`
/// (or with the offset sent when there is no zone). A local time without a zone is read in
/// `fallback`. `None` when `text` is no date-time.
fn normalized_date_time(text: &str, zone: Option<chrono_tz::Tz>, fallback: chrono_tz::Tz) -> Option<String> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(match zone {
            Some(zone) => format_in(at.to_utc(), zone),
            None if at.offset().local_minus_utc() == 0 => format_in(at.to_utc(), chrono_tz::UTC),
            None => at.format("%Y-%m-%dT%H:%M:%S%:z").to_string(),
        });
    }
    let zone = zone.unwrap_or(fallback);
    Some(format_in(recurrence::localize(parse_local(text)?, zone), zone))
}

/// Rewrites the `dateTime` of `start`, `end` and `originalStartTime` the way Google stores them,
/// so that every event read back carries an offset. Runs after [`validate`].
pub fn normalize_date_times(res: &mut Map<String, Value>, cal_tz: chrono_tz::Tz) {
    for key in ["start", "end", "originalStartTime"] {
        let Some(Value::Object(when)) = res.get_mut(key) else {
            continue;
        };
        let zone = zone_of(when);
        let rendered = when
            .get("dateTime")
            .and_then(Value::as_str)
            .and_then(|text| normalized_date_time(text, zone, cal_tz));
        if let Some(rendered) = rendered {
            when.insert("dateTime".into(), Value::String(rendered));
        }
    }
}

fn recurrence_lines(res: &Map<String, Value>) -> Result<Vec<String>, ApiError> {
    match res.get("recurrence") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| ApiError::invalid("Invalid recurrence rule."))
            })
            .collect(),
        Some(_) => Err(ApiError::invalid("Invalid recurrence rule.")),
    }
}

fn check_enum(res: &Map<String, Value>, field: &str, allowed: &[&str]) -> Result<(), ApiError> {
    match res.get(field) {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) if allowed.contains(&s.as_str()) => Ok(()),
        Some(other) => Err(ApiError::invalid(&format!(
            "Invalid value for: {field} ({})",
            other.as_str().map_or_else(|| other.to_string(), str::to_owned)
        ))),
    }
}

fn check_reminders(res: &Map<String, Value>) -> Result<(), ApiError> {
    let Some(r) = res.get("reminders").filter(|v| !v.is_null()) else {
        return Ok(());
    };
    let obj = r
        .as_object()
        .ok_or_else(|| ApiError::invalid("Invalid value for: reminders"))?;
    let overrides = match obj.get("overrides") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(_) => return Err(ApiError::invalid("Invalid value for: reminders.overrides")),
    };
    let use_default = obj.get("useDefault").and_then(Value::as_bool).unwrap_or(false);
    if use_default && !overrides.is_empty() {
        return Err(ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "global",
            "cannotUseDefaultRemindersAndSpecifyOverride",
            "Cannot specify both default reminders and overrides at the same time.",
        ));
    }
    if overrides.len() > 5 {
        return Err(ApiError::invalid(
            "The maximum number of override reminders is 5.",
        ));
    }
    for o in &overrides {
        let method = o.get("method").and_then(Value::as_str);
        match method {
            Some("email" | "popup") => {}
            None => return Err(ApiError::required("Missing reminder method.")),
            Some(_) => return Err(ApiError::invalid("Invalid reminder method.")),
        }
        let minutes = o.get("minutes").and_then(|m| {
            m.as_i64()
                .or_else(|| m.as_str().and_then(|s| s.parse::<i64>().ok()))
        });
        match minutes {
            Some(m) if (0..=40320).contains(&m) => {}
            None => return Err(ApiError::required("Missing reminder minutes.")),
            Some(_) => return Err(ApiError::invalid("Invalid reminder minutes value.")),
        }
    }
    Ok(())
}

/// The series start and per-occurrence duration of a recurring event (or any event).
pub fn series_of(res: &Map<String, Value>, cal_tz: chrono_tz::Tz) -> Option<(SeriesStart, Duration, When)> {
    let start = parse_when(res.get("start"), "start").ok()?;
    let end = parse_when(res.get("end"), "end").ok()?;
    match (start, end) {
        (When::Date(s), When::Date(e)) => Some((SeriesStart::AllDay(s), e - s, end)),
        (When::DateTime { at, tz }, When::DateTime { at: end_at, .. }) => Some((
            SeriesStart::Timed {
                at,
                tz: tz.unwrap_or(cal_tz),
            },
            end_at - at,
            end,
        )),
        _ => None,
    }
}

/// Validates an event resource about to be stored.
pub fn validate(res: &Map<String, Value>, is_instance: bool) -> Result<(), ApiError> {
    let start = parse_when(res.get("start"), "start")?;
    let end = parse_when(res.get("end"), "end")?;
    match (&start, &end) {
        (When::Date(s), When::Date(e)) => {
            if e <= s {
                return Err(ApiError::time_range_empty_event());
            }
        }
        (When::DateTime { at: s, .. }, When::DateTime { at: e, .. }) => {
            if e < s {
                return Err(ApiError::time_range_empty_event());
            }
        }
        _ => {
            return Err(ApiError::bad_request(
                "Start and end times must either both be date or both be dateTime.",
            ));
        }
    }
    let lines = recurrence_lines(res)?;
    if !lines.is_empty() && !is_instance {
        let series = match start {
            When::Date(d) => SeriesStart::AllDay(d),
            When::DateTime { at, tz } => {
                let Some(tz) = tz else {
                    return Err(ApiError::required("Missing time zone definition for start time."));
                };
                SeriesStart::Timed { at, tz }
            }
        };
        recurrence::validate(&lines, &series).map_err(|_| ApiError::invalid("Invalid recurrence rule."))?;
    }
    match res.get("colorId") {
        None | Some(Value::Null) => {}
        Some(Value::String(c))
            if c.parse::<u8>().is_ok_and(|n| (1..=11).contains(&n)) && !c.starts_with('0') => {}
        Some(_) => return Err(ApiError::invalid("Invalid value for: colorId")),
    }
    check_enum(res, "status", &["confirmed", "tentative", "cancelled"])?;
    check_enum(res, "transparency", &["opaque", "transparent"])?;
    check_enum(
        res,
        "visibility",
        &["default", "public", "private", "confidential"],
    )?;
    check_enum(res, "eventType", &EVENT_TYPES)?;
    check_reminders(res)?;
    if let Some(Value::Array(attendees)) = res.get("attendees") {
        for a in attendees {
            let has_email = a
                .get("email")
                .and_then(Value::as_str)
                .is_some_and(|e| !e.is_empty());
            if !has_email {
                return Err(ApiError::required("Missing attendee email."));
            }
        }
    }
    if let Some(ext) = res.get("extendedProperties").filter(|v| !v.is_null()) {
        let ok = ext.as_object().is_some_and(|o| {
            o.iter().all(|(k, v)| {
                (k == "private" || k == "shared")
                    && (v.is_null() || v.as_object().is_some_and(|m| m.values().all(Value::is_string)))
            })
        });
        if !ok {
            return Err(ApiError::invalid("Invalid value for: extendedProperties"));
        }
    }
    Ok(())
}

/// Removes the fields the client may not set.
pub fn strip_read_only(body: &mut Map<String, Value>, keep_organizer: bool) {
    for f in READ_ONLY {
        body.remove(f);
    }
    if !keep_organizer {
        body.remove("organizer");
    }
    for key in ["creator", "organizer"] {
        if let Some(Value::Object(o)) = body.get_mut(key) {
            o.remove("self");
        }
    }
    if let Some(Value::Array(a)) = body.get_mut("attendees") {
        for att in a {
            if let Some(o) = att.as_object_mut() {
                o.remove("self");
            }
        }
    }
}

/// JSON merge for PATCH: objects merge recursively, `null` deletes, arrays and scalars
/// replace. In `start`/`end`, sending `date` drops `dateTime` and the other way round.
pub fn merge_patch(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (k, v) in patch {
        match v {
            Value::Null => {
                target.remove(k);
            }
            Value::Object(p) => {
                let entry = target
                    .entry(k.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !entry.is_object() {
                    *entry = Value::Object(Map::new());
                }
                if let Value::Object(t) = entry {
                    if k == "start" || k == "end" || k == "originalStartTime" {
                        if p.get("date").is_some_and(|d| !d.is_null()) {
                            t.remove("dateTime");
                        }
                        if p.get("dateTime").is_some_and(|d| !d.is_null()) {
                            t.remove("date");
                        }
                    }
                    merge_patch(t, p);
                }
            }
            other => {
                target.insert(k.clone(), other.clone());
            }
        }
    }
}

pub fn html_link(event_id: &str, calendar_id: &str) -> String {
    let eid = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("{event_id} {calendar_id}").as_bytes());
    format!("https://www.google.com/calendar/event?eid={eid}")
}

/// Formats an instant in a zone the way Google does (`Z` for UTC).
pub fn format_in(t: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    if tz == chrono_tz::UTC {
        return t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    }
    t.with_timezone(&tz).format("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

/// The event as seen by `viewer` on `calendar_id` (adds the `self` flags).
pub fn render(res: &Map<String, Value>, viewer: &str, calendar_id: &str) -> Value {
    let mut out = res.clone();
    if let Some(Value::Object(c)) = out.get_mut("creator")
        && c.get("email").and_then(Value::as_str) == Some(viewer)
    {
        c.insert("self".into(), Value::Bool(true));
    }
    if let Some(Value::Object(o)) = out.get_mut("organizer")
        && o.get("email").and_then(Value::as_str) == Some(calendar_id)
    {
        o.insert("self".into(), Value::Bool(true));
    }
    if let Some(Value::Array(a)) = out.get_mut("attendees") {
        for att in a {
            if let Some(o) = att.as_object_mut()
                && o.get("email").and_then(Value::as_str) == Some(calendar_id)
            {
                o.insert("self".into(), Value::Bool(true));
            }
        }
    }
    Value::Object(out)
}

/// What a freeBusyReader sees of an event: its times and little else.
pub fn free_busy_view(v: Value) -> Value {
    let Value::Object(m) = v else {
        return v;
    };
    let keep = [
        "kind",
        "etag",
        "id",
        "status",
        "start",
        "end",
        "transparency",
        "recurringEventId",
        "originalStartTime",
    ];
    Value::Object(
        m.into_iter()
            .filter(|(k, _)| keep.contains(&k.as_str()))
            .collect(),
    )
}

/// A deleted event as incremental sync (and showDeleted lists) return it: only the
/// guaranteed fields.
pub fn render_cancelled(res: &Map<String, Value>, live_master: bool) -> Value {
    let mut out = Map::new();
    for k in ["kind", "etag", "id"] {
        if let Some(v) = res.get(k) {
            out.insert(k.into(), v.clone());
        }
    }
    out.insert("status".into(), json!("cancelled"));
    if live_master {
        for k in ["recurringEventId", "originalStartTime"] {
            if let Some(v) = res.get(k) {
                out.insert(k.into(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// The virtual instance of `master` at `occ` (not stored).
pub fn instance_of(
    master: &Map<String, Value>,
    occ: Occ,
    calendar_id: &str,
    cal_tz: chrono_tz::Tz,
) -> Map<String, Value> {
    let master_id = master.get("id").and_then(Value::as_str).unwrap_or("");
    let mut inst = master.clone();
    inst.remove("recurrence");
    let id = format!("{master_id}_{}", occ.suffix());
    let (start, end, original) = match (occ, series_of(master, cal_tz)) {
        (Occ::AllDay(d), Some((_, dur, _))) => {
            let days = dur.num_days().max(1);
            let e = d + Duration::days(days);
            (
                json!({"date": d.format("%Y-%m-%d").to_string()}),
                json!({"date": e.format("%Y-%m-%d").to_string()}),
                json!({"date": d.format("%Y-%m-%d").to_string()}),
            )
        }
        (Occ::Timed(t), Some((SeriesStart::Timed { tz, .. }, dur, end_when))) => {
            let end_tz = match end_when {
                When::DateTime { tz: Some(z), .. } => z,
                _ => tz,
            };
            let s = json!({"dateTime": format_in(t, tz), "timeZone": tz.name()});
            let e = json!({"dateTime": format_in(t + dur, end_tz), "timeZone": end_tz.name()});
            (s.clone(), e, s)
        }
        (Occ::Timed(t), _) => {
            let s = json!({"dateTime": format_in(t, cal_tz)});
            (s.clone(), s.clone(), s)
        }
        (Occ::AllDay(d), None) => {
            let s = json!({"date": d.format("%Y-%m-%d").to_string()});
            (s.clone(), s.clone(), s)
        }
    };
    inst.insert("id".into(), json!(id));
    inst.insert("recurringEventId".into(), json!(master_id));
    inst.insert("originalStartTime".into(), original);
    inst.insert("start".into(), start);
    inst.insert("end".into(), end);
    inst.insert("htmlLink".into(), json!(html_link(&id, calendar_id)));
    inst
}

/// Splits an instance id `<masterId>_<suffix>`.
pub fn split_instance_id(id: &str) -> Option<(&str, Occ)> {
    let (master, suffix) = id.rsplit_once('_')?;
    Some((master, Occ::parse_suffix(suffix)?))
}

/// Whether `occ` is an occurrence of `master`.
pub fn has_occurrence(master: &Map<String, Value>, occ: Occ, cal_tz: chrono_tz::Tz, max: usize) -> bool {
    let Some((series, dur, _)) = series_of(master, cal_tz) else {
        return false;
    };
    let lines = recurrence_lines(master).unwrap_or_default();
    let at = occ.instant(cal_tz);
    let lower = at - dur.max(Duration::zero()) - Duration::seconds(1);
    let upper = at + Duration::seconds(1);
    recurrence::expand(&lines, &series, dur, cal_tz, Some(lower), Some(upper), max)
        .map(|v| v.contains(&occ))
        .unwrap_or(false)
}

/// Occurrences of `master` in a window (see [`recurrence::expand`]).
pub fn occurrences(
    master: &Map<String, Value>,
    cal_tz: chrono_tz::Tz,
    lower: Option<DateTime<Utc>>,
    upper: Option<DateTime<Utc>>,
    max: usize,
) -> Vec<Occ> {
    let Some((series, dur, _)) = series_of(master, cal_tz) else {
        return Vec::new();
    };
    let lines = recurrence_lines(master).unwrap_or_default();
    recurrence::expand(&lines, &series, dur, cal_tz, lower, upper, max).unwrap_or_default()
}

/// Start and end instants of a (non-master) event.
pub fn bounds(res: &Map<String, Value>, day_tz: chrono_tz::Tz) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let s = parse_when(res.get("start"), "start").ok()?;
    let e = parse_when(res.get("end"), "end").ok()?;
    Some((s.instant(day_tz), e.instant(day_tz)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patch_extended_properties() {
        let mut t = json!({
            "summary": "a",
            "start": {"dateTime": "2024-01-01T10:00:00Z", "timeZone": "UTC"},
            "extendedProperties": {"private": {"a": "1", "b": "2"}, "shared": {"s": "x"}}
        });
        let p = json!({
            "start": {"date": "2024-01-02"},
            "extendedProperties": {"private": {"a": null, "c": "3"}},
            "description": "d"
        });
        merge_patch(t.as_object_mut().unwrap(), p.as_object().unwrap());
        assert_eq!(
            t,
            json!({
                "summary": "a",
                "description": "d",
                "start": {"date": "2024-01-02", "timeZone": "UTC"},
                "extendedProperties": {"private": {"b": "2", "c": "3"}, "shared": {"s": "x"}}
            })
        );
    }

    #[test]
    fn when_parsing() {
        assert!(matches!(
            parse_when(Some(&json!({"dateTime": "2024-01-01T10:00:00"})), "start"),
            Err(e) if e.errors[0].message == "Missing time zone definition for start time."
        ));
        let w = parse_when(
            Some(&json!({"dateTime": "2024-07-01T10:00:00", "timeZone": "America/New_York"})),
            "start",
        )
        .unwrap();
        assert_eq!(
            w.instant(chrono_tz::UTC).to_rfc3339(),
            "2024-07-01T14:00:00+00:00"
        );
        assert!(parse_when(None, "end").is_err());
    }

    #[test]
    fn instance_ids() {
        let (m, occ) = split_instance_id("abcdef_20240301T140000Z").unwrap();
        assert_eq!(m, "abcdef");
        assert_eq!(occ.suffix(), "20240301T140000Z");
        let (_, occ) = split_instance_id("abcdef_20240301").unwrap();
        assert_eq!(occ.suffix(), "20240301");
        assert!(split_instance_id("abcdef").is_none());
    }
}
