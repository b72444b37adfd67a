//! A user's sessions: listing and revoking. Session ids are bearer secrets (they are the cookie), so the
//! API names a session by a one-way digest of its id instead.

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use crate::{
    entities::sessions,
    error::{AppError, AppResult},
    session::{TypedSession, public_id},
    state::AppState,
};

#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub public_id: String,
    pub current: bool,
    pub user_agent: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

pub async fn list(
    db: &DatabaseConnection,
    user_id: Uuid,
    current_session: Option<&str>,
    now: DateTime<Utc>,
) -> AppResult<Vec<SessionInfo>> {
    let rows = sessions::Entity::find()
        .filter(sessions::Column::UserId.eq(user_id))
        .filter(sessions::Column::ExpiresAt.gt(now))
        .order_by_desc(sessions::Column::LastSeenAt)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| SessionInfo {
            public_id: public_id(&row.id),
            current: current_session == Some(row.id.as_str()),
            user_agent: row.user_agent,
            created_at: row.created_at,
            last_seen_at: row.last_seen_at,
        })
        .collect())
}

/// Ends one of the user's sessions at once: its row is deleted, so its next request is signed out, and its
/// end is announced, so its websockets close.
pub async fn revoke(state: &AppState, user_id: Uuid, public: &str) -> AppResult<()> {
    let db = &state.db;
    let rows = sessions::Entity::find()
        .filter(sessions::Column::UserId.eq(user_id))
        .all(db)
        .await?;
    let target = rows
        .into_iter()
        .find(|row| crate::crypto::constant_time_eq(public_id(&row.id).as_bytes(), public.as_bytes()))
        .ok_or(AppError::NotFound("session"))?;
    sessions::Entity::delete_many()
        .filter(sessions::Column::Id.eq(&target.id))
        .filter(sessions::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    state.session_ended(&target.id).await;
    Ok(())
}

/// Ends the browser's own session: its row is deleted, the cookie cleared, and its end announced.
pub async fn sign_out(state: &AppState, session: &TypedSession) -> AppResult<()> {
    let id = session.id();
    session.sign_out().await?;
    if let Some(id) = id {
        state.session_ended(&id).await;
    }
    Ok(())
}
