//! The shared state every request handler, resolver and background task runs with. It sits low in the
//! house: it knows the database, the settings, the cipher, the Google clients, the job queue and the
//! buses (progress, cache changes, ended sessions), and no domain. The composition root (`app.rs`) builds
//! it, with the cross-domain [`Reactions`] wired in.

use std::{ops::Deref, sync::Arc};

use futures::future::BoxFuture;
use sea_orm::DatabaseConnection;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use uuid::Uuid;

use crate::{
    bus::Bus,
    cache_changes::CacheChangeBus,
    config::Settings,
    crypto::Cipher,
    error::{AppError, AppResult},
    google::{
        AccessTokens, CalendarClient, CalendarClientOptions, DatabaseProjectLog, GoogleAccount, OAuthClient,
        Pacer, pacing::ProjectLog,
    },
    jobs::{JobContext, JobQueue},
    progress::ProgressBus,
    rate_limit::RateLimiters,
    session::{self, DbSessionStore, SessionEnded},
};

/// A cheap handle to the [`SharedState`].
#[derive(Clone)]
pub struct AppState(Arc<SharedState>);

pub struct SharedState {
    pub db: DatabaseConnection,
    pub settings: Settings,
    /// Encrypts and decrypts every secret and personal field at rest.
    pub cipher: Cipher,
    /// Statements run on `db` since start-up.
    pub statements: crate::db::StatementCounter,
    pub sessions: DbSessionStore,
    pub rate_limits: RateLimiters,
    /// `None` when no OAuth client is configured: everything needing Google answers a clear error.
    pub google: Option<GoogleClients>,
    /// The background job queue: enqueue here; workers run where SCHEDULER_ENABLED.
    pub jobs: JobQueue,
    /// Sync run progress, fanned out to `syncProgress` subscribers on every instance.
    pub progress: ProgressBus,
    /// "A user's cached events or calendars changed", on every instance: live subscriptions read on.
    pub cache_changes: CacheChangeBus,
    /// Sessions that ended (announced with [`AppState::session_ended`]), on every instance: websockets
    /// of those sessions close.
    pub ended_sessions: Bus<SessionEnded>,
    /// Cancelled when the server begins to shut down; long-lived work (websockets, workers) watches it.
    pub shutdown: CancellationToken,
    /// Long-lived tasks that must finish before the process exits.
    pub tasks: TaskTracker,
    reactions: Reactions,
}

impl Deref for AppState {
    type Target = SharedState;
    fn deref(&self) -> &SharedState {
        &self.0
    }
}

/// What a request needing Google answers, and start-up warns, when no OAuth client is configured.
pub const NOT_CONFIGURED: &str = "this server has no Google OAuth client (set GOOGLE_CLIENT_ID and \
    GOOGLE_CLIENT_SECRET). To try Chronos without a Google project, run `chronos demo`: the server with a \
    built-in Google emulator and demo accounts. Or run `google-emulator --addr 127.0.0.1:8081`, point \
    GOOGLE_ACCOUNTS_URL, GOOGLE_OAUTH_URL and GOOGLE_API_URL at http://127.0.0.1:8081 and set any client id \
    and secret";

/// The clients that speak to Google.
pub struct GoogleClients {
    pub oauth: OAuthClient,
    pub tokens: AccessTokens,
    pub calendar: CalendarClient,
}

impl GoogleClients {
    /// One account, ready to call Google: `state.google()?.account(calendar.account_id).get_event(..)`.
    pub fn account(&self, account_id: Uuid) -> GoogleAccount<'_> {
        GoogleAccount::new(&self.calendar, &self.tokens, account_id)
    }

    fn new(db: &DatabaseConnection, settings: &Settings, cipher: &Cipher) -> anyhow::Result<Option<Self>> {
        if settings.google.client_id.is_none() {
            return Ok(None);
        }
        let oauth = OAuthClient::new(&settings.google).map_err(|e| anyhow::anyhow!("{e}"))?;
        let project_log: Arc<dyn ProjectLog> = Arc::new(DatabaseProjectLog::new(db.clone()));
        let calendar = CalendarClient::new(&settings.google.api_url, CalendarClientOptions::default())
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .paced(Pacer::new(settings.google.quota, Some(project_log)));
        Ok(Some(Self {
            tokens: AccessTokens::new(db.clone(), cipher.clone(), oauth.clone()),
            oauth,
            calendar,
        }))
    }
}

/// One domain's reaction to another's event. It gets the state and the event's subject (an id).
pub type Reaction = Arc<dyn Fn(AppState, Uuid) -> BoxFuture<'static, AppResult<()>> + Send + Sync>;

/// Cross-domain reactions, wired by the composition root. The domain where something happens announces it
/// here and never imports the domain that reacts, so no two domains import each other.
#[derive(Clone, Default)]
pub struct Reactions {
    /// A refresh brought changes into a calendar's cache (the subject is the calendar id).
    pub calendar_changed: Vec<Reaction>,
    /// A Google account is about to be disconnected while its grant still works (the subject is the
    /// account id). Reactions are best effort: a failure is logged and the disconnect goes on.
    pub account_disconnecting: Vec<Reaction>,
    /// A Google account was just signed in with or connected, before the browser is sent back (the
    /// subject is the account id). Reactions are best effort: a failure is logged and the sign-in stands.
    pub account_connected: Vec<Reaction>,
}

impl SharedState {
    /// The Google clients, or a clear error when this server has no OAuth client configured.
    pub fn google(&self) -> AppResult<&GoogleClients> {
        self.google
            .as_ref()
            .ok_or_else(|| AppError::UpstreamUnavailable(NOT_CONFIGURED.into()))
    }
}

impl AppState {
    /// The state over `db`, with no cross-domain reactions; `app::state` wires them.
    pub fn new(db: DatabaseConnection, settings: Settings) -> anyhow::Result<Self> {
        Self::with_reactions(db, settings, Reactions::default())
    }

    pub fn with_reactions(
        mut db: DatabaseConnection,
        settings: Settings,
        reactions: Reactions,
    ) -> anyhow::Result<Self> {
        crate::metrics::install();
        let statements = crate::db::StatementCounter::install(&mut db);
        let cipher = Cipher::new(settings.encryption_keys.clone());
        let google = GoogleClients::new(&db, &settings, &cipher)?;
        let shutdown = CancellationToken::new();
        Ok(Self(Arc::new(SharedState {
            progress: ProgressBus::new(db.clone(), shutdown.clone()),
            cache_changes: CacheChangeBus::new(db.clone(), shutdown.clone()),
            ended_sessions: Bus::new(session::ENDED_CHANNEL, db.clone(), shutdown.clone()),
            cipher,
            google,
            statements,
            sessions: DbSessionStore::new(db.clone()),
            rate_limits: RateLimiters::new(&settings.rate_limits),
            jobs: JobQueue::new(),
            db,
            settings,
            shutdown,
            tasks: TaskTracker::new(),
            reactions,
        })))
    }

    /// Announces that a refresh changed `calendar_id`'s cached events.
    pub async fn calendar_changed(&self, calendar_id: Uuid) -> AppResult<()> {
        for react in &self.reactions.calendar_changed {
            react(self.clone(), calendar_id).await?;
        }
        Ok(())
    }

    /// Announces to every instance that the session `session_id` ended (its row is, or is about to be,
    /// deleted): its websockets close.
    pub async fn session_ended(&self, session_id: &str) {
        self.ended_sessions
            .publish(SessionEnded {
                session: session::public_id(session_id),
            })
            .await;
    }

    /// Announces that `account_id` was just signed in with or connected.
    pub async fn account_connected(&self, account_id: Uuid) {
        for react in &self.reactions.account_connected {
            if let Err(e) = react(self.clone(), account_id).await {
                tracing::warn!(%account_id, error = ?e, "a reaction to the connected account failed");
            }
        }
    }

    /// Announces that `account_id` is about to be disconnected.
    pub async fn account_disconnecting(&self, account_id: Uuid) {
        for react in &self.reactions.account_disconnecting {
            if let Err(e) = react(self.clone(), account_id).await {
                tracing::warn!(%account_id, error = ?e, "a reaction to the disconnect failed");
            }
        }
    }
}

impl JobContext for AppState {
    fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    fn job_queue(&self) -> &JobQueue {
        &self.jobs
    }

    fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }

    fn tasks(&self) -> &TaskTracker {
        &self.tasks
    }
}
