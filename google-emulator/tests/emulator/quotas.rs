//! Request quotas: sliding windows per user and per project, batch parts counted, Google's
//! exact refusal bodies, the control API. The quota clock is moved forward, never slept on.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use google_emulator::EmulatorConfig;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::TestEmu;

const LIST: &str = "/calendar/v3/calendars/primary/events";

fn user_refusal() -> Value {
    json!({"error": {
        "code": 403,
        "message": "User Rate Limit Exceeded",
        "errors": [{"domain": "usageLimits", "reason": "userRateLimitExceeded", "message": "User Rate Limit Exceeded"}]
    }})
}

fn project_refusal(code: u16) -> Value {
    json!({"error": {
        "code": code,
        "message": "Rate Limit Exceeded",
        "errors": [{"domain": "usageLimits", "reason": "rateLimitExceeded", "message": "Rate Limit Exceeded"}]
    }})
}

async fn set_quotas(t: &TestEmu, body: Value) -> Value {
    let r = t.control(Method::PUT, "/emulator/quotas", body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

/// A batch of `n` events.list parts; answers the status of every part and its JSON body.
async fn batch(t: &TestEmu, tok: &str, n: usize) -> (u16, Vec<(u16, Value)>) {
    let mut payload = String::new();
    for i in 0..n {
        payload.push_str(&format!(
            "--b\r\nContent-Type: application/http\r\nContent-ID: <item{i}>\r\n\r\nGET {LIST}?maxResults=1 HTTP/1.1\r\n\r\n\r\n"
        ));
    }
    payload.push_str("--b--\r\n");
    let resp = t
        .client
        .post(t.url("/batch/calendar/v3"))
        .bearer_auth(tok)
        .header("Content-Type", "multipart/mixed; boundary=b")
        .body(payload)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
    let text = resp.text().await.unwrap();
    let boundary = ct.split("boundary=").nth(1).unwrap().trim().to_owned();
    let parts = text
        .split(&format!("--{boundary}"))
        .filter(|p| !p.trim().is_empty() && !p.starts_with("--"))
        .map(|p| {
            let (_, http) = p.split_once("\r\n\r\n").unwrap();
            let code: u16 = http.split_whitespace().nth(1).unwrap().parse().unwrap();
            let json_text = http.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("").trim();
            (code, serde_json::from_str(json_text).unwrap_or(Value::Null))
        })
        .collect();
    (status, parts)
}

#[tokio::test]
async fn defaults_are_googles_published_numbers() {
    let c = EmulatorConfig::default();
    assert_eq!(c.quota_per_user_per_minute, 600);
    assert_eq!(c.quota_per_project_per_minute, 10_000);
    assert_eq!(c.quota_project_status, 403);
    let off = EmulatorConfig::without_quotas();
    assert_eq!(off.quota_per_user_per_minute, 0);
    assert_eq!(off.quota_per_project_per_minute, 0);

    let t = TestEmu::start().await;
    let r = t.control(Method::GET, "/emulator/quotas", json!({})).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        json!({"perUserPerMinute": 600, "perProjectPerMinute": 10000, "projectStatus": 403, "windowMs": 60000})
    );
    let stats = t.stats().await;
    assert_eq!(stats["quotaRefusals"], json!({"total": 0, "byReason": {}}));

    // On by default: the 601st request of a minute is refused.
    let tok = t.token("alice@example.com").await;
    let (status, parts) = batch(&t, &tok, 601).await;
    assert_eq!(status, 200);
    assert!(parts[..600].iter().all(|(code, _)| *code == 200));
    assert_eq!(parts[600], (403, user_refusal()));
}

#[tokio::test]
async fn per_user_window_refuses_with_googles_body_and_slides() {
    let t = TestEmu::start().await;
    let alice = t.token("alice@example.com").await;
    let bob = t.token("bob@example.com").await;
    set_quotas(&t, json!({"perUserPerMinute": 3})).await;

    for _ in 0..3 {
        assert_eq!(t.get(&alice, LIST).await.status, 200);
    }
    let r = t.get(&alice, LIST).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.body, user_refusal());
    // Writes count and are refused alike.
    let r = t
        .call(
            Method::POST,
            &alice,
            LIST,
            Some(json!({"summary": "x", "start": {"dateTime": "2024-05-01T10:00:00Z"}, "end": {"dateTime": "2024-05-01T11:00:00Z"}})),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.body, user_refusal());
    // Another user has a window of its own.
    assert_eq!(t.get(&bob, LIST).await.status, 200);

    // 59 s later the window still holds alice's three requests.
    t.emu().advance_quota_clock(Duration::from_secs(59));
    assert_eq!(t.get(&alice, LIST).await.status, 403);
    // A minute after them, they have left the window.
    t.emu().advance_quota_clock(Duration::from_secs(2));
    for _ in 0..3 {
        assert_eq!(t.get(&alice, LIST).await.status, 200);
    }
    assert_eq!(t.get(&alice, LIST).await.status, 403);

    let stats = t.stats().await;
    assert_eq!(
        stats["quotaRefusals"],
        json!({"total": 4, "byReason": {"userRateLimitExceeded": 4}})
    );
    // Refusals are logged with their status.
    let log = t.control(Method::GET, "/emulator/requests", json!({})).await.body;
    let refused = log["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["status"] == 403)
        .count();
    assert_eq!(refused, 4);
}

#[tokio::test]
async fn per_project_window_spans_users_with_403_or_429() {
    let t = TestEmu::start().await;
    let tokens = [
        t.token("a@example.com").await,
        t.token("b@example.com").await,
        t.token("c@example.com").await,
    ];
    set_quotas(&t, json!({"perUserPerMinute": 0, "perProjectPerMinute": 2})).await;
    assert_eq!(t.get(&tokens[0], LIST).await.status, 200);
    assert_eq!(t.get(&tokens[1], LIST).await.status, 200);
    let r = t.get(&tokens[2], LIST).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.body, project_refusal(403));

    let limits = set_quotas(&t, json!({"projectStatus": 429})).await;
    assert_eq!(
        limits,
        json!({"perUserPerMinute": 0, "perProjectPerMinute": 2, "projectStatus": 429, "windowMs": 60000})
    );
    let r = t.get(&tokens[2], LIST).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.body, project_refusal(429));

    t.emu().advance_quota_clock(Duration::from_secs(60));
    assert_eq!(t.get(&tokens[2], LIST).await.status, 200);
    let stats = t.stats().await;
    assert_eq!(
        stats["quotaRefusals"],
        json!({"total": 2, "byReason": {"rateLimitExceeded": 2}})
    );
}

#[tokio::test]
async fn each_batch_part_counts_and_is_refused_on_its_own() {
    let t = TestEmu::start().await;
    let tok = t.token("alice@example.com").await;
    set_quotas(&t, json!({"perUserPerMinute": 3})).await;

    let (status, parts) = batch(&t, &tok, 5).await;
    // The batch itself succeeds; the parts past the quota carry the refusal.
    assert_eq!(status, 200);
    assert_eq!(parts.len(), 5);
    for (code, _) in &parts[..3] {
        assert_eq!(*code, 200);
    }
    for (code, body) in &parts[3..] {
        assert_eq!(*code, 403);
        assert_eq!(*body, user_refusal());
    }
    // The three parts used the whole window: a lone request is refused too.
    assert_eq!(t.get(&tok, LIST).await.status, 403);
    let stats = t.stats().await;
    assert_eq!(stats["batchParts"], 5);
    assert_eq!(stats["quotaRefusals"]["byReason"]["userRateLimitExceeded"], 3);

    // A one-part batch is one request, not two: with one slot free it passes.
    t.emu().advance_quota_clock(Duration::from_secs(60));
    set_quotas(&t, json!({"perUserPerMinute": 1})).await;
    let (_, parts) = batch(&t, &tok, 1).await;
    assert_eq!(parts[0].0, 200);
    let (_, parts) = batch(&t, &tok, 1).await;
    assert_eq!(parts[0].0, 403);
}

#[tokio::test]
async fn control_api_switches_off_validates_and_reset_restores_start_up_quotas() {
    let t = TestEmu::start_with(EmulatorConfig {
        quota_per_user_per_minute: 2,
        quota_per_project_per_minute: 50,
        ..EmulatorConfig::default()
    })
    .await;
    let tok = t.token("alice@example.com").await;
    assert_eq!(t.get(&tok, LIST).await.status, 200);
    assert_eq!(t.get(&tok, LIST).await.status, 200);
    assert_eq!(t.get(&tok, LIST).await.status, 403);

    // 0 switches the limit off.
    let limits = set_quotas(&t, json!({"perUserPerMinute": 0, "perProjectPerMinute": 0})).await;
    assert_eq!(limits["perUserPerMinute"], 0);
    for _ in 0..30 {
        assert_eq!(t.get(&tok, LIST).await.status, 200);
    }

    // Bad values are refused and change nothing.
    for bad in [
        json!({"perUserPerMinute": -1}),
        json!({"perProjectPerMinute": "many"}),
        json!({"projectStatus": 500}),
    ] {
        let r = t.control(Method::PUT, "/emulator/quotas", bad).await;
        assert_eq!(r.status, 400, "{}", r.body);
    }
    let r = t.control(Method::GET, "/emulator/quotas", json!({})).await;
    assert_eq!(
        r.body,
        json!({"perUserPerMinute": 0, "perProjectPerMinute": 0, "projectStatus": 403, "windowMs": 60000})
    );

    // DELETE /emulator/stats clears the refusal counts too.
    assert_eq!(t.stats().await["quotaRefusals"]["total"], 1);
    t.control(Method::DELETE, "/emulator/stats", json!({})).await;
    assert_eq!(t.stats().await["quotaRefusals"]["total"], 0);

    // Reset goes back to the start-up quotas, with empty windows.
    t.control(Method::POST, "/emulator/reset", json!({})).await;
    let r = t.control(Method::GET, "/emulator/quotas", json!({})).await;
    assert_eq!(
        r.body,
        json!({"perUserPerMinute": 2, "perProjectPerMinute": 50, "projectStatus": 403, "windowMs": 60000})
    );
    let tok = t.token("alice@example.com").await;
    assert_eq!(t.get(&tok, LIST).await.status, 200);
    assert_eq!(t.get(&tok, LIST).await.status, 200);
    assert_eq!(t.get(&tok, LIST).await.status, 403);
}

#[tokio::test]
async fn unauthenticated_and_control_requests_are_not_counted() {
    let t = TestEmu::start().await;
    let tok = t.token("alice@example.com").await;
    set_quotas(&t, json!({"perUserPerMinute": 1, "perProjectPerMinute": 1})).await;
    // A bad token is answered 401, as before any quota.
    for _ in 0..3 {
        assert_eq!(t.get("not-a-token", LIST).await.status, 401);
    }
    assert_eq!(t.stats().await["quotaRefusals"]["total"], 0);
    assert_eq!(t.get(&tok, LIST).await.status, 200);
    assert_eq!(t.get(&tok, LIST).await.status, 403);
}

#[tokio::test]
async fn daily_quota_exceeded_is_an_injectable_fault() {
    let t = TestEmu::start().await;
    let tok = t.token("alice@example.com").await;
    assert_eq!(t.get(&tok, LIST).await.status, 200);
    let r = t
        .control(
            Method::POST,
            "/emulator/faults",
            json!({"path": "/calendar/v3/*", "status": 403, "reason": "quotaExceeded"}),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = t.get(&tok, LIST).await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.body,
        json!({"error": {
            "code": 403,
            "message": "Calendar usage limits exceeded.",
            "errors": [{"domain": "usageLimits", "reason": "quotaExceeded", "message": "Calendar usage limits exceeded."}]
        }})
    );
    t.control(Method::DELETE, "/emulator/faults", json!({})).await;
    assert_eq!(t.get(&tok, LIST).await.status, 200);
}

#[tokio::test]
async fn binary_takes_quota_flags() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_google-emulator"))
        .args([
            "--addr",
            "127.0.0.1:0",
            "--quota-per-user",
            "7",
            "--quota-per-project",
            "0",
            "--quota-project-status",
            "429",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start google-emulator");
    let stdout = child.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    })
    .await
    .unwrap()
    .unwrap();
    let url = line.trim().strip_prefix("listening on ").unwrap().to_owned();
    let body: Value = reqwest::get(format!("{url}/emulator/quotas"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        body,
        json!({"perUserPerMinute": 7, "perProjectPerMinute": 0, "projectStatus": 429, "windowMs": 60000})
    );
}

#[tokio::test]
async fn a_shortened_window_slides_sooner() {
    let t = TestEmu::start().await;
    let alice = t.token("alice@example.com").await;
    let limits = set_quotas(&t, json!({"perUserPerMinute": 2, "windowMs": 1000})).await;
    assert_eq!(limits["windowMs"], 1000);
    for _ in 0..2 {
        assert_eq!(t.get(&alice, LIST).await.status, 200);
    }
    assert_eq!(t.get(&alice, LIST).await.status, 403);
    t.emu().advance_quota_clock(Duration::from_millis(1000));
    assert_eq!(
        t.get(&alice, LIST).await.status,
        200,
        "the window is a second long"
    );

    let refused = t
        .control(Method::PUT, "/emulator/quotas", json!({"windowMs": 10}))
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
}
