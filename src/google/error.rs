//! `GoogleError`: every way a call to Google can fail, and its mapping into [`AppError`] at the domain
//! boundary. Messages never hold tokens or response bodies; at most Google's own short `message`, trimmed.

use std::time::Duration;

use crate::error::AppError;

use super::models::GoogleErrorBody;

/// Longest Google message kept (they are one sentence; anything longer is not one of theirs).
const MAX_MESSAGE_CHARS: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GoogleError {
    /// 401: the access token was refused. Refresh once (see `GoogleAccount`), then give up.
    #[error("Google refused the access token")]
    Unauthorized,
    /// The OAuth grant is gone (`invalid_grant`): revoked, expired, or a bad/reused authorization code.
    #[error("the Google authorization is no longer valid")]
    InvalidGrant,
    /// The account was marked NEEDS_REAUTH: its owner must connect it again.
    #[error("the Google account {email} must be connected again")]
    NeedsReauth { email: String },
    /// 410 on a listing: the sync token expired; list again without it.
    #[error("the sync token is no longer valid; a full sync is required")]
    FullSyncRequired,
    /// 404.
    #[error("not found in Google Calendar")]
    NotFound,
    /// 409: the id is taken (also by a deleted event).
    #[error("the identifier already exists in Google Calendar")]
    Duplicate,
    /// 412: the etag given in If-Match is stale.
    #[error("the item changed in Google Calendar (etag mismatch)")]
    PreconditionFailed,
    /// 410 outside listings (for example, deleting a deleted event).
    #[error("the item was deleted in Google Calendar")]
    Gone,
    /// 429 or a 403 rate limit, still failing after the retries, or with a `Retry-After` too long to wait
    /// for in process.
    #[error("rate limited by Google")]
    RateLimited { retry_after: Option<Duration> },
    /// 5xx, still failing after the retries (or with a `Retry-After` too long to wait for in process).
    #[error("Google is unavailable (HTTP {status})")]
    Unavailable {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// 400: the request was refused; `reason` and `message` are Google's.
    #[error("Google refused the request ({reason}): {message}")]
    BadRequest {
        reason: String,
        message: String,
        location: Option<String>,
    },
    /// 403 other than rate limits (`forbiddenForNonOrganizer`, `quotaExceeded`, insufficient scopes, ...).
    #[error("Google refused access ({reason}): {message}")]
    Forbidden { reason: String, message: String },
    /// Any other unexpected status.
    #[error("Google answered HTTP {status}")]
    UnexpectedStatus { status: u16 },
    /// No answer: timeout, connection refused or dropped, still failing after the retries.
    #[error("could not reach Google: {0}")]
    Transport(String),
    /// Google answered something this client cannot read.
    #[error("unexpected response from Google: {0}")]
    InvalidResponse(String),
    /// The OAuth endpoint failed in a way that is not `invalid_grant`.
    #[error("Google sign-in failed: {0}")]
    OAuth(String),
    /// Google is not configured (no client id), or a URL cannot be built.
    #[error("Google is not configured: {0}")]
    Config(String),
    /// The account row is missing.
    #[error("Google account not found")]
    AccountNotFound,
    /// Database or decryption failure while handling tokens (logged, never shown).
    #[error("internal error: {0}")]
    Internal(String),
}

impl GoogleError {
    /// Maps a non-success status and its body. `listing` turns 410 into [`GoogleError::FullSyncRequired`].
    pub fn from_status(status: u16, body: &[u8], listing: bool, retry_after: Option<Duration>) -> Self {
        let parsed = GoogleErrorBody::parse(body);
        let reason = parsed
            .as_ref()
            .and_then(|b| b.reason())
            .unwrap_or_default()
            .to_owned();
        let message = parsed
            .as_ref()
            .map(|b| short_message(&b.error.message))
            .unwrap_or_default();
        match status {
            401 => Self::Unauthorized,
            404 => Self::NotFound,
            409 => Self::Duplicate,
            410 if listing || reason == "fullSyncRequired" || reason == "updatedMinTooLongAgo" => {
                Self::FullSyncRequired
            }
            410 => Self::Gone,
            412 => Self::PreconditionFailed,
            429 => Self::RateLimited { retry_after },
            403 if reason == "rateLimitExceeded" || reason == "userRateLimitExceeded" => {
                Self::RateLimited { retry_after }
            }
            403 => Self::Forbidden { reason, message },
            400 => Self::BadRequest {
                reason,
                message,
                location: parsed.as_ref().and_then(|b| b.location()).map(short_message),
            },
            500..=599 => Self::Unavailable { status, retry_after },
            _ => Self::UnexpectedStatus { status },
        }
    }

    /// When Google said to come back (its `Retry-After`), for the failures that carry one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after } | Self::Unavailable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Whether the access token should be refreshed and the call made again.
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, Self::Unauthorized)
    }
}

/// One line, printable, at most [`MAX_MESSAGE_CHARS`] characters.
fn short_message(raw: &str) -> String {
    let line: String = raw
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_MESSAGE_CHARS)
        .collect();
    line.trim().to_owned()
}

impl From<sea_orm::DbErr> for GoogleError {
    fn from(e: sea_orm::DbErr) -> Self {
        Self::Internal(format!("database: {e}"))
    }
}

impl From<crate::crypto::CryptoError> for GoogleError {
    fn from(e: crate::crypto::CryptoError) -> Self {
        Self::Internal(format!("token encryption: {e}"))
    }
}

impl From<GoogleError> for AppError {
    fn from(e: GoogleError) -> Self {
        use GoogleError as G;
        match e {
            G::NeedsReauth { email } => AppError::NeedsReauth(email),
            G::InvalidGrant => AppError::NeedsReauth("in use".into()),
            G::Unauthorized => AppError::UpstreamUnavailable("Google refused the access token".into()),
            G::FullSyncRequired => AppError::UpstreamUnavailable("the calendar must be synced again".into()),
            G::NotFound | G::Gone => AppError::NotFound("Google calendar or event"),
            G::Duplicate => AppError::Conflict("the item already exists in Google Calendar".into()),
            G::PreconditionFailed => {
                AppError::Conflict("the event changed in Google Calendar; reload it and try again".into())
            }
            // Google said when: the caller (a job) comes back then.
            G::RateLimited {
                retry_after: Some(retry_after),
            }
            | G::Unavailable {
                retry_after: Some(retry_after),
                ..
            } => AppError::UpstreamBusy { retry_after },
            G::RateLimited { retry_after: None } => {
                AppError::UpstreamUnavailable("too many requests to Google; try again later".into())
            }
            G::Unavailable {
                status,
                retry_after: None,
            } => AppError::UpstreamUnavailable(format!("HTTP {status}")),
            G::UnexpectedStatus { status } => AppError::UpstreamUnavailable(format!("HTTP {status}")),
            G::BadRequest {
                reason,
                message,
                location,
            } => AppError::BadUserInput {
                field: location.unwrap_or_else(|| "google".into()),
                message: if message.is_empty() { reason } else { message },
            },
            G::Forbidden { reason, .. } if reason == "quotaExceeded" => {
                AppError::UpstreamUnavailable("the Google Calendar usage limit was reached".into())
            }
            G::Forbidden { reason, message } => AppError::Forbidden(if message.is_empty() {
                format!("Google refused access ({reason})")
            } else {
                format!("Google refused access: {message}")
            }),
            G::Transport(_) => AppError::UpstreamUnavailable("Google could not be reached".into()),
            G::InvalidResponse(_) => AppError::UpstreamUnavailable("unexpected answer from Google".into()),
            G::OAuth(_) => AppError::UpstreamUnavailable("Google sign-in failed".into()),
            G::Config(detail) => AppError::internal(anyhow::anyhow!("Google is not configured: {detail}")),
            G::AccountNotFound => AppError::NotFound("Google account"),
            G::Internal(detail) => AppError::internal(anyhow::anyhow!(detail)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(reason: &str, message: &str) -> Vec<u8> {
        serde_json::json!({"error": {"code": 0, "message": message,
            "errors": [{"domain": "global", "reason": reason, "message": message, "location": "timeMax"}]}})
        .to_string()
        .into_bytes()
    }

    #[test]
    fn statuses_map_to_variants() {
        let b = body("x", "m");
        assert_eq!(
            GoogleError::from_status(401, &b, false, None),
            GoogleError::Unauthorized
        );
        assert_eq!(
            GoogleError::from_status(404, &b, false, None),
            GoogleError::NotFound
        );
        assert_eq!(
            GoogleError::from_status(409, &b, false, None),
            GoogleError::Duplicate
        );
        assert_eq!(GoogleError::from_status(410, &b, false, None), GoogleError::Gone);
        assert_eq!(
            GoogleError::from_status(410, &b, true, None),
            GoogleError::FullSyncRequired
        );
        assert_eq!(
            GoogleError::from_status(410, &body("fullSyncRequired", "m"), false, None),
            GoogleError::FullSyncRequired
        );
        assert_eq!(
            GoogleError::from_status(412, &b, false, None),
            GoogleError::PreconditionFailed
        );
        assert_eq!(
            GoogleError::from_status(429, b"", false, Some(Duration::from_secs(3))),
            GoogleError::RateLimited {
                retry_after: Some(Duration::from_secs(3))
            }
        );
        assert_eq!(
            GoogleError::from_status(403, &body("userRateLimitExceeded", "slow"), false, None),
            GoogleError::RateLimited { retry_after: None }
        );
        assert_eq!(
            GoogleError::from_status(403, &body("forbiddenForNonOrganizer", "no"), false, None),
            GoogleError::Forbidden {
                reason: "forbiddenForNonOrganizer".into(),
                message: "no".into()
            }
        );
        assert_eq!(
            GoogleError::from_status(
                400,
                &body("timeRangeEmpty", "The specified time range is empty."),
                false,
                None
            ),
            GoogleError::BadRequest {
                reason: "timeRangeEmpty".into(),
                message: "The specified time range is empty.".into(),
                location: Some("timeMax".into())
            }
        );
        assert_eq!(
            GoogleError::from_status(503, b"<html>", false, None),
            GoogleError::Unavailable {
                status: 503,
                retry_after: None
            }
        );
        assert_eq!(
            GoogleError::from_status(503, b"", false, Some(Duration::from_secs(120))),
            GoogleError::Unavailable {
                status: 503,
                retry_after: Some(Duration::from_secs(120))
            }
        );
        assert_eq!(
            GoogleError::from_status(418, b"", false, None),
            GoogleError::UnexpectedStatus { status: 418 }
        );
    }

    #[test]
    fn messages_are_short_and_single_line() {
        let long = format!("bad\nthing {}", "x".repeat(1000));
        match GoogleError::from_status(400, &body("invalid", &long), false, None) {
            GoogleError::BadRequest { message, .. } => {
                assert!(message.chars().count() <= MAX_MESSAGE_CHARS);
                assert!(!message.contains('\n'));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn app_errors_use_the_contract_codes_and_hide_internals() {
        let cases: Vec<(GoogleError, &str)> = vec![
            (GoogleError::NeedsReauth { email: "a@x".into() }, "NEEDS_REAUTH"),
            (GoogleError::InvalidGrant, "NEEDS_REAUTH"),
            (GoogleError::Unauthorized, "UPSTREAM_UNAVAILABLE"),
            (GoogleError::FullSyncRequired, "UPSTREAM_UNAVAILABLE"),
            (GoogleError::NotFound, "NOT_FOUND"),
            (GoogleError::Gone, "NOT_FOUND"),
            (GoogleError::Duplicate, "CONFLICT"),
            (GoogleError::PreconditionFailed, "CONFLICT"),
            (
                GoogleError::RateLimited { retry_after: None },
                "UPSTREAM_UNAVAILABLE",
            ),
            (
                GoogleError::Unavailable {
                    status: 503,
                    retry_after: None,
                },
                "UPSTREAM_UNAVAILABLE",
            ),
            (GoogleError::Transport("timeout".into()), "UPSTREAM_UNAVAILABLE"),
            (
                GoogleError::BadRequest {
                    reason: "invalid".into(),
                    message: "Invalid resource id value.".into(),
                    location: None,
                },
                "BAD_USER_INPUT",
            ),
            (
                GoogleError::Forbidden {
                    reason: "forbiddenForNonOrganizer".into(),
                    message: String::new(),
                },
                "FORBIDDEN",
            ),
            (
                GoogleError::Forbidden {
                    reason: "quotaExceeded".into(),
                    message: String::new(),
                },
                "UPSTREAM_UNAVAILABLE",
            ),
            (GoogleError::AccountNotFound, "NOT_FOUND"),
            (GoogleError::Internal("SELECT secret".into()), "INTERNAL"),
        ];
        for (google, code) in cases {
            let app = AppError::from(google.clone());
            assert_eq!(app.code(), code, "{google:?}");
            assert!(!app.client_message().contains("SELECT"));
        }
        let app = AppError::from(GoogleError::NeedsReauth { email: "a@x".into() });
        assert_eq!(
            app.client_message(),
            "the Google account a@x must be connected again"
        );
    }

    #[test]
    fn a_retry_after_survives_into_the_app_error() {
        let wait = Duration::from_secs(90);
        for google in [
            GoogleError::RateLimited {
                retry_after: Some(wait),
            },
            GoogleError::Unavailable {
                status: 503,
                retry_after: Some(wait),
            },
        ] {
            assert_eq!(google.retry_after(), Some(wait));
            match AppError::from(google.clone()) {
                AppError::UpstreamBusy { retry_after } => assert_eq!(retry_after, wait),
                other => panic!("{google:?} became {other:?}"),
            }
        }
        // Without one, it stays a plain outage (the job queue then backs off on its own).
        assert!(matches!(
            AppError::from(GoogleError::RateLimited { retry_after: None }),
            AppError::UpstreamUnavailable(_)
        ));
        assert_eq!(GoogleError::NotFound.retry_after(), None);
    }
}
