//! The project's request log in the database, shared by every instance on it (see [`super::pacing`]).
//!
//! One row per paced call: when (the database's clock on PostgreSQL, so instances agree) and its cost.
//! Spending is one short transaction: on PostgreSQL under a transaction-scoped advisory lock, so two
//! instances never both take the window's last room; in this process under a mutex as well (SQLite has
//! no advisory locks, and one process needs no more).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement, TransactionTrait, Value};

use super::pacing::ProjectLog;

/// The advisory lock's key: any constant no other part of Chronos uses.
const ADVISORY_LOCK: i64 = 0x6368_726f_6e6f_7351;
/// How long to wait before asking again when the database cannot answer (the request is not sent).
const RETRY_WHEN_UNAVAILABLE: Duration = Duration::from_millis(250);

pub struct DatabaseProjectLog {
    db: DatabaseConnection,
    local: tokio::sync::Mutex<()>,
}

impl DatabaseProjectLog {
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            db,
            local: tokio::sync::Mutex::new(()),
        }
    }

    async fn spend(&self, cost: u32, limit: u32, window: Duration) -> Result<Result<(), Duration>, DbErr> {
        let backend = self.db.get_database_backend();
        let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
        let txn = self.db.begin().await?;
        let now_ms = match backend {
            DbBackend::Postgres => {
                txn.execute_raw(Statement::from_sql_and_values(
                    backend,
                    "SELECT pg_advisory_xact_lock($1)",
                    [ADVISORY_LOCK.into()],
                ))
                .await?;
                let row = txn
                    .query_one_raw(Statement::from_string(
                        backend,
                        "SELECT (extract(epoch from clock_timestamp()) * 1000)::bigint AS now_ms",
                    ))
                    .await?
                    .ok_or_else(|| DbErr::Custom("no clock".into()))?;
                row.try_get::<i64>("", "now_ms")?
            }
            _ => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        };
        let horizon = now_ms.saturating_sub(window_ms);
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            "DELETE FROM google_quota_spends WHERE spent_at_ms <= $1",
            [horizon.into()],
        ))
        .await?;
        let row = txn
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                "SELECT CAST(COALESCE(SUM(cost), 0) AS BIGINT) AS spent, MIN(spent_at_ms) AS oldest \
                 FROM google_quota_spends WHERE spent_at_ms > $1",
                [horizon.into()],
            ))
            .await?
            .ok_or_else(|| DbErr::Custom("no sum".into()))?;
        let spent: i64 = row.try_get("", "spent")?;
        let oldest: Option<i64> = row.try_get("", "oldest")?;
        if spent + i64::from(cost) > i64::from(limit) && spent > 0 {
            txn.rollback().await?;
            // Ask again once the oldest call has left the window.
            let wait_ms = oldest.map_or(0, |oldest| oldest + window_ms - now_ms).max(1);
            return Ok(Err(Duration::from_millis(u64::try_from(wait_ms).unwrap_or(1))));
        }
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            "INSERT INTO google_quota_spends (spent_at_ms, cost) VALUES ($1, $2)",
            [Value::from(now_ms), Value::from(i64::from(cost))],
        ))
        .await?;
        txn.commit().await?;
        Ok(Ok(()))
    }
}

#[async_trait]
impl ProjectLog for DatabaseProjectLog {
    async fn try_spend(&self, cost: u32, limit: u32, window: Duration) -> Result<(), Duration> {
        let _local = self.local.lock().await;
        match self.spend(cost, limit, window).await {
            Ok(outcome) => outcome,
            Err(e) => {
                tracing::warn!(error = %e, "the project's Google request log is unavailable; waiting");
                Err(RETRY_WHEN_UNAVAILABLE)
            }
        }
    }
}
