//! GraphQL of sync runs in motion: `triggerSync` and the `syncProgress` subscription.

use crate::graphql::scalars::DateTime as GqlDateTime;
use async_graphql::{Context, Enum, ID, Object, SimpleObject, Subscription};
use futures::{Stream, stream};
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use super::{SyncRun, configs, run};
use crate::{
    accounts::parse_id,
    progress::{self, Progress},
    session::Viewer,
    state::AppState,
};

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
        let state = ctx.data::<AppState>()?;
        let user_id = ctx.data::<Viewer>()?.require_user()?;
        let config_id = parse_id(&config_id, "sync config")?;
        let run = run::trigger(state, user_id, config_id, allow_mass_delete.unwrap_or(false)).await?;
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
        let state = ctx.data::<AppState>()?;
        let user_id = ctx.data::<Viewer>()?.require_user()?;
        let config_id = match config_id {
            Some(id) => {
                let id = parse_id(&id, "sync config")?;
                configs::find_owned(&state.db, user_id, id).await?;
                Some(id)
            }
            None => None,
        };
        let receiver = state.progress.subscribe();
        Ok(stream::unfold(receiver, move |mut receiver| async move {
            loop {
                match receiver.recv().await {
                    Ok(progress) if wanted(&progress, user_id, config_id) => {
                        return Some((SyncProgress::from(progress.as_ref()), receiver));
                    }
                    Ok(_) => {}
                    // A slow subscriber skips what it missed; the run row holds the totals.
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return None,
                }
            }
        }))
    }
}

fn wanted(progress: &Progress, user_id: Uuid, config_id: Option<Uuid>) -> bool {
    progress.user_id == user_id && config_id.is_none_or(|id| id == progress.config_id)
}
