//! `POST /webhooks/google`: Google's push notifications. No session, no CSRF: a notification is
//! authenticated by its channel id and the random token given to Google when the channel was opened.
//!
//! The answer is quick and 200 (Google retries only on 5xx): a notification that is ignored (the first
//! `sync` message, an unknown, stopped or expired channel, a wrong token) is answered like one that is
//! acted on, and acting on one only queues a coalesced refresh job. The channel and its token are checked
//! before any limit, and the limit is per channel: junk from any address (Google's own, or a proxy's)
//! never spends the budget of a genuine channel. A genuine channel over its budget answers 503 with
//! `Retry-After`, so Google sends the notification again rather than losing it.

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode, header::RETRY_AFTER},
    response::{IntoResponse, Response},
};
use chrono::Utc;

use crate::crypto::constant_time_eq;
use crate::{calendars, error::AppError, metrics, state::AppState};

const CHANNEL_ID: &str = "x-goog-channel-id";
const CHANNEL_TOKEN: &str = "x-goog-channel-token";
const RESOURCE_STATE: &str = "x-goog-resource-state";

pub async fn google_push(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (outcome, response) = handle(&state, &headers).await;
    metrics::push_notification(outcome);
    response
}

/// The answer to a notification, and what came of it (the `outcome` label of
/// `chronos_push_notifications_total`).
async fn handle(state: &AppState, headers: &HeaderMap) -> (&'static str, Response) {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(channel_id), Some(resource_state)) = (header(CHANNEL_ID), header(RESOURCE_STATE)) else {
        tracing::debug!("push notification without channel headers ignored");
        return ("malformed", StatusCode::OK.into_response());
    };
    if resource_state == "sync" {
        return ("sync", StatusCode::OK.into_response());
    }
    let channel = match calendars::push::find_live_channel(&state.db, channel_id, Utc::now()).await {
        Ok(Some(channel)) => channel,
        Ok(None) => {
            tracing::debug!(
                channel_id,
                "push notification for an unknown, stopped or expired channel ignored"
            );
            return ("unknown_channel", StatusCode::OK.into_response());
        }
        Err(e) => return ("error", e.into_response()),
    };
    let token = header(CHANNEL_TOKEN).unwrap_or_default();
    if !constant_time_eq(&calendars::push::token_digest(token), &channel.token) {
        tracing::debug!(channel_id, "push notification with a wrong channel token ignored");
        return ("wrong_token", StatusCode::OK.into_response());
    }
    if let Err(AppError::RateLimited { retry_after_secs }) = state.rate_limits.webhook.check(&channel.id) {
        let response = (
            StatusCode::SERVICE_UNAVAILABLE,
            [(RETRY_AFTER, retry_after_secs.to_string())],
        )
            .into_response();
        return ("rate_limited", response);
    }
    match calendars::jobs::enqueue_pushed_refresh(state, channel.calendar_id).await {
        Ok(()) => ("refresh_queued", StatusCode::OK.into_response()),
        // 5xx: Google sends the notification again later.
        Err(e) => ("error", e.into_response()),
    }
}
