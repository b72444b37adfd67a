//! events.list (full and incremental) and events.instances.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value, json};

use super::model::{self, render, render_cancelled};
use super::sync::{self, Page};
use super::{begin, json_response, resolve_calendar};
use crate::Emulator;
use crate::auth::Need;
use crate::config::ExtPropMatch;
use crate::error::ApiError;
use crate::state::{Calendar, Role, State as World, StoredEvent};
use crate::util::{self, Params};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OrderBy {
    None,
    StartTime,
    Updated,
}

struct Query {
    since: Option<u64>,
    single: bool,
    show_deleted: bool,
    time_min: Option<DateTime<Utc>>,
    time_max: Option<DateTime<Utc>>,
    q: Option<String>,
    ical: Option<String>,
    props: Vec<(bool, String, String)>,
    prop_mode: ExtPropMatch,
    updated_min: Option<DateTime<Utc>>,
    event_types: Vec<String>,
    order_by: OrderBy,
    day_tz: chrono_tz::Tz,
    max_instances: usize,
}

fn contains_ci(hay: Option<&Value>, needle: &str) -> bool {
    hay.and_then(Value::as_str)
        .is_some_and(|s| s.to_lowercase().contains(needle))
}

fn matches_filters(res: &Map<String, Value>, q: &Query) -> bool {
    if let Some(text) = &q.q {
        let needle = text.to_lowercase();
        let people = |v: Option<&Value>| {
            v.is_some_and(|p| {
                contains_ci(p.get("email"), &needle) || contains_ci(p.get("displayName"), &needle)
            })
        };
        let hit = contains_ci(res.get("summary"), &needle)
            || contains_ci(res.get("description"), &needle)
            || contains_ci(res.get("location"), &needle)
            || people(res.get("organizer"))
            || res
                .get("attendees")
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|p| people(Some(p))));
        if !hit {
            return false;
        }
    }
    if let Some(ical) = &q.ical
        && res.get("iCalUID").and_then(Value::as_str) != Some(ical.as_str())
    {
        return false;
    }
    if !q.props.is_empty() {
        let check = |(shared, name, value): &(bool, String, String)| {
            res.get("extendedProperties")
                .and_then(|e| e.get(if *shared { "shared" } else { "private" }))
                .and_then(|m| m.get(name))
                .and_then(Value::as_str)
                == Some(value.as_str())
        };
        let ok = match q.prop_mode {
            ExtPropMatch::All => q.props.iter().all(check),
            ExtPropMatch::Any => q.props.iter().any(check),
        };
        if !ok {
            return false;
        }
    }
    if let Some(min) = q.updated_min {
        let updated = res
            .get("updated")
            .and_then(Value::as_str)
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok());
        if updated.is_none_or(|u| u.with_timezone(&Utc) < min) {
            return false;
        }
    }
    if !q.event_types.is_empty() {
        let t = res.get("eventType").and_then(Value::as_str).unwrap_or("default");
        if !q.event_types.iter().any(|x| x == t) {
            return false;
        }
    }
    true
}

fn in_window(res: &Map<String, Value>, q: &Query) -> bool {
    let Some((s, e)) = model::bounds(res, q.day_tz) else {
        return true;
    };
    q.time_min.is_none_or(|min| e > min) && q.time_max.is_none_or(|max| s < max)
}

/// One result item with its sort keys.
struct Item {
    start: DateTime<Utc>,
    updated: String,
    insert_seq: u64,
    id: String,
    value: Value,
}

fn item(res: &Map<String, Value>, value: Value, insert_seq: u64, day_tz: chrono_tz::Tz) -> Item {
    Item {
        start: model::bounds(res, day_tz).map_or(DateTime::<Utc>::MIN_UTC, |(s, _)| s),
        updated: res
            .get("updated")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        insert_seq,
        id: res.get("id").and_then(Value::as_str).unwrap_or("").to_owned(),
        value,
    }
}

fn collect(cal: &Calendar, q: &Query, viewer: &str) -> Vec<Value> {
    let mut events: Vec<&StoredEvent> = cal.events.values().collect();
    events.sort_by_key(|e| e.insert_seq);
    let master_live = |id: Option<&str>| {
        id.and_then(|m| cal.events.get(m))
            .is_some_and(|m| !m.is_cancelled())
    };
    let incremental = q.since.is_some();
    let mut out: Vec<Item> = Vec::new();
    for ev in events {
        if let Some(since) = q.since
            && ev.change_seq <= since
        {
            continue;
        }
        let is_exception = ev.recurring_event_id().is_some();
        let live_master = is_exception && master_live(ev.recurring_event_id());
        if ev.is_cancelled() {
            let include = if incremental {
                true
            } else {
                let deleted_visible = q.show_deleted || q.updated_min.is_some();
                let base = if q.single {
                    deleted_visible && !ev.is_master()
                } else {
                    deleted_visible || live_master
                };
                base && in_window(&ev.res, q) && matches_filters(&ev.res, q)
            };
            if include {
                let v = render_cancelled(&ev.res, live_master);
                out.push(item(&ev.res, v, ev.insert_seq, q.day_tz));
            }
            continue;
        }
        if ev.is_master() {
            if !matches_filters(&ev.res, q) {
                continue;
            }
            if q.single {
                let occs = model::occurrences(&ev.res, cal.tz(), q.time_min, q.time_max, q.max_instances);
                for occ in occs {
                    let inst = model::instance_of(&ev.res, occ, &cal.id, cal.tz());
                    let id = inst.get("id").and_then(Value::as_str).unwrap_or("");
                    if cal.events.contains_key(id) {
                        continue;
                    }
                    let v = render(&inst, viewer, &cal.id);
                    out.push(item(&inst, v, ev.insert_seq, q.day_tz));
                }
            } else {
                let any = incremental
                    || !model::occurrences(&ev.res, cal.tz(), q.time_min, q.time_max, 1).is_empty();
                if any {
                    let v = render(&ev.res, viewer, &cal.id);
                    out.push(item(&ev.res, v, ev.insert_seq, q.day_tz));
                }
            }
            continue;
        }
        if (incremental || in_window(&ev.res, q)) && matches_filters(&ev.res, q) {
            let v = render(&ev.res, viewer, &cal.id);
            out.push(item(&ev.res, v, ev.insert_seq, q.day_tz));
        }
    }
    match q.order_by {
        OrderBy::StartTime => out.sort_by(|a, b| a.start.cmp(&b.start).then(a.id.cmp(&b.id))),
        OrderBy::Updated => out.sort_by(|a, b| a.updated.cmp(&b.updated).then(a.id.cmp(&b.id))),
        OrderBy::None if q.single => out.sort_by(|a, b| {
            a.start
                .cmp(&b.start)
                .then(a.insert_seq.cmp(&b.insert_seq))
                .then(a.id.cmp(&b.id))
        }),
        OrderBy::None => {}
    }
    out.into_iter().map(|i| i.value).collect()
}

fn parse_props(p: &Params, name: &str, shared: bool) -> Result<Vec<(bool, String, String)>, ApiError> {
    p.all(name)
        .into_iter()
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.split_once('=')
                .map(|(k, val)| (shared, k.to_owned(), val.to_owned()))
                .ok_or_else(|| ApiError::invalid(&format!("Invalid value for: {name}")).param(name))
        })
        .collect()
}

fn response_time_zone(p: &Params, cal: &Calendar) -> Result<(String, chrono_tz::Tz), ApiError> {
    match p.get_nonempty("timeZone") {
        None => Ok((cal.time_zone.clone(), cal.tz())),
        Some(z) => z
            .parse::<chrono_tz::Tz>()
            .map(|tz| (z.to_owned(), tz))
            .map_err(|_| ApiError::invalid("Invalid time zone.").param("timeZone")),
    }
}

fn default_reminders(st: &World, viewer: &str, cal_id: &str) -> Value {
    let primary = st
        .account(viewer)
        .and_then(|a| a.entry(cal_id))
        .is_some_and(|e| e.primary);
    if primary {
        json!([{"method": "popup", "minutes": 10}])
    } else {
        json!([])
    }
}

fn envelope(st: &World, cal: &Calendar, viewer: &str, role: Role, time_zone: &str, page: Page) -> Value {
    let updated = cal
        .events
        .values()
        .filter_map(|e| e.res.get("updated").and_then(Value::as_str))
        .max()
        .map(str::to_owned)
        .unwrap_or_else(|| util::rfc3339_millis(Utc::now()));
    let summary = st
        .account(viewer)
        .and_then(|a| a.entry(&cal.id))
        .and_then(|e| e.summary_override.clone())
        .unwrap_or_else(|| cal.summary.clone());
    let mut out = json!({
        "kind": "calendar#events",
        "etag": format!("\"{}\"", cal.seq),
        "summary": summary,
        "updated": updated,
        "timeZone": time_zone,
        "accessRole": role.as_str(),
        "defaultReminders": default_reminders(st, viewer, &cal.id),
        "items": page.items,
    });
    if let Some(d) = &cal.description {
        out["description"] = json!(d);
    }
    if let Some(t) = page.next_page_token {
        out["nextPageToken"] = json!(t);
    }
    if let Some(t) = page.next_sync_token {
        out["nextSyncToken"] = json!(t);
    }
    out
}

pub async fn list(
    State(emu): State<Emulator>,
    Path(cid): Path<String>,
    headers: HeaderMap,
    RawQuery(qs): RawQuery,
) -> Result<Response, ApiError> {
    let (caller, p) = begin(&emu, &headers, qs.as_deref(), Need::EventsRead)?;
    let cfg = emu.config();
    let max = p.int_in("maxResults", 250, 1, 2500)?;
    let sync_token = p.get_nonempty("syncToken").map(str::to_owned);
    if sync_token.is_some() {
        let restricted = [
            "iCalUID",
            "orderBy",
            "privateExtendedProperty",
            "q",
            "sharedExtendedProperty",
            "timeMin",
            "timeMax",
            "updatedMin",
        ]
        .iter()
        .any(|n| p.has(n));
        let show_deleted_false = p.bool("showDeleted")? == Some(false);
        if restricted || (cfg.sync_token_rejects_show_deleted_false && show_deleted_false) {
            return Err(ApiError::sync_token_with_restrictions());
        }
    }
    let single = p.flag("singleEvents")?;
    let show_deleted = p.flag("showDeleted")?;
    let time_min = p.time("timeMin")?;
    let time_max = p.time("timeMax")?;
    if let (Some(a), Some(b)) = (time_min, time_max)
        && b <= a
    {
        return Err(ApiError::time_range_empty_param());
    }
    let order_by = match p.get_nonempty("orderBy") {
        None => OrderBy::None,
        Some("startTime") if single => OrderBy::StartTime,
        Some("startTime") => {
            return Err(ApiError::invalid(
                "The requested ordering is not available for the particular query.",
            )
            .param("orderBy"));
        }
        Some("updated") => OrderBy::Updated,
        Some(other) => {
            return Err(ApiError::invalid(&format!("Invalid value for: orderBy ({other})")).param("orderBy"));
        }
    };
    let updated_min = p.time("updatedMin")?;
    if let (Some(min), Some(days)) = (updated_min, cfg.updated_min_max_age_days)
        && i64::try_from(days)
            .ok()
            .and_then(Duration::try_days)
            .and_then(|d| Utc::now().checked_sub_signed(d))
            .is_some_and(|limit| min < limit)
    {
        return Err(ApiError::new(
            StatusCode::GONE,
            "calendar",
            "updatedMinTooLongAgo",
            "The requested minimum modification time lies too far in the past.",
        )
        .param("updatedMin"));
    }
    let mut props = parse_props(&p, "privateExtendedProperty", false)?;
    props.extend(parse_props(&p, "sharedExtendedProperty", true)?);
    let event_types: Vec<String> = p
        .all("eventTypes")
        .into_iter()
        .flat_map(|v| v.split(','))
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect();
    for t in &event_types {
        if !model::EVENT_TYPES.contains(&t.as_str()) {
            return Err(
                ApiError::invalid(&format!("Invalid value for: eventTypes ({t})")).param("eventTypes")
            );
        }
    }

    let mut st = emu.lock();
    let (cal_id, role) = resolve_calendar(&st, &caller, &cid)?;
    let cal = st.calendars.get(&cal_id).ok_or_else(ApiError::not_found)?;
    let (tz_name, day_tz) = response_time_zone(&p, cal)?;
    let page_token = p.get_nonempty("pageToken").map(str::to_owned);
    let page = if let Some(pt) = page_token {
        sync::next_page(&st, &cal_id, &pt, max, cfg.page_size_cap)?
    } else {
        let since = match &sync_token {
            None => None,
            Some(t) => Some(
                sync::decode(t, 'e', st.nonce, cal.epoch, cal.seq, &cal.id)
                    .ok_or_else(ApiError::full_sync_required)?,
            ),
        };
        let query = Query {
            since,
            single,
            show_deleted,
            time_min,
            time_max,
            q: p.get_nonempty("q").map(str::to_owned),
            ical: p.get_nonempty("iCalUID").map(str::to_owned),
            props,
            prop_mode: cfg.ext_prop_match,
            updated_min,
            event_types,
            order_by,
            day_tz,
            max_instances: cfg.max_expanded_instances,
        };
        let mut items = collect(cal, &query, &caller.email);
        if role == Role::FreeBusyReader {
            items = items.into_iter().map(model::free_busy_view).collect();
        }
        let token = sync::encode('e', st.nonce, cal.epoch, cal.seq, &cal.id);
        let owner = cal.id.clone();
        sync::first_page(&mut st, &owner, items, token, max, cfg.page_size_cap)
    };
    let cal = st.calendars.get(&cal_id).ok_or_else(ApiError::not_found)?;
    let body = envelope(&st, cal, &caller.email, role, &tz_name, page);
    Ok(json_response(StatusCode::OK, &body))
}

pub async fn instances(
    State(emu): State<Emulator>,
    Path((cid, eid)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(qs): RawQuery,
) -> Result<Response, ApiError> {
    let (caller, p) = begin(&emu, &headers, qs.as_deref(), Need::EventsRead)?;
    let cfg = emu.config();
    let max = p.int_in("maxResults", 250, 1, 2500)?;
    let show_deleted = p.flag("showDeleted")?;
    // timeMin is inclusive here.
    let time_min = p.time("timeMin")?.map(|t| t - Duration::milliseconds(1));
    let time_max = p.time("timeMax")?;
    let original_start = p.time("originalStart")?;
    let mut st = emu.lock();
    let (cal_id, role) = resolve_calendar(&st, &caller, &cid)?;
    let cal = st.calendars.get(&cal_id).ok_or_else(ApiError::not_found)?;
    let (tz_name, day_tz) = response_time_zone(&p, cal)?;
    let owner = format!("{}\u{1f}{eid}", cal.id);
    let page = if let Some(pt) = p.get_nonempty("pageToken") {
        sync::next_page(&st, &owner, pt, max, cfg.page_size_cap)?
    } else {
        let master = cal.events.get(&eid).ok_or_else(ApiError::not_found)?;
        let mut items: Vec<(DateTime<Utc>, Value)> = Vec::new();
        if !master.is_cancelled() {
            if master.is_master() {
                for occ in model::occurrences(
                    &master.res,
                    cal.tz(),
                    time_min,
                    time_max,
                    cfg.max_expanded_instances,
                ) {
                    let inst = model::instance_of(&master.res, occ, &cal.id, cal.tz());
                    let id = inst.get("id").and_then(Value::as_str).unwrap_or("");
                    if cal.events.contains_key(id) {
                        continue;
                    }
                    items.push((occ.instant(day_tz), render(&inst, &caller.email, &cal.id)));
                }
                for e in cal.events.values() {
                    if e.recurring_event_id() != Some(eid.as_str()) {
                        continue;
                    }
                    let Some((s, end)) = model::bounds(&e.res, day_tz) else {
                        continue;
                    };
                    if time_min.is_some_and(|m| end <= m) || time_max.is_some_and(|m| s >= m) {
                        continue;
                    }
                    if e.is_cancelled() {
                        if show_deleted {
                            items.push((s, render_cancelled(&e.res, true)));
                        }
                    } else {
                        items.push((s, render(&e.res, &caller.email, &cal.id)));
                    }
                }
            } else {
                let s = model::bounds(&master.res, day_tz).map_or(DateTime::<Utc>::MIN_UTC, |b| b.0);
                items.push((s, render(&master.res, &caller.email, &cal.id)));
            }
        }
        if let Some(os) = original_start {
            items.retain(|(_, v)| {
                v.get("originalStartTime")
                    .and_then(|o| model::parse_when(Some(o), "start").ok())
                    .is_some_and(|w| w.instant(day_tz) == os)
            });
        }
        items.sort_by_key(|a| a.0);
        let items: Vec<Value> = items.into_iter().map(|(_, v)| v).collect();
        sync::first_page(&mut st, &owner, items, String::new(), max, cfg.page_size_cap)
    };
    let cal = st.calendars.get(&cal_id).ok_or_else(ApiError::not_found)?;
    let mut body = envelope(
        &st,
        cal,
        &caller.email,
        role,
        &tz_name,
        Page {
            next_sync_token: None,
            ..page
        },
    );
    if let Some(obj) = body.as_object_mut() {
        obj.remove("nextSyncToken");
    }
    Ok(json_response(StatusCode::OK, &body))
}
