//! `GET /auth/google/callback`: Google sends the browser back here with `code` and `state`.

use std::net::SocketAddr;

use axum::{
    extract::{ConnectInfo, RawQuery, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use tower_sessions::Session;

use crate::{
    accounts::signin::{self, CallbackParams},
    session::TypedSession,
    state::AppState,
};

/// Always a 302: to `redirectTo` or FRONTEND_URL, with `?error=<code>` when sign-in failed.
pub async fn google_callback(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    session: Session,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Err(e) = state.rate_limits.signin.check(&peer.ip()) {
        return e.into_response();
    }
    let params = CallbackParams::parse(query.as_deref().unwrap_or(""));
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let location = signin::complete(&state, &TypedSession(session), params, user_agent.as_deref()).await;
    match HeaderValue::from_str(&location) {
        Ok(location) => (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}
