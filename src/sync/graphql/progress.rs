//! GraphQL of sync runs in motion: `triggerSync` and the `syncProgress` subscription.

use crate::graphql::{ContextExt as _, parse_id, scalars::DateTime as GqlDateTime};
use async_graphql::{Context, Enum, ID, Object, SimpleObject, Subscription};
use futures::{Stream, StreamExt as _};

use super::SyncRun;
use crate::progress::{self, Progress};
use crate::sync::{configs, runner};

/// Where a sync run is.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
pub enum SyncPhase {
    /// A worker took the run.
    Started,
    /// Both calendars are being listed (changes since the last run only).
    Listing,
    /// Changes are being written to Google; the counts grow as batches land.
    Applying,
    /// The run ended (see its `status` for failed writes).
    Finished,
    /// The run stopped (see its `error`).
    Failed,
}

impl From<progress::Phase> for SyncPhase {
    fn from(phase: progress::Phase) -> Self {
        match phase {
            progress::Phase::Started => Self::Started,
            progress::Phase::Listing => Self::Listing,
            progress::Phase::Applying => Self::Applying,
            progress::Phase::Finished => Self::Finished,
            progress::Phase::Failed => Self::Failed,
        }
    }
}

/// A progress message of a sync run. The counts are the run's totals so far.
#[derive(SimpleObject, Clone, Debug, PartialEq, Eq)]
pub struct SyncProgress {
    /// The run reporting.
    pub run_id: ID,
    /// Its sync config.
    pub config_id: ID,
    /// Where the run is.
    pub phase: SyncPhase,
    /// Copies created so far.
    pub created: i32,
    /// Events updated so far.
    pub updated: i32,
    /// Events deleted so far.
    pub deleted: i32,
    /// Writes that failed so far (retried by the next run).
    pub failed: i32,
    /// Changes finished so far: `created + updated + deleted + failed`. Never goes down during a run, and
    /// equals `total` once the run has applied its whole plan.
    pub done: i32,
    /// The changes the run applies in all; null until its plan is made. A run taken over after its
    /// server stopped plans again: its total is what it had done before plus what the new plan holds.
    pub total: Option<i32>,
    /// When the run is expected to finish. An estimate only: the rate since the run began applying
    /// (changes done over time elapsed), extrapolated to `total`; it moves as the rate does (Google's
    /// quotas pace long runs). Null until the first changes are done, and in the run's last message.
    /// Never before `at`.
    pub expected_finish_at: Option<GqlDateTime>,
    /// When the message was sent.
    pub at: GqlDateTime,
}

impl From<&Progress> for SyncProgress {
    fn from(progress: &Progress) -> Self {
        Self {
            run_id: ID(progress.run_id.to_string()),
            config_id: ID(progress.config_id.to_string()),
            phase: progress.phase.into(),
            created: progress.created,
            updated: progress.updated,
            deleted: progress.deleted,
            failed: progress.failed,
            done: progress.done(),
            total: progress.total,
            expected_finish_at: progress.expected_finish_at.map(Into::into),
            at: progress.at.into(),
        }
    }
}

#[derive(Default)]
pub struct SyncRunMutation;

#[Object]
impl SyncRunMutation {
    /// Queues a run of the sync config and returns it at once (a run already queued for the config is
    /// returned instead); follow it with `syncProgress` or `syncRuns`. `allowMassDelete` lets this run
    /// delete more mirrors than the mass-delete guard allows, and resumes a config paused by the guard.
    async fn trigger_sync(
        &self,
        ctx: &Context<'_>,
        config_id: ID,
        #[graphql(default_with = "Some(false)")] allow_mass_delete: Option<bool>,
    ) -> async_graphql::Result<SyncRun> {
        let state = ctx.state()?;
        let user_id = ctx.user_id()?;
        let config_id = parse_id(&config_id, "sync config")?;
        let run = runner::trigger(state, user_id, config_id, allow_mass_delete.unwrap_or(false)).await?;
        Ok(run.into())
    }
}

#[derive(Default)]
pub struct SyncSubscription;

#[Subscription]
impl SyncSubscription {
    /// Progress of the signed-in user's sync runs, as they execute on any server instance: of one
    /// config, or of all of them when `configId` is omitted.
    async fn sync_progress(
        &self,
        ctx: &Context<'_>,
        config_id: Option<ID>,
    ) -> async_graphql::Result<impl Stream<Item = SyncProgress> + use<>> {
        let state = ctx.state()?;
        let user_id = ctx.user_id()?;
        let config_id = match config_id {
            Some(id) => {
                let id = parse_id(&id, "sync config")?;
                configs::find_owned(&state.db, user_id, id).await?;
                Some(id)
            }
            None => None,
        };
        Ok(state
            .progress
            .subscribe(user_id, config_id)
            .map(|progress| SyncProgress::from(progress.as_ref())))
    }
}
