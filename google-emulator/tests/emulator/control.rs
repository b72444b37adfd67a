use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use crate::helpers::{TestEmu, reason, timed};

const LIST: &str = "/calendar/v3/users/me/calendarList";

#[tokio::test]
async fn faults_status_times_retry_after_and_probability() {
    let t = TestEmu::start().await;
    let tok = t.token("alice@example.com").await;

    let r = t
        .control(
            Method::POST,
            "/emulator/faults",
            json!({"method": "GET", "path": "/users/me/calendarList", "status": 503, "times": 2}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(r.body["id"].is_string());
    for _ in 0..2 {
        let r = t.get(&tok, LIST).await;
        assert_eq!(r.status, 503);
        assert_eq!(reason(&r.body), ("global".into(), "backendError".into()));
    }
    assert_eq!(t.get(&tok, LIST).await.status, 200);

    // 429 with Retry-After
    t.control(
        Method::POST,
        "/emulator/faults",
        json!({"path": "/calendar/v3/*/events", "status": 429, "retryAfter": 7, "times": 1}),
    )
    .await;
    let r = t.get(&tok, "/calendar/v3/calendars/primary/events").await;
    assert_eq!(r.status, 429);
    assert_eq!(r.headers["retry-after"], "7");
    assert_eq!(
        reason(&r.body),
        ("usageLimits".into(), "rateLimitExceeded".into())
    );
    // times: 1 was used up
    assert_eq!(
        t.get(&tok, "/calendar/v3/calendars/primary/events").await.status,
        200
    );

    // 403 userRateLimitExceeded, method filter
    t.control(
        Method::POST,
        "/emulator/faults",
        json!({"method": "POST", "status": 403, "reason": "userRateLimitExceeded", "probability": 1.0}),
    )
    .await;
    assert_eq!(t.get(&tok, LIST).await.status, 200);
    for _ in 0..3 {
        let r = t
            .call(
                Method::POST,
                &tok,
                "/calendar/v3/calendars/primary/events",
                Some(timed("x", "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z")),
            )
            .await;
        assert_eq!(r.status, 403);
        assert_eq!(
            reason(&r.body),
            ("usageLimits".into(), "userRateLimitExceeded".into())
        );
    }
    let r = t.control(Method::GET, "/emulator/faults", json!({})).await;
    assert_eq!(r.body["faults"].as_array().unwrap().len(), 1);
    let r = t.control(Method::DELETE, "/emulator/faults", json!({})).await;
    assert_eq!(r.status, 200);
    t.insert(
        &tok,
        "primary",
        timed("x", "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z"),
    )
    .await;

    // probability 0 never fires
    t.control(
        Method::POST,
        "/emulator/faults",
        json!({"status": 500, "probability": 0.0}),
    )
    .await;
    assert_eq!(t.get(&tok, LIST).await.status, 200);
    t.control(Method::DELETE, "/emulator/faults", json!({})).await;

    // faults never apply to the control API
    t.control(Method::POST, "/emulator/faults", json!({"status": 500}))
        .await;
    let r = t.control(Method::GET, "/emulator/stats", json!({})).await;
    assert_eq!(r.status, 200);
    t.control(Method::DELETE, "/emulator/faults", json!({})).await;

    // faults on the token endpoint use the OAuth error shape
    t.control(
        Method::POST,
        "/emulator/faults",
        json!({"path": "/token", "status": 500, "times": 1}),
    )
    .await;
    let resp = t
        .client
        .post(t.url("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "x"),
            ("client_id", "c"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 500);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(body["error"].is_string());
}

#[tokio::test]
async fn drop_closes_the_connection() {
    let t = TestEmu::start().await;
    let tok = t.token("alice@example.com").await;
    t.control(
        Method::POST,
        "/emulator/faults",
        json!({"path": "/colors", "drop": true, "times": 1}),
    )
    .await;
    let err = t
        .client
        .get(t.url("/calendar/v3/colors"))
        .bearer_auth(&tok)
        .send()
        .await;
    assert!(err.is_err(), "expected a transport error, got {err:?}");
    // the next request works
    assert_eq!(t.get(&tok, "/calendar/v3/colors").await.status, 200);
    let log = t.control(Method::GET, "/emulator/requests", json!({})).await;
    let entries = log.body["requests"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["status"], 0);
    assert_eq!(entries[1]["status"], 200);
}

#[tokio::test]
async fn latency_stats_log_and_reset() {
    let t = TestEmu::start().await;
    let tok = t.token("alice@example.com").await;
    let r = t
        .control(Method::PUT, "/emulator/latency", json!({"ms": 150}))
        .await;
    assert_eq!(r.status, 200);
    let started = Instant::now();
    assert_eq!(t.get(&tok, LIST).await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(150));
    t.control(Method::PUT, "/emulator/latency", json!({"ms": 0}))
        .await;
    // per-fault latency without a status passes the request through
    t.control(
        Method::POST,
        "/emulator/faults",
        json!({"path": "/colors", "latencyMs": 120, "times": 1}),
    )
    .await;
    let started = Instant::now();
    assert_eq!(t.get(&tok, "/calendar/v3/colors").await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(120));

    t.get(&tok, "/calendar/v3/calendars/primary/events?maxResults=3")
        .await;
    t.get(&tok, "/calendar/v3/calendars/primary/events").await;
    t.get(&tok, "/nope").await;
    let stats = t.stats().await;
    assert_eq!(stats["totalRequests"], 5);
    assert_eq!(
        stats["byRoute"]["GET /calendar/v3/calendars/{calendarId}/events"],
        2
    );
    assert_eq!(stats["byRoute"]["GET /calendar/v3/users/me/calendarList"], 1);
    assert_eq!(stats["byRoute"]["GET /calendar/v3/colors"], 1);
    assert_eq!(stats["byRoute"]["GET (unmatched)"], 1);
    assert_eq!(stats["batchRequests"], 0);

    let log = t.control(Method::GET, "/emulator/requests", json!({})).await;
    let entries = log.body["requests"].as_array().unwrap();
    assert_eq!(entries.len(), 5);
    let e = &entries[2];
    assert_eq!(e["method"], "GET");
    assert_eq!(e["path"], "/calendar/v3/calendars/primary/events");
    assert_eq!(e["query"], "maxResults=3");
    assert_eq!(e["status"], 200);
    assert!(e["time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(entries[4]["status"], 404);

    // library API agrees
    assert_eq!(t.emu().stats()["totalRequests"], 5);

    // reset forgets everything
    let r = t.control(Method::POST, "/emulator/reset", json!({})).await;
    assert_eq!(r.status, 200);
    assert_eq!(t.get(&tok, LIST).await.status, 401);
    assert_eq!(t.stats().await["totalRequests"], 1);
}

#[tokio::test]
async fn library_seeding() {
    let t = TestEmu::start().await;
    let emu = t.emu();
    let acc = emu.create_account("seed@example.com", Some("Seed Person"));
    assert_eq!(acc["email"], "seed@example.com");
    assert_eq!(acc["name"], "Seed Person");
    assert!(acc["sub"].as_str().unwrap().len() >= 20);
    // idempotent: same sub
    assert_eq!(emu.create_account("seed@example.com", None)["sub"], acc["sub"]);
    let cal = emu
        .create_calendar("seed@example.com", "Side", Some("Europe/Paris"))
        .unwrap();
    let cal_id = cal["id"].as_str().unwrap();
    let ev = emu
        .insert_event(
            cal_id,
            timed("seeded", "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z"),
        )
        .unwrap();
    assert_eq!(ev["organizer"]["email"], cal_id);
    assert_eq!(ev["organizer"]["displayName"], "Side");
    let err = emu
        .insert_event(cal_id, json!({"summary": "no times"}))
        .unwrap_err();
    assert!(matches!(
        err,
        google_emulator::EmulatorError::Api { status: 400, .. }
    ));
    assert!(emu.create_calendar("ghost@example.com", "x", None).is_err());
    let tok = emu.issue_access_token("seed@example.com").unwrap();
    let r = t
        .get(
            &tok,
            &format!("/calendar/v3/calendars/{}/events", crate::helpers::enc(cal_id)),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["items"][0]["summary"], "seeded");
    assert_eq!(r.body["timeZone"], "Europe/Paris");
    // the seeding control route behaves the same
    let r = t
        .control(
            Method::POST,
            "/emulator/calendars/seed@example.com/events",
            timed("via control", "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(emu.issue_access_token("ghost@example.com").is_err());
}
