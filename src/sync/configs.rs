//! Sync configs: the rules a user sets up to mirror one of their calendars into another, and what the
//! scheduler and the run orchestration need to read and mark on them.
//!
//! Rules kept here (every entry point goes through them):
//! - both calendars belong to the signed-in user (any of their Google accounts); another user's calendar
//!   or config is NOT_FOUND, exactly like a missing one;
//! - the two sides are different Google calendars, the destination is writable, and for TWO_WAY the
//!   source too (`owner` or `writer`);
//! - one config per pair of calendars: a second config mirroring the same pair would write every event
//!   twice (CONFLICT);
//! - windows, privacy placeholders, colours and the interval are bounded ([`validate_lookahead`] ...);
//! - `next_run_at` is set from `interval_minutes` with jitter, and cleared when there is no interval or
//!   the config is disabled: the scheduler runs configs whose `next_run_at` is due.
//!
//! [`delete`] with `remove_mirrors` removes every copy the config wrote ([`mirror_removal`]).

mod mirror_removal;

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use rand::Rng;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, SqlErr,
};
use uuid::Uuid;

use super::mirror::DEFAULT_PLACEHOLDER;
use crate::{
    calendars::list::{find_owned_calendar, owned_by},
    entities::{
        calendars,
        enums::{SyncConfigStatus, SyncDirection},
        sync_configs, users,
    },
    error::{AppError, AppResult},
    events::validate::writable,
    state::AppState,
};

/// `lookaheadDays` when not given, and its bounds.
pub const DEFAULT_LOOKAHEAD_DAYS: i32 = 90;
pub const MAX_LOOKAHEAD_DAYS: i32 = 730;
/// `lookbackDays` when not given, and its upper bound.
pub const DEFAULT_LOOKBACK_DAYS: i32 = 0;
pub const MAX_LOOKBACK_DAYS: i32 = 365;
/// Longest privacy placeholder, in characters.
pub const MAX_PLACEHOLDER_CHARS: usize = 100;
/// Bounds of `intervalMinutes`: every 5 minutes to once a week.
pub const MIN_INTERVAL_MINUTES: i32 = 5;
pub const MAX_INTERVAL_MINUTES: i32 = 10_080;
/// A scheduled run is pushed back by up to this share of the interval, so configs created together do
/// not all fall due in the same second.
pub const SCHEDULE_JITTER: f64 = 0.1;

/// Privacy of one direction as the client sets it; a missing placeholder is "Busy" on create and
/// unchanged on update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivacyChoice {
    pub enabled: bool,
    pub placeholder: Option<String>,
}

/// A config to create. `None` fields take their defaults.
#[derive(Debug, Clone)]
pub struct NewSyncConfig {
    pub source_calendar_id: Uuid,
    pub destination_calendar_id: Uuid,
    pub direction: SyncDirection,
    pub lookahead_days: Option<i32>,
    pub lookback_days: Option<i32>,
    pub privacy: Option<PrivacyChoice>,
    pub reverse_privacy: Option<PrivacyChoice>,
    pub destination_color_id: Option<String>,
    pub reverse_color_id: Option<String>,
    pub enabled: Option<bool>,
    pub interval_minutes: Option<i32>,
}

/// Changes to a config: `None` keeps a field; `Some(None)` clears a nullable one.
#[derive(Debug, Clone, Default)]
pub struct SyncConfigChanges {
    pub lookahead_days: Option<i32>,
    pub lookback_days: Option<i32>,
    pub privacy: Option<PrivacyChoice>,
    pub reverse_privacy: Option<PrivacyChoice>,
    pub destination_color_id: Option<Option<String>>,
    pub reverse_color_id: Option<Option<String>>,
    pub enabled: Option<bool>,
    pub interval_minutes: Option<Option<i32>>,
}

// -------------------------------------------------------------------------------------------------
// Input rules (pure)
// -------------------------------------------------------------------------------------------------

pub fn validate_lookahead(days: i32) -> AppResult<i32> {
    in_range("lookaheadDays", days, 1, MAX_LOOKAHEAD_DAYS)
}

pub fn validate_lookback(days: i32) -> AppResult<i32> {
    in_range("lookbackDays", days, 0, MAX_LOOKBACK_DAYS)
}

pub fn validate_interval(minutes: i32) -> AppResult<i32> {
    in_range(
        "intervalMinutes",
        minutes,
        MIN_INTERVAL_MINUTES,
        MAX_INTERVAL_MINUTES,
    )
}

fn in_range(field: &str, value: i32, min: i32, max: i32) -> AppResult<i32> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(AppError::bad_input(
            field,
            format!("must be between {min} and {max}"),
        ))
    }
}

/// Google's event colours are `"1"` to `"11"`, written exactly so.
pub fn validate_color(field: &str, color: &str) -> AppResult<String> {
    let valid = color
        .parse::<u8>()
        .is_ok_and(|n| (1..=11).contains(&n) && n.to_string() == color);
    if valid {
        Ok(color.to_owned())
    } else {
        Err(AppError::bad_input(
            field,
            "must be a Google event colour, \"1\" to \"11\"",
        ))
    }
}

/// A placeholder title: surrounding whitespace removed, 1 to [`MAX_PLACEHOLDER_CHARS`] characters left.
pub fn validate_placeholder(field: &str, placeholder: &str) -> AppResult<String> {
    let placeholder = placeholder.trim();
    let chars = placeholder.chars().count();
    if chars == 0 || chars > MAX_PLACEHOLDER_CHARS {
        return Err(AppError::bad_input(
            field,
            format!("must be 1 to {MAX_PLACEHOLDER_CHARS} characters"),
        ));
    }
    Ok(placeholder.to_owned())
}

/// The (enabled, placeholder) a privacy choice leads to, from the current placeholder.
fn apply_privacy(field: &str, choice: &PrivacyChoice, current: &str) -> AppResult<(bool, String)> {
    let placeholder = match &choice.placeholder {
        Some(placeholder) => validate_placeholder(&format!("{field}.placeholder"), placeholder)?,
        None => current.to_owned(),
    };
    Ok((choice.enabled, placeholder))
}

/// When a config with this interval should next run: `now + interval`, pushed back by `jitter` (0 to 1)
/// times [`SCHEDULE_JITTER`] of the interval. `None` (no scheduled runs) when disabled or without interval.
pub fn next_run_at(
    enabled: bool,
    interval_minutes: Option<i32>,
    now: DateTime<Utc>,
    jitter: f64,
) -> Option<DateTime<Utc>> {
    let minutes = interval_minutes.filter(|_| enabled)?;
    let interval_secs = i64::from(minutes.max(1)) * 60;
    // Truncation is fine: the jitter is a spread, not a quantity.
    let jitter_secs = (interval_secs as f64 * SCHEDULE_JITTER * jitter.clamp(0.0, 1.0)) as i64;
    now.checked_add_signed(TimeDelta::try_seconds(interval_secs + jitter_secs)?)
}

/// [`next_run_at`] with a random jitter.
pub fn schedule(enabled: bool, interval_minutes: Option<i32>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    next_run_at(
        enabled,
        interval_minutes,
        now,
        rand::rng().random_range(0.0..=1.0),
    )
}

// -------------------------------------------------------------------------------------------------
// Reads
// -------------------------------------------------------------------------------------------------

/// The user's configs, oldest first.
pub async fn list<C: ConnectionTrait>(db: &C, user_id: Uuid) -> AppResult<Vec<sync_configs::Model>> {
    Ok(sync_configs::Entity::find()
        .filter(sync_configs::Column::UserId.eq(user_id))
        .order_by_asc(sync_configs::Column::CreatedAt)
        .order_by_asc(sync_configs::Column::Id)
        .all(db)
        .await?)
}

/// The user's config `id`; another user's config is reported exactly like a missing one.
pub async fn find_owned<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    id: Uuid,
) -> AppResult<sync_configs::Model> {
    sync_configs::Entity::find_by_id(id)
        .filter(sync_configs::Column::UserId.eq(user_id))
        .one(db)
        .await?
        .ok_or(AppError::NotFound("sync config"))
}

/// The configs among `ids` that belong to the user, by id (for loaders).
pub async fn find_many_owned(
    db: &DatabaseConnection,
    user_id: Uuid,
    ids: &[Uuid],
) -> AppResult<HashMap<Uuid, sync_configs::Model>> {
    Ok(sync_configs::Entity::find()
        .filter(sync_configs::Column::UserId.eq(user_id))
        .filter(sync_configs::Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await?
        .into_iter()
        .map(|config| (config.id, config))
        .collect())
}

// -------------------------------------------------------------------------------------------------
// Writes
// -------------------------------------------------------------------------------------------------

/// Creates a config after checking every rule of the module.
pub async fn create(
    db: &DatabaseConnection,
    user_id: Uuid,
    input: NewSyncConfig,
    now: DateTime<Utc>,
) -> AppResult<sync_configs::Model> {
    let lookahead_days = validate_lookahead(input.lookahead_days.unwrap_or(DEFAULT_LOOKAHEAD_DAYS))?;
    let lookback_days = validate_lookback(input.lookback_days.unwrap_or(DEFAULT_LOOKBACK_DAYS))?;
    let off = PrivacyChoice {
        enabled: false,
        placeholder: None,
    };
    let (privacy_enabled, privacy_placeholder) = apply_privacy(
        "privacy",
        input.privacy.as_ref().unwrap_or(&off),
        DEFAULT_PLACEHOLDER,
    )?;
    let (reverse_privacy_enabled, reverse_privacy_placeholder) = apply_privacy(
        "reversePrivacy",
        input.reverse_privacy.as_ref().unwrap_or(&off),
        DEFAULT_PLACEHOLDER,
    )?;
    let destination_color_id = input
        .destination_color_id
        .as_deref()
        .map(|c| validate_color("destinationColorId", c))
        .transpose()?;
    let reverse_color_id = input
        .reverse_color_id
        .as_deref()
        .map(|c| validate_color("reverseColorId", c))
        .transpose()?;
    let interval_minutes = input.interval_minutes.map(validate_interval).transpose()?;
    let enabled = input.enabled.unwrap_or(true);

    // The duplicate check and the insert run under the user's row lock (SQLite: the IMMEDIATE write
    // lock), so simultaneous creates are checked one after the other; the unique index on the pair is
    // the last line.
    let txn = crate::db::begin_write(db).await?;
    users::Entity::find_by_id(user_id)
        .lock_exclusive()
        .one(&txn)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    let source = find_owned_calendar(&txn, user_id, input.source_calendar_id).await?;
    let destination = find_owned_calendar(&txn, user_id, input.destination_calendar_id).await?;
    check_calendars(&source, &destination, input.direction)?;
    refuse_duplicate(&txn, user_id, &source, &destination, input.direction).await?;

    let config = sync_configs::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user_id),
        source_calendar_id: Set(source.id),
        destination_calendar_id: Set(destination.id),
        direction: Set(input.direction),
        lookahead_days: Set(lookahead_days),
        lookback_days: Set(lookback_days),
        privacy_enabled: Set(privacy_enabled),
        privacy_placeholder: Set(privacy_placeholder),
        reverse_privacy_enabled: Set(reverse_privacy_enabled),
        reverse_privacy_placeholder: Set(reverse_privacy_placeholder),
        destination_color_id: Set(destination_color_id),
        reverse_color_id: Set(reverse_color_id),
        enabled: Set(enabled),
        interval_minutes: Set(interval_minutes),
        status: Set(SyncConfigStatus::Active),
        paused_reason: Set(None),
        next_run_at: Set(schedule(enabled, interval_minutes, now)),
        created_at: Set(now),
        updated_at: Set(now),
    };
    let config = match config.insert(&txn).await {
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            return Err(duplicate_config());
        }
        inserted => inserted?,
    };
    txn.commit().await?;
    tracing::info!(config_id = %config.id, %user_id, direction = ?config.direction, "sync config created");
    Ok(config)
}

/// Same Google calendar on both sides (also when seen through two accounts), or a side the account cannot
/// write to.
fn check_calendars(
    source: &calendars::Model,
    destination: &calendars::Model,
    direction: SyncDirection,
) -> AppResult<()> {
    if source.id == destination.id || source.google_calendar_id == destination.google_calendar_id {
        return Err(AppError::bad_input(
            "destinationCalendarId",
            "must be a different calendar than the source",
        ));
    }
    writable("destinationCalendarId", &destination.access_role)?;
    if direction == SyncDirection::TwoWay {
        writable("sourceCalendarId", &source.access_role)?;
    }
    Ok(())
}

/// One config per pair of calendars: the same (source, destination), or the reverse pair when either
/// config is TWO_WAY (both would copy the same events). Calendars compare by Google id, so the same
/// calendar seen through two accounts is one calendar.
async fn refuse_duplicate<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    source: &calendars::Model,
    destination: &calendars::Model,
    direction: SyncDirection,
) -> AppResult<()> {
    let existing = list(db, user_id).await?;
    if existing.is_empty() {
        return Ok(());
    }
    let google_ids: HashMap<Uuid, String> = owned_by(user_id)
        .all(db)
        .await?
        .into_iter()
        .map(|c| (c.id, c.google_calendar_id))
        .collect();
    let google_id = |id: Uuid| google_ids.get(&id).map(String::as_str);
    let (new_source, new_destination) = (
        source.google_calendar_id.as_str(),
        destination.google_calendar_id.as_str(),
    );
    let clash = existing.iter().any(|config| {
        let (Some(other_source), Some(other_destination)) = (
            google_id(config.source_calendar_id),
            google_id(config.destination_calendar_id),
        ) else {
            return false;
        };
        let same = other_source == new_source && other_destination == new_destination;
        let reversed = other_source == new_destination && other_destination == new_source;
        let either_two_way = direction == SyncDirection::TwoWay || config.direction == SyncDirection::TwoWay;
        same || (reversed && either_two_way)
    });
    if clash {
        return Err(duplicate_config());
    }
    Ok(())
}

fn duplicate_config() -> AppError {
    AppError::Conflict("a sync config between these two calendars already exists".into())
}

/// Applies `changes` to the user's config `id`. The calendars and the direction cannot change.
pub async fn update(
    db: &DatabaseConnection,
    user_id: Uuid,
    id: Uuid,
    changes: SyncConfigChanges,
    now: DateTime<Utc>,
) -> AppResult<sync_configs::Model> {
    let current = find_owned(db, user_id, id).await?;
    let lookahead_days = changes.lookahead_days.map(validate_lookahead).transpose()?;
    let lookback_days = changes.lookback_days.map(validate_lookback).transpose()?;
    let privacy = changes
        .privacy
        .as_ref()
        .map(|choice| apply_privacy("privacy", choice, &current.privacy_placeholder))
        .transpose()?;
    let reverse_privacy = changes
        .reverse_privacy
        .as_ref()
        .map(|choice| apply_privacy("reversePrivacy", choice, &current.reverse_privacy_placeholder))
        .transpose()?;
    let destination_color_id = changes
        .destination_color_id
        .map(|color| {
            color
                .map(|c| validate_color("destinationColorId", &c))
                .transpose()
        })
        .transpose()?;
    let reverse_color_id = changes
        .reverse_color_id
        .map(|color| color.map(|c| validate_color("reverseColorId", &c)).transpose())
        .transpose()?;
    let interval_minutes = changes
        .interval_minutes
        .map(|minutes| minutes.map(validate_interval).transpose())
        .transpose()?;

    let enabled = changes.enabled.unwrap_or(current.enabled);
    let interval = interval_minutes.unwrap_or(current.interval_minutes);
    // An unchanged schedule keeps its due time: editing a colour must not postpone the next run.
    let schedule_changed = enabled != current.enabled || interval != current.interval_minutes;
    let next_run = match next_run_at(enabled, interval, now, 0.0) {
        None => None,
        Some(_) if !schedule_changed && current.next_run_at.is_some() => current.next_run_at,
        Some(_) => schedule(enabled, interval, now),
    };

    let mut model: sync_configs::ActiveModel = current.into();
    if let Some(days) = lookahead_days {
        model.lookahead_days = Set(days);
    }
    if let Some(days) = lookback_days {
        model.lookback_days = Set(days);
    }
    if let Some((enabled, placeholder)) = privacy {
        model.privacy_enabled = Set(enabled);
        model.privacy_placeholder = Set(placeholder);
    }
    if let Some((enabled, placeholder)) = reverse_privacy {
        model.reverse_privacy_enabled = Set(enabled);
        model.reverse_privacy_placeholder = Set(placeholder);
    }
    if let Some(color) = destination_color_id {
        model.destination_color_id = Set(color);
    }
    if let Some(color) = reverse_color_id {
        model.reverse_color_id = Set(color);
    }
    model.enabled = Set(enabled);
    model.interval_minutes = Set(interval);
    model.next_run_at = Set(next_run);
    model.updated_at = Set(now);
    Ok(model.update(db).await?)
}

/// Deletes the user's config `id`. Its links and runs go with it; the copies it wrote stay in the
/// calendars as ordinary events, unless `remove_mirrors`: then every copy is deleted at Google first
/// (see [`mirror_removal`]), and when that fails the config is kept and the error returned.
pub async fn delete(state: &AppState, user_id: Uuid, id: Uuid, remove_mirrors: bool) -> AppResult<()> {
    let config = find_owned(&state.db, user_id, id).await?;
    if remove_mirrors {
        let removed = mirror_removal::remove_mirrors(state, &config).await?;
        tracing::info!(config_id = %config.id, removed, "mirrors of the sync config deleted");
    }
    let deleted = sync_configs::Entity::delete_many()
        .filter(sync_configs::Column::Id.eq(id))
        .filter(sync_configs::Column::UserId.eq(user_id))
        .exec(&state.db)
        .await?;
    if deleted.rows_affected == 0 {
        // Deleted by a concurrent request (or its calendar vanished) in the meantime.
        return Err(AppError::NotFound("sync config"));
    }
    tracing::info!(config_id = %id, %user_id, remove_mirrors, "sync config deleted");
    Ok(())
}

// -------------------------------------------------------------------------------------------------
// For the scheduler and the run orchestration
// -------------------------------------------------------------------------------------------------

/// Sets a config's status and the reason shown with it (`statusReason`). Returns whether the config
/// still exists.
pub async fn set_status<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    status: SyncConfigStatus,
    reason: Option<String>,
) -> AppResult<bool> {
    let result = sync_configs::Entity::update_many()
        .col_expr(sync_configs::Column::Status, status.into())
        .col_expr(sync_configs::Column::PausedReason, reason.into())
        .col_expr(sync_configs::Column::UpdatedAt, Utc::now().into())
        .filter(sync_configs::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(result.rows_affected > 0)
}

/// PAUSED with a reason the user sees (for example the mass-delete guard's).
pub async fn pause<C: ConnectionTrait>(db: &C, id: Uuid, reason: impl Into<String>) -> AppResult<bool> {
    set_status(db, id, SyncConfigStatus::Paused, Some(reason.into())).await
}

/// NEEDS_REAUTH: a side's Google grant is gone; runs wait until the account is connected again.
pub async fn mark_needs_reauth<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    reason: impl Into<String>,
) -> AppResult<bool> {
    set_status(db, id, SyncConfigStatus::NeedsReauth, Some(reason.into())).await
}

/// ACTIVE again, without a reason.
pub async fn resume<C: ConnectionTrait>(db: &C, id: Uuid) -> AppResult<bool> {
    set_status(db, id, SyncConfigStatus::Active, None).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of<T: std::fmt::Debug>(result: AppResult<T>) -> String {
        match result {
            Err(AppError::BadUserInput { field, .. }) => field,
            other => panic!("expected BAD_USER_INPUT, got {other:?}"),
        }
    }

    #[test]
    fn windows_are_bounded() {
        assert_eq!(validate_lookahead(1).unwrap(), 1);
        assert_eq!(validate_lookahead(730).unwrap(), 730);
        assert_eq!(field_of(validate_lookahead(0)), "lookaheadDays");
        assert_eq!(field_of(validate_lookahead(731)), "lookaheadDays");
        assert_eq!(validate_lookback(0).unwrap(), 0);
        assert_eq!(validate_lookback(365).unwrap(), 365);
        assert_eq!(field_of(validate_lookback(-1)), "lookbackDays");
        assert_eq!(field_of(validate_lookback(366)), "lookbackDays");
        assert_eq!(validate_interval(5).unwrap(), 5);
        assert_eq!(validate_interval(10_080).unwrap(), 10_080);
        assert_eq!(field_of(validate_interval(4)), "intervalMinutes");
        assert_eq!(field_of(validate_interval(10_081)), "intervalMinutes");
    }

    #[test]
    fn colours_are_one_to_eleven_written_plainly() {
        for ok in ["1", "7", "11"] {
            assert_eq!(validate_color("destinationColorId", ok).unwrap(), ok);
        }
        for bad in ["0", "12", "01", " 3", "+3", "", "blue", "-1"] {
            assert_eq!(field_of(validate_color("reverseColorId", bad)), "reverseColorId");
        }
    }

    #[test]
    fn placeholders_are_trimmed_and_bounded_in_characters() {
        assert_eq!(validate_placeholder("p", "  Busy  ").unwrap(), "Busy");
        let hundred = "é".repeat(100);
        assert_eq!(validate_placeholder("p", &hundred).unwrap(), hundred);
        assert_eq!(field_of(validate_placeholder("p", &"é".repeat(101))), "p");
        assert_eq!(field_of(validate_placeholder("p", "   ")), "p");
        let kept = apply_privacy(
            "privacy",
            &PrivacyChoice {
                enabled: true,
                placeholder: None,
            },
            "Away",
        )
        .unwrap();
        assert_eq!(kept, (true, "Away".to_owned()));
        let refused = apply_privacy(
            "reversePrivacy",
            &PrivacyChoice {
                enabled: true,
                placeholder: Some(String::new()),
            },
            "Busy",
        );
        assert_eq!(field_of(refused), "reversePrivacy.placeholder");
    }

    #[test]
    fn scheduled_runs_fall_one_interval_later_with_at_most_ten_percent_jitter() {
        let now = DateTime::parse_from_rfc3339("2026-11-21T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let at = |jitter| next_run_at(true, Some(60), now, jitter).unwrap();
        assert_eq!(at(0.0), now + TimeDelta::minutes(60));
        assert_eq!(at(1.0), now + TimeDelta::minutes(66));
        assert_eq!(at(7.0), now + TimeDelta::minutes(66), "jitter is clamped");
        assert_eq!(next_run_at(false, Some(60), now, 0.5), None);
        assert_eq!(next_run_at(true, None, now, 0.5), None);
        for _ in 0..100 {
            let next = schedule(true, Some(10), now).unwrap();
            assert!(next >= now + TimeDelta::minutes(10) && next <= now + TimeDelta::minutes(11));
        }
    }
}
