//! One HTTP attempt against Google and its classification for the retry policy. Shared by the OAuth and
//! Calendar clients.

use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use url::Url;

use super::{
    error::GoogleError,
    models::GoogleErrorBody,
    retry::{AttemptError, Failure, parse_retry_after},
};

/// A complete answer (status, headers and the whole body).
#[derive(Debug, Clone)]
pub(crate) struct RawResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl RawResponse {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn retry_after(&self) -> Option<Duration> {
        retry_after_of(&self.headers)
    }
}

pub(crate) fn retry_after_of(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, chrono::Utc::now()))
}

/// The HTTP client for Google: rustls, a request timeout, no redirects (OAuth requires it; the API never
/// redirects).
pub(crate) fn http_client(timeout: Duration) -> Result<reqwest::Client, GoogleError> {
    reqwest::Client::builder()
        .use_rustls_tls()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("chronos/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| GoogleError::Config(format!("HTTP client: {}", e.without_url())))
}

/// `base` + `path` (a relative path like `o/oauth2/v2/auth`), keeping any path prefix of `base`.
pub(crate) fn endpoint(base: &Url, path: &str) -> Result<Url, GoogleError> {
    let mut base = base.clone();
    if !base.path().ends_with('/') {
        let with_slash = format!("{}/", base.path());
        base.set_path(&with_slash);
    }
    base.join(path.trim_start_matches('/'))
        .map_err(|e| GoogleError::Config(format!("cannot build the URL for {path}: {e}")))
}

/// How a transport error is retried, and what the caller sees. Never includes the URL (query strings may
/// hold sync or page tokens).
pub(crate) fn transport_error(e: &reqwest::Error) -> AttemptError<GoogleError> {
    let (failure, what) = if e.is_timeout() {
        (Failure::Timeout, "timed out")
    } else if e.is_builder() {
        (Failure::Permanent, "invalid request")
    } else if e.is_connect() {
        (Failure::Connection, "connection failed")
    } else if e.is_body() || e.is_decode() {
        (
            Failure::Connection,
            "connection closed before the response was complete",
        )
    } else {
        (Failure::Connection, "connection closed without a response")
    };
    AttemptError {
        error: GoogleError::Transport(what.to_owned()),
        failure,
        retry_after: None,
    }
}

/// Sends once and reads the whole body (a body cut short is a connection failure, so it is retried).
/// Every request to Google passes here and is counted under its API method (`events.list`…).
pub(crate) async fn send_once(
    api: &'static str,
    request: reqwest::RequestBuilder,
) -> Result<RawResponse, AttemptError<GoogleError>> {
    let started = std::time::Instant::now();
    let response = match request.send().await {
        Ok(response) => response,
        Err(e) => {
            crate::metrics::google_request(api, None, started.elapsed());
            return Err(transport_error(&e));
        }
    };
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await;
    crate::metrics::google_request(api, Some(status), started.elapsed());
    let body = body.map_err(|e| transport_error(&e))?;
    Ok(RawResponse {
        status,
        headers,
        body,
    })
}

/// A non-success answer as an attempt error: classified for retrying, mapped for the caller.
pub(crate) fn status_error(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    listing: bool,
) -> AttemptError<GoogleError> {
    let retry_after = retry_after_of(headers);
    let reason = GoogleErrorBody::parse(body).and_then(|b| b.reason().map(str::to_owned));
    AttemptError {
        error: GoogleError::from_status(status, body, listing, retry_after),
        failure: Failure::Status { status, reason },
        retry_after,
    }
}

/// `Ok` for 2xx, else the classified error.
pub(crate) fn check_status(
    raw: RawResponse,
    listing: bool,
) -> Result<RawResponse, AttemptError<GoogleError>> {
    if raw.is_success() {
        Ok(raw)
    } else {
        Err(status_error(raw.status, &raw.headers, &raw.body, listing))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_keep_the_base_path() {
        let root = Url::parse("https://oauth2.googleapis.com").unwrap();
        assert_eq!(
            endpoint(&root, "/token").unwrap().as_str(),
            "https://oauth2.googleapis.com/token"
        );
        let prefixed = Url::parse("http://127.0.0.1:9/google").unwrap();
        assert_eq!(
            endpoint(&prefixed, "o/oauth2/v2/auth").unwrap().as_str(),
            "http://127.0.0.1:9/google/o/oauth2/v2/auth"
        );
        let slashed = Url::parse("http://127.0.0.1:9/google/").unwrap();
        assert_eq!(
            endpoint(&slashed, "/revoke").unwrap().as_str(),
            "http://127.0.0.1:9/google/revoke"
        );
    }

    #[test]
    fn statuses_are_classified_with_their_reason_and_retry_after() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, "2".parse().unwrap());
        let body = br#"{"error":{"code":403,"message":"Rate Limit Exceeded","errors":[{"domain":"usageLimits","reason":"rateLimitExceeded"}]}}"#;
        let e = status_error(403, &headers, body, false);
        assert!(e.failure.is_retryable());
        assert_eq!(e.retry_after, Some(Duration::from_secs(2)));
        assert_eq!(
            e.error,
            GoogleError::RateLimited {
                retry_after: Some(Duration::from_secs(2))
            }
        );
        let e = status_error(410, &HeaderMap::new(), b"", true);
        assert!(!e.failure.is_retryable());
        assert_eq!(e.error, GoogleError::FullSyncRequired);
    }
}
