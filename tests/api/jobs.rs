//! The job queue against a real database (SQLite, or PostgreSQL with `TEST_DATABASE_URL`): coalescing,
//! retries, lease takeover and heartbeats, several instances sharing the work, concurrency keys, periodic
//! slots, cleanup, and the workers the server starts.
//!
//! Most tests build "instances" (an `AppState` each, with its own lease owner) on one database and run
//! worker pools with test handlers and short timings.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use chrono::{DateTime, TimeDelta, Utc};
use chronos::{
    config::Settings,
    entities::{enums::JobStatus, jobs},
    jobs::{self as queue, Enqueued, JobFailure, JobHandlers, NewJob, WorkerConfig, WorkerPool},
    state::AppState,
};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter};
use serde_json::json;
use tokio::time::Instant;
use uuid::Uuid;

use crate::helpers::{TestApp, TestDatabase};

/// `count` instances of Chronos on `db` (migrated by the first): a state each, with its own lease owner,
/// and nothing else: no listener, no schema, no job handler but the test's own.
async fn instances(db: &TestDatabase, count: usize) -> Vec<AppState> {
    let settings = Settings::for_local(&db.url, db.dir()).expect("test settings");
    let mut states = Vec::new();
    for index in 0..count {
        let connection = chronos::app::connect(&settings, index == 0)
            .await
            .expect("connect");
        states.push(AppState::new(connection, settings.clone()).expect("state"));
    }
    states
}

/// Short timings, so retries and lease expiries take milliseconds.
fn fast() -> WorkerConfig {
    WorkerConfig {
        workers: 4,
        poll_interval: Duration::from_millis(20),
        lease: Duration::from_secs(2),
        backoff_base: Duration::from_millis(50),
        backoff_max: Duration::from_millis(200),
    }
}

fn kinds(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| name.to_string()).collect()
}

async fn load(state: &AppState, id: Uuid) -> jobs::Model {
    jobs::Entity::find_by_id(id)
        .one(&state.db)
        .await
        .expect("read job")
        .expect("job exists")
}

async fn wait_for_status(state: &AppState, id: Uuid, status: JobStatus, timeout: Duration) -> jobs::Model {
    let deadline = Instant::now() + timeout;
    loop {
        let job = load(state, id).await;
        if job.status == status {
            return job;
        }
        assert!(
            Instant::now() < deadline,
            "job {id} still {:?} (attempts {}, last error {:?}), expected {status:?}",
            job.status,
            job.attempts,
            job.last_error
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn count_jobs(state: &AppState, kind: &str) -> u64 {
    jobs::Entity::find()
        .filter(jobs::Column::Kind.eq(kind))
        .count(&state.db)
        .await
        .expect("count jobs")
}

/// Records how many jobs of a group run at once, and the most ever seen.
#[derive(Default)]
struct Overlap {
    running: AtomicUsize,
    most: AtomicUsize,
}

impl Overlap {
    async fn during(&self, work: Duration) {
        let now_running = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now_running, Ordering::SeqCst);
        tokio::time::sleep(work).await;
        self.running.fetch_sub(1, Ordering::SeqCst);
    }

    fn most(&self) -> usize {
        self.most.load(Ordering::SeqCst)
    }
}

#[tokio::test]
async fn enqueues_with_one_dedupe_key_coalesce_until_the_job_is_claimed() {
    let db = TestDatabase::create().await;
    let states = instances(&db, 1).await;
    let state = &states[0];
    let refresh = || NewJob::new("test.refresh", json!({ "calendar": 1 })).dedupe_key("calendar:1");

    // A burst of 20 at once: one job.
    let burst = futures::future::join_all((0..20).map(|_| queue::enqueue(&state.db, refresh()))).await;
    let burst: Vec<Enqueued> = burst.into_iter().map(|r| r.expect("enqueue")).collect();
    let created = burst.iter().filter(|r| matches!(r, Enqueued::Created(_))).count();
    assert_eq!(created, 1, "{burst:?}");
    let first = burst[0].id();
    assert!(burst.iter().all(|r| r.id() == first), "{burst:?}");
    assert_eq!(count_jobs(state, "test.refresh").await, 1);

    // Claimed: the key is released, so changes during the run queue exactly one follow-up.
    let claimed = queue::claim(
        &state.db,
        "worker-a",
        &kinds(&["test.refresh"]),
        Duration::from_secs(30),
    )
    .await
    .expect("claim")
    .expect("a due job");
    assert_eq!(claimed.id, first);
    assert_eq!(claimed.dedupe_key, None);
    let mut follow_ups = Vec::new();
    for _ in 0..5 {
        follow_ups.push(queue::enqueue(&state.db, refresh()).await.expect("enqueue"));
    }
    let follow_up = follow_ups[0];
    assert!(
        matches!(follow_up, Enqueued::Created(id) if id != first),
        "{follow_ups:?}"
    );
    assert!(
        follow_ups[1..]
            .iter()
            .all(|r| *r == Enqueued::Coalesced(follow_up.id())),
        "{follow_ups:?}"
    );
    assert_eq!(count_jobs(state, "test.refresh").await, 2);
    assert_eq!(load(state, first).await.status, JobStatus::Running);
}

#[tokio::test]
async fn coalescing_keeps_the_earliest_run_at_and_future_jobs_wait() {
    let db = TestDatabase::create().await;
    let states = instances(&db, 1).await;
    let state = &states[0];
    let sync = |at: DateTime<Utc>| {
        NewJob::new("test.sync", json!({}))
            .dedupe_key("sync:1")
            .run_at(at)
    };
    let kinds = kinds(&["test.sync"]);
    let lease = Duration::from_secs(30);

    let later = queue::enqueue(&state.db, sync(Utc::now() + TimeDelta::hours(1)))
        .await
        .expect("enqueue");
    assert!(matches!(later, Enqueued::Created(_)));
    assert!(
        queue::claim(&state.db, "w", &kinds, lease)
            .await
            .expect("claim")
            .is_none(),
        "a job is not claimed before its run_at"
    );

    let now = queue::enqueue(&state.db, sync(Utc::now()))
        .await
        .expect("enqueue");
    assert_eq!(now, Enqueued::Coalesced(later.id()));
    let even_later = queue::enqueue(&state.db, sync(Utc::now() + TimeDelta::hours(2)))
        .await
        .expect("enqueue");
    assert_eq!(even_later, Enqueued::Coalesced(later.id()));
    assert!(load(state, later.id()).await.run_at <= Utc::now());

    let claimed = queue::claim(&state.db, "w", &kinds, lease)
        .await
        .expect("claim")
        .expect("due now");
    assert_eq!(claimed.id, later.id());
}

#[tokio::test]
async fn failing_jobs_retry_with_backoff_until_max_attempts_then_fail() {
    let db = TestDatabase::create().await;
    let states = instances(&db, 1).await;
    let state = &states[0];
    let runs: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let panicked = Arc::new(AtomicBool::new(false));
    let mut handlers = JobHandlers::default();
    let recorded = runs.clone();
    handlers.register_fn("test.flaky", move |_, job| {
        let recorded = recorded.clone();
        async move {
            recorded.lock().unwrap().push(Instant::now());
            Err(JobFailure::retry(format!("boom {}", job.attempts)))
        }
    });
    handlers.register_fn("test.broken", |_, _| async {
        Err(JobFailure::permanent("the calendar is gone"))
    });
    let once = panicked.clone();
    handlers.register_fn("test.panics_once", move |_, _| {
        let once = once.clone();
        async move {
            if !once.swap(true, Ordering::SeqCst) {
                panic!("handler bug");
            }
            Ok(())
        }
    });
    let config = fast();
    let pool = WorkerPool::start(state, Arc::new(handlers), config.clone());

    let enqueue = |kind: &'static str| async move {
        state
            .jobs
            .enqueue(&state.db, NewJob::new(kind, json!({})).max_attempts(4))
            .await
            .expect("enqueue")
            .id()
    };
    let flaky = enqueue("test.flaky").await;
    let broken = enqueue("test.broken").await;
    let panics_once = enqueue("test.panics_once").await;

    let flaky = wait_for_status(state, flaky, JobStatus::Failed, Duration::from_secs(10)).await;
    assert_eq!(flaky.attempts, 4);
    assert_eq!(flaky.last_error.as_deref(), Some("boom 4"));
    assert_eq!(flaky.lease_expires_at, None);
    let runs = runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 4, "one run per attempt");
    for (i, pair) in runs.windows(2).enumerate() {
        // Attempt i+1 failed: its backoff is base * 2^i, capped, and at least half of that.
        let ceiling = (config.backoff_base * 2u32.pow(i as u32)).min(config.backoff_max);
        let gap = pair[1] - pair[0];
        assert!(
            gap >= ceiling / 2,
            "retry {i} came after {gap:?}, before {:?}",
            ceiling / 2
        );
    }

    let broken = wait_for_status(state, broken, JobStatus::Failed, Duration::from_secs(5)).await;
    assert_eq!(broken.attempts, 1, "a permanent failure is not retried");
    assert_eq!(broken.last_error.as_deref(), Some("the calendar is gone"));

    let panics_once = wait_for_status(state, panics_once, JobStatus::Done, Duration::from_secs(5)).await;
    assert_eq!(
        panics_once.attempts, 2,
        "a panic is a failed attempt, and the worker survives it"
    );
    assert_eq!(panics_once.last_error, None);
    pool.stop().await;
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_and_the_old_claim_loses_the_job() {
    let db = TestDatabase::create().await;
    let states = instances(&db, 1).await;
    let state = &states[0];
    let kinds = kinds(&["test.lease"]);
    let id = queue::enqueue(&state.db, NewJob::new("test.lease", json!({})))
        .await
        .expect("enqueue")
        .id();

    let first = queue::claim(&state.db, "instance-a", &kinds, Duration::from_millis(800))
        .await
        .expect("claim")
        .expect("due");
    assert_eq!((first.id, first.attempts), (id, 1));
    assert_eq!(first.lease_owner.as_deref(), Some("instance-a"));
    assert!(
        queue::claim(&state.db, "instance-b", &kinds, Duration::from_secs(30))
            .await
            .expect("claim")
            .is_none(),
        "a live lease is respected"
    );

    // Instance A "crashed": it never completes nor heartbeats.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let second = queue::claim(&state.db, "instance-b", &kinds, Duration::from_secs(30))
        .await
        .expect("claim")
        .expect("the expired lease is taken over");
    assert_eq!(
        (second.id, second.attempts),
        (id, 2),
        "the takeover counts as an attempt"
    );
    assert_eq!(second.lease_owner.as_deref(), Some("instance-b"));

    let lease = Duration::from_secs(30);
    assert!(
        !queue::extend_lease(&state.db, &first, lease)
            .await
            .expect("extend")
    );
    assert!(!queue::complete(&state.db, &first).await.expect("complete"));
    assert!(!queue::give_up(&state.db, &first, "late").await.expect("give up"));
    assert_eq!(load(state, id).await.status, JobStatus::Running);
    assert!(
        queue::extend_lease(&state.db, &second, lease)
            .await
            .expect("extend")
    );
    assert!(queue::complete(&state.db, &second).await.expect("complete"));
    assert_eq!(load(state, id).await.status, JobStatus::Done);
}

#[tokio::test]
async fn a_job_whose_last_attempt_was_abandoned_fails_without_running() {
    let db = TestDatabase::create().await;
    let states = instances(&db, 1).await;
    let state = &states[0];
    let runs = Arc::new(AtomicUsize::new(0));
    let id = queue::enqueue(&state.db, NewJob::new("test.once", json!({})).max_attempts(1))
        .await
        .expect("enqueue")
        .id();
    queue::claim(
        &state.db,
        "crashed",
        &kinds(&["test.once"]),
        Duration::from_millis(100),
    )
    .await
    .expect("claim")
    .expect("due");
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut handlers = JobHandlers::default();
    let counter = runs.clone();
    handlers.register_fn("test.once", move |_, _| {
        counter.fetch_add(1, Ordering::SeqCst);
        async { Ok(()) }
    });
    let pool = WorkerPool::start(state, Arc::new(handlers), fast());
    let job = wait_for_status(state, id, JobStatus::Failed, Duration::from_secs(5)).await;
    pool.stop().await;
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    assert_eq!(job.attempts, 2);
    assert!(job.last_error.unwrap_or_default().contains("lease expired"));
}

#[tokio::test]
async fn a_long_job_keeps_its_lease_by_heartbeat() {
    let db = TestDatabase::create().await;
    let states = instances(&db, 1).await;
    let state = &states[0];
    let mut handlers = JobHandlers::default();
    handlers.register_fn("test.long", |_, _| async {
        tokio::time::sleep(Duration::from_millis(3300)).await;
        Ok(())
    });
    // Renewed every 200 ms: a fifth of the lease.
    let config = WorkerConfig {
        lease: Duration::from_millis(1000),
        ..fast()
    };
    let pool = WorkerPool::start(state, Arc::new(handlers), config);
    let id = state
        .jobs
        .enqueue(&state.db, NewJob::new("test.long", json!({})))
        .await
        .expect("enqueue")
        .id();
    wait_for_status(state, id, JobStatus::Running, Duration::from_secs(5)).await;

    // Three lease lengths: without heartbeats the lease would have expired twice over.
    let kinds = kinds(&["test.long"]);
    let until = Instant::now() + Duration::from_millis(3000);
    while Instant::now() < until {
        let stolen = queue::claim(&state.db, "intruder", &kinds, Duration::from_secs(30))
            .await
            .expect("claim");
        assert!(stolen.is_none(), "the lease of a running job lapsed: {stolen:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let job = wait_for_status(state, id, JobStatus::Done, Duration::from_secs(5)).await;
    assert_eq!(job.attempts, 1);
    assert_eq!(job.lease_owner.as_deref(), Some(state.jobs.owner()));
    pool.stop().await;
}

#[tokio::test]
async fn two_instances_run_each_job_exactly_once() {
    let db = TestDatabase::create().await;
    let states = instances(&db, 2).await;
    assert_ne!(states[0].jobs.owner(), states[1].jobs.owner());
    let runs: Arc<Mutex<HashMap<i64, usize>>> = Arc::default();
    let mut handlers = JobHandlers::default();
    let recorded = runs.clone();
    handlers.register_fn("test.count", move |_, job| {
        let recorded = recorded.clone();
        async move {
            let n = job.payload["n"].as_i64().expect("n");
            *recorded.lock().unwrap().entry(n).or_default() += 1;
            tokio::time::sleep(Duration::from_millis(5)).await;
            Ok(())
        }
    });
    let handlers = Arc::new(handlers);
    let pools: Vec<WorkerPool> = states
        .iter()
        .map(|state| WorkerPool::start(state, handlers.clone(), fast()))
        .collect();

    for n in 0..40 {
        let state = &states[n % 2];
        state
            .jobs
            .enqueue(&state.db, NewJob::new("test.count", json!({ "n": n })))
            .await
            .expect("enqueue");
    }
    assert!(
        queue::wait_idle(&states[0].db, Duration::from_secs(30))
            .await
            .expect("wait")
    );
    for pool in pools {
        pool.stop().await;
    }

    let runs = runs.lock().unwrap().clone();
    let expected: HashMap<i64, usize> = (0..40).map(|n| (n, 1)).collect();
    assert_eq!(runs, expected);
    let done = jobs::Entity::find()
        .filter(jobs::Column::Status.eq(JobStatus::Done))
        .count(&states[0].db)
        .await
        .expect("count");
    assert_eq!(done, 40);
}

#[tokio::test]
async fn jobs_sharing_a_concurrency_key_never_run_at_once() {
    let db = TestDatabase::create().await;
    let states = instances(&db, 2).await;
    let keyed = Arc::new(Overlap::default());
    let free = Arc::new(Overlap::default());
    let mut handlers = JobHandlers::default();
    let (keyed_runs, free_runs) = (keyed.clone(), free.clone());
    handlers.register_fn("test.sync", move |_, job| {
        let overlap = if job.concurrency_key.is_some() {
            keyed_runs.clone()
        } else {
            free_runs.clone()
        };
        async move {
            overlap.during(Duration::from_millis(40)).await;
            Ok(())
        }
    });
    let handlers = Arc::new(handlers);
    let pools: Vec<WorkerPool> = states
        .iter()
        .map(|state| WorkerPool::start(state, handlers.clone(), fast()))
        .collect();

    for n in 0..8 {
        let state = &states[n % 2];
        let keyed = NewJob::new("test.sync", json!({ "n": n })).concurrency_key("config:1");
        state.jobs.enqueue(&state.db, keyed).await.expect("enqueue");
        let free = NewJob::new("test.sync", json!({ "n": n }));
        state.jobs.enqueue(&state.db, free).await.expect("enqueue");
    }
    assert!(
        queue::wait_idle(&states[0].db, Duration::from_secs(30))
            .await
            .expect("wait")
    );
    for pool in pools {
        pool.stop().await;
    }

    assert_eq!(keyed.most(), 1, "two jobs with one concurrency key ran at once");
    // The control: without a key the same pools do run jobs side by side.
    assert!(free.most() > 1, "jobs without a key never overlapped");
    let done = jobs::Entity::find()
        .filter(jobs::Column::Status.eq(JobStatus::Done))
        .count(&states[0].db)
        .await
        .expect("count");
    assert_eq!(done, 16);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simultaneous_claims_from_two_instances_respect_the_concurrency_key() {
    let db = TestDatabase::create().await;
    let states = instances(&db, 2).await;
    let kinds = kinds(&["test.race"]);
    let lease = Duration::from_secs(30);
    for round in 0..30 {
        let key = format!("config:{round}");
        for _ in 0..3 {
            let job = NewJob::new("test.race", json!({})).concurrency_key(key.clone());
            queue::enqueue(&states[0].db, job).await.expect("enqueue");
        }
        // Four claimers, two per instance, at the same moment.
        let claims = (0..4).map(|i| {
            let (state, kinds) = (states[i % 2].clone(), kinds.clone());
            tokio::spawn(async move { queue::claim(&state.db, &format!("claimer-{i}"), &kinds, lease).await })
        });
        let claimed: Vec<jobs::Model> = futures::future::join_all(claims)
            .await
            .into_iter()
            .filter_map(|joined| joined.expect("claimer task").expect("claim"))
            .collect();
        assert_eq!(claimed.len(), 1, "round {round}: {claimed:?}");
        assert!(
            queue::complete(&states[0].db, &claimed[0])
                .await
                .expect("complete")
        );
        // Once the first is done, the next may run.
        let next = queue::claim(&states[1].db, "instance-b", &kinds, lease)
            .await
            .expect("claim")
            .expect("another job of the key");
        assert_eq!(next.concurrency_key.as_deref(), Some(key.as_str()));
        assert!(queue::complete(&states[1].db, &next).await.expect("complete"));
        let last = queue::claim(&states[0].db, "instance-a", &kinds, lease)
            .await
            .expect("claim")
            .expect("the last job of the key");
        assert!(queue::complete(&states[0].db, &last).await.expect("complete"));
    }
}

#[tokio::test]
async fn an_enqueue_wakes_idle_workers_without_waiting_for_the_poll() {
    let db = TestDatabase::create().await;
    let states = instances(&db, 1).await;
    let state = &states[0];
    let mut handlers = JobHandlers::default();
    handlers.register_fn("test.wake", |_, _| async { Ok(()) });
    let config = WorkerConfig {
        poll_interval: Duration::from_secs(60),
        ..fast()
    };
    let pool = WorkerPool::start(state, Arc::new(handlers), config);
    // Let every worker find nothing and go to sleep for (at least) 45 s.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let id = state
        .jobs
        .enqueue(&state.db, NewJob::new("test.wake", json!({})))
        .await
        .expect("enqueue")
        .id();
    wait_for_status(state, id, JobStatus::Done, Duration::from_secs(3)).await;
    pool.stop().await;
}

#[tokio::test]
async fn a_periodic_job_runs_once_per_slot_across_instances() {
    let db = TestDatabase::create().await;
    let states = instances(&db, 2).await;
    let every = Duration::from_millis(250);
    let slots: Arc<Mutex<Vec<DateTime<Utc>>>> = Arc::default();
    let mut handlers = JobHandlers::default();
    let recorded = slots.clone();
    handlers
        .register_fn("test.tick", move |_, job| {
            let recorded = recorded.clone();
            async move {
                assert_eq!(job.payload, json!({ "tick": true }));
                recorded.lock().unwrap().push(job.run_at);
                Ok(())
            }
        })
        .schedule_every("test.tick", every, || json!({ "tick": true }));
    let handlers = Arc::new(handlers);
    let pools: Vec<WorkerPool> = states
        .iter()
        .map(|state| WorkerPool::start(state, handlers.clone(), fast()))
        .collect();
    // Three slots ran (each on one instance only, checked below); a stuck scheduler fails the deadline.
    let deadline = Instant::now() + Duration::from_secs(10);
    while slots.lock().unwrap().len() < 3 {
        assert!(Instant::now() < deadline, "fewer than 3 slots ran in 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for pool in pools {
        pool.stop().await;
    }

    let slots = slots.lock().unwrap().clone();
    let distinct: HashSet<_> = slots.iter().collect();
    assert_eq!(distinct.len(), slots.len(), "a slot ran twice: {slots:?}");
    for slot in &slots {
        assert_eq!(
            slot.timestamp_millis() % 250,
            0,
            "{slot} is not on a slot boundary"
        );
    }
}

#[tokio::test]
async fn cleanup_deletes_old_finished_jobs_only() {
    let db = TestDatabase::create().await;
    let states = instances(&db, 1).await;
    let state = &states[0];
    let now = Utc::now();
    let mut kept = Vec::new();
    for (status, age_hours, keep) in [
        (JobStatus::Done, 25, false),
        (JobStatus::Done, 23, true),
        (JobStatus::Failed, 8 * 24, false),
        (JobStatus::Failed, 6 * 24, true),
        (JobStatus::Queued, 30 * 24, true),
    ] {
        let id = queue::enqueue(&state.db, NewJob::new("test.old", json!({})))
            .await
            .expect("enqueue")
            .id();
        let mut job = load(state, id).await.into_active_model();
        job.status = sea_orm::ActiveValue::Set(status);
        job.updated_at = sea_orm::ActiveValue::Set(now - TimeDelta::hours(age_hours));
        job.update(&state.db).await.expect("age the job");
        if keep {
            kept.push(id);
        }
    }
    assert_eq!(queue::cleanup(&state.db, now).await.expect("cleanup"), 2);
    let mut left: Vec<Uuid> = jobs::Entity::find()
        .all(&state.db)
        .await
        .expect("jobs")
        .into_iter()
        .map(|job| job.id)
        .collect();
    left.sort();
    kept.sort();
    assert_eq!(left, kept);
}

#[tokio::test]
async fn shutdown_lets_the_job_in_flight_finish() {
    let db = TestDatabase::create().await;
    let states = instances(&db, 1).await;
    let state = &states[0];
    let started = Arc::new(tokio::sync::Notify::new());
    let finished = Arc::new(AtomicBool::new(false));
    let mut handlers = JobHandlers::default();
    let (start_signal, finish_flag) = (started.clone(), finished.clone());
    handlers.register_fn("test.slow", move |_, _| {
        let (start_signal, finish_flag) = (start_signal.clone(), finish_flag.clone());
        async move {
            start_signal.notify_one();
            tokio::time::sleep(Duration::from_millis(300)).await;
            finish_flag.store(true, Ordering::SeqCst);
            Ok(())
        }
    });
    WorkerPool::start(state, Arc::new(handlers), fast());
    let id = state
        .jobs
        .enqueue(&state.db, NewJob::new("test.slow", json!({})))
        .await
        .expect("enqueue")
        .id();
    tokio::time::timeout(Duration::from_secs(5), started.notified())
        .await
        .expect("the job started");

    state.shutdown.cancel();
    state.tasks.close();
    tokio::time::timeout(Duration::from_secs(5), state.tasks.wait())
        .await
        .expect("workers stopped");
    assert!(finished.load(Ordering::SeqCst));
    assert_eq!(load(state, id).await.status, JobStatus::Done);
}

/// The server starts the registered workers (and their periodic schedules) only with SCHEDULER_ENABLED.
#[tokio::test]
async fn the_server_runs_jobs_only_where_the_scheduler_is_enabled() {
    for enabled in [true, false] {
        let app = TestApp::spawn_with(|settings| settings.scheduler_enabled = enabled).await;
        let db = chronos::db::connect(&app.server.db.url).await.expect("connect");
        let id = queue::enqueue(&db, NewJob::new(queue::CLEANUP_KIND, json!({})))
            .await
            .expect("enqueue")
            .id();
        let status = if enabled {
            assert!(
                queue::wait_idle(&db, Duration::from_secs(10))
                    .await
                    .expect("wait")
            );
            JobStatus::Done
        } else {
            tokio::time::sleep(Duration::from_millis(600)).await;
            JobStatus::Queued
        };
        let job = jobs::Entity::find_by_id(id)
            .one(&db)
            .await
            .expect("read")
            .expect("job");
        assert_eq!(job.status, status, "scheduler enabled: {enabled}");
        // The hourly cleanup's next slot is scheduled ahead, by instances that run workers only.
        let scheduled = jobs::Entity::find()
            .filter(jobs::Column::Kind.eq(queue::CLEANUP_KIND))
            .filter(jobs::Column::RunAt.gt(Utc::now()))
            .count(&db)
            .await
            .expect("count");
        assert_eq!(scheduled, u64::from(enabled), "scheduler enabled: {enabled}");
        db.close().await.ok();
        app.stop().await;
    }
}
