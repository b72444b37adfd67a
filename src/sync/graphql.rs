//! GraphQL types, loaders and resolvers of sync configs and their run history. Resolvers parse, call
//! [`super::configs`] / [`super::runs`] with the signed-in user, and map.

pub mod progress;

use crate::graphql::{
    ContextExt as _, change, decode_after, encode_cursor, list_cost, parse_id, relay_connection,
    scalars::DateTime as GqlDateTime, unpaged_complexity,
};
use std::collections::HashMap;

use async_graphql::{
    Context, Enum, ID, InputObject, MaybeUndefined, Object, SimpleObject,
    dataloader::{DataLoader, Loader},
};
use chrono::Utc;
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use super::{
    configs::{self, NewSyncConfig, PrivacyChoice, SyncConfigChanges},
    history::{self, RunCursor},
};
use crate::{
    calendars::{Calendar, CalendarLoader},
    entities::{
        enums::{
            SyncConfigStatus as DbSyncConfigStatus, SyncDirection as DbSyncDirection,
            SyncRunStatus as DbSyncRunStatus, SyncTrigger as DbSyncTrigger,
        },
        sync_configs, sync_runs,
    },
    error::AppError,
};

/// Which way a sync config copies events.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
pub enum SyncDirection {
    /// The destination mirrors the source; edits to copies are overwritten.
    OneWay,
    /// Each calendar mirrors the other's events; edits and deletions on either side reach the other.
    TwoWay,
}

impl From<DbSyncDirection> for SyncDirection {
    fn from(direction: DbSyncDirection) -> Self {
        match direction {
            DbSyncDirection::OneWay => Self::OneWay,
            DbSyncDirection::TwoWay => Self::TwoWay,
        }
    }
}

impl From<SyncDirection> for DbSyncDirection {
    fn from(direction: SyncDirection) -> Self {
        match direction {
            SyncDirection::OneWay => Self::OneWay,
            SyncDirection::TwoWay => Self::TwoWay,
        }
    }
}

/// Whether a sync config runs.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
pub enum SyncConfigStatus {
    /// Runs when triggered, scheduled or pushed.
    Active,
    /// Stopped by a safety rule (see `statusReason`); `triggerSync` with an explicit override resumes it.
    Paused,
    /// A Google account of one side must be connected again; runs resume once it is.
    NeedsReauth,
}

impl From<DbSyncConfigStatus> for SyncConfigStatus {
    fn from(status: DbSyncConfigStatus) -> Self {
        match status {
            DbSyncConfigStatus::Active => Self::Active,
            DbSyncConfigStatus::Paused => Self::Paused,
            DbSyncConfigStatus::NeedsReauth => Self::NeedsReauth,
        }
    }
}

/// What started a sync run.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
pub enum SyncTrigger {
    /// `triggerSync`.
    Manual,
    /// The config's interval.
    Scheduled,
    /// A Google push notification on one of the two calendars.
    Push,
}

impl From<DbSyncTrigger> for SyncTrigger {
    fn from(trigger: DbSyncTrigger) -> Self {
        match trigger {
            DbSyncTrigger::Manual => Self::Manual,
            DbSyncTrigger::Scheduled => Self::Scheduled,
            DbSyncTrigger::Push => Self::Push,
        }
    }
}

/// Where a sync run is.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
pub enum SyncRunStatus {
    /// Waiting for a worker.
    Queued,
    /// Being executed.
    Running,
    /// Finished; every planned change landed.
    Succeeded,
    /// Finished; some changes failed (counted in `failed`) and are retried by the next run.
    Partial,
    /// Stopped before finishing (see `error`).
    Failed,
}

impl From<DbSyncRunStatus> for SyncRunStatus {
    fn from(status: DbSyncRunStatus) -> Self {
        match status {
            DbSyncRunStatus::Queued => Self::Queued,
            DbSyncRunStatus::Running => Self::Running,
            DbSyncRunStatus::Succeeded => Self::Succeeded,
            DbSyncRunStatus::Partial => Self::Partial,
            DbSyncRunStatus::Failed => Self::Failed,
        }
    }
}

/// Privacy of one direction of a sync config.
#[derive(SimpleObject, Clone, Debug, PartialEq, Eq)]
pub struct PrivacySettings {
    /// Copies show only busy time: the placeholder title, no description, no location.
    pub enabled: bool,
    /// The title of private copies.
    pub placeholder: String,
}

/// One run of a sync config, with what it did.
#[derive(SimpleObject, Clone, Debug, PartialEq, Eq)]
pub struct SyncRun {
    /// Opaque id of the run.
    pub id: ID,
    /// The config the run belongs to.
    pub config_id: ID,
    /// What started the run.
    pub trigger: SyncTrigger,
    /// Where the run is.
    pub status: SyncRunStatus,
    /// When a worker began executing it; null while queued.
    pub started_at: Option<GqlDateTime>,
    /// When it ended; null until then.
    pub finished_at: Option<GqlDateTime>,
    /// Copies created.
    pub created: i32,
    /// Events updated (copies rewritten, or origins changed by an edit flowing back).
    pub updated: i32,
    /// Events deleted.
    pub deleted: i32,
    /// Events of a type Google will not copy (out of office, focus time, working location, ...).
    pub skipped: i32,
    /// Changes that failed; the next run tries them again.
    pub failed: i32,
    /// HTTP requests made to Google by this run (a batch counts once).
    pub google_calls: i32,
    /// Pairs changed on both sides since the last run; the side the event was created on won.
    pub conflicts: i32,
    /// Why the run failed or stopped early.
    pub error: Option<String>,
    /// When the run was queued.
    pub created_at: GqlDateTime,
}

impl From<sync_runs::Model> for SyncRun {
    fn from(m: sync_runs::Model) -> Self {
        Self {
            id: ID(m.id.to_string()),
            config_id: ID(m.config_id.to_string()),
            trigger: m.trigger.into(),
            status: m.status.into(),
            started_at: m.started_at.map(Into::into),
            finished_at: m.finished_at.map(Into::into),
            created: m.created,
            updated: m.updated,
            deleted: m.deleted,
            skipped: m.skipped,
            failed: m.failed,
            google_calls: m.google_calls,
            conflicts: m.conflicts,
            error: m.error,
            created_at: m.created_at.into(),
        }
    }
}

relay_connection! {
    /// A run in a page of runs.
    edge SyncRunEdge {
        /// Opaque; pass it as `after` to continue after this run.
        cursor,
        /// The run.
        node: SyncRun,
    }
    /// A page of runs, newest first (Relay connection).
    connection SyncRunConnection {
        /// The runs of this page, newest first.
        edges,
        /// Whether older runs follow, and the cursors to get them.
        page_info,
    }
}

/// A rule mirroring the events of one of the user's calendars into another (and back, when TWO_WAY).
pub struct SyncConfig(pub sync_configs::Model);

#[Object]
impl SyncConfig {
    /// Opaque id of the config.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// The calendar whose events are copied.
    async fn source(&self, ctx: &Context<'_>) -> async_graphql::Result<Calendar> {
        Ok(CalendarLoader::load_in(ctx, self.0.source_calendar_id)
            .await?
            .ok_or(AppError::NotFound("calendar"))?)
    }

    /// The calendar the copies are written to.
    async fn destination(&self, ctx: &Context<'_>) -> async_graphql::Result<Calendar> {
        Ok(CalendarLoader::load_in(ctx, self.0.destination_calendar_id)
            .await?
            .ok_or(AppError::NotFound("calendar"))?)
    }

    /// One way (source to destination) or both ways.
    async fn direction(&self) -> SyncDirection {
        self.0.direction.into()
    }

    /// Events starting up to this many days ahead are copied.
    async fn lookahead_days(&self) -> i32 {
        self.0.lookahead_days
    }

    /// Events ending up to this many days ago are copied.
    async fn lookback_days(&self) -> i32 {
        self.0.lookback_days
    }

    /// Privacy of copies from the source into the destination.
    async fn privacy(&self) -> PrivacySettings {
        PrivacySettings {
            enabled: self.0.privacy_enabled,
            placeholder: self.0.privacy_placeholder.clone(),
        }
    }

    /// Privacy of copies from the destination into the source (TWO_WAY only).
    async fn reverse_privacy(&self) -> PrivacySettings {
        PrivacySettings {
            enabled: self.0.reverse_privacy_enabled,
            placeholder: self.0.reverse_privacy_placeholder.clone(),
        }
    }

    /// Colour (`"1"` to `"11"`) of copies in the destination; null keeps each origin's colour.
    async fn destination_color_id(&self) -> Option<&str> {
        self.0.destination_color_id.as_deref()
    }

    /// Colour (`"1"` to `"11"`) of copies in the source (TWO_WAY); null keeps each origin's colour.
    async fn reverse_color_id(&self) -> Option<&str> {
        self.0.reverse_color_id.as_deref()
    }

    /// Whether scheduled and push-triggered runs happen.
    async fn enabled(&self) -> bool {
        self.0.enabled
    }

    /// Minutes between scheduled runs; null: runs only when triggered or pushed.
    async fn interval_minutes(&self) -> Option<i32> {
        self.0.interval_minutes
    }

    /// When the next scheduled run is due; null when the config has no interval or is disabled.
    async fn next_run_at(&self) -> Option<GqlDateTime> {
        self.0.next_run_at.map(Into::into)
    }

    /// Whether the config runs.
    async fn status(&self) -> SyncConfigStatus {
        self.0.status.into()
    }

    /// Why the config is PAUSED or NEEDS_REAUTH; null when ACTIVE.
    async fn status_reason(&self) -> Option<&str> {
        self.0.paused_reason.as_deref()
    }

    /// The newest run, if any.
    async fn last_run(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<SyncRun>> {
        let latest = match ctx.data_opt::<LatestRunLoader>() {
            Some(loader) => loader.0.load_one(self.0.id).await?,
            None => {
                LatestRunLoader::new(ctx.state()?.db.clone())
                    .0
                    .load_one(self.0.id)
                    .await?
            }
        };
        Ok(latest.map(SyncRun::from))
    }

    /// When the config was created.
    async fn created_at(&self) -> GqlDateTime {
        self.0.created_at.into()
    }

    /// When the config was last changed.
    async fn updated_at(&self) -> GqlDateTime {
        self.0.updated_at.into()
    }
}

/// Loads the sync configs of one user by id; another user's config loads as missing.
pub struct SyncConfigsById {
    db: DatabaseConnection,
    user_id: Uuid,
}

impl Loader<Uuid> for SyncConfigsById {
    type Value = sync_configs::Model;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, sync_configs::Model>, Self::Error> {
        Ok(configs::find_many_owned(&self.db, self.user_id, keys).await?)
    }
}

/// Per-request loader of sync configs by id, scoped to the signed-in user (`Event.mirrorOf`).
pub struct SyncConfigLoader(DataLoader<SyncConfigsById>);

impl SyncConfigLoader {
    pub fn new(db: DatabaseConnection, user_id: Uuid) -> Self {
        Self(DataLoader::new(SyncConfigsById { db, user_id }, tokio::spawn))
    }

    /// The signed-in user's config `id` through the request's loader, or through a loader of its own when
    /// the request carries none (no batching then). `None` when missing or another user's.
    pub async fn load_in(ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<Option<SyncConfig>> {
        let loaded = match ctx.data_opt::<SyncConfigLoader>() {
            Some(loader) => loader.0.load_one(id).await?,
            None => {
                let user_id = ctx.user_id()?;
                let state = ctx.state()?;
                Self::new(state.db.clone(), user_id).0.load_one(id).await?
            }
        };
        Ok(loaded.map(SyncConfig))
    }
}

/// Loads the newest run of sync configs by config id. Only reached through a config the viewer owns.
pub struct LatestRunsByConfig {
    db: DatabaseConnection,
}

impl Loader<Uuid> for LatestRunsByConfig {
    type Value = sync_runs::Model;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, sync_runs::Model>, Self::Error> {
        Ok(history::latest_of_many(&self.db, keys).await?)
    }
}

/// Per-request loader of `SyncConfig.lastRun`: a page of configs costs two statements, not one per config.
pub struct LatestRunLoader(DataLoader<LatestRunsByConfig>);

impl LatestRunLoader {
    pub fn new(db: DatabaseConnection) -> Self {
        Self(DataLoader::new(LatestRunsByConfig { db }, tokio::spawn))
    }
}

/// Privacy of one direction.
#[derive(InputObject, Clone, Debug)]
pub struct PrivacyInput {
    /// Copies show only busy time under the placeholder title.
    pub enabled: bool,
    /// Title of private copies, 1 to 100 characters; on create "Busy" when omitted, on update unchanged.
    pub placeholder: Option<String>,
}

impl From<PrivacyInput> for PrivacyChoice {
    fn from(input: PrivacyInput) -> Self {
        Self {
            enabled: input.enabled,
            placeholder: input.placeholder,
        }
    }
}

/// A new sync config.
#[derive(InputObject, Clone, Debug)]
pub struct CreateSyncConfigInput {
    /// A calendar of any of the user's Google accounts.
    pub source_calendar_id: ID,
    /// Another calendar of any of the user's accounts, writable by it (owner or writer).
    pub destination_calendar_id: ID,
    /// ONE_WAY, or TWO_WAY (then the source must be writable too).
    pub direction: SyncDirection,
    /// 1 to 730; default 90.
    pub lookahead_days: Option<i32>,
    /// 0 to 365; default 0.
    pub lookback_days: Option<i32>,
    /// Source to destination; default off with placeholder "Busy".
    pub privacy: Option<PrivacyInput>,
    /// Destination to source (TWO_WAY); default off with placeholder "Busy".
    pub reverse_privacy: Option<PrivacyInput>,
    /// `"1"` to `"11"`; default: each origin's colour.
    pub destination_color_id: Option<String>,
    /// `"1"` to `"11"`; default: each origin's colour.
    pub reverse_color_id: Option<String>,
    /// Default true.
    pub enabled: Option<bool>,
    /// 5 to 10080 minutes between scheduled runs; default none (manual and push only).
    pub interval_minutes: Option<i32>,
}

/// Changes to a sync config; omitted fields stay as they are. The calendars and the direction are fixed:
/// create another config to change them.
#[derive(InputObject, Clone, Debug)]
pub struct UpdateSyncConfigInput {
    /// 1 to 730.
    pub lookahead_days: Option<i32>,
    /// 0 to 365.
    pub lookback_days: Option<i32>,
    /// Source to destination privacy.
    pub privacy: Option<PrivacyInput>,
    /// Destination to source privacy.
    pub reverse_privacy: Option<PrivacyInput>,
    /// `"1"` to `"11"`; null: each origin's colour.
    pub destination_color_id: MaybeUndefined<String>,
    /// `"1"` to `"11"`; null: each origin's colour.
    pub reverse_color_id: MaybeUndefined<String>,
    /// Whether scheduled and push-triggered runs happen.
    pub enabled: Option<bool>,
    /// 5 to 10080; null: no scheduled runs.
    pub interval_minutes: MaybeUndefined<i32>,
}

/// A run is a flat row of scalars read by the page's one query (no nested resolvers to multiply), so a
/// page costs its selection once plus one per run: a full page of 100 with every field fits the budget.
fn runs_complexity(first: Option<i32>, child_complexity: usize) -> usize {
    let size = first
        .unwrap_or(history::DEFAULT_PAGE_SIZE)
        .clamp(1, history::MAX_PAGE_SIZE);
    usize::try_from(size)
        .unwrap_or(1)
        .saturating_add(child_complexity)
}

#[derive(Default)]
pub struct SyncQuery;

#[Object]
impl SyncQuery {
    /// The signed-in user's sync configs, oldest first.
    #[graphql(complexity = "unpaged_complexity(list_cost::SYNC_CONFIGS, child_complexity)")]
    async fn sync_configs(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<SyncConfig>> {
        let user_id = ctx.user_id()?;
        let state = ctx.state()?;
        Ok(configs::list(&state.db, user_id)
            .await?
            .into_iter()
            .map(SyncConfig)
            .collect())
    }

    /// One sync config of the signed-in user; NOT_FOUND when it does not exist or is another user's.
    async fn sync_config(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<SyncConfig>> {
        let user_id = ctx.user_id()?;
        let state = ctx.state()?;
        let id = parse_id(&id, "sync config")?;
        Ok(Some(SyncConfig(
            configs::find_owned(&state.db, user_id, id).await?,
        )))
    }

    /// The runs of one of the user's sync configs, newest first, a page at a time.
    #[graphql(complexity = "runs_complexity(first, child_complexity)")]
    async fn sync_runs(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A sync config of the signed-in user.")] config_id: ID,
        #[graphql(desc = "Page size: 1 to 100, default 20.")] first: Option<i32>,
        #[graphql(desc = "A cursor from a previous page: continue with older runs.")] after: Option<String>,
    ) -> async_graphql::Result<SyncRunConnection> {
        let user_id = ctx.user_id()?;
        let state = ctx.state()?;
        let config_id = parse_id(&config_id, "sync config")?;
        let first = history::page_size(first)?;
        let after = decode_after::<RunCursor>(after.as_deref())?;
        let page = history::page(&state.db, user_id, config_id, first, after).await?;
        let nodes = page
            .runs
            .into_iter()
            .map(|(cursor, run)| (encode_cursor(cursor), SyncRun::from(run)));
        Ok(SyncRunConnection::of(nodes, after.is_some(), page.has_next_page))
    }
}

#[derive(Default)]
pub struct SyncMutation;

#[Object]
impl SyncMutation {
    /// Creates a sync config between two calendars of the signed-in user. Refused: the same calendar on
    /// both sides, a destination the account cannot write (and for TWO_WAY a source it cannot write),
    /// and a second config between the same two calendars (CONFLICT).
    async fn create_sync_config(
        &self,
        ctx: &Context<'_>,
        input: CreateSyncConfigInput,
    ) -> async_graphql::Result<SyncConfig> {
        let user_id = ctx.user_id()?;
        let state = ctx.state()?;
        let new = NewSyncConfig {
            source_calendar_id: parse_id(&input.source_calendar_id, "calendar")?,
            destination_calendar_id: parse_id(&input.destination_calendar_id, "calendar")?,
            direction: input.direction.into(),
            lookahead_days: input.lookahead_days,
            lookback_days: input.lookback_days,
            privacy: input.privacy.map(PrivacyChoice::from),
            reverse_privacy: input.reverse_privacy.map(PrivacyChoice::from),
            destination_color_id: input.destination_color_id,
            reverse_color_id: input.reverse_color_id,
            enabled: input.enabled,
            interval_minutes: input.interval_minutes,
        };
        Ok(SyncConfig(
            configs::create(&state.db, user_id, new, Utc::now()).await?,
        ))
    }

    /// Changes one of the user's sync configs.
    async fn update_sync_config(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateSyncConfigInput,
    ) -> async_graphql::Result<SyncConfig> {
        let user_id = ctx.user_id()?;
        let state = ctx.state()?;
        let id = parse_id(&id, "sync config")?;
        let changes = SyncConfigChanges {
            lookahead_days: input.lookahead_days,
            lookback_days: input.lookback_days,
            privacy: input.privacy.map(PrivacyChoice::from),
            reverse_privacy: input.reverse_privacy.map(PrivacyChoice::from),
            destination_color_id: change(input.destination_color_id),
            reverse_color_id: change(input.reverse_color_id),
            enabled: input.enabled,
            interval_minutes: change(input.interval_minutes),
        };
        Ok(SyncConfig(
            configs::update(&state.db, user_id, id, changes, Utc::now()).await?,
        ))
    }

    /// Deletes one of the user's sync configs. The copies it wrote stay as ordinary events, unless
    /// `removeMirrors`: then every copy is deleted at Google first, found from the calendars themselves (it
    /// works after the source account lost access). If Google cannot be reached the config is kept.
    async fn delete_sync_config(
        &self,
        ctx: &Context<'_>,
        id: ID,
        #[graphql(
            default_with = "Some(false)",
            desc = "Also delete every copy the config wrote."
        )]
        remove_mirrors: Option<bool>,
    ) -> async_graphql::Result<bool> {
        let user_id = ctx.user_id()?;
        let state = ctx.state()?;
        let id = parse_id(&id, "sync config")?;
        configs::delete(state, user_id, id, remove_mirrors.unwrap_or(false)).await?;
        Ok(true)
    }
}
