//! Rows a benchmark seeds straight into the database, as the sign-in and the calendar list would write
//! them (access tokens encrypted as the app encrypts them), when signing every user in over HTTP would
//! take longer than what is measured.

use chrono::{DateTime, TimeDelta, Utc};
use chronos::{
    entities::{
        calendars,
        enums::{AccountStatus, SyncConfigStatus, SyncDirection},
        google_accounts, sync_configs, users,
    },
    google::{TokenSet, encrypt_tokens},
    state::AppState,
};
use sea_orm::{ActiveModelTrait, ActiveValue::Set};
use uuid::Uuid;

pub async fn user(state: &AppState, email: &str) -> anyhow::Result<Uuid> {
    let now = Utc::now();
    let user = users::ActiveModel {
        id: Set(Uuid::now_v7()),
        email: Set(email.into()),
        name: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&state.db)
    .await?;
    Ok(user.id)
}

/// A connected Google account of `user_id` holding `access_token` (issued by the emulator), valid for
/// 55 minutes and without a refresh token.
pub async fn account(
    state: &AppState,
    user_id: Uuid,
    email: &str,
    access_token: String,
) -> anyhow::Result<Uuid> {
    let now = Utc::now();
    let account_id = Uuid::now_v7();
    let tokens = TokenSet {
        access_token: chronos::crypto::SecretString::from(access_token),
        refresh_token: None,
        expires_at: now + TimeDelta::minutes(55),
        granted_scopes: vec![chronos::google::CALENDAR_SCOPE.to_owned()],
    };
    let encrypted = encrypt_tokens(&state.cipher, user_id, account_id, &tokens)?;
    google_accounts::ActiveModel {
        id: Set(account_id),
        user_id: Set(user_id),
        google_sub: Set(email.into()),
        email: Set(email.into()),
        name: Set(None),
        status: Set(AccountStatus::Active),
        access_token: Set(Some(encrypted.access_token)),
        refresh_token: Set(None),
        access_token_expires_at: Set(Some(tokens.expires_at)),
        granted_scopes: Set(tokens.scope_string()),
        calendar_list_sync_token: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&state.db)
    .await?;
    Ok(account_id)
}

/// A calendar of `account_id` the account owns, by its Google id, not yet cached.
pub async fn calendar(
    state: &AppState,
    account_id: Uuid,
    google_calendar_id: &str,
    primary: bool,
) -> anyhow::Result<Uuid> {
    let now = Utc::now();
    let calendar = calendars::ActiveModel {
        id: Set(Uuid::now_v7()),
        account_id: Set(account_id),
        google_calendar_id: Set(google_calendar_id.into()),
        summary: Set(google_calendar_id.into()),
        description: Set(None),
        time_zone: Set(Some("UTC".into())),
        access_role: Set("owner".into()),
        is_primary: Set(primary),
        background_color: Set(None),
        foreground_color: Set(None),
        color_id: Set(None),
        include_in_free_busy: Set(None),
        events_sync_token: Set(None),
        last_full_sync_at: Set(None),
        last_synced_at: Set(None),
        deleted_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&state.db)
    .await?;
    Ok(calendar.id)
}

/// An enabled ONE_WAY config copying the next 120 days of `source` into `destination`, every
/// `interval_minutes` from `next_run_at` (none: manual runs only).
pub async fn one_way_config(
    state: &AppState,
    user_id: Uuid,
    source: Uuid,
    destination: Uuid,
    interval_minutes: Option<i32>,
    next_run_at: Option<DateTime<Utc>>,
) -> anyhow::Result<Uuid> {
    let now = Utc::now();
    let config = sync_configs::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user_id),
        source_calendar_id: Set(source),
        destination_calendar_id: Set(destination),
        direction: Set(SyncDirection::OneWay),
        lookahead_days: Set(120),
        lookback_days: Set(0),
        privacy_enabled: Set(false),
        privacy_placeholder: Set("Busy".into()),
        reverse_privacy_enabled: Set(false),
        reverse_privacy_placeholder: Set("Busy".into()),
        destination_color_id: Set(None),
        reverse_color_id: Set(None),
        enabled: Set(true),
        interval_minutes: Set(interval_minutes),
        status: Set(SyncConfigStatus::Active),
        paused_reason: Set(None),
        next_run_at: Set(next_run_at),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&state.db)
    .await?;
    Ok(config.id)
}
