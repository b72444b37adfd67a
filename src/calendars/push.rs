//! Push channels: Google posts to `PUBLIC_URL/webhooks/google` when a calendar's events change, and the
//! calendar is then listed incrementally. A channel lives about a week; it is renewed before it expires
//! (the new channel saved before the old one is stopped, so no change goes unnoticed in between) and
//! stopped when its account is disconnected or its calendar disappears.
//!
//! The channel token is random and stored only as its SHA-256 digest: a database reader cannot forge
//! notifications, and there is nothing to re-encrypt when keys rotate.

use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{
    config::Settings,
    entities::{calendars, push_channels},
    error::AppResult,
    google::{GoogleError, WatchRequest},
    state::AppState,
};

/// Lifetime asked of Google (Google may shorten it; the answer's expiration is what is stored).
pub const CHANNEL_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// A channel expiring within this margin is renewed by the periodic maintenance job.
pub const RENEW_MARGIN: Duration = Duration::from_secs(24 * 3600);
/// Stopped or expired channels are kept this long (late notifications are recognised and ignored),
/// then deleted.
const KEEP_DEAD_CHANNELS: Duration = Duration::from_secs(24 * 3600);

/// Whether Google can reach this server's webhook: always in development (the emulator posts over
/// http), only over https in production.
pub fn push_enabled(settings: &Settings) -> bool {
    !settings.is_production() || settings.public_url.scheme() == "https"
}

/// The stored form of a channel token.
pub fn token_digest(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// The live channel with Google's channel id `channel_id`: not stopped, not expired.
pub async fn find_live_channel(
    db: &DatabaseConnection,
    channel_id: &str,
    now: DateTime<Utc>,
) -> AppResult<Option<push_channels::Model>> {
    Ok(push_channels::Entity::find()
        .filter(push_channels::Column::ChannelId.eq(channel_id))
        .filter(push_channels::Column::StoppedAt.is_null())
        .filter(push_channels::Column::ExpiresAt.gt(now))
        .one(db)
        .await?)
}

/// Opens a channel on the calendar's events unless push is disabled or the calendar has a channel
/// that outlives the renewal margin. Returns the channel opened, if any.
pub async fn ensure_channel(
    state: &AppState,
    calendar: &calendars::Model,
) -> AppResult<Option<push_channels::Model>> {
    if !push_enabled(&state.settings) {
        return Ok(None);
    }
    let renew_after = Utc::now() + chrono::Duration::from_std(RENEW_MARGIN).unwrap_or_default();
    let live = push_channels::Entity::find()
        .filter(push_channels::Column::CalendarId.eq(calendar.id))
        .filter(push_channels::Column::StoppedAt.is_null())
        .filter(push_channels::Column::ExpiresAt.gt(renew_after))
        .one(&state.db)
        .await?;
    if live.is_some() {
        return Ok(None);
    }
    open_channel(state, calendar, CHANNEL_TTL).await.map(Some)
}

/// Asks Google for a channel on the calendar's events and saves it.
pub async fn open_channel(
    state: &AppState,
    calendar: &calendars::Model,
    ttl: Duration,
) -> AppResult<push_channels::Model> {
    let google = state.google()?.account(calendar.account_id);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let request = WatchRequest {
        channel_id: Uuid::new_v4().to_string(),
        address: state.settings.webhook_url(),
        token: Some(token.clone()),
        ttl: Some(ttl),
    };
    let channel = google.watch(&calendar.google_calendar_id, &request).await?;
    let now = Utc::now();
    let resource_id = channel.resource_id.clone().unwrap_or_default();
    let row = push_channels::ActiveModel {
        id: Set(Uuid::now_v7()),
        calendar_id: Set(calendar.id),
        channel_id: Set(request.channel_id.clone()),
        resource_id: Set(resource_id.clone()),
        token: Set(token_digest(&token)),
        expires_at: Set(channel
            .expires_at()
            .unwrap_or_else(|| now + chrono::Duration::from_std(ttl).unwrap_or_default())),
        stopped_at: Set(None),
        created_at: Set(now),
    };
    match push_channels::Entity::insert(row)
        .exec_with_returning(&state.db)
        .await
    {
        Ok(saved) => {
            tracing::debug!(calendar_id = %calendar.id, channel_id = %saved.channel_id, "push channel opened");
            Ok(saved)
        }
        Err(e) => {
            // Unsaved, the channel could never be stopped later: stop it now (for example, the calendar
            // row was deleted meanwhile).
            stop_at_google(state, calendar.account_id, &request.channel_id, &resource_id).await;
            Err(e.into())
        }
    }
}

/// What channel maintenance did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RenewReport {
    pub renewed: usize,
    pub failed: usize,
    pub deleted: u64,
}

/// Renews every live channel expiring before `now + margin`: a new channel is opened and saved first,
/// then the old one is stopped. Also deletes channels dead for a while. A failure leaves the old channel
/// in place, to be tried again next time.
pub async fn renew_expiring(
    state: &AppState,
    now: DateTime<Utc>,
    margin: Duration,
    ttl: Duration,
) -> AppResult<RenewReport> {
    let mut report = RenewReport::default();
    let horizon = now + chrono::Duration::from_std(margin).unwrap_or_default();
    let expiring = push_channels::Entity::find()
        .find_also_related(calendars::Entity)
        .filter(push_channels::Column::StoppedAt.is_null())
        .filter(push_channels::Column::ExpiresAt.lte(horizon))
        .order_by_asc(push_channels::Column::ExpiresAt)
        .all(&state.db)
        .await?;
    for (old, calendar) in expiring {
        let Some(calendar) = calendar else { continue };
        if !push_enabled(&state.settings) {
            stop_channel(state, calendar.account_id, &old).await?;
            continue;
        }
        match open_channel(state, &calendar, ttl).await {
            Ok(_) => {
                stop_channel(state, calendar.account_id, &old).await?;
                report.renewed += 1;
            }
            Err(e) => {
                report.failed += 1;
                tracing::warn!(calendar_id = %calendar.id, error = ?e, "push channel renewal failed");
            }
        }
    }
    let dead_before = now - chrono::Duration::from_std(KEEP_DEAD_CHANNELS).unwrap_or_default();
    report.deleted = push_channels::Entity::delete_many()
        .filter(
            Condition::any()
                .add(push_channels::Column::StoppedAt.lt(dead_before))
                .add(push_channels::Column::ExpiresAt.lt(dead_before)),
        )
        .exec(&state.db)
        .await?
        .rows_affected;
    Ok(report)
}

/// Marks the channel stopped (later notifications are ignored), then stops it at Google, best effort.
pub async fn stop_channel(
    state: &AppState,
    account_id: Uuid,
    channel: &push_channels::Model,
) -> AppResult<()> {
    push_channels::Entity::update_many()
        .col_expr(push_channels::Column::StoppedAt, Some(Utc::now()).into())
        .filter(push_channels::Column::Id.eq(channel.id))
        .exec(&state.db)
        .await?;
    stop_at_google(state, account_id, &channel.channel_id, &channel.resource_id).await;
    Ok(())
}

/// Stops every live channel on the account's calendars at Google, best effort: used before the
/// account is forgotten (its rows go with it, so nothing could stop them later).
pub async fn stop_account_channels(state: &AppState, account_id: Uuid) {
    let channels = push_channels::Entity::find()
        .inner_join(calendars::Entity)
        .filter(calendars::Column::AccountId.eq(account_id))
        .filter(push_channels::Column::StoppedAt.is_null())
        .all(&state.db)
        .await;
    match channels {
        Ok(channels) => stop_all(state, account_id, &channels).await,
        Err(e) => tracing::warn!(%account_id, error = %e, "could not read the account's push channels"),
    }
}

/// Stops `channels` of one account at Google, best effort (their rows are about to go or are gone).
pub async fn stop_all(state: &AppState, account_id: Uuid, channels: &[push_channels::Model]) {
    for channel in channels {
        stop_at_google(state, account_id, &channel.channel_id, &channel.resource_id).await;
    }
}

async fn stop_at_google(state: &AppState, account_id: Uuid, channel_id: &str, resource_id: &str) {
    let Ok(google) = state.google() else { return };
    let result = google
        .account(account_id)
        .stop_channel(channel_id, resource_id)
        .await;
    match result {
        // Unknown at Google: already stopped or expired.
        Ok(()) | Err(GoogleError::NotFound) => {}
        Err(e) => {
            tracing::warn!(channel_id, error = %e, "stopping a push channel failed")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Environment;

    #[test]
    fn push_needs_https_in_production_only() {
        let dir = std::env::temp_dir();
        let mut settings = Settings::for_local("sqlite::memory:", &dir).expect("settings");
        settings.public_url = url::Url::parse("http://127.0.0.1:8080").expect("url");
        assert!(push_enabled(&settings));
        settings.environment = Environment::Production;
        assert!(!push_enabled(&settings));
        settings.public_url = url::Url::parse("https://chronos.example.com").expect("url");
        assert!(push_enabled(&settings));
    }

    #[test]
    fn tokens_are_stored_as_digests() {
        let digest = token_digest("secret");
        assert_eq!(digest.len(), 32);
        assert_ne!(digest, b"secret".to_vec());
        assert_eq!(digest, token_digest("secret"));
        assert_ne!(digest, token_digest("secreT"));
    }
}
