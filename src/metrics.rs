//! What an operator watches: the series served at `GET /metrics` in Prometheus text format, their names,
//! and the recording functions the rest of the server calls where things happen.
//!
//! The recorder is process-global (the `metrics` facade has one): [`install`] sets it up once, and every
//! server in the process records into it. Counters and histograms are recorded as things happen; gauges
//! that describe a state (the pool, the job queue, live subscriptions) are set when a scrape asks
//! ([`Scrape`]). This module sits low in the house: it knows no domain, only names and numbers.

use std::{
    collections::{BTreeSet, HashSet},
    sync::{Mutex, OnceLock, PoisonError},
    time::Duration,
};

use ::metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

pub const GRAPHQL_OPERATION_DURATION: &str = "chronos_graphql_operation_duration_seconds";
pub const GRAPHQL_OPERATIONS_IN_FLIGHT: &str = "chronos_graphql_operations_in_flight";
pub const GRAPHQL_SUBSCRIPTIONS_STARTED: &str = "chronos_graphql_subscriptions_started_total";
pub const WEBSOCKET_CONNECTIONS: &str = "chronos_websocket_connections";
pub const LIVE_SUBSCRIPTIONS: &str = "chronos_live_subscriptions";
pub const DB_POOL_CONNECTIONS: &str = "chronos_db_pool_connections";
pub const DB_POOL_IDLE_CONNECTIONS: &str = "chronos_db_pool_idle_connections";
pub const DB_POOL_MAX_CONNECTIONS: &str = "chronos_db_pool_max_connections";
pub const DB_POOL_ACQUIRE_TIMEOUTS: &str = "chronos_db_pool_acquire_timeouts_total";
pub const DB_STATEMENT_DURATION: &str = "chronos_db_statement_duration_seconds";
pub const JOBS_QUEUED: &str = "chronos_jobs_queued";
pub const JOBS_DUE: &str = "chronos_jobs_due";
pub const JOBS_RUNNING: &str = "chronos_jobs_running";
pub const JOBS_DUE_LAG: &str = "chronos_jobs_due_lag_seconds";
pub const SYNC_RUNS: &str = "chronos_sync_runs_total";
pub const SYNC_RUN_DURATION: &str = "chronos_sync_run_duration_seconds";
pub const GOOGLE_REQUESTS: &str = "chronos_google_requests_total";
pub const GOOGLE_REQUEST_DURATION: &str = "chronos_google_request_duration_seconds";
pub const PUSH_NOTIFICATIONS: &str = "chronos_push_notifications_total";

/// The content type of a scrape.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Request-scale latencies, 5 ms to 30 s.
const REQUEST_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Statement latencies, 0.5 ms to 5 s.
const STATEMENT_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 5.0,
];
/// Sync runs take seconds to minutes.
const RUN_BUCKETS: &[f64] = &[0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0];

/// How often buffered histogram samples are folded in, so memory stays flat between scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder (the first call; later ones return the same handle).
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = builder().build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed: /metrics shows nothing recorded");
        }
        describe();
        // Unlabelled counters show from the start, at zero.
        counter!(DB_POOL_ACQUIRE_TIMEOUTS).absolute(0);
        let upkeep = handle.clone();
        let spawned = std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    upkeep.run_upkeep();
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "metrics upkeep thread could not start; scrapes still fold samples in");
        }
        handle
    })
}

fn builder() -> PrometheusBuilder {
    let buckets = [
        (GRAPHQL_OPERATION_DURATION, REQUEST_BUCKETS),
        (GOOGLE_REQUEST_DURATION, REQUEST_BUCKETS),
        (DB_STATEMENT_DURATION, STATEMENT_BUCKETS),
        (SYNC_RUN_DURATION, RUN_BUCKETS),
    ];
    let with_buckets = || -> Result<PrometheusBuilder, BuildError> {
        let mut builder = PrometheusBuilder::new();
        for (name, values) in buckets {
            builder = builder.set_buckets_for_metric(Matcher::Full(name.to_owned()), values)?;
        }
        Ok(builder)
    };
    // Only an empty bucket list is refused; without buckets histograms would render as summaries.
    with_buckets().unwrap_or_else(|_| PrometheusBuilder::new())
}

fn describe() {
    use ::metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_histogram!(
        GRAPHQL_OPERATION_DURATION,
        metrics::Unit::Seconds,
        "GraphQL queries and mutations (POST and websocket) by operation name and result code"
    );
    describe_gauge!(
        GRAPHQL_OPERATIONS_IN_FLIGHT,
        "GraphQL queries and mutations executing or waiting for one of their user's slots"
    );
    describe_counter!(
        GRAPHQL_SUBSCRIPTIONS_STARTED,
        "GraphQL subscriptions started over the websocket, by operation name"
    );
    describe_gauge!(WEBSOCKET_CONNECTIONS, "Open GraphQL websockets");
    describe_gauge!(
        LIVE_SUBSCRIPTIONS,
        "Subscribers listening on each bus of this instance (progress: syncProgress; cache_changes: eventChanges, calendarsChanged)"
    );
    describe_gauge!(DB_POOL_CONNECTIONS, "Open database connections (idle and in use)");
    describe_gauge!(DB_POOL_IDLE_CONNECTIONS, "Idle database connections");
    describe_gauge!(DB_POOL_MAX_CONNECTIONS, "The pool's largest size");
    describe_counter!(
        DB_POOL_ACQUIRE_TIMEOUTS,
        "Requests for a connection that waited the whole acquire timeout (answered 503)"
    );
    describe_histogram!(
        DB_STATEMENT_DURATION,
        metrics::Unit::Seconds,
        "SQL statements, from sent to answered (the wait for a connection not included)"
    );
    describe_gauge!(JOBS_QUEUED, "Queued jobs by kind, due or not");
    describe_gauge!(JOBS_DUE, "Queued jobs whose time has come, by kind");
    describe_gauge!(JOBS_RUNNING, "Running jobs by kind");
    describe_gauge!(
        JOBS_DUE_LAG,
        "How long the oldest due job of each kind has waited past its time (0: none waiting)"
    );
    describe_counter!(SYNC_RUNS, "Finished sync runs by outcome");
    describe_histogram!(
        SYNC_RUN_DURATION,
        metrics::Unit::Seconds,
        "Sync runs from start to finish, by outcome"
    );
    describe_counter!(
        GOOGLE_REQUESTS,
        "HTTP requests sent to Google by API method and status (`error`: no answer); each retry counts"
    );
    describe_histogram!(
        GOOGLE_REQUEST_DURATION,
        metrics::Unit::Seconds,
        "HTTP requests sent to Google, by API method"
    );
    describe_counter!(
        PUSH_NOTIFICATIONS,
        "Google push notifications received, by outcome"
    );
}

/// The scrape: the series as Prometheus text, after the state gauges were set ([`Scrape`]).
pub fn render() -> String {
    let handle = install();
    handle.run_upkeep();
    handle.render()
}

// ---------------------------------------------------------------------------------------------------
// GraphQL
// ---------------------------------------------------------------------------------------------------

/// The label of an operation that has no name.
pub const ANONYMOUS: &str = "anonymous";
/// The label of a name that is not an identifier, or arrived after [`MAX_OPERATION_NAMES`] others.
pub const OTHER: &str = "other";
/// Distinct operation names recorded; clients choose names, so the label's cardinality is capped.
pub const MAX_OPERATION_NAMES: usize = 200;

/// Bounds the operation names a process labels series with: the first [`MAX_OPERATION_NAMES`] valid
/// names seen keep their own label, later ones and invalid ones become [`OTHER`].
#[derive(Debug, Default)]
pub struct OperationNames {
    seen: Mutex<HashSet<String>>,
    cap: usize,
}

impl OperationNames {
    pub fn new(cap: usize) -> Self {
        Self {
            seen: Mutex::default(),
            cap,
        }
    }

    /// The label for the operation name a client sent.
    pub fn label(&self, name: Option<&str>) -> String {
        let Some(name) = name.filter(|name| !name.is_empty()) else {
            return ANONYMOUS.to_owned();
        };
        if !is_operation_name(name) {
            return OTHER.to_owned();
        }
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.contains(name) {
            return name.to_owned();
        }
        if seen.len() < self.cap {
            seen.insert(name.to_owned());
            return name.to_owned();
        }
        OTHER.to_owned()
    }
}

/// `[A-Za-z_][A-Za-z0-9_]{0,63}`: a GraphQL name, at most 64 characters.
pub fn is_operation_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    matches!(bytes.first(), Some(b) if b.is_ascii_alphabetic() || *b == b'_')
        && bytes.len() <= 64
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
}

fn operation_names() -> &'static OperationNames {
    static NAMES: OnceLock<OperationNames> = OnceLock::new();
    NAMES.get_or_init(|| OperationNames::new(MAX_OPERATION_NAMES))
}

/// The label of a client's operation name, for this process.
pub fn operation_label(name: Option<&str>) -> String {
    operation_names().label(name)
}

/// A query or mutation answered after `elapsed`; `code` is its first error's code, or `OK`.
pub fn graphql_operation(operation: String, code: String, elapsed: Duration) {
    histogram!(GRAPHQL_OPERATION_DURATION, "operation" => operation, "code" => code)
        .record(elapsed.as_secs_f64());
}

/// A subscription started.
pub fn graphql_subscription_started(operation: String) {
    counter!(GRAPHQL_SUBSCRIPTIONS_STARTED, "operation" => operation).increment(1);
}

/// Counts one in `gauge` while alive.
#[must_use = "the gauge goes down when the guard is dropped"]
pub struct GaugeGuard(metrics::Gauge);

impl GaugeGuard {
    fn new(gauge: metrics::Gauge) -> Self {
        gauge.increment(1.0);
        Self(gauge)
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// One query or mutation in flight, until dropped.
pub fn operation_in_flight() -> GaugeGuard {
    GaugeGuard::new(gauge!(GRAPHQL_OPERATIONS_IN_FLIGHT))
}

/// One websocket open, until dropped.
pub fn websocket_open() -> GaugeGuard {
    GaugeGuard::new(gauge!(WEBSOCKET_CONNECTIONS))
}

// ---------------------------------------------------------------------------------------------------
// Database, jobs, sync, Google, push
// ---------------------------------------------------------------------------------------------------

/// A request for a connection that timed out.
pub fn db_acquire_timed_out() {
    counter!(DB_POOL_ACQUIRE_TIMEOUTS).increment(1);
}

/// A statement answered after `elapsed`.
pub fn db_statement(elapsed: Duration) {
    histogram!(DB_STATEMENT_DURATION).record(elapsed.as_secs_f64());
}

/// A sync run finished with `outcome` (`succeeded`, `partial`, `failed`) after `elapsed`.
pub fn sync_run_finished(outcome: &'static str, elapsed: Option<Duration>) {
    counter!(SYNC_RUNS, "outcome" => outcome).increment(1);
    if let Some(elapsed) = elapsed {
        histogram!(SYNC_RUN_DURATION, "outcome" => outcome).record(elapsed.as_secs_f64());
    }
}

/// One HTTP request to Google's `method` (`events.list`, `batch`, `oauth.token`…) answered with `status`
/// (`None`: no answer) after `elapsed`.
pub fn google_request(method: &'static str, status: Option<u16>, elapsed: Duration) {
    let status = status.map_or_else(|| "error".to_owned(), |s| s.to_string());
    counter!(GOOGLE_REQUESTS, "method" => method, "status" => status).increment(1);
    histogram!(GOOGLE_REQUEST_DURATION, "method" => method).record(elapsed.as_secs_f64());
}

/// A push notification received, and what came of it.
pub fn push_notification(outcome: &'static str) {
    counter!(PUSH_NOTIFICATIONS, "outcome" => outcome).increment(1);
}

// ---------------------------------------------------------------------------------------------------
// Scrape-time gauges
// ---------------------------------------------------------------------------------------------------

/// The database pool at scrape time.
#[derive(Debug, Clone, Copy)]
pub struct PoolState {
    pub size: u32,
    pub idle: usize,
    pub max: u32,
}

/// One job kind's share of the queue at scrape time.
#[derive(Debug, Clone)]
pub struct JobKindState {
    pub kind: String,
    pub queued: u64,
    pub due: u64,
    pub running: u64,
    /// How long the oldest due job has waited past its `run_at`.
    pub due_lag: Duration,
}

/// What a scrape sets before it renders.
#[derive(Debug, Default)]
pub struct Scrape {
    pub pool: Option<PoolState>,
    /// `None` when the queue could not be read: the job gauges keep their last values.
    pub jobs: Option<Vec<JobKindState>>,
    /// Live subscribers per bus.
    pub live: Vec<(&'static str, usize)>,
}

impl Scrape {
    /// Sets the gauges, then renders. One scrape at a time: when servers share a process (tests), each
    /// renders the state it set.
    pub fn render(self) -> String {
        static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
        let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
        install();
        if let Some(pool) = self.pool {
            gauge!(DB_POOL_CONNECTIONS).set(f64::from(pool.size));
            gauge!(DB_POOL_IDLE_CONNECTIONS).set(pool.idle as f64);
            gauge!(DB_POOL_MAX_CONNECTIONS).set(f64::from(pool.max));
        }
        if let Some(jobs) = self.jobs {
            set_job_gauges(jobs);
        }
        for (bus, subscribers) in self.live {
            gauge!(LIVE_SUBSCRIPTIONS, "bus" => bus).set(subscribers as f64);
        }
        render()
    }
}

/// Kinds that have had a series: one that left the queue is set back to zero rather than left stale.
fn set_job_gauges(jobs: Vec<JobKindState>) {
    static KNOWN: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let mut known = KNOWN.lock().unwrap_or_else(PoisonError::into_inner);
    let present: BTreeSet<String> = jobs.iter().map(|job| job.kind.clone()).collect();
    for gone in known.difference(&present) {
        for name in [JOBS_QUEUED, JOBS_DUE, JOBS_RUNNING, JOBS_DUE_LAG] {
            gauge!(name, "kind" => gone.clone()).set(0.0);
        }
    }
    for job in jobs {
        gauge!(JOBS_QUEUED, "kind" => job.kind.clone()).set(job.queued as f64);
        gauge!(JOBS_DUE, "kind" => job.kind.clone()).set(job.due as f64);
        gauge!(JOBS_RUNNING, "kind" => job.kind.clone()).set(job.running as f64);
        gauge!(JOBS_DUE_LAG, "kind" => job.kind.clone()).set(job.due_lag.as_secs_f64());
        known.insert(job.kind);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_names_must_be_short_identifiers() {
        for valid in ["a", "_", "Me", "todo_lists2", "_x9", &"a".repeat(64)] {
            assert!(is_operation_name(valid), "{valid}");
        }
        for invalid in [
            "",
            "9lives",
            "with space",
            "dash-ed",
            "dot.ted",
            "émoji",
            "a\nb",
            &"a".repeat(65),
        ] {
            assert!(!is_operation_name(invalid), "{invalid:?}");
        }
    }

    #[test]
    fn labels_keep_the_first_names_and_fold_the_rest_into_other() {
        let names = OperationNames::new(2);
        assert_eq!(names.label(None), ANONYMOUS);
        assert_eq!(names.label(Some("")), ANONYMOUS);
        assert_eq!(names.label(Some("not a name")), OTHER);
        assert_eq!(names.label(Some(&"x".repeat(65))), OTHER);
        assert_eq!(names.label(Some("First")), "First");
        assert_eq!(names.label(Some("Second")), "Second");
        // The cap is reached: a third name is folded, the first two keep their labels.
        assert_eq!(names.label(Some("Third")), OTHER);
        assert_eq!(names.label(Some("First")), "First");
        assert_eq!(names.label(Some("Second")), "Second");
        // Invalid names never take a place.
        let names = OperationNames::new(1);
        assert_eq!(names.label(Some("bad-name")), OTHER);
        assert_eq!(names.label(Some("Good")), "Good");
    }

    #[test]
    fn the_default_cap_is_two_hundred_names() {
        let names = OperationNames::new(MAX_OPERATION_NAMES);
        for i in 0..MAX_OPERATION_NAMES {
            let name = format!("Op{i}");
            assert_eq!(names.label(Some(&name)), name);
        }
        assert_eq!(names.label(Some("OneTooMany")), OTHER);
        assert_eq!(names.label(Some("Op0")), "Op0");
    }
}
