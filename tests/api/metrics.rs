//! `GET /metrics`: the series move with what the server does, and production shows them only on the
//! listener configured for them.
//!
//! The recorder is process-wide and shared by every server of this test binary, so assertions compare a
//! scrape before with one after (deltas), on series only this test touches where it can (its own operation
//! names and job kind); series other tests may move too are asserted to have moved at least as far.

use std::{collections::BTreeMap, time::Duration};

use chrono::{TimeDelta, Utc};
use chronos::entities::enums::SyncRunStatus;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    helpers::{TestApp, error_code},
    sync_runs::{SOURCE, World, hour, timed},
};

/// One sample of a scrape: its name, labels and value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A parsed scrape.
#[derive(Debug)]
struct Scrape(Vec<Sample>);

impl Scrape {
    /// Parses the text format: `name{label="value",..} number` lines; comments are skipped.
    fn parse(text: &str) -> Self {
        let samples = text
            .lines()
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(|line| {
                let (series, value) = line.rsplit_once(' ').expect("`series value`");
                let value: f64 = value.parse().unwrap_or_else(|_| panic!("a number in {line}"));
                let (name, labels) = match series.split_once('{') {
                    Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}').expect("}"))),
                    None => (series, BTreeMap::new()),
                };
                Sample {
                    name: name.to_owned(),
                    labels,
                    value,
                }
            })
            .collect();
        Self(samples)
    }

    /// The sum of the samples named `name` whose labels include `labels` (0 when there is none).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels).map(|sample| sample.value).sum()
    }

    fn has(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        self.matching(name, labels).next().is_some()
    }

    fn matching<'a>(&'a self, name: &'a str, labels: &'a [(&str, &str)]) -> impl Iterator<Item = &'a Sample> {
        self.0.iter().filter(move |sample| {
            sample.name == name
                && labels
                    .iter()
                    .all(|(k, v)| sample.labels.get(*k).map(String::as_str) == Some(*v))
        })
    }
}

/// `a="x",b="y"` (values are the server's own names and codes: no escaped quotes or commas).
fn parse_labels(raw: &str) -> BTreeMap<String, String> {
    raw.split(',')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').expect("label=value");
            (key.to_owned(), value.trim_matches('"').to_owned())
        })
        .collect()
}

impl TestApp {
    /// GET `/metrics` on `base` (the main listener or the metrics one), which must answer 200.
    async fn scrape_at(&self, base: &str) -> Scrape {
        let response = self
            .client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .expect("GET /metrics");
        assert_eq!(response.status(), StatusCode::OK);
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(content_type.starts_with("text/plain"), "{content_type}");
        Scrape::parse(&response.text().await.expect("body"))
    }

    async fn scrape(&self) -> Scrape {
        self.scrape_at(&self.address.clone()).await
    }

    /// POST /graphql with an `operationName`, as clients that name their operations send it; answered 200.
    async fn named_operation(&self, name: &str, query: &str, variables: Value) -> Value {
        let (status, body) = self.try_named_operation(name, query, variables).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    async fn try_named_operation(&self, name: &str, query: &str, variables: Value) -> (StatusCode, Value) {
        let mut request = self.client.post(self.url("/graphql")).json(&json!({
            "query": query,
            "operationName": name,
            "variables": variables,
        }));
        if let Some(token) = self.cookie("chronos_csrf") {
            request = request.header("x-csrf-token", token);
        }
        let response = request.send().await.expect("POST /graphql");
        let status = response.status();
        (status, response.json().await.expect("JSON body"))
    }

    /// POST a Google push notification as Google sends it.
    async fn push_notification(&self, channel_id: &str, resource_state: &str) -> StatusCode {
        self.client
            .post(self.url("/webhooks/google"))
            .header("x-goog-channel-id", channel_id)
            .header("x-goog-resource-state", resource_state)
            .header("x-goog-channel-token", "whatever")
            .send()
            .await
            .expect("POST /webhooks/google")
            .status()
    }
}

const DURATION_COUNT: &str = "chronos_graphql_operation_duration_seconds_count";

/// Scrapes until `moved` holds of a scrape, for up to 20 s; returns that scrape.
async fn scrape_until(app: &TestApp, what: &str, moved: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let scrape = app.scrape().await;
        if moved(&scrape) {
            return scrape;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what} did not move");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_scrape_after_operations_a_subscription_a_push_and_a_sync_run_finds_the_counters_moved() {
    let world = World::with_push().await;
    let app = &world.app;
    let before = app.scrape().await;

    // Operations over POST: one answered, one refused with a code; their names become labels.
    let body = app
        .named_operation("MetricsViewer", "query MetricsViewer { me { id } }", json!({}))
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    let body = app
        .named_operation(
            "MetricsMissing",
            "query MetricsMissing($id: ID!) { syncConfig(id: $id) { id } }",
            json!({ "id": uuid::Uuid::new_v4().to_string() }),
        )
        .await;
    assert_eq!(error_code(&body), Some("NOT_FOUND"), "{body}");

    // Over the websocket: a query, and a subscription that stays open.
    let mut socket = app.websocket().await;
    socket
        .subscribe(
            "q",
            json!({ "query": "query MetricsOverSocket { me { id } }", "operationName": "MetricsOverSocket" }),
        )
        .await;
    let next = socket.next_message().await;
    assert_eq!(next["type"], "next", "{next}");
    socket
        .subscribe(
            "s",
            json!({
                "query": "subscription MetricsProgress { syncProgress { phase } }",
                "operationName": "MetricsProgress",
            }),
        )
        .await;
    app.wait_for_progress_subscribers(1).await;

    // A push notification Google sends after a change at the source, and one for no known channel.
    world.insert(SOURCE, timed("Standup", hour(1, 9))).await;
    assert_eq!(
        app.push_notification("no-such-channel", "exists").await,
        StatusCode::OK
    );
    scrape_until(app, "push notifications acted on", |scrape| {
        scrape.value(
            "chronos_push_notifications_total",
            &[("outcome", "refresh_queued")],
        ) > before.value(
            "chronos_push_notifications_total",
            &[("outcome", "refresh_queued")],
        )
    })
    .await;
    world.idle().await;

    // A sync run that mirrors the event.
    let config = world.config("ONE_WAY", json!({})).await;
    let run = world.sync(&config).await;
    assert_eq!(run.status, SyncRunStatus::Succeeded, "{run:?}");
    assert_eq!(run.created, 1, "{run:?}");

    // A job no worker here runs (no handler has its kind), due for a minute: the queue's gauges show it.
    chronos::jobs::enqueue(
        &world.db,
        chronos::jobs::NewJob::new("metrics.probe", json!({})).run_at(Utc::now() - TimeDelta::seconds(60)),
    )
    .await
    .expect("enqueue");

    let after = app.scrape().await;
    let moved = |name: &str, labels: &[(&str, &str)]| after.value(name, labels) - before.value(name, labels);

    // Latency by operation name and result code, on both transports.
    assert_eq!(
        moved(DURATION_COUNT, &[("operation", "MetricsViewer"), ("code", "OK")]),
        1.0
    );
    assert_eq!(
        moved(
            DURATION_COUNT,
            &[("operation", "MetricsMissing"), ("code", "NOT_FOUND")]
        ),
        1.0
    );
    assert_eq!(
        moved(DURATION_COUNT, &[("operation", "MetricsMissing"), ("code", "OK")]),
        0.0
    );
    assert_eq!(
        moved(
            DURATION_COUNT,
            &[("operation", "MetricsOverSocket"), ("code", "OK")]
        ),
        1.0
    );
    assert!(after.has(
        "chronos_graphql_operation_duration_seconds_bucket",
        &[("operation", "MetricsViewer"), ("le", "+Inf")]
    ));
    // The helpers send no operation name.
    assert!(moved(DURATION_COUNT, &[("operation", "anonymous")]) >= 1.0);
    assert!(after.has("chronos_graphql_operations_in_flight", &[]));

    // The subscription: started, live on the progress bus, on an open websocket.
    assert_eq!(
        moved(
            "chronos_graphql_subscriptions_started_total",
            &[("operation", "MetricsProgress")]
        ),
        1.0
    );
    assert_eq!(
        moved(DURATION_COUNT, &[("operation", "MetricsProgress")]),
        0.0,
        "a subscription is not an answered operation"
    );
    assert!(after.value("chronos_live_subscriptions", &[("bus", "progress")]) >= 1.0);
    assert!(after.has("chronos_live_subscriptions", &[("bus", "cache_changes")]));
    assert!(after.value("chronos_websocket_connections", &[]) >= 1.0);

    // Push notifications by outcome.
    assert!(
        moved(
            "chronos_push_notifications_total",
            &[("outcome", "refresh_queued")]
        ) >= 1.0
    );
    assert!(
        moved(
            "chronos_push_notifications_total",
            &[("outcome", "unknown_channel")]
        ) >= 1.0
    );

    // The sync run, and the Google requests it (and the sign-ins) made.
    assert!(moved("chronos_sync_runs_total", &[("outcome", "succeeded")]) >= 1.0);
    assert!(
        moved(
            "chronos_sync_run_duration_seconds_count",
            &[("outcome", "succeeded")]
        ) >= 1.0
    );
    assert!(
        moved(
            "chronos_google_requests_total",
            &[("method", "events.list"), ("status", "200")]
        ) >= 1.0
    );
    // The sign-in and the connect exchanged their codes before the first scrape.
    assert!(
        after.value(
            "chronos_google_requests_total",
            &[("method", "oauth.token"), ("status", "200")]
        ) >= 2.0
    );
    assert!(
        moved(
            "chronos_google_request_duration_seconds_count",
            &[("method", "events.list")]
        ) >= 1.0
    );

    // The database pool and statements.
    assert!(after.value("chronos_db_pool_max_connections", &[]) >= 1.0);
    assert!(after.value("chronos_db_pool_connections", &[]) >= 1.0);
    assert!(after.has("chronos_db_pool_idle_connections", &[]));
    assert!(moved("chronos_db_statement_duration_seconds_count", &[]) >= 10.0);

    // The job queue, read from this server's database at scrape time.
    let probe = [("kind", "metrics.probe")];
    assert_eq!(after.value("chronos_jobs_queued", &probe), 1.0);
    assert_eq!(after.value("chronos_jobs_due", &probe), 1.0);
    assert_eq!(after.value("chronos_jobs_running", &probe), 0.0);
    let lag = after.value("chronos_jobs_due_lag_seconds", &probe);
    assert!((60.0..3600.0).contains(&lag), "lag {lag}");
}

#[tokio::test]
async fn operation_names_that_are_not_identifiers_are_not_labels() {
    let app = TestApp::spawn().await;
    let before = app.scrape().await;
    let name = "Metrics-Dashed";
    let body = app.named_operation(name, "query { __typename }", json!({})).await;
    // The document has no such operation: refused, and labelled `other` rather than by the name.
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "{body}");
    let after = app.scrape().await;
    assert!(!after.has(DURATION_COUNT, &[("operation", name)]));
    let moved = after.value(
        DURATION_COUNT,
        &[("operation", "other"), ("code", "BAD_USER_INPUT")],
    ) - before.value(
        DURATION_COUNT,
        &[("operation", "other"), ("code", "BAD_USER_INPUT")],
    );
    assert!(moved >= 1.0, "moved {moved}");
}

#[tokio::test]
async fn operations_refused_before_they_run_are_counted_under_their_code_and_scrapes_are_not_limited() {
    let app = TestApp::spawn_with(|s| s.rate_limits.api_per_min = 2).await;
    app.sign_in("limited@example.com").await;
    let before = app.scrape().await;
    let mut limited = 0;
    for _ in 0..6 {
        let (status, body) = app
            .try_named_operation("MetricsLimited", "query MetricsLimited { me { id } }", json!({}))
            .await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(error_code(&body), Some("RATE_LIMITED"), "{body}");
            limited += 1;
        }
    }
    assert!(limited >= 1, "the API limit was never reached");
    // Scrapes spend nothing of the API limit: more of them than it allows are all answered.
    for _ in 0..3 {
        app.scrape().await;
    }
    let after = app.scrape().await;
    let moved = |code: &str| {
        let labels = [("operation", "MetricsLimited"), ("code", code)];
        after.value(DURATION_COUNT, &labels) - before.value(DURATION_COUNT, &labels)
    };
    assert_eq!(moved("RATE_LIMITED"), f64::from(limited));
    assert_eq!(moved("OK"), f64::from(6 - limited));
}

#[tokio::test]
async fn production_does_not_serve_metrics_on_the_public_listener() {
    let app = TestApp::spawn_production(&[]).await;
    // Positive control: the listener answers.
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    assert_eq!(app.get("/metrics").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.metrics_address().await, None);
}

#[tokio::test]
async fn metrics_addr_serves_the_scrape_on_its_own_listener_only() {
    let app = TestApp::spawn_production(&[("METRICS_ADDR", "127.0.0.1:0")]).await;
    let metrics = app.metrics_address().await.expect("a metrics listener");
    assert_ne!(metrics, app.address);
    let scrape = app.scrape_at(&metrics).await;
    assert!(scrape.value("chronos_db_pool_max_connections", &[]) >= 1.0);
    assert_eq!(app.get("/metrics").await.status(), StatusCode::NOT_FOUND);
    // The metrics listener serves nothing else.
    let graphql = app
        .client
        .get(format!("{metrics}/graphql"))
        .send()
        .await
        .expect("GET");
    assert_eq!(graphql.status(), StatusCode::NOT_FOUND);

    // In development too, a configured listener takes the scrape off the main one.
    let app =
        TestApp::spawn_with(|settings| settings.metrics_addr = Some("127.0.0.1:0".parse().expect("addr")))
            .await;
    let metrics = app.metrics_address().await.expect("a metrics listener");
    app.scrape_at(&metrics).await;
    assert_eq!(app.get("/metrics").await.status(), StatusCode::NOT_FOUND);
}
