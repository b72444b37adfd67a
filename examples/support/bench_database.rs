//! The database a benchmark runs on: a SQLite file in a temporary directory, or, when
//! `BENCH_DATABASE_URL` names a PostgreSQL server, a scratch database created there and dropped after.

use sea_orm::{ConnectionTrait as _, DatabaseConnection};
use uuid::Uuid;

pub struct BenchDatabase {
    /// Where the server under test connects.
    pub url: String,
    /// `SQLite` or `PostgreSQL`, for the printed figures.
    pub label: &'static str,
    /// The server's admin connection and the scratch database's name, to drop it.
    scratch: Option<(DatabaseConnection, String)>,
}

impl BenchDatabase {
    /// PostgreSQL when `BENCH_DATABASE_URL` is set and not empty, else SQLite in `dir`.
    pub async fn from_env(dir: &std::path::Path) -> anyhow::Result<Self> {
        match std::env::var("BENCH_DATABASE_URL")
            .ok()
            .filter(|url| !url.is_empty())
        {
            Some(admin_url) => Self::postgres(&admin_url).await,
            None => Ok(Self::sqlite(dir)),
        }
    }

    pub fn sqlite(dir: &std::path::Path) -> Self {
        Self {
            url: format!("sqlite://{}?mode=rwc", dir.join("bench.db").display()),
            label: "SQLite",
            scratch: None,
        }
    }

    /// A new, empty database on the PostgreSQL server of `admin_url`.
    pub async fn postgres(admin_url: &str) -> anyhow::Result<Self> {
        let name = format!("chronos_bench_{}", Uuid::new_v4().simple());
        let admin = chronos::db::connect(admin_url).await?;
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await?;
        let mut url = url::Url::parse(admin_url)?;
        url.set_path(&format!("/{name}"));
        Ok(Self {
            url: url.to_string(),
            label: "PostgreSQL",
            scratch: Some((admin, name)),
        })
    }

    /// Drops the scratch database (nothing to do for SQLite: the directory goes with its owner).
    pub async fn remove(self) -> anyhow::Result<()> {
        if let Some((admin, name)) = self.scratch {
            admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .await?;
        }
        Ok(())
    }
}
