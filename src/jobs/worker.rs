//! Workers: claim a due job, run its handler while a heartbeat keeps the lease, record the outcome. And the
//! periodic schedulers, which enqueue each slot's job ahead of time.

use std::{panic::AssertUnwindSafe, sync::Arc, time::Duration};

use chrono::{DateTime, TimeDelta, Utc};
use futures::FutureExt;
use sea_orm::{DatabaseConnection, DbErr};
use tokio::{sync::Notify, time::Instant};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::Instrument;

use super::{
    JobContext, JobFailure, JobHandlers, Periodic,
    queue::{claim, complete, enqueue_slot, extend_lease, give_up, reschedule},
};
use crate::{
    backoff::{ExponentialBackoff, Jitter},
    entities::jobs,
};

/// How a worker pool behaves. The defaults suit production; tests shorten everything.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Jobs this instance runs at once.
    pub workers: usize,
    /// How often an idle worker looks for due jobs (±25 % jitter, so instances spread out); an enqueue on
    /// this instance wakes it at once.
    pub poll_interval: Duration,
    /// How long a claim holds a job without news from its worker; the worker extends it every third.
    pub lease: Duration,
    /// The first retry's delay, doubled per attempt up to `backoff_max`, then jittered (see
    /// [`WorkerConfig::backoff`]).
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            workers: 4,
            poll_interval: Duration::from_millis(200),
            lease: Duration::from_secs(30),
            backoff_base: Duration::from_secs(5),
            backoff_max: Duration::from_secs(15 * 60),
        }
    }
}

impl WorkerConfig {
    /// The delay before a failed job's next attempt: the shared exponential backoff with "equal jitter"
    /// (between half and all of the ceiling), so retries of a burst spread out without coming back at
    /// once, nor much sooner than the ceiling.
    pub fn backoff(&self) -> ExponentialBackoff {
        ExponentialBackoff::new(self.backoff_base, self.backoff_max, Jitter::Equal)
    }
}

/// Which retry a failed attempt number `attempt` (1-based) leads to (0-based, as the backoff counts).
fn retry_of(attempt: i32) -> u32 {
    u32::try_from(attempt.saturating_sub(1)).unwrap_or(0)
}

/// A set of workers (and periodic schedulers) sharing one handler registry. They stop on the context's
/// shutdown signal or [`WorkerPool::stop`], each after finishing its current job; the context's task
/// tracker tracks them so a graceful shutdown waits for them.
pub struct WorkerPool {
    stop: CancellationToken,
    tracker: TaskTracker,
}

impl WorkerPool {
    /// Starts `config.workers` workers claiming the kinds `handlers` knows, as this instance's lease owner
    /// (`state.job_queue().owner()`), woken by its enqueues; and one scheduler per periodic kind.
    pub fn start<S: JobContext>(state: &S, handlers: Arc<JobHandlers<S>>, config: WorkerConfig) -> Self {
        let stop = state.shutdown().child_token();
        let tracker = TaskTracker::new();
        let kinds: Arc<[String]> = handlers.kinds().into();
        let wake = state.job_queue().wake_signal();
        for _ in 0..config.workers.max(1) {
            let worker = Worker {
                state: state.clone(),
                handlers: handlers.clone(),
                kinds: kinds.clone(),
                config: config.clone(),
                wake: wake.clone(),
                stop: stop.clone(),
            };
            tokio::spawn(state.tasks().track_future(tracker.track_future(worker.run())));
        }
        for periodic in handlers.periodic() {
            if handlers.get(&periodic.kind).is_none() {
                tracing::error!(kind = %periodic.kind, "periodic job kind has no handler; not scheduled");
                continue;
            }
            let scheduler = schedule(state.db().clone(), periodic.clone(), wake.clone(), stop.clone());
            tokio::spawn(state.tasks().track_future(tracker.track_future(scheduler)));
        }
        tracker.close();
        Self { stop, tracker }
    }

    /// Stops the pool and waits for the jobs in flight to finish.
    pub async fn stop(self) {
        self.stop.cancel();
        self.tracker.wait().await;
    }
}

struct Worker<S> {
    state: S,
    handlers: Arc<JobHandlers<S>>,
    kinds: Arc<[String]>,
    config: WorkerConfig,
    wake: Arc<Notify>,
    stop: CancellationToken,
}

/// Lease renewals per lease length.
const HEARTBEATS_PER_LEASE: u32 = 5;

/// Stored in `last_error` of a job whose last attempt's worker vanished.
const ABANDONED: &str = "its worker stopped during the last attempt (the lease expired)";

impl<S: JobContext> Worker<S> {
    async fn run(self) {
        let owner = self.state.job_queue().owner().to_owned();
        loop {
            // Listen before looking, so an enqueue between the claim and the wait is not missed.
            let woken = self.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if self.stop.is_cancelled() {
                return;
            }
            match claim(self.state.db(), &owner, &self.kinds, self.config.lease).await {
                Ok(Some(job)) => {
                    let span =
                        tracing::info_span!("job", id = %job.id, kind = %job.kind, attempt = job.attempts);
                    self.execute(job).instrument(span).await;
                    continue;
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "claiming a job failed"),
            }
            tokio::select! {
                () = self.stop.cancelled() => return,
                () = woken => {}
                () = tokio::time::sleep(jittered(self.config.poll_interval)) => {}
            }
        }
    }

    async fn execute(&self, job: jobs::Model) {
        let db = self.state.db();
        if job.attempts > job.max_attempts {
            report(give_up(db, &job, ABANDONED).await);
            tracing::warn!("job failed: {ABANDONED}");
            return;
        }
        let Some(handler) = self.handlers.get(&job.kind).cloned() else {
            // Unreachable in practice: workers claim only the kinds they have handlers for.
            report(give_up(db, &job, "no handler for this kind").await);
            return;
        };
        let outcome = tokio::select! {
            outcome = AssertUnwindSafe(handler.run(&self.state, &job)).catch_unwind() => outcome,
            // The job belongs to another worker now: stop here so two never run it at once.
            () = self.heartbeat(&job) => {
                tracing::warn!("lease lost while running; the job was left to its new holder");
                return;
            }
        };
        let settled = match outcome {
            Ok(Ok(())) => complete(db, &job).await,
            Ok(Err(failure)) => self.settle_failure(&job, &failure).await,
            Err(_) => {
                tracing::error!("job handler panicked");
                self.settle_failure(&job, &JobFailure::retry("the handler panicked"))
                    .await
            }
        };
        report(settled);
    }

    async fn settle_failure(&self, job: &jobs::Model, failure: &JobFailure) -> Result<bool, DbErr> {
        let db = self.state.db();
        if !failure.is_retryable() || job.attempts >= job.max_attempts {
            tracing::warn!(error = failure.message(), "job failed");
            return give_up(db, job, failure.message()).await;
        }
        let delay = match failure {
            JobFailure::Retry {
                after: Some(after), ..
            } => *after,
            _ => self.config.backoff().delay(retry_of(job.attempts)),
        };
        let run_at = Utc::now()
            + TimeDelta::from_std(delay)
                .unwrap_or(TimeDelta::days(1))
                .min(TimeDelta::days(1));
        tracing::info!(
            error = failure.message(),
            retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            "job attempt failed; retrying later"
        );
        reschedule(db, job, run_at, failure.message()).await
    }

    /// Extends the lease every fifth of it, so a slow database or a busy machine has four chances before
    /// the lease runs out. Returns only when the lease is lost: taken over, or unrenewable (database
    /// unreachable) until it ran out.
    async fn heartbeat(&self, job: &jobs::Model) {
        let lease = self.config.lease;
        let mut held_until = Instant::now() + lease;
        loop {
            tokio::time::sleep(lease / HEARTBEATS_PER_LEASE).await;
            let asked = Instant::now();
            match extend_lease(self.state.db(), job, lease).await {
                Ok(true) => held_until = asked + lease,
                Ok(false) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "extending a job lease failed");
                    if Instant::now() >= held_until {
                        return;
                    }
                }
            }
        }
    }
}

/// Logs an outcome that could not be recorded; the job is then settled by lease expiry.
fn report(settled: Result<bool, DbErr>) {
    match settled {
        Ok(true) => {}
        Ok(false) => tracing::warn!("the lease was lost before the outcome was recorded; outcome ignored"),
        Err(e) => {
            tracing::warn!(error = %e, "recording a job outcome failed; it runs again when its lease expires")
        }
    }
}

fn jittered(interval: Duration) -> Duration {
    interval.mul_f64(rand::random_range(0.75..1.25))
}

/// Keeps the next slot of `periodic` enqueued: each instance inserts the slot's job (same id everywhere,
/// so one row) before the slot starts, sleeps until it starts, then wakes the local workers.
async fn schedule(db: DatabaseConnection, periodic: Periodic, wake: Arc<Notify>, stop: CancellationToken) {
    loop {
        let slot = next_slot(Utc::now(), periodic.every);
        let until_slot = (slot - Utc::now()).to_std().unwrap_or_default();
        let wait = match enqueue_slot(&db, &periodic, slot).await {
            Ok(_) => until_slot,
            Err(e) => {
                tracing::warn!(kind = %periodic.kind, error = %e, "scheduling a periodic job failed");
                until_slot.min(Duration::from_secs(1))
            }
        };
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(wait) => wake.notify_waiters(),
        }
    }
}

/// The first slot boundary after `now`; slots of `every` are aligned on the Unix epoch so every instance
/// computes the same ones.
pub(super) fn next_slot(now: DateTime<Utc>, every: Duration) -> DateTime<Utc> {
    let every_ms = i64::try_from(every.as_millis()).unwrap_or(i64::MAX).max(1);
    let next = now
        .timestamp_millis()
        .div_euclid(every_ms)
        .saturating_add(1)
        .saturating_mul(every_ms);
    DateTime::from_timestamp_millis(next).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::queue::slot_job_id;

    #[test]
    fn job_retries_back_off_from_the_config_and_keep_at_least_half() {
        let config = WorkerConfig {
            backoff_base: Duration::from_secs(5),
            backoff_max: Duration::from_secs(60),
            ..WorkerConfig::default()
        };
        for _ in 0..200 {
            for (attempt, ceiling) in [(1, 5), (2, 10), (3, 20), (4, 40), (5, 60), (40, 60)] {
                let delay = config.backoff().delay(retry_of(attempt));
                let ceiling = Duration::from_secs(ceiling);
                assert!(
                    delay >= ceiling / 2 && delay <= ceiling,
                    "attempt {attempt}: {delay:?}"
                );
            }
        }
        // Attempt numbers below one (never stored, but not trusted) count as the first.
        assert_eq!(retry_of(0), 0);
        assert_eq!(retry_of(-3), 0);
    }

    #[test]
    fn slots_are_aligned_and_strictly_after_now() {
        let every = Duration::from_secs(600);
        let now = DateTime::from_timestamp(1_800_000_123, 0).unwrap();
        let slot = next_slot(now, every);
        assert_eq!(slot.timestamp() % 600, 0);
        assert!(slot > now && slot - now <= TimeDelta::seconds(600));
        // On a boundary, the next one.
        assert_eq!(next_slot(slot, every), slot + TimeDelta::seconds(600));
    }

    #[test]
    fn slot_job_ids_are_stable_per_kind_and_slot() {
        let slot = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        assert_eq!(slot_job_id("a", slot), slot_job_id("a", slot));
        assert_ne!(slot_job_id("a", slot), slot_job_id("b", slot));
        assert_ne!(
            slot_job_id("a", slot),
            slot_job_id("a", slot + TimeDelta::seconds(1))
        );
    }
}
