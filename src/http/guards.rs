//! Request guards for state-changing and websocket requests: Origin and Fetch-Metadata.

use axum::http::{HeaderMap, header};

use crate::{config::Settings, error::AppError};

/// Refuses requests a browser sent from a page on a foreign origin. Requests with no `Origin` come from
/// non-browser clients (or same-origin navigations), which carry no ambient credentials to abuse beyond
/// what the CSRF token already covers.
pub fn check_origin(headers: &HeaderMap, settings: &Settings) -> Result<(), AppError> {
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"))
    {
        return Err(AppError::Forbidden("cross-site requests are not allowed".into()));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let allowed = origin
            .to_str()
            .is_ok_and(|origin| settings.is_allowed_origin(origin));
        if !allowed {
            return Err(AppError::Forbidden("origin not allowed".into()));
        }
    }
    Ok(())
}
