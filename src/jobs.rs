//! The database job queue: everything that runs in the background (push-triggered calendar refreshes,
//! periodic listings, channel renewal, sync runs) is a row in `jobs`, so several instances share the work
//! and a crash loses nothing.
//!
//! - Enqueue with [`JobQueue::enqueue`] (`state.jobs.enqueue(&state.db, ..)`, which also wakes this
//!   instance's idle workers) or [`enqueue`] (any connection, a transaction included). A QUEUED job with the
//!   same `dedupe_key` absorbs a new one; the key is cleared when the job is claimed, so a change arriving
//!   during a run queues exactly one follow-up.
//! - Jobs sharing a `concurrency_key` never run at the same time, on any instance: a partial unique index
//!   allows one RUNNING job per key, and a claim that meets it simply tries again.
//! - A worker leases the job it claims and extends the lease every third of it while the handler runs; a
//!   job whose lease expired (its instance died) is claimed again, and that claim counts as an attempt.
//! - Success: DONE, deleted a day later by the periodic `jobs.cleanup` (periodic jobs rely on those rows to
//!   run each slot once). Failure: QUEUED again after a capped, jittered exponential backoff
//!   ([`crate::backoff`]), or at the time an upstream's `Retry-After` named ([`JobFailure::Retry`] with
//!   `after`), until `max_attempts`, then FAILED (kept a week). [`JobFailure::Permanent`] skips the retries.
//! - Handlers register per kind in [`JobHandlers`]; the composition root (`app.rs`) gathers every domain's
//!   and starts the workers where `SCHEDULER_ENABLED`; every instance may enqueue. The queue knows no
//!   domain: handlers run with whatever context [`JobContext`] the application gives them.
//!
//! Times come from the instances' clocks: leases last tens of seconds, far above any sane skew.

mod queue;
mod worker;

use std::{collections::HashMap, fmt, future::Future, sync::Arc, time::Duration};

use async_trait::async_trait;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr};
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use uuid::Uuid;

pub use queue::{
    DONE_RETENTION, FAILED_RETENTION, KindDepth, claim, cleanup, complete, depth_by_kind, enqueue,
    extend_lease, give_up, reschedule, wait_idle,
};
pub use worker::{WorkerConfig, WorkerPool};

use crate::{entities::jobs, error::AppError};

/// What workers need from the application they run in: the database, this instance's queue, and the
/// shutdown signal and task tracker a graceful shutdown waits on. Handlers receive the context itself.
pub trait JobContext: Clone + Send + Sync + 'static {
    fn db(&self) -> &DatabaseConnection;
    fn job_queue(&self) -> &JobQueue;
    fn shutdown(&self) -> &CancellationToken;
    fn tasks(&self) -> &TaskTracker;
}

/// The queue's own housekeeping job.
pub const CLEANUP_KIND: &str = "jobs.cleanup";
const CLEANUP_EVERY: Duration = Duration::from_secs(3600);

/// Registers the queue's own jobs.
pub fn register<S: JobContext>(handlers: &mut JobHandlers<S>) {
    handlers
        .register(CLEANUP_KIND, CleanupJob)
        .schedule_every(CLEANUP_KIND, CLEANUP_EVERY, || json!({}));
}

struct CleanupJob;

#[async_trait]
impl<S: JobContext> JobHandler<S> for CleanupJob {
    async fn run(&self, state: &S, _job: &jobs::Model) -> Result<(), JobFailure> {
        let deleted = cleanup(state.db(), chrono::Utc::now()).await?;
        if deleted > 0 {
            tracing::info!(deleted, "finished jobs deleted");
        }
        Ok(())
    }
}

/// Attempts a job gets unless its enqueuer says otherwise.
pub const DEFAULT_MAX_ATTEMPTS: i32 = 5;

/// A job to enqueue. `NewJob::new(kind, payload)` runs once, now, with the default attempts.
#[derive(Debug, Clone)]
pub struct NewJob<'a> {
    pub kind: &'a str,
    pub payload: Value,
    /// While a QUEUED job holds this key, enqueueing another with it returns that job instead.
    pub dedupe_key: Option<String>,
    /// Jobs with the same key never run at the same time (e.g. one sync run per config).
    pub concurrency_key: Option<String>,
    pub run_at: chrono::DateTime<chrono::Utc>,
    pub max_attempts: i32,
}

impl<'a> NewJob<'a> {
    pub fn new(kind: &'a str, payload: Value) -> Self {
        Self {
            kind,
            payload,
            dedupe_key: None,
            concurrency_key: None,
            run_at: chrono::Utc::now(),
            max_attempts: DEFAULT_MAX_ATTEMPTS,
        }
    }

    pub fn dedupe_key(mut self, key: impl Into<String>) -> Self {
        self.dedupe_key = Some(key.into());
        self
    }

    pub fn concurrency_key(mut self, key: impl Into<String>) -> Self {
        self.concurrency_key = Some(key.into());
        self
    }

    pub fn run_at(mut self, at: chrono::DateTime<chrono::Utc>) -> Self {
        self.run_at = at;
        self
    }

    pub fn max_attempts(mut self, attempts: i32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }
}

/// What [`enqueue`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    Created(Uuid),
    /// A QUEUED job with the same dedupe key absorbed this one (its `run_at` moved earlier if this one's
    /// was earlier; its payload is kept).
    Coalesced(Uuid),
}

impl Enqueued {
    pub fn id(self) -> Uuid {
        match self {
            Self::Created(id) | Self::Coalesced(id) => id,
        }
    }
}

/// Why a handler did not finish. The message is stored in `last_error`: never put a secret in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobFailure {
    /// Worth another attempt: after the backoff, or no sooner than `after` when given (a Retry-After).
    Retry {
        message: String,
        after: Option<Duration>,
    },
    /// Another attempt would fail the same way: the job is FAILED at once.
    Permanent { message: String },
}

impl JobFailure {
    pub fn retry(message: impl Into<String>) -> Self {
        Self::Retry {
            message: message.into(),
            after: None,
        }
    }

    pub fn retry_after(message: impl Into<String>, after: Duration) -> Self {
        Self::Retry {
            message: message.into(),
            after: Some(after),
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self::Permanent {
            message: message.into(),
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Self::Retry { message, .. } | Self::Permanent { message } => message,
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Retry { .. })
    }
}

impl fmt::Display for JobFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// Domain errors keep their client-safe message (internal causes are logged, not stored). What the
/// user must fix (a lost grant, a missing calendar, bad input) is permanent; outages are retried.
impl From<AppError> for JobFailure {
    fn from(error: AppError) -> Self {
        let message = format!("{}: {}", error.code(), error.client_message());
        match error {
            AppError::RateLimited { retry_after_secs } | AppError::Overloaded { retry_after_secs } => {
                Self::retry_after(message, Duration::from_secs(retry_after_secs))
            }
            // Google said when to come back: the job waits in the queue, not in a worker.
            AppError::UpstreamBusy { retry_after } => Self::retry_after(message, retry_after),
            AppError::UpstreamUnavailable(_) | AppError::Internal(_) | AppError::Conflict(_) => {
                Self::retry(message)
            }
            AppError::Unauthenticated
            | AppError::Forbidden(_)
            | AppError::NotFound(_)
            | AppError::BadUserInput { .. }
            | AppError::NeedsReauth(_) => Self::permanent(message),
        }
    }
}

impl From<DbErr> for JobFailure {
    fn from(error: DbErr) -> Self {
        AppError::from(error).into()
    }
}

/// Runs the jobs of one kind. Handlers must be idempotent: a job whose worker died is run again.
#[async_trait]
pub trait JobHandler<S: Sync>: Send + Sync {
    async fn run(&self, state: &S, job: &jobs::Model) -> Result<(), JobFailure>;
}

/// A handler from an async closure taking owned values (handy for small handlers and tests).
pub struct FnHandler<F>(pub F);

#[async_trait]
impl<S, F, Fut> JobHandler<S> for FnHandler<F>
where
    S: Clone + Send + Sync,
    F: Fn(S, jobs::Model) -> Fut + Send + Sync,
    Fut: Future<Output = Result<(), JobFailure>> + Send,
{
    async fn run(&self, state: &S, job: &jobs::Model) -> Result<(), JobFailure> {
        (self.0)(state.clone(), job.clone()).await
    }
}

type PayloadFn = Arc<dyn Fn() -> Value + Send + Sync>;

/// A kind enqueued once per `every` (slots aligned on the Unix epoch), whatever the number of instances.
#[derive(Clone)]
pub struct Periodic {
    pub kind: String,
    pub every: Duration,
    payload: PayloadFn,
}

impl Periodic {
    pub fn payload(&self) -> Value {
        (self.payload)()
    }
}

/// The handlers a worker pool runs, by kind, and the periodic schedules it keeps.
pub struct JobHandlers<S> {
    handlers: HashMap<String, Arc<dyn JobHandler<S>>>,
    periodic: Vec<Periodic>,
}

impl<S> Default for JobHandlers<S> {
    fn default() -> Self {
        Self {
            handlers: HashMap::new(),
            periodic: Vec::new(),
        }
    }
}

impl<S: Clone + Send + Sync + 'static> JobHandlers<S> {
    /// Registers the handler of `kind`. Registering a kind twice is a programming error.
    pub fn register(&mut self, kind: &str, handler: impl JobHandler<S> + 'static) -> &mut Self {
        let previous = self.handlers.insert(kind.to_owned(), Arc::new(handler));
        assert!(previous.is_none(), "job kind {kind} registered twice");
        self
    }

    /// Registers an async closure as the handler of `kind` (see [`FnHandler`]).
    pub fn register_fn<F, Fut>(&mut self, kind: &str, handler: F) -> &mut Self
    where
        F: Fn(S, jobs::Model) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), JobFailure>> + Send + 'static,
    {
        self.register(kind, FnHandler(handler))
    }

    /// Enqueues `kind` once per `every` slot, with the payload `payload` makes. Each slot's job has an id
    /// derived from the kind and the slot, so N instances scheduling it insert one row; runs of the same
    /// kind never overlap. `kind` must also be registered.
    pub fn schedule_every(
        &mut self,
        kind: &str,
        every: Duration,
        payload: impl Fn() -> Value + Send + Sync + 'static,
    ) -> &mut Self {
        self.periodic.push(Periodic {
            kind: kind.to_owned(),
            every: every.max(Duration::from_millis(1)),
            payload: Arc::new(payload),
        });
        self
    }

    pub fn get(&self, kind: &str) -> Option<&Arc<dyn JobHandler<S>>> {
        self.handlers.get(kind)
    }

    /// The kinds registered, sorted.
    pub fn kinds(&self) -> Vec<String> {
        let mut kinds: Vec<String> = self.handlers.keys().cloned().collect();
        kinds.sort();
        kinds
    }

    pub fn periodic(&self) -> &[Periodic] {
        &self.periodic
    }
}

/// This instance's side of the queue, in the application state: its lease-owner identity and the signal
/// that wakes idle workers when this instance enqueues.
pub struct JobQueue {
    owner: String,
    wake: Arc<Notify>,
}

impl Default for JobQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl JobQueue {
    pub fn new() -> Self {
        Self {
            owner: Uuid::new_v4().to_string(),
            wake: Arc::new(Notify::new()),
        }
    }

    /// The `lease_owner` of the jobs this instance's workers hold.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// [`enqueue`], then wakes this instance's idle workers (other instances find it on their next poll).
    /// Inside a transaction, call [`enqueue`] and then [`JobQueue::wake`] after the commit.
    pub async fn enqueue<C: ConnectionTrait>(&self, db: &C, job: NewJob<'_>) -> Result<Enqueued, DbErr> {
        let enqueued = enqueue(db, job).await?;
        self.wake();
        Ok(enqueued)
    }

    /// Wakes this instance's idle workers so they look for due jobs now.
    pub fn wake(&self) {
        self.wake.notify_waiters();
    }

    fn wake_signal(&self) -> Arc<Notify> {
        self.wake.clone()
    }
}
