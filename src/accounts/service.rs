//! The rules of Google accounts: listing, disconnecting.

use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use crate::{
    crypto::SecretString,
    entities::google_accounts,
    error::{AppError, AppResult},
    google::tokens::refresh_token_aad,
    state::AppState,
};

pub async fn list(db: &DatabaseConnection, user_id: Uuid) -> AppResult<Vec<google_accounts::Model>> {
    Ok(google_accounts::Entity::find()
        .filter(google_accounts::Column::UserId.eq(user_id))
        .order_by_asc(google_accounts::Column::CreatedAt)
        .all(db)
        .await?)
}

/// The user's account with `id`; another user's account is reported exactly like a missing one.
pub async fn find_owned(
    db: &DatabaseConnection,
    user_id: Uuid,
    id: Uuid,
) -> AppResult<google_accounts::Model> {
    google_accounts::Entity::find_by_id(id)
        .filter(google_accounts::Column::UserId.eq(user_id))
        .one(db)
        .await?
        .ok_or(AppError::NotFound("account"))
}

/// Revokes the grant at Google, then forgets the account with everything cached for it (calendars, events,
/// push channels, sync configs using its calendars) and ends the sessions signed in with it. The last account
/// cannot go: it is how the user signs in.
pub async fn disconnect(state: &AppState, user_id: Uuid, id: Uuid) -> AppResult<()> {
    let account = find_owned(&state.db, user_id, id).await?;
    let count = google_accounts::Entity::find()
        .filter(google_accounts::Column::UserId.eq(user_id))
        .count(&state.db)
        .await?;
    if count <= 1 {
        return Err(AppError::bad_input(
            "id",
            "the only connected Google account cannot be disconnected; it is how you sign in",
        ));
    }
    // Reactions (stopping push channels) need a valid grant: before the revocation.
    state.account_disconnecting(account.id).await;
    if let (Some(google), Some(sealed)) = (state.google.as_ref(), account.refresh_token.as_ref()) {
        match state
            .cipher
            .decrypt_string(&refresh_token_aad(user_id, account.id), sealed)
        {
            // A failed revocation is logged, not fatal: the user asked us to forget the account.
            Ok(token) => {
                if let Err(e) = google.oauth.revoke(&SecretString::from(token)).await {
                    tracing::warn!(error = %e, account = %account.id, "revoking the Google grant failed");
                }
            }
            Err(e) => tracing::error!(error = %e, account = %account.id, "refresh token does not decrypt"),
        }
    }
    google_accounts::Entity::delete_many()
        .filter(google_accounts::Column::Id.eq(account.id))
        .filter(google_accounts::Column::UserId.eq(user_id))
        .exec(&state.db)
        .await?;
    state.cache_changes.calendars_changed(user_id).await;
    // The sessions signed in with the account end with it (the caller's own included).
    for session_id in state.sessions.delete_signed_in_with(user_id, account.id).await? {
        state.session_ended(&session_id).await;
    }
    Ok(())
}
