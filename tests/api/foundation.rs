//! Health, request ids, the command line, migrations and configuration checks.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::Duration,
};

use reqwest::StatusCode;

use crate::helpers::{TestApp, TestDatabase};

const CHRONOS: &str = env!("CARGO_BIN_EXE_chronos");

#[tokio::test]
async fn healthz_and_readyz_answer_200() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    assert_eq!(app.get("/readyz").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn request_ids_are_honoured_or_generated_and_echoed() {
    let app = TestApp::spawn().await;
    let honoured = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-abc-123")
        .send()
        .await
        .expect("GET");
    assert_eq!(honoured.headers()["x-request-id"], "trace-abc-123");

    let generated = app.get("/healthz").await;
    let id = generated.headers()["x-request-id"].to_str().expect("ascii");
    assert!(uuid::Uuid::parse_str(id).is_ok(), "generated id {id}");

    let replaced = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "x".repeat(500))
        .send()
        .await
        .expect("GET");
    let id = replaced.headers()["x-request-id"].to_str().expect("ascii");
    assert!(
        uuid::Uuid::parse_str(id).is_ok(),
        "an oversized id is replaced, got {id}"
    );
}

#[tokio::test]
async fn unknown_routes_get_a_json_404() {
    let app = TestApp::spawn().await;
    let response = app.get("/nope").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "NOT_FOUND");
}

#[tokio::test]
async fn responses_are_compressed_when_asked() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .get(app.url("/graphql"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("GET");
    assert_eq!(response.headers()["content-encoding"], "gzip");
}

#[tokio::test]
async fn graceful_stop_finishes_cleanly() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    app.stop().await;
}

#[test]
fn schema_graphql_matches_the_schema_command() {
    let checked_in = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql"))
        .expect("schema.graphql at the repository root");
    let output = Command::new(CHRONOS)
        .arg("schema")
        .output()
        .expect("run chronos schema");
    assert!(output.status.success());
    let printed = String::from_utf8(output.stdout).expect("utf-8");
    assert_eq!(printed, chronos::schema::sdl());
    assert!(
        checked_in == printed,
        "schema.graphql is stale: run `cargo run -- schema > schema.graphql`"
    );
}

fn chronos_command(db: &TestDatabase) -> Command {
    let mut command = Command::new(CHRONOS);
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("DATABASE_URL", &db.url)
        .env("CHRONOS_DATA_DIR", db.dir().join("data"))
        .env("RUST_LOG", "warn")
        .current_dir(db.dir());
    command
}

fn run_ok(command: &mut Command) -> String {
    let output = command.output().expect("run chronos");
    assert!(
        output.status.success(),
        "chronos failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

#[tokio::test]
async fn migrate_down_then_up_round_trips() {
    let db = TestDatabase::create().await;
    run_ok(chronos_command(&db).args(["migrate", "up"]));
    let applied = run_ok(chronos_command(&db).args(["migrate", "status"]));
    assert!(!applied.is_empty() && !applied.contains("Pending"), "{applied}");

    run_ok(chronos_command(&db).args(["migrate", "down"]));
    let one_down = run_ok(chronos_command(&db).args(["migrate", "status"]));
    assert_eq!(one_down.matches("Pending").count(), 1, "{one_down}");

    run_ok(chronos_command(&db).args(["migrate", "down", "--all"]));
    let all_down = run_ok(chronos_command(&db).args(["migrate", "status"]));
    assert!(!all_down.contains("Applied"), "{all_down}");

    run_ok(chronos_command(&db).args(["migrate", "up"]));
    let again = run_ok(chronos_command(&db).args(["migrate", "status"]));
    assert_eq!(again, applied);

    run_ok(chronos_command(&db).args(["migrate", "fresh"]));
    assert_eq!(run_ok(chronos_command(&db).args(["migrate", "status"])), applied);
}

#[tokio::test]
async fn production_refuses_missing_keys_and_insecure_cookies() {
    let db = TestDatabase::create().await;
    let output = chronos_command(&db)
        .env("ENVIRONMENT", "production")
        .env("COOKIE_SECURE", "false")
        .output()
        .expect("run chronos");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    for problem in [
        "ENCRYPTION_KEYS must be set",
        "COOKIE_SECURE must be true",
        "PUBLIC_URL must be set",
    ] {
        assert!(stderr.contains(problem), "missing `{problem}` in:\n{stderr}");
    }
    assert!(
        String::from_utf8_lossy(&output.stdout).is_empty(),
        "nothing listened"
    );
}

#[tokio::test]
async fn serve_announces_its_port_and_stops_on_sigterm() {
    let db = TestDatabase::create().await;
    let mut child = chronos_command(&db)
        .env("BIND_ADDR", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn chronos");
    let stdout = child.stdout.take().expect("stdout");
    let first_line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("read stdout");
        line
    })
    .await
    .expect("reader");
    let address = first_line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first_line:?}"))
        .to_string();
    assert!(!address.ends_with(":0"), "the real port is printed: {address}");
    let ready = reqwest::get(format!("{address}/readyz"))
        .await
        .expect("GET /readyz");
    assert_eq!(ready.status(), StatusCode::OK);

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return Some(status);
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .expect("waiter");
    assert!(exit.expect("exited after SIGTERM").success());
}
