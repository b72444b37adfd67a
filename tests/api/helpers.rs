//! `TestApp`: a real Chronos server on port 0 with a fresh database, and a cookie-keeping client.
//!
//! The database is a temporary SQLite file, or a fresh PostgreSQL database created on the server named by
//! `TEST_DATABASE_URL` (and dropped when the test ends), so tests run in parallel on either backend.

use std::{
    path::Path,
    sync::{Arc, LazyLock},
};

use chronos::{
    app::Application,
    config::{GoogleSettings, Settings},
    crypto::ExposeSecret,
};
use google_emulator::{Emulator, EmulatorConfig, RunningEmulator};
use reqwest::{Client, Response, StatusCode, cookie::CookieStore, cookie::Jar, header};
use serde_json::{Value, json};
use tempfile::TempDir;

static TRACING: LazyLock<()> = LazyLock::new(|| {
    if std::env::var_os("TEST_LOG").is_some() {
        chronos::telemetry::init(chronos::config::LogFormat::Text);
    }
});

/// A fresh database for one test.
pub struct TestDatabase {
    pub url: String,
    postgres: Option<(String, String)>,
    _dir: TempDir,
}

impl TestDatabase {
    pub async fn create() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        match std::env::var("TEST_DATABASE_URL").ok().filter(|u| !u.is_empty()) {
            Some(admin_url) => {
                let name = format!("chronos_test_{}", uuid::Uuid::new_v4().simple());
                let admin = sea_orm::Database::connect(&admin_url)
                    .await
                    .expect("connect to TEST_DATABASE_URL");
                sea_orm::ConnectionTrait::execute_unprepared(&admin, &format!("CREATE DATABASE \"{name}\""))
                    .await
                    .expect("create test database");
                admin.close().await.ok();
                let url = replace_database(&admin_url, &name);
                Self {
                    url,
                    postgres: Some((admin_url, name)),
                    _dir: dir,
                }
            }
            None => {
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("chronos.db").display());
                Self {
                    url,
                    postgres: None,
                    _dir: dir,
                }
            }
        }
    }

    pub fn dir(&self) -> &Path {
        self._dir.path()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = self.postgres.take() {
            // Drop runs inside the test's runtime; a separate thread with its own runtime may block.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                runtime.block_on(async move {
                    if let Ok(admin) = sea_orm::Database::connect(&admin_url).await {
                        let _ = sea_orm::ConnectionTrait::execute_unprepared(
                            &admin,
                            &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
                        )
                        .await;
                        admin.close().await.ok();
                    }
                });
            })
            .join();
        }
    }
}

fn replace_database(url: &str, name: &str) -> String {
    let mut parsed = url::Url::parse(url).expect("TEST_DATABASE_URL is a URL");
    parsed.set_path(&format!("/{name}"));
    parsed.to_string()
}

/// The server side of a test: Chronos, its database and the Google emulator.
pub struct Server {
    pub db: TestDatabase,
    pub emulator: RunningEmulator,
    settings: Settings,
    running: tokio::sync::Mutex<Option<Running>>,
}

struct Running {
    state: chronos::state::AppState,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Server {
    async fn start(&self) -> String {
        let app = Application::build(self.settings.clone(), true)
            .await
            .expect("build app");
        let address = format!("http://{}", app.local_addr());
        let state = app.state().clone();
        let (shutdown, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until_stopped(async move {
            let _ = rx.await;
        }));
        *self.running.lock().await = Some(Running {
            state,
            shutdown,
            task,
        });
        address
    }

    async fn stop(&self) {
        if let Some(running) = self.running.lock().await.take() {
            let _ = running.shutdown.send(());
            running
                .task
                .await
                .expect("server task")
                .expect("server stopped cleanly");
        }
    }
}

/// One browser (its own cookie jar) talking to the shared server.
pub struct TestApp {
    pub address: String,
    pub client: Client,
    jar: Arc<Jar>,
    pub server: Arc<Server>,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Spawns with settings adjusted by `configure` (after the test defaults are set).
    /// The emulator runs without request quotas: tests that exercise pacing set them explicitly.
    pub async fn spawn_with(configure: impl FnOnce(&mut Settings)) -> Self {
        Self::spawn_with_emulator(EmulatorConfig::without_quotas(), configure).await
    }

    /// Spawns against an emulator with the given switches.
    pub async fn spawn_with_emulator(
        emulator_config: EmulatorConfig,
        configure: impl FnOnce(&mut Settings),
    ) -> Self {
        LazyLock::force(&TRACING);
        let db = TestDatabase::create().await;
        let emulator = Emulator::spawn(emulator_config).await.expect("spawn emulator");
        let mut settings = Settings::for_local(&db.url, db.dir()).expect("test settings");
        let google = url::Url::parse(&emulator.base_url()).expect("emulator URL");
        settings.google = GoogleSettings::single_host(&google);
        configure(&mut settings);
        let server = Arc::new(Server {
            db,
            emulator,
            settings,
            running: tokio::sync::Mutex::new(None),
        });
        let address = server.start().await;
        Self::browser(address, server)
    }

    /// Spawns as a production deployment would run: every setting read by `Settings::from_vars` with
    /// `ENVIRONMENT=production` (so the production defaults apply), on the test database, secrets and
    /// emulator, behind `PUBLIC_URL=https://chronos.test`, with rate limits off; `vars` add to or override
    /// those variables.
    pub async fn spawn_production(vars: &[(&str, &str)]) -> Self {
        let extra: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Self::spawn_with(move |settings| {
            let google = &settings.google;
            let mut map: std::collections::HashMap<String, String> = [
                ("ENVIRONMENT", "production".to_string()),
                ("DATABASE_URL", settings.database_url.clone()),
                ("BIND_ADDR", "127.0.0.1:0".to_string()),
                ("PUBLIC_URL", "https://chronos.test".to_string()),
                ("COOKIE_SECURE", "true".to_string()),
                ("ENCRYPTION_KEYS", settings.encryption_keys.to_env_string()),
                ("CSRF_SECRET", settings.csrf_secret.expose_secret().to_string()),
                ("GOOGLE_CLIENT_ID", google.client_id.clone().unwrap_or_default()),
                (
                    "GOOGLE_CLIENT_SECRET",
                    google
                        .client_secret
                        .as_ref()
                        .map(|s| s.expose_secret().to_string())
                        .unwrap_or_default(),
                ),
                ("GOOGLE_ACCOUNTS_URL", google.accounts_url.to_string()),
                ("GOOGLE_OAUTH_URL", google.oauth_url.to_string()),
                ("GOOGLE_API_URL", google.api_url.to_string()),
                ("RATE_LIMIT_SIGNIN_PER_MIN", "0".to_string()),
                ("RATE_LIMIT_API_PER_MIN", "0".to_string()),
                ("CHRONOS_DATA_DIR", settings.data_dir.display().to_string()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
            map.extend(extra);
            *settings = Settings::from_vars(&map).expect("production settings");
        })
        .await
    }

    fn browser(address: String, server: Arc<Server>) -> Self {
        let jar = Arc::new(Jar::default());
        let client = Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Self {
            address,
            client,
            jar,
            server,
        }
    }

    /// Another browser on the same server, with no cookies.
    pub fn new_browser(&self) -> Self {
        Self::browser(self.address.clone(), self.server.clone())
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(self) {
        self.server.stop().await;
    }

    /// Stops the server and starts it again on the same database; this browser follows it to the new port.
    pub async fn restart(&mut self) {
        self.server.stop().await;
        self.address = self.server.start().await;
    }

    /// SQL statements the running server has executed so far.
    pub async fn statements(&self) -> u64 {
        let running = self.server.running.lock().await;
        running
            .as_ref()
            .map(|r| r.state.statements.get())
            .unwrap_or_default()
    }

    /// Waits until `at_least` progress subscribers on this server would receive a run's messages.
    pub async fn wait_for_progress_subscribers(&self, at_least: usize) {
        wait_for_progress_subscribers(&self.server_state().await, at_least).await;
    }

    /// The running server's own state (its progress bus included), to call domain functions as the
    /// server would.
    pub async fn server_state(&self) -> chronos::state::AppState {
        self.server
            .running
            .lock()
            .await
            .as_ref()
            .map(|running| running.state.clone())
            .expect("server running")
    }

    pub fn settings(&self) -> &Settings {
        &self.server.settings
    }

    /// Another instance's state on this server's database and settings, to call domain functions
    /// directly. It serves nothing and runs no workers: jobs it enqueues are run by the server's workers,
    /// if it has any.
    pub async fn app_state(&self) -> chronos::state::AppState {
        let db = chronos::app::connect(self.settings(), false)
            .await
            .expect("connect");
        let addr: std::net::SocketAddr = self
            .address
            .trim_start_matches("http://")
            .parse()
            .expect("server address");
        chronos::app::state(db, self.settings().clone().with_bound_addr(addr)).expect("state")
    }

    pub fn emulator(&self) -> &google_emulator::Emulator {
        &self.server.emulator.emulator
    }

    pub fn emulator_url(&self, path: &str) -> String {
        format!("{}{}", self.server.emulator.base_url(), path)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// This browser's cookie jar, to share with another client (one that follows redirects, say).
    pub fn jar(&self) -> Arc<Jar> {
        self.jar.clone()
    }

    /// The value of a cookie this browser holds for the server.
    pub fn cookie(&self, name: &str) -> Option<String> {
        let url = url::Url::parse(&self.address).expect("address");
        let header = self.jar.cookies(&url)?;
        header
            .to_str()
            .ok()?
            .split(';')
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    /// POST /graphql as the SPA does: JSON, with the CSRF cookie's value in `X-CSRF-Token` when it has one.
    pub async fn post_graphql(&self, query: &str, variables: Value) -> Response {
        let mut request = self
            .client
            .post(self.url("/graphql"))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = self.cookie("chronos_csrf") {
            request = request.header("x-csrf-token", token);
        }
        request.send().await.expect("POST /graphql")
    }

    /// POST /graphql and return the JSON body.
    pub async fn graphql(&self, query: &str, variables: Value) -> Value {
        let response = self.post_graphql(query, variables).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.expect("JSON body")
    }

    /// POST /graphql expecting data without errors; returns `data`.
    pub async fn data(&self, query: &str, variables: Value) -> Value {
        let body = self.graphql(query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }

    pub async fn post_raw(&self, path: &str, content_type: &str, body: impl Into<reqwest::Body>) -> Response {
        self.client
            .post(self.url(path))
            .header(header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .expect("POST")
    }

    /// Runs the OAuth flow in this browser: `mutation` (startGoogleSignIn or connectGoogleAccount) with
    /// `loginHint`, Google's consent (the emulator consents at once), and the callback. Returns where the
    /// callback redirected.
    pub async fn google_flow(&self, mutation: &str, email: &str) -> String {
        let query = format!("mutation($hint: String) {{ {mutation}(loginHint: $hint) {{ url }} }}");
        let data = self.data(&query, json!({ "hint": email })).await;
        let authorize = data[mutation]["url"]
            .as_str()
            .expect("authorization URL")
            .to_string();
        let consent = self.client.get(&authorize).send().await.expect("GET authorize");
        assert_eq!(consent.status(), StatusCode::FOUND, "the emulator redirects back");
        let callback = location(&consent);
        assert!(
            callback.starts_with(&self.address),
            "callback {callback} on this server"
        );
        let landing = self.client.get(&callback).send().await.expect("GET callback");
        assert_eq!(landing.status(), StatusCode::FOUND);
        location(&landing)
    }

    /// Signs in as the Google account `email` (created at the emulator when new).
    pub async fn sign_in(&self, email: &str) {
        let landing = self.google_flow("startGoogleSignIn", email).await;
        assert!(!landing.contains("error="), "sign-in failed: {landing}");
    }

    /// Connects another Google account to the signed-in user.
    pub async fn connect_account(&self, email: &str) -> String {
        self.google_flow("connectGoogleAccount", email).await
    }

    pub async fn me(&self) -> Value {
        self.data("{ me { id email name } }", json!({})).await["me"].clone()
    }

    pub async fn accounts(&self) -> Value {
        self.data("{ accounts { id email status } }", json!({})).await["accounts"].clone()
    }

    pub async fn sessions(&self) -> Value {
        self.data(
            "{ sessions { id current userAgent createdAt lastSeenAt } }",
            json!({}),
        )
        .await["sessions"]
            .clone()
    }

    pub async fn revoke_session(&self, id: &str) -> Value {
        self.graphql(
            "mutation($id: ID!) { revokeSession(id: $id) }",
            json!({ "id": id }),
        )
        .await
    }

    pub async fn disconnect_account(&self, id: &str) -> Value {
        self.graphql(
            "mutation($id: ID!) { disconnectGoogleAccount(id: $id) }",
            json!({ "id": id }),
        )
        .await
    }

    pub async fn sign_out(&self) -> Value {
        self.graphql("mutation { signOut }", json!({})).await
    }
}

pub fn location(response: &Response) -> String {
    response.headers()[header::LOCATION]
        .to_str()
        .expect("ascii Location")
        .to_string()
}

/// The `extensions.code` of the first error of a GraphQL response.
pub fn error_code(body: &Value) -> Option<&str> {
    body["errors"][0]["extensions"]["code"].as_str()
}

/// Waits (up to 10 s) until `at_least` progress subscribers on the instance of `state` would receive a
/// message published now: a subscription is live once its stream is registered with the bus (and, on
/// PostgreSQL, the bus listens).
pub async fn wait_for_progress_subscribers(state: &chronos::state::AppState, at_least: usize) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while state.progress.live_subscribers() < at_least {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} live progress subscribers, expected {at_least}",
            state.progress.live_subscribers()
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}
