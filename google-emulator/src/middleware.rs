//! Fault injection, latency, the request log and statistics. They apply to the Google
//! routes only, never to `/emulator/`.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;

use crate::Emulator;
use crate::auth;
use crate::error::{ApiError, OAuthError};
use crate::state::{FaultSpec, LogEntry, State as World};
use crate::util::{self, Params};

/// Response extension: the connection must be closed without a response.
#[derive(Debug, Clone, Copy)]
pub struct DropConnection;

/// Response extension: the route template that answered.
#[derive(Debug, Clone)]
pub struct RouteTemplate(pub String);

/// Request extension: this request is one part of a batch.
#[derive(Debug, Clone, Copy)]
pub struct BatchPart;

pub const BATCH_PATH: &str = "/batch/calendar/v3";

fn is_control(path: &str) -> bool {
    path == "/emulator" || path.starts_with("/emulator/")
}

fn is_api_path(path: &str) -> bool {
    path.starts_with("/calendar/") || path.starts_with("/batch")
}

/// A response that makes the server close the connection without answering.
pub fn drop_response() -> Response {
    let stream = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::other("connection dropped by fault"))
    });
    let mut resp = Response::new(Body::from_stream(stream));
    resp.extensions_mut().insert(DropConnection);
    resp
}

/// Picks the fault that applies to this request, if any, and the global latency (a batch part's own).
fn pick_fault(st: &mut World, method: &Method, path: &str, is_part: bool) -> (u64, Option<FaultSpec>) {
    let latency = if is_part {
        st.batch_part_latency_ms
    } else {
        st.latency_ms
    };
    let mut chosen = None;
    let mut exhausted = None;
    for (i, f) in st.faults.iter_mut().enumerate() {
        if let Some(m) = &f.spec.method
            && !m.eq_ignore_ascii_case(method.as_str())
        {
            continue;
        }
        if let Some(p) = &f.spec.path
            && !util::path_matches(p, path)
        {
            continue;
        }
        if f.remaining == Some(0) {
            continue;
        }
        if f.to_skip > 0 {
            f.to_skip -= 1;
            continue;
        }
        if let Some(p) = f.spec.probability
            && rand::random::<f64>() >= p
        {
            continue;
        }
        if let Some(r) = f.remaining.as_mut() {
            *r -= 1;
            if *r == 0 {
                exhausted = Some(i);
            }
        }
        chosen = Some(f.spec.clone());
        break;
    }
    if let Some(i) = exhausted {
        st.faults.remove(i);
    }
    (latency, chosen)
}

fn fault_response(spec: &FaultSpec, path: &str) -> Option<Response> {
    if spec.drop == Some(true) {
        return Some(drop_response());
    }
    let code = spec.status?;
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let retry_after = spec.retry_after.as_ref().map(|v| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    let mut resp = if is_api_path(path) {
        let mut e = ApiError::for_fault(status, spec.reason.as_deref());
        e.status = status;
        e.into_response()
    } else {
        let error = spec.reason.clone().unwrap_or_else(|| {
            if code >= 500 {
                "internal_failure".to_owned()
            } else {
                "invalid_request".to_owned()
            }
        });
        OAuthError::new(status, &error, status.canonical_reason().unwrap_or("Error")).into_response()
    };
    if let Some(ra) = retry_after
        && let Ok(v) = HeaderValue::from_str(&ra)
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    Some(resp)
}

/// The account a Calendar API request is made as, for the quotas. Requests without a valid
/// token are not counted: Google answers them 401 before any quota applies.
fn quota_user(emu: &Emulator, req: &Request) -> Option<String> {
    if !req.uri().path().starts_with("/calendar/") {
        // The batch envelope is not a request of its own: its parts are counted one by one.
        return None;
    }
    let params = Params::parse(req.uri().query());
    auth::authenticate(emu, req.headers(), &params)
        .ok()
        .map(|c| c.email)
}

/// Route layer: quotas, latency and faults, and the route template for the statistics.
pub async fn faults(
    State(emu): State<Emulator>,
    matched: Option<MatchedPath>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path().to_owned();
    let template = matched.map(|m| m.as_str().to_owned());
    if is_control(&path) {
        return next.run(req).await;
    }
    let is_part = req.extensions().get::<BatchPart>().is_some();
    let refusal = quota_user(&emu, &req).and_then(|user| emu.admit(&user).err());
    let (latency, fault) = {
        let mut st = emu.lock();
        if refusal.is_some() {
            // A refused request goes no further: no fault is spent on it.
            let latency = if is_part {
                st.batch_part_latency_ms
            } else {
                st.latency_ms
            };
            (latency, None)
        } else {
            pick_fault(&mut st, req.method(), &path, is_part)
        }
    };
    let extra = fault.as_ref().and_then(|f| f.latency_ms).unwrap_or(0);
    let delay = latency.saturating_add(extra);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let answer = match refusal {
        Some(r) => Some(r.error().into_response()),
        None => fault.as_ref().and_then(|f| fault_response(f, &path)),
    };
    let mut resp = match answer {
        Some(r) => {
            // hyper closes a keep-alive connection whose request body is unread, without
            // `Connection: close`: the client's next request on it then fails with a broken pipe.
            let _ = axum::body::to_bytes(req.into_body(), usize::MAX).await;
            r
        }
        None => next.run(req).await,
    };
    if let Some(t) = template {
        resp.extensions_mut().insert(RouteTemplate(t));
    }
    resp
}

/// Outer layer: the request log and statistics.
pub async fn record(State(emu): State<Emulator>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if is_control(&path) {
        return next.run(req).await;
    }
    let method = req.method().to_string();
    let query = req.uri().query().map(str::to_owned);
    let is_part = req.extensions().get::<BatchPart>().is_some();
    let resp = next.run(req).await;
    let route = resp
        .extensions()
        .get::<RouteTemplate>()
        .map(|t| t.0.clone())
        .unwrap_or_else(|| "(unmatched)".to_owned());
    let status = if resp.extensions().get::<DropConnection>().is_some() {
        0
    } else {
        resp.status().as_u16()
    };
    let limit = emu.config().request_log_limit;
    let mut st = emu.lock();
    st.stats.total += 1;
    if is_part {
        st.stats.batch_parts += 1;
    }
    if route == BATCH_PATH && !is_part {
        st.stats.batch_requests += 1;
    }
    *st.stats.by_route.entry(format!("{method} {route}")).or_insert(0) += 1;
    st.log.push_back(LogEntry {
        method,
        path,
        query,
        status,
        time: util::rfc3339_millis(Utc::now()),
        route,
        batch_part: is_part,
    });
    while st.log.len() > limit {
        st.log.pop_front();
    }
    resp
}

/// Unknown routes: Google's 404 body.
pub async fn not_found() -> Response {
    ApiError::not_found().into_response()
}
