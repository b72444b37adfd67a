//! Chronos: a GraphQL API server for calendars, todos and Google Calendar sync.

/// mimalloc rather than the system allocator: a GraphQL response is many small allocations made and freed
/// across worker threads, where glibc's malloc spent about a fifth of a week page's time
/// (`week_page_bench` under `perf`). Declared here so that the binary, the tests and the benchmarks all
/// run on the allocator that ships.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod accounts;
pub mod app;
pub mod backoff;
pub mod bus;
pub mod cache_changes;
pub mod calendars;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod db;
pub mod demo;
pub mod entities;
pub mod error;
pub mod events;
pub mod google;
pub mod graphql;
pub mod http;
pub mod jobs;
pub mod key_rotation;
pub mod metrics;
pub mod progress;
pub mod rate_limit;
pub mod schema;
pub mod session;
pub mod state;
pub mod sync;
pub mod telemetry;
pub mod text;
pub mod todos;
pub mod work_budget;
