//! Load: one user's operations in flight are capped so others keep being served, and an exhausted
//! connection pool is answered as load (503 with Retry-After), never as a fault.

use std::time::Duration;

use chronos::config::PoolSettings;
use reqwest::{StatusCode, header};
use sea_orm::TransactionTrait;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, error_code};

const TODO_LISTS: &str = "{ todoLists { id } }";

async fn user_id(app: &TestApp) -> Uuid {
    Uuid::parse_str(app.me().await["id"].as_str().expect("user id")).expect("uuid")
}

/// Waits until `user` has `count` operations executing on the server.
async fn wait_for_in_flight(app: &TestApp, user: Uuid, count: usize) {
    let state = app.server_state().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while state.rate_limits.in_flight.in_use(user) != count {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} operations in flight, expected {count}",
            state.rate_limits.in_flight.in_use(user)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_users_operations_in_flight_are_capped_while_another_users_run() {
    let alice = TestApp::spawn_with(|settings| {
        settings.rate_limits.in_flight_per_user = 1;
        settings.rate_limits.in_flight_wait = Duration::from_millis(300);
        // No background jobs calling Google while the listing below is held.
        settings.scheduler_enabled = false;
    })
    .await;
    alice.sign_in("alice@example.com").await;
    let bob = alice.new_browser();
    bob.sign_in("bob@example.com").await;
    let alice_id = user_id(&alice).await;
    let account = alice.accounts().await[0]["id"].clone();
    let mut socket = alice.websocket().await;

    // Alice's next calendar listing is held at Google for a while: her refresh stays in flight.
    let fault = alice
        .client
        .post(alice.emulator_url("/emulator/faults"))
        .json(&json!({ "path": "/calendarList", "latencyMs": 4000, "times": 1 }))
        .send()
        .await
        .expect("fault");
    assert!(fault.status().is_success());
    let refresh = alice.post_graphql(
        "mutation($id: ID!) { refreshCalendars(accountId: $id) { id } }",
        json!({ "id": account }),
    );
    let meanwhile = async {
        wait_for_in_flight(&alice, alice_id, 1).await;
        // At the same moment: Alice's second operation is refused, Bob's runs.
        let (second, others) = tokio::join!(
            alice.post_graphql(TODO_LISTS, json!({})),
            bob.post_graphql(TODO_LISTS, json!({})),
        );
        assert_eq!(others.status(), StatusCode::OK);
        let others: Value = others.json().await.expect("JSON");
        assert!(others["data"]["todoLists"].is_array(), "{others}");
        assert_eq!(second.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(second.headers().contains_key(header::RETRY_AFTER));
        let second: Value = second.json().await.expect("JSON");
        assert_eq!(error_code(&second), Some("RATE_LIMITED"), "{second}");

        // The same limit over the websocket.
        socket
            .send(json!({ "id": "q1", "type": "subscribe", "payload": { "query": TODO_LISTS } }))
            .await;
        let answer = socket.receive(Duration::from_secs(10)).await.expect("answer");
        assert_eq!(answer["id"], "q1", "{answer}");
        assert_eq!(
            answer["payload"]["errors"][0]["extensions"]["code"], "RATE_LIMITED",
            "{answer}"
        );
        let complete = socket.receive(Duration::from_secs(10)).await.expect("complete");
        assert_eq!(complete["type"], "complete", "{complete}");
        assert_eq!(
            alice.server_state().await.rate_limits.in_flight.in_use(alice_id),
            1,
            "the held refresh was still in flight"
        );
    };
    let (refreshed, ()) = tokio::join!(refresh, meanwhile);
    assert_eq!(refreshed.status(), StatusCode::OK);
    let refreshed: Value = refreshed.json().await.expect("JSON");
    assert!(refreshed.get("errors").is_none(), "{refreshed}");
    wait_for_in_flight(&alice, alice_id, 0).await;

    // A subscription is a long-lived stream and holds no slot: with one open, Alice's operations run.
    socket
        .send(json!({ "id": "s1", "type": "subscribe",
                "payload": { "query": "subscription { syncProgress { phase } }" } }))
        .await;
    alice.wait_for_progress_subscribers(1).await;
    assert!(alice.data(TODO_LISTS, json!({})).await["todoLists"].is_array());
    socket
        .send(json!({ "id": "q2", "type": "subscribe", "payload": { "query": TODO_LISTS } }))
        .await;
    let answer = socket.receive(Duration::from_secs(10)).await.expect("answer");
    assert_eq!(answer["id"], "q2", "{answer}");
    assert!(answer["payload"]["data"]["todoLists"].is_array(), "{answer}");
}

#[tokio::test]
async fn an_exhausted_pool_is_answered_503_with_retry_after_and_recovers() {
    let app = TestApp::spawn_with(|settings| {
        settings.database_pool = PoolSettings {
            max_connections: Some(2),
            acquire_timeout: Duration::from_secs(1),
            ..PoolSettings::default()
        };
        settings.scheduler_enabled = false;
    })
    .await;
    app.sign_in("pat@example.com").await;
    // Positive control: the request needs the database (the session, then the lists) and is answered.
    assert!(app.data(TODO_LISTS, json!({})).await["todoLists"].is_array());

    // Every connection of the server's pool held in an open transaction: take them until none is left.
    let state = app.server_state().await;
    let mut held = Vec::new();
    loop {
        match state.db.begin().await {
            Ok(transaction) => held.push(transaction),
            Err(sea_orm::DbErr::ConnectionAcquire(_)) => break,
            Err(e) => panic!("unexpected error taking a connection: {e}"),
        }
        assert!(held.len() <= 2, "the pool is larger than configured");
    }
    assert!(!held.is_empty());

    let refused = app.post_graphql(TODO_LISTS, json!({})).await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    let retry_after = refused
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    assert!(retry_after.is_some_and(|secs| secs >= 1), "{retry_after:?}");
    let body: Value = refused.json().await.expect("JSON");
    assert_eq!(error_code(&body), Some("UPSTREAM_UNAVAILABLE"), "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(
        !message.contains("pool") && !message.contains("sqlx"),
        "{message}"
    );

    // Released: the same request is served again.
    for transaction in held {
        transaction.rollback().await.expect("rollback");
    }
    assert!(app.data(TODO_LISTS, json!({})).await["todoLists"].is_array());
}
