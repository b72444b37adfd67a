//! `chronos serve` in a process of its own, so the server's memory is measured apart from the clients
//! driving it. The binary is the one built beside the benchmark (`cargo build --release --bin chronos`
//! for a `--release` benchmark).

use std::{path::Path, process::Stdio};

use anyhow::Context as _;
use tokio::io::{AsyncBufReadExt as _, BufReader};

/// A running `chronos serve`, killed when dropped.
pub struct ServerProcess {
    pub base: String,
    pub pid: u32,
    _child: tokio::process::Child,
}

/// The `chronos` binary built in the same profile as this benchmark.
pub fn chronos_binary() -> anyhow::Result<std::path::PathBuf> {
    let profile = std::env::current_exe()?
        .parent()
        .and_then(|examples| examples.parent())
        .map(Path::to_path_buf)
        .context("the benchmark's directory")?;
    let binary = profile.join("chronos");
    anyhow::ensure!(
        binary.is_file(),
        "build the server first: cargo build --release --bin chronos (looked for {})",
        binary.display()
    );
    Ok(binary)
}

/// The environment of a development server on `database_url` whose Google is the emulator at
/// `google_base`, on any free port, logging errors only. Instances started in the same `dir` share the
/// development keys generated there (start the first before the others).
pub fn google_emulator_env(database_url: &str, google_base: &str) -> Vec<(String, String)> {
    [
        ("DATABASE_URL", database_url),
        ("BIND_ADDR", "127.0.0.1:0"),
        ("GOOGLE_CLIENT_ID", "chronos-local"),
        ("GOOGLE_CLIENT_SECRET", "chronos-local-secret"),
        ("GOOGLE_ACCOUNTS_URL", google_base),
        ("GOOGLE_OAUTH_URL", google_base),
        ("GOOGLE_API_URL", google_base),
        ("RUST_LOG", "error"),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value.to_owned()))
    .collect()
}

impl ServerProcess {
    /// Starts `chronos serve` in `dir` with exactly `env` (and `PATH`), and waits until it listens.
    pub async fn start(binary: &Path, dir: &Path, env: &[(String, String)]) -> anyhow::Result<Self> {
        let mut child = tokio::process::Command::new(binary)
            .arg("serve")
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(env.iter().map(|(name, value)| (name, value)))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        let pid = child.id().context("server pid")?;
        let stdout = child.stdout.take().context("server stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let base = loop {
            let line = lines
                .next_line()
                .await?
                .context("the server exited before listening")?;
            if let Some(address) = line.strip_prefix("listening on ") {
                break address.trim().to_owned();
            }
        };
        // Keep reading, so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self {
            base,
            pid,
            _child: child,
        })
    }

    /// A sample of the server's `/metrics` (served on the main listener in development): the value of
    /// the first series whose line starts with `series`.
    pub async fn metric(&self, http: &reqwest::Client, series: &str) -> anyhow::Result<Option<f64>> {
        let text = http
            .get(format!("{}/metrics", self.base))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        Ok(text
            .lines()
            .find(|line| line.starts_with(series))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|value| value.parse().ok()))
    }
}
