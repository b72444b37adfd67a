//! The playground in a real browser: `tests/browser/playground.mjs` drives Debian's headless Chromium
//! (through playwright-core) against this server and the seeded emulator, with every request outside
//! loopback blocked. Needs `/usr/bin/chromium`, node and `npm ci` in tests/browser (`.ci/run` does both).

use std::process::Stdio;

use crate::helpers::TestApp;

#[tokio::test]
#[ignore = "needs chromium and node"]
async fn browser_playground_signs_in_queries_and_subscribes_offline() {
    let app = TestApp::spawn().await;
    chronos::demo::seed(&app.server.emulator, chrono::Utc::now().date_naive())
        .await
        .expect("seed the emulator with the demo accounts");
    let repo = env!("CARGO_MANIFEST_DIR");
    let failure = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("playground-failure.png");
    let _ = std::fs::remove_file(&failure);
    let output = tokio::process::Command::new("node")
        .arg("tests/browser/playground.mjs")
        .arg(&app.address)
        .arg("--failure-screenshot")
        .arg(&failure)
        .arg("--account")
        .arg(chronos::demo::DEMO_ACCOUNTS[0].0)
        .current_dir(repo)
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
    assert!(stdout.contains("playground browser test passed"), "{stdout}");
    assert!(
        std::path::Path::new(repo).join("docs/playground.png").is_file(),
        "the screenshot was written"
    );
}
