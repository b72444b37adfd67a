//! Liveness and readiness.

use axum::{extract::State, http::StatusCode};

use crate::state::AppState;

pub async fn healthz() -> &'static str {
    "ok"
}

/// Ready when the database answers.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    match state.db.ping().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(e) => {
            tracing::warn!(error = %e, "database ping failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
        }
    }
}
