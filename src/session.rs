//! Sessions: a tower-sessions store in the application's own database, and a typed view of a session.
//!
//! Rows live in the `sessions` table, so sessions survive restarts and every instance sharing the database
//! sees the same ones. Alongside the serialised data the store keeps `user_id`, `user_agent`, `created_at`
//! and `last_seen_at` in columns, which is what listing and revoking a user's sessions needs.

use std::{collections::HashMap, sync::Arc, time::Duration};

use async_trait::async_trait;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::broadcast;
use tower_sessions::{
    Session,
    session::{Id, Record},
    session_store::{self, SessionStore},
};
use uuid::Uuid;

use crate::{
    entities::sessions,
    error::{AppError, AppResult},
};

/// A fresh random session binding (32 random bytes, base64url): each session stores one, and CSRF tokens
/// are issued for and verified against it, so a token issued for one session never verifies for another.
pub fn new_session_binding() -> String {
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes)
}

/// Sessions end after this long without activity...
pub const IDLE_TIMEOUT: time::Duration = time::Duration::days(14);
/// ...and after this long in any case.
pub const ABSOLUTE_TIMEOUT: chrono::TimeDelta = chrono::TimeDelta::days(30);
/// `last_seen_at` is written at most this often, so reads do not each cost a write.
const LAST_SEEN_RESOLUTION: chrono::TimeDelta = chrono::TimeDelta::minutes(1);

const KEY_USER_ID: &str = "user_id";
/// The Google account the session signed in with: disconnecting it ends the session.
const KEY_ACCOUNT_ID: &str = "account_id";
const KEY_CSRF_BINDING: &str = "csrf";
const KEY_CREATED_AT: &str = "created_at";
const KEY_LAST_SEEN: &str = "last_seen";
const KEY_USER_AGENT: &str = "user_agent";
const KEY_OAUTH_FLOWS: &str = "oauth";

/// The bus channel on which ended sessions are announced to every instance.
pub const ENDED_CHANNEL: &str = "chronos_session_ended";

/// The id the API shows for a session, and the one its end is announced under: session ids are bearer
/// secrets (they are the cookie), so neither the API nor the bus names a session by its id.
pub fn public_id(session_id: &str) -> String {
    let digest = Sha256::digest(format!("chronos-session|{session_id}").as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..18])
}

/// A session that just ended (signed out, revoked, its account disconnected): whatever still runs on it,
/// on any instance, stops.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionEnded {
    /// The session's [`public_id`].
    pub session: String,
}

/// Resolves when the session `id`, signed in as `user_id`, ends: at once when its end is announced on
/// `announcements` (from any instance), else when a re-read every `every` finds it gone or expired (which
/// also covers an announcement lost while an instance was not listening). A failed re-read is retried at
/// the next one: a database blip does not end every session at once.
pub async fn ended(
    store: &DbSessionStore,
    announcements: broadcast::Receiver<Arc<SessionEnded>>,
    id: &str,
    user_id: Uuid,
    every: Duration,
) {
    let public = public_id(id);
    // `None` once the bus is gone (the server is stopping): the re-reads go on alone.
    let mut announcements = Some(announcements);
    let mut recheck = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let announced = async {
            match announcements.as_mut() {
                Some(receiver) => Some(receiver.recv().await),
                None => std::future::pending().await,
            }
        };
        let heard = tokio::select! {
            heard = announced => heard,
            _ = recheck.tick() => None,
        };
        let check = match heard {
            Some(Ok(ended)) if ended.session == public => return,
            Some(Ok(_)) => false,
            // Ours may be among the skipped: look now.
            Some(Err(broadcast::error::RecvError::Lagged(_))) => true,
            Some(Err(broadcast::error::RecvError::Closed)) => {
                announcements = None;
                false
            }
            None => true,
        };
        if check {
            match store.is_live(id, user_id, Utc::now()).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "re-reading a websocket's session failed; retried later")
                }
            }
        }
    }
}

/// The caller of a GraphQL operation. Every domain function scopes its reads and writes by `user_id`.
#[derive(Debug, Clone, Default)]
pub struct Viewer {
    pub user_id: Option<Uuid>,
    /// The id of the caller's session, to mark it `current` in listings.
    pub session_id: Option<String>,
}

impl Viewer {
    pub fn anonymous() -> Self {
        Self::default()
    }

    /// The signed-in user's id, or `UNAUTHENTICATED`.
    pub fn require_user(&self) -> AppResult<Uuid> {
        self.user_id.ok_or(AppError::Unauthenticated)
    }
}

/// An OAuth flow started in this session and not yet finished.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingOAuth {
    pub pkce_verifier: String,
    pub redirect_to: Option<String>,
    /// Set when a signed-in user connects another account.
    pub connect_for: Option<Uuid>,
    pub started_at: DateTime<Utc>,
}

/// How long the browser has to come back from Google.
pub const OAUTH_FLOW_TTL: chrono::TimeDelta = chrono::TimeDelta::minutes(10);
/// At most this many flows are kept per session (a user clicking sign-in repeatedly).
const MAX_PENDING_FLOWS: usize = 5;

/// Typed access to the values Chronos keeps in a session.
#[derive(Clone, Debug)]
pub struct TypedSession(pub Session);

impl TypedSession {
    pub fn id(&self) -> Option<String> {
        self.0.id().map(|id| id.to_string())
    }

    /// The signed-in user, unless the session outlived its absolute lifetime (then it is ended).
    pub async fn user_id(&self, now: DateTime<Utc>) -> AppResult<Option<Uuid>> {
        let Some(user_id) = self.get::<Uuid>(KEY_USER_ID).await? else {
            return Ok(None);
        };
        let created_at = self.get::<DateTime<Utc>>(KEY_CREATED_AT).await?;
        if created_at.is_none_or(|created| now - created > ABSOLUTE_TIMEOUT) {
            self.0.flush().await.map_err(session_error)?;
            return Ok(None);
        }
        Ok(Some(user_id))
    }

    /// The per-session value CSRF tokens are bound to, if this session has one.
    pub async fn csrf_binding(&self) -> AppResult<Option<String>> {
        self.get(KEY_CSRF_BINDING).await
    }

    /// Makes sure the session has a CSRF binding (creating the session if needed) and returns it.
    pub async fn ensure_csrf_binding(&self) -> AppResult<String> {
        if let Some(binding) = self.csrf_binding().await? {
            return Ok(binding);
        }
        let binding = new_session_binding();
        self.insert(KEY_CSRF_BINDING, &binding).await?;
        self.insert(KEY_CREATED_AT, Utc::now()).await?;
        Ok(binding)
    }

    /// Starts an authenticated session with `account_id` of `user_id`: a new id, a new CSRF binding, and
    /// fresh lifetimes.
    pub async fn sign_in(
        &self,
        user_id: Uuid,
        account_id: Uuid,
        user_agent: Option<&str>,
        now: DateTime<Utc>,
    ) -> AppResult<()> {
        self.0.cycle_id().await.map_err(session_error)?;
        self.insert(KEY_USER_ID, user_id).await?;
        self.insert(KEY_ACCOUNT_ID, account_id).await?;
        self.insert(KEY_CSRF_BINDING, new_session_binding()).await?;
        self.insert(KEY_CREATED_AT, now).await?;
        self.insert(KEY_LAST_SEEN, now).await?;
        if let Some(agent) = user_agent {
            self.insert(KEY_USER_AGENT, truncate(agent, 512)).await?;
        }
        Ok(())
    }

    /// Ends the session: its row is deleted and the cookie cleared.
    pub async fn sign_out(&self) -> AppResult<()> {
        self.0.flush().await.map_err(session_error)
    }

    /// Records activity, at most once a minute; also keeps the user agent current.
    pub async fn touch(&self, now: DateTime<Utc>, user_agent: Option<&str>) -> AppResult<()> {
        let last = self.get::<DateTime<Utc>>(KEY_LAST_SEEN).await?;
        if last.is_none_or(|last| now - last >= LAST_SEEN_RESOLUTION) {
            self.insert(KEY_LAST_SEEN, now).await?;
            if let Some(agent) = user_agent {
                self.insert(KEY_USER_AGENT, truncate(agent, 512)).await?;
            }
        }
        Ok(())
    }

    /// Remembers an OAuth flow under its `state`, dropping expired and excess flows.
    pub async fn push_oauth_flow(
        &self,
        state: &str,
        flow: PendingOAuth,
        now: DateTime<Utc>,
    ) -> AppResult<()> {
        let mut flows = self.oauth_flows().await?;
        flows.retain(|_, f| now - f.started_at < OAUTH_FLOW_TTL);
        while flows.len() >= MAX_PENDING_FLOWS {
            let Some(oldest) = flows
                .iter()
                .min_by_key(|(_, f)| f.started_at)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            flows.remove(&oldest);
        }
        flows.insert(state.to_string(), flow);
        self.insert(KEY_OAUTH_FLOWS, flows).await
    }

    /// Takes the flow for `state` (single use); `None` when unknown or expired.
    pub async fn take_oauth_flow(&self, state: &str, now: DateTime<Utc>) -> AppResult<Option<PendingOAuth>> {
        let mut flows = self.oauth_flows().await?;
        let flow = flows.remove(state);
        self.insert(KEY_OAUTH_FLOWS, flows).await?;
        Ok(flow.filter(|f| now - f.started_at < OAUTH_FLOW_TTL))
    }

    async fn oauth_flows(&self) -> AppResult<HashMap<String, PendingOAuth>> {
        Ok(self.get(KEY_OAUTH_FLOWS).await?.unwrap_or_default())
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, key: &str) -> AppResult<Option<T>> {
        // A value that no longer deserialises (an older format) reads as absent rather than failing.
        match self.0.get_value(key).await.map_err(session_error)? {
            Some(value) => Ok(serde_json::from_value(value).ok()),
            None => Ok(None),
        }
    }

    async fn insert(&self, key: &str, value: impl Serialize) -> AppResult<()> {
        self.0.insert(key, value).await.map_err(session_error)
    }
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

fn session_error(e: tower_sessions::session::Error) -> AppError {
    match &e {
        tower_sessions::session::Error::Store(session_store::Error::Backend(message))
            if message == POOL_EXHAUSTED =>
        {
            AppError::Overloaded { retry_after_secs: 1 }
        }
        _ => AppError::internal(anyhow::anyhow!("session store: {e}")),
    }
}

/// The SeaORM-backed store, shared by every instance using the same database.
#[derive(Clone, Debug)]
pub struct DbSessionStore {
    db: DatabaseConnection,
}

impl DbSessionStore {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// Deletes expired rows; returns how many.
    pub async fn delete_expired(&self, now: DateTime<Utc>) -> Result<u64, sea_orm::DbErr> {
        let result = sessions::Entity::delete_many()
            .filter(sessions::Column::ExpiresAt.lt(now))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected)
    }

    /// Whether the session `id` still exists, signed in as `user_id`, within both of its lifetimes.
    pub async fn is_live(&self, id: &str, user_id: Uuid, now: DateTime<Utc>) -> Result<bool, sea_orm::DbErr> {
        let row = sessions::Entity::find_by_id(id.to_owned()).one(&self.db).await?;
        Ok(row.is_some_and(|row| {
            row.user_id == Some(user_id) && row.expires_at > now && now - row.created_at <= ABSOLUTE_TIMEOUT
        }))
    }

    /// Deletes `user_id`'s sessions signed in with the Google account `account_id`; returns their ids.
    pub async fn delete_signed_in_with(
        &self,
        user_id: Uuid,
        account_id: Uuid,
    ) -> Result<Vec<String>, sea_orm::DbErr> {
        let rows = sessions::Entity::find()
            .filter(sessions::Column::UserId.eq(user_id))
            .all(&self.db)
            .await?;
        let ids: Vec<String> = rows
            .into_iter()
            .filter(|row| {
                serde_json::from_slice::<HashMap<String, serde_json::Value>>(&row.data)
                    .ok()
                    .and_then(|mut data| data.remove(KEY_ACCOUNT_ID))
                    .and_then(|value| serde_json::from_value::<Uuid>(value).ok())
                    == Some(account_id)
            })
            .map(|row| row.id)
            .collect();
        if !ids.is_empty() {
            sessions::Entity::delete_many()
                .filter(sessions::Column::Id.is_in(ids.clone()))
                .filter(sessions::Column::UserId.eq(user_id))
                .exec(&self.db)
                .await?;
        }
        Ok(ids)
    }

    fn row(record: &Record) -> session_store::Result<sessions::ActiveModel> {
        let data =
            serde_json::to_vec(&record.data).map_err(|e| session_store::Error::Encode(e.to_string()))?;
        let now = Utc::now();
        let read = |key: &str| record.data.get(key).cloned();
        let user_id = read(KEY_USER_ID).and_then(|v| serde_json::from_value::<Uuid>(v).ok());
        let user_agent = read(KEY_USER_AGENT).and_then(|v| serde_json::from_value::<String>(v).ok());
        let created_at = read(KEY_CREATED_AT)
            .and_then(|v| serde_json::from_value::<DateTime<Utc>>(v).ok())
            .unwrap_or(now);
        let last_seen_at = read(KEY_LAST_SEEN)
            .and_then(|v| serde_json::from_value::<DateTime<Utc>>(v).ok())
            .unwrap_or(created_at);
        Ok(sessions::ActiveModel {
            id: Set(record.id.to_string()),
            user_id: Set(user_id),
            data: Set(data),
            expires_at: Set(to_chrono(record.expiry_date)),
            user_agent: Set(user_agent),
            created_at: Set(created_at),
            last_seen_at: Set(last_seen_at),
        })
    }
}

fn to_chrono(t: time::OffsetDateTime) -> DateTime<Utc> {
    DateTime::from_timestamp(t.unix_timestamp(), t.nanosecond()).unwrap_or_default()
}

fn to_time(t: DateTime<Utc>) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(t.timestamp()).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// What the store reports when the pool had no connection to spare in time. The store's errors are
/// strings; this one is recognised again in [`session_error`], so the request is answered as load
/// (`AppError::Overloaded`), not as a fault.
const POOL_EXHAUSTED: &str = "no database connection available in time";

fn backend(e: sea_orm::DbErr) -> session_store::Error {
    match e {
        sea_orm::DbErr::ConnectionAcquire(sea_orm::error::ConnAcquireErr::Timeout) => {
            crate::metrics::db_acquire_timed_out();
            session_store::Error::Backend(POOL_EXHAUSTED.into())
        }
        e => session_store::Error::Backend(e.to_string()),
    }
}

#[async_trait]
impl SessionStore for DbSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        // A fresh id on the (astronomically unlikely) collision, never an overwrite of another session.
        loop {
            let row = Self::row(record)?;
            match sessions::Entity::insert(row)
                .exec_without_returning(&self.db)
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if matches!(e.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_))) => {
                    record.id = Id::default();
                }
                Err(e) => return Err(backend(e)),
            }
        }
    }

    /// Updates the session's row and never re-creates it: tower-sessions saves only sessions it loaded (new
    /// ones go through `create`), so a missing row was deleted meanwhile (signed out, revoked, expired)
    /// and an ended session stays ended even when a request of it was in flight.
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let mut row = Self::row(record)?;
        row.id = NotSet;
        row.created_at = NotSet;
        sessions::Entity::update_many()
            .set(row)
            .filter(sessions::Column::Id.eq(record.id.to_string()))
            .exec(&self.db)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let Some(row) = sessions::Entity::find_by_id(id.to_string())
            .one(&self.db)
            .await
            .map_err(backend)?
        else {
            return Ok(None);
        };
        if row.expires_at <= Utc::now() {
            return Ok(None);
        }
        let data =
            serde_json::from_slice(&row.data).map_err(|e| session_store::Error::Decode(e.to_string()))?;
        Ok(Some(Record {
            id: *id,
            data,
            expiry_date: to_time(row.expires_at),
        }))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        sessions::Entity::delete_by_id(id.to_string())
            .exec(&self.db)
            .await
            .map_err(backend)?;
        Ok(())
    }
}
