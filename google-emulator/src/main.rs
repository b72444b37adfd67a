//! `google-emulator --addr HOST:PORT`: the emulator as a standalone server.

use std::io::Write;

use clap::Parser;
use google_emulator::{Emulator, EmulatorConfig, ExtPropMatch};
use tokio::net::TcpListener;

/// In-memory fake of Google OAuth 2.0 and Calendar API v3.
#[derive(Debug, Parser)]
#[command(name = "google-emulator", version)]
struct Args {
    /// Listen address; port 0 picks a free port.
    #[arg(long, env = "GOOGLE_EMULATOR_ADDR", default_value = "127.0.0.1:0")]
    addr: String,
    /// Only accept this OAuth client id (default: any).
    #[arg(long)]
    client_id: Option<String>,
    /// Only accept this OAuth client secret (default: any).
    #[arg(long)]
    client_secret: Option<String>,
    /// Allowed redirect URI (repeatable; default: any).
    #[arg(long = "redirect-uri")]
    redirect_uris: Vec<String>,
    /// Access token lifetime in seconds.
    #[arg(long, default_value_t = 3599)]
    access_token_ttl_secs: u64,
    /// Cap on push channel lifetimes in seconds.
    #[arg(long, default_value_t = 604_800)]
    max_channel_ttl_secs: u64,
    /// Largest number of parts in one batch request.
    #[arg(long, default_value_t = 1000)]
    max_batch_parts: usize,
    /// Consent as this account when no login_hint is given, instead of showing the account chooser.
    #[arg(long)]
    default_account: Option<String>,
    /// How repeated extended-property filters combine: all|any.
    #[arg(long, default_value = "all")]
    ext_prop_match: ExtPropMatch,
    /// `reason` of the 410 answered when deleting a deleted event.
    #[arg(long, default_value = "deleted")]
    delete_deleted_reason: String,
    /// Batch response Content-IDs without angle brackets.
    #[arg(long)]
    batch_content_id_no_brackets: bool,
    /// Hold list pages to at most this many items whatever maxResults says.
    #[arg(long)]
    page_size_cap: Option<usize>,
    /// Do not check OAuth scopes on Calendar API calls.
    #[arg(long)]
    no_scope_check: bool,
    /// Answer If-None-Match on GET with 200 instead of 304.
    #[arg(long)]
    no_if_none_match: bool,
    /// Issue a refresh token only on a client's first offline consent (or prompt=consent).
    #[arg(long)]
    refresh_token_first_consent_only: bool,
    /// Refuse syncToken combined with showDeleted=false (400).
    #[arg(long)]
    sync_token_rejects_show_deleted_false: bool,
    /// Largest number of instances expanded per recurring event in one list.
    #[arg(long, default_value_t = 2500)]
    max_expanded_instances: usize,
}

impl Args {
    fn config(self) -> EmulatorConfig {
        EmulatorConfig {
            client_id: self.client_id,
            client_secret: self.client_secret,
            redirect_uris: self.redirect_uris,
            access_token_ttl_secs: self.access_token_ttl_secs,
            max_channel_ttl_secs: self.max_channel_ttl_secs,
            max_batch_parts: self.max_batch_parts,
            default_account_email: self.default_account,
            ext_prop_match: self.ext_prop_match,
            delete_deleted_reason: self.delete_deleted_reason,
            batch_content_id_brackets: !self.batch_content_id_no_brackets,
            page_size_cap: self.page_size_cap,
            enforce_scopes: !self.no_scope_check,
            if_none_match_not_modified: !self.no_if_none_match,
            refresh_token_only_on_first_consent: self.refresh_token_first_consent_only,
            sync_token_rejects_show_deleted_false: self.sync_token_rejects_show_deleted_false,
            max_expanded_instances: self.max_expanded_instances,
            ..EmulatorConfig::default()
        }
    }
}

/// Installs the SIGTERM / Ctrl-C handlers now (so that a signal arriving right after the
/// listening line is printed is not lost) and returns a future that completes on either.
#[cfg(unix)]
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::info!("shutting down");
    })
}

#[cfg(not(unix))]
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
    })
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let addr = args.addr.clone();
    let listener = match TcpListener::bind(&addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("google-emulator: cannot listen on {addr}: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let local = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("google-emulator: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let shutdown = match shutdown_signal() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("google-emulator: cannot install signal handlers: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let emulator = Emulator::new(args.config());
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on http://{local}");
        let _ = out.flush();
    }
    match emulator.serve(listener, shutdown).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("google-emulator: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
