//! The first minutes of a person with Chronos: the calendars are there when the browser lands after the
//! sign-in, a failed sign-in's error reaches the page it lands on, the server answers on every loopback
//! name in development, and the small answers (batches, field order) are the ones the spec asks for.

use std::time::Duration;

use chronos::config::Environment;
use reqwest::{StatusCode, header};
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_code};

const CALENDARS: &str =
    "{ calendars { id accountId googleCalendarId summary primary cacheStatus cachedAt } }";

fn no_workers(settings: &mut chronos::config::Settings) {
    settings.scheduler_enabled = false;
}

async fn calendars(app: &TestApp) -> Vec<Value> {
    app.data(CALENDARS, json!({})).await["calendars"]
        .as_array()
        .expect("calendars")
        .clone()
}

fn by_google_id<'a>(calendars: &'a [Value], google_id: &str) -> &'a Value {
    calendars
        .iter()
        .find(|c| c["googleCalendarId"] == google_id)
        .unwrap_or_else(|| panic!("no calendar {google_id} in {calendars:?}"))
}

async fn wait_idle(app: &TestApp) {
    let state = app.app_state().await;
    assert!(
        chronos::jobs::wait_idle(&state.db, Duration::from_secs(30))
            .await
            .expect("wait_idle"),
        "background jobs still busy"
    );
}

#[tokio::test]
async fn calendars_are_there_in_the_first_request_after_sign_in_and_connect() {
    // No workers: whatever the first requests see was listed by the callbacks themselves.
    let app = TestApp::spawn_with(no_workers).await;
    app.emulator().create_account("bob@example.com", Some("Bob"));
    app.emulator()
        .create_calendar("bob@example.com", "Side project", None)
        .expect("secondary calendar");

    app.sign_in("alice@example.com").await;
    let first = calendars(&app).await;
    assert_eq!(first.len(), 1, "{first:?}");
    let primary = by_google_id(&first, "alice@example.com");
    assert_eq!(primary["primary"], true);
    // Listed, its events not yet: a client shows "loading", not an empty week.
    assert_eq!(primary["cacheStatus"], "PENDING");
    assert_eq!(primary["cachedAt"], Value::Null);

    let landing = app.connect_account("bob@example.com").await;
    assert!(!landing.contains("error="), "connect failed: {landing}");
    let second = calendars(&app).await;
    let side = second
        .iter()
        .find(|c| c["summary"] == "Side project")
        .unwrap_or_else(|| panic!("the connected account's secondary calendar in {second:?}"));
    assert_eq!(side["primary"], false);
    assert_eq!(side["cacheStatus"], "PENDING");
    by_google_id(&second, "bob@example.com");
    assert_eq!(second.len(), 3, "{second:?}");

    // The events fill in the background: once the jobs ran, every cache is READY with its time.
    let state = app.app_state().await;
    let workers = chronos::app::start_workers(&state);
    wait_idle(&app).await;
    let ready = calendars(&app).await;
    assert_eq!(ready.len(), 3, "{ready:?}");
    for calendar in &ready {
        assert_eq!(calendar["cacheStatus"], "READY", "{calendar}");
        assert!(calendar["cachedAt"].is_string(), "{calendar}");
    }

    // Bob's grant revoked: his calendars' caches cannot refresh any more, and say so; Alice's stay READY.
    app.emulator().revoke_account("bob@example.com").expect("revoke");
    app.emulator().expire_access_tokens();
    let bob_account = side["accountId"].clone();
    let refused = app
        .graphql(
            "mutation($id: ID!) { refreshCalendars(accountId: $id) { id } }",
            json!({ "id": bob_account }),
        )
        .await;
    assert_eq!(error_code(&refused), Some("NEEDS_REAUTH"), "{refused}");
    for calendar in calendars(&app).await {
        let expected = if calendar["accountId"] == bob_account {
            "FAILED"
        } else {
            "READY"
        };
        assert_eq!(calendar["cacheStatus"], expected, "{calendar}");
        assert!(calendar["cachedAt"].is_string(), "{calendar}");
    }
    state.shutdown.cancel();
    drop(workers);
    app.stop().await;
}

#[tokio::test]
async fn a_failed_listing_at_sign_in_does_not_fail_the_sign_in() {
    let app = TestApp::spawn().await;
    let fault = reqwest::Client::new()
        .post(app.emulator_url("/emulator/faults"))
        .json(
            &json!({ "method": "GET", "path": "/calendar/v3/users/me/calendarList", "status": 400,
                       "reason": "badRequest", "times": 1 }),
        )
        .send()
        .await
        .expect("fault");
    assert!(fault.status().is_success());

    app.sign_in("alice@example.com").await;
    assert_eq!(app.me().await["email"], "alice@example.com");
    // The background job lists them instead.
    wait_idle(&app).await;
    let listed = calendars(&app).await;
    assert_eq!(by_google_id(&listed, "alice@example.com")["cacheStatus"], "READY");
    let statuses: Vec<Value> = app
        .emulator()
        .requests()
        .as_array()
        .expect("request log")
        .iter()
        .filter(|r| r["path"] == "/calendar/v3/users/me/calendarList")
        .map(|r| r["status"].clone())
        .collect();
    assert_eq!(
        statuses,
        [json!(400), json!(200)],
        "the sign-in's listing failed, the job's did not"
    );
    app.stop().await;
}

impl TestApp {
    /// A client sharing this browser's cookies that follows redirects, as a browser does.
    fn following(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_provider(self.jar())
            .redirect(reqwest::redirect::Policy::limited(10))
            .build()
            .expect("client")
    }

    /// Starts `connectGoogleAccount` as `email` and follows every redirect; returns where the browser lands.
    async fn connect_following(&self, email: &str, redirect_to: Option<&str>) -> reqwest::Response {
        let data = self
            .data(
                "mutation($hint: String, $to: String) { connectGoogleAccount(loginHint: $hint, redirectTo: $to) { url } }",
                json!({ "hint": email, "to": redirect_to }),
            )
            .await;
        let url = data["connectGoogleAccount"]["url"].as_str().expect("url");
        self.following().get(url).send().await.expect("follow")
    }
}

fn query_error(url: &reqwest::Url) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == "error")
        .map(|(_, v)| v.into_owned())
}

#[tokio::test]
async fn a_failed_connect_shows_its_error_where_the_browser_lands() {
    let app = TestApp::spawn().await;
    app.sign_in("alice@example.com").await;
    let bob = app.new_browser();
    bob.sign_in("bob@example.com").await;

    // Positive control: a connect that works lands on the playground with no error.
    let fine = bob.connect_following("carol@example.com", None).await;
    assert_eq!(fine.status(), StatusCode::OK);
    assert_eq!(fine.url().path(), "/graphql");
    assert_eq!(query_error(fine.url()), None);

    // Alice's account is hers: Bob's connect fails, and the playground he lands on is told why.
    let refused = bob.connect_following("alice@example.com", None).await;
    assert_eq!(refused.status(), StatusCode::OK);
    assert_eq!(refused.url().path(), "/graphql", "{}", refused.url());
    assert_eq!(query_error(refused.url()).as_deref(), Some("account_in_use"));
    let page = refused.text().await.expect("page");
    assert!(
        page.contains("<html") || page.contains("<!DOCTYPE"),
        "the playground page"
    );

    // With redirectTo, the frontend page gets it.
    let to_frontend = bob
        .connect_following("alice@example.com", Some("/app/settings"))
        .await;
    assert_eq!(to_frontend.url().path(), "/app/settings");
    assert_eq!(query_error(to_frontend.url()).as_deref(), Some("account_in_use"));

    // `/` carries a code over, and nothing that is not shaped like one.
    let root = app
        .following()
        .get(app.url("/?error=access_denied"))
        .send()
        .await
        .expect("/");
    assert_eq!(root.url().path(), "/graphql");
    assert_eq!(query_error(root.url()).as_deref(), Some("access_denied"));
    let odd = app
        .following()
        .get(app.url("/?error=%3Cscript%3E"))
        .send()
        .await
        .expect("/");
    assert_eq!(odd.url().path(), "/graphql");
    assert_eq!(query_error(odd.url()), None);
    app.stop().await;
}

fn port(app: &TestApp) -> u16 {
    url::Url::parse(&app.address)
        .expect("address")
        .port()
        .expect("port")
}

async fn post_from(app: &TestApp, origin: &str) -> reqwest::Response {
    app.client
        .post(app.url("/graphql"))
        .header(header::ORIGIN, origin)
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .expect("POST")
}

#[tokio::test]
async fn loopback_names_are_one_origin_in_development_and_refusals_name_the_origin() {
    let app = TestApp::spawn().await;
    let port = port(&app);
    for origin in [
        format!("http://127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
        format!("http://[::1]:{port}"),
    ] {
        let response = post_from(&app, &origin).await;
        assert_eq!(response.status(), StatusCode::OK, "{origin}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["data"]["__typename"], "Query", "{origin}");
        // CORS agrees with the Origin check.
        let preflight = app
            .client
            .request(reqwest::Method::OPTIONS, app.url("/graphql"))
            .header(header::ORIGIN, &origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type,x-csrf-token")
            .send()
            .await
            .expect("preflight");
        assert_eq!(
            preflight.headers().get(header::ACCESS_CONTROL_ALLOW_ORIGIN),
            Some(&header::HeaderValue::from_str(&origin).expect("origin")),
            "{origin}"
        );
    }

    for origin in [
        "http://evil.example".to_string(),
        format!("http://localhost:{}", port.wrapping_add(1)),
        format!("https://localhost:{port}"),
    ] {
        let response = post_from(&app, &origin).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{origin}");
        let body: Value = response.json().await.expect("json");
        let message = body["error"]["message"].as_str().expect("message");
        assert!(message.contains(&origin), "{message}");
        assert!(message.contains("FRONTEND_ORIGINS"), "{message}");
    }
    app.stop().await;
}

#[tokio::test]
async fn in_production_only_the_configured_loopback_name_is_allowed() {
    let app = TestApp::spawn_with(|s| s.environment = Environment::Production).await;
    let port = port(&app);
    let allowed = post_from(&app, &format!("http://127.0.0.1:{port}")).await;
    assert_eq!(allowed.status(), StatusCode::OK);
    let refused = post_from(&app, &format!("http://localhost:{port}")).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    app.stop().await;
}

#[tokio::test]
async fn a_batch_is_told_batches_are_not_supported() {
    let app = TestApp::spawn().await;
    let one = app
        .post_raw("/graphql", "application/json", r#"{"query":"{ __typename }"}"#)
        .await;
    assert_eq!(one.status(), StatusCode::OK);

    let batch = app
        .post_raw(
            "/graphql",
            "application/json",
            r#" [{"query":"{ __typename }"},{"query":"{ __typename }"}]"#,
        )
        .await;
    assert_eq!(batch.status(), StatusCode::BAD_REQUEST);
    let body: Value = batch.json().await.expect("json");
    assert_eq!(body["error"]["code"], "BAD_USER_INPUT");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(message.contains("not supported"), "{message}");
    assert!(message.contains("batch"), "{message}");
    assert!(!message.contains("invalid type"), "{message}");
    app.stop().await;
}

#[tokio::test]
async fn root_fields_come_back_in_the_order_the_query_asked() {
    let app = TestApp::spawn().await;
    app.sign_in("alice@example.com").await;
    // Neither alphabetical nor the schema's order.
    let fields = ["todoLists", "me", "calendars", "accounts"];
    let query = "{ todoLists { id } me { id } calendars { id } accounts { id } }";
    for attempt in 0..50 {
        let response = app.post_graphql(query, json!({})).await;
        assert_eq!(response.status(), StatusCode::OK);
        // The raw text: a parsed map would not keep the order.
        let text = response.text().await.expect("body");
        let positions: Vec<usize> = fields
            .iter()
            .map(|f| {
                text.find(&format!("\"{f}\":"))
                    .unwrap_or_else(|| panic!("{f} in {text}"))
            })
            .collect();
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "attempt {attempt}: fields out of order in {text}"
        );
        assert!(
            error_code(&serde_json::from_str(&text).expect("json")).is_none(),
            "{text}"
        );
    }
    app.stop().await;
}

const CHRONOS: &str = env!("CARGO_BIN_EXE_chronos");

/// `chronos serve` in an empty directory with nothing configured but `BIND_ADDR`.
fn bare_serve(dir: &std::path::Path, bind_addr: &str) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(CHRONOS);
    command
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("BIND_ADDR", bind_addr)
        .env("RUST_LOG", "warn")
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    command
}

#[tokio::test]
async fn a_taken_port_fails_with_one_message_before_any_file_is_created() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let dir = tempfile::tempdir().expect("dir");
    let output = bare_serve(dir.path(), &addr).output().await.expect("run chronos");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.matches("could not listen on").count(), 1, "{stderr}");
    assert!(stderr.contains(&addr) && stderr.contains("BIND_ADDR"), "{stderr}");
    let created: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(created.is_empty(), "files created: {created:?}");
    drop(taken);
}

#[tokio::test]
async fn without_google_start_up_warns_once_and_sign_in_points_at_the_demo() {
    use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _};

    let dir = tempfile::tempdir().expect("dir");
    let mut child = bare_serve(dir.path(), "127.0.0.1:0").spawn().expect("spawn");
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    tokio::time::timeout(Duration::from_secs(60), stdout.read_line(&mut first))
        .await
        .expect("the server starts")
        .expect("read stdout");
    let address = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line: {first}"))
        .to_string();

    let body: Value = reqwest::Client::new()
        .post(format!("{address}/graphql"))
        .json(&json!({ "query": "mutation { startGoogleSignIn { url } }" }))
        .send()
        .await
        .expect("POST")
        .json()
        .await
        .expect("json");
    assert_eq!(error_code(&body), Some("UPSTREAM_UNAVAILABLE"), "{body}");
    let message = body["errors"][0]["message"].as_str().expect("message");
    assert!(
        message.contains("chronos demo") && message.contains("GOOGLE_CLIENT_ID"),
        "{message}"
    );

    child.start_kill().expect("kill");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .await
        .expect("read stderr");
    let _ = child.wait().await;
    assert_eq!(
        stderr.matches("Google sign-in is disabled").count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("chronos demo"), "{stderr}");
    // stderr is a pipe here, not a terminal: no colour codes.
    assert!(
        stderr.contains("WARN") && !stderr.contains('\u{1b}'),
        "{stderr:?}"
    );
}
