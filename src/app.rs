//! The composition root: builds the state (with the cross-domain reactions), the schema, the router and
//! the job handler registry, starts the workers and serves. Nothing imports it but the commands.

use std::{io::Write as _, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context as _;
use futures::FutureExt;
use migration::MigratorTrait;
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;

use crate::{
    config::Settings,
    jobs::{JobHandlers, WorkerConfig, WorkerPool},
    schema::{ChronosSchema, build_schema},
    state::{AppState, Reactions},
};

/// How the domains react to each other: announced by one domain, carried out by another, wired here.
pub fn reactions() -> Reactions {
    Reactions {
        // Changes a notification (or the sweep) brought in start the sync configs of the calendar.
        calendar_changed: vec![Arc::new(|state, calendar_id| {
            async move {
                crate::sync::runner::enqueue_for_calendar(&state, calendar_id).await?;
                Ok(())
            }
            .boxed()
        })],
        // Channels need a valid grant to be stopped: before the revocation.
        account_disconnecting: vec![Arc::new(|state, account_id| {
            async move {
                crate::calendars::push::stop_account_channels(&state, account_id).await;
                Ok(())
            }
            .boxed()
        })],
        // The page the browser lands on after a sign-in or connect shows the account's calendars.
        account_connected: vec![Arc::new(|state, account_id| {
            async move { crate::calendars::jobs::list_at_landing(&state, account_id).await }.boxed()
        })],
    }
}

/// Every job kind this server runs, one line per domain.
pub fn job_handlers() -> JobHandlers<AppState> {
    let mut handlers = JobHandlers::default();
    crate::jobs::register(&mut handlers);
    crate::calendars::jobs::register(&mut handlers);
    crate::sync::runner::register(&mut handlers);
    crate::sync::schedule::register(&mut handlers);
    handlers
}

/// The application's state over `db`, reactions wired: what a server, a command or a test runs with.
pub fn state(db: DatabaseConnection, settings: Settings) -> anyhow::Result<AppState> {
    AppState::with_reactions(db, settings, reactions())
}

/// Connects to the database and runs pending migrations (unless told not to).
pub async fn connect(settings: &Settings, run_migrations: bool) -> anyhow::Result<DatabaseConnection> {
    let db = crate::db::connect_pool(&settings.database_url, settings.database_pool)
        .await
        .context("could not connect to the database")?;
    if run_migrations {
        migration::Migrator::up(&db, None)
            .await
            .context("could not apply database migrations")?;
    }
    Ok(db)
}

/// Starts this instance's workers over every job kind; they stop on `state.shutdown` after finishing their
/// current job.
pub fn start_workers(state: &AppState) -> WorkerPool {
    WorkerPool::start(state, Arc::new(job_handlers()), WorkerConfig::default())
}

/// The first stdout line, which scripts and tests wait for.
pub fn announce(addr: std::net::SocketAddr) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on http://{addr}")?;
    stdout.flush()?;
    Ok(())
}

/// Binds the server's address, first of all: a taken port fails before anything (database file,
/// development keys) is created.
pub fn bind(addr: &str) -> anyhow::Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(addr).with_context(|| {
        format!("could not listen on {addr} (set BIND_ADDR to a free HOST:PORT, or port 0 for any free one)")
    })?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Binds the separate metrics listener (`METRICS_ADDR`).
fn bind_metrics(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    let listener = std::net::TcpListener::bind(addr).with_context(|| {
        format!("could not listen on {addr} for metrics (set METRICS_ADDR to a free IP:PORT, or unset it)")
    })?;
    listener.set_nonblocking(true)?;
    TcpListener::from_std(listener).context("could not use the metrics listener")
}

/// A bound, migrated, ready-to-run server.
pub struct Application {
    listener: TcpListener,
    /// `GET /metrics` alone, when `METRICS_ADDR` is set.
    metrics_listener: Option<TcpListener>,
    state: AppState,
    schema: ChronosSchema,
}

/// How long in-flight requests and websockets get to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

impl Application {
    /// Binds the listener, connects to the database and runs pending migrations (unless told not to).
    pub async fn build(settings: Settings, run_migrations: bool) -> anyhow::Result<Self> {
        let listener = bind(&settings.bind_addr)?;
        Self::build_on(listener, settings, run_migrations).await
    }

    /// [`Application::build`] on a listener bound beforehand ([`bind`]).
    pub async fn build_on(
        listener: std::net::TcpListener,
        settings: Settings,
        run_migrations: bool,
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::from_std(listener).context("could not use the listener")?;
        let metrics_listener = settings.metrics_addr.map(bind_metrics).transpose()?;
        let db = connect(&settings, run_migrations).await?;
        let addr = listener.local_addr()?;
        let settings = settings.with_bound_addr(addr);
        if settings.google.client_id.is_none() {
            tracing::warn!("Google sign-in is disabled: {}", crate::state::NOT_CONFIGURED);
        }
        Ok(Self {
            listener,
            metrics_listener,
            state: state(db, settings)?,
            schema: build_schema(),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Where the separate metrics listener is bound, when `METRICS_ADDR` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|listener| listener.local_addr().ok())
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then lets in-flight requests and websockets finish.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let state = self.state.clone();
        state.tasks.spawn(maintenance(state.clone()));
        if state.settings.scheduler_enabled {
            start_workers(&state);
        }
        let router = crate::http::router(state.clone(), self.schema);
        let token = state.shutdown.clone();
        // The metrics listener stops with the main one, on the same token.
        let metrics_server = self.metrics_listener.map(|listener| {
            if let Ok(addr) = listener.local_addr() {
                tracing::info!("metrics on http://{addr}/metrics");
            }
            tokio::spawn(crate::http::serve(
                listener,
                crate::http::metrics::router(state.clone()),
                state.settings.header_read_timeout,
                token.clone(),
                SHUTDOWN_GRACE,
            ))
        });
        let signal_token = token.clone();
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down");
            signal_token.cancel();
        });
        crate::http::serve(
            self.listener,
            router,
            state.settings.header_read_timeout,
            token,
            SHUTDOWN_GRACE,
        )
        .await;
        if let Some(metrics_server) = metrics_server
            && let Err(e) = metrics_server.await
        {
            tracing::warn!(error = %e, "the metrics listener stopped abnormally");
        }
        // Websockets are detached from their HTTP connection; they close themselves on the token.
        state.tasks.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, state.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("background tasks did not finish within the grace period");
        }
        Ok(())
    }
}

/// How often expired sessions and idle rate-limit state are cleared.
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(600);

/// Housekeeping every instance may run: each step is idempotent, so instances need not coordinate.
async fn maintenance(state: AppState) {
    let mut tick = tokio::time::interval(MAINTENANCE_INTERVAL);
    loop {
        tokio::select! {
            () = state.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        match state.sessions.delete_expired(chrono::Utc::now()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "expired sessions deleted"),
            Err(e) => tracing::warn!(error = %e, "expired session cleanup failed"),
        }
        state.rate_limits.forget_idle();
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
