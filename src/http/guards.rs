//! Request guards for state-changing and websocket requests: Origin and Fetch-Metadata.

use axum::http::{HeaderMap, HeaderValue, header};

use crate::{config::Settings, error::AppError};

/// Longest origin repeated back in an answer or a log line.
const MAX_SHOWN_ORIGIN: usize = 200;

/// Refuses requests a browser sent from a page on a foreign origin. Requests with no `Origin` come from
/// non-browser clients (or same-origin navigations), which carry no ambient credentials to abuse beyond
/// what the CSRF token already covers.
///
/// Every refusal names the origin and what would allow it, in the answer and in the log: the person
/// reading either is usually the one who can change FRONTEND_ORIGINS.
pub fn check_origin(headers: &HeaderMap, settings: &Settings) -> Result<(), AppError> {
    let origin = headers.get(header::ORIGIN);
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"))
    {
        let origin = origin.map_or_else(|| "(none)".to_owned(), shown);
        tracing::warn!(%origin, "request refused: cross-site (Sec-Fetch-Site)");
        return Err(AppError::Forbidden(format!(
            "cross-site request refused (origin {origin}): a browser frontend must be served from the same \
             site as this API, with its origin listed in FRONTEND_ORIGINS"
        )));
    }
    if let Some(origin) = origin
        && !origin
            .to_str()
            .is_ok_and(|origin| settings.is_allowed_origin(origin))
    {
        let origin = shown(origin);
        tracing::warn!(%origin, allowed = ?settings.frontend_origins, "request refused: origin not in FRONTEND_ORIGINS");
        return Err(AppError::Forbidden(format!(
            "origin {origin} is not allowed: add it to FRONTEND_ORIGINS (comma-separated) to let its pages \
             call this API"
        )));
    }
    Ok(())
}

/// The client's Origin header as echoed in an answer or a log line: visible ASCII, bounded.
fn shown(origin: &HeaderValue) -> String {
    match origin.to_str() {
        Ok(text) if text.len() <= MAX_SHOWN_ORIGIN => text.to_owned(),
        Ok(text) => format!("{}...", &text[..MAX_SHOWN_ORIGIN]),
        Err(_) => "(not printable)".to_owned(),
    }
}
