//! `TestApp`: a real Chronos server on port 0 with a fresh database, and a cookie-keeping client.
//!
//! The database is a temporary SQLite file, or a fresh PostgreSQL database created on the server named by
//! `TEST_DATABASE_URL` (and dropped when the test ends), so tests run in parallel on either backend.

use std::{path::Path, sync::LazyLock};

use chronos::{app::Application, config::Settings};
use reqwest::{Client, Response, StatusCode, header};
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

    pub fn is_postgres(&self) -> bool {
        self.postgres.is_some()
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

pub struct TestApp {
    pub address: String,
    pub client: Client,
    pub db: TestDatabase,
    pub settings: Settings,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Spawns with settings adjusted by `configure` (after the test defaults are set).
    pub async fn spawn_with(configure: impl FnOnce(&mut Settings)) -> Self {
        LazyLock::force(&TRACING);
        let db = TestDatabase::create().await;
        let mut settings = Settings::for_local(&db.url, db.dir()).expect("test settings");
        configure(&mut settings);
        let app = Application::build(settings, true).await.expect("build app");
        let address = format!("http://{}", app.local_addr());
        let settings = app.state().settings.clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until_stopped(async move {
            let _ = rx.await;
        }));
        Self {
            address,
            client: browser_client(),
            db,
            settings,
            shutdown: Some(tx),
            server: Some(server),
        }
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("server task")
                .expect("server stopped cleanly");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    /// POST /graphql as the SPA does.
    pub async fn post_graphql(&self, query: &str, variables: Value) -> Response {
        self.client
            .post(self.url("/graphql"))
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .expect("POST /graphql")
    }

    /// POST /graphql and return the JSON body.
    pub async fn graphql(&self, query: &str, variables: Value) -> Value {
        let response = self.post_graphql(query, variables).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.expect("JSON body")
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
}

/// A client that keeps cookies and does not follow redirects, like a browser tab we can inspect.
pub fn browser_client() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// The `extensions.code` of the first error of a GraphQL response.
pub fn error_code(body: &Value) -> Option<&str> {
    body["errors"][0]["extensions"]["code"].as_str()
}
