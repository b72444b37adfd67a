//! The queue's SQL: enqueue, claim, lease extension, settlement, cleanup.
//!
//! Every statement is one atomic step, so instances need no other coordination. Raw SQL uses `$n`
//! placeholders, which both PostgreSQL and SQLite (through sqlx) accept.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbBackend, DbErr, EntityTrait,
    FromQueryResult, PaginatorTrait, QueryFilter, SqlErr, Statement, Value,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{Enqueued, NewJob, Periodic};
use crate::entities::{enums::JobStatus, jobs};

/// How long DONE jobs stay (periodic slots rely on them to run once).
pub const DONE_RETENTION: TimeDelta = TimeDelta::days(1);
/// How long FAILED jobs stay for inspection.
pub const FAILED_RETENTION: TimeDelta = TimeDelta::days(7);

/// `last_error` is for people: a bounded excerpt is enough.
const MAX_ERROR_CHARS: usize = 1000;

/// Rounds of "insert, else read the holder of the key" before giving up; a round is lost only when the
/// holder is claimed between the two statements.
const ENQUEUE_ROUNDS: usize = 8;

/// Claims that may meet the concurrency index (another instance took the same key at the same moment).
const CLAIM_ROUNDS: usize = 8;

/// Adds a job, or returns the QUEUED job already holding its dedupe key. The insert cannot race: the
/// unique index on `dedupe_key` decides (`ON CONFLICT DO NOTHING`), then the holder is read.
pub async fn enqueue<C: ConnectionTrait>(db: &C, job: NewJob<'_>) -> Result<Enqueued, DbErr> {
    for _ in 0..ENQUEUE_ROUNDS {
        let id = Uuid::now_v7();
        if insert(db, id, &job).await? {
            return Ok(Enqueued::Created(id));
        }
        let Some(key) = job.dedupe_key.as_deref() else {
            return Err(DbErr::Custom(format!("job id {id} already exists")));
        };
        let holder = jobs::Entity::find()
            .filter(jobs::Column::DedupeKey.eq(key))
            .one(db)
            .await?;
        if let Some(holder) = holder {
            if holder.run_at > job.run_at {
                // The earlier wish wins: a refresh asked for now must not wait for a later one.
                jobs::Entity::update_many()
                    .set(jobs::ActiveModel {
                        run_at: Set(job.run_at),
                        updated_at: Set(Utc::now()),
                        ..Default::default()
                    })
                    .filter(jobs::Column::Id.eq(holder.id))
                    .filter(jobs::Column::Status.eq(JobStatus::Queued))
                    .filter(jobs::Column::RunAt.gt(job.run_at))
                    .exec(db)
                    .await?;
            }
            return Ok(Enqueued::Coalesced(holder.id));
        }
    }
    Err(DbErr::Custom(format!(
        "enqueue of {} kept losing its dedupe key to claims",
        job.kind
    )))
}

/// Enqueues the job of `periodic`'s slot starting at `slot`, unless some instance already did. Returns
/// whether this call created it.
pub(super) async fn enqueue_slot<C: ConnectionTrait>(
    db: &C,
    periodic: &Periodic,
    slot: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let job = NewJob {
        kind: &periodic.kind,
        payload: periodic.payload(),
        dedupe_key: None,
        concurrency_key: Some(format!("periodic:{}", periodic.kind)),
        run_at: slot,
        max_attempts: 3,
    };
    insert(db, slot_job_id(&periodic.kind, slot), &job).await
}

/// The same id on every instance for one kind's slot: the primary key makes the slot's job unique.
pub(super) fn slot_job_id(kind: &str, slot: DateTime<Utc>) -> Uuid {
    let digest = Sha256::digest(format!("periodic\0{kind}\0{}", slot.timestamp_millis()));
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// Inserts a QUEUED job unless its id or dedupe key is taken; returns whether it did.
async fn insert<C: ConnectionTrait>(db: &C, id: Uuid, job: &NewJob<'_>) -> Result<bool, DbErr> {
    let now = Utc::now();
    let sql = "INSERT INTO jobs (id, kind, payload, dedupe_key, concurrency_key, status, run_at, attempts, \
               max_attempts, created_at, updated_at) \
               VALUES ($1, $2, $3, $4, $5, 'QUEUED', $6, 0, $7, $8, $8) ON CONFLICT DO NOTHING";
    let values: [Value; 8] = [
        id.into(),
        job.kind.into(),
        job.payload.clone().into(),
        job.dedupe_key.clone().into(),
        job.concurrency_key.clone().into(),
        job.run_at.into(),
        job.max_attempts.max(1).into(),
        now.into(),
    ];
    let result = db
        .execute_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            sql,
            values,
        ))
        .await?;
    Ok(result.rows_affected() == 1)
}

/// Claims the next due job of one of `kinds` for `owner`, leased for `lease`: a QUEUED job whose
/// `run_at` has come, or a RUNNING one whose lease expired. Skips jobs whose concurrency key has a RUNNING
/// job. Claiming counts an attempt and clears the dedupe key.
///
/// PostgreSQL: `FOR UPDATE SKIP LOCKED` lets instances claim side by side. Two of them can still pick two
/// different jobs with the same concurrency key at once; the partial unique index on
/// `concurrency_key WHERE status = 'RUNNING'` refuses the second, which then claims again and skips the
/// key. SQLite has one writer at a time and the claim is one `UPDATE .. RETURNING` statement, so it is
/// atomic (the pool's busy timeout makes a concurrent claim wait instead of failing).
pub async fn claim<C: ConnectionTrait>(
    db: &C,
    owner: &str,
    kinds: &[String],
    lease: Duration,
) -> Result<Option<jobs::Model>, DbErr> {
    if kinds.is_empty() {
        return Ok(None);
    }
    let backend = db.get_database_backend();
    let kind_params = (0..kinds.len())
        .map(|i| format!("${}", i + 4))
        .collect::<Vec<_>>()
        .join(", ");
    let lock = if backend == DbBackend::Postgres {
        " FOR UPDATE SKIP LOCKED"
    } else {
        ""
    };
    let sql = format!(
        "UPDATE jobs SET status = 'RUNNING', lease_owner = $1, lease_expires_at = $2, \
             attempts = attempts + 1, dedupe_key = NULL, updated_at = $3 \
         WHERE id = (\
             SELECT j.id FROM jobs j \
             WHERE j.kind IN ({kind_params}) \
               AND ((j.status = 'QUEUED' AND j.run_at <= $3) \
                    OR (j.status = 'RUNNING' AND j.lease_expires_at < $3)) \
               AND (j.status = 'RUNNING' OR j.concurrency_key IS NULL OR NOT EXISTS (\
                    SELECT 1 FROM jobs r WHERE r.status = 'RUNNING' AND r.concurrency_key = j.concurrency_key)) \
             ORDER BY j.run_at, j.id LIMIT 1{lock}) \
         RETURNING *"
    );
    for _ in 0..CLAIM_ROUNDS {
        let now = Utc::now();
        let mut values: Vec<Value> = vec![owner.into(), (now + lease_delta(lease)).into(), now.into()];
        values.extend(kinds.iter().map(|kind| Value::from(kind.as_str())));
        // `all`, not `one`: the statement must run to completion for SQLite to commit it.
        let claimed = jobs::Entity::find()
            .from_raw_sql(Statement::from_sql_and_values(backend, &sql, values))
            .all(db)
            .await;
        match claimed {
            Ok(rows) => return Ok(rows.into_iter().next()),
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// The claim `job` came from still holds it: same owner, same attempt, still RUNNING.
fn held(job: &jobs::Model) -> Condition {
    Condition::all()
        .add(jobs::Column::Id.eq(job.id))
        .add(jobs::Column::Status.eq(JobStatus::Running))
        .add(jobs::Column::LeaseOwner.eq(job.lease_owner.clone()))
        .add(jobs::Column::Attempts.eq(job.attempts))
}

/// Extends the lease of a claimed job; false when the claim no longer holds it (taken over, settled).
pub async fn extend_lease<C: ConnectionTrait>(
    db: &C,
    job: &jobs::Model,
    lease: Duration,
) -> Result<bool, DbErr> {
    let now = Utc::now();
    settle(
        db,
        job,
        jobs::ActiveModel {
            lease_expires_at: Set(Some(now + lease_delta(lease))),
            updated_at: Set(now),
            ..Default::default()
        },
    )
    .await
}

/// Marks a claimed job DONE (`lease_owner` stays, to tell who ran it); false when the claim no longer
/// held it (its outcome is then ignored).
pub async fn complete<C: ConnectionTrait>(db: &C, job: &jobs::Model) -> Result<bool, DbErr> {
    settle(
        db,
        job,
        jobs::ActiveModel {
            status: Set(JobStatus::Done),
            lease_expires_at: Set(None),
            last_error: Set(None),
            updated_at: Set(Utc::now()),
            ..Default::default()
        },
    )
    .await
}

/// Puts a claimed job back in the queue for `run_at`, recording `error`.
pub async fn reschedule<C: ConnectionTrait>(
    db: &C,
    job: &jobs::Model,
    run_at: DateTime<Utc>,
    error: &str,
) -> Result<bool, DbErr> {
    settle(
        db,
        job,
        jobs::ActiveModel {
            status: Set(JobStatus::Queued),
            run_at: Set(run_at),
            lease_owner: Set(None),
            lease_expires_at: Set(None),
            last_error: Set(Some(excerpt(error))),
            updated_at: Set(Utc::now()),
            ..Default::default()
        },
    )
    .await
}

/// Marks a claimed job FAILED for good, recording `error`.
pub async fn give_up<C: ConnectionTrait>(db: &C, job: &jobs::Model, error: &str) -> Result<bool, DbErr> {
    settle(
        db,
        job,
        jobs::ActiveModel {
            status: Set(JobStatus::Failed),
            lease_expires_at: Set(None),
            last_error: Set(Some(excerpt(error))),
            updated_at: Set(Utc::now()),
            ..Default::default()
        },
    )
    .await
}

async fn settle<C: ConnectionTrait>(
    db: &C,
    job: &jobs::Model,
    change: jobs::ActiveModel,
) -> Result<bool, DbErr> {
    let result = jobs::Entity::update_many()
        .set(change)
        .filter(held(job))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Deletes DONE jobs older than [`DONE_RETENTION`] and FAILED ones older than [`FAILED_RETENTION`].
pub async fn cleanup<C: ConnectionTrait>(db: &C, now: DateTime<Utc>) -> Result<u64, DbErr> {
    let result = jobs::Entity::delete_many()
        .filter(
            Condition::any()
                .add(
                    Condition::all()
                        .add(jobs::Column::Status.eq(JobStatus::Done))
                        .add(jobs::Column::UpdatedAt.lt(now - DONE_RETENTION)),
                )
                .add(
                    Condition::all()
                        .add(jobs::Column::Status.eq(JobStatus::Failed))
                        .add(jobs::Column::UpdatedAt.lt(now - FAILED_RETENTION)),
                ),
        )
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}

/// Waits until no job is RUNNING and none is QUEUED and due; true when that happened within `timeout`.
/// Jobs waiting for a later `run_at` (a retry's backoff, a periodic slot) do not count. For tests and
/// tools: it needs running workers to ever become true.
pub async fn wait_idle<C: ConnectionTrait>(db: &C, timeout: Duration) -> Result<bool, DbErr> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let busy = jobs::Entity::find()
            .filter(
                Condition::any()
                    .add(jobs::Column::Status.eq(JobStatus::Running))
                    .add(
                        Condition::all()
                            .add(jobs::Column::Status.eq(JobStatus::Queued))
                            .add(jobs::Column::RunAt.lte(Utc::now())),
                    ),
            )
            .count(db)
            .await?;
        if busy == 0 {
            return Ok(true);
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One kind's share of the queue: what `GET /metrics` reports.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct KindDepth {
    pub kind: String,
    /// QUEUED, due or not.
    pub queued: i64,
    /// QUEUED and due (`run_at <= now`).
    pub due: i64,
    pub running: i64,
    /// The earliest `run_at` of the due jobs.
    pub oldest_due: Option<DateTime<Utc>>,
}

/// The queue by kind at `now`, in one grouped statement over the QUEUED and RUNNING jobs.
pub async fn depth_by_kind<C: ConnectionTrait>(db: &C, now: DateTime<Utc>) -> Result<Vec<KindDepth>, DbErr> {
    let sql = "SELECT kind, \
             SUM(CASE WHEN status = 'QUEUED' THEN 1 ELSE 0 END) AS queued, \
             SUM(CASE WHEN status = 'QUEUED' AND run_at <= $1 THEN 1 ELSE 0 END) AS due, \
             SUM(CASE WHEN status = 'RUNNING' THEN 1 ELSE 0 END) AS running, \
             MIN(CASE WHEN status = 'QUEUED' AND run_at <= $1 THEN run_at END) AS oldest_due \
         FROM jobs WHERE status IN ('QUEUED', 'RUNNING') GROUP BY kind ORDER BY kind";
    KindDepth::find_by_statement(Statement::from_sql_and_values(
        db.get_database_backend(),
        sql,
        [now.into()],
    ))
    .all(db)
    .await
}

/// A lease as a time span, capped so that adding it to a date cannot overflow.
fn lease_delta(lease: Duration) -> TimeDelta {
    TimeDelta::from_std(lease.min(MAX_LEASE)).unwrap_or(TimeDelta::days(1))
}

const MAX_LEASE: Duration = Duration::from_secs(86_400);

fn excerpt(error: &str) -> String {
    error.chars().take(MAX_ERROR_CHARS).collect()
}
