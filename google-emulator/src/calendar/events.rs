//! Event mutations and events.get: insert, import, quickAdd, get, update (PUT), patch,
//! delete and move, including edits of single instances of recurring events.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{Duration, DurationRound, Timelike};
use serde_json::{Map, Value, json};

use super::model::{self, render};
use super::schema::retain_event_fields;
use super::{begin, check_if_match, etag_matches, json_body, json_response, resolve_calendar};
use crate::Emulator;
use crate::auth::Need;
use crate::config::EmulatorConfig;
use crate::error::{ApiError, EmulatorError};
use crate::state::{Role, State as World, StoredEvent};
use crate::util;

fn require_writer(role: Role) -> Result<(), ApiError> {
    if role.can_write() {
        Ok(())
    } else {
        Err(ApiError::required_access_level())
    }
}

fn organizer_for(st: &World, calendar_id: &str) -> Value {
    match st.calendars.get(calendar_id) {
        Some(cal) if st.account(calendar_id).is_none() => {
            json!({"email": calendar_id, "displayName": cal.summary})
        }
        _ => json!({"email": calendar_id}),
    }
}

/// Stores `res` in the calendar under its id, bumping the change counter.
fn store(st: &mut World, calendar_id: &str, res: Map<String, Value>) -> Result<(), ApiError> {
    let cal = st
        .calendars
        .get_mut(calendar_id)
        .ok_or_else(ApiError::not_found)?;
    cal.seq += 1;
    let id = res
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let insert_seq = match cal.events.get(&id) {
        Some(e) => e.insert_seq,
        None => {
            cal.insert_counter += 1;
            cal.insert_counter
        }
    };
    cal.events.insert(
        id,
        StoredEvent {
            res,
            change_seq: cal.seq,
            insert_seq,
        },
    );
    Ok(())
}

fn set_defaults(res: &mut Map<String, Value>) {
    if res.get("status").is_none_or(Value::is_null) {
        res.insert("status".into(), json!("confirmed"));
    }
    if res.get("reminders").is_none_or(Value::is_null) {
        res.insert("reminders".into(), json!({"useDefault": true}));
    }
    if res.get("sequence").is_none_or(Value::is_null) {
        res.insert("sequence".into(), json!(0));
    }
    if res.get("eventType").is_none_or(Value::is_null) {
        res.insert("eventType".into(), json!("default"));
    }
}

/// events.insert (and import when `import`): returns the stored resource as seen by `actor`.
pub fn insert_into(
    st: &mut World,
    calendar_id: &str,
    actor: &str,
    mut body: Map<String, Value>,
    import: bool,
) -> Result<Value, ApiError> {
    retain_event_fields(&mut body, false);
    model::strip_read_only(&mut body, import);
    body.remove("recurringEventId");
    body.remove("originalStartTime");
    let id = match body.get("id") {
        None | Some(Value::Null) => util::new_event_id(),
        Some(Value::String(s)) if util::is_valid_event_id(s) => s.clone(),
        Some(_) => return Err(ApiError::invalid_resource_id()),
    };
    let cal = st.calendars.get(calendar_id).ok_or_else(ApiError::not_found)?;
    if cal.events.contains_key(&id) {
        return Err(ApiError::duplicate());
    }
    match body.get("eventType").and_then(Value::as_str) {
        Some("fromGmail") => {
            return Err(ApiError::invalid("Event type fromGmail cannot be created."));
        }
        Some(t) if import && t != "default" => {
            return Err(ApiError::invalid("Only events of type default can be imported."));
        }
        _ => {}
    }
    model::validate(&body, false)?;
    model::normalize_date_times(&mut body, cal.tz());
    let now = util::rfc3339_millis(st.now());
    let etag = st.next_etag();
    body.insert("kind".into(), json!("calendar#event"));
    body.insert("etag".into(), json!(etag));
    body.insert("id".into(), json!(id));
    body.insert("htmlLink".into(), json!(model::html_link(&id, calendar_id)));
    body.insert("created".into(), json!(now));
    body.insert("updated".into(), json!(now));
    body.insert("creator".into(), json!({"email": actor}));
    if !import || body.get("organizer").is_none_or(|o| !o.is_object()) {
        body.insert("organizer".into(), organizer_for(st, calendar_id));
    }
    if body.get("iCalUID").and_then(Value::as_str).is_none() {
        body.insert("iCalUID".into(), json!(format!("{id}@google.com")));
    }
    set_defaults(&mut body);
    store(st, calendar_id, body.clone())?;
    st.notify_calendar(calendar_id);
    Ok(render(&body, actor, calendar_id))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Put,
    Patch,
}

/// Completes `new` from `old` (server-owned and immutable fields) and validates it.
fn finalize_update(
    st: &mut World,
    calendar_id: &str,
    old: &Map<String, Value>,
    new: &mut Map<String, Value>,
) -> Result<(), ApiError> {
    if let Some(t) = new.get("eventType").and_then(Value::as_str)
        && Some(t) != old.get("eventType").and_then(Value::as_str)
    {
        return Err(ApiError::invalid("Event type cannot be changed."));
    }
    for k in [
        "kind",
        "id",
        "iCalUID",
        "created",
        "creator",
        "organizer",
        "htmlLink",
        "eventType",
        "recurringEventId",
        "originalStartTime",
    ] {
        match old.get(k) {
            Some(v) => {
                new.insert(k.into(), v.clone());
            }
            None => {
                new.remove(k);
            }
        }
    }
    let is_instance = new.contains_key("recurringEventId");
    if is_instance {
        new.remove("recurrence");
    }
    if new.get("sequence").is_none_or(Value::is_null)
        && let Some(s) = old.get("sequence")
    {
        new.insert("sequence".into(), s.clone());
    }
    set_defaults(new);
    model::validate(new, is_instance)?;
    let cal_tz = st.calendars.get(calendar_id).map_or(chrono_tz::UTC, |c| c.tz());
    model::normalize_date_times(new, cal_tz);
    let now = util::rfc3339_millis(st.now());
    new.insert("updated".into(), json!(now));
    new.insert("etag".into(), json!(st.next_etag()));
    if new.get("htmlLink").is_none()
        && let Some(id) = new.get("id").and_then(Value::as_str)
    {
        let link = model::html_link(id, calendar_id);
        new.insert("htmlLink".into(), json!(link));
    }
    Ok(())
}

/// Which event a PUT/PATCH targets, and who asks.
struct Target<'a> {
    calendar_id: &'a str,
    actor: &'a str,
    event_id: &'a str,
}

fn write_existing(
    st: &mut World,
    cfg: &EmulatorConfig,
    target: &Target<'_>,
    mut body: Map<String, Value>,
    mode: Mode,
    headers: &HeaderMap,
) -> Result<Value, ApiError> {
    let Target {
        calendar_id,
        actor,
        event_id,
    } = *target;
    // A PATCH body keeps its nulls: they delete fields in the merge.
    retain_event_fields(&mut body, mode == Mode::Patch);
    model::strip_read_only(&mut body, false);
    let cal = st.calendars.get(calendar_id).ok_or_else(ApiError::not_found)?;
    let tz = cal.tz();
    let old = if let Some(stored) = cal.events.get(event_id) {
        check_if_match(headers, stored.etag())?;
        stored.res.clone()
    } else if let Some((master_id, occ)) = model::split_instance_id(event_id) {
        let master = cal
            .events
            .get(master_id)
            .filter(|m| m.is_master() && !m.is_cancelled())
            .ok_or_else(ApiError::not_found)?;
        check_if_match(headers, master.etag())?;
        if !model::has_occurrence(&master.res, occ, tz, cfg.max_expanded_instances) {
            return Err(ApiError::not_found());
        }
        model::instance_of(&master.res, occ, calendar_id, tz)
    } else {
        return Err(ApiError::not_found());
    };
    let mut new = match mode {
        Mode::Put => body,
        Mode::Patch => {
            let mut m = old.clone();
            model::merge_patch(&mut m, &body);
            // Nulls the merge keeps (inside replaced arrays) are unset fields too.
            retain_event_fields(&mut m, false);
            m
        }
    };
    finalize_update(st, calendar_id, &old, &mut new)?;
    store(st, calendar_id, new.clone())?;
    st.notify_calendar(calendar_id);
    Ok(render(&new, actor, calendar_id))
}

fn delete_inner(
    st: &mut World,
    cfg: &EmulatorConfig,
    calendar_id: &str,
    event_id: &str,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    let cal = st.calendars.get(calendar_id).ok_or_else(ApiError::not_found)?;
    let tz = cal.tz();
    let mut to_cancel: Vec<Map<String, Value>> = Vec::new();
    if let Some(stored) = cal.events.get(event_id) {
        if stored.is_cancelled() {
            return Err(ApiError::deleted(&cfg.delete_deleted_reason));
        }
        check_if_match(headers, stored.etag())?;
        to_cancel.push(stored.res.clone());
        if stored.is_master() {
            for e in cal.events.values() {
                if e.recurring_event_id() == Some(event_id) && !e.is_cancelled() {
                    to_cancel.push(e.res.clone());
                }
            }
        }
    } else if let Some((master_id, occ)) = model::split_instance_id(event_id) {
        let master = cal
            .events
            .get(master_id)
            .filter(|m| m.is_master() && !m.is_cancelled())
            .ok_or_else(ApiError::not_found)?;
        check_if_match(headers, master.etag())?;
        if !model::has_occurrence(&master.res, occ, tz, cfg.max_expanded_instances) {
            return Err(ApiError::not_found());
        }
        to_cancel.push(model::instance_of(&master.res, occ, calendar_id, tz));
    } else {
        return Err(ApiError::not_found());
    }
    for mut res in to_cancel {
        res.insert("status".into(), json!("cancelled"));
        let now = util::rfc3339_millis(st.now());
        res.insert("updated".into(), json!(now));
        res.insert("etag".into(), json!(st.next_etag()));
        store(st, calendar_id, res)?;
    }
    st.notify_calendar(calendar_id);
    Ok(())
}

pub async fn insert(
    State(emu): State<Emulator>,
    Path(cid): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (caller, _) = begin(&emu, &headers, q.as_deref(), Need::EventsWrite)?;
    let body = json_body(&body)?;
    let mut st = emu.lock();
    let (cal_id, role) = resolve_calendar(&st, &caller, &cid)?;
    require_writer(role)?;
    let v = insert_into(&mut st, &cal_id, &caller.email, body, false)?;
    Ok(json_response(StatusCode::OK, &v))
}

pub async fn import(
    State(emu): State<Emulator>,
    Path(cid): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (caller, _) = begin(&emu, &headers, q.as_deref(), Need::EventsWrite)?;
    let mut body = json_body(&body)?;
    // The organizer below is copied from the body as sent, so the body is cleaned here already.
    retain_event_fields(&mut body, false);
    let Some(ical) = body
        .get("iCalUID")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
    else {
        return Err(ApiError::required("Missing iCalUID."));
    };
    let mut st = emu.lock();
    let (cal_id, role) = resolve_calendar(&st, &caller, &cid)?;
    require_writer(role)?;
    let existing = st.calendars.get(&cal_id).and_then(|c| {
        c.events
            .values()
            .find(|e| {
                e.recurring_event_id().is_none()
                    && e.res.get("iCalUID").and_then(Value::as_str) == Some(ical.as_str())
            })
            .map(|e| e.id().to_owned())
    });
    let v = match existing {
        Some(id) => {
            let mut body = body;
            body.remove("id");
            let mut organizer = body.get("organizer").cloned();
            if let Some(Value::Object(org)) = organizer.as_mut() {
                org.remove("self");
            }
            let target = Target {
                calendar_id: &cal_id,
                actor: &caller.email,
                event_id: &id,
            };
            let mut v = write_existing(&mut st, emu.config(), &target, body, Mode::Put, &HeaderMap::new())?;
            if let Some(org) = organizer.filter(Value::is_object)
                && let Some(cal) = st.calendars.get_mut(&cal_id)
                && let Some(ev) = cal.events.get_mut(&id)
            {
                ev.res.insert("organizer".into(), org);
                v = render(&ev.res, &caller.email, &cal_id);
            }
            v
        }
        None => insert_into(&mut st, &cal_id, &caller.email, body, true)?,
    };
    Ok(json_response(StatusCode::OK, &v))
}

pub async fn quick_add(
    State(emu): State<Emulator>,
    Path(cid): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let (caller, p) = begin(&emu, &headers, q.as_deref(), Need::EventsWrite)?;
    let Some(text) = p.get_nonempty("text").map(str::to_owned) else {
        return Err(ApiError::required("Required parameter: text").param("text"));
    };
    let mut st = emu.lock();
    let (cal_id, role) = resolve_calendar(&st, &caller, &cid)?;
    require_writer(role)?;
    let tz = st.calendars.get(&cal_id).map_or(chrono_tz::UTC, |c| c.tz());
    let now = st.now();
    let start = now
        .duration_trunc(Duration::hours(1))
        .unwrap_or(now)
        .with_nanosecond(0)
        .unwrap_or(now)
        + Duration::hours(1);
    let end = start + Duration::hours(1);
    let body = json!({
        "summary": text,
        "start": {"dateTime": model::format_in(start, tz), "timeZone": tz.name()},
        "end": {"dateTime": model::format_in(end, tz), "timeZone": tz.name()},
    });
    let body = body.as_object().cloned().unwrap_or_default();
    let v = insert_into(&mut st, &cal_id, &caller.email, body, false)?;
    Ok(json_response(StatusCode::OK, &v))
}

pub async fn get(
    State(emu): State<Emulator>,
    Path((cid, eid)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let (caller, _) = begin(&emu, &headers, q.as_deref(), Need::EventsRead)?;
    let st = emu.lock();
    let (cal_id, role) = resolve_calendar(&st, &caller, &cid)?;
    let cal = st.calendars.get(&cal_id).ok_or_else(ApiError::not_found)?;
    let tz = cal.tz();
    let res = if let Some(stored) = cal.events.get(&eid) {
        stored.res.clone()
    } else if let Some((master_id, occ)) = model::split_instance_id(&eid) {
        let master = cal
            .events
            .get(master_id)
            .filter(|m| m.is_master() && !m.is_cancelled())
            .ok_or_else(ApiError::not_found)?;
        if !model::has_occurrence(&master.res, occ, tz, emu.config().max_expanded_instances) {
            return Err(ApiError::not_found());
        }
        model::instance_of(&master.res, occ, &cal_id, tz)
    } else {
        return Err(ApiError::not_found());
    };
    let etag = res.get("etag").and_then(Value::as_str).unwrap_or("");
    if emu.config().if_none_match_not_modified
        && let Some(v) = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok())
        && etag_matches(v, etag)
    {
        return Ok(StatusCode::NOT_MODIFIED.into_response());
    }
    let mut v = render(&res, &caller.email, &cal_id);
    if role == Role::FreeBusyReader {
        v = model::free_busy_view(v);
    }
    Ok(json_response(StatusCode::OK, &v))
}

async fn write(
    emu: Emulator,
    cid: String,
    eid: String,
    headers: HeaderMap,
    q: Option<String>,
    body: Bytes,
    mode: Mode,
) -> Result<Response, ApiError> {
    let (caller, _) = begin(&emu, &headers, q.as_deref(), Need::EventsWrite)?;
    let body = json_body(&body)?;
    let mut st = emu.lock();
    let (cal_id, role) = resolve_calendar(&st, &caller, &cid)?;
    require_writer(role)?;
    let target = Target {
        calendar_id: &cal_id,
        actor: &caller.email,
        event_id: &eid,
    };
    let v = write_existing(&mut st, emu.config(), &target, body, mode, &headers)?;
    Ok(json_response(StatusCode::OK, &v))
}

pub async fn update(
    State(emu): State<Emulator>,
    Path((cid, eid)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    write(emu, cid, eid, headers, q, body, Mode::Put).await
}

pub async fn patch(
    State(emu): State<Emulator>,
    Path((cid, eid)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    write(emu, cid, eid, headers, q, body, Mode::Patch).await
}

pub async fn delete(
    State(emu): State<Emulator>,
    Path((cid, eid)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let (caller, _) = begin(&emu, &headers, q.as_deref(), Need::EventsWrite)?;
    let mut st = emu.lock();
    let (cal_id, role) = resolve_calendar(&st, &caller, &cid)?;
    require_writer(role)?;
    delete_inner(&mut st, emu.config(), &cal_id, &eid, &headers)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn move_event(
    State(emu): State<Emulator>,
    Path((cid, eid)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let (caller, p) = begin(&emu, &headers, q.as_deref(), Need::EventsWrite)?;
    let Some(dest) = p.get_nonempty("destination").map(str::to_owned) else {
        return Err(ApiError::required("Required parameter: destination").param("destination"));
    };
    let mut st = emu.lock();
    let (src_id, src_role) = resolve_calendar(&st, &caller, &cid)?;
    require_writer(src_role)?;
    let (dst_id, dst_role) = resolve_calendar(&st, &caller, &dest)?;
    require_writer(dst_role)?;
    let src = st.calendars.get(&src_id).ok_or_else(ApiError::not_found)?;
    let ev = src
        .events
        .get(&eid)
        .filter(|e| !e.is_cancelled())
        .ok_or_else(ApiError::not_found)?;
    if ev.recurring_event_id().is_some() {
        return Err(ApiError::bad_request(
            "Cannot change the organizer of an instance.",
        ));
    }
    if ev
        .res
        .get("eventType")
        .and_then(Value::as_str)
        .unwrap_or("default")
        != "default"
    {
        return Err(ApiError::bad_request("Only events of type default can be moved."));
    }
    if src_id == dst_id {
        let v = render(&ev.res, &caller.email, &src_id);
        return Ok(json_response(StatusCode::OK, &v));
    }
    if st
        .calendars
        .get(&dst_id)
        .is_some_and(|c| c.events.contains_key(&eid))
    {
        return Err(ApiError::duplicate());
    }
    let mut moving: Vec<Map<String, Value>> = vec![ev.res.clone()];
    for e in src.events.values() {
        if e.recurring_event_id() == Some(eid.as_str()) {
            moving.push(e.res.clone());
        }
    }
    let organizer = organizer_for(&st, &dst_id);
    let mut result = Value::Null;
    for res in moving {
        let mut gone = res.clone();
        gone.insert("status".into(), json!("cancelled"));
        let now = util::rfc3339_millis(st.now());
        gone.insert("updated".into(), json!(now));
        gone.insert("etag".into(), json!(st.next_etag()));
        store(&mut st, &src_id, gone)?;
        let mut moved = res;
        moved.insert("organizer".into(), organizer.clone());
        moved.insert("updated".into(), json!(now));
        moved.insert("etag".into(), json!(st.next_etag()));
        if let Some(id) = moved.get("id").and_then(Value::as_str) {
            let link = model::html_link(id, &dst_id);
            moved.insert("htmlLink".into(), json!(link));
        }
        if moved.get("id").and_then(Value::as_str) == Some(eid.as_str()) {
            result = render(&moved, &caller.email, &dst_id);
        }
        store(&mut st, &dst_id, moved)?;
    }
    st.notify_calendar(&src_id);
    st.notify_calendar(&dst_id);
    Ok(json_response(StatusCode::OK, &result))
}

/// Library entry point: events.insert as the calendar's owner.
pub fn insert_as_owner(emu: &Emulator, calendar_id: &str, event: Value) -> Result<Value, EmulatorError> {
    let Value::Object(body) = event else {
        return Err(ApiError::bad_request("Invalid JSON payload received.").into());
    };
    let mut st = emu.lock();
    let (cal_id, owner) = st
        .calendars
        .get(calendar_id)
        .or_else(|| st.calendars.get(&calendar_id.to_ascii_lowercase()))
        .map(|c| (c.id.clone(), c.owner.clone()))
        .ok_or_else(|| EmulatorError::UnknownCalendar(calendar_id.to_owned()))?;
    insert_into(&mut st, &cal_id, &owner, body, false).map_err(EmulatorError::from)
}
