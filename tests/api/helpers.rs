//! `TestApp`: a real Chronos server on port 0 with a fresh database, and a cookie-keeping client.
//!
//! The database is a temporary SQLite file, or a fresh PostgreSQL database created on the server named by
//! `TEST_DATABASE_URL` (and dropped when the test ends), so tests run in parallel on either backend.

use std::{
    path::Path,
    sync::{Arc, LazyLock},
    time::Duration,
};

use chronos::{
    app::Application,
    config::{GoogleQuota, GoogleSettings, Settings},
    crypto::ExposeSecret,
};
use futures::{SinkExt, StreamExt};
use google_emulator::{Emulator, EmulatorConfig, RunningEmulator};
use reqwest::{Client, Response, StatusCode, cookie::CookieStore, cookie::Jar, header};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::net::TcpStream;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{Message, client::IntoClientRequest, http::HeaderValue, protocol::CloseFrame},
};

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
    /// `http://host:port` of the separate metrics listener, when `METRICS_ADDR` is set.
    metrics_address: Option<String>,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Server {
    async fn start(&self) -> String {
        let app = Application::build(self.settings.clone(), true)
            .await
            .expect("build app");
        let address = format!("http://{}", app.local_addr());
        let metrics_address = app.metrics_addr().map(|addr| format!("http://{addr}"));
        let state = app.state().clone();
        let (shutdown, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until_stopped(async move {
            let _ = rx.await;
        }));
        *self.running.lock().await = Some(Running {
            state,
            metrics_address,
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
        // Unpaced, like the emulator by default: tests that exercise pacing set both.
        settings.google.quota = GoogleQuota::UNPACED;
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
                ("GOOGLE_QUOTA_PER_USER_PER_MINUTE", "0".to_string()),
                ("GOOGLE_QUOTA_PER_PROJECT_PER_MINUTE", "0".to_string()),
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

    /// Waits until `at_least` websockets on this server would hear a session's end announced now (on
    /// PostgreSQL, once the server listens).
    pub async fn wait_for_session_watchers(&self, at_least: usize) {
        wait_for_session_watchers(&self.server_state().await, at_least).await;
    }

    /// The running server's own state: its pool, limiters, progress bus and shutdown token, to call
    /// domain functions as the server would.
    pub async fn server_state(&self) -> chronos::state::AppState {
        self.server
            .running
            .lock()
            .await
            .as_ref()
            .map(|running| running.state.clone())
            .expect("server running")
    }

    /// `http://host:port` of the running server's separate metrics listener (`METRICS_ADDR`), if any.
    pub async fn metrics_address(&self) -> Option<String> {
        self.server
            .running
            .lock()
            .await
            .as_ref()
            .and_then(|running| running.metrics_address.clone())
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

    /// The files a page at `page` links under `prefix`, checked as an embedded bundle serves them: all
    /// under one 16-character content hash, each 200 with a year of caching, scripts and stylesheets
    /// compressed, scripts as JavaScript; a stale hash is a 404. Returns the hash.
    pub async fn assert_hashed_bundle(&self, page: &str, prefix: &str) -> String {
        let html = self.get(page).await.text().await.expect("html");
        let links: Vec<&str> = html
            .split('"')
            .filter(|s| s.starts_with(&format!("{prefix}/")))
            .collect();
        assert!(links.len() >= 3, "stylesheet, script and icon: {html}");
        let hash = links[0][prefix.len() + 1..]
            .split('/')
            .next()
            .expect("hash")
            .to_owned();
        assert_eq!(hash.len(), 16, "{}", links[0]);
        for link in &links {
            assert!(link.starts_with(&format!("{prefix}/{hash}/")), "{link}");
            let response = self
                .client
                .get(self.url(link))
                .header(header::ACCEPT_ENCODING, "gzip")
                .send()
                .await
                .expect("asset");
            assert_eq!(response.status(), StatusCode::OK, "{link}");
            assert_eq!(
                response.headers()[header::CACHE_CONTROL],
                "public, max-age=31536000, immutable"
            );
            if link.ends_with(".js") || link.ends_with(".css") {
                assert_eq!(response.headers()[header::CONTENT_ENCODING], "gzip", "{link}");
            }
            if link.ends_with(".js") {
                let content_type = response.headers()[header::CONTENT_TYPE].to_str().expect("ascii");
                assert!(content_type.starts_with("text/javascript"), "{content_type}");
            }
        }
        let stale = self.get(&format!("{prefix}/0000000000000000/main.js")).await;
        assert_eq!(
            stale.status(),
            StatusCode::NOT_FOUND,
            "a stale hash is not today's file"
        );
        hash
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

    /// A `graphql-transport-ws` connection to this browser's server, as a page of it opens one: with the
    /// browser's cookies and the server's origin; acknowledged.
    pub async fn websocket(&self) -> Socket {
        self.websocket_to(&self.address).await
    }

    /// Like [`Self::websocket`], to another instance at `server` (an `http://host:port` address) with this
    /// browser's cookies and that instance's origin.
    pub async fn websocket_to(&self, server: &str) -> Socket {
        self.websocket_with(server, Some(server)).await
    }

    /// A `graphql-transport-ws` connection to `server` with this browser's cookies (if any) and `origin`
    /// (none: a non-browser client); acknowledged.
    pub async fn websocket_with(&self, server: &str, origin: Option<&str>) -> Socket {
        let url = format!("{}/graphql/ws", server.replacen("http://", "ws://", 1));
        let mut request = url.into_client_request().expect("request");
        let cookies = self
            .jar
            .cookies(&url::Url::parse(&self.address).expect("address"));
        let headers = request.headers_mut();
        if let Some(cookies) = cookies {
            headers.insert("cookie", cookies);
        }
        if let Some(origin) = origin {
            headers.insert("origin", HeaderValue::from_str(origin).expect("origin"));
        }
        headers.insert(
            "sec-websocket-protocol",
            HeaderValue::from_static("graphql-transport-ws"),
        );
        let (inner, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("websocket");
        let mut socket = Socket { inner };
        socket
            .send(json!({ "type": "connection_init", "payload": {} }))
            .await;
        let ack = socket.receive(Duration::from_secs(10)).await.expect("ack");
        assert_eq!(ack["type"], "connection_ack", "{ack}");
        socket
    }
}

/// A client's end of a `graphql-transport-ws` connection.
pub struct Socket {
    inner: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Socket {
    pub async fn send(&mut self, message: Value) {
        self.try_send(Message::text(message.to_string()))
            .await
            .expect("send");
    }

    /// Sends a raw message; an error when the connection is closed.
    pub async fn try_send(&mut self, message: Message) -> Result<(), tokio_tungstenite::tungstenite::Error> {
        self.inner.send(message).await
    }

    /// The next JSON message (pings answered and skipped), or `None` once the connection is closed or
    /// after `timeout`.
    pub async fn receive(&mut self, timeout: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let message = tokio::time::timeout_at(deadline, self.inner.next())
                .await
                .ok()??;
            match message.ok()? {
                Message::Text(text) => {
                    let value: Value = serde_json::from_str(&text).expect("JSON message");
                    if value["type"] == "ping" {
                        self.send(json!({ "type": "pong" })).await;
                        continue;
                    }
                    return Some(value);
                }
                Message::Close(_) => return None,
                _ => {}
            }
        }
    }

    /// The next JSON message, which must come within 10 s.
    pub async fn next_message(&mut self) -> Value {
        self.receive(Duration::from_secs(10))
            .await
            .expect("a message within 10 s")
    }

    /// Starts operation `id` with `payload` (`query`, and `variables`).
    pub async fn subscribe(&mut self, id: &str, payload: Value) {
        self.send(json!({ "id": id, "type": "subscribe", "payload": payload }))
            .await;
    }

    /// Runs one operation and returns its result (the `next` payload), after its `complete`.
    pub async fn run(&mut self, id: &str, query: &str) -> Value {
        self.subscribe(id, json!({ "query": query })).await;
        let next = self.next_message().await;
        assert_eq!(
            (next["type"].as_str(), next["id"].as_str()),
            (Some("next"), Some(id)),
            "{next}"
        );
        let complete = self.next_message().await;
        assert_eq!(
            (complete["type"].as_str(), complete["id"].as_str()),
            (Some("complete"), Some(id)),
            "{complete}"
        );
        next["payload"].clone()
    }

    /// Waits up to `timeout` for the server to end the connection (pings are answered) and returns its
    /// close frame, `None` when it just dropped the connection. Panics when a message comes instead, or
    /// nothing within `timeout`.
    pub async fn closed(&mut self, timeout: Duration) -> Option<CloseFrame> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let message = tokio::time::timeout_at(deadline, self.inner.next())
                .await
                .unwrap_or_else(|_| panic!("the socket is still open after {timeout:?}"));
            match message {
                None | Some(Err(_)) => return None,
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(Message::Text(text))) => {
                    let value: Value = serde_json::from_str(&text).expect("JSON message");
                    assert_eq!(value["type"], "ping", "a message instead of the close: {value}");
                    self.send(json!({ "type": "pong" })).await;
                }
                Some(Ok(_)) => {}
            }
        }
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
    wait_for_live("progress", || state.progress.live_subscribers(), at_least).await;
}

/// Waits (up to 10 s) until `at_least` websockets on the instance of `state` would hear a session's end
/// announced now, on any instance.
pub async fn wait_for_session_watchers(state: &chronos::state::AppState, at_least: usize) {
    wait_for_live("session", || state.ended_sessions.live_subscribers(), at_least).await;
}

/// Waits (up to 10 s) until `at_least` live subscriptions (`eventChanges`, `calendarsChanged`) on the
/// instance of `state` would hear a cache change announced now, on any instance.
pub async fn wait_for_cache_subscribers(state: &chronos::state::AppState, at_least: usize) {
    wait_for_live(
        "cache change",
        || state.cache_changes.live_subscribers(),
        at_least,
    )
    .await;
}

async fn wait_for_live(bus: &str, live: impl Fn() -> usize, at_least: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while live() < at_least {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} live {bus} subscribers, expected {at_least}",
            live()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
