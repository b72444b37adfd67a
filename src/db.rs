//! Database connection: one pool, SQLite or PostgreSQL, chosen by URL.

use std::{
    collections::VecDeque,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use crate::config::PoolSettings;
use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

/// Opens the pool with the default size. SQLite gets WAL (readers never wait for the writer), a busy
/// timeout, and foreign keys on. A connection is checked with a ping before it is handed out only after
/// it sat idle for [`PING_AFTER_IDLE`]: a ping on every checkout would add a round trip to each one.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    connect_with(url, true, PoolSettings::default()).await
}

/// [`connect`] with the pool's size and acquire timeout as configured.
pub async fn connect_pool(url: &str, pool: PoolSettings) -> Result<DatabaseConnection, DbErr> {
    connect_with(url, true, pool).await
}

/// A connection for `migrate fresh`: on SQLite one connection with foreign keys off, because dropping every
/// table in an arbitrary order trips over references that are about to be dropped too.
pub async fn connect_for_fresh(url: &str) -> Result<DatabaseConnection, DbErr> {
    connect_with(url, false, PoolSettings::default()).await
}

async fn connect_with(
    url: &str,
    foreign_keys: bool,
    pool: PoolSettings,
) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .sqlx_logging(false)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(pool.acquire_timeout)
        .test_before_acquire_if_idle_for(PING_AFTER_IDLE);
    let statement_cache = pool.statement_cache;
    if url.starts_with("sqlite:") {
        options.max_connections(if foreign_keys {
            pool.max_connections.unwrap_or(8)
        } else {
            1
        });
        options.map_sqlx_sqlite_opts(move |opts| {
            opts.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(foreign_keys)
                .statement_cache_capacity(statement_cache)
        });
    } else {
        options
            .max_connections(
                pool.max_connections
                    .unwrap_or(crate::config::POSTGRES_CONNECTIONS),
            )
            .map_sqlx_postgres_opts(move |opts| opts.statement_cache_capacity(statement_cache));
    }
    Database::connect(options).await
}

/// How long a pooled connection may sit idle and still be handed out without a ping (a server, proxy or
/// firewall that drops idle connections takes minutes, not seconds).
pub const PING_AFTER_IDLE: Duration = Duration::from_secs(30);

/// How many SQL statements a connection has run: an operational figure, and how tests pin that nested
/// GraphQL fields are batched rather than queried per row. While recording (tests only turn it on), it
/// also keeps the latest statements' SQL and bound values, to pin what a query reads.
#[derive(Clone, Debug, Default)]
pub struct StatementCounter {
    count: Arc<AtomicU64>,
    recorded: Arc<Mutex<Option<VecDeque<RecordedStatement>>>>,
}

/// One statement run while recording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedStatement {
    pub sql: String,
    /// The values bound to it (an `IN (...)` list binds each of its values), so that a test can count
    /// them or run the statement again (under `EXPLAIN`).
    pub values: Vec<sea_orm::Value>,
}

/// Statements kept while recording; older ones are dropped.
const RECORDED_STATEMENTS: usize = 1000;

impl StatementCounter {
    /// Starts counting every statement `db` (and every transaction begun from it) runs.
    pub fn install(db: &mut DatabaseConnection) -> Self {
        let counter = Self::default();
        let (count, recorded) = (counter.count.clone(), counter.recorded.clone());
        db.set_metric_callback(move |info| {
            count.fetch_add(1, Ordering::Relaxed);
            crate::metrics::db_statement(info.elapsed);
            let mut recorded = recorded.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(recorded) = recorded.as_mut() {
                if recorded.len() == RECORDED_STATEMENTS {
                    recorded.pop_front();
                }
                recorded.push_back(RecordedStatement {
                    sql: info.statement.sql.clone(),
                    values: info
                        .statement
                        .values
                        .as_ref()
                        .map_or_else(Vec::new, |values| values.0.clone()),
                });
            }
        });
        counter
    }

    pub fn get(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Starts keeping the statements run from now on (forgetting any kept before).
    pub fn start_recording(&self) {
        *self.recorded.lock().unwrap_or_else(PoisonError::into_inner) = Some(VecDeque::new());
    }

    /// Stops keeping statements; returns those kept, oldest first.
    pub fn stop_recording(&self) -> Vec<RecordedStatement> {
        self.recorded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .map(Vec::from)
            .unwrap_or_default()
    }
}

/// The pool's size, idle connections and largest size, read for a scrape.
pub fn pool_state(db: &DatabaseConnection) -> Option<crate::metrics::PoolState> {
    match db.get_database_backend() {
        DbBackend::Sqlite => {
            let pool = db.get_sqlite_connection_pool();
            Some(crate::metrics::PoolState {
                size: pool.size(),
                idle: pool.num_idle(),
                max: pool.options().get_max_connections(),
            })
        }
        DbBackend::Postgres => {
            let pool = db.get_postgres_connection_pool();
            Some(crate::metrics::PoolState {
                size: pool.size(),
                idle: pool.num_idle(),
                max: pool.options().get_max_connections(),
            })
        }
        _ => None,
    }
}

/// A transaction that will write. On SQLite it takes the write lock at `BEGIN` (IMMEDIATE): a deferred
/// transaction that reads first and writes later fails at once with SQLITE_BUSY when another writer got
/// there in between, while `BEGIN IMMEDIATE` waits for the busy timeout instead.
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    let options = match db.get_database_backend() {
        DbBackend::Sqlite => TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        },
        _ => TransactionOptions::default(),
    };
    db.begin_with_options(options).await
}
