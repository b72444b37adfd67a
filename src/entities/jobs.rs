//! `jobs`: the database job queue, leased by workers.
//!
//! A worker takes the next due job (`status = QUEUED AND run_at <= now`, ordered by `run_at`;
//! `FOR UPDATE SKIP LOCKED` on PostgreSQL), sets `RUNNING`, `lease_owner` and `lease_expires_at`,
//! and renews the lease while it works; a job whose lease expired may be claimed again. See
//! `crate::jobs`.

use sea_orm::entity::prelude::*;

use super::enums::JobStatus;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "jobs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub kind: String,
    #[sea_orm(column_type = "JsonBinary")]
    pub payload: Json,
    /// At most one job per key (unique; NULLs never collide). Cleared when the job is claimed, so a
    /// change arriving during the run queues exactly one follow-up job.
    #[sea_orm(unique)]
    pub dedupe_key: Option<String>,
    pub status: JobStatus,
    pub run_at: DateTimeUtc,
    #[sea_orm(default_value = 0)]
    pub attempts: i32,
    pub max_attempts: i32,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTimeUtc>,
    pub last_error: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// At most one RUNNING job per key (a partial unique index); NULL means no such limit. Last because
    /// a later migration added it.
    pub concurrency_key: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
