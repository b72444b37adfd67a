//! The one error type. Each variant maps to a contract code (`extensions.code` in GraphQL) and an HTTP
//! status. Internal causes are logged where they are turned into a response and never shown to clients.
//!
//! `AppError` deliberately does not implement `Display`: async-graphql converts every `Display` error into
//! a client message, which would leak SQL or upstream bodies. Without it, `?` in a resolver goes through
//! the `From` impl below, which decides what the client sees.

use std::time::Duration;

use async_graphql::ErrorExtensions;
use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

#[derive(Debug)]
pub enum AppError {
    Unauthenticated,
    Forbidden(String),
    /// Missing, or owned by someone else: the two are indistinguishable on purpose.
    NotFound(&'static str),
    BadUserInput {
        field: String,
        message: String,
    },
    Conflict(String),
    RateLimited {
        retry_after_secs: u64,
    },
    UpstreamUnavailable(String),
    /// Google is overloaded or rate limits us and said when to come back (`Retry-After`). Clients see
    /// `UPSTREAM_UNAVAILABLE` with `retryAfter`; the job queue reschedules the job for then.
    UpstreamBusy {
        retry_after: Duration,
    },
    NeedsReauth(String),
    /// This server has no database connection to spare in time (the pool is exhausted): load, not a fault.
    /// Clients see `UPSTREAM_UNAVAILABLE` with HTTP 503 and `Retry-After`.
    Overloaded {
        retry_after_secs: u64,
    },
    Internal(anyhow::Error),
}

/// Result of domain functions.
pub type AppResult<T> = Result<T, AppError>;

/// Carried (as its source) by a GraphQL error that answers for the whole request rather than for one
/// field: the server is out of capacity, or refused the operation before running it. Over HTTP the
/// response then takes this status and `Retry-After` instead of 200, so clients and proxies see load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WholeRequest {
    pub status: StatusCode,
    pub retry_after_secs: Option<u64>,
}

impl AppError {
    pub fn bad_input(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::BadUserInput {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Self::Internal(cause.into())
    }

    /// The contract's error code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::NotFound(_) => "NOT_FOUND",
            Self::BadUserInput { .. } => "BAD_USER_INPUT",
            Self::Conflict(_) => "CONFLICT",
            Self::RateLimited { .. } => "RATE_LIMITED",
            Self::UpstreamUnavailable(_) | Self::UpstreamBusy { .. } | Self::Overloaded { .. } => {
                "UPSTREAM_UNAVAILABLE"
            }
            Self::NeedsReauth(_) => "NEEDS_REAUTH",
            Self::Internal(_) => "INTERNAL",
        }
    }

    /// When the client may try again, in whole seconds, for the errors that know it.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Self::RateLimited { retry_after_secs } => Some(*retry_after_secs),
            Self::UpstreamBusy { retry_after } => Some(retry_after_secs(*retry_after)),
            Self::Overloaded { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::BadUserInput { .. } => StatusCode::BAD_REQUEST,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::UpstreamUnavailable(_) => StatusCode::BAD_GATEWAY,
            Self::UpstreamBusy { .. } | Self::Overloaded { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::NeedsReauth(_) => StatusCode::UNAUTHORIZED,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What the client is told. Internal causes are logged here, once, and replaced by a fixed text.
    pub fn client_message(&self) -> String {
        match self {
            Self::Unauthenticated => "sign in required".into(),
            Self::Forbidden(reason) => reason.clone(),
            Self::NotFound(what) => format!("{what} not found"),
            Self::BadUserInput { field, message } => format!("{field}: {message}"),
            Self::Conflict(reason) => reason.clone(),
            Self::RateLimited { retry_after_secs } => {
                format!("too many requests; retry in {retry_after_secs} s")
            }
            Self::UpstreamUnavailable(reason) => format!("Google is unavailable: {reason}"),
            Self::UpstreamBusy { retry_after } => {
                format!(
                    "Google is busy; try again in {} s",
                    retry_after_secs(*retry_after)
                )
            }
            Self::NeedsReauth(account) => {
                format!("the Google account {account} must be connected again")
            }
            Self::Overloaded { retry_after_secs } => {
                format!("the server is busy; try again in {retry_after_secs} s")
            }
            Self::Internal(cause) => {
                tracing::error!(error = %format!("{cause:#}"), "internal error");
                "internal error".into()
            }
        }
    }
}

/// Whole seconds, rounded up: a client told "0 s" for 300 ms would come back too soon.
fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

impl From<sea_orm::DbErr> for AppError {
    fn from(e: sea_orm::DbErr) -> Self {
        match e {
            sea_orm::DbErr::ConnectionAcquire(sea_orm::error::ConnAcquireErr::Timeout) => {
                crate::metrics::db_acquire_timed_out();
                Self::Overloaded { retry_after_secs: 1 }
            }
            e => Self::Internal(e.into()),
        }
    }
}

impl From<sea_orm::TransactionError<AppError>> for AppError {
    fn from(e: sea_orm::TransactionError<AppError>) -> Self {
        match e {
            sea_orm::TransactionError::Connection(db) => db.into(),
            sea_orm::TransactionError::Transaction(app) => app,
        }
    }
}

impl AppError {
    /// This error as the answer to the whole request (see [`WholeRequest`]).
    pub fn for_whole_request(self) -> async_graphql::Error {
        let marker = WholeRequest {
            status: self.status(),
            retry_after_secs: self.retry_after_secs(),
        };
        let mut error = self.into_graphql();
        error.source = Some(std::sync::Arc::new(marker));
        error
    }

    fn into_graphql(self) -> async_graphql::Error {
        let code = self.code();
        let field = match &self {
            AppError::BadUserInput { field, .. } => Some(field.clone()),
            _ => None,
        };
        let retry_after = self.retry_after_secs();
        async_graphql::Error::new(self.client_message()).extend_with(|_, ext| {
            ext.set("code", code);
            if let Some(field) = field {
                ext.set("field", field);
            }
            if let Some(secs) = retry_after {
                ext.set("retryAfter", secs);
            }
        })
    }
}

impl From<AppError> for async_graphql::Error {
    fn from(e: AppError) -> Self {
        // An exhausted pool fails the request wherever it is met, not one field.
        if matches!(e, AppError::Overloaded { .. }) {
            e.for_whole_request()
        } else {
            e.into_graphql()
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let retry_after = self.retry_after_secs();
        let body = serde_json::json!({
            "error": { "code": self.code(), "message": self.client_message() }
        });
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(value) = retry_after.and_then(|secs| HeaderValue::from_str(&secs.to_string()).ok()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exhausted_pool_is_load_not_a_fault() {
        let error = AppError::from(sea_orm::DbErr::ConnectionAcquire(
            sea_orm::error::ConnAcquireErr::Timeout,
        ));
        assert_eq!(error.code(), "UPSTREAM_UNAVAILABLE");
        assert_eq!(error.status().as_u16(), 503);
        assert_eq!(error.retry_after_secs(), Some(1));
        assert!(
            !error.client_message().contains("pool"),
            "{}",
            error.client_message()
        );
        let other = AppError::from(sea_orm::DbErr::Custom("broken".into()));
        assert_eq!(other.code(), "INTERNAL");
    }

    #[test]
    fn every_variant_has_a_contract_code_and_status() {
        let cases = [
            (AppError::Unauthenticated, "UNAUTHENTICATED", 401),
            (AppError::Forbidden("no".into()), "FORBIDDEN", 403),
            (AppError::NotFound("event"), "NOT_FOUND", 404),
            (
                AppError::bad_input("end", "must be after start"),
                "BAD_USER_INPUT",
                400,
            ),
            (AppError::Conflict("changed".into()), "CONFLICT", 409),
            (AppError::RateLimited { retry_after_secs: 3 }, "RATE_LIMITED", 429),
            (
                AppError::UpstreamUnavailable("timeout".into()),
                "UPSTREAM_UNAVAILABLE",
                502,
            ),
            (
                AppError::UpstreamBusy {
                    retry_after: Duration::from_secs(30),
                },
                "UPSTREAM_UNAVAILABLE",
                503,
            ),
            (AppError::NeedsReauth("a@example.com".into()), "NEEDS_REAUTH", 401),
            (
                AppError::Overloaded { retry_after_secs: 1 },
                "UPSTREAM_UNAVAILABLE",
                503,
            ),
            (AppError::internal(anyhow::anyhow!("boom")), "INTERNAL", 500),
        ];
        for (error, code, status) in cases {
            assert_eq!(error.code(), code);
            assert_eq!(error.status().as_u16(), status);
        }
    }

    #[test]
    fn internal_causes_never_reach_the_client() {
        let db = sea_orm::DbErr::Custom("SELECT secret FROM users WHERE password = 'x'".into());
        let gql: async_graphql::Error = AppError::from(db).into();
        assert_eq!(gql.message, "internal error");
        assert!(!format!("{gql:?}").contains("SELECT"));
    }

    #[test]
    fn bad_input_names_the_field() {
        let gql: async_graphql::Error = AppError::bad_input("colorId", "must be 1 to 11").into();
        assert_eq!(gql.message, "colorId: must be 1 to 11");
        let ext = gql.extensions.expect("extensions");
        assert_eq!(
            ext.get("code"),
            Some(&async_graphql::Value::from("BAD_USER_INPUT"))
        );
        assert_eq!(ext.get("field"), Some(&async_graphql::Value::from("colorId")));
    }

    #[test]
    fn a_busy_upstream_tells_when_to_come_back() {
        let busy = AppError::UpstreamBusy {
            retry_after: Duration::from_millis(2_300),
        };
        assert_eq!(busy.retry_after_secs(), Some(3));
        let gql: async_graphql::Error = busy.into();
        assert_eq!(gql.message, "Google is busy; try again in 3 s");
        let ext = gql.extensions.expect("extensions");
        assert_eq!(
            ext.get("code"),
            Some(&async_graphql::Value::from("UPSTREAM_UNAVAILABLE"))
        );
        assert_eq!(ext.get("retryAfter"), Some(&async_graphql::Value::from(3u64)));
        let response = AppError::UpstreamBusy {
            retry_after: Duration::from_secs(120),
        }
        .into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok()),
            Some("120")
        );
        assert_eq!(AppError::UpstreamUnavailable("x".into()).retry_after_secs(), None);
    }
}
