//! An in-memory fake of Google OAuth 2.0 and Google Calendar API v3, served over real HTTP on
//! one host. See the crate README for routes, the control API and the switches.

mod auth;
mod batch;
mod calendar;
pub mod config;
mod control;
mod error;
mod middleware;
mod oauth;
mod quota;
mod server;
mod state;
mod util;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::middleware::from_fn_with_state;
use serde_json::{Value, json};
use tokio::net::TcpListener;

pub use config::{EmulatorConfig, ExtPropMatch};
pub use error::EmulatorError;

use crate::quota::{QuotaClock, QuotaLimits, Quotas, Refusal};
use crate::state::{Role, State};

struct Inner {
    config: EmulatorConfig,
    state: Mutex<State>,
    quotas: Mutex<Quotas>,
    clock: QuotaClock,
    http: reqwest::Client,
}

/// The emulator: cheap to clone, all clones share one in-memory world.
#[derive(Clone)]
pub struct Emulator {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator").finish_non_exhaustive()
    }
}

impl Emulator {
    pub fn new(config: EmulatorConfig) -> Self {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .no_proxy()
            .build()
            .unwrap_or_default();
        Self {
            inner: Arc::new(Inner {
                quotas: Mutex::new(Quotas::new(QuotaLimits::from_config(&config))),
                clock: QuotaClock::default(),
                config,
                state: Mutex::new(State::new()),
                http,
            }),
        }
    }

    pub fn config(&self) -> &EmulatorConfig {
        &self.inner.config
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn quotas(&self) -> MutexGuard<'_, Quotas> {
        self.inner
            .quotas
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts one Calendar API request of `user` against the quotas, or says which one refuses it.
    pub(crate) fn admit(&self, user: &str) -> Result<(), Refusal> {
        let now = self.inner.clock.now_ms();
        self.quotas().admit(user, now)
    }

    /// Moves the quota clock forward: tests walk through the sliding windows without sleeping.
    pub fn advance_quota_clock(&self, by: std::time::Duration) {
        self.inner
            .clock
            .advance(u64::try_from(by.as_millis()).unwrap_or(u64::MAX));
    }

    /// The quotas in force: `{perUserPerMinute, perProjectPerMinute, projectStatus}`.
    pub fn quota_limits(&self) -> Value {
        self.quotas().limits.json()
    }

    /// Every route: OAuth, Calendar API, batch and the `/emulator/` control API.
    pub fn router(&self) -> Router {
        Router::new()
            .merge(oauth::routes())
            .merge(calendar::routes())
            .merge(batch::routes())
            .merge(control::routes())
            .route_layer(from_fn_with_state(self.clone(), middleware::faults))
            .fallback(middleware::not_found)
            .method_not_allowed_fallback(middleware::not_found)
            .layer(from_fn_with_state(self.clone(), middleware::record))
            .with_state(self.clone())
    }

    /// Serves on `listener` until `shutdown` completes, then drains connections.
    pub async fn serve<F>(&self, listener: TcpListener, shutdown: F) -> std::io::Result<()>
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        server::serve(listener, self.router(), shutdown).await
    }

    /// Binds 127.0.0.1 on a free port and serves in a background task.
    pub async fn spawn(config: EmulatorConfig) -> std::io::Result<RunningEmulator> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let emulator = Emulator::new(config);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let emu = emulator.clone();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = rx.await;
            };
            if let Err(e) = emu.serve(listener, shutdown).await {
                tracing::error!(error = %e, "emulator server failed");
            }
        });
        Ok(RunningEmulator {
            addr,
            emulator,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    /// Creates an account (with its primary calendar) unless it exists; returns
    /// `{sub, email, name}`.
    pub fn create_account(&self, email: &str, name: Option<&str>) -> Value {
        self.lock().ensure_account(email, name).json()
    }

    /// Adds a secondary calendar owned by `email`; returns its calendarList entry.
    pub fn create_calendar(
        &self,
        email: &str,
        summary: &str,
        time_zone: Option<&str>,
    ) -> Result<Value, EmulatorError> {
        let mut st = self.lock();
        if st.account(email).is_none() {
            return Err(EmulatorError::UnknownAccount(email.to_owned()));
        }
        control::create_calendar(&mut st, email, summary, time_zone, Role::Owner).map_err(EmulatorError::from)
    }

    /// Gives `email` access to `calendar_id` with `access_role`
    /// (owner|writer|reader|freeBusyReader); returns the new calendarList entry.
    pub fn share_calendar(
        &self,
        calendar_id: &str,
        email: &str,
        access_role: &str,
    ) -> Result<Value, EmulatorError> {
        let mut st = self.lock();
        if st.account(email).is_none() {
            return Err(EmulatorError::UnknownAccount(email.to_owned()));
        }
        if !st.calendars.contains_key(calendar_id) {
            return Err(EmulatorError::UnknownCalendar(calendar_id.to_owned()));
        }
        control::share_calendar(&mut st, calendar_id, email, access_role).map_err(EmulatorError::from)
    }

    /// Inserts an event as the calendar's owner, exactly as events.insert would.
    pub fn insert_event(&self, calendar_id: &str, event: Value) -> Result<Value, EmulatorError> {
        calendar::events::insert_as_owner(self, calendar_id, event)
    }

    /// An access token for `email` with every Calendar scope plus openid, email and profile.
    pub fn issue_access_token(&self, email: &str) -> Result<String, EmulatorError> {
        let mut st = self.lock();
        oauth::issue_direct_token(&mut st, self.config(), email, None)
            .map(|(token, _)| token)
            .ok_or_else(|| EmulatorError::UnknownAccount(email.to_owned()))
    }

    /// Revokes every grant of `email`: refresh tokens give invalid_grant, access tokens 401.
    pub fn revoke_account(&self, email: &str) -> Result<usize, EmulatorError> {
        let mut st = self.lock();
        if st.account(email).is_none() {
            return Err(EmulatorError::UnknownAccount(email.to_owned()));
        }
        Ok(oauth::revoke_account(&mut st, email))
    }

    /// Makes every access token answer 401 from now on.
    pub fn expire_access_tokens(&self) -> usize {
        oauth::expire_all(&mut self.lock())
    }

    /// The next incremental list on `calendar_id` answers 410 fullSyncRequired.
    pub fn invalidate_sync_tokens(&self, calendar_id: &str) -> Result<(), EmulatorError> {
        let mut st = self.lock();
        let cal = st
            .calendars
            .get_mut(calendar_id)
            .ok_or_else(|| EmulatorError::UnknownCalendar(calendar_id.to_owned()))?;
        cal.epoch += 1;
        Ok(())
    }

    /// Forgets everything: accounts, calendars, tokens, channels, faults, log and stats.
    pub fn reset(&self) {
        {
            let mut st = self.lock();
            st.stop_all_channels();
            *st = State::new();
        }
        // Back to the start-up quotas, with empty windows.
        *self.quotas() = Quotas::new(QuotaLimits::from_config(self.config()));
    }

    /// Request counts: `{totalRequests, batchRequests, batchParts, byRoute: {"GET /calendar/v3/...": n},
    /// quotaRefusals: {total, byReason: {"userRateLimitExceeded": n, "rateLimitExceeded": n}}}`.
    pub fn stats(&self) -> Value {
        let refusals = self.quotas().refusals_json();
        let st = self.lock();
        json!({
            "totalRequests": st.stats.total,
            "batchRequests": st.stats.batch_requests,
            "batchParts": st.stats.batch_parts,
            "byRoute": st.stats.by_route,
            "quotaRefusals": refusals,
        })
    }

    /// The request log: `[{method, path, query, status, time, route, batchPart}]`.
    pub fn requests(&self) -> Value {
        let st = self.lock();
        json!(st.log.iter().collect::<Vec<_>>())
    }
}

/// An emulator serving on a local port in a background task.
#[derive(Debug)]
pub struct RunningEmulator {
    pub addr: SocketAddr,
    pub emulator: Emulator,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RunningEmulator {
    /// `http://127.0.0.1:PORT`, to use as accounts, OAuth and API base URL alike.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting connections and waits for the server task to end.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
