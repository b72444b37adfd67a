//! `GET /metrics`: the Prometheus scrape. Served on the `METRICS_ADDR` listener when one is configured,
//! else on the main listener in development only; it needs no session and spends no API rate limit.
//! The gauges that describe a state (the pool, the job queue, live subscriptions) are read now.

use axum::{
    Router,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use chrono::Utc;

use crate::{
    error::AppError,
    metrics::{self, JobKindState, Scrape},
    state::AppState,
};

pub async fn scrape(State(state): State<AppState>) -> Response {
    let jobs = match crate::jobs::depth_by_kind(&state.db, Utc::now()).await {
        Ok(kinds) => Some(kinds.into_iter().map(job_state).collect()),
        Err(e) => {
            tracing::warn!(error = %e, "the job queue could not be read for a scrape");
            None
        }
    };
    let body = Scrape {
        pool: crate::db::pool_state(&state.db),
        jobs,
        live: vec![
            ("progress", state.progress.live_subscribers()),
            ("cache_changes", state.cache_changes.live_subscribers()),
        ],
    }
    .render();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        body,
    )
        .into_response()
}

fn job_state(depth: crate::jobs::KindDepth) -> JobKindState {
    let now = Utc::now();
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    JobKindState {
        due_lag: depth
            .oldest_due
            .and_then(|oldest| (now - oldest).to_std().ok())
            .unwrap_or_default(),
        queued: count(depth.queued),
        due: count(depth.due),
        running: count(depth.running),
        kind: depth.kind,
    }
}

/// The router of the `METRICS_ADDR` listener: `/metrics` and nothing else.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .fallback(|| async { AppError::NotFound("route") })
        .with_state(state)
}
