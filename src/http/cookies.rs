//! The session and CSRF cookies, named and shaped as the contract says.

use axum::{
    body::Body,
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, header},
    middleware::Next,
    response::Response,
};
use tower_sessions::{
    Expiry, Session, SessionManagerLayer,
    cookie::{Cookie, SameSite},
};

use super::csrf::CsrfToken;
use crate::{
    config::Settings,
    crypto::ExposeSecret,
    session::{DbSessionStore, IDLE_TIMEOUT, TypedSession},
    state::AppState,
};

/// `__Host-` binds the cookie to this exact host over https, with path `/` and no domain.
pub fn session_cookie_name(settings: &Settings) -> &'static str {
    if settings.is_production() {
        "__Host-chronos_session"
    } else {
        "chronos_session"
    }
}

pub fn csrf_cookie_name(settings: &Settings) -> &'static str {
    if settings.is_production() {
        "__Host-chronos_csrf"
    } else {
        "chronos_csrf"
    }
}

pub fn session_layer(state: &AppState) -> SessionManagerLayer<DbSessionStore> {
    SessionManagerLayer::new(state.sessions.clone())
        .with_name(session_cookie_name(&state.settings))
        .with_http_only(true)
        // Strict would drop the cookie on the redirect back from Google.
        .with_same_site(SameSite::Lax)
        .with_secure(state.settings.cookie_secure)
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(IDLE_TIMEOUT))
}

/// The value of cookie `name` in the request, if sent.
pub fn request_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Keeps the readable CSRF cookie in step with the session: issued when a session has a binding the
/// browser's token does not match (a new session, or a new id at sign-in), cleared when the session ends.
pub async fn sync_csrf_cookie(
    State(state): State<AppState>,
    session: Session,
    request: Request<Body>,
    next: Next,
) -> Response {
    let name = csrf_cookie_name(&state.settings);
    let presented = request_cookie(request.headers(), name).map(str::to_owned);
    let mut response = next.run(request).await;
    let secret = state.settings.csrf_secret.expose_secret().as_bytes();
    let cookie = match TypedSession(session).csrf_binding().await {
        Ok(Some(binding)) => {
            let current = presented
                .as_deref()
                .is_some_and(|t| CsrfToken::verify(secret, &binding, t));
            (!current).then(|| csrf_cookie(&state.settings, name, CsrfToken::issue(secret, &binding), false))
        }
        Ok(None) => presented.map(|_| csrf_cookie(&state.settings, name, String::new(), true)),
        Err(_) => None,
    };
    if let Some(value) = cookie.and_then(|c| HeaderValue::from_str(&c.to_string()).ok()) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

fn csrf_cookie(settings: &Settings, name: &'static str, value: String, expire: bool) -> Cookie<'static> {
    let mut cookie = Cookie::build((name, value))
        .path("/")
        .http_only(false)
        .same_site(SameSite::Lax)
        .secure(settings.cookie_secure)
        .build();
    if expire {
        cookie.make_removal();
    } else {
        cookie.set_max_age(IDLE_TIMEOUT);
    }
    cookie
}
