//! Subscription fan-out: 10,000 websocket clients (`graphql-transport-ws` on `/graphql/ws`, signed in)
//! subscribed to `syncProgress`, and one sync run's messages reaching every one of them; first with one
//! `chronos serve`, then (on PostgreSQL) with the clients split across two on the same database, where
//! progress crosses instances by LISTEN/NOTIFY.
//!
//! Every client is the same user (its runs are the only ones it may watch), signed in as
//! `BENCH_SESSIONS` sessions (10) the clients share in turn. Each run copies `BENCH_EVENTS` (100) new
//! events into a second calendar, so it sends STARTED, LISTING, one or more APPLYING and FINISHED, with
//! the emulator answering every request `BENCH_LATENCY_MS` (20) late as in the other sync benchmarks.
//!
//! Figures:
//! - delivery latency, p50 and p99 over every (client, message): from the message's `at` (stamped by the
//!   run just before it publishes) to the client reading the frame off its socket, both clocks this
//!   machine's. It includes the NOTIFY round trip on PostgreSQL and the clients' own scheduling: they
//!   share the 2 cores with the servers.
//! - server memory per idle subscriber: the RSS growth of the server processes alone (the clients are in
//!   this process) from before the sockets opened to all subscribed and idle, divided by the clients.
//!
//! ```sh
//! cargo build --release --bin chronos
//! BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!     cargo run --release --example fanout_bench   # one instance, then two (PostgreSQL)
//! cargo run --release --example fanout_bench       # one instance on SQLite
//! ```
//! Each process holds one file per socket: the open-files limit (`ulimit -n`) must be above
//! `BENCH_SUBSCRIBERS` (10,000) plus a few hundred, for this shell and so for the servers it starts.
//! The servers run with `RATE_LIMIT_API_PER_MIN=0` (each subscribe spends the user's API rate limit, as a
//! POST would: 10,000 in a minute is far over the default 600) and `RATE_LIMIT_SIGNIN_PER_MIN=0` (the
//! sessions sign in from one address); there is no other limit on websockets or subscriptions.

#[path = "support/bench_database.rs"]
mod bench_database;
// Each benchmark uses its part of the shared support.
#[allow(dead_code)]
#[path = "support/browser.rs"]
mod browser;
#[path = "support/proc_status.rs"]
mod proc_status;
#[path = "support/server_process.rs"]
mod server_process;

use std::{
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use bench_database::BenchDatabase;
use browser::Browser;
use chrono::{DateTime, TimeDelta, Utc};
use futures::{SinkExt as _, StreamExt as _, stream::FuturesUnordered};
use google_emulator::{Emulator, EmulatorConfig, RunningEmulator};
use proc_status::memory_kib;
use serde_json::{Value, json};
use server_process::{ServerProcess, chronos_binary, google_emulator_env};
use tokio::sync::{Semaphore, mpsc};
use tokio_tungstenite::tungstenite::{
    Message, client::IntoClientRequest as _, http::HeaderValue, protocol::WebSocketConfig,
};
use tokio_util::sync::CancellationToken;

const EMAIL: &str = "fanout@bench.example.com";
/// Handshakes in flight at once while the clients connect.
const CONNECTING_AT_ONCE: usize = 200;
/// How long the subscribers sit idle before their memory is read.
const SETTLE: Duration = Duration::from_secs(5);
const LIVE_PROGRESS_SUBSCRIBERS: &str = "chronos_live_subscriptions{bus=\"progress\"}";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let subscribers = env_number("BENCH_SUBSCRIBERS", 10_000);
    let sessions = env_number("BENCH_SESSIONS", 10).max(1);
    let events = env_number("BENCH_EVENTS", 100);
    let latency_ms = env_number("BENCH_LATENCY_MS", 20);
    check_open_files(subscribers)?;
    let binary = chronos_binary()?;
    let dir = tempfile::tempdir()?;
    let database = BenchDatabase::from_env(dir.path()).await?;
    let runs = Runs { events, latency_ms };
    let result = bench(&binary, dir.path(), &database, subscribers, sessions, runs).await;
    database.remove().await?;
    result
}

/// What the measured runs do: copy `events` new events, Google answering each request `latency_ms` late.
#[derive(Clone, Copy)]
struct Runs {
    events: usize,
    latency_ms: usize,
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|raw| raw.parse().ok())
        .unwrap_or(default)
}

/// Fails early, with the fix, when this process could not hold a socket per client.
fn check_open_files(subscribers: usize) -> anyhow::Result<()> {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let soft = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .and_then(|line| line.split_whitespace().nth(3))
        .and_then(|value| value.parse::<usize>().ok());
    if let Some(soft) = soft {
        let needed = subscribers + 500;
        anyhow::ensure!(
            soft >= needed,
            "the open-files limit is {soft}; {subscribers} clients need about {needed}: raise it first \
             (`ulimit -n {needed}`, within the hard limit `ulimit -Hn`)"
        );
        println!("open-files limit: {soft}");
    }
    Ok(())
}

async fn bench(
    binary: &Path,
    dir: &Path,
    database: &BenchDatabase,
    subscribers: usize,
    sessions: usize,
    Runs { events, latency_ms }: Runs,
) -> anyhow::Result<()> {
    let emulator = Emulator::spawn(EmulatorConfig::without_quotas()).await?;
    emulator.emulator.create_account(EMAIL, None);
    let mirror = emulator.emulator.create_calendar(EMAIL, "Mirror", Some("UTC"))?;
    let mirror_id = mirror["id"].as_str().context("mirror calendar id")?.to_owned();
    let mut env = google_emulator_env(&database.url, &emulator.base_url());
    for (name, value) in [
        ("RATE_LIMIT_API_PER_MIN", "0"),
        ("RATE_LIMIT_SIGNIN_PER_MIN", "0"),
        ("GOOGLE_QUOTA_PER_USER_PER_MINUTE", "0"),
        ("GOOGLE_QUOTA_PER_PROJECT_PER_MINUTE", "0"),
    ] {
        env.push((name.to_owned(), value.to_owned()));
    }
    println!(
        "fanout_bench: {subscribers} subscribers to syncProgress, {sessions} sessions of one user, \
         runs of {events} new events, {latency_ms} ms of emulator latency; database: {}",
        database.label
    );
    println!("load average before: {}", load_average());

    // The user, its sessions and a sync config, through a first server (the database keeps them; the
    // cookies are the host's, whatever the port, so the browsers go on with the servers started later).
    let mut browsers = Vec::with_capacity(sessions);
    let config_id = {
        let server = ServerProcess::start(binary, dir, &env).await?;
        for _ in 0..sessions {
            let browser = Browser::new(&server.base)?;
            browser.sign_in(EMAIL).await?;
            browsers.push(browser);
        }
        create_config(&browsers[0], &mirror_id).await?
    };
    let cookies = browsers
        .iter()
        .map(|browser| browser.cookies().context("session cookies"))
        .collect::<anyhow::Result<Vec<_>>>()?;

    let http = reqwest::Client::new();
    // Google's latency from here on: a run's messages are as far apart as its requests make them.
    http.put(format!("{}/emulator/latency", emulator.base_url()))
        .json(&json!({ "ms": latency_ms }))
        .send()
        .await?
        .error_for_status()?;
    let scenarios: &[usize] = if database.label == "PostgreSQL" {
        &[1, 2]
    } else {
        &[1]
    };
    for &instances in scenarios {
        let mut servers = Vec::with_capacity(instances);
        for _ in 0..instances {
            servers.push(ServerProcess::start(binary, dir, &env).await?);
        }
        let browser = &mut browsers[0];
        browser.base.clone_from(&servers[0].base);

        // A run watched by one subscriber before the clients connect: code paths and pools warm, the
        // memory baseline taken after real work.
        seed_events(&emulator, events)?;
        let (events_out, events_in) = mpsc::unbounded_channel();
        let stop = CancellationToken::new();
        open_subscribers(&servers[..1], &cookies, 1, &events_out, &stop).await?;
        wait_until_subscribed(&http, &servers[..1], 1).await?;
        let run_id = trigger(browser, &config_id).await?;
        collect_run(events_in, &run_id, 1).await?;
        stop.cancel();
        wait_until_subscribed(&http, &servers[..1], 0).await?;

        let rss_before: Vec<u64> = servers.iter().map(|s| memory_kib(Some(s.pid), "VmRSS")).collect();
        let (events_out, events_in) = mpsc::unbounded_channel();
        let stop = CancellationToken::new();
        let connecting = Instant::now();
        open_subscribers(&servers, &cookies, subscribers, &events_out, &stop).await?;
        drop(events_out);
        wait_until_subscribed(&http, &servers, subscribers).await?;
        let connected = connecting.elapsed();
        tokio::time::sleep(SETTLE).await;
        let rss_after: Vec<u64> = servers.iter().map(|s| memory_kib(Some(s.pid), "VmRSS")).collect();

        seed_events(&emulator, events)?;
        let run_id = trigger(browser, &config_id).await?;
        let run = collect_run(events_in, &run_id, subscribers).await?;
        stop.cancel();
        report(instances, subscribers, connected, &rss_before, &rss_after, &run);
        drop(servers);
    }
    println!("load average after: {}", load_average());
    emulator.shutdown().await;
    Ok(())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// A ONE_WAY config from the primary calendar into `mirror_id`, disabled so that no push or schedule
/// starts runs of its own: only the runs this benchmark triggers happen.
async fn create_config(browser: &Browser, mirror_id: &str) -> anyhow::Result<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let (source, destination) = loop {
        let data = browser
            .data("{ calendars { id primary googleCalendarId } }", json!({}))
            .await?;
        let list = data["calendars"].as_array().cloned().unwrap_or_default();
        let find = |primary: bool| {
            list.iter()
                .find(|c| c["primary"] == primary && (primary || c["googleCalendarId"] == mirror_id))
                .and_then(|c| c["id"].as_str())
                .map(str::to_owned)
        };
        if let (Some(source), Some(destination)) = (find(true), find(false)) {
            break (source, destination);
        }
        if Instant::now() > deadline {
            bail!("the calendars never appeared: {data}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let data = browser
        .data(
            "mutation($input: CreateSyncConfigInput!) { createSyncConfig(input: $input) { id } }",
            json!({ "input": {
                "sourceCalendarId": source,
                "destinationCalendarId": destination,
                "direction": "ONE_WAY",
                "enabled": false,
            }}),
        )
        .await?;
    Ok(data["createSyncConfig"]["id"]
        .as_str()
        .context("config id")?
        .to_owned())
}

/// `count` new events on the primary calendar, within the config's lookahead: the next run copies them.
fn seed_events(emulator: &RunningEmulator, count: usize) -> anyhow::Result<()> {
    let start = Utc::now() + TimeDelta::days(1);
    for i in 0..count {
        let at = start + TimeDelta::minutes(30 * i64::try_from(i)?);
        emulator.emulator.insert_event(
            EMAIL,
            json!({
                "summary": format!("Fan-out {i}"),
                "start": { "dateTime": at.to_rfc3339() },
                "end": { "dateTime": (at + TimeDelta::minutes(30)).to_rfc3339() },
            }),
        )?;
    }
    Ok(())
}

async fn trigger(browser: &Browser, config_id: &str) -> anyhow::Result<String> {
    let data = browser
        .data(
            "mutation($id: ID!) { triggerSync(configId: $id) { id } }",
            json!({ "id": config_id }),
        )
        .await?;
    Ok(data["triggerSync"]["id"].as_str().context("run id")?.to_owned())
}

/// What a client saw: one progress message, or the end of its subscription.
enum Seen {
    Message(Delivery),
    Failed(String),
}

struct Delivery {
    client: usize,
    instance: usize,
    run_id: String,
    last: bool,
    /// When the run stamped the message.
    at: DateTime<Utc>,
    /// From the message's `at` to the client reading it.
    latency: TimeDelta,
}

/// Opens `count` subscribers, spread in turn over `servers` and the sessions of `cookies`, each reading
/// its socket in a task of its own (until `stop`) and reporting what it sees on `seen`.
async fn open_subscribers(
    servers: &[ServerProcess],
    cookies: &[HeaderValue],
    count: usize,
    seen: &mpsc::UnboundedSender<Seen>,
    stop: &CancellationToken,
) -> anyhow::Result<()> {
    let handshakes = Arc::new(Semaphore::new(CONNECTING_AT_ONCE));
    let mut opening = FuturesUnordered::new();
    for client in 0..count {
        let instance = client % servers.len();
        let url = ws_url(&servers[instance].base);
        let cookie = cookies[client % cookies.len()].clone();
        let handshakes = handshakes.clone();
        opening.push(async move {
            let _turn = handshakes.acquire().await?;
            let socket = subscribe(&url, cookie).await?;
            anyhow::Ok((client, instance, socket))
        });
    }
    while let Some(opened) = opening.next().await {
        let (client, instance, socket) = opened?;
        tokio::spawn(read_feed(socket, client, instance, seen.clone(), stop.clone()));
    }
    Ok(())
}

fn ws_url(base: &str) -> String {
    format!("{}/graphql/ws", base.replacen("http://", "ws://", 1))
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A socket signed in with `cookie`, acknowledged, with `syncProgress` subscribed.
async fn subscribe(url: &str, cookie: HeaderValue) -> anyhow::Result<Socket> {
    let mut request = url.into_client_request()?;
    request.headers_mut().insert("cookie", cookie);
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    // The clients' own read buffers small too (the default 128 KiB is zero-filled on every read): the
    // clients share the cores with the servers, and every cycle they spend is in the latencies.
    let config = WebSocketConfig::default().read_buffer_size(4 * 1024);
    let (mut socket, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), true).await?;
    socket
        .send(Message::text(json!({ "type": "connection_init" }).to_string()))
        .await?;
    loop {
        let message = tokio::time::timeout(Duration::from_secs(60), socket.next())
            .await
            .context("no connection_ack within 60 s")?
            .context("the socket closed before connection_ack")??;
        if let Message::Text(text) = message {
            let value: Value = serde_json::from_str(&text)?;
            if value["type"] == "connection_ack" {
                break;
            }
            bail!("expected connection_ack, got {text}");
        }
    }
    let subscribe = json!({ "id": "progress", "type": "subscribe", "payload": {
        "query": "subscription { syncProgress { runId phase at } }"
    }});
    socket.send(Message::text(subscribe.to_string())).await?;
    Ok(socket)
}

/// Reads a subscriber's socket until `stop`: every progress message, timed on arrival.
async fn read_feed(
    mut socket: Socket,
    client: usize,
    instance: usize,
    seen: mpsc::UnboundedSender<Seen>,
    stop: CancellationToken,
) {
    let outcome = async {
        loop {
            let message = tokio::select! {
                () = stop.cancelled() => return Ok(()),
                message = socket.next() => message,
            };
            let received = Utc::now();
            let Message::Text(text) = message.context("the socket closed")?? else {
                continue;
            };
            let value: Value = serde_json::from_str(&text)?;
            match value["type"].as_str() {
                Some("ping") => {
                    socket
                        .send(Message::text(json!({ "type": "pong" }).to_string()))
                        .await?;
                }
                Some("next") => {
                    let progress = &value["payload"]["data"]["syncProgress"];
                    let at = progress["at"].as_str().context("at")?;
                    let at = DateTime::parse_from_rfc3339(at)?.with_timezone(&Utc);
                    let phase = progress["phase"].as_str().context("phase")?;
                    let _ = seen.send(Seen::Message(Delivery {
                        client,
                        instance,
                        run_id: progress["runId"].as_str().context("runId")?.to_owned(),
                        last: matches!(phase, "FINISHED" | "FAILED"),
                        at,
                        latency: received - at,
                    }));
                }
                _ => bail!("unexpected message: {text}"),
            }
        }
    };
    let outcome: anyhow::Result<()> = outcome.await;
    if let Err(e) = outcome {
        let _ = seen.send(Seen::Failed(format!("client {client}: {e:#}")));
    }
    let _ = socket.close(None).await;
}

/// Waits until the servers together count `expected` live progress subscribers (each server its share).
async fn wait_until_subscribed(
    http: &reqwest::Client,
    servers: &[ServerProcess],
    expected: usize,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let mut live = 0.0;
        for server in servers {
            live += server
                .metric(http, LIVE_PROGRESS_SUBSCRIBERS)
                .await?
                .unwrap_or(0.0);
        }
        if live as usize == expected {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{live} live progress subscribers after 300 s, expected {expected}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every delivery of `run_id`, until each of `subscribers` clients has its last message.
async fn collect_run(
    mut seen: mpsc::UnboundedReceiver<Seen>,
    run_id: &str,
    subscribers: usize,
) -> anyhow::Result<Vec<Delivery>> {
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut deliveries = Vec::new();
    let mut finished = 0;
    while finished < subscribers {
        let next = tokio::time::timeout_at(deadline.into(), seen.recv())
            .await
            .with_context(|| format!("{finished} of {subscribers} clients saw the run end within 300 s"))?
            .context("every client stopped")?;
        match next {
            Seen::Message(delivery) if delivery.run_id == run_id => {
                finished += usize::from(delivery.last);
                deliveries.push(delivery);
            }
            Seen::Message(_) => {}
            Seen::Failed(e) => bail!("a subscriber failed: {e}"),
        }
    }
    Ok(deliveries)
}

fn report(
    instances: usize,
    subscribers: usize,
    connected: Duration,
    rss_before: &[u64],
    rss_after: &[u64],
    run: &[Delivery],
) {
    let grown_kib: u64 = rss_after
        .iter()
        .zip(rss_before)
        .map(|(after, before)| after.saturating_sub(*before))
        .sum();
    let per_subscriber_kb = grown_kib as f64 * 1024.0 / subscribers as f64 / 1000.0;
    let label = if instances == 1 {
        "one instance".to_owned()
    } else {
        format!("{instances} instances, one database")
    };
    let mibs = |kibs: &[u64]| {
        kibs.iter()
            .map(|kib| format!("{}", kib / 1024))
            .collect::<Vec<_>>()
            .join(" + ")
    };
    println!(
        "\n{label}: {subscribers} subscribers connected and subscribed in {:.1} s",
        connected.as_secs_f64()
    );
    println!(
        "  server RSS {} MiB before the sockets, {} MiB with every subscriber idle: {per_subscriber_kb:.1} KB \
         per idle subscriber (target < 20 KB: {})",
        mibs(rss_before),
        mibs(rss_after),
        verdict(per_subscriber_kb < 20.0),
    );
    let mut per_client = vec![0usize; subscribers];
    for delivery in run {
        per_client[delivery.client] += 1;
    }
    let (fewest, most) = (
        per_client.iter().min().copied().unwrap_or(0),
        per_client.iter().max().copied().unwrap_or(0),
    );
    let target_ms = if instances == 1 { 250.0 } else { 500.0 };
    let mut all: Vec<TimeDelta> = run.iter().map(|d| d.latency).collect();
    let p99 = percentile(&mut all, 99);
    println!(
        "  one run: {fewest}–{most} messages per subscriber, {} deliveries; publish to client p50 {:.1} ms, \
         p99 {:.1} ms, worst {:.1} ms (target p99 < {target_ms} ms: {})",
        run.len(),
        percentile(&mut all, 50),
        p99,
        percentile(&mut all, 100),
        verdict(p99 < target_ms),
    );
    let stamped = run.iter().map(|d| d.at);
    if let (Some(first), Some(last)) = (stamped.clone().min(), stamped.max()) {
        println!(
            "  the run stamped its messages over {} ms",
            (last - first).num_milliseconds()
        );
    }
    if instances > 1 {
        for instance in 0..instances {
            let mut own: Vec<TimeDelta> = run
                .iter()
                .filter(|d| d.instance == instance)
                .map(|d| d.latency)
                .collect();
            println!(
                "  subscribers of instance {}: p50 {:.1} ms, p99 {:.1} ms",
                instance + 1,
                percentile(&mut own, 50),
                percentile(&mut own, 99),
            );
        }
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok { "ok" } else { "MISSED" }
}

/// The `p`th percentile in milliseconds.
fn percentile(latencies: &mut [TimeDelta], p: usize) -> f64 {
    latencies.sort();
    let index = (latencies.len() * p / 100).min(latencies.len().saturating_sub(1));
    latencies.get(index).map_or(0.0, |latency| {
        latency.num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0
    })
}
