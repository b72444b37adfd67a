//! Google Calendar API v3: routes and helpers shared by its handlers.

pub mod calendar_list;
pub mod events;
pub mod list;
pub mod model;
pub mod push;
pub mod recurrence;
pub mod schema;
pub mod sync;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value};

use crate::Emulator;
use crate::auth::{self, Caller, Need};
use crate::error::ApiError;
use crate::state::{Role, State};
use crate::util::Params;

pub fn routes() -> Router<Emulator> {
    Router::new()
        .route("/calendar/v3/users/me/calendarList", get(calendar_list::list))
        .route(
            "/calendar/v3/users/me/calendarList/{calendarId}",
            get(calendar_list::get_entry),
        )
        .route(
            "/calendar/v3/calendars/{calendarId}",
            get(calendar_list::get_calendar),
        )
        .route("/calendar/v3/colors", get(calendar_list::colors))
        .route(
            "/calendar/v3/calendars/{calendarId}/events",
            get(list::list).post(events::insert),
        )
        .route(
            "/calendar/v3/calendars/{calendarId}/events/import",
            post(events::import),
        )
        .route(
            "/calendar/v3/calendars/{calendarId}/events/quickAdd",
            post(events::quick_add),
        )
        .route(
            "/calendar/v3/calendars/{calendarId}/events/watch",
            post(push::watch),
        )
        .route(
            "/calendar/v3/calendars/{calendarId}/events/{eventId}",
            get(events::get)
                .put(events::update)
                .patch(events::patch)
                .delete(events::delete),
        )
        .route(
            "/calendar/v3/calendars/{calendarId}/events/{eventId}/instances",
            get(list::instances),
        )
        .route(
            "/calendar/v3/calendars/{calendarId}/events/{eventId}/move",
            post(events::move_event),
        )
        .route("/calendar/v3/channels/stop", post(push::stop))
}

/// Authenticates the request and checks the scope it needs.
pub fn begin(
    emu: &Emulator,
    headers: &HeaderMap,
    query: Option<&str>,
    need: Need,
) -> Result<(Caller, Params), ApiError> {
    let params = Params::parse(query);
    let caller = auth::authenticate(emu, headers, &params)?;
    caller.require(emu, need)?;
    Ok((caller, params))
}

/// Resolves `primary` and checks that the caller sees the calendar; returns its id and
/// the caller's access role.
pub fn resolve_calendar(st: &State, caller: &Caller, calendar_id: &str) -> Result<(String, Role), ApiError> {
    let id = if calendar_id == "primary" {
        caller.email.clone()
    } else if st.calendars.contains_key(calendar_id) {
        calendar_id.to_owned()
    } else {
        calendar_id.to_ascii_lowercase()
    };
    let acc = st.account(&caller.email).ok_or_else(ApiError::not_found)?;
    let entry = acc.entry(&id).ok_or_else(ApiError::not_found)?;
    if !st.calendars.contains_key(&id) {
        return Err(ApiError::not_found());
    }
    Ok((id, entry.access_role))
}

/// Parses a JSON object body; Google answers malformed JSON with 400 parseError.
pub fn json_body(body: &Bytes) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::bad_request("Invalid JSON payload received.")),
        Err(_) => Err(ApiError::parse_error()),
    }
}

/// A JSON response, with an `ETag` header when the resource has one.
pub fn json_response(status: StatusCode, v: &Value) -> Response {
    let mut resp = (status, v.to_string()).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    if let Some(etag) = v.get("etag").and_then(Value::as_str)
        && let Ok(val) = HeaderValue::from_str(etag)
    {
        h.insert(header::ETAG, val);
    }
    h.insert(
        header::VARY,
        HeaderValue::from_static("Origin, X-Origin, Referer"),
    );
    resp
}

fn strip_etag(s: &str) -> &str {
    let s = s.trim();
    let s = s.strip_prefix("W/").unwrap_or(s);
    s.trim_matches('"')
}

/// Whether an `If-Match` / `If-None-Match` header value matches `etag`.
pub fn etag_matches(header_value: &str, etag: &str) -> bool {
    let want = strip_etag(etag);
    header_value
        .split(',')
        .any(|v| v.trim() == "*" || strip_etag(v) == want)
}

/// Checks `If-Match` against the current etag.
pub fn check_if_match(headers: &HeaderMap, etag: &str) -> Result<(), ApiError> {
    if let Some(v) = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok())
        && !etag_matches(v, etag)
    {
        return Err(ApiError::condition_not_met());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags() {
        assert!(etag_matches("\"123\"", "\"123\""));
        assert!(etag_matches("123", "\"123\""));
        assert!(etag_matches("W/\"123\"", "\"123\""));
        assert!(etag_matches("*", "\"123\""));
        assert!(!etag_matches("\"124\"", "\"123\""));
    }
}
