//! The playground and the reference web client in a real browser: `tests/browser/playground.mjs` and
//! `tests/browser/web.mjs` drive Debian's headless Chromium (through playwright-core) against this server
//! and the seeded emulator, with every request outside loopback blocked. Needs `/usr/bin/chromium`, node
//! and `npm ci` in tests/browser (`.ci/run` does both).

use std::process::Stdio;

use chrono::Datelike as _;

use crate::helpers::TestApp;

#[tokio::test]
#[ignore = "needs chromium and node"]
async fn browser_playground_signs_in_queries_and_subscribes_offline() {
    let app = TestApp::spawn().await;
    chronos::demo::seed(&app.server.emulator, chrono::Utc::now().date_naive())
        .await
        .expect("seed the emulator with the demo accounts");
    let started = std::time::SystemTime::now();
    run_script(
        "playground",
        &[&app.address, "--account", chronos::demo::DEMO_ACCOUNTS[0].0],
    )
    .await;
    assert_written_since("playground.png", started);
}

/// The reference web client (`web/`) in a real browser: `tests/browser/web.mjs` signs in as the demo's
/// alice, reads the seeded week, sees a change at Google arrive live, creates and splits events, reorders
/// todos, runs a sync, connects and reconnects a second account, and prints the first-load figures the
/// README quotes. Writes the README's screenshots (docs/web-*.png).
#[tokio::test]
#[ignore = "needs chromium and node"]
async fn browser_web_client_week_events_todos_and_sync() {
    let app = TestApp::spawn_with(|settings| settings.web_client = true).await;
    let today = chrono::Utc::now().date_naive();
    chronos::demo::seed(&app.server.emulator, today)
        .await
        .expect("seed the emulator with the demo accounts");
    let monday = today - chrono::Duration::days(i64::from(today.weekday().num_days_from_monday()));
    let emulator = app.server.emulator.base_url();
    let monday = monday.to_string();
    let started = std::time::SystemTime::now();
    run_script(
        "web",
        &[
            &app.address,
            "--emulator",
            &emulator,
            "--monday",
            &monday,
            "--account",
            chronos::demo::DEMO_ACCOUNTS[0].0,
            "--other-account",
            chronos::demo::DEMO_ACCOUNTS[1].0,
        ],
    )
    .await;
    for shot in ["web-week.png", "web-todos.png", "web-sync.png"] {
        assert_written_since(shot, started);
    }
}

/// Runs `tests/browser/<script>.mjs` with `args` and a failure screenshot path, prints what it printed,
/// and fails unless it exited 0 having said it passed.
async fn run_script(script: &str, args: &[&str]) {
    let failure = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{script}-failure.png"));
    let _ = std::fs::remove_file(&failure);
    let output = tokio::process::Command::new("node")
        .arg(format!("tests/browser/{script}.mjs"))
        .args(args)
        .arg("--failure-screenshot")
        .arg(&failure)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .expect("run node (is it installed?)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        output.status.success(),
        "the browser test failed ({}); screenshot at {}\n{stdout}\n{stderr}",
        output.status,
        failure.display()
    );
    assert!(stdout.contains("browser test passed"), "{stdout}");
}

/// The screenshot `docs/<name>` was written by this run (the repository holds the previous one).
fn assert_written_since(name: &str, started: std::time::SystemTime) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs")
        .join(name);
    let modified = std::fs::metadata(&path)
        .and_then(|meta| meta.modified())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(modified >= started, "{name} was not written by this run");
}
