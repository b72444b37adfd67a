//! Push notifications: events.watch, channels.stop and the background senders.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration as StdDuration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::{begin, json_body, json_response, resolve_calendar};
use crate::Emulator;
use crate::auth::Need;
use crate::error::ApiError;
use crate::state::{Channel, Notice};
use crate::util;

/// Everything a sender needs to know about its channel.
#[derive(Debug, Clone)]
struct Target {
    id: String,
    resource_id: String,
    resource_uri: String,
    address: String,
    token: Option<String>,
    expiration_ms: i64,
}

fn number(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

pub async fn watch(
    State(emu): State<Emulator>,
    Path(cid): Path<String>,
    headers: HeaderMap,
    RawQuery(qs): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (caller, _) = begin(&emu, &headers, qs.as_deref(), Need::EventsRead)?;
    let body = json_body(&body)?;
    let id = body
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::required("Required channel id.").at("body", "id"))?
        .to_owned();
    if id.len() > 64 {
        return Err(ApiError::invalid("Channel id is too long.").at("body", "id"));
    }
    match body.get("type").and_then(Value::as_str) {
        Some(t) if t.eq_ignore_ascii_case("web_hook") || t.eq_ignore_ascii_case("webhook") => {}
        Some(_) => return Err(ApiError::invalid("Unknown channel type.").at("body", "type")),
        None => return Err(ApiError::required("Required channel type.").at("body", "type")),
    }
    let address = body
        .get("address")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::required("Required channel address.").at("body", "address"))?
        .to_owned();
    match url::Url::parse(&address) {
        Ok(u) if u.scheme() == "https" || u.scheme() == "http" => {}
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "global",
                "push.webhookUrlNotHttps",
                &format!("WebHook callback must be HTTPS: {address}"),
            ));
        }
    }
    let token = body.get("token").and_then(Value::as_str).map(str::to_owned);
    if token.as_ref().is_some_and(|t| t.len() > 256) {
        return Err(ApiError::invalid("Channel token is too long.").at("body", "token"));
    }
    let now_ms = Utc::now().timestamp_millis();
    let cfg = emu.config();
    let max_ms = now_ms.saturating_add(
        i64::try_from(cfg.max_channel_ttl_secs)
            .unwrap_or(i64::MAX)
            .saturating_mul(1000),
    );
    let ttl_ms = number(body.get("params").and_then(|p| p.get("ttl")))
        .map(|s| now_ms.saturating_add(s.saturating_mul(1000)));
    let requested = number(body.get("expiration"))
        .or(ttl_ms)
        .unwrap_or(now_ms + 604_800_000);
    let expiration_ms = requested.min(max_ms);

    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("www.googleapis.com");
    let cid_enc: String = url::form_urlencoded::byte_serialize(cid.as_bytes()).collect();
    let resource_uri = format!("http://{host}/calendar/v3/calendars/{cid_enc}/events?alt=json");

    let mut st = emu.lock();
    let (cal_id, _role) = resolve_calendar(&st, &caller, &cid)?;
    if st.channels.contains_key(&id) {
        return Err(
            ApiError::bad_request(&format!("Channel id {id} not unique")).with_reason("channelIdNotUnique")
        );
    }
    let resource_id = util::random_token("", 18);
    let (tx, rx) = mpsc::unbounded_channel::<Notice>();
    let stopped = Arc::new(AtomicBool::new(false));
    let target = Target {
        id: id.clone(),
        resource_id: resource_id.clone(),
        resource_uri: resource_uri.clone(),
        address,
        token: token.clone(),
        expiration_ms,
    };
    let _ = tx.send(Notice {
        state: "sync",
        number: 1,
    });
    st.channels.insert(
        id.clone(),
        Channel {
            resource_id: resource_id.clone(),
            calendar_id: cal_id,
            expiration_ms,
            next_msg: 1,
            tx,
            stopped: stopped.clone(),
        },
    );
    drop(st);
    tokio::spawn(sender(emu.clone(), target, rx, stopped));
    let mut out = json!({
        "kind": "api#channel",
        "id": id,
        "resourceId": resource_id,
        "resourceUri": resource_uri,
        "expiration": expiration_ms.to_string(),
    });
    if let Some(t) = token {
        out["token"] = json!(t);
    }
    Ok(json_response(StatusCode::OK, &out))
}

pub async fn stop(
    State(emu): State<Emulator>,
    headers: HeaderMap,
    RawQuery(qs): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    begin(&emu, &headers, qs.as_deref(), Need::AnyCalendar)?;
    let body = json_body(&body)?;
    let id = body.get("id").and_then(Value::as_str).unwrap_or("");
    let resource_id = body.get("resourceId").and_then(Value::as_str);
    let mut st = emu.lock();
    let found = st
        .channels
        .get(id)
        .is_some_and(|c| resource_id.is_none_or(|r| r == c.resource_id));
    if !found {
        let mut e = ApiError::not_found();
        let msg = format!("Channel '{id}' not found for project 'google-emulator'");
        e.message.clone_from(&msg);
        e.errors[0].message = msg;
        return Err(e);
    }
    if let Some(ch) = st.channels.remove(id) {
        ch.stopped.store(true, Ordering::SeqCst);
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn http_date_ms(ms: i64) -> String {
    let t = UNIX_EPOCH + StdDuration::from_millis(u64::try_from(ms).unwrap_or(0));
    httpdate::fmt_http_date(
        t.max(UNIX_EPOCH)
            .min(SystemTime::UNIX_EPOCH + StdDuration::from_secs(253_402_300_799)),
    )
}

fn live(target: &Target, stopped: &AtomicBool) -> bool {
    !stopped.load(Ordering::SeqCst) && target.expiration_ms > Utc::now().timestamp_millis()
}

async fn sender(
    emu: Emulator,
    target: Target,
    mut rx: mpsc::UnboundedReceiver<Notice>,
    stopped: Arc<AtomicBool>,
) {
    let retries = emu.config().push_retries;
    let base = emu.config().push_retry_base_ms;
    while let Some(notice) = rx.recv().await {
        let mut attempt = 0u32;
        loop {
            if !live(&target, &stopped) {
                break;
            }
            let mut req = emu
                .http()
                .post(&target.address)
                .header("X-Goog-Channel-ID", &target.id)
                .header("X-Goog-Message-Number", notice.number.to_string())
                .header("X-Goog-Resource-ID", &target.resource_id)
                .header("X-Goog-Resource-State", notice.state)
                .header("X-Goog-Resource-URI", &target.resource_uri)
                .header("X-Goog-Channel-Expiration", http_date_ms(target.expiration_ms))
                .header(header::CONTENT_LENGTH, "0");
            if let Some(t) = &target.token {
                req = req.header("X-Goog-Channel-Token", t);
            }
            let retry = match req.send().await {
                Ok(resp) => resp.status().is_server_error(),
                Err(e) => {
                    tracing::debug!(error = %e, channel = %target.id, "push delivery failed");
                    true
                }
            };
            if !retry || attempt >= retries {
                break;
            }
            let delay = base.saturating_mul(1u64 << attempt.min(16));
            tokio::time::sleep(StdDuration::from_millis(delay)).await;
            attempt += 1;
        }
    }
}
