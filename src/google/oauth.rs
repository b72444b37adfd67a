//! Google OAuth 2.0 (web server flow with PKCE) and OpenID Connect userinfo, on the `oauth2` crate.
//!
//! Endpoints come from [`GoogleSettings`]: authorize is the accounts URL with `/o/oauth2/v2/auth`, token
//! and revoke are the OAuth URL with `/token` and `/revoke`, userinfo is the API URL with
//! `/oauth2/v3/userinfo`. Token calls are retried on 429, 5xx and transport failures like every other
//! Google call; `invalid_grant` is never retried and surfaces as [`GoogleError::InvalidGrant`].

use std::{borrow::Cow, fmt, future::Future, pin::Pin, time::Duration};

use chrono::{DateTime, Utc};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, Scope, TokenResponse,
    TokenUrl,
    basic::{BasicClient, BasicErrorResponse, BasicErrorResponseType, BasicTokenResponse},
};
use url::Url;

use crate::{
    config::GoogleSettings,
    crypto::{ExposeSecret, SecretString},
};

use super::{
    error::GoogleError,
    models::UserInfo,
    retry::{AttemptError, Backoff, Failure, RetryPolicy},
    transport::{self, RawResponse},
};

/// The scope that lets Chronos read and write calendars.
pub const CALENDAR_SCOPE: &str = "https://www.googleapis.com/auth/calendar";
/// Everything Chronos asks for at sign-in.
pub const SCOPES: [&str; 4] = ["openid", "email", "profile", CALENDAR_SCOPE];
/// Used when Google omits `expires_in` (it never does; its tokens live 3599 s).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3599);
const OAUTH_TIMEOUT: Duration = Duration::from_secs(30);

type GoogleOAuth2 = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;
type TokenResult = Result<BasicTokenResponse, RequestTokenError<OAuthHttpError, BasicErrorResponse>>;

/// Where to send the browser, and what to remember in the session until the callback.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    pub url: Url,
    /// The `state` parameter; compare it with the callback's.
    pub state: String,
    /// The PKCE verifier for [`OAuthClient::exchange_code`].
    pub pkce_verifier: SecretString,
}

/// Tokens from the token endpoint.
#[derive(Debug, Clone)]
pub struct TokenSet {
    pub access_token: SecretString,
    /// From a code exchange: present with `access_type=offline` + `prompt=consent`. From a refresh: the new
    /// one if Google rotated it, else the one that was used.
    pub refresh_token: Option<SecretString>,
    pub expires_at: DateTime<Utc>,
    /// The scopes actually granted (users may untick some); empty when Google did not say.
    pub granted_scopes: Vec<String>,
}

impl TokenSet {
    /// Space-separated, as stored in `google_accounts.granted_scopes`.
    pub fn scope_string(&self) -> String {
        self.granted_scopes.join(" ")
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.granted_scopes.iter().any(|s| s == scope)
    }

    /// Whether Chronos can read and write calendars with these tokens.
    pub fn has_calendar_scope(&self) -> bool {
        self.has_scope(CALENDAR_SCOPE)
    }

    fn from_response(response: &BasicTokenResponse, previous_refresh: Option<&SecretString>) -> Self {
        let lifetime = response.expires_in().unwrap_or(DEFAULT_TOKEN_LIFETIME);
        let expires_at = chrono::Duration::from_std(lifetime)
            .ok()
            .and_then(|d| Utc::now().checked_add_signed(d))
            .unwrap_or_else(Utc::now);
        Self {
            access_token: SecretString::from(response.access_token().secret().clone()),
            refresh_token: response
                .refresh_token()
                .map(|t| SecretString::from(t.secret().clone()))
                .or_else(|| previous_refresh.cloned()),
            expires_at,
            granted_scopes: response
                .scopes()
                .map(|scopes| scopes.iter().map(|s| s.to_string()).collect())
                .unwrap_or_default(),
        }
    }
}

/// The OAuth client: cheap to clone.
#[derive(Clone)]
pub struct OAuthClient {
    client: GoogleOAuth2,
    http: OAuthHttp,
    revoke_url: Url,
    userinfo_url: Url,
    retry: RetryPolicy,
}

impl fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthClient")
            .field("client_id", &self.client.client_id().as_str())
            .field("token_url", &self.client.token_uri().as_str())
            .finish_non_exhaustive()
    }
}

impl OAuthClient {
    /// Fails when the client id or secret is missing.
    pub fn new(settings: &GoogleSettings) -> Result<Self, GoogleError> {
        let client_id = settings
            .client_id
            .clone()
            .ok_or_else(|| GoogleError::Config("GOOGLE_CLIENT_ID is not set".into()))?;
        let client_secret = settings
            .client_secret
            .as_ref()
            .ok_or_else(|| GoogleError::Config("GOOGLE_CLIENT_SECRET is not set".into()))?;
        let auth_url = AuthUrl::from_url(transport::endpoint(&settings.accounts_url, "o/oauth2/v2/auth")?);
        let token_url = TokenUrl::from_url(transport::endpoint(&settings.oauth_url, "token")?);
        let client = BasicClient::new(ClientId::new(client_id))
            .set_client_secret(ClientSecret::new(client_secret.expose_secret().to_owned()))
            .set_auth_type(AuthType::RequestBody)
            .set_auth_uri(auth_url)
            .set_token_uri(token_url);
        Ok(Self {
            client,
            http: OAuthHttp {
                client: transport::http_client(OAUTH_TIMEOUT)?,
            },
            revoke_url: transport::endpoint(&settings.oauth_url, "revoke")?,
            userinfo_url: transport::endpoint(&settings.api_url, "oauth2/v3/userinfo")?,
            retry: RetryPolicy::default(),
        })
    }

    /// Replaces the retry policy (tests use short delays).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The consent URL: calendar scopes, offline access, forced consent (so a refresh token is issued),
    /// PKCE S256, a random state, and `login_hint` when given.
    pub fn authorize_url(
        &self,
        redirect_uri: &str,
        login_hint: Option<&str>,
    ) -> Result<AuthorizationRequest, GoogleError> {
        let redirect = RedirectUrl::new(redirect_uri.to_owned())
            .map_err(|e| GoogleError::Config(format!("invalid OAuth redirect URI: {e}")))?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = self
            .client
            .authorize_url(CsrfToken::new_random)
            .set_redirect_uri(Cow::Owned(redirect))
            .add_scopes(SCOPES.iter().map(|s| Scope::new((*s).to_owned())))
            .set_pkce_challenge(challenge)
            .add_extra_param("access_type", "offline")
            .add_extra_param("prompt", "consent")
            .add_extra_param("include_granted_scopes", "true");
        if let Some(hint) = login_hint.map(str::trim).filter(|h| !h.is_empty()) {
            request = request.add_extra_param("login_hint", hint.to_owned());
        }
        let (url, state) = request.url();
        Ok(AuthorizationRequest {
            url,
            state: state.secret().clone(),
            pkce_verifier: SecretString::from(verifier.secret().clone()),
        })
    }

    /// Exchanges the callback's code (with the PKCE verifier and the same redirect URI).
    pub async fn exchange_code(
        &self,
        code: &str,
        pkce_verifier: &SecretString,
        redirect_uri: &str,
    ) -> Result<TokenSet, GoogleError> {
        let redirect = RedirectUrl::new(redirect_uri.to_owned())
            .map_err(|e| GoogleError::Config(format!("invalid OAuth redirect URI: {e}")))?;
        let code = AuthorizationCode::new(code.to_owned());
        let mut backoff = Backoff::new(&self.retry);
        let response = loop {
            let result: TokenResult = self
                .client
                .exchange_code(code.clone())
                .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.expose_secret().to_owned()))
                .set_redirect_uri(Cow::Borrowed(&redirect))
                .request_async(&self.http)
                .await;
            match result.map_err(classify_token_error) {
                Ok(response) => break response,
                Err(e) if backoff.wait(&e.failure, e.retry_after).await => continue,
                Err(e) => return Err(e.error),
            }
        };
        Ok(TokenSet::from_response(&response, None))
    }

    /// A new access token. Google usually sends no new refresh token: the one used is kept in the result.
    pub async fn refresh(&self, refresh_token: &SecretString) -> Result<TokenSet, GoogleError> {
        let token = RefreshToken::new(refresh_token.expose_secret().to_owned());
        let mut backoff = Backoff::new(&self.retry);
        let response = loop {
            let result: TokenResult = self
                .client
                .exchange_refresh_token(&token)
                .request_async(&self.http)
                .await;
            match result.map_err(classify_token_error) {
                Ok(response) => break response,
                Err(e) if backoff.wait(&e.failure, e.retry_after).await => continue,
                Err(e) => return Err(e.error),
            }
        };
        Ok(TokenSet::from_response(&response, Some(refresh_token)))
    }

    /// Revokes a token (an access token revokes its refresh token too, and vice versa). A token Google no
    /// longer knows (`invalid_token`) counts as revoked.
    pub async fn revoke(&self, token: &SecretString) -> Result<(), GoogleError> {
        let mut backoff = Backoff::new(&self.retry);
        let raw = loop {
            let request = self
                .http
                .client
                .post(self.revoke_url.clone())
                .form(&[("token", token.expose_secret())]);
            let attempt = match transport::send_once("oauth.revoke", request).await {
                Ok(raw) if raw.is_success() || is_oauth_error(&raw, "invalid_token") => Ok(raw),
                Ok(raw) if raw.status >= 500 || raw.status == 429 => Err(transport::status_error(
                    raw.status,
                    &raw.headers,
                    &raw.body,
                    false,
                )),
                Ok(raw) => Err(AttemptError::permanent(oauth_status_error(&raw))),
                Err(e) => Err(e),
            };
            match attempt {
                Ok(raw) => break raw,
                Err(e) if backoff.wait(&e.failure, e.retry_after).await => continue,
                Err(e) => return Err(e.error),
            }
        };
        tracing::debug!(status = raw.status, "Google token revoked");
        Ok(())
    }

    /// The signed-in user's identity.
    pub async fn userinfo(&self, access_token: &SecretString) -> Result<UserInfo, GoogleError> {
        let mut backoff = Backoff::new(&self.retry);
        let raw = loop {
            let request = self
                .http
                .client
                .get(self.userinfo_url.clone())
                .bearer_auth(access_token.expose_secret());
            let attempt = match transport::send_once("oauth.userinfo", request).await {
                Ok(raw) => transport::check_status(raw, false),
                Err(e) => Err(e),
            };
            match attempt {
                Ok(raw) => break raw,
                Err(e) if backoff.wait(&e.failure, e.retry_after).await => continue,
                Err(e) => return Err(e.error),
            }
        };
        let info: UserInfo = serde_json::from_slice(&raw.body)
            .map_err(|_| GoogleError::InvalidResponse("userinfo is not JSON".into()))?;
        if info.sub.is_empty() {
            return Err(GoogleError::InvalidResponse("userinfo has no sub".into()));
        }
        Ok(info)
    }
}

/// A failed token-endpoint round trip, before `oauth2` parses anything: 429/5xx answers and transport
/// failures are turned into errors here so the retry loop can see them.
#[derive(Debug, thiserror::Error)]
enum OAuthHttpError {
    #[error("HTTP {status}")]
    Status {
        status: u16,
        retry_after: Option<Duration>,
    },
    #[error("{message}")]
    Transport { failure: Failure, message: String },
}

/// The token endpoint's HTTP client for `oauth2`: our reqwest client (no redirects, timeouts), with 429/5xx
/// surfaced as errors for the retry loop.
#[derive(Clone)]
struct OAuthHttp {
    client: reqwest::Client,
}

impl<'c> oauth2::AsyncHttpClient<'c> for OAuthHttp {
    type Error = OAuthHttpError;
    type Future = Pin<Box<dyn Future<Output = Result<oauth2::HttpResponse, OAuthHttpError>> + Send + 'c>>;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(send_oauth(&self.client, request))
    }
}

async fn send_oauth(
    http: &reqwest::Client,
    request: oauth2::HttpRequest,
) -> Result<oauth2::HttpResponse, OAuthHttpError> {
    let request = reqwest::Request::try_from(request).map_err(|_| OAuthHttpError::Transport {
        failure: Failure::Permanent,
        message: "invalid token request".into(),
    })?;
    let raw = transport::send_once(
        "oauth.token",
        reqwest::RequestBuilder::from_parts(http.clone(), request),
    )
    .await
    .map_err(|e| OAuthHttpError::Transport {
        failure: e.failure,
        message: e.error.to_string(),
    })?;
    if raw.status == 429 || raw.status >= 500 {
        return Err(OAuthHttpError::Status {
            status: raw.status,
            retry_after: raw.retry_after(),
        });
    }
    let mut builder = http::Response::builder().status(raw.status);
    for (name, value) in &raw.headers {
        builder = builder.header(name, value);
    }
    builder
        .body(raw.body.to_vec())
        .map_err(|_| OAuthHttpError::Transport {
            failure: Failure::Permanent,
            message: "invalid token response".into(),
        })
}

/// Never formats the parse error's body: it may hold tokens.
fn classify_token_error(
    e: RequestTokenError<OAuthHttpError, BasicErrorResponse>,
) -> AttemptError<GoogleError> {
    match e {
        RequestTokenError::ServerResponse(response) => match response.error() {
            BasicErrorResponseType::InvalidGrant => AttemptError::permanent(GoogleError::InvalidGrant),
            other => AttemptError::permanent(GoogleError::OAuth(other.to_string())),
        },
        RequestTokenError::Request(OAuthHttpError::Status { status, retry_after }) => AttemptError {
            error: if status == 429 {
                GoogleError::RateLimited { retry_after }
            } else {
                GoogleError::Unavailable { status, retry_after }
            },
            failure: Failure::status(status, None),
            retry_after,
        },
        RequestTokenError::Request(OAuthHttpError::Transport { failure, message }) => AttemptError {
            error: GoogleError::Transport(message),
            failure,
            retry_after: None,
        },
        RequestTokenError::Parse(..) => {
            AttemptError::permanent(GoogleError::InvalidResponse("token response".into()))
        }
        RequestTokenError::Other(detail) => AttemptError::permanent(GoogleError::OAuth(detail)),
    }
}

fn is_oauth_error(raw: &RawResponse, code: &str) -> bool {
    serde_json::from_slice::<serde_json::Value>(&raw.body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(|e| e == code))
        .unwrap_or(false)
}

fn oauth_status_error(raw: &RawResponse) -> GoogleError {
    let code = serde_json::from_slice::<serde_json::Value>(&raw.body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned));
    match code.as_deref() {
        Some("invalid_grant") => GoogleError::InvalidGrant,
        Some(code) => GoogleError::OAuth(format!("{code} (HTTP {})", raw.status)),
        None => GoogleError::OAuth(format!("HTTP {}", raw.status)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> GoogleSettings {
        GoogleSettings::single_host(&Url::parse("http://127.0.0.1:9").unwrap())
    }

    #[test]
    fn the_authorize_url_asks_for_offline_calendar_access_with_pkce() {
        let client = OAuthClient::new(&settings()).unwrap();
        let request = client
            .authorize_url("http://app.test/auth/google/callback", Some("a@example.com"))
            .unwrap();
        assert_eq!(request.url.path(), "/o/oauth2/v2/auth");
        let q: std::collections::HashMap<String, String> = request.url.query_pairs().into_owned().collect();
        assert_eq!(q["client_id"], "chronos-local");
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["redirect_uri"], "http://app.test/auth/google/callback");
        assert_eq!(q["scope"], SCOPES.join(" "));
        assert_eq!(q["access_type"], "offline");
        assert_eq!(q["prompt"], "consent");
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["login_hint"], "a@example.com");
        assert_eq!(q["state"], request.state);
        assert!(!q.contains_key("client_secret"));
        assert!(request.pkce_verifier.expose_secret().len() >= 43);
        let other = client.authorize_url("http://app.test/cb", None).unwrap();
        assert_ne!(other.state, request.state, "state is random");
        assert!(!other.url.query_pairs().any(|(k, _)| k == "login_hint"));
    }

    #[test]
    fn a_missing_client_is_a_configuration_error() {
        let mut s = settings();
        s.client_id = None;
        assert!(matches!(OAuthClient::new(&s), Err(GoogleError::Config(_))));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let client = OAuthClient::new(&settings()).unwrap();
        assert!(!format!("{client:?}").contains("chronos-local-secret"));
    }
}
