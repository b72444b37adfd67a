//! Access tokens per Google account: decrypted from `google_accounts`, refreshed shortly before they expire,
//! one refresh at a time per account, persisted encrypted.
//!
//! Tokens are encrypted with the associated data (user, `google_accounts`, column, account id), so a
//! ciphertext copied to another row or column does not decrypt. `invalid_grant` on refresh marks the account
//! NEEDS_REAUTH (nothing is deleted) and every later call fails fast with [`GoogleError::NeedsReauth`] until
//! the user connects the account again ([`AccessTokens::store_tokens`] sets it ACTIVE).

use std::{
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use chrono::Utc;
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::{
    crypto::{Aad, Cipher, ExposeSecret, SecretString},
    entities::{enums::AccountStatus, google_accounts},
};

use super::{
    error::GoogleError,
    oauth::{OAuthClient, TokenSet},
};

const TABLE: &str = "google_accounts";
/// A token expiring within this margin is refreshed before use.
pub const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

/// The scopes of the encrypted token columns.
pub fn access_token_aad(user_id: Uuid, account_id: Uuid) -> Aad {
    Aad::new(user_id, TABLE, "access_token", account_id)
}

pub fn refresh_token_aad(user_id: Uuid, account_id: Uuid) -> Aad {
    Aad::new(user_id, TABLE, "refresh_token", account_id)
}

/// Token ciphertexts for a `google_accounts` row (for code that inserts the row itself).
#[derive(Debug, Clone)]
pub struct EncryptedTokens {
    pub access_token: Vec<u8>,
    pub refresh_token: Option<Vec<u8>>,
}

pub fn encrypt_tokens(
    cipher: &Cipher,
    user_id: Uuid,
    account_id: Uuid,
    tokens: &TokenSet,
) -> Result<EncryptedTokens, GoogleError> {
    Ok(EncryptedTokens {
        access_token: cipher.encrypt_str(
            &access_token_aad(user_id, account_id),
            tokens.access_token.expose_secret(),
        )?,
        refresh_token: tokens
            .refresh_token
            .as_ref()
            .map(|t| cipher.encrypt_str(&refresh_token_aad(user_id, account_id), t.expose_secret()))
            .transpose()?,
    })
}

struct Inner {
    db: DatabaseConnection,
    cipher: Cipher,
    oauth: OAuthClient,
    locks: Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>,
}

/// Access-token management; cheap to clone (clones share the per-account locks).
#[derive(Clone)]
pub struct AccessTokens {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AccessTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessTokens")
            .field("oauth", &self.inner.oauth)
            .finish_non_exhaustive()
    }
}

impl AccessTokens {
    pub fn new(db: DatabaseConnection, cipher: Cipher, oauth: OAuthClient) -> Self {
        Self {
            inner: Arc::new(Inner {
                db,
                cipher,
                oauth,
                locks: Mutex::default(),
            }),
        }
    }

    pub fn oauth(&self) -> &OAuthClient {
        &self.inner.oauth
    }

    /// A usable access token: the stored one if it lives for more than a minute, else a refreshed one.
    /// Concurrent callers share a single refresh.
    pub async fn access_token(&self, account_id: Uuid) -> Result<SecretString, GoogleError> {
        let account = self.load(account_id).await?;
        if let Some(token) = self.fresh_token(&account)? {
            return Ok(token);
        }
        let lock = self.lock_for(account_id);
        let _guard = lock.lock().await;
        // Someone may have refreshed while this caller waited.
        let account = self.load(account_id).await?;
        if let Some(token) = self.fresh_token(&account)? {
            return Ok(token);
        }
        self.refresh_locked(&account).await
    }

    /// After Google refused `rejected` with 401: a new token, unless another caller already replaced it.
    pub async fn force_refresh(
        &self,
        account_id: Uuid,
        rejected: &SecretString,
    ) -> Result<SecretString, GoogleError> {
        let lock = self.lock_for(account_id);
        let _guard = lock.lock().await;
        let account = self.load(account_id).await?;
        if let Some(current) = self.fresh_token(&account)?
            && !bool::from(
                current
                    .expose_secret()
                    .as_bytes()
                    .ct_eq(rejected.expose_secret().as_bytes()),
            )
        {
            return Ok(current);
        }
        self.refresh_locked(&account).await
    }

    /// Runs `f` with a token; on [`GoogleError::Unauthorized`] refreshes once and runs it again. Domain
    /// code gets this through [`super::GoogleAccount`].
    pub(super) async fn with_token<T, F, Fut>(&self, account_id: Uuid, mut f: F) -> Result<T, GoogleError>
    where
        F: FnMut(SecretString) -> Fut,
        Fut: Future<Output = Result<T, GoogleError>>,
    {
        let token = self.access_token(account_id).await?;
        match f(token.clone()).await {
            Err(GoogleError::Unauthorized) => {
                tracing::info!(%account_id, "Google refused the access token; refreshing it once");
                let token = self.force_refresh(account_id, &token).await?;
                f(token).await
            }
            other => other,
        }
    }

    /// Saves tokens from a sign-in or a reconnection and makes the account ACTIVE again. A missing refresh
    /// token keeps the stored one; empty scopes keep the stored scopes.
    pub async fn store_tokens(
        &self,
        account_id: Uuid,
        user_id: Uuid,
        tokens: &TokenSet,
    ) -> Result<(), GoogleError> {
        self.persist(account_id, user_id, tokens, true).await
    }

    async fn persist(
        &self,
        account_id: Uuid,
        user_id: Uuid,
        tokens: &TokenSet,
        write_refresh: bool,
    ) -> Result<(), GoogleError> {
        let encrypted = encrypt_tokens(&self.inner.cipher, user_id, account_id, tokens)?;
        let mut update = google_accounts::ActiveModel {
            access_token: Set(Some(encrypted.access_token)),
            access_token_expires_at: Set(Some(tokens.expires_at)),
            status: Set(AccountStatus::Active),
            updated_at: Set(Utc::now()),
            ..Default::default()
        };
        if write_refresh && let Some(refresh) = encrypted.refresh_token {
            update.refresh_token = Set(Some(refresh));
        }
        if !tokens.granted_scopes.is_empty() {
            update.granted_scopes = Set(tokens.scope_string());
        }
        let result = google_accounts::Entity::update_many()
            .set(update)
            .filter(google_accounts::Column::Id.eq(account_id))
            .filter(google_accounts::Column::UserId.eq(user_id))
            .exec(&self.inner.db)
            .await?;
        if result.rows_affected == 0 {
            return Err(GoogleError::AccountNotFound);
        }
        Ok(())
    }

    async fn load(&self, account_id: Uuid) -> Result<google_accounts::Model, GoogleError> {
        google_accounts::Entity::find_by_id(account_id)
            .one(&self.inner.db)
            .await?
            .ok_or(GoogleError::AccountNotFound)
    }

    /// The stored token if the account is active and the token outlives the margin.
    fn fresh_token(&self, account: &google_accounts::Model) -> Result<Option<SecretString>, GoogleError> {
        if account.status != AccountStatus::Active {
            return Err(GoogleError::NeedsReauth {
                email: account.email.clone(),
            });
        }
        let margin = chrono::Duration::from_std(EXPIRY_MARGIN).unwrap_or_default();
        let fresh = account
            .access_token_expires_at
            .is_some_and(|expires| expires > Utc::now() + margin);
        match (&account.access_token, fresh) {
            (Some(ciphertext), true) => Ok(Some(
                self.inner
                    .cipher
                    .decrypt_secret(&access_token_aad(account.user_id, account.id), ciphertext)?,
            )),
            _ => Ok(None),
        }
    }

    /// Refreshes with the stored refresh token; the caller holds the account's lock.
    async fn refresh_locked(&self, account: &google_accounts::Model) -> Result<SecretString, GoogleError> {
        if account.status != AccountStatus::Active {
            return Err(GoogleError::NeedsReauth {
                email: account.email.clone(),
            });
        }
        let Some(ciphertext) = &account.refresh_token else {
            return Err(self.mark_needs_reauth(account).await);
        };
        let refresh_token = self
            .inner
            .cipher
            .decrypt_secret(&refresh_token_aad(account.user_id, account.id), ciphertext)?;
        match self.inner.oauth.refresh(&refresh_token).await {
            Ok(tokens) => {
                let rotated = tokens
                    .refresh_token
                    .as_ref()
                    .is_some_and(|new| new.expose_secret() != refresh_token.expose_secret());
                self.persist(account.id, account.user_id, &tokens, rotated)
                    .await?;
                tracing::debug!(account_id = %account.id, "Google access token refreshed");
                Ok(tokens.access_token)
            }
            Err(GoogleError::InvalidGrant) => Err(self.mark_needs_reauth(account).await),
            Err(e) => Err(e),
        }
    }

    /// Marks the account NEEDS_REAUTH (tokens are kept) and returns the error to report.
    async fn mark_needs_reauth(&self, account: &google_accounts::Model) -> GoogleError {
        tracing::warn!(account_id = %account.id, "Google grant revoked or expired; account needs re-authorisation");
        let update = google_accounts::ActiveModel {
            status: Set(AccountStatus::NeedsReauth),
            updated_at: Set(Utc::now()),
            ..Default::default()
        };
        let result = google_accounts::Entity::update_many()
            .set(update)
            .filter(google_accounts::Column::Id.eq(account.id))
            .exec(&self.inner.db)
            .await;
        match result {
            Ok(_) => GoogleError::NeedsReauth {
                email: account.email.clone(),
            },
            Err(e) => e.into(),
        }
    }

    fn lock_for(&self, account_id: Uuid) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.inner.locks.lock().unwrap_or_else(PoisonError::into_inner);
        if locks.len() > 10_000 {
            locks.retain(|_, lock| Arc::strong_count(lock) > 1);
        }
        locks.entry(account_id).or_default().clone()
    }
}
