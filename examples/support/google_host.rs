//! The Google emulator for benchmarks, spoken to over HTTP only: its own process when its binary is built
//! beside the benchmark (`cargo build --release -p google-emulator`), so the memory a benchmark reads is
//! the server's alone; else a server in the benchmark's process.

use anyhow::Context as _;
use google_emulator::{Emulator, EmulatorConfig, RunningEmulator};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader};

/// The Google emulator, spoken to over HTTP only.
pub struct GoogleHost {
    pub base_url: String,
    http: reqwest::Client,
    process: Option<tokio::process::Child>,
    in_process: Option<RunningEmulator>,
}

impl GoogleHost {
    pub async fn start() -> anyhow::Result<Self> {
        let http = reqwest::Client::new();
        let binary = std::env::current_exe()?
            .parent()
            .and_then(|examples| examples.parent())
            .map(|profile| profile.join("google-emulator"))
            .filter(|path| path.is_file());
        if let Some(binary) = binary {
            let mut child = tokio::process::Command::new(binary)
                // Quotas off: this benchmark measures Chronos, not Google's request budget.
                .args([
                    "--addr",
                    "127.0.0.1:0",
                    "--quota-per-user",
                    "0",
                    "--quota-per-project",
                    "0",
                ])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .kill_on_drop(true)
                .spawn()?;
            let stdout = child.stdout.take().context("emulator stdout")?;
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next_line().await?.context("emulator output")?;
            let base_url = first
                .strip_prefix("listening on ")
                .context("emulator announcement")?
                .trim()
                .to_owned();
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return Ok(Self {
                base_url,
                http,
                process: Some(child),
                in_process: None,
            });
        }
        let running = Emulator::spawn(EmulatorConfig::without_quotas()).await?;
        Ok(Self {
            base_url: running.base_url(),
            http,
            process: None,
            in_process: Some(running),
        })
    }

    pub fn describe(&self) -> &'static str {
        if self.process.is_some() {
            "its own process (memory figures are the server's alone)"
        } else {
            "in this process (memory figures include it; `cargo build --release -p google-emulator` first to \
             measure the server alone)"
        }
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut request = self.http.request(method, format!("{}{path}", self.base_url));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        anyhow::ensure!(response.status().is_success(), "{path}: {}", response.status());
        Ok(response.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.send(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.send(reqwest::Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> anyhow::Result<Value> {
        self.send(reqwest::Method::DELETE, path, None).await
    }

    /// An access token of `email` for the Calendar API.
    pub async fn token(&self, email: &str) -> anyhow::Result<String> {
        let answer = self
            .post(&format!("/emulator/accounts/{email}/token"), json!({}))
            .await?;
        Ok(answer["access_token"]
            .as_str()
            .context("access_token")?
            .to_owned())
    }

    pub async fn stop(mut self) {
        if let Some(mut child) = self.process.take() {
            let _ = child.kill().await;
        }
        if let Some(running) = self.in_process.take() {
            running.shutdown().await;
        }
    }
}
