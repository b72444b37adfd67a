//! Google-shaped error bodies: the Calendar API's `{"error":{...}}` and OAuth's
//! `{"error":"...","error_description":"..."}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// One entry of `error.errors[]`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ErrorItem {
    pub domain: String,
    pub reason: String,
    pub message: String,
    #[serde(rename = "locationType", skip_serializing_if = "Option::is_none")]
    pub location_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
struct ErrorInner<'a> {
    code: u16,
    message: &'a str,
    errors: &'a [ErrorItem],
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'a str>,
}

#[derive(Debug, Clone, Serialize)]
struct ErrorBody<'a> {
    error: ErrorInner<'a>,
}

/// A Calendar API error, rendered as Google renders it.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub errors: Vec<ErrorItem>,
    pub status_text: Option<&'static str>,
    pub retry_after: Option<String>,
    pub www_authenticate: bool,
}

impl ApiError {
    pub fn new(status: StatusCode, domain: &str, reason: &str, message: &str) -> Self {
        Self {
            status,
            message: message.to_owned(),
            errors: vec![ErrorItem {
                domain: domain.to_owned(),
                reason: reason.to_owned(),
                message: message.to_owned(),
                location_type: None,
                location: None,
            }],
            status_text: None,
            retry_after: None,
            www_authenticate: false,
        }
    }

    /// Sets `location` and `locationType` on the (single) error item.
    pub fn at(mut self, location_type: &str, location: &str) -> Self {
        for item in &mut self.errors {
            item.location_type = Some(location_type.to_owned());
            item.location = Some(location.to_owned());
        }
        self
    }

    pub fn param(self, name: &str) -> Self {
        self.at("parameter", name)
    }

    pub fn with_reason(mut self, reason: &str) -> Self {
        for item in &mut self.errors {
            reason.clone_into(&mut item.reason);
        }
        self
    }

    pub fn with_status_text(mut self, text: &'static str) -> Self {
        self.status_text = Some(text);
        self
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "global", "notFound", "Not Found")
    }

    pub fn invalid(message: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "global", "invalid", message)
    }

    pub fn required(message: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "global", "required", message)
    }

    pub fn bad_request(message: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "global", "badRequest", message)
    }

    pub fn parse_error() -> Self {
        Self::new(StatusCode::BAD_REQUEST, "global", "parseError", "Parse Error")
    }

    pub fn invalid_resource_id() -> Self {
        Self::invalid("Invalid resource id value.")
    }

    pub fn duplicate() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "global",
            "duplicate",
            "The requested identifier already exists.",
        )
    }

    pub fn deleted(reason: &str) -> Self {
        Self::new(StatusCode::GONE, "global", reason, "Resource has been deleted")
    }

    pub fn condition_not_met() -> Self {
        Self::new(
            StatusCode::PRECONDITION_FAILED,
            "global",
            "conditionNotMet",
            "Precondition Failed",
        )
        .at("header", "If-Match")
    }

    pub fn time_range_empty_event() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "global",
            "timeRangeEmpty",
            "The specified time range is empty.",
        )
    }

    pub fn time_range_empty_param() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "calendar",
            "timeRangeEmpty",
            "The specified time range is empty.",
        )
        .param("timeMax")
    }

    pub fn full_sync_required() -> Self {
        Self::new(
            StatusCode::GONE,
            "calendar",
            "fullSyncRequired",
            "Sync token is no longer valid, a full sync is required.",
        )
        .param("syncToken")
    }

    pub fn sync_token_with_restrictions() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "calendar",
            "syncTokenWithRequestRestrictions",
            "Sync token cannot be used with other request restrictions.",
        )
        .param("syncToken")
    }

    pub fn required_access_level() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "calendar",
            "requiredAccessLevel",
            "You need to have writer access to this calendar.",
        )
    }

    pub fn insufficient_permissions() -> Self {
        let mut e = Self::new(
            StatusCode::FORBIDDEN,
            "global",
            "insufficientPermissions",
            "Insufficient Permission",
        );
        e.message = "Request had insufficient authentication scopes.".to_owned();
        e.status_text = Some("PERMISSION_DENIED");
        e
    }

    pub fn login_required() -> Self {
        let mut e = Self::new(StatusCode::UNAUTHORIZED, "global", "required", "Login Required.")
            .at("header", "Authorization");
        e.message = "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.".to_owned();
        e.status_text = Some("UNAUTHENTICATED");
        e.www_authenticate = true;
        e
    }

    pub fn invalid_credentials() -> Self {
        let mut e = Self::new(
            StatusCode::UNAUTHORIZED,
            "global",
            "authError",
            "Invalid Credentials",
        )
        .at("header", "Authorization");
        e.message = "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.".to_owned();
        e.status_text = Some("UNAUTHENTICATED");
        e.www_authenticate = true;
        e
    }

    pub fn backend_error() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "global",
            "backendError",
            "Backend Error",
        )
    }

    /// The error an injected fault answers with: domain and message follow the status and reason.
    pub fn for_fault(status: StatusCode, reason: Option<&str>) -> Self {
        let code = status.as_u16();
        let default_reason = match code {
            400 => "badRequest",
            401 => "authError",
            403 | 429 => "rateLimitExceeded",
            404 => "notFound",
            409 => "duplicate",
            410 => "fullSyncRequired",
            412 => "conditionNotMet",
            c if c >= 500 => "backendError",
            _ => "backendError",
        };
        let reason = reason.unwrap_or(default_reason);
        match reason {
            "authError" => return Self::invalid_credentials(),
            "fullSyncRequired" if code == 410 => return Self::full_sync_required(),
            "conditionNotMet" if code == 412 => return Self::condition_not_met(),
            "insufficientPermissions" => return Self::insufficient_permissions(),
            _ => {}
        }
        let domain = match reason {
            "rateLimitExceeded" | "userRateLimitExceeded" | "quotaExceeded" | "dailyLimitExceeded" => {
                "usageLimits"
            }
            "requiredAccessLevel"
            | "forbiddenForNonOrganizer"
            | "fullSyncRequired"
            | "timeRangeEmpty"
            | "updatedMinTooLongAgo" => "calendar",
            _ => "global",
        };
        let message = match reason {
            "rateLimitExceeded" => "Rate Limit Exceeded",
            "userRateLimitExceeded" => "User Rate Limit Exceeded",
            "quotaExceeded" => "Calendar usage limits exceeded.",
            "dailyLimitExceeded" => "Daily Limit Exceeded",
            "backendError" => "Backend Error",
            "notFound" => "Not Found",
            "badRequest" => "Bad Request",
            "duplicate" => "The requested identifier already exists.",
            "deleted" => "Resource has been deleted",
            "requiredAccessLevel" => "You need to have writer access to this calendar.",
            "forbiddenForNonOrganizer" => {
                "Shared properties can only be changed by the organizer of the event."
            }
            "timeRangeEmpty" => "The specified time range is empty.",
            "updatedMinTooLongAgo" => "The requested minimum modification time lies too far in the past.",
            _ => status.canonical_reason().unwrap_or("Error"),
        };
        Self::new(status, domain, reason, message)
    }

    /// The JSON body as a value (used by batch parts and direct seeding).
    pub fn body(&self) -> serde_json::Value {
        serde_json::to_value(ErrorBody {
            error: ErrorInner {
                code: self.status.as_u16(),
                message: &self.message,
                errors: &self.errors,
                status: self.status_text,
            },
        })
        .unwrap_or(serde_json::Value::Null)
    }

    fn body_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&ErrorBody {
            error: ErrorInner {
                code: self.status.as_u16(),
                message: &self.message,
                errors: &self.errors,
                status: self.status_text,
            },
        })
        .unwrap_or_default()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, self.body_bytes()).into_response();
        let headers = resp.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=UTF-8"),
        );
        if self.www_authenticate {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"https://accounts.google.com/\""),
            );
        }
        if let Some(ra) = &self.retry_after
            && let Ok(v) = HeaderValue::from_str(ra)
        {
            headers.insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

/// An OAuth endpoint error: `{"error":"...","error_description":"..."}`.
#[derive(Debug, Clone)]
pub struct OAuthError {
    pub status: StatusCode,
    pub error: String,
    pub description: String,
}

impl OAuthError {
    pub fn new(status: StatusCode, error: &str, description: &str) -> Self {
        Self {
            status,
            error: error.to_owned(),
            description: description.to_owned(),
        }
    }

    pub fn invalid_grant(description: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
    }

    pub fn invalid_request(description: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    pub fn invalid_client(description: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_client", description)
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": self.error,
            "error_description": self.description,
        });
        let mut resp = (self.status, body.to_string()).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        resp
    }
}

/// Errors of the library API (direct seeding without HTTP).
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error("unknown account {0}")]
    UnknownAccount(String),
    #[error("unknown calendar {0}")]
    UnknownCalendar(String),
    #[error("Google API error {status}: {body}")]
    Api { status: u16, body: serde_json::Value },
}

impl From<ApiError> for EmulatorError {
    fn from(e: ApiError) -> Self {
        Self::Api {
            status: e.status.as_u16(),
            body: e.body(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_sync_body_is_exact() {
        let body = ApiError::full_sync_required().body();
        let expected: serde_json::Value = serde_json::from_str(r#"{"error":{"code":410,"message":"Sync token is no longer valid, a full sync is required.","errors":[{"domain":"calendar","reason":"fullSyncRequired","message":"Sync token is no longer valid, a full sync is required.","locationType":"parameter","location":"syncToken"}]}}"#).unwrap();
        assert_eq!(body, expected);
    }

    #[test]
    fn fault_domains() {
        let e = ApiError::for_fault(StatusCode::TOO_MANY_REQUESTS, None);
        assert_eq!(e.errors[0].domain, "usageLimits");
        assert_eq!(e.errors[0].reason, "rateLimitExceeded");
        let e = ApiError::for_fault(StatusCode::SERVICE_UNAVAILABLE, None);
        assert_eq!(e.errors[0].domain, "global");
        assert_eq!(e.errors[0].reason, "backendError");
        let e = ApiError::for_fault(StatusCode::FORBIDDEN, Some("userRateLimitExceeded"));
        assert_eq!(e.errors[0].domain, "usageLimits");
    }
}
