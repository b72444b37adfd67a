//! The control API under `/emulator/` (JSON, no authentication).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{delete, get, post, put};
use serde_json::{Value, json};

use crate::Emulator;
use crate::calendar::calendar_list::entry_json;
use crate::calendar::{events, json_body, json_response};
use crate::error::ApiError;
use crate::oauth;
use crate::state::{Calendar, Fault, FaultSpec, Role, State as World};
use crate::util;

pub fn routes() -> Router<Emulator> {
    Router::new()
        .route("/emulator/reset", post(reset))
        .route("/emulator/accounts", post(create_account).get(list_accounts))
        .route("/emulator/accounts/{email}/calendars", post(add_calendar))
        .route(
            "/emulator/accounts/{email}/calendars/{calendarId}/share",
            post(share),
        )
        .route("/emulator/accounts/{email}/token", post(token))
        .route("/emulator/accounts/{email}/revoke", post(revoke))
        .route("/emulator/expire-access-tokens", post(expire))
        .route(
            "/emulator/calendars/{calendarId}/invalidate-sync-tokens",
            post(invalidate),
        )
        .route(
            "/emulator/accounts/{email}/invalidate-sync-tokens",
            post(invalidate_list),
        )
        .route("/emulator/calendars/{calendarId}/events", post(seed_event))
        .route(
            "/emulator/faults",
            post(add_fault).delete(clear_faults).get(list_faults),
        )
        .route("/emulator/faults/{id}", delete(remove_fault))
        .route("/emulator/latency", put(set_latency))
        .route("/emulator/requests", get(requests).delete(clear_requests))
        .route("/emulator/stats", get(stats).delete(clear_stats))
        .route("/emulator/quotas", put(set_quotas).get(get_quotas))
}

fn ok(v: &Value) -> Response {
    json_response(StatusCode::OK, v)
}

fn str_field<'a>(body: &'a serde_json::Map<String, Value>, name: &str) -> Option<&'a str> {
    body.get(name).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// Adds a secondary calendar owned by (or visible with `role` to) `email`.
pub fn create_calendar(
    st: &mut World,
    email: &str,
    summary: &str,
    time_zone: Option<&str>,
    role: Role,
) -> Result<Value, ApiError> {
    let owner = st
        .account(email)
        .map(|a| a.email.clone())
        .ok_or_else(ApiError::not_found)?;
    let tz = time_zone.unwrap_or("UTC");
    if tz.parse::<chrono_tz::Tz>().is_err() {
        return Err(ApiError::invalid("Invalid time zone.").at("body", "timeZone"));
    }
    let id = format!("c_{}@group.calendar.google.com", util::base32hex_id(20));
    let etag = st.next_etag();
    st.calendars.insert(
        id.clone(),
        Calendar {
            id: id.clone(),
            summary: summary.to_owned(),
            description: None,
            location: None,
            time_zone: tz.to_owned(),
            owner: owner.clone(),
            etag,
            seq: 1,
            epoch: 1,
            events: Default::default(),
            insert_counter: 0,
        },
    );
    let color = (st.calendars.len() % 24 + 1).to_string();
    st.add_list_entry(&owner, &id, role, &color);
    let acc = st.account(&owner).ok_or_else(ApiError::not_found)?;
    let entry = acc.entry(&id).ok_or_else(ApiError::not_found)?;
    Ok(entry_json(st, entry))
}

/// Gives `email` access to `calendar_id`; returns the new calendarList entry.
pub fn share_calendar(
    st: &mut World,
    calendar_id: &str,
    email: &str,
    access_role: &str,
) -> Result<Value, ApiError> {
    let role = Role::parse(access_role)
        .ok_or_else(|| ApiError::invalid("Invalid value for: accessRole").at("body", "accessRole"))?;
    if !st.calendars.contains_key(calendar_id) {
        return Err(ApiError::not_found());
    }
    let email = st
        .account(email)
        .map(|a| a.email.clone())
        .ok_or_else(ApiError::not_found)?;
    let color = (st.calendars.len() % 24 + 1).to_string();
    st.add_list_entry(&email, calendar_id, role, &color);
    let acc = st.account(&email).ok_or_else(ApiError::not_found)?;
    let entry = acc.entry(calendar_id).ok_or_else(ApiError::not_found)?;
    Ok(entry_json(st, entry))
}

async fn reset(State(emu): State<Emulator>) -> Response {
    emu.reset();
    ok(&json!({}))
}

async fn create_account(State(emu): State<Emulator>, body: Bytes) -> Result<Response, ApiError> {
    let body = json_body(&body)?;
    let email = str_field(&body, "email")
        .filter(|e| e.contains('@'))
        .ok_or_else(|| ApiError::required("Missing email.").at("body", "email"))?;
    let name = str_field(&body, "name");
    Ok(ok(&emu.create_account(email, name)))
}

async fn list_accounts(State(emu): State<Emulator>) -> Response {
    let st = emu.lock();
    let accounts: Vec<Value> = st.accounts.values().map(|a| a.json()).collect();
    ok(&json!({"accounts": accounts}))
}

async fn add_calendar(
    State(emu): State<Emulator>,
    Path(email): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = json_body(&body)?;
    let summary = str_field(&body, "summary")
        .ok_or_else(|| ApiError::required("Missing summary.").at("body", "summary"))?;
    let role = match str_field(&body, "accessRole") {
        None => Role::Owner,
        Some(r) => Role::parse(r)
            .ok_or_else(|| ApiError::invalid("Invalid value for: accessRole").at("body", "accessRole"))?,
    };
    let mut st = emu.lock();
    let v = create_calendar(&mut st, &email, summary, str_field(&body, "timeZone"), role)?;
    Ok(ok(&v))
}

async fn share(
    State(emu): State<Emulator>,
    Path((email, calendar_id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = json_body(&body)?;
    let role = str_field(&body, "accessRole").unwrap_or("reader");
    let mut st = emu.lock();
    let v = share_calendar(&mut st, &calendar_id, &email, role)?;
    Ok(ok(&v))
}

async fn token(
    State(emu): State<Emulator>,
    Path(email): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = json_body(&body)?;
    let scopes: Option<Vec<String>> = body.get("scopes").and_then(|v| match v {
        Value::String(s) => Some(s.split_whitespace().map(str::to_owned).collect()),
        Value::Array(a) => Some(a.iter().filter_map(Value::as_str).map(str::to_owned).collect()),
        _ => None,
    });
    let mut st = emu.lock();
    let (access_token, scopes) =
        oauth::issue_direct_token(&mut st, emu.config(), &email, scopes).ok_or_else(ApiError::not_found)?;
    Ok(ok(&json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": emu.config().access_token_ttl_secs,
        "scope": scopes.join(" "),
    })))
}

async fn revoke(State(emu): State<Emulator>, Path(email): Path<String>) -> Result<Response, ApiError> {
    let n = emu.revoke_account(&email).map_err(|_| ApiError::not_found())?;
    Ok(ok(&json!({"revokedGrants": n})))
}

async fn expire(State(emu): State<Emulator>) -> Response {
    let n = emu.expire_access_tokens();
    ok(&json!({"expired": n}))
}

async fn invalidate(
    State(emu): State<Emulator>,
    Path(calendar_id): Path<String>,
) -> Result<Response, ApiError> {
    emu.invalidate_sync_tokens(&calendar_id)
        .map_err(|_| ApiError::not_found())?;
    Ok(ok(&json!({})))
}

async fn invalidate_list(
    State(emu): State<Emulator>,
    Path(email): Path<String>,
) -> Result<Response, ApiError> {
    let mut st = emu.lock();
    let acc = st.account_mut(&email).ok_or_else(ApiError::not_found)?;
    acc.list_epoch += 1;
    Ok(ok(&json!({})))
}

async fn seed_event(
    State(emu): State<Emulator>,
    Path(calendar_id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = json_body(&body)?;
    match events::insert_as_owner(&emu, &calendar_id, Value::Object(body)) {
        Ok(v) => Ok(ok(&v)),
        Err(crate::EmulatorError::Api { status, body }) => Ok(json_response(
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            &body,
        )),
        Err(_) => Err(ApiError::not_found()),
    }
}

async fn add_fault(State(emu): State<Emulator>, body: Bytes) -> Result<Response, ApiError> {
    let spec: FaultSpec = serde_json::from_slice(if body.is_empty() { b"{}" } else { &body })
        .map_err(|e| ApiError::bad_request(&format!("Invalid fault: {e}")))?;
    if let Some(s) = spec.status
        && !(100..=599).contains(&s)
    {
        return Err(ApiError::invalid("status must be an HTTP status code").at("body", "status"));
    }
    if let Some(p) = spec.probability
        && !(0.0..=1.0).contains(&p)
    {
        return Err(ApiError::invalid("probability must be within 0..1").at("body", "probability"));
    }
    let mut st = emu.lock();
    let id = format!("fault-{}", st.next_fault);
    st.next_fault += 1;
    st.faults.push(Fault {
        id: id.clone(),
        remaining: spec.times,
        to_skip: spec.skip.unwrap_or(0),
        spec,
    });
    Ok(ok(&json!({"id": id})))
}

async fn clear_faults(State(emu): State<Emulator>) -> Response {
    emu.lock().faults.clear();
    ok(&json!({}))
}

async fn list_faults(State(emu): State<Emulator>) -> Response {
    let st = emu.lock();
    let faults: Vec<Value> = st
        .faults
        .iter()
        .map(|f| {
            let mut v = serde_json::to_value(&f.spec).unwrap_or_else(|_| json!({}));
            v["id"] = json!(f.id);
            v["remaining"] = json!(f.remaining);
            v
        })
        .collect();
    ok(&json!({"faults": faults}))
}

async fn remove_fault(State(emu): State<Emulator>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let mut st = emu.lock();
    let before = st.faults.len();
    st.faults.retain(|f| f.id != id);
    if st.faults.len() == before {
        return Err(ApiError::not_found());
    }
    Ok(ok(&json!({})))
}

async fn set_latency(State(emu): State<Emulator>, body: Bytes) -> Result<Response, ApiError> {
    let body = json_body(&body)?;
    let ms = body
        .get("ms")
        .and_then(Value::as_u64)
        .ok_or_else(|| ApiError::required("Missing ms.").at("body", "ms"))?;
    let part_ms = match body.get("batchPartMs") {
        None | Some(Value::Null) => 0,
        Some(v) => v
            .as_u64()
            .ok_or_else(|| ApiError::invalid("Invalid batchPartMs.").at("body", "batchPartMs"))?,
    };
    {
        let mut st = emu.lock();
        st.latency_ms = ms;
        st.batch_part_latency_ms = part_ms;
    }
    Ok(ok(&json!({"ms": ms, "batchPartMs": part_ms})))
}

async fn requests(State(emu): State<Emulator>) -> Response {
    ok(&json!({"requests": emu.requests()}))
}

async fn clear_requests(State(emu): State<Emulator>) -> Response {
    emu.lock().log.clear();
    ok(&json!({}))
}

async fn stats(State(emu): State<Emulator>) -> Response {
    ok(&emu.stats())
}

async fn clear_stats(State(emu): State<Emulator>) -> Response {
    emu.lock().stats = Default::default();
    emu.quotas().clear_refusals();
    ok(&json!({}))
}

/// A non-negative whole number field, or the current value when absent.
fn limit_field(body: &serde_json::Map<String, Value>, name: &str, current: u64) -> Result<u64, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(current),
        Some(v) => v
            .as_u64()
            .ok_or_else(|| ApiError::invalid(&format!("Invalid {name}.")).at("body", name)),
    }
}

/// `{perUserPerMinute?, perProjectPerMinute?, projectStatus?, windowMs?}`: fields left out keep their
/// value; 0 switches a limit off; `windowMs` shortens the windows (tests). Answers the quotas now in force.
async fn set_quotas(State(emu): State<Emulator>, body: Bytes) -> Result<Response, ApiError> {
    let body = json_body(&body)?;
    let mut q = emu.quotas();
    let mut limits = q.limits;
    limits.per_user_per_minute = limit_field(&body, "perUserPerMinute", limits.per_user_per_minute)?;
    limits.per_project_per_minute = limit_field(&body, "perProjectPerMinute", limits.per_project_per_minute)?;
    let status = limit_field(&body, "projectStatus", u64::from(limits.project_status))?;
    limits.project_status = match status {
        403 => 403,
        429 => 429,
        _ => {
            return Err(ApiError::invalid("projectStatus must be 403 or 429.").at("body", "projectStatus"));
        }
    };
    limits.window_ms = limit_field(&body, "windowMs", limits.window_ms)?;
    if limits.window_ms < 100 {
        return Err(ApiError::invalid("windowMs must be at least 100.").at("body", "windowMs"));
    }
    q.set_limits(limits);
    Ok(ok(&limits.json()))
}

async fn get_quotas(State(emu): State<Emulator>) -> Response {
    ok(&emu.quota_limits())
}
