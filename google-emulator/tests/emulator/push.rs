use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use google_emulator::EmulatorConfig;
use reqwest::Method;
use serde_json::json;
use tokio::sync::mpsc;

use crate::helpers::{TestEmu, timed};

#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body_len: usize,
}

impl Received {
    fn h(&self, name: &str) -> String {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    }
}

/// A webhook receiver that fails the first `fail_first` deliveries with 503.
async fn receiver(fail_first: usize) -> (String, mpsc::UnboundedReceiver<Received>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let count = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let tx = tx.clone();
            let count = count.clone();
            async move {
                let n = count.fetch_add(1, Ordering::SeqCst);
                let _ = tx.send(Received {
                    headers,
                    body_len: body.len(),
                });
                if n < fail_first {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/hook"), rx)
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Received>) -> Received {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("notification in time")
        .expect("receiver alive")
}

#[tokio::test]
async fn sync_then_exists_then_nothing_after_stop() {
    let t = TestEmu::start().await;
    let tok = t.token("alice@example.com").await;
    let (address, mut rx) = receiver(0).await;
    let r = t
        .call(
            Method::POST,
            &tok,
            "/calendar/v3/calendars/primary/events/watch",
            Some(json!({"id": "chan-1", "type": "web_hook", "address": address, "token": "secret-tok"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["kind"], "api#channel");
    assert_eq!(r.body["id"], "chan-1");
    assert_eq!(r.body["token"], "secret-tok");
    let resource_id = r.body["resourceId"].as_str().unwrap().to_owned();
    assert!(
        r.body["resourceUri"]
            .as_str()
            .unwrap()
            .contains("/calendar/v3/calendars/primary/events")
    );
    let expiration: i64 = r.body["expiration"].as_str().unwrap().parse().unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    assert!(expiration > now + 604_000_000 && expiration <= now + 604_800_000 + 1000);

    let first = next(&mut rx).await;
    assert_eq!(first.h("x-goog-resource-state"), "sync");
    assert_eq!(first.h("x-goog-message-number"), "1");
    assert_eq!(first.h("x-goog-channel-id"), "chan-1");
    assert_eq!(first.h("x-goog-channel-token"), "secret-tok");
    assert_eq!(first.h("x-goog-resource-id"), resource_id);
    assert!(first.h("x-goog-resource-uri").contains("/events"));
    assert!(first.h("x-goog-channel-expiration").ends_with("GMT"));
    assert_eq!(first.body_len, 0);

    t.insert(
        &tok,
        "primary",
        timed("x", "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z"),
    )
    .await;
    let second = next(&mut rx).await;
    assert_eq!(second.h("x-goog-resource-state"), "exists");
    assert_eq!(second.h("x-goog-message-number"), "2");

    // a change in another calendar does not notify this channel
    t.token("bob@example.com").await;
    let bob = t.token("bob@example.com").await;
    t.insert(
        &bob,
        "primary",
        timed("y", "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z"),
    )
    .await;

    // unknown channel: 404; stop: 204, then silence
    let r = t
        .call(
            Method::POST,
            &tok,
            "/calendar/v3/channels/stop",
            Some(json!({"id": "nope", "resourceId": resource_id})),
        )
        .await;
    assert_eq!(r.status, 404);
    let r = t
        .call(
            Method::POST,
            &tok,
            "/calendar/v3/channels/stop",
            Some(json!({"id": "chan-1", "resourceId": resource_id})),
        )
        .await;
    assert_eq!(r.status, 204);
    t.insert(
        &tok,
        "primary",
        timed("z", "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z"),
    )
    .await;
    let late = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await;
    assert!(late.is_err(), "unexpected notification after stop: {late:?}");

    // duplicate channel ids are refused while the channel lives
    let (address2, _rx2) = receiver(0).await;
    let body = json!({"id": "chan-2", "type": "web_hook", "address": address2});
    let r = t
        .call(
            Method::POST,
            &tok,
            "/calendar/v3/calendars/primary/events/watch",
            Some(body.clone()),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = t
        .call(
            Method::POST,
            &tok,
            "/calendar/v3/calendars/primary/events/watch",
            Some(body),
        )
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn retries_on_5xx_and_caps_expiration() {
    let t = TestEmu::start_with(EmulatorConfig {
        max_channel_ttl_secs: 60,
        push_retry_base_ms: 10,
        ..EmulatorConfig::default()
    })
    .await;
    let tok = t.token("alice@example.com").await;
    let (address, mut rx) = receiver(2).await;
    let r = t
        .call(
            Method::POST,
            &tok,
            "/calendar/v3/calendars/primary/events/watch",
            Some(json!({"id": "chan-r", "type": "web_hook", "address": address, "params": {"ttl": "86400"}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let expiration: i64 = r.body["expiration"].as_str().unwrap().parse().unwrap();
    assert!(expiration <= chrono::Utc::now().timestamp_millis() + 60_000);
    for _ in 0..3 {
        let n = next(&mut rx).await;
        assert_eq!(n.h("x-goog-message-number"), "1");
        assert_eq!(n.h("x-goog-resource-state"), "sync");
    }
    assert!(n_more(&mut rx).await == 0);

    // an already expired channel sends nothing
    let (address, mut rx) = receiver(0).await;
    let r = t
        .call(
            Method::POST,
            &tok,
            "/calendar/v3/calendars/primary/events/watch",
            Some(json!({"id": "chan-x", "type": "web_hook", "address": address, "expiration": "1000"})),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(n_more(&mut rx).await, 0);

    // invalid addresses and types
    let r = t
        .call(
            Method::POST,
            &tok,
            "/calendar/v3/calendars/primary/events/watch",
            Some(json!({"id": "chan-y", "type": "web_hook", "address": "ftp://x"})),
        )
        .await;
    assert_eq!(r.status, 400);
    let r = t
        .call(
            Method::POST,
            &tok,
            "/calendar/v3/calendars/primary/events/watch",
            Some(json!({"type": "web_hook", "address": "http://localhost/"})),
        )
        .await;
    assert_eq!(r.status, 400);
}

async fn n_more(rx: &mut mpsc::UnboundedReceiver<Received>) -> usize {
    let mut n = 0;
    while tokio::time::timeout(Duration::from_millis(200), rx.recv())
        .await
        .is_ok()
    {
        n += 1;
    }
    n
}
