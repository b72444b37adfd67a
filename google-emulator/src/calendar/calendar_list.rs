//! calendarList.list/get, calendars.get and colors.get.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::sync;
use super::{begin, json_response, resolve_calendar};
use crate::Emulator;
use crate::auth::Need;
use crate::error::ApiError;
use crate::state::{ListEntry, Role, State as World};

/// Calendar palette "1".."24" (background colours; foreground is #000000).
pub const CALENDAR_COLORS: [&str; 24] = [
    "#ac725e", "#d06b64", "#f83a22", "#fa573c", "#ff7537", "#ffad46", "#42d692", "#16a765", "#7bd148",
    "#b3dc6c", "#fbe983", "#fad165", "#92e1c0", "#9fe1e7", "#9fc6e7", "#4986e7", "#9a9cff", "#b99aff",
    "#c2c2c2", "#cabdbf", "#cca6ac", "#f691b2", "#cd74e6", "#a47ae2",
];

/// Event palette "1".."11" (foreground #1d1d1d).
pub const EVENT_COLORS: [&str; 11] = [
    "#a4bdfc", "#7ae7bf", "#dbadff", "#ff887c", "#fbd75b", "#ffb878", "#46d6db", "#e1e1e1", "#5484ed",
    "#51b749", "#dc2127",
];

/// A calendarList entry as Google renders it.
pub fn entry_json(st: &World, entry: &ListEntry) -> Value {
    let mut m = Map::new();
    m.insert("kind".into(), json!("calendar#calendarListEntry"));
    m.insert("etag".into(), json!(entry.etag));
    m.insert("id".into(), json!(entry.calendar_id));
    if entry.deleted {
        m.insert("deleted".into(), json!(true));
        return Value::Object(m);
    }
    if let Some(cal) = st.calendars.get(&entry.calendar_id) {
        m.insert("summary".into(), json!(cal.summary));
        if let Some(d) = &cal.description {
            m.insert("description".into(), json!(d));
        }
        if let Some(l) = &cal.location {
            m.insert("location".into(), json!(l));
        }
        m.insert("timeZone".into(), json!(cal.time_zone));
    }
    if let Some(s) = &entry.summary_override {
        m.insert("summaryOverride".into(), json!(s));
    }
    let color = entry
        .color_id
        .parse::<usize>()
        .ok()
        .and_then(|n| CALENDAR_COLORS.get(n.wrapping_sub(1)))
        .copied()
        .unwrap_or("#9fc6e7");
    m.insert("colorId".into(), json!(entry.color_id));
    m.insert("backgroundColor".into(), json!(color));
    m.insert("foregroundColor".into(), json!("#000000"));
    if entry.hidden {
        m.insert("hidden".into(), json!(true));
    }
    if entry.selected {
        m.insert("selected".into(), json!(true));
    }
    m.insert("accessRole".into(), json!(entry.access_role.as_str()));
    let reminders = if entry.primary {
        json!([{"method": "popup", "minutes": 10}])
    } else {
        json!([])
    };
    m.insert("defaultReminders".into(), reminders);
    if entry.primary && entry.access_role == Role::Owner {
        m.insert(
            "notificationSettings".into(),
            json!({"notifications": [
                {"type": "eventCreation", "method": "email"},
                {"type": "eventChange", "method": "email"},
                {"type": "eventCancellation", "method": "email"},
                {"type": "eventResponse", "method": "email"}
            ]}),
        );
    }
    if entry.primary {
        m.insert("primary".into(), json!(true));
    }
    m.insert(
        "conferenceProperties".into(),
        json!({"allowedConferenceSolutionTypes": ["hangoutsMeet"]}),
    );
    Value::Object(m)
}

pub async fn list(
    State(emu): State<Emulator>,
    headers: HeaderMap,
    RawQuery(qs): RawQuery,
) -> Result<Response, ApiError> {
    let (caller, p) = begin(&emu, &headers, qs.as_deref(), Need::CalendarListRead)?;
    let cfg = emu.config();
    let max = p.int_in("maxResults", 100, 1, 250)?;
    let show_deleted = p.flag("showDeleted")?;
    let show_hidden = p.flag("showHidden")?;
    let min_role = match p.get_nonempty("minAccessRole") {
        None => None,
        Some(r) => Some(Role::parse(r).ok_or_else(|| {
            ApiError::invalid(&format!("Invalid value for: minAccessRole ({r})")).param("minAccessRole")
        })?),
    };
    let sync_token = p.get_nonempty("syncToken").map(str::to_owned);
    if sync_token.is_some() && min_role.is_some() {
        return Err(ApiError::sync_token_with_restrictions());
    }
    let mut st = emu.lock();
    let acc = st
        .account(&caller.email)
        .cloned()
        .ok_or_else(ApiError::invalid_credentials)?;
    let owner = format!("list\u{1f}{}", acc.email);
    let page = if let Some(pt) = p.get_nonempty("pageToken") {
        sync::next_page(&st, &owner, pt, max, cfg.page_size_cap)?
    } else {
        let since = match &sync_token {
            None => None,
            Some(t) => Some(
                sync::decode(t, 'l', st.nonce, acc.list_epoch, acc.list_seq, &acc.email)
                    .ok_or_else(ApiError::full_sync_required)?,
            ),
        };
        let items: Vec<Value> = acc
            .list
            .iter()
            .filter(|e| match since {
                Some(s) => e.change_seq > s,
                None => {
                    (show_deleted || !e.deleted)
                        && (show_hidden || !e.hidden)
                        && min_role.is_none_or(|r| e.access_role >= r)
                }
            })
            .map(|e| entry_json(&st, e))
            .collect();
        let token = sync::encode('l', st.nonce, acc.list_epoch, acc.list_seq, &acc.email);
        sync::first_page(&mut st, &owner, items, token, max, cfg.page_size_cap)
    };
    let mut body = json!({
        "kind": "calendar#calendarList",
        "etag": format!("\"{}\"", acc.list_seq),
        "items": page.items,
    });
    if let Some(t) = page.next_page_token {
        body["nextPageToken"] = json!(t);
    }
    if let Some(t) = page.next_sync_token {
        body["nextSyncToken"] = json!(t);
    }
    Ok(json_response(StatusCode::OK, &body))
}

pub async fn get_entry(
    State(emu): State<Emulator>,
    Path(cid): Path<String>,
    headers: HeaderMap,
    RawQuery(qs): RawQuery,
) -> Result<Response, ApiError> {
    let (caller, _) = begin(&emu, &headers, qs.as_deref(), Need::CalendarListRead)?;
    let st = emu.lock();
    let (cal_id, _) = resolve_calendar(&st, &caller, &cid)?;
    let entry = st
        .account(&caller.email)
        .and_then(|a| a.entry(&cal_id))
        .ok_or_else(ApiError::not_found)?;
    Ok(json_response(StatusCode::OK, &entry_json(&st, entry)))
}

pub async fn get_calendar(
    State(emu): State<Emulator>,
    Path(cid): Path<String>,
    headers: HeaderMap,
    RawQuery(qs): RawQuery,
) -> Result<Response, ApiError> {
    let (caller, _) = begin(&emu, &headers, qs.as_deref(), Need::CalendarsRead)?;
    let st = emu.lock();
    let (cal_id, _) = resolve_calendar(&st, &caller, &cid)?;
    let cal = st.calendars.get(&cal_id).ok_or_else(ApiError::not_found)?;
    Ok(json_response(StatusCode::OK, &cal.json()))
}

pub async fn colors(
    State(emu): State<Emulator>,
    headers: HeaderMap,
    RawQuery(qs): RawQuery,
) -> Result<Response, ApiError> {
    begin(&emu, &headers, qs.as_deref(), Need::AnyCalendar)?;
    let mut calendar = Map::new();
    for (i, c) in CALENDAR_COLORS.iter().enumerate() {
        calendar.insert(
            (i + 1).to_string(),
            json!({"background": c, "foreground": "#1d1d1d"}),
        );
    }
    let mut event = Map::new();
    for (i, c) in EVENT_COLORS.iter().enumerate() {
        event.insert(
            (i + 1).to_string(),
            json!({"background": c, "foreground": "#1d1d1d"}),
        );
    }
    let body = json!({
        "kind": "calendar#colors",
        "updated": "2012-02-14T00:00:00.000Z",
        "calendar": calendar,
        "event": event,
    });
    Ok(json_response(StatusCode::OK, &body))
}
