//! What a mirror is: the content a copy carries, how that content is normalised, compared, hashed and
//! written, how copies are named and how they are recognised. Pure: no database, no network, no clock.
//!
//! - [`MirrorContent`]: the fields a mirror copies, normalised so that what Google rewrites on its side
//!   (offsets of date-times, default values left out, `\r\n`) never reads as a change.
//! - [`content_hash`]: a stable SHA-256 of a content, recorded in `event_links` as last synced.
//! - [`mirror_event_id`] / [`mirror_instance_id`]: the deterministic Google id of a copy, so a repeated
//!   insert answers 409 instead of creating a duplicate.
//! - [`mirror_content`] / [`mirror_body`] / [`build_mirror`]: what gets written (never attendees,
//!   attachments or conference data; reminders off; privacy mode leaks nothing of the origin).
//! - [`MirrorMarker`] / [`is_mirror`]: the private extended properties every copy carries. An event with
//!   a marker of ANY config is never used as an origin: mirrors of mirrors do not exist.
//! - [`reverse_content`] / [`origin_patch`]: how an edit of a copy flows back to its origin (TWO_WAY).

use std::{borrow::Cow, collections::BTreeMap};

use chrono::{DateTime, Datelike, SecondsFormat, SubsecRound, Utc};
use data_encoding::{BASE32HEX_NOPAD, HEXLOWER};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{
    entities::enums::{EventStatus, LinkOrigin},
    events::{
        recurrence::{self, EventTime},
        store::{self, StoredEvent},
    },
    google::{self, ExtendedProperties, Reminders},
};

/// Private extended property naming the sync config that wrote a copy (its value is the config id).
/// Defined by the event store, which turns it into `events.mirror_config_id`.
pub use crate::events::store::MIRROR_MARKER_KEY as MIRROR_CONFIG_KEY;

/// Private extended property naming the origin event of a copy (its Google id, an opaque value).
pub const MIRROR_ORIGIN_KEY: &str = "chronosMirrorOrigin";

/// Private extended property naming the side of the config the origin lives on: `SOURCE` or
/// `DESTINATION` (the [`LinkOrigin`] names).
pub const MIRROR_ORIGIN_SIDE_KEY: &str = "chronosMirrorOriginSide";

/// The title of a privacy copy when the config's placeholder is blank.
pub const DEFAULT_PLACEHOLDER: &str = "Busy";

/// Length of a mirror's id: 26 base32hex characters hold 130 bits of SHA-256, so collisions between the
/// copies of one calendar are negligible.
pub const MIRROR_ID_LEN: usize = 26;

/// Event types Google will not let a copy have: mirroring them is skipped (and counted), never retried.
pub const SKIPPED_EVENT_TYPES: [&str; 5] = [
    "outOfOffice",
    "focusTime",
    "workingLocation",
    "fromGmail",
    "birthday",
];

/// `transparency` when Google leaves it out.
pub const DEFAULT_TRANSPARENCY: &str = "opaque";

/// `visibility` when Google leaves it out.
pub const DEFAULT_VISIBILITY: &str = "default";

/// One of the two calendars of a sync config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    Source,
    Destination,
}

impl Side {
    pub fn other(self) -> Self {
        match self {
            Self::Source => Self::Destination,
            Self::Destination => Self::Source,
        }
    }

    /// The name stored in [`MIRROR_ORIGIN_SIDE_KEY`] (the same as [`LinkOrigin`]'s).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Source => "SOURCE",
            Self::Destination => "DESTINATION",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw.trim() {
            "SOURCE" => Some(Self::Source),
            "DESTINATION" => Some(Self::Destination),
            _ => None,
        }
    }
}

impl From<LinkOrigin> for Side {
    fn from(origin: LinkOrigin) -> Self {
        match origin {
            LinkOrigin::Source => Self::Source,
            LinkOrigin::Destination => Self::Destination,
        }
    }
}

impl From<Side> for LinkOrigin {
    fn from(side: Side) -> Self {
        match side {
            Side::Source => Self::Source,
            Side::Destination => Self::Destination,
        }
    }
}

/// The content a mirror copies. Build it with [`MirrorContent::from_google`] /
/// [`MirrorContent::from_stored`], or by hand followed by [`MirrorContent::normalised`]; compare with `==`
/// only normalised values (the planner normalises whatever it is given).
///
/// Normal form: texts use `\n` line ends and missing equals empty; times are instants (whole seconds)
/// with their zone label, or dates, so `2026-03-10T09:00:00-05:00` and `2026-03-10T14:00:00Z` with the
/// same `timeZone` are equal; recurrence lines are trimmed, their property and parameter names and
/// rule values upper-cased, empty lines dropped, order kept; transparency is `opaque` when missing,
/// visibility `default`, and a blank colour is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorContent {
    pub summary: String,
    pub description: String,
    pub location: String,
    pub start: EventTime,
    pub end: EventTime,
    /// RRULE / EXRULE / RDATE / EXDATE lines of a series master; empty otherwise.
    pub recurrence: Vec<String>,
    pub transparency: String,
    pub visibility: String,
    pub color_id: Option<String>,
}

impl MirrorContent {
    /// A content with only times, every other field at its default.
    pub fn new(start: EventTime, end: EventTime) -> Self {
        Self {
            summary: String::new(),
            description: String::new(),
            location: String::new(),
            start,
            end,
            recurrence: Vec::new(),
            transparency: DEFAULT_TRANSPARENCY.to_owned(),
            visibility: DEFAULT_VISIBILITY.to_owned(),
            color_id: None,
        }
    }

    /// The normal form (idempotent).
    pub fn normalised(self) -> Self {
        Self {
            summary: normalise_text(&self.summary),
            description: normalise_text(&self.description),
            location: normalise_text(&self.location),
            start: normalise_time(self.start),
            end: normalise_time(self.end),
            recurrence: normalise_recurrence(&self.recurrence),
            transparency: normalise_keyword(&self.transparency, DEFAULT_TRANSPARENCY),
            visibility: normalise_keyword(&self.visibility, DEFAULT_VISIBILITY),
            color_id: self
                .color_id
                .map(|c| c.trim().to_owned())
                .filter(|c| !c.is_empty()),
        }
    }

    pub fn is_series(&self) -> bool {
        !self.recurrence.is_empty()
    }

    /// The content of a Google event, normalised. A cancelled exception that carries only its original
    /// start occupies that start; a missing end (or one of the other kind) is the start, as in the cache.
    /// `None` when no time is readable. Exceptions never carry recurrence lines.
    pub fn from_google(event: &google::Event) -> Option<Self> {
        let original_start = event
            .original_start_time
            .as_ref()
            .and_then(store::time_from_google);
        let is_exception = event
            .recurring_event_id
            .as_deref()
            .is_some_and(|id| !id.is_empty());
        let start = event
            .start
            .as_ref()
            .and_then(store::time_from_google)
            .or_else(|| original_start.filter(|_| event.is_cancelled()))?;
        let end = event
            .end
            .as_ref()
            .and_then(store::time_from_google)
            .filter(|end| end.is_all_day() == start.is_all_day())
            .unwrap_or_else(|| start.clone());
        let recurrence = if is_exception {
            Vec::new()
        } else {
            event.recurrence.clone().unwrap_or_default()
        };
        Some(
            Self {
                summary: event.summary.clone().unwrap_or_default(),
                description: event.description.clone().unwrap_or_default(),
                location: event.location.clone().unwrap_or_default(),
                start,
                end,
                recurrence,
                transparency: event.transparency.clone().unwrap_or_default(),
                visibility: event.visibility.clone().unwrap_or_default(),
                color_id: event.color_id.clone(),
            }
            .normalised(),
        )
    }

    /// The content of a cached event, normalised.
    pub fn from_stored(event: &StoredEvent) -> Self {
        let recurrence = if event.is_exception() {
            Vec::new()
        } else {
            event.recurrence.clone().unwrap_or_default()
        };
        Self {
            summary: event.summary.clone().unwrap_or_default(),
            description: event.description.clone().unwrap_or_default(),
            location: event.location.clone().unwrap_or_default(),
            start: event.start.clone(),
            end: event.end.clone(),
            recurrence,
            transparency: event.transparency.clone().unwrap_or_default(),
            visibility: event.visibility.clone().unwrap_or_default(),
            color_id: event.color_id.clone(),
        }
        .normalised()
    }
}

fn normalise_text(text: &str) -> String {
    normalise_text_cow(text).into_owned()
}

fn normalise_text_cow(text: &str) -> Cow<'_, str> {
    if text.contains('\r') {
        Cow::Owned(text.replace("\r\n", "\n"))
    } else {
        Cow::Borrowed(text)
    }
}

/// Google keeps whole seconds and writes are sent with whole seconds: sub-seconds would read as an edit.
fn normalise_time(time: EventTime) -> EventTime {
    match time {
        EventTime::Date(date) => EventTime::Date(date),
        EventTime::DateTime { instant, time_zone } => EventTime::DateTime {
            instant: instant.trunc_subsecs(0),
            time_zone: time_zone
                .map(|tz| tz.trim().to_owned())
                .filter(|tz| !tz.is_empty()),
        },
    }
}

fn normalise_keyword(raw: &str, default: &str) -> String {
    let value = raw.trim().to_ascii_lowercase();
    if value.is_empty() {
        default.to_owned()
    } else {
        value
    }
}

fn normalise_recurrence(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|line| normalise_recurrence_line(line))
        .collect()
}

/// `rrule;x-param=Value:freq=weekly` -> `RRULE;X-PARAM=Value:FREQ=WEEKLY`: names are case-insensitive
/// (RFC 5545), parameter values (a TZID) are not; rule and date values are keywords and digits.
fn normalise_recurrence_line(line: &str) -> Option<String> {
    let line = line.trim();
    if line.is_empty() {
        return None;
    }
    let Some((head, value)) = line.split_once(':') else {
        return Some(line.to_ascii_uppercase());
    };
    let mut parts = head.split(';');
    let name = parts.next().unwrap_or_default().trim().to_ascii_uppercase();
    let mut normal = name.clone();
    for parameter in parts {
        normal.push(';');
        match parameter.split_once('=') {
            Some((key, val)) => {
                normal.push_str(&key.trim().to_ascii_uppercase());
                normal.push('=');
                normal.push_str(val.trim());
            }
            None => normal.push_str(&parameter.trim().to_ascii_uppercase()),
        }
    }
    normal.push(':');
    match name.as_str() {
        "RRULE" | "EXRULE" | "RDATE" | "EXDATE" => normal.push_str(&value.trim().to_ascii_uppercase()),
        _ => normal.push_str(value.trim()),
    }
    Some(normal)
}

/// A stable hash of a content (SHA-256, lower-case hex) over a canonical, versioned encoding of its normal
/// form: equal contents hash equal whatever form they were given in. Links store it: changing the encoding
/// makes every pair look changed once.
pub fn content_hash(content: &MirrorContent) -> String {
    let mut hasher = Sha256::new();
    // Each field length-prefixed: no two different contents share an encoding.
    let mut field = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    };
    field(b"chronos-mirror-content/1");
    for text in [&content.summary, &content.description, &content.location] {
        field(normalise_text_cow(text).as_bytes());
    }
    for time in [&content.start, &content.end] {
        field(&time_key(time));
    }
    let recurrence = normalise_recurrence(&content.recurrence);
    field(&(recurrence.len() as u64).to_le_bytes());
    for line in &recurrence {
        field(line.as_bytes());
    }
    field(normalise_keyword(&content.transparency, DEFAULT_TRANSPARENCY).as_bytes());
    field(normalise_keyword(&content.visibility, DEFAULT_VISIBILITY).as_bytes());
    match content
        .color_id
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        Some(color) => field(format!("color:{color}").as_bytes()),
        None => field(b"no color"),
    }
    HEXLOWER.encode(&hasher.finalize())
}

/// A time's identity: the date, or the whole-second instant and its zone label.
fn time_key(time: &EventTime) -> Vec<u8> {
    match time {
        EventTime::Date(date) => {
            let mut key = b"date:".to_vec();
            key.extend_from_slice(&date.num_days_from_ce().to_le_bytes());
            key
        }
        EventTime::DateTime { instant, time_zone } => {
            let mut key = b"at:".to_vec();
            key.extend_from_slice(&instant.timestamp().to_le_bytes());
            key.extend_from_slice(time_zone.as_deref().unwrap_or_default().trim().as_bytes());
            key
        }
    }
}

/// The Google id of the copy of `origin_event_id` (an event of the config's `origin` side): the first
/// [`MIRROR_ID_LEN`] characters of the lower-case base32hex SHA-256 of (config, side, origin id). Google's
/// id alphabet (a-v, 0-9), deterministic, so an insert repeated after a crash answers 409. The side is
/// part of it because one Google id can exist in both calendars (an invitation seen by both accounts).
pub fn mirror_event_id(config_id: Uuid, origin: Side, origin_event_id: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"chronos-mirror-id/1\0");
    hasher.update(config_id.as_bytes());
    hasher.update(origin.as_str().as_bytes());
    hasher.update(b"\0");
    hasher.update(origin_event_id.as_bytes());
    // 20 bytes are 32 base32 characters (whole 5-byte groups): the first 26 are the same as for all 32.
    let digest = hasher.finalize();
    let mut id = BASE32HEX_NOPAD.encode(&digest[..20]).to_ascii_lowercase();
    id.truncate(MIRROR_ID_LEN);
    id
}

/// The Google id of the instance of the copy series that mirrors the instance of `origin_master_id`
/// originally at `original_start`: `<mirror master id>_<suffix>` (Google's instance id form), so the copy's
/// exceptions attach to the copy series.
pub fn mirror_instance_id(
    config_id: Uuid,
    origin: Side,
    origin_master_id: &str,
    original_start: &EventTime,
) -> String {
    recurrence::instance_id(
        &mirror_event_id(config_id, origin, origin_master_id),
        original_start,
    )
}

/// Whether Google accepts `id` as a client-chosen event id: base32hex (a-v, 0-9), 5 to 1024 characters.
pub fn is_valid_event_id(id: &str) -> bool {
    (5..=1024).contains(&id.len()) && id.bytes().all(|b| matches!(b, b'a'..=b'v' | b'0'..=b'9'))
}

/// Whether events of this type are skipped (Google will not write them into another calendar).
pub fn skippable_event_type(event_type: Option<&str>) -> bool {
    event_type.is_some_and(|t| SKIPPED_EVENT_TYPES.contains(&t.trim()))
}

/// The origin named by a mirror marker.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MirrorOrigin {
    pub side: Side,
    /// Google id of the origin event (for a copy's exception: the origin's instance id).
    pub event_id: String,
}

/// The marker every copy carries in its private extended properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorMarker {
    /// The config that wrote the copy; `None` when the value is not a UUID (still a mirror: never an origin).
    pub config_id: Option<Uuid>,
    /// `None` when the origin properties are missing or unreadable.
    pub origin: Option<MirrorOrigin>,
}

impl MirrorMarker {
    /// The marker in `extendedProperties.private`, if any: any [`MIRROR_CONFIG_KEY`] makes a mirror.
    pub fn from_private_properties(properties: &BTreeMap<String, String>) -> Option<Self> {
        let config = properties.get(MIRROR_CONFIG_KEY)?;
        let origin = match (
            properties
                .get(MIRROR_ORIGIN_SIDE_KEY)
                .and_then(|raw| Side::parse(raw)),
            properties
                .get(MIRROR_ORIGIN_KEY)
                .filter(|id| !id.trim().is_empty()),
        ) {
            (Some(side), Some(event_id)) => Some(MirrorOrigin {
                side,
                event_id: event_id.trim().to_owned(),
            }),
            _ => None,
        };
        Some(Self {
            config_id: Uuid::parse_str(config.trim()).ok(),
            origin,
        })
    }

    pub fn is_of(&self, config_id: Uuid) -> bool {
        self.config_id == Some(config_id)
    }
}

/// The Chronos mirror marker of a Google event, if it carries one (of any config).
pub fn is_mirror(event: &google::Event) -> Option<MirrorMarker> {
    MirrorMarker::from_private_properties(&event.extended_properties.as_ref()?.private)
}

/// How one direction of a config writes its copies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectionSettings {
    pub config_id: Uuid,
    /// The side the origins of this direction live on (copies go to the other side).
    pub origin: Side,
    /// Privacy mode: copies are titled with this placeholder (blank means [`DEFAULT_PLACEHOLDER`]).
    pub privacy_placeholder: Option<String>,
    /// The colour of every copy ("1"-"11"); `None` keeps the origin's colour.
    pub color_id: Option<String>,
}

impl DirectionSettings {
    fn placeholder(&self) -> Option<&str> {
        self.privacy_placeholder.as_deref().map(|p| {
            let p = p.trim();
            if p.is_empty() { DEFAULT_PLACEHOLDER } else { p }
        })
    }

    fn color_override(&self) -> Option<String> {
        self.color_id
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
    }
}

/// The content a copy of `origin` must have. Everything is copied; the config's colour overrides the
/// origin's. Privacy mode keeps only busy time: the placeholder title, no description, no location, the
/// default visibility; times, recurrence, transparency (busy/free) and colour stay.
pub fn mirror_content(origin: &MirrorContent, settings: &DirectionSettings) -> MirrorContent {
    let origin = origin.clone().normalised();
    let color_id = settings.color_override().or(origin.color_id);
    match settings.placeholder() {
        Some(placeholder) => MirrorContent {
            summary: placeholder.to_owned(),
            description: String::new(),
            location: String::new(),
            visibility: DEFAULT_VISIBILITY.to_owned(),
            color_id,
            ..origin
        },
        None => MirrorContent { color_id, ..origin },
    }
    .normalised()
}

/// What the origin becomes when the edits of its copy flow back (TWO_WAY). Through a privacy copy only
/// start, end and recurrence flow back: the placeholder text, the visibility and everything else the copy
/// shows are the config's, not the user's. Otherwise every copied field flows back, except the colour when
/// the config overrides it.
pub fn reverse_content(
    origin: &MirrorContent,
    copy: &MirrorContent,
    settings: &DirectionSettings,
) -> MirrorContent {
    let origin = origin.clone().normalised();
    let copy = copy.clone().normalised();
    let timing = MirrorContent {
        start: copy.start.clone(),
        end: copy.end.clone(),
        recurrence: copy.recurrence.clone(),
        ..origin.clone()
    };
    if settings.placeholder().is_some() {
        return timing;
    }
    MirrorContent {
        summary: copy.summary,
        description: copy.description,
        location: copy.location,
        transparency: copy.transparency,
        visibility: copy.visibility,
        color_id: if settings.color_override().is_some() {
            origin.color_id
        } else {
            copy.color_id
        },
        ..timing
    }
}

/// The body written for a copy (insert, or replace with PUT), `content` being what [`mirror_content`]
/// returned. Status confirmed (a PUT on a deleted copy resurrects it), reminders off, never attendees,
/// attachments or conference data; the marker names the config, the origin id and side, in PRIVATE
/// properties only. Send it with `sendUpdates=none`.
pub fn mirror_body(
    copy_id: &str,
    origin_event_id: &str,
    content: &MirrorContent,
    settings: &DirectionSettings,
) -> google::Event {
    let content = content.clone().normalised();
    let is_series = content.is_series();
    let private = BTreeMap::from([
        (MIRROR_CONFIG_KEY.to_owned(), settings.config_id.to_string()),
        (MIRROR_ORIGIN_KEY.to_owned(), origin_event_id.to_owned()),
        (
            MIRROR_ORIGIN_SIDE_KEY.to_owned(),
            settings.origin.as_str().to_owned(),
        ),
    ]);
    let text = |value: String| (!value.is_empty()).then_some(value);
    google::Event {
        id: Some(copy_id.to_owned()),
        status: Some("confirmed".to_owned()),
        summary: text(content.summary),
        description: text(content.description),
        location: text(content.location),
        start: Some(store::time_to_google(&content.start)),
        end: Some(store::time_to_google(&content.end)),
        recurrence: is_series.then_some(content.recurrence),
        transparency: Some(content.transparency),
        visibility: Some(content.visibility),
        color_id: content.color_id,
        extended_properties: Some(ExtendedProperties {
            private,
            shared: BTreeMap::new(),
        }),
        reminders: Some(Reminders {
            use_default: Some(false),
            overrides: Some(Vec::new()),
        }),
        ..google::Event::default()
    }
}

/// The copy of `origin` as written: its deterministic id (an instance id of the copy series for an
/// exception), the mirrored content, the marker. `None` when the origin has no readable content.
pub fn build_mirror(origin: &CalendarEvent, settings: &DirectionSettings) -> Option<google::Event> {
    let content = origin.content.as_ref()?;
    let copy_id = match (&origin.recurring_event_id, &origin.original_start) {
        (Some(master_id), Some(original_start)) => {
            mirror_instance_id(settings.config_id, settings.origin, master_id, original_start)
        }
        _ => mirror_event_id(settings.config_id, settings.origin, &origin.google_id),
    };
    Some(mirror_body(
        &copy_id,
        &origin.google_id,
        &mirror_content(content, settings),
        settings,
    ))
}

/// The PATCH body that turns `before` into `after` on an origin event: only the fields that differ, so
/// attendees, reminders, attachments and everything else Chronos does not copy stay untouched. Cleared
/// texts and colour are sent as `null`; start and end are sent together, with the other kind's key nulled
/// (a PATCH merges objects).
pub fn origin_patch(before: &MirrorContent, after: &MirrorContent) -> Value {
    let before = before.clone().normalised();
    let after = after.clone().normalised();
    let mut patch = Map::new();
    let text = |value: &str| {
        if value.is_empty() {
            Value::Null
        } else {
            json!(value)
        }
    };
    for (key, old, new) in [
        ("summary", &before.summary, &after.summary),
        ("description", &before.description, &after.description),
        ("location", &before.location, &after.location),
    ] {
        if old != new {
            patch.insert(key.to_owned(), text(new));
        }
    }
    if before.start != after.start || before.end != after.end {
        patch.insert("start".to_owned(), time_patch(&after.start));
        patch.insert("end".to_owned(), time_patch(&after.end));
    }
    if before.recurrence != after.recurrence {
        patch.insert("recurrence".to_owned(), json!(after.recurrence));
    }
    if before.transparency != after.transparency {
        patch.insert("transparency".to_owned(), json!(after.transparency));
    }
    if before.visibility != after.visibility {
        patch.insert("visibility".to_owned(), json!(after.visibility));
    }
    if before.color_id != after.color_id {
        patch.insert(
            "colorId".to_owned(),
            after.color_id.as_deref().map_or(Value::Null, |c| json!(c)),
        );
    }
    Value::Object(patch)
}

fn time_patch(time: &EventTime) -> Value {
    match time {
        EventTime::Date(date) => {
            json!({"date": date.format("%Y-%m-%d").to_string(), "dateTime": null, "timeZone": null})
        }
        EventTime::DateTime { instant, time_zone } => json!({
            "date": null,
            "dateTime": instant.to_rfc3339_opts(SecondsFormat::Secs, true),
            "timeZone": time_zone,
        }),
    }
}

/// One event of a calendar as the planner sees it (from the cache, or from Google).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarEvent {
    pub google_id: String,
    /// `Cancelled` on an event that is not an exception means deleted (a tombstone of the cache); on an
    /// exception it means that instance of the series is cancelled.
    pub status: EventStatus,
    /// Google's `eventType` (`None` = default).
    pub event_type: Option<String>,
    /// The series master's id, on exceptions.
    pub recurring_event_id: Option<String>,
    /// Which instance an exception replaces.
    pub original_start: Option<EventTime>,
    /// `None` only for cancelled entries without readable times.
    pub content: Option<MirrorContent>,
    pub etag: Option<String>,
    pub updated: Option<DateTime<Utc>>,
    /// The Chronos mirror marker, of any config.
    pub mirror: Option<MirrorMarker>,
}

impl CalendarEvent {
    /// An exception (changed or cancelled instance) of a series.
    pub fn is_exception(&self) -> bool {
        self.recurring_event_id.is_some() && self.original_start.is_some()
    }

    /// Deleted: cancelled and not an exception.
    pub fn is_deleted(&self) -> bool {
        self.status == EventStatus::Cancelled && !self.is_exception()
    }

    /// A Google event (a listing entry or the answer to a write). `None` without an id.
    pub fn from_google(event: &google::Event) -> Option<Self> {
        let google_id = event.id.clone().filter(|id| !id.is_empty())?;
        let original_start = event
            .original_start_time
            .as_ref()
            .and_then(store::time_from_google);
        let recurring_event_id = event.recurring_event_id.clone().filter(|id| !id.is_empty());
        let is_exception = recurring_event_id.is_some() && original_start.is_some();
        Some(Self {
            google_id,
            status: match event.status.as_deref() {
                Some("cancelled") => EventStatus::Cancelled,
                Some("tentative") => EventStatus::Tentative,
                _ => EventStatus::Confirmed,
            },
            event_type: event.event_type.clone(),
            recurring_event_id: if is_exception { recurring_event_id } else { None },
            original_start: if is_exception { original_start } else { None },
            content: MirrorContent::from_google(event),
            etag: event.etag.clone(),
            updated: event.updated_at(),
            mirror: is_mirror(event),
        })
    }

    /// A cached event; a tombstone (`deleted_at`) reads as deleted.
    pub fn from_stored(event: &StoredEvent) -> Self {
        let is_exception = event.is_exception();
        Self {
            google_id: event.google_event_id.clone(),
            status: if event.is_tombstone() {
                EventStatus::Cancelled
            } else {
                event.status
            },
            event_type: event.event_type.clone(),
            recurring_event_id: if is_exception {
                event.recurring_event_id.clone()
            } else {
                None
            },
            original_start: if is_exception {
                event.original_start.clone()
            } else {
                None
            },
            content: Some(MirrorContent::from_stored(event)),
            etag: event.etag.clone(),
            updated: event.google_updated,
            mirror: MirrorMarker::from_private_properties(&event.extended_private),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, TimeZone};
    use serde_json::json;

    use super::*;
    use crate::google::EventDateTime;

    const CONFIG: Uuid = Uuid::from_u128(0x0195_6a1e_0000_7000_8000_0000_0000_0001);

    fn instant(raw: &str, zone: Option<&str>) -> EventTime {
        EventTime::DateTime {
            instant: DateTime::parse_from_rfc3339(raw).unwrap().with_timezone(&Utc),
            time_zone: zone.map(str::to_owned),
        }
    }

    fn google_event(raw: serde_json::Value) -> google::Event {
        serde_json::from_value(raw).unwrap()
    }

    fn sample() -> MirrorContent {
        MirrorContent {
            summary: "Salary talk".into(),
            description: "Bring numbers".into(),
            location: "Room 4".into(),
            visibility: "public".into(),
            color_id: Some("2".into()),
            ..MirrorContent::new(
                instant("2026-03-10T14:00:00Z", Some("America/New_York")),
                instant("2026-03-10T15:00:00Z", Some("America/New_York")),
            )
        }
    }

    fn settings(privacy: Option<&str>, color: Option<&str>) -> DirectionSettings {
        DirectionSettings {
            config_id: CONFIG,
            origin: Side::Source,
            privacy_placeholder: privacy.map(str::to_owned),
            color_id: color.map(str::to_owned),
        }
    }

    #[test]
    fn times_compare_as_instants_and_missing_equals_default() {
        let offset = google_event(json!({
            "start": {"dateTime": "2026-03-10T09:00:00-05:00", "timeZone": "America/New_York"},
            "end": {"dateTime": "2026-03-10T10:00:00.000-05:00", "timeZone": "America/New_York"},
            "summary": "A", "description": "", "transparency": "opaque", "visibility": "default", "colorId": " "
        }));
        let utc = google_event(json!({
            "start": {"dateTime": "2026-03-10T14:00:00Z", "timeZone": "America/New_York"},
            "end": {"dateTime": "2026-03-10T15:00:00Z", "timeZone": "America/New_York"},
            "summary": "A"
        }));
        let (a, b) = (
            MirrorContent::from_google(&offset).unwrap(),
            MirrorContent::from_google(&utc).unwrap(),
        );
        assert_eq!(a, b);
        assert_eq!(content_hash(&a), content_hash(&b));
        assert_eq!(
            (a.transparency.as_str(), a.visibility.as_str(), a.color_id.clone()),
            ("opaque", "default", None)
        );
        let other_zone = google_event(json!({
            "start": {"dateTime": "2026-03-10T14:00:00Z", "timeZone": "Europe/Berlin"},
            "end": {"dateTime": "2026-03-10T15:00:00Z", "timeZone": "Europe/Berlin"},
            "summary": "A"
        }));
        assert_ne!(
            MirrorContent::from_google(&other_zone).unwrap(),
            a,
            "the zone label is content"
        );
    }

    #[test]
    fn recurrence_lines_are_normalised_in_order() {
        let content = MirrorContent {
            recurrence: vec![
                " rrule:freq=weekly;byday=mo ".into(),
                String::new(),
                "exdate;tzid=America/New_York:20260316t090000".into(),
            ],
            ..sample()
        }
        .normalised();
        assert_eq!(
            content.recurrence,
            [
                "RRULE:FREQ=WEEKLY;BYDAY=MO",
                "EXDATE;TZID=America/New_York:20260316T090000"
            ]
        );
        assert_eq!(content.clone().normalised(), content, "idempotent");
    }

    #[test]
    fn content_hashes_are_stable_and_sensitive() {
        let base = sample();
        assert_eq!(content_hash(&base), content_hash(&base.clone()));
        assert_eq!(content_hash(&base).len(), 64);
        // Pinned: a change of encoding would rewrite every mirror once.
        assert_eq!(
            content_hash(&MirrorContent::new(
                EventTime::Date(NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()),
                EventTime::Date(NaiveDate::from_ymd_opt(2026, 1, 2).unwrap()),
            )),
            PINNED_HASH
        );
        let variants = [
            MirrorContent {
                summary: "x".into(),
                ..base.clone()
            },
            MirrorContent {
                description: "x".into(),
                ..base.clone()
            },
            MirrorContent {
                location: "x".into(),
                ..base.clone()
            },
            MirrorContent {
                start: instant("2026-03-10T14:30:00Z", Some("America/New_York")),
                ..base.clone()
            },
            MirrorContent {
                end: instant("2026-03-10T15:30:00Z", Some("America/New_York")),
                ..base.clone()
            },
            MirrorContent {
                recurrence: vec!["RRULE:FREQ=DAILY".into()],
                ..base.clone()
            },
            MirrorContent {
                transparency: "transparent".into(),
                ..base.clone()
            },
            MirrorContent {
                visibility: "private".into(),
                ..base.clone()
            },
            MirrorContent {
                color_id: None,
                ..base.clone()
            },
        ];
        let hashes: std::collections::HashSet<String> = variants.iter().map(content_hash).collect();
        assert_eq!(hashes.len(), variants.len());
        assert!(!hashes.contains(&content_hash(&base)));
    }

    const PINNED_HASH: &str = "709d34c827476099c2b6feb123b4e46f779200699c22a0038892a862e0a704d3";

    #[test]
    fn mirror_ids_are_deterministic_and_in_googles_alphabet() {
        let id = mirror_event_id(CONFIG, Side::Source, "abc123");
        assert_eq!(id, mirror_event_id(CONFIG, Side::Source, "abc123"));
        assert_eq!(id.len(), MIRROR_ID_LEN);
        assert!(is_valid_event_id(&id));
        assert_ne!(id, mirror_event_id(CONFIG, Side::Destination, "abc123"));
        assert_ne!(id, mirror_event_id(Uuid::from_u128(7), Side::Source, "abc123"));
        assert_ne!(id, mirror_event_id(CONFIG, Side::Source, "abc124"));
        let start = instant("2026-03-10T14:00:00Z", Some("America/New_York"));
        assert_eq!(
            mirror_instance_id(CONFIG, Side::Source, "abc123", &start),
            format!("{id}_20260310T140000Z")
        );
        assert!(!is_valid_event_id("a-b-c-d-e") && !is_valid_event_id("abcd") && !is_valid_event_id("ABCDE"));
    }

    #[test]
    fn a_mirror_copies_what_it_should_and_nothing_else() {
        let origin = CalendarEvent::from_google(&google_event(json!({
            "id": "origin1", "status": "confirmed", "summary": "Standup", "description": "Daily", "location": "Room 4",
            "start": {"dateTime": "2026-03-10T09:00:00-05:00", "timeZone": "America/New_York"},
            "end": {"dateTime": "2026-03-10T09:15:00-05:00", "timeZone": "America/New_York"},
            "recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=TU"], "transparency": "transparent", "visibility": "private",
            "colorId": "3", "attendees": [{"email": "guest@example.com"}], "attachments": [{"fileUrl": "x"}],
            "conferenceData": {"entryPoints": []}, "reminders": {"useDefault": true},
            "extendedProperties": {"private": {"mine": "1"}, "shared": {"theirs": "2"}}
        })))
        .unwrap();
        let body = build_mirror(&origin, &settings(None, None)).unwrap();
        assert_eq!(body.id, Some(mirror_event_id(CONFIG, Side::Source, "origin1")));
        assert_eq!(body.summary.as_deref(), Some("Standup"));
        assert_eq!(body.description.as_deref(), Some("Daily"));
        assert_eq!(body.location.as_deref(), Some("Room 4"));
        assert_eq!(
            body.recurrence.as_deref(),
            Some(&["RRULE:FREQ=WEEKLY;BYDAY=TU".to_owned()][..])
        );
        assert_eq!(
            (body.transparency.as_deref(), body.visibility.as_deref()),
            (Some("transparent"), Some("private"))
        );
        assert_eq!(body.color_id.as_deref(), Some("3"));
        assert_eq!(
            body.start.as_ref().unwrap().time_zone.as_deref(),
            Some("America/New_York")
        );
        assert!(body.attendees.is_none() && body.attachments.is_none() && body.conference_data.is_none());
        assert_eq!(
            body.reminders,
            Some(Reminders {
                use_default: Some(false),
                overrides: Some(Vec::new())
            })
        );
        let properties = body.extended_properties.as_ref().unwrap();
        assert!(properties.shared.is_empty());
        assert_eq!(
            properties.private,
            BTreeMap::from([
                (MIRROR_CONFIG_KEY.to_owned(), CONFIG.to_string()),
                (MIRROR_ORIGIN_KEY.to_owned(), "origin1".to_owned()),
                (MIRROR_ORIGIN_SIDE_KEY.to_owned(), "SOURCE".to_owned()),
            ])
        );
        // What was written reads back as the mirrored content.
        assert_eq!(
            MirrorContent::from_google(&body),
            Some(mirror_content(
                origin.content.as_ref().unwrap(),
                &settings(None, None)
            ))
        );
        let with_colour = build_mirror(&origin, &settings(None, Some("11"))).unwrap();
        assert_eq!(with_colour.color_id.as_deref(), Some("11"));
    }

    #[test]
    fn exceptions_are_written_to_the_copy_series_instance() {
        let exception = CalendarEvent::from_google(&google_event(json!({
            "id": "series1_20260317T140000Z", "recurringEventId": "series1",
            "originalStartTime": {"dateTime": "2026-03-17T14:00:00Z", "timeZone": "America/New_York"},
            "start": {"dateTime": "2026-03-17T16:00:00Z", "timeZone": "America/New_York"},
            "end": {"dateTime": "2026-03-17T17:00:00Z", "timeZone": "America/New_York"},
            "recurrence": ["RRULE:FREQ=DAILY"]
        })))
        .unwrap();
        assert!(exception.is_exception());
        let body = build_mirror(&exception, &settings(None, None)).unwrap();
        assert_eq!(
            body.id,
            Some(format!(
                "{}_20260317T140000Z",
                mirror_event_id(CONFIG, Side::Source, "series1")
            ))
        );
        assert!(body.recurrence.is_none(), "exceptions carry no rules");
    }

    #[test]
    fn privacy_copies_leak_nothing_of_the_origin() {
        let origin = sample();
        let private = mirror_content(&origin, &settings(Some("Busy (work)"), None));
        assert_eq!(private.summary, "Busy (work)");
        assert!(private.description.is_empty() && private.location.is_empty());
        assert_eq!(private.visibility, "default");
        assert_eq!(
            (private.start.clone(), private.end.clone()),
            (origin.start.clone(), origin.end.clone())
        );
        assert_eq!(private.color_id.as_deref(), Some("2"));
        assert_eq!(
            mirror_content(&origin, &settings(Some("  "), None)).summary,
            DEFAULT_PLACEHOLDER
        );
        let body = mirror_body(
            "copy00001",
            "origin-id-7",
            &private,
            &settings(Some("Busy (work)"), None),
        );
        let mut visible = serde_json::to_value(&body).unwrap();
        visible.as_object_mut().unwrap().remove("extendedProperties");
        let visible = visible.to_string();
        for leak in ["Salary", "numbers", "Room 4", "origin-id-7", "public"] {
            assert!(!visible.contains(leak), "{leak} leaked: {visible}");
        }
    }

    #[test]
    fn edits_flow_back_by_the_privacy_rule() {
        let origin = sample();
        let copy = MirrorContent {
            summary: "typed over the placeholder".into(),
            description: "x".into(),
            visibility: "private".into(),
            color_id: Some("9".into()),
            start: instant("2026-03-10T16:00:00Z", Some("America/New_York")),
            end: instant("2026-03-10T17:00:00Z", Some("America/New_York")),
            ..origin.clone()
        };
        let through_privacy = reverse_content(&origin, &copy, &settings(Some("Busy"), None));
        assert_eq!(
            through_privacy,
            MirrorContent {
                start: copy.start.clone(),
                end: copy.end.clone(),
                ..origin.clone()
            }
        );
        let plain = reverse_content(&origin, &copy, &settings(None, None));
        assert_eq!(plain, copy);
        let coloured = reverse_content(&origin, &copy, &settings(None, Some("5")));
        assert_eq!(
            coloured,
            MirrorContent {
                color_id: origin.color_id.clone(),
                ..copy.clone()
            }
        );
    }

    #[test]
    fn origin_patches_send_only_what_changed() {
        let before = sample();
        assert_eq!(origin_patch(&before, &before), json!({}));
        let after = MirrorContent {
            description: String::new(),
            color_id: None,
            end: EventTime::Date(NaiveDate::from_ymd_opt(2026, 3, 11).unwrap()),
            start: EventTime::Date(NaiveDate::from_ymd_opt(2026, 3, 10).unwrap()),
            ..before.clone()
        };
        assert_eq!(
            origin_patch(&before, &after),
            json!({
                "description": null,
                "colorId": null,
                "start": {"date": "2026-03-10", "dateTime": null, "timeZone": null},
                "end": {"date": "2026-03-11", "dateTime": null, "timeZone": null},
            })
        );
        let timed = origin_patch(&after, &before);
        assert_eq!(
            timed["start"],
            json!({"date": null, "dateTime": "2026-03-10T14:00:00Z", "timeZone": "America/New_York"})
        );
        assert_eq!(timed["description"], json!("Bring numbers"));
    }

    #[test]
    fn any_chronos_marker_makes_a_mirror() {
        let marked = |private: serde_json::Value| {
            is_mirror(&google_event(json!({"extendedProperties": {"private": private}})))
        };
        let ours = marked(json!({
            MIRROR_CONFIG_KEY: CONFIG.to_string(), MIRROR_ORIGIN_KEY: "o1", MIRROR_ORIGIN_SIDE_KEY: "DESTINATION"
        }))
        .unwrap();
        assert!(ours.is_of(CONFIG));
        assert_eq!(
            ours.origin,
            Some(MirrorOrigin {
                side: Side::Destination,
                event_id: "o1".into()
            })
        );
        let garbled = marked(json!({MIRROR_CONFIG_KEY: "not-a-uuid"})).unwrap();
        assert_eq!((garbled.config_id, garbled.origin), (None, None));
        assert!(marked(json!({"somethingElse": "1"})).is_none());
        assert!(is_mirror(&google::Event::default()).is_none());
    }

    #[test]
    fn google_only_event_types_are_skipped() {
        for kind in [
            "outOfOffice",
            "focusTime",
            "workingLocation",
            "fromGmail",
            "birthday",
        ] {
            assert!(skippable_event_type(Some(kind)));
        }
        assert!(!skippable_event_type(None) && !skippable_event_type(Some("default")));
    }

    #[test]
    fn calendar_events_read_cancellations_and_exceptions() {
        let gone =
            CalendarEvent::from_google(&google_event(json!({"id": "x1", "status": "cancelled"}))).unwrap();
        assert!(gone.is_deleted() && gone.content.is_none());
        let cancelled_instance = CalendarEvent::from_google(&google_event(json!({
            "id": "m_20260310", "status": "cancelled", "recurringEventId": "m",
            "originalStartTime": {"date": "2026-03-10"}
        })))
        .unwrap();
        assert!(!cancelled_instance.is_deleted() && cancelled_instance.is_exception());
        assert_eq!(
            cancelled_instance.content.map(|c| c.start),
            Some(EventTime::Date(NaiveDate::from_ymd_opt(2026, 3, 10).unwrap()))
        );
        assert!(CalendarEvent::from_google(&google::Event::default()).is_none());
        let sub_second = EventDateTime::at(Utc.with_ymd_and_hms(2026, 3, 10, 9, 0, 0).unwrap(), None);
        let with_millis = MirrorContent::new(
            instant("2026-03-10T09:00:00.250Z", None),
            instant("2026-03-10T09:00:00.250Z", None),
        )
        .normalised();
        assert_eq!(with_millis.start, store::time_from_google(&sub_second).unwrap());
    }
}
