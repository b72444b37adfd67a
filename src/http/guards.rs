//! Request guards for state-changing and websocket requests: Origin and Fetch-Metadata.

use axum::http::{HeaderMap, header};

use crate::{config::Settings, error::AppError};

/// Refuses requests a browser sent from a page on a foreign origin. Requests with no `Origin` come from
/// non-browser clients (or same-origin navigations), which carry no ambient credentials to abuse beyond
/// what the CSRF token already covers.
///
/// Every refusal names the origin and what would allow it, in the answer and in the log: the person
/// reading either is usually the one who can change FRONTEND_ORIGINS.
pub fn check_origin(headers: &HeaderMap, settings: &Settings) -> Result<(), AppError> {
    let origin = headers
        .get(header::ORIGIN)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"))
    {
        let origin = origin.as_deref().unwrap_or("(none)");
        tracing::warn!(%origin, "request refused: cross-site (Sec-Fetch-Site)");
        return Err(AppError::Forbidden(format!(
            "cross-site request refused (origin {origin}): a browser frontend must be served from the same \
             site as this API, with its origin listed in FRONTEND_ORIGINS"
        )));
    }
    if let Some(origin) = origin
        && !settings.is_allowed_origin(&origin)
    {
        tracing::warn!(%origin, allowed = ?settings.frontend_origins, "request refused: origin not in FRONTEND_ORIGINS");
        return Err(AppError::Forbidden(format!(
            "origin {origin} is not allowed: add it to FRONTEND_ORIGINS (comma-separated) to let its pages \
             call this API"
        )));
    }
    Ok(())
}
