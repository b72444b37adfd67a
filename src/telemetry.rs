//! Logging: text or JSON lines on stderr, level from `RUST_LOG`; colour only on a terminal.

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::config::LogFormat;

/// Default filter: our own crates at info, chatty dependencies at warn (sqlx logs every statement at info).
const DEFAULT_FILTER: &str =
    "info,sqlx=warn,sea_orm=warn,sea_orm_migration=warn,hyper=warn,h2=warn,reqwest=warn,rustls=warn";

/// Installs the global subscriber. Safe to call more than once (later calls are ignored), which tests rely on.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match format {
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Text => registry
            .with(
                fmt::layer()
                    .with_ansi(colour_on_stderr())
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
}

/// Colour codes only for a person at a terminal: in a file, a pipe or a log collector they are noise.
/// `NO_COLOR` (https://no-color.org) turns them off on a terminal too.
fn colour_on_stderr() -> bool {
    use std::io::IsTerminal as _;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
