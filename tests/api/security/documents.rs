//! Documents built to make validation explode are refused before validation, fast, while the server keeps
//! answering others.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_code};

/// Generous: refusing takes about a millisecond; before the guard the first of these took over a minute.
const REFUSED_WITHIN: Duration = Duration::from_secs(2);

/// 26 fragments, each spreading the previous one twice: 2^26 fields once expanded, in about a kilobyte.
fn fragment_doubling() -> String {
    let mut query = String::from("query { me { ...F26 } }\nfragment F0 on User { id }\n");
    for level in 1..=26 {
        let before = level - 1;
        query.push_str(&format!(
            "fragment F{level} on User {{ ...F{before} ...F{before} }}\n"
        ));
    }
    query
}

/// `count` aliases of `me`, padded to `bytes` with a comment.
fn alias_flood(count: usize, bytes: usize) -> String {
    let mut query: String = (0..count).map(|i| format!("a{i}: me {{ id }} ")).collect();
    query = format!("{{ {query} }}");
    if query.len() < bytes {
        query.push('#');
        query.push_str(&"x".repeat(bytes - query.len()));
    }
    query
}

/// One fragment spread `count` times.
fn many_spreads(count: usize) -> String {
    format!(
        "{{ me {{ {} }} }} fragment A on User {{ id }}",
        "...A ".repeat(count)
    )
}

/// A chain of `length` fragments, each selecting a field and spreading the one before.
fn fragment_chain(length: usize) -> String {
    let mut query = format!(
        "{{ me {{ ...F{} }} }}\nfragment F0 on User {{ id }}\n",
        length - 1
    );
    for i in 1..length {
        query.push_str(&format!("fragment F{i} on User {{ email ...F{} }}\n", i - 1));
    }
    query
}

async fn assert_refused_quickly(app: &TestApp, query: &str, expected: &str) {
    let started = Instant::now();
    let response = app.post_graphql(query, json!({})).await;
    let elapsed = started.elapsed();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains(expected), "expected `{expected}` in {message}");
    assert!(body["errors"][0].get("locations").is_none(), "{body}");
    assert!(elapsed < REFUSED_WITHIN, "refused after {elapsed:?}");
}

#[tokio::test]
async fn explosive_documents_are_refused_before_validation() {
    let app = TestApp::spawn().await;
    app.sign_in("alice@example.com").await;
    // Positive control: an ordinary document runs.
    let me = app.data("{ me { email } }", json!({})).await;
    assert_eq!(me["me"]["email"], "alice@example.com");

    assert_refused_quickly(
        &app,
        &fragment_doubling(),
        "fields once its fragments are expanded",
    )
    .await;
    // Just under the 1 MiB body limit, so the document (not the body) is what is refused.
    assert_refused_quickly(&app, &alias_flood(20_000, 1_000_000), "bytes long").await;
    assert_refused_quickly(&app, &alias_flood(2_000, 60_000), "more than 2000 tokens").await;
    assert_refused_quickly(&app, &alias_flood(101, 0), "101 aliased fields").await;
    assert_refused_quickly(
        &app,
        &fragment_chain(200),
        "fields once its fragments are expanded",
    )
    .await;
    assert_refused_quickly(&app, &many_spreads(501), "more than 500 fragment spreads").await;
    let nested = format!("{}{}", "{ me ".repeat(100), "}".repeat(100));
    assert_refused_quickly(&app, &nested, "deep").await;
}

#[tokio::test]
async fn healthz_keeps_answering_while_explosive_documents_arrive() {
    let app = TestApp::spawn().await;
    let attacker = app.new_browser();
    let attack = tokio::spawn(async move {
        for _ in 0..50 {
            let response = attacker.post_graphql(&fragment_doubling(), json!({})).await;
            let body: Value = response.json().await.expect("JSON");
            assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "{body}");
        }
    });
    for _ in 0..20 {
        let started = Instant::now();
        let health = app.get("/healthz").await;
        assert_eq!(health.status(), StatusCode::OK);
        assert!(
            started.elapsed() < REFUSED_WITHIN,
            "/healthz took {:?}",
            started.elapsed()
        );
    }
    attack.await.expect("every attack was refused");
}

/// `count` series that repeat every minute forever, cached for `app`'s signed-in `email`.
async fn minutely_series(app: &TestApp, email: &str, count: usize) {
    for i in 0..count {
        app.emulator()
            .insert_event(
                email,
                json!({
                    "summary": format!("tick {i}"),
                    "start": { "dateTime": "2025-06-01T00:00:00Z", "timeZone": "UTC" },
                    "end": { "dateTime": "2025-06-01T00:00:30Z", "timeZone": "UTC" },
                    "recurrence": ["RRULE:FREQ=MINUTELY"],
                }),
            )
            .expect("insert series");
    }
    let calendars = app.data("{ calendars { id } }", json!({})).await;
    let state = app.app_state().await;
    for calendar in calendars["calendars"].as_array().expect("calendars") {
        let id = calendar["id"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .expect("uuid");
        chronos::calendars::refresh_events(&state, id)
            .await
            .expect("refresh");
    }
}

fn events_between(time_min: &str, time_max: &str, aliases: usize) -> String {
    let fields: String = (0..aliases)
        .map(|i| {
            format!(
                "e{i}: events(timeMin: \"{time_min}\", timeMax: \"{time_max}\", first: 1) {{ edges {{ node {{ id }} }} }} "
            )
        })
        .collect();
    format!("{{ {fields} }}")
}

#[tokio::test]
async fn series_expansion_and_aliased_feeds_are_bounded_while_others_are_served() {
    let attacker = TestApp::spawn_with(|settings| settings.scheduler_enabled = false).await;
    attacker.emulator().create_account("mallory@example.com", None);
    attacker.sign_in("mallory@example.com").await;
    // Six series of 10,000 instances each (the per-series cap) are more than one request may expand.
    minutely_series(&attacker, "mallory@example.com", 6).await;
    let bystander = attacker.new_browser();
    bystander.sign_in("bob@example.com").await;

    // Positive control: a day of the same series is within the budget.
    let day = attacker
        .data(
            &events_between("2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z", 1),
            json!({}),
        )
        .await;
    assert_eq!(day["e0"]["edges"].as_array().map(Vec::len), Some(1), "{day}");

    let year = events_between("2026-01-01T00:00:00Z", "2026-12-31T00:00:00Z", 1);
    let (cut, served) = tokio::join!(
        attacker.graphql(&year, json!({})),
        bystander.data("{ me { email } todoLists { id } }", json!({})),
    );
    assert_eq!(error_code(&cut), Some("BAD_USER_INPUT"), "{cut}");
    let message = cut["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("instances of recurring events"), "{cut}");
    assert_eq!(served["me"]["email"], "bob@example.com");

    // Many aliased windows, and aliased feeds of 1000, cost more than a document may.
    for query in [
        events_between("2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z", 50),
        format!(
            "{{ {} }}",
            (0..40)
                .map(|i| format!("f{i}: eventChanges(first: 1000) {{ changes {{ eventId }} }} "))
                .collect::<String>()
        ),
    ] {
        let refused = attacker.graphql(&query, json!({})).await;
        assert_eq!(error_code(&refused), Some("BAD_USER_INPUT"), "{refused}");
        let message = refused["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains("complex"), "{refused}");
    }
}

#[tokio::test]
async fn explosive_documents_are_refused_over_the_websocket_too() {
    let app = TestApp::spawn().await;
    app.sign_in("alice@example.com").await;
    let mut socket = app.websocket().await;
    // Positive control on the same socket.
    let me = socket.run("me", "{ me { email } }").await;
    assert_eq!(me["data"]["me"]["email"], "alice@example.com", "{me}");
    for (id, query, expected) in [
        (
            "doubling",
            fragment_doubling(),
            "fields once its fragments are expanded",
        ),
        ("aliases", alias_flood(101, 0), "101 aliased fields"),
        ("spreads", many_spreads(501), "more than 500 fragment spreads"),
        (
            "chain",
            fragment_chain(200),
            "fields once its fragments are expanded",
        ),
    ] {
        let started = Instant::now();
        let refused = socket.run(id, &query).await;
        assert!(
            started.elapsed() < REFUSED_WITHIN,
            "refused after {:?}",
            started.elapsed()
        );
        assert_eq!(error_code(&refused), Some("BAD_USER_INPUT"), "{refused}");
        let message = refused["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains(expected), "expected `{expected}` in {message}");
    }
}
