//! The command line: `serve` (the default), `demo`, `migrate`, `schema` and `rotate-keys`.

use std::{io::Write, process::ExitCode};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use migration::{Migrator, MigratorTrait};

use crate::{
    app::{Application, shutdown_signal},
    config::Settings,
};

#[derive(Parser)]
#[command(
    name = "chronos",
    version,
    about = "GraphQL API server for calendars, todos and Google Calendar sync"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default). Applies pending migrations first.
    Serve {
        /// Do not apply pending migrations at start-up.
        #[arg(long)]
        no_migrate: bool,
    },
    /// Manage the database schema.
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// Print the GraphQL schema (SDL).
    Schema,
    /// Run the whole system on this machine with a built-in Google emulator and two demo accounts.
    Demo,
    /// Re-encrypt every encrypted value under the first key of ENCRYPTION_KEYS (resumable).
    RotateKeys,
}

#[derive(Subcommand)]
enum MigrateAction {
    /// Apply every pending migration.
    Up,
    /// Roll back applied migrations: the last one, `--steps N`, or `--all`.
    Down {
        #[arg(long, short = 'n', conflicts_with = "all")]
        steps: Option<u32>,
        #[arg(long)]
        all: bool,
    },
    /// List migrations and whether each is applied.
    Status,
    /// Drop every table and apply all migrations from scratch.
    Fresh,
}

/// Runs `work` on a multi-threaded runtime and turns its outcome into an exit code.
fn block_on(work: impl Future<Output = anyhow::Result<()>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(work) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Once, on stderr, where the log lines go too.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve { no_migrate: false });
    if let Command::Schema = command {
        print!("{}", crate::schema::sdl());
        return ExitCode::SUCCESS;
    }
    if let Command::Demo = command {
        let _ = dotenvy::dotenv();
        return block_on(crate::demo::run());
    }
    // A taken port fails before the settings are read: reading them creates the development keys.
    let listener = match &command {
        Command::Serve { .. } => match bind_early() {
            Ok(listener) => listener,
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::FAILURE;
            }
        },
        _ => None,
    };
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    crate::telemetry::init(settings.log_format);
    for warning in &settings.warnings {
        tracing::warn!("{warning}");
    }
    block_on(async move {
        match command {
            Command::Serve { no_migrate } => serve(settings, listener, !no_migrate).await,
            Command::Migrate { action } => migrate(&settings, action).await,
            Command::RotateKeys => rotate_keys(&settings).await,
            Command::Schema | Command::Demo => Ok(()),
        }
    })
}

/// Binds BIND_ADDR (from the environment or `.env`) when it names an address; a malformed one is left to
/// the settings, which report it with every other problem.
fn bind_early() -> anyhow::Result<Option<std::net::TcpListener>> {
    let _ = dotenvy::dotenv();
    let addr = std::env::var("BIND_ADDR")
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| crate::config::DEFAULT_BIND_ADDR.to_string());
    if std::net::ToSocketAddrs::to_socket_addrs(&addr).is_err() {
        return Ok(None);
    }
    crate::app::bind(&addr).map(Some)
}

async fn serve(
    settings: Settings,
    listener: Option<std::net::TcpListener>,
    run_migrations: bool,
) -> anyhow::Result<()> {
    let app = match listener {
        Some(listener) => Application::build_on(listener, settings, run_migrations).await?,
        None => Application::build(settings, run_migrations).await?,
    };
    crate::app::announce(app.local_addr())?;
    app.run_until_stopped(shutdown_signal()).await
}

async fn rotate_keys(settings: &Settings) -> anyhow::Result<()> {
    let db = crate::db::connect(&settings.database_url)
        .await
        .context("could not connect to the database")?;
    let cipher = crate::crypto::Cipher::new(settings.encryption_keys.clone());
    let report = crate::key_rotation::rotate_all(&db, &cipher)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.client_message()))?;
    println!(
        "examined {} encrypted values; re-encrypted {} under key {}; re-indexed {} events for search",
        report.examined,
        report.rotated,
        cipher.key_ring().primary_id(),
        report.reindexed
    );
    Ok(())
}

async fn migrate(settings: &Settings, action: MigrateAction) -> anyhow::Result<()> {
    let db = crate::db::connect(&settings.database_url)
        .await
        .context("could not connect to the database")?;
    match action {
        MigrateAction::Up => Migrator::up(&db, None).await?,
        MigrateAction::Down { steps, all } => {
            let steps = if all { None } else { Some(steps.unwrap_or(1)) };
            Migrator::down(&db, steps).await?;
        }
        MigrateAction::Fresh => {
            db.close().await?;
            let db = crate::db::connect_for_fresh(&settings.database_url).await?;
            Migrator::fresh(&db).await?;
        }
        MigrateAction::Status => {
            let mut stdout = std::io::stdout().lock();
            for migration in Migrator::get_migration_with_status(&db).await? {
                writeln!(stdout, "{:?}\t{}", migration.status(), migration.name())?;
            }
        }
    }
    Ok(())
}
