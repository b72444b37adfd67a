//! The application: shared state, start-up and graceful shutdown.

use std::{net::SocketAddr, ops::Deref, sync::Arc, time::Duration};

use anyhow::Context as _;
use migration::MigratorTrait;
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    config::Settings,
    crypto::Cipher,
    error::{AppError, AppResult},
    google::{AccessTokens, CalendarClient, CalendarClientOptions, OAuthClient},
    graphql::{ChronosSchema, build_schema},
    jobs::{JobQueue, WorkerConfig},
    rate_limit::RateLimiters,
    session::DbSessionStore,
};

/// Everything a request handler, resolver or background task needs. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<App>);

pub struct App {
    pub db: DatabaseConnection,
    pub settings: Settings,
    pub schema: ChronosSchema,
    /// Encrypts and decrypts every secret and personal field at rest.
    pub cipher: Cipher,
    /// Statements run on `db` since start-up.
    pub statements: crate::db::StatementCounter,
    pub sessions: DbSessionStore,
    pub rate_limits: RateLimiters,
    /// `None` when no OAuth client is configured: everything needing Google answers a clear error.
    pub google: Option<Google>,
    /// The background job queue: enqueue here; workers run where SCHEDULER_ENABLED.
    pub jobs: JobQueue,
    /// Sync run progress, fanned out to `syncProgress` subscribers on every instance.
    pub progress: crate::sync::progress::ProgressBus,
    /// Cancelled when the server begins to shut down; long-lived work (websockets, workers) watches it.
    pub shutdown: CancellationToken,
    /// Long-lived tasks that must finish before the process exits.
    pub tasks: TaskTracker,
}

impl Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.0
    }
}

/// The clients that speak to Google.
pub struct Google {
    pub oauth: OAuthClient,
    pub tokens: AccessTokens,
    pub calendar: CalendarClient,
}

impl Google {
    fn new(db: &DatabaseConnection, settings: &Settings, cipher: &Cipher) -> anyhow::Result<Option<Self>> {
        if settings.google.client_id.is_none() {
            return Ok(None);
        }
        let oauth = OAuthClient::new(&settings.google).map_err(|e| anyhow::anyhow!("{e}"))?;
        let calendar = CalendarClient::new(&settings.google.api_url, CalendarClientOptions::default())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(Some(Self {
            tokens: AccessTokens::new(db.clone(), cipher.clone(), oauth.clone()),
            oauth,
            calendar,
        }))
    }
}

impl App {
    /// The Google clients, or a clear error when this server has no OAuth client configured.
    pub fn google(&self) -> AppResult<&Google> {
        self.google.as_ref().ok_or_else(|| {
            AppError::UpstreamUnavailable(
                "Google sign-in is not configured on this server (GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET)"
                    .into(),
            )
        })
    }
}

impl AppState {
    pub fn new(mut db: DatabaseConnection, settings: Settings) -> anyhow::Result<Self> {
        let statements = crate::db::StatementCounter::install(&mut db);
        let cipher = Cipher::new(settings.encryption_keys.clone());
        let google = Google::new(&db, &settings, &cipher)?;
        let shutdown = CancellationToken::new();
        Ok(Self(Arc::new(App {
            progress: crate::sync::progress::ProgressBus::new(db.clone(), shutdown.clone()),
            cipher,
            google,
            statements,
            sessions: DbSessionStore::new(db.clone()),
            rate_limits: RateLimiters::new(&settings.rate_limits),
            jobs: JobQueue::new(crate::jobs::handlers(), WorkerConfig::default()),
            db,
            settings,
            schema: build_schema(),
            shutdown,
            tasks: TaskTracker::new(),
        })))
    }
}

/// A bound, migrated, ready-to-run server.
pub struct Application {
    listener: TcpListener,
    state: AppState,
}

/// How long in-flight requests and websockets get to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

impl Application {
    /// Connects to the database, runs pending migrations (unless told not to) and binds the listener.
    pub async fn build(settings: Settings, run_migrations: bool) -> anyhow::Result<Self> {
        let db = crate::db::connect(&settings.database_url)
            .await
            .context("could not connect to the database")?;
        if run_migrations {
            migration::Migrator::up(&db, None)
                .await
                .context("could not apply database migrations")?;
        }
        let listener = TcpListener::bind(&settings.bind_addr)
            .await
            .with_context(|| format!("could not listen on {}", settings.bind_addr))?;
        let addr = listener.local_addr()?;
        let settings = settings.with_bound_addr(addr);
        Ok(Self {
            listener,
            state: AppState::new(db, settings)?,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
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
            crate::jobs::start_workers(&state);
        }
        let router = crate::http::router(state.clone());
        let token = state.shutdown.clone();
        let signal_token = token.clone();
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down");
            signal_token.cancel();
        });
        axum::serve(
            self.listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { token.cancelled().await })
        .await
        .context("server error")?;
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
