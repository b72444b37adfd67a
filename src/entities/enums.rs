//! The enum-like columns. Each is stored as its GraphQL name (`NEEDS_REAUTH`, `TWO_WAY`, ...) in a
//! `varchar(32)`, the same on SQLite and PostgreSQL (no database enum types).

use sea_orm::entity::prelude::*;

/// `google_accounts.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(32))")]
pub enum AccountStatus {
    #[sea_orm(string_value = "ACTIVE")]
    Active,
    /// The refresh token was revoked or expired: the user must connect the account again.
    #[sea_orm(string_value = "NEEDS_REAUTH")]
    NeedsReauth,
}

/// `events.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(32))")]
pub enum EventStatus {
    #[sea_orm(string_value = "CONFIRMED")]
    Confirmed,
    #[sea_orm(string_value = "TENTATIVE")]
    Tentative,
    #[sea_orm(string_value = "CANCELLED")]
    Cancelled,
}

/// `todos.priority`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(32))")]
pub enum Priority {
    #[sea_orm(string_value = "NONE")]
    None,
    #[sea_orm(string_value = "LOW")]
    Low,
    #[sea_orm(string_value = "MEDIUM")]
    Medium,
    #[sea_orm(string_value = "HIGH")]
    High,
}

/// `sync_configs.direction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(32))")]
pub enum SyncDirection {
    #[sea_orm(string_value = "ONE_WAY")]
    OneWay,
    #[sea_orm(string_value = "TWO_WAY")]
    TwoWay,
}

/// `sync_configs.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(32))")]
pub enum SyncConfigStatus {
    #[sea_orm(string_value = "ACTIVE")]
    Active,
    #[sea_orm(string_value = "PAUSED")]
    Paused,
    #[sea_orm(string_value = "NEEDS_REAUTH")]
    NeedsReauth,
}

/// `sync_runs.trigger`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(32))")]
pub enum SyncTrigger {
    #[sea_orm(string_value = "MANUAL")]
    Manual,
    #[sea_orm(string_value = "SCHEDULED")]
    Scheduled,
    #[sea_orm(string_value = "PUSH")]
    Push,
}

/// `sync_runs.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(32))")]
pub enum SyncRunStatus {
    #[sea_orm(string_value = "QUEUED")]
    Queued,
    #[sea_orm(string_value = "RUNNING")]
    Running,
    #[sea_orm(string_value = "SUCCEEDED")]
    Succeeded,
    #[sea_orm(string_value = "PARTIAL")]
    Partial,
    #[sea_orm(string_value = "FAILED")]
    Failed,
}

/// `event_links.origin`: the side of the sync config the linked event was created on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(32))")]
pub enum LinkOrigin {
    #[sea_orm(string_value = "SOURCE")]
    Source,
    #[sea_orm(string_value = "DESTINATION")]
    Destination,
}

/// `jobs.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(32))")]
pub enum JobStatus {
    #[sea_orm(string_value = "QUEUED")]
    Queued,
    #[sea_orm(string_value = "RUNNING")]
    Running,
    #[sea_orm(string_value = "DONE")]
    Done,
    #[sea_orm(string_value = "FAILED")]
    Failed,
}
