//! What the perimeter costs under attack, against `chronos serve` in its own process (so its memory is
//! measured alone), with the API rate limit off (the worst case: nothing but the document guard and the
//! cost model in the way):
//! 1. the time to answer each of the worst documents found (fragment doubling, alias floods, deep
//!    nesting, fragment chains), median and p99 of 200 sequential requests;
//! 2. `/healthz` latency while two clients send those documents in a loop for 10 s;
//! 3. the server's peak RSS over the whole run.
//!
//! ```sh
//! cargo build --release --bin chronos && cargo run --release --example attack_bench
//! ```

#[path = "support/proc_status.rs"]
mod proc_status;
// Each benchmark uses its part of the shared support.
#[allow(dead_code)]
#[path = "support/server_process.rs"]
mod server_process;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use proc_status::memory_kib;
use serde_json::{Value, json};
use server_process::{ServerProcess, chronos_binary};

const SEQUENTIAL: usize = 200;
const ATTACK: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let binary = chronos_binary()?;
    let dir = tempfile::tempdir()?;
    let database_url = format!("sqlite://{}?mode=rwc", dir.path().join("bench.db").display());
    let env: Vec<(String, String)> = [
        ("DATABASE_URL", database_url.as_str()),
        ("BIND_ADDR", "127.0.0.1:0"),
        ("RATE_LIMIT_API_PER_MIN", "0"),
        ("SCHEDULER_ENABLED", "false"),
        ("RUST_LOG", "error"),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value.to_owned()))
    .collect();
    let server = ServerProcess::start(&binary, dir.path(), &env).await?;
    let (base, pid) = (server.base.clone(), server.pid);
    let http = reqwest::Client::builder().build()?;
    let documents = worst_documents();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "attack benchmark against {base} (load average before: {})",
        load.trim()
    );
    println!(
        "server RSS at start: {} MiB",
        memory_kib(Some(pid), "VmRSS") / 1024
    );

    println!("\n1. time to answer each document ({SEQUENTIAL} sequential requests)");
    println!(
        "{:<58} {:>9} {:>9} {:>9}",
        "document", "bytes", "p50 ms", "p99 ms"
    );
    for (name, query) in &documents {
        let body = json!({ "query": query }).to_string();
        let outcome = post(&http, &base, body.clone()).await?;
        let mut times = Vec::with_capacity(SEQUENTIAL);
        for _ in 0..SEQUENTIAL {
            let started = Instant::now();
            post(&http, &base, body.clone()).await?;
            times.push(started.elapsed());
        }
        println!(
            "{:<58} {:>9} {:>9.2} {:>9.2}   {outcome}",
            name,
            query.len(),
            millis(percentile(&mut times, 50)),
            millis(percentile(&mut times, 99)),
        );
    }

    println!(
        "\n2. /healthz while two clients send those documents in a loop for {} s",
        ATTACK.as_secs()
    );
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let bodies: Arc<Vec<String>> = Arc::new(
        documents
            .iter()
            .map(|(_, query)| json!({ "query": query }).to_string())
            .collect(),
    );
    let attackers: Vec<_> = (0..2)
        .map(|_| {
            let (http, base, stop, sent, bodies) = (
                http.clone(),
                base.clone(),
                stop.clone(),
                sent.clone(),
                bodies.clone(),
            );
            tokio::spawn(async move {
                let mut index = 0;
                while !stop.load(Ordering::Relaxed) {
                    let _ = post(&http, &base, bodies[index % bodies.len()].clone()).await;
                    sent.fetch_add(1, Ordering::Relaxed);
                    index += 1;
                }
            })
        })
        .collect();
    let mut health = Vec::new();
    let until = Instant::now() + ATTACK;
    while Instant::now() < until {
        let started = Instant::now();
        let status = http.get(format!("{base}/healthz")).send().await?.status();
        anyhow::ensure!(status.is_success(), "/healthz answered {status}");
        health.push(started.elapsed());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for attacker in attackers {
        attacker.await?;
    }
    println!(
        "   attack documents sent: {} ({:.0}/s); /healthz requests: {}, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        sent.load(Ordering::Relaxed),
        sent.load(Ordering::Relaxed) as f64 / ATTACK.as_secs_f64(),
        health.len(),
        millis(percentile(&mut health, 50)),
        millis(percentile(&mut health, 99)),
        millis(percentile(&mut health, 100)),
    );

    println!(
        "\n3. server peak RSS over the whole run: {} MiB",
        memory_kib(Some(pid), "VmHWM") / 1024
    );
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average after: {}", load.trim());
    Ok(())
}

/// Posts one GraphQL body; returns the HTTP status and the first error's code (or "data").
async fn post(http: &reqwest::Client, base: &str, body: String) -> anyhow::Result<String> {
    let response = http
        .post(format!("{base}/graphql"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await?;
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let code = body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("data")
        .to_owned();
    Ok(format!("{status} {code}"))
}

/// The worst documents found: each is refused by one of the guard's limits, or is the largest that passes.
fn worst_documents() -> Vec<(String, String)> {
    let doubling = |levels: usize| {
        let mut query = format!("query {{ me {{ ...F{levels} }} }}\nfragment F0 on User {{ id }}\n");
        for level in 1..=levels {
            let before = level - 1;
            query.push_str(&format!(
                "fragment F{level} on User {{ ...F{before} ...F{before} }}\n"
            ));
        }
        query
    };
    let aliases = |count: usize| -> String {
        let fields: String = (0..count).map(|i| format!("a{i}: me {{ id }} ")).collect();
        format!("{{ {fields} }}")
    };
    let pad = |mut query: String, bytes: usize| {
        query.push('#');
        query.push_str(&"x".repeat(bytes.saturating_sub(query.len())));
        query
    };
    let chain = |length: usize| {
        let mut query = format!(
            "{{ me {{ ...F{} }} }}\nfragment F0 on User {{ id }}\n",
            length - 1
        );
        for i in 1..length {
            query.push_str(&format!("fragment F{i} on User {{ email ...F{} }}\n", i - 1));
        }
        query
    };
    let same_field: String = format!("{{ {} }}", "me { id } ".repeat(330));
    vec![
        ("fragment doubling, 26 levels".into(), doubling(26)),
        ("fragment doubling, 400 levels".into(), doubling(400)),
        (
            "1 MiB alias flood (20,000 aliases)".into(),
            pad(aliases(20_000), 1_000_000).chars().take(1_000_000).collect(),
        ),
        (
            "64 KiB alias flood".into(),
            aliases(4_000).chars().take(65_000).collect(),
        ),
        ("100 aliases".into(), aliases(100)),
        (
            "nesting 10,000 deep".into(),
            format!("{}{}", "{ me ".repeat(5_000), "}".repeat(5_000)),
        ),
        ("fragment chain of 200".into(), chain(200)),
        ("fragment chain of 400 (over the token limit)".into(), chain(400)),
        ("fragment chain of 600 (over the token limit)".into(), chain(600)),
        (
            "501 spreads of one fragment".into(),
            format!(
                "{{ me {{ {} }} }} fragment A on User {{ id }}",
                "...A ".repeat(501)
            ),
        ),
        ("one field 330 times (accepted)".into(), same_field),
        (
            "490 times one field (accepted: validation compares every pair)".into(),
            format!("{{ {} }}", "me { id } ".repeat(490)),
        ),
    ]
}

fn percentile(times: &mut [Duration], p: usize) -> Duration {
    times.sort();
    let index = (times.len() * p / 100).min(times.len().saturating_sub(1));
    times.get(index).copied().unwrap_or_default()
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
