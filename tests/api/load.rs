//! Load: one user's operations in flight are capped so others keep being served.

use std::time::Duration;

use reqwest::{StatusCode, header};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    helpers::{TestApp, error_code},
    sync_instances::{connect, receive, send},
};

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
    let mut socket = connect(&alice, &alice.address).await;

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
        send(
            &mut socket,
            json!({ "id": "q1", "type": "subscribe", "payload": { "query": TODO_LISTS } }),
        )
        .await;
        let answer = receive(&mut socket, Duration::from_secs(10))
            .await
            .expect("answer");
        assert_eq!(answer["id"], "q1", "{answer}");
        assert_eq!(
            answer["payload"]["errors"][0]["extensions"]["code"], "RATE_LIMITED",
            "{answer}"
        );
        let complete = receive(&mut socket, Duration::from_secs(10))
            .await
            .expect("complete");
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
    send(
        &mut socket,
        json!({ "id": "s1", "type": "subscribe",
                "payload": { "query": "subscription { syncProgress { phase } }" } }),
    )
    .await;
    alice.wait_for_progress_subscribers(1).await;
    assert!(alice.data(TODO_LISTS, json!({})).await["todoLists"].is_array());
    send(
        &mut socket,
        json!({ "id": "q2", "type": "subscribe", "payload": { "query": TODO_LISTS } }),
    )
    .await;
    let answer = receive(&mut socket, Duration::from_secs(10))
        .await
        .expect("answer");
    assert_eq!(answer["id"], "q2", "{answer}");
    assert!(answer["payload"]["data"]["todoLists"].is_array(), "{answer}");
}
