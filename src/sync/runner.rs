//! Sync runs: one run is one job (`sync.run`) executing one `sync_runs` row.
//!
//! Runs are queued by `triggerSync` ([`trigger`]), by the scheduler ([`super::schedule`]) and after a
//! calendar refresh found changes ([`enqueue_for_calendar`], called by the calendars domain). Every run of
//! a config shares the job keys `sync:<config id>`: a queued run absorbs the next ones (dedupe), and one
//! runs at a time across all instances (concurrency). A run taken over after its instance died (lease
//! expiry) continues the same row.
//!
//! A run: RUNNING; lists both calendars incrementally (a failed listing leaves that side incomplete, so
//! nothing is deleted on its account; a lost grant stops the run and marks the config NEEDS_REAUTH);
//! plans from the cache ([`super::planner`]); lets the executor apply the plan batch by batch; then
//! records the outcome: SUCCEEDED, PARTIAL (some writes failed or a side was not listed: retried next
//! run) or FAILED (grant lost, mass-delete guard, local failure). The mass-delete guard pauses the config
//! until `triggerSync` with the override.
//!
//! Progress goes out on the bus as the run goes (`Reporter`): the counts carry on from the row (a run
//! taken over keeps what it did), and the total is what was done before plus the new plan, so `done`
//! reaches it when the plan is applied.

pub mod quiet;
mod snapshot;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
};
use serde_json::json;
use uuid::Uuid;

use super::{
    configs,
    executor::{self, BatchObserver, ExecuteError, Execution, Tally},
    planner::{self, DeleteGuard, Halt, Plan, PlanConfig, PlanInput, Side, SideState},
};
use crate::{
    entities::{
        calendars,
        enums::{AccountStatus, SyncConfigStatus, SyncRunStatus, SyncTrigger},
        google_accounts, jobs, sync_configs, sync_runs,
    },
    error::{AppError, AppResult},
    google::CallCounter,
    jobs::{Enqueued, JobFailure, JobHandlers, NewJob},
    progress::{self, Phase, Progress, Throttle},
    state::AppState,
};

/// The job kind of a run.
pub const RUN_KIND: &str = "sync.run";

/// Attempts of a run's job (a crash mid-run is taken over by another worker).
const RUN_ATTEMPTS: i32 = 3;

/// Registers the run job.
pub fn register(handlers: &mut JobHandlers<AppState>) {
    handlers.register_fn(RUN_KIND, |state, job| async move { run_job(&state, &job).await });
}

/// The dedupe and concurrency key of a config's runs.
pub fn job_key(config_id: Uuid) -> String {
    format!("sync:{config_id}")
}

/// `triggerSync`: queues a run of the user's config (or returns the one already queued) and returns at
/// once. `allow_mass_delete` lets the run past the mass-delete guard (and un-pauses the config).
pub async fn trigger(
    state: &AppState,
    user_id: Uuid,
    config_id: Uuid,
    allow_mass_delete: bool,
) -> AppResult<sync_runs::Model> {
    configs::find_owned(&state.db, user_id, config_id).await?;
    let txn = crate::db::begin_write(&state.db).await?;
    let run = enqueue(&txn, config_id, SyncTrigger::Manual, allow_mass_delete).await?;
    txn.commit().await?;
    state.jobs.wake();
    Ok(run)
}

/// A new run row of `config_id`, queued, with every counter at zero.
pub fn queued_run(config_id: Uuid, trigger: SyncTrigger, allow_mass_delete: bool) -> sync_runs::ActiveModel {
    sync_runs::ActiveModel {
        id: Set(Uuid::now_v7()),
        config_id: Set(config_id),
        trigger: Set(trigger),
        status: Set(SyncRunStatus::Queued),
        started_at: Set(None),
        finished_at: Set(None),
        created: Set(0),
        updated: Set(0),
        deleted: Set(0),
        skipped: Set(0),
        failed: Set(0),
        google_calls: Set(0),
        conflicts: Set(0),
        error: Set(None),
        allow_mass_delete: Set(allow_mass_delete),
        created_at: Set(Utc::now()),
    }
}

/// Queues a run of `config_id` on `db` (a transaction: the run row and its job appear together). When a
/// run is already queued it absorbs this one and is returned (with the override added if asked). Wake the
/// workers (`state.jobs.wake()`) after the commit.
pub async fn enqueue<C: ConnectionTrait>(
    db: &C,
    config_id: Uuid,
    trigger: SyncTrigger,
    allow_mass_delete: bool,
) -> AppResult<sync_runs::Model> {
    let run = queued_run(config_id, trigger, allow_mass_delete)
        .insert(db)
        .await?;
    let run_id = run.id;
    let key = job_key(config_id);
    let job = NewJob::new(RUN_KIND, json!({ "runId": run_id, "configId": config_id }))
        .dedupe_key(key.clone())
        .concurrency_key(key)
        .max_attempts(RUN_ATTEMPTS);
    let job_id = match crate::jobs::enqueue(db, job).await? {
        Enqueued::Created(_) => return Ok(run),
        Enqueued::Coalesced(job_id) => job_id,
    };
    sync_runs::Entity::delete_by_id(run_id).exec(db).await?;
    let queued = jobs::Entity::find_by_id(job_id)
        .one(db)
        .await?
        .and_then(|job| payload_id(&job, "runId"))
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("queued sync job {job_id} has no run")))?;
    let mut holder = sync_runs::Entity::find_by_id(queued)
        .one(db)
        .await?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("queued sync run {queued} is missing")))?;
    if allow_mass_delete && !holder.allow_mass_delete {
        sync_runs::Entity::update_many()
            .col_expr(sync_runs::Column::AllowMassDelete, true.into())
            .filter(sync_runs::Column::Id.eq(holder.id))
            .exec(db)
            .await?;
        holder.allow_mass_delete = true;
    }
    Ok(holder)
}

/// After a refresh of `calendar_id` found changes (a push notification, or the sweep): queues a PUSH run
/// of every enabled config with that calendar on either side (coalesced with a queued run). Returns how
/// many configs got one.
pub async fn enqueue_for_calendar(state: &AppState, calendar_id: Uuid) -> AppResult<usize> {
    let configs = sync_configs::Entity::find()
        .filter(sync_configs::Column::Enabled.eq(true))
        .filter(sync_configs::Column::Status.ne(SyncConfigStatus::Paused))
        .filter(
            Condition::any()
                .add(sync_configs::Column::SourceCalendarId.eq(calendar_id))
                .add(sync_configs::Column::DestinationCalendarId.eq(calendar_id)),
        )
        .all(&state.db)
        .await?;
    let mut queued = 0;
    for config in configs {
        if !runnable(&state.db, &config).await? {
            continue;
        }
        let txn = crate::db::begin_write(&state.db).await?;
        enqueue(&txn, config.id, SyncTrigger::Push, false).await?;
        txn.commit().await?;
        queued += 1;
    }
    if queued > 0 {
        state.jobs.wake();
    }
    Ok(queued)
}

/// Whether automatic runs may start: ACTIVE, or NEEDS_REAUTH with both accounts connected again.
pub(super) async fn runnable<C: ConnectionTrait>(db: &C, config: &sync_configs::Model) -> AppResult<bool> {
    Ok(match config.status {
        SyncConfigStatus::Active => true,
        SyncConfigStatus::Paused => false,
        SyncConfigStatus::NeedsReauth => reauth_needed(db, config).await?.is_none(),
    })
}

/// The email of an account of the config that must be connected again, if any.
async fn reauth_needed<C: ConnectionTrait>(
    db: &C,
    config: &sync_configs::Model,
) -> AppResult<Option<String>> {
    let calendar_ids = [config.source_calendar_id, config.destination_calendar_id];
    let accounts = calendars::Entity::find()
        .filter(calendars::Column::Id.is_in(calendar_ids))
        .find_also_related(google_accounts::Entity)
        .all(db)
        .await?;
    Ok(accounts
        .into_iter()
        .filter_map(|(_, account)| account)
        .find(|account| account.status == AccountStatus::NeedsReauth)
        .map(|account| account.email))
}

fn payload_id(job: &jobs::Model, field: &str) -> Option<Uuid> {
    job.payload[field]
        .as_str()
        .and_then(|raw| Uuid::parse_str(raw).ok())
}

async fn run_job(state: &AppState, job: &jobs::Model) -> Result<(), JobFailure> {
    let run_id = payload_id(job, "runId").ok_or_else(|| JobFailure::permanent("payload has no runId"))?;
    if let Err(error) = execute(state, run_id).await {
        // The run is over either way: record why, so it never stays RUNNING.
        let message = format!("{}: {}", error.code(), error.client_message());
        tracing::warn!(%run_id, error = %message, "sync run failed");
        if let Some(run) = sync_runs::Entity::find_by_id(run_id).one(&state.db).await? {
            let run = finish(state, &run, SyncRunStatus::Failed, Some(message)).await?;
            if let Some(config) = sync_configs::Entity::find_by_id(run.config_id)
                .one(&state.db)
                .await?
            {
                Reporter::new(state, config.user_id, &run)
                    .finish(Phase::Failed, &run)
                    .await;
            }
        }
    }
    Ok(())
}

/// What the run is about: its config and both calendars.
struct Subject {
    config: sync_configs::Model,
    source: calendars::Model,
    destination: calendars::Model,
}

/// Executes one run; `Err` only for local failures (the run is then recorded FAILED by the caller).
pub async fn execute(state: &AppState, run_id: Uuid) -> AppResult<()> {
    let Some(run) = sync_runs::Entity::find_by_id(run_id).one(&state.db).await? else {
        // Its config was deleted meanwhile (runs go with it).
        return Ok(());
    };
    if !matches!(run.status, SyncRunStatus::Queued | SyncRunStatus::Running) {
        return Ok(());
    }
    let Some(subject) = load_subject(state, run.config_id).await? else {
        return Ok(());
    };
    let config = &subject.config;
    let run = mark_running(state, run).await?;
    let reporter = Reporter::new(state, config.user_id, &run);
    reporter.send(Phase::Started).await;
    tracing::info!(%run_id, config_id = %config.id, trigger = ?run.trigger, "sync run started");

    if let Some(email) = reauth_needed(&state.db, config).await? {
        return needs_reauth(state, &run, &reporter, config, &email).await;
    }

    reporter.send(Phase::Listing).await;
    let timer = std::time::Instant::now();
    let (source_listing, destination_listing) = tokio::join!(
        crate::calendars::refresh_events(state, subject.source.id),
        crate::calendars::refresh_events(state, subject.destination.id),
    );
    let mut listing_calls = 0;
    let mut problems = Vec::new();
    let mut complete = [true, true];
    for (i, (side, listing)) in [
        (Side::Source, source_listing),
        (Side::Destination, destination_listing),
    ]
    .into_iter()
    .enumerate()
    {
        match listing {
            Ok(outcome) => listing_calls += outcome.google_calls,
            Err(AppError::NeedsReauth(_)) => {
                let email = reauth_needed(&state.db, config)
                    .await?
                    .unwrap_or_else(|| format!("of the {} calendar", side_name(side)));
                return needs_reauth(state, &run, &reporter, config, &email).await;
            }
            Err(error) => {
                complete[i] = false;
                problems.push(format!(
                    "the {} calendar could not be listed ({}); no deletion was decided from it",
                    side_name(side),
                    error.client_message()
                ));
            }
        }
    }
    executor::add_to_run(&state.db, run.id, Tally::default(), listing_calls).await?;

    let now = Utc::now();
    if complete == [true, true]
        && let Some(previous) = quiet::unchanged_since_last_run(&state.db, config, run.id, now).await?
    {
        // The last run planned nothing and nothing it read has changed since: the plan would be empty.
        record_plan_counts(state, run.id, u32::try_from(previous.skipped).unwrap_or(0), 0).await?;
        reporter.nothing_to_apply().await;
        let run = finish(state, &run, SyncRunStatus::Succeeded, None).await?;
        reporter.finish(Phase::Finished, &run).await;
        tracing::info!(%run_id, google_calls = run.google_calls, "sync run finished: nothing changed");
        return Ok(());
    }
    let plan_config = PlanConfig::from_model(config);
    let listed_ms = timer.elapsed().as_millis();
    let snapshot = snapshot::load(
        &state.db,
        config.id,
        &subject.source,
        &subject.destination,
        plan_config.window(now),
    )
    .await?;
    let loaded_ms = timer.elapsed().as_millis();
    let cipher = state.cipher.clone();
    let user_id = config.user_id;
    let time_zones = (
        subject.source.time_zone.clone(),
        subject.destination.time_zone.clone(),
    );
    let allow_mass_delete = run.allow_mass_delete;
    let guard = DeleteGuard::from(state.settings.mass_delete);
    let plan = tokio::task::spawn_blocking(move || -> AppResult<Plan> {
        let input = PlanInput {
            config: plan_config,
            now,
            source: SideState {
                events: snapshot::decode(&cipher, user_id, snapshot.source)?,
                complete: complete[0],
                time_zone: time_zones.0,
            },
            destination: SideState {
                events: snapshot::decode(&cipher, user_id, snapshot.destination)?,
                complete: complete[1],
                time_zone: time_zones.1,
            },
            links: snapshot.links,
            guard,
            allow_mass_delete,
        };
        Ok(planner::plan(&input))
    })
    .await
    .map_err(|e| AppError::internal(anyhow::anyhow!("sync planner task: {e}")))??;
    record_plan_counts(state, run.id, plan.counts.skipped, plan.counts.conflicts).await?;
    tracing::debug!(
        %run_id,
        operations = plan.operations.len(),
        link_changes = plan.link_changes.len(),
        halted = plan.halted.is_some(),
        listed_ms,
        loaded_ms,
        planned_ms = timer.elapsed().as_millis(),
        "sync plan made"
    );

    reporter.applying(plan.operations.len()).await;
    let counter = CallCounter::new();
    let execution = Execution {
        state,
        user_id: config.user_id,
        config_id: config.id,
        run_id: run.id,
        source: &subject.source,
        destination: &subject.destination,
        counter: &counter,
    };
    let landed = match reporter.keeping_alive(execution.run(&plan, 0, &reporter)).await {
        Ok(tally) => tally,
        Err(ExecuteError::NeedsReauth { side, .. }) => {
            let email = reauth_needed(&state.db, config)
                .await?
                .unwrap_or_else(|| format!("of the {} calendar", side_name(side)));
            return needs_reauth(state, &run, &reporter, config, &email).await;
        }
        Err(ExecuteError::Local(error)) => return Err(error),
    };

    if let Some(Halt::MassDelete {
        would_delete,
        mirrors,
    }) = plan.halted
    {
        let reason = format!(
            "Paused by the mass-delete guard: this run would delete {would_delete} of {mirrors} mirrored \
             events. Nothing was deleted; run triggerSync with allowMassDelete: true to proceed."
        );
        configs::pause(&state.db, config.id, reason.clone()).await?;
        let run = finish(state, &run, SyncRunStatus::Failed, Some(reason)).await?;
        reporter.finish(Phase::Failed, &run).await;
        tracing::warn!(%run_id, config_id = %config.id, would_delete, mirrors, "sync run halted by the mass-delete guard");
        return Ok(());
    }
    if config.status != SyncConfigStatus::Active {
        configs::resume(&state.db, config.id).await?;
    }
    if landed.failed > 0 {
        problems.push(format!(
            "{} change(s) failed at Google; the next run tries them again",
            landed.failed
        ));
    }
    let status = if problems.is_empty() {
        SyncRunStatus::Succeeded
    } else {
        SyncRunStatus::Partial
    };
    let error = (!problems.is_empty()).then(|| problems.join("; "));
    let run = finish(state, &run, status, error).await?;
    reporter.finish(Phase::Finished, &run).await;
    tracing::info!(
        %run_id,
        status = ?run.status,
        created = run.created,
        updated = run.updated,
        deleted = run.deleted,
        failed = run.failed,
        google_calls = run.google_calls,
        "sync run finished"
    );
    Ok(())
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Source => "source",
        Side::Destination => "destination",
    }
}

async fn load_subject(state: &AppState, config_id: Uuid) -> AppResult<Option<Subject>> {
    let Some(config) = sync_configs::Entity::find_by_id(config_id).one(&state.db).await? else {
        return Ok(None);
    };
    let source = calendars::Entity::find_by_id(config.source_calendar_id)
        .one(&state.db)
        .await?;
    let destination = calendars::Entity::find_by_id(config.destination_calendar_id)
        .one(&state.db)
        .await?;
    Ok(match (source, destination) {
        (Some(source), Some(destination)) => Some(Subject {
            config,
            source,
            destination,
        }),
        // A calendar removed at Google takes its configs along (cascade): nothing left to run.
        _ => None,
    })
}

/// The grant of `email` is gone: the run stops there (nothing is decided from a side that cannot be
/// listed) and the config waits for the account to be connected again.
async fn needs_reauth(
    state: &AppState,
    run: &sync_runs::Model,
    reporter: &Reporter<'_>,
    config: &sync_configs::Model,
    email: &str,
) -> AppResult<()> {
    let reason = format!(
        "The Google account {email} must be connected again; the run stopped, and runs resume once it is."
    );
    configs::mark_needs_reauth(&state.db, config.id, reason.clone()).await?;
    let run = finish(state, run, SyncRunStatus::Failed, Some(reason)).await?;
    reporter.finish(Phase::Failed, &run).await;
    tracing::warn!(run_id = %run.id, config_id = %config.id, "sync run stopped: a Google grant is gone");
    Ok(())
}

async fn mark_running(state: &AppState, run: sync_runs::Model) -> AppResult<sync_runs::Model> {
    let started_at = run.started_at.unwrap_or_else(Utc::now);
    let mut active: sync_runs::ActiveModel = run.into();
    active.status = Set(SyncRunStatus::Running);
    active.started_at = Set(Some(started_at));
    Ok(active.update(&state.db).await?)
}

async fn record_plan_counts(state: &AppState, run_id: Uuid, skipped: u32, conflicts: u32) -> AppResult<()> {
    let as_i32 = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
    sync_runs::Entity::update_many()
        .col_expr(sync_runs::Column::Skipped, as_i32(skipped).into())
        .col_expr(sync_runs::Column::Conflicts, as_i32(conflicts).into())
        .filter(sync_runs::Column::Id.eq(run_id))
        .exec(&state.db)
        .await?;
    Ok(())
}

/// Records the end of a run; returns the row as finished.
async fn finish(
    state: &AppState,
    run: &sync_runs::Model,
    status: SyncRunStatus,
    error: Option<String>,
) -> AppResult<sync_runs::Model> {
    sync_runs::Entity::update_many()
        .col_expr(sync_runs::Column::Status, status.into())
        .col_expr(sync_runs::Column::FinishedAt, Some(Utc::now()).into())
        .col_expr(sync_runs::Column::Error, error.into())
        .filter(sync_runs::Column::Id.eq(run.id))
        .exec(&state.db)
        .await?;
    let elapsed = run
        .started_at
        .and_then(|started| (Utc::now() - started).to_std().ok());
    crate::metrics::sync_run_finished(outcome_label(status), elapsed);
    sync_runs::Entity::find_by_id(run.id)
        .one(&state.db)
        .await?
        .ok_or(AppError::NotFound("sync run"))
}

/// The `outcome` label of a finished run.
fn outcome_label(status: SyncRunStatus) -> &'static str {
    match status {
        SyncRunStatus::Succeeded => "succeeded",
        SyncRunStatus::Partial => "partial",
        SyncRunStatus::Failed => "failed",
        SyncRunStatus::Queued | SyncRunStatus::Running => "unfinished",
    }
}

/// Sends a run's progress messages: APPLYING throttled to a few per second, with the latest state sent
/// again when a message was held back or the run went quiet ([`Reporter::keeping_alive`]).
struct Reporter<'a> {
    state: &'a AppState,
    user_id: Uuid,
    run_id: Uuid,
    config_id: Uuid,
    /// What the row counted before this attempt (a run taken over after a crash).
    base: Tally,
    /// Held while a message goes out, so messages leave in order and `done` never goes back.
    course: tokio::sync::Mutex<Course>,
}

/// What the run's messages say, as it goes.
#[derive(Default)]
struct Course {
    throttle: Throttle,
    /// What this attempt landed so far.
    landed: Tally,
    /// Changes in all: done before this attempt plus this attempt's plan.
    total: Option<i32>,
    /// When this attempt began applying, and the changes done then (the estimate's rate starts there).
    applying_since: Option<(DateTime<Utc>, i32)>,
}

impl<'a> Reporter<'a> {
    fn new(state: &'a AppState, user_id: Uuid, run: &sync_runs::Model) -> Self {
        Self {
            state,
            user_id,
            run_id: run.id,
            config_id: run.config_id,
            base: Tally {
                created: run.created,
                updated: run.updated,
                deleted: run.deleted,
                failed: run.failed,
            },
            course: tokio::sync::Mutex::new(Course::default()),
        }
    }

    fn message(&self, phase: Phase, counts: Tally, course: &Course, at: DateTime<Utc>) -> Progress {
        let mut progress = Progress {
            user_id: self.user_id,
            run_id: self.run_id,
            config_id: self.config_id,
            phase,
            created: counts.created,
            updated: counts.updated,
            deleted: counts.deleted,
            failed: counts.failed,
            total: course.total,
            expected_finish_at: None,
            at,
        };
        if phase == Phase::Applying
            && let Some((since, done_then)) = course.applying_since
        {
            progress.expected_finish_at =
                progress::expected_finish(since, done_then, at, progress.done(), course.total);
        }
        progress
    }

    fn counts(&self, course: &Course) -> Tally {
        let mut counts = self.base;
        counts.add(course.landed);
        counts
    }

    async fn send(&self, phase: Phase) {
        let course = self.course.lock().await;
        self.send_locked(phase, &course).await;
    }

    async fn send_locked(&self, phase: Phase, course: &Course) {
        let progress = self.message(phase, self.counts(course), course, Utc::now());
        self.state.progress.publish(progress).await;
    }

    /// The plan is made: `operations` changes to apply from now on. Announces APPLYING with the total.
    async fn applying(&self, operations: usize) {
        let mut course = self.course.lock().await;
        let before = self.base.done();
        course.total = Some(before.saturating_add(i32::try_from(operations).unwrap_or(i32::MAX)));
        course.applying_since = Some((Utc::now(), before));
        course.throttle.allow(Phase::Applying, std::time::Instant::now());
        self.send_locked(Phase::Applying, &course).await;
    }

    /// Nothing to apply: the total is what was done before (no message; the last one follows).
    async fn nothing_to_apply(&self) {
        self.course.lock().await.total = Some(self.base.done());
    }

    /// Runs `work` (the executor), sending the latest state when the throttle held a message back or
    /// nothing went out for a while: a long run paced by Google's quotas keeps reporting between batches.
    async fn keeping_alive<T>(&self, work: impl Future<Output = T>) -> T {
        let mut checks = tokio::time::interval(progress::KEEPALIVE_CHECK);
        checks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut work = std::pin::pin!(work);
        loop {
            tokio::select! {
                biased;
                out = &mut work => return out,
                _ = checks.tick() => {
                    // `work` is not polled meanwhile: if it holds the lock (a message going out), this
                    // check has nothing to add.
                    let Ok(mut course) = self.course.try_lock() else { continue };
                    if course.throttle.keepalive(std::time::Instant::now()) {
                        self.send_locked(Phase::Applying, &course).await;
                    }
                }
            }
        }
    }

    /// The last message, with the run row's final counts.
    async fn finish(&self, phase: Phase, run: &sync_runs::Model) {
        let course = self.course.lock().await;
        let counts = Tally {
            created: run.created,
            updated: run.updated,
            deleted: run.deleted,
            failed: run.failed,
        };
        let progress = self.message(phase, counts, &course, Utc::now());
        self.state.progress.publish(progress).await;
    }
}

impl BatchObserver for Reporter<'_> {
    async fn landed(&self, totals: Tally) {
        let mut course = self.course.lock().await;
        course.landed = totals;
        if course.throttle.allow(Phase::Applying, std::time::Instant::now()) {
            self.send_locked(Phase::Applying, &course).await;
        }
    }
}
