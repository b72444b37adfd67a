//! Signing in with Google and connecting more Google accounts: the OAuth web flow with PKCE, a `state`
//! bound to the session, and the account bookkeeping at the callback.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter,
};
use url::Url;
use uuid::Uuid;

use crate::{
    config::origin_of,
    crypto::ExposeSecret,
    entities::{enums::AccountStatus, google_accounts, users},
    error::{AppError, AppResult},
    google::{GoogleError, TokenSet, UserInfo, encrypt_tokens},
    session::{PendingOAuth, TypedSession},
    state::AppState,
};

/// Why a callback did not sign anyone in; sent to the frontend as `?error=<code>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackError {
    AccessDenied,
    InvalidState,
    TokenExchangeFailed,
    MissingCalendarScope,
    AccountInUse,
    NotSignedIn,
    Internal,
}

impl CallbackError {
    pub fn code(self) -> &'static str {
        match self {
            Self::AccessDenied => "access_denied",
            Self::InvalidState => "invalid_state",
            Self::TokenExchangeFailed => "token_exchange_failed",
            Self::MissingCalendarScope => "missing_calendar_scope",
            Self::AccountInUse => "account_in_use",
            Self::NotSignedIn => "not_signed_in",
            Self::Internal => "internal",
        }
    }
}

/// Checks a `redirectTo`: an absolute URL on an allowed origin, or a path on the frontend.
pub fn resolve_redirect(state: &AppState, redirect_to: Option<&str>) -> AppResult<Option<String>> {
    let Some(raw) = redirect_to.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    let url = if raw.starts_with('/') && !raw.starts_with("//") && !raw.starts_with("/\\") {
        state.settings.frontend_url.join(raw).ok()
    } else {
        Url::parse(raw).ok()
    };
    match url {
        Some(url) if state.settings.is_allowed_origin(&origin_of(&url)) => Ok(Some(url.to_string())),
        _ => Err(AppError::bad_input(
            "redirectTo",
            "must be a path, or a URL on an origin listed in FRONTEND_ORIGINS",
        )),
    }
}

/// Begins the OAuth flow: the authorization URL to send the browser to. The `state` and PKCE verifier are
/// kept in the session (an anonymous one is created when needed).
pub async fn start(
    state: &AppState,
    session: &TypedSession,
    redirect_to: Option<&str>,
    login_hint: Option<&str>,
    connect_for: Option<Uuid>,
) -> AppResult<String> {
    let google = state.google()?;
    let redirect_to = resolve_redirect(state, redirect_to)?;
    if login_hint.is_some_and(|h| h.len() > 320) {
        return Err(AppError::bad_input("loginHint", "must be at most 320 characters"));
    }
    let request = google
        .oauth
        .authorize_url(&state.settings.oauth_redirect_url(), login_hint)
        .map_err(AppError::from)?;
    session.ensure_csrf_binding().await?;
    let now = Utc::now();
    session
        .push_oauth_flow(
            &request.state,
            PendingOAuth {
                pkce_verifier: request.pkce_verifier.expose_secret().to_owned(),
                redirect_to,
                connect_for,
                started_at: now,
            },
            now,
        )
        .await?;
    Ok(request.url.to_string())
}

/// The parameters Google sends back to the callback.
#[derive(Debug, Default)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
}

impl CallbackParams {
    /// Reads a query string; unknown parameters (such as `scope`) are ignored, repeated ones keep the first.
    pub fn parse(query: &str) -> Self {
        let mut params = Self::default();
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let slot = match key.as_ref() {
                "code" => &mut params.code,
                "state" => &mut params.state,
                "error" => &mut params.error,
                _ => continue,
            };
            slot.get_or_insert_with(|| value.into_owned());
        }
        params
    }
}

/// Finishes the flow and returns where to send the browser. Failures become `?error=` redirects.
pub async fn complete(
    state: &AppState,
    session: &TypedSession,
    params: CallbackParams,
    user_agent: Option<&str>,
) -> String {
    let now = Utc::now();
    let flow = match params.state.as_deref() {
        Some(s) => session.take_oauth_flow(s, now).await.ok().flatten(),
        None => None,
    };
    let landing = flow
        .as_ref()
        .and_then(|f| f.redirect_to.clone())
        .unwrap_or_else(|| state.settings.frontend_url.to_string());
    let outcome = match (flow, params.error, params.code) {
        (_, Some(_), _) => Err(CallbackError::AccessDenied),
        (None, _, _) | (_, _, None) => Err(CallbackError::InvalidState),
        (Some(flow), None, Some(code)) => finish(state, session, flow, &code, user_agent, now).await,
    };
    match outcome {
        Ok(()) => landing,
        Err(error) => with_error(&landing, error),
    }
}

fn with_error(landing: &str, error: CallbackError) -> String {
    match Url::parse(landing) {
        Ok(mut url) => {
            url.query_pairs_mut().append_pair("error", error.code());
            url.to_string()
        }
        Err(_) => landing.to_string(),
    }
}

async fn finish(
    state: &AppState,
    session: &TypedSession,
    flow: PendingOAuth,
    code: &str,
    user_agent: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), CallbackError> {
    let google = state.google().map_err(|_| CallbackError::Internal)?;
    let verifier = crate::crypto::SecretString::from(flow.pkce_verifier);
    let tokens = google
        .oauth
        .exchange_code(code, &verifier, &state.settings.oauth_redirect_url())
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "OAuth code exchange failed");
            CallbackError::TokenExchangeFailed
        })?;
    if !tokens.granted_scopes.is_empty() && !tokens.has_calendar_scope() {
        return Err(CallbackError::MissingCalendarScope);
    }
    let info = google.oauth.userinfo(&tokens.access_token).await.map_err(|e| {
        tracing::warn!(error = %e, "userinfo failed");
        CallbackError::TokenExchangeFailed
    })?;
    let account_id = match flow.connect_for {
        Some(user_id) => {
            // Connecting needs the same user still signed in to this session.
            if session.user_id(now).await.ok().flatten() != Some(user_id) {
                return Err(CallbackError::NotSignedIn);
            }
            attach_account(state, Some(user_id), &info, &tokens, now).await?.1
        }
        None => {
            let (user_id, account_id) = attach_account(state, None, &info, &tokens, now).await?;
            let previous = session.id();
            session
                .sign_in(user_id, account_id, user_agent, now)
                .await
                .map_err(|_| CallbackError::Internal)?;
            // The browser's previous session (perhaps signed in as someone else) is replaced: it ends.
            if let Some(previous) = previous {
                state.session_ended(&previous).await;
            }
            account_id
        }
    };
    // Before the redirect, so the page the browser lands on finds the account's calendars (the calendars
    // domain lists them). Best effort: a failure is logged and never fails the sign-in.
    state.account_connected(account_id).await;
    Ok(())
}

/// Finds or creates the user and the Google account for `info`, and stores the tokens encrypted.
/// With `owner`, the account must be new or already that user's. Returns the account's user and its id.
async fn attach_account(
    state: &AppState,
    owner: Option<Uuid>,
    info: &UserInfo,
    tokens: &TokenSet,
    now: DateTime<Utc>,
) -> Result<(Uuid, Uuid), CallbackError> {
    let internal = |e: sea_orm::DbErr| {
        tracing::error!(error = %e, "storing the Google account failed");
        CallbackError::Internal
    };
    let txn = crate::db::begin_write(&state.db).await.map_err(internal)?;
    let existing = google_accounts::Entity::find()
        .filter(google_accounts::Column::GoogleSub.eq(&info.sub))
        .one(&txn)
        .await
        .map_err(internal)?;
    let email = info.email.clone().unwrap_or_default();
    let ids = match (existing, owner) {
        (Some(account), Some(owner)) if account.user_id != owner => return Err(CallbackError::AccountInUse),
        (Some(account), _) => {
            let ids = (account.user_id, account.id);
            update_account(state, &txn, account, info, tokens, now).await?;
            ids
        }
        (None, owner) => {
            let user_id = match owner {
                Some(owner) => owner,
                None => create_user(&txn, &email, info.name.clone(), now)
                    .await
                    .map_err(internal)?,
            };
            (
                user_id,
                create_account(state, &txn, user_id, info, tokens, now).await?,
            )
        }
    };
    txn.commit().await.map_err(internal)?;
    Ok(ids)
}

async fn create_user(
    txn: &DatabaseTransaction,
    email: &str,
    name: Option<String>,
    now: DateTime<Utc>,
) -> Result<Uuid, sea_orm::DbErr> {
    let id = Uuid::now_v7();
    users::ActiveModel {
        id: Set(id),
        email: Set(email.to_string()),
        name: Set(name),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(txn)
    .await?;
    Ok(id)
}

fn encryption_failed(e: GoogleError) -> CallbackError {
    tracing::error!(error = %e, "encrypting tokens failed");
    CallbackError::Internal
}

async fn create_account(
    state: &AppState,
    txn: &DatabaseTransaction,
    user_id: Uuid,
    info: &UserInfo,
    tokens: &TokenSet,
    now: DateTime<Utc>,
) -> Result<Uuid, CallbackError> {
    let id = Uuid::now_v7();
    let sealed = encrypt_tokens(&state.cipher, user_id, id, tokens).map_err(encryption_failed)?;
    google_accounts::ActiveModel {
        id: Set(id),
        user_id: Set(user_id),
        google_sub: Set(info.sub.clone()),
        email: Set(info.email.clone().unwrap_or_default()),
        name: Set(info.name.clone()),
        status: Set(AccountStatus::Active),
        access_token: Set(Some(sealed.access_token)),
        refresh_token: Set(sealed.refresh_token),
        access_token_expires_at: Set(Some(tokens.expires_at)),
        granted_scopes: Set(tokens.scope_string()),
        calendar_list_sync_token: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(txn)
    .await
    .map_err(|e| {
        // Two callbacks for one new Google account racing: the loser is told the account is taken.
        if matches!(e.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_))) {
            CallbackError::AccountInUse
        } else {
            tracing::error!(error = %e, "creating the Google account failed");
            CallbackError::Internal
        }
    })?;
    Ok(id)
}

async fn update_account(
    state: &AppState,
    txn: &DatabaseTransaction,
    account: google_accounts::Model,
    info: &UserInfo,
    tokens: &TokenSet,
    now: DateTime<Utc>,
) -> Result<(), CallbackError> {
    let sealed =
        encrypt_tokens(&state.cipher, account.user_id, account.id, tokens).map_err(encryption_failed)?;
    let mut active: google_accounts::ActiveModel = account.into();
    active.access_token = Set(Some(sealed.access_token));
    // Google sends a refresh token only on consent; without one the stored token stays valid.
    if let Some(refresh) = sealed.refresh_token {
        active.refresh_token = Set(Some(refresh));
    }
    active.access_token_expires_at = Set(Some(tokens.expires_at));
    if !tokens.granted_scopes.is_empty() {
        active.granted_scopes = Set(tokens.scope_string());
    }
    if let Some(email) = &info.email {
        active.email = Set(email.clone());
    }
    if info.name.is_some() {
        active.name = Set(info.name.clone());
    }
    active.status = Set(AccountStatus::Active);
    active.updated_at = Set(now);
    active.update(txn).await.map_err(|e| {
        tracing::error!(error = %e, "updating the Google account failed");
        CallbackError::Internal
    })?;
    Ok(())
}
