//! Typed Google Calendar resources: what Chronos stores or copies, in Google's camelCase.
//!
//! Reading is lenient: unknown fields are ignored, every field is optional or defaulted, int64 values Google
//! sends as strings are accepted as numbers too, and date-times stay the strings Google sent (helpers parse
//! them). Writing skips `None` fields, so an [`Event`] built field by field is a valid insert/update body.
//! Attendees, attachments and conference data are carried as opaque JSON.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// One entry of `users/me/calendarList`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CalendarListEntry {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary_override: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub color_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub background_color: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub foreground_color: Option<String>,
    /// `owner`, `writer`, `reader` or `freeBusyReader`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_role: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub primary: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub hidden: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub selected: bool,
    /// Only in incremental results: the entry was removed from the list.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub default_reminders: Vec<ReminderOverride>,
}

impl CalendarListEntry {
    /// The name the user sees: their override, else the calendar's summary, else the id.
    pub fn display_name(&self) -> &str {
        self.summary_override
            .as_deref()
            .or(self.summary.as_deref())
            .unwrap_or(&self.id)
    }

    /// Whether events can be written (`owner` or `writer`).
    pub fn is_writable(&self) -> bool {
        matches!(self.access_role.as_deref(), Some("owner" | "writer"))
    }
}

/// One page of `users/me/calendarList`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CalendarListPage {
    pub etag: Option<String>,
    pub items: Vec<CalendarListEntry>,
    pub next_page_token: Option<String>,
    pub next_sync_token: Option<String>,
}

/// An event's start, end or original start: `date` (all-day, end exclusive) or `dateTime` (+ `timeZone`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EventDateTime {
    /// `yyyy-mm-dd`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// RFC 3339; the offset may be missing when `time_zone` is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date_time: Option<String>,
    /// IANA zone name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

impl EventDateTime {
    pub fn all_day(date: NaiveDate) -> Self {
        Self {
            date: Some(date.format("%Y-%m-%d").to_string()),
            ..Self::default()
        }
    }

    pub fn at(instant: DateTime<Utc>, time_zone: Option<&str>) -> Self {
        Self {
            date_time: Some(instant.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            time_zone: time_zone.map(str::to_owned),
            ..Self::default()
        }
    }

    pub fn is_all_day(&self) -> bool {
        self.date.is_some() && self.date_time.is_none()
    }

    /// The all-day date, when it parses.
    pub fn naive_date(&self) -> Option<NaiveDate> {
        NaiveDate::parse_from_str(self.date.as_deref()?.trim(), "%Y-%m-%d").ok()
    }

    /// The instant of a timed value: RFC 3339 with its offset, or a local time read in `time_zone`
    /// (earliest reading when ambiguous). `None` for all-day values and unparseable input.
    pub fn instant(&self) -> Option<DateTime<Utc>> {
        let raw = self.date_time.as_deref()?.trim();
        if let Ok(dt) = DateTime::<FixedOffset>::parse_from_rfc3339(raw) {
            return Some(dt.with_timezone(&Utc));
        }
        let naive = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(raw, f).ok())?;
        let tz: chrono_tz::Tz = self.time_zone.as_deref()?.parse().ok()?;
        tz.from_local_datetime(&naive)
            .earliest()
            .map(|dt| dt.with_timezone(&Utc))
    }
}

/// `extendedProperties`: string maps; `private` belongs to this calendar's copy, `shared` to all attendees.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ExtendedProperties {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub private: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub shared: BTreeMap<String, String>,
}

impl ExtendedProperties {
    pub fn is_empty(&self) -> bool {
        self.private.is_empty() && self.shared.is_empty()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ReminderOverride {
    /// `email` or `popup`.
    pub method: String,
    pub minutes: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Reminders {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_default: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overrides: Option<Vec<ReminderOverride>>,
}

/// A Google event. For writes, `None` fields are left out of the body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Event {
    /// Google's id; on insert, an optional client-chosen id (base32hex, 5-1024 characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `confirmed`, `tentative` or `cancelled`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// RFC 3339 UTC with milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<EventDateTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<EventDateTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time_unspecified: Option<bool>,
    /// RRULE, EXRULE, RDATE and EXDATE lines, as Google sent them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recurrence: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recurring_event_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_start_time: Option<EventDateTime>,
    /// `opaque` or `transparent`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transparency: Option<String>,
    /// `default`, `public`, `private` or `confidential`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visibility: Option<String>,
    /// `"1"` to `"11"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub color_id: Option<String>,
    #[serde(rename = "iCalUID", skip_serializing_if = "Option::is_none")]
    pub ical_uid: Option<String>,
    /// `default`, `outOfOffice`, `focusTime`, `workingLocation`, `fromGmail`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extended_properties: Option<ExtendedProperties>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reminders: Option<Reminders>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_i64",
        serialize_with = "i64_as_number"
    )]
    pub sequence: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub html_link: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attendees: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attachments: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conference_data: Option<Value>,
}

impl Event {
    pub fn is_cancelled(&self) -> bool {
        self.status.as_deref() == Some("cancelled")
    }

    /// A private extended property.
    pub fn private_property(&self, key: &str) -> Option<&str> {
        self.extended_properties
            .as_ref()?
            .private
            .get(key)
            .map(String::as_str)
    }

    /// `updated`, parsed.
    pub fn updated_at(&self) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(self.updated.as_deref()?.trim())
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }
}

/// One page of `calendars/{id}/events`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EventsPage {
    pub etag: Option<String>,
    pub summary: Option<String>,
    pub updated: Option<String>,
    pub time_zone: Option<String>,
    pub access_role: Option<String>,
    pub default_reminders: Vec<ReminderOverride>,
    #[serde(deserialize_with = "null_as_default")]
    pub items: Vec<Event>,
    pub next_page_token: Option<String>,
    pub next_sync_token: Option<String>,
}

/// A push channel: the body of `events/watch` and `channels/stop`, and Google's answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Channel {
    pub id: String,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_uri: Option<String>,
    /// Milliseconds since the epoch; Google sends an int64 as a string, both forms are read.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_i64",
        serialize_with = "i64_as_string"
    )]
    pub expiration: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub params: Option<BTreeMap<String, String>>,
}

impl Channel {
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp_millis(self.expiration?)
    }
}

/// Google's error body: `{"error": {...}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct GoogleErrorBody {
    pub error: GoogleErrorDetail,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GoogleErrorDetail {
    pub code: u16,
    pub message: String,
    pub errors: Vec<GoogleErrorItem>,
    pub status: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GoogleErrorItem {
    pub domain: Option<String>,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub location_type: Option<String>,
    pub location: Option<String>,
}

impl GoogleErrorBody {
    /// Parses an error body; `None` when it is not Google's JSON error shape.
    pub fn parse(body: &[u8]) -> Option<Self> {
        serde_json::from_slice::<Self>(body).ok()
    }

    /// The first item's reason (`rateLimitExceeded`, `fullSyncRequired`, ...).
    pub fn reason(&self) -> Option<&str> {
        self.error.errors.iter().find_map(|e| e.reason.as_deref())
    }

    /// The first item's location (`timeMax`, `If-Match`, ...).
    pub fn location(&self) -> Option<&str> {
        self.error.errors.iter().find_map(|e| e.location.as_deref())
    }
}

/// The OpenID Connect userinfo answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct UserInfo {
    /// Google's stable account id.
    pub sub: String,
    pub email: Option<String>,
    #[serde(deserialize_with = "lenient_bool")]
    pub email_verified: bool,
    pub name: Option<String>,
    pub picture: Option<String>,
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// An int64 sent as a number or a string (or null).
fn lenient_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Int(i64),
        Float(f64),
        Text(String),
    }
    Ok(match Option::<Raw>::deserialize(d)? {
        None => None,
        Some(Raw::Int(n)) => Some(n),
        // Truncation is the intent: a float here only ever holds a whole number of milliseconds.
        #[allow(clippy::cast_possible_truncation)]
        Some(Raw::Float(f)) if f.is_finite() => Some(f as i64),
        Some(Raw::Float(_)) => None,
        Some(Raw::Text(s)) => s.trim().parse().ok(),
    })
}

/// A boolean sent as `true` or `"true"`.
fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Bool(bool),
        Text(String),
    }
    Ok(match Option::<Raw>::deserialize(d)? {
        Some(Raw::Bool(b)) => b,
        Some(Raw::Text(s)) => s.trim().eq_ignore_ascii_case("true"),
        None => false,
    })
}

fn i64_as_string<S: Serializer>(v: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(n) => s.serialize_str(&n.to_string()),
        None => s.serialize_none(),
    }
}

fn i64_as_number<S: Serializer>(v: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(n) => s.serialize_i64(*n),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_full_google_event_parses_and_unknown_fields_are_ignored() {
        let raw = json!({
            "kind": "calendar#event",
            "etag": "\"3187234769062000\"",
            "id": "abc123",
            "status": "confirmed",
            "htmlLink": "https://www.google.com/calendar/event?eid=x",
            "created": "2020-07-01T15:29:44.000Z",
            "updated": "2020-07-01T15:29:44.531Z",
            "summary": "Standup",
            "creator": {"email": "a@example.com", "self": true},
            "organizer": {"email": "a@example.com", "self": true},
            "start": {"dateTime": "2024-03-10T09:00:00-05:00", "timeZone": "America/New_York"},
            "end": {"dateTime": "2024-03-10T09:15:00-05:00", "timeZone": "America/New_York"},
            "recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=MO", "RDATE;TZID=America/New_York:20240315T090000"],
            "iCalUID": "abc123@google.com",
            "sequence": 2,
            "eventType": "default",
            "extendedProperties": {"private": {"chronosLink": "L1"}, "shared": {"x": "y"}},
            "reminders": {"useDefault": false, "overrides": [{"method": "popup", "minutes": 10}]},
            "attendees": [{"email": "b@example.com", "responseStatus": "needsAction"}],
            "conferenceData": {"entryPoints": []},
            "guestsCanModify": true,
            "someFutureField": {"nested": [1, 2, 3]}
        });
        let event: Event = serde_json::from_value(raw).expect("parses");
        assert_eq!(event.id.as_deref(), Some("abc123"));
        assert_eq!(event.ical_uid.as_deref(), Some("abc123@google.com"));
        assert_eq!(event.sequence, Some(2));
        assert_eq!(event.private_property("chronosLink"), Some("L1"));
        assert_eq!(
            event.start.as_ref().and_then(EventDateTime::instant),
            Some(Utc.with_ymd_and_hms(2024, 3, 10, 14, 0, 0).unwrap())
        );
        assert_eq!(
            event.updated_at(),
            DateTime::parse_from_rfc3339("2020-07-01T15:29:44.531Z")
                .ok()
                .map(|d| d.with_timezone(&Utc))
        );
        assert_eq!(
            event.reminders.and_then(|r| r.overrides).map(|o| o[0].minutes),
            Some(10)
        );
        assert!(event.attendees.is_some_and(|a| a.is_array()));
        assert_eq!(event.recurrence.map(|r| r.len()), Some(2));
    }

    #[test]
    fn a_cancelled_id_only_entry_parses() {
        let event: Event = serde_json::from_value(json!({"id": "gone1", "status": "cancelled"})).unwrap();
        assert!(event.is_cancelled());
        assert!(event.start.is_none() && event.summary.is_none());
        let exception: Event = serde_json::from_value(json!({
            "id": "m_20240101T100000Z", "status": "cancelled", "recurringEventId": "m",
            "originalStartTime": {"dateTime": "2024-01-01T10:00:00Z"}
        }))
        .unwrap();
        assert_eq!(exception.recurring_event_id.as_deref(), Some("m"));
    }

    #[test]
    fn writes_leave_out_unset_fields_and_keep_google_names() {
        let event = Event {
            id: Some("chronos0001".into()),
            summary: Some("Lunch".into()),
            start: Some(EventDateTime::all_day(
                NaiveDate::from_ymd_opt(2024, 5, 1).unwrap(),
            )),
            end: Some(EventDateTime::all_day(
                NaiveDate::from_ymd_opt(2024, 5, 2).unwrap(),
            )),
            ical_uid: Some("u@x".into()),
            sequence: Some(0),
            extended_properties: Some(ExtendedProperties {
                private: BTreeMap::from([("k".into(), "v".into())]),
                shared: BTreeMap::new(),
            }),
            ..Event::default()
        };
        let v = serde_json::to_value(&event).unwrap();
        assert_eq!(
            v,
            json!({
                "id": "chronos0001",
                "summary": "Lunch",
                "start": {"date": "2024-05-01"},
                "end": {"date": "2024-05-02"},
                "iCalUID": "u@x",
                "sequence": 0,
                "extendedProperties": {"private": {"k": "v"}}
            })
        );
        let back: Event = serde_json::from_value(v).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn date_times_are_read_leniently() {
        let local = EventDateTime {
            date_time: Some("2024-07-01T09:30:00".into()),
            time_zone: Some("Europe/Paris".into()),
            ..Default::default()
        };
        assert_eq!(
            local.instant(),
            Some(Utc.with_ymd_and_hms(2024, 7, 1, 7, 30, 0).unwrap())
        );
        let no_zone = EventDateTime {
            date_time: Some("2024-07-01T09:30:00".into()),
            ..Default::default()
        };
        assert_eq!(no_zone.instant(), None);
        let utc = EventDateTime::at(Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap(), None);
        assert_eq!(utc.date_time.as_deref(), Some("2024-01-02T03:04:05Z"));
        let day: EventDateTime = serde_json::from_value(json!({"date": "2024-02-29"})).unwrap();
        assert!(day.is_all_day());
        assert_eq!(day.naive_date(), NaiveDate::from_ymd_opt(2024, 2, 29));
        assert_eq!(day.instant(), None);
    }

    #[test]
    fn pages_tolerate_missing_and_null_fields() {
        let page: EventsPage = serde_json::from_value(json!({"items": null, "nextPageToken": "p2"})).unwrap();
        assert!(page.items.is_empty());
        assert_eq!(page.next_page_token.as_deref(), Some("p2"));
        let page: EventsPage = serde_json::from_value(json!({
            "kind": "calendar#events", "timeZone": "UTC", "accessRole": "owner", "nextSyncToken": "s1"
        }))
        .unwrap();
        assert_eq!(page.next_sync_token.as_deref(), Some("s1"));
        assert_eq!(page.access_role.as_deref(), Some("owner"));
        let list: CalendarListPage = serde_json::from_value(json!({
            "items": [{"id": "primary@x", "summary": "Me", "primary": true, "accessRole": "owner"},
                      {"id": "gone@x", "deleted": true}]
        }))
        .unwrap();
        assert!(list.items[0].primary && list.items[0].is_writable());
        assert_eq!(list.items[1].display_name(), "gone@x");
        assert!(list.items[1].deleted);
    }

    #[test]
    fn channel_expiration_is_read_as_string_or_number_and_written_as_string() {
        for raw in [
            json!("1700000000000"),
            json!(1_700_000_000_000_i64),
            json!(1.7e12),
        ] {
            let c: Channel = serde_json::from_value(json!({"id": "c", "expiration": raw})).unwrap();
            assert_eq!(c.expiration, Some(1_700_000_000_000));
            assert_eq!(
                c.expires_at(),
                Some(Utc.with_ymd_and_hms(2023, 11, 14, 22, 13, 20).unwrap())
            );
        }
        let c: Channel = serde_json::from_value(json!({"id": "c", "expiration": "soon"})).unwrap();
        assert_eq!(c.expiration, None);
        let request = Channel {
            id: "c1".into(),
            kind: Some("web_hook".into()),
            address: Some("https://x/hook".into()),
            expiration: Some(5),
            ..Channel::default()
        };
        assert_eq!(
            serde_json::to_value(&request).unwrap(),
            json!({"id": "c1", "type": "web_hook", "address": "https://x/hook", "expiration": "5"})
        );
    }

    #[test]
    fn error_bodies_and_userinfo_parse() {
        let body = br#"{"error":{"code":410,"message":"Sync token is no longer valid, a full sync is required.","errors":[{"domain":"calendar","reason":"fullSyncRequired","message":"Sync token is no longer valid, a full sync is required.","locationType":"parameter","location":"syncToken"}]}}"#;
        let e = GoogleErrorBody::parse(body).unwrap();
        assert_eq!(e.error.code, 410);
        assert_eq!(e.reason(), Some("fullSyncRequired"));
        assert_eq!(e.location(), Some("syncToken"));
        assert!(GoogleErrorBody::parse(b"<html>oops</html>").is_none());
        let u: UserInfo = serde_json::from_value(json!({
            "sub": "1", "email": "a@x", "email_verified": "true", "given_name": "A"
        }))
        .unwrap();
        assert!(u.email_verified);
        assert_eq!(u.name, None);
    }
}
