//! `DATABASE_URL`: SQLite or PostgreSQL; `DATABASE_MAX_CONNECTIONS`, `DATABASE_ACQUIRE_TIMEOUT_SECS` and
//! `DATABASE_STATEMENT_CACHE`: the connection pool.

use std::time::Duration;

use super::vars::Vars;

pub const DEFAULT_DATABASE_URL: &str = "sqlite://chronos.db?mode=rwc";

/// The connection pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    /// Connections the pool opens at most; `None`: 8 on SQLite, [`POSTGRES_CONNECTIONS`] on PostgreSQL.
    pub max_connections: Option<u32>,
    /// How long a request waits for a free connection before it is answered as load (503 with
    /// Retry-After) rather than kept waiting.
    pub acquire_timeout: Duration,
    /// Prepared statements each connection keeps (least recently used dropped first); 0 prepares none
    /// to keep, for a pooler in transaction mode in front of PostgreSQL.
    pub statement_cache: usize,
}

/// Connections per instance on PostgreSQL by default (its listening connections included): nine instances
/// fit under the server's default `max_connections` of 100, and more connections than the server has
/// cores to run them would only queue there.
pub const POSTGRES_CONNECTIONS: u32 = 10;

/// Prepared statements per connection by default: every statement Chronos sends with a fixed shape (the
/// same SQL whatever the values) stays prepared, while the few whose text depends on a count (an `IN` list,
/// a multi-row insert) take turns.
pub const STATEMENT_CACHE: usize = 256;

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: None,
            acquire_timeout: Duration::from_secs(10),
            statement_cache: STATEMENT_CACHE,
        }
    }
}

pub(super) fn parse_pool(vars: &mut Vars<'_>) -> PoolSettings {
    let defaults = PoolSettings::default();
    let max_connections = vars
        .is_set("DATABASE_MAX_CONNECTIONS")
        .then(|| vars.u32("DATABASE_MAX_CONNECTIONS", 1));
    if max_connections == Some(0) {
        vars.problem("DATABASE_MAX_CONNECTIONS must be at least 1");
    }
    let acquire_secs = vars.u32(
        "DATABASE_ACQUIRE_TIMEOUT_SECS",
        u32::try_from(defaults.acquire_timeout.as_secs()).unwrap_or(10),
    );
    if acquire_secs == 0 {
        vars.problem("DATABASE_ACQUIRE_TIMEOUT_SECS must be at least 1");
    }
    let statement_cache = vars.u32(
        "DATABASE_STATEMENT_CACHE",
        u32::try_from(defaults.statement_cache).unwrap_or(u32::MAX),
    );
    PoolSettings {
        max_connections: max_connections.filter(|&n| n > 0),
        acquire_timeout: Duration::from_secs(acquire_secs.max(1).into()),
        statement_cache: usize::try_from(statement_cache).unwrap_or(usize::MAX),
    }
}

pub(super) fn parse(vars: &mut Vars<'_>, production: bool) -> String {
    let database_url = vars
        .get("DATABASE_URL")
        .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_string());
    if !(database_url.starts_with("sqlite:")
        || database_url.starts_with("postgres://")
        || database_url.starts_with("postgresql://"))
    {
        vars.problem("DATABASE_URL must start with `sqlite:` or `postgres://`");
    }
    // Production on the default file would silently start an empty database.
    vars.require_in_production(production, "DATABASE_URL", "");
    database_url
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::vars::map;

    #[test]
    fn sqlite_and_postgres_are_accepted() {
        for url in ["sqlite::memory:", "postgres://db/x", "postgresql://db/x"] {
            let m = map(&[("DATABASE_URL", url)]);
            let mut v = Vars::new(&m);
            assert_eq!(parse(&mut v, true), url);
            assert!(v.problems().is_empty(), "{url}: {:?}", v.problems());
        }
    }

    #[test]
    fn pool_defaults_and_bounds() {
        let m = map(&[]);
        let mut v = Vars::new(&m);
        assert_eq!(parse_pool(&mut v), PoolSettings::default());
        let m = map(&[
            ("DATABASE_MAX_CONNECTIONS", "3"),
            ("DATABASE_ACQUIRE_TIMEOUT_SECS", "2"),
            ("DATABASE_STATEMENT_CACHE", "0"),
        ]);
        let mut v = Vars::new(&m);
        assert_eq!(
            parse_pool(&mut v),
            PoolSettings {
                max_connections: Some(3),
                acquire_timeout: Duration::from_secs(2),
                statement_cache: 0,
            }
        );
        let m = map(&[
            ("DATABASE_MAX_CONNECTIONS", "0"),
            ("DATABASE_ACQUIRE_TIMEOUT_SECS", "0"),
        ]);
        let mut v = Vars::new(&m);
        parse_pool(&mut v);
        assert_eq!(
            v.into_problems(),
            vec![
                "DATABASE_MAX_CONNECTIONS must be at least 1".to_string(),
                "DATABASE_ACQUIRE_TIMEOUT_SECS must be at least 1".to_string(),
            ]
        );
    }

    #[test]
    fn other_schemes_and_a_default_in_production_are_refused() {
        let m = map(&[("DATABASE_URL", "mysql://x")]);
        let mut v = Vars::new(&m);
        parse(&mut v, false);
        assert_eq!(
            v.into_problems(),
            vec!["DATABASE_URL must start with `sqlite:` or `postgres://`".to_string()]
        );

        let m = map(&[]);
        let mut v = Vars::new(&m);
        assert_eq!(parse(&mut v, true), DEFAULT_DATABASE_URL);
        assert_eq!(
            v.into_problems(),
            vec!["DATABASE_URL must be set explicitly in production".to_string()]
        );
    }
}
