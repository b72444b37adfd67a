//! Push-to-subscriber latency: how long a change made at Google takes to reach an SPA subscribed to
//! `eventChanges`. The whole path runs as in production: the change at the Google emulator (over HTTP),
//! its push notification to Chronos's webhook, the refresh job a worker runs (an incremental listing by
//! sync token), the cache write, the announcement on the cache-change bus, and the subscriber's read and
//! websocket message. One change at a time: 200 isolated ones (each after the push debounce of the last
//! refresh has passed, as a person makes them), then 50 back to back (each right after the last arrived:
//! they wait for the debounce). Prints p50, p99 and the worst of each.
//!
//! ```sh
//! cargo run --release --example live_bench                      # SQLite (a temporary file)
//! BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!     cargo run --release --example live_bench                  # PostgreSQL (a scratch database)
//! ```
//! `BENCH_CHANGES` sets the number of isolated changes (200; a quarter as many back to back).

#[path = "support/bench_database.rs"]
mod bench_database;
#[path = "support/browser.rs"]
mod browser;

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bench_database::BenchDatabase;
use browser::Browser;
use chronos::{
    app::Application,
    config::{GoogleQuota, GoogleSettings, Settings},
};
use futures::{SinkExt as _, StreamExt as _};
use google_emulator::{Emulator, EmulatorConfig};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest as _, http::HeaderValue};

const EMAIL: &str = "live@bench.example.com";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let changes: usize = std::env::var("BENCH_CHANGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let dir = tempfile::tempdir()?;
    let database = BenchDatabase::from_env(dir.path()).await?;
    let result = bench(&database, dir.path(), changes).await;
    database.remove().await?;
    result
}

async fn bench(database: &BenchDatabase, data_dir: &std::path::Path, changes: usize) -> anyhow::Result<()> {
    let emulator = Emulator::spawn(EmulatorConfig::without_quotas()).await?;
    emulator.emulator.create_account(EMAIL, None);
    let google_url = url::Url::parse(&emulator.base_url())?;
    let mut settings = Settings::for_local(&database.url, data_dir).map_err(|e| anyhow::anyhow!("{e}"))?;
    settings.google = GoogleSettings::single_host(&google_url);
    settings.google.quota = GoogleQuota::UNPACED;
    settings.rate_limits.api_per_min = 0;
    let app = Application::build(settings, true).await?;
    let base = format!("http://{}", app.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));

    let browser = Browser::new(&base)?;
    browser.sign_in(EMAIL).await?;
    browser.wait_for_primary_ready().await?;
    let mut socket = subscribe_to_changes(&browser).await?;

    println!(
        "live_bench: changes at Google, one at a time; database: {}",
        database.label
    );
    let inserter = Inserter {
        http: reqwest::Client::new(),
        url: format!("{}/calendar/v3/calendars/{EMAIL}/events", emulator.base_url()),
        token: emulator.emulator.issue_access_token(EMAIL)?,
    };
    // Isolated changes: the next one after the push debounce has passed, as a person editing makes them.
    let mut isolated = Vec::with_capacity(changes);
    for n in 0..changes {
        tokio::time::sleep(chronos::calendars::jobs::PUSH_DEBOUNCE + Duration::from_millis(100)).await;
        isolated.push(
            inserter
                .change_reaches(&mut socket, &format!("Isolated {n}"))
                .await?,
        );
    }
    report(&format!("{changes} isolated changes"), &mut isolated);
    // Back to back: each right after the last arrived; they fall within the debounce of the last refresh.
    let mut back_to_back = Vec::with_capacity(changes / 4);
    for n in 0..changes / 4 {
        back_to_back.push(
            inserter
                .change_reaches(&mut socket, &format!("Burst {n}"))
                .await?,
        );
    }
    report(
        &format!("{} back-to-back changes", changes / 4),
        &mut back_to_back,
    );
    let _ = stop.send(());
    server.await??;
    Ok(())
}

/// Prints p50, p99 and the worst of `latencies`.
fn report(label: &str, latencies: &mut [Duration]) {
    latencies.sort();
    let at = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
    println!(
        "{label}: push to subscriber p50 {:.1} ms, p99 {:.1} ms, worst {:.1} ms",
        millis(at(50)),
        millis(at(99)),
        millis(latencies[latencies.len() - 1]),
    );
}

/// Makes changes at Google as the user would, over the Calendar API.
struct Inserter {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Inserter {
    /// Inserts an event named `summary` and waits for the subscriber to receive it: how long that took.
    async fn change_reaches(&self, feed: &mut Feed, summary: &str) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let response = self
            .http
            .post(&self.url)
            .bearer_auth(&self.token)
            .json(&json!({
                "summary": summary,
                "start": { "dateTime": "2026-12-08T10:00:00Z" },
                "end": { "dateTime": "2026-12-08T11:00:00Z" },
            }))
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("events.insert answered {}", response.status());
        }
        feed.wait_for_summary(summary).await?;
        Ok(started.elapsed())
    }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A websocket subscribed to `eventChanges`, past its first message (the replay from the start).
async fn subscribe_to_changes(browser: &Browser) -> anyhow::Result<Feed> {
    let url = format!("{}/graphql/ws", browser.base.replacen("http://", "ws://", 1));
    let mut request = url.into_client_request()?;
    if let Some(cookies) = browser.cookies() {
        request.headers_mut().insert("cookie", cookies);
    }
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;
    socket
        .send(Message::text(json!({ "type": "connection_init" }).to_string()))
        .await?;
    let subscribe = json!({ "id": "feed", "type": "subscribe", "payload": {
        "query": "subscription { eventChanges { changes { event { summary } } cursor } }"
    }});
    socket.send(Message::text(subscribe.to_string())).await?;
    let mut feed = Feed { socket };
    // The ack, then the first message (the replay from the start).
    feed.next_json().await?;
    feed.next_json().await?;
    Ok(feed)
}

struct Feed {
    socket: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
}

impl Feed {
    async fn next_json(&mut self) -> anyhow::Result<Value> {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(60), self.socket.next())
                .await
                .context("no message within 60 s")?
                .context("the socket closed")??;
            if let Message::Text(text) = message {
                let value: Value = serde_json::from_str(&text)?;
                if value["type"] == "ping" {
                    self.socket
                        .send(Message::text(json!({ "type": "pong" }).to_string()))
                        .await?;
                    continue;
                }
                return Ok(value);
            }
        }
    }

    async fn wait_for_summary(&mut self, summary: &str) -> anyhow::Result<()> {
        loop {
            let message = self.next_json().await?;
            let changes = &message["payload"]["data"]["eventChanges"]["changes"];
            if changes
                .as_array()
                .is_some_and(|list| list.iter().any(|c| c["event"]["summary"] == summary))
            {
                return Ok(());
            }
        }
    }
}
