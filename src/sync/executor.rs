//! The executor: applies a [`Plan`] through Google in batches and records, as each batch lands, what it
//! changed: Google's answers into the event cache (so the next plan sees our own writes even if its
//! listing fails), the links, and the run's counters, in one transaction per batch. A crash therefore
//! loses at most the batch in flight, and the next run converges (copies have deterministic ids).
//!
//! - Operations of one phase are grouped by Google account (a batch request carries one account's token)
//!   and sent in chunks of at most [`MAX_BATCH_SIZE`], several chunks at a time (the Google client caps
//!   the requests in flight per account); a later phase starts once the earlier one has answered.
//! - An insert answering 409 (the copy exists: an earlier attempt landed, or it was deleted and keeps its
//!   id) is sent again as a PUT of the same body without If-Match, in one follow-up batch per chunk.
//! - A delete answering 404 or 410 is done. Any other failed part (400, 404, 412, 5xx after the client's
//!   retries) is counted in `failed` and left for the next run, which plans it again after listing.
//! - Parts refused with 401 are sent once more with a refreshed token; a grant that is gone
//!   (`invalid_grant`) stops the run ([`ExecuteError::NeedsReauth`]).

use std::sync::Mutex;

use chrono::Utc;
use futures::{StreamExt, stream};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, QuerySelect,
    sea_query::{Expr, ExprTrait, OnConflict},
};
use uuid::Uuid;

use super::planner::{Effect, LinkChange, Operation, Phase, Plan, PlannedOperation, Side};
use crate::{
    entities::{calendars, event_links, events, sync_runs},
    error::{AppError, AppResult},
    events::{
        recurrence::{self, EventTime, InstanceKey},
        store,
    },
    google::{self, BatchRequest, BatchResponse, CallCounter, EventChange, GoogleError, MAX_BATCH_SIZE},
    state::AppState,
};

/// Chunks of one phase in flight per request the Google client lets an account have in flight: while
/// some chunks record their answers in the database, the others keep Google busy.
const CHUNKS_PER_REQUEST_SLOT: usize = 2;

/// What landed, as the run counts it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub created: i32,
    pub updated: i32,
    pub deleted: i32,
    pub failed: i32,
}

impl Tally {
    /// Changes finished: landed or failed.
    pub fn done(&self) -> i32 {
        self.created
            .saturating_add(self.updated)
            .saturating_add(self.deleted)
            .saturating_add(self.failed)
    }

    pub fn add(&mut self, other: Tally) {
        self.created += other.created;
        self.updated += other.updated;
        self.deleted += other.deleted;
        self.failed += other.failed;
    }

    fn count(&mut self, effect: Effect) {
        match effect {
            Effect::Created => self.created += 1,
            Effect::Updated => self.updated += 1,
            Effect::Deleted => self.deleted += 1,
        }
    }
}

/// Why execution stopped before the end.
#[derive(Debug)]
pub enum ExecuteError {
    /// The Google grant of one side is gone: the account must be connected again.
    NeedsReauth { side: Side, error: AppError },
    /// The database (or another local failure): the landed batches are recorded, the rest is not sent.
    Local(AppError),
}

impl From<AppError> for ExecuteError {
    fn from(error: AppError) -> Self {
        Self::Local(error)
    }
}

impl From<sea_orm::DbErr> for ExecuteError {
    fn from(error: sea_orm::DbErr) -> Self {
        Self::Local(error.into())
    }
}

/// Told after each batch is recorded, with the run's totals so far (for progress messages).
pub trait BatchObserver: Send + Sync {
    fn landed(&self, totals: Tally) -> impl Future<Output = ()> + Send;
}

/// Everything the executor needs to know about one run.
pub struct Execution<'a> {
    pub state: &'a AppState,
    pub user_id: Uuid,
    pub config_id: Uuid,
    pub run_id: Uuid,
    pub source: &'a calendars::Model,
    pub destination: &'a calendars::Model,
    /// Counts every HTTP request to Google; the run's `googleCalls` grows by what it counted per batch.
    pub counter: &'a CallCounter,
}

/// The run's state shared by the chunks in flight.
struct Shared {
    totals: Tally,
    /// `counter` value already added to the run row.
    calls_recorded: u64,
}

impl Execution<'_> {
    fn calendar(&self, side: Side) -> &calendars::Model {
        match side {
            Side::Source => self.source,
            Side::Destination => self.destination,
        }
    }

    /// Records the plan's standalone link changes, then applies its operations. `calls_recorded` is how
    /// much of `counter` the run row already holds. Returns what landed.
    pub async fn run(
        &self,
        plan: &Plan,
        calls_recorded: u64,
        observer: &impl BatchObserver,
    ) -> Result<Tally, ExecuteError> {
        if !plan.link_changes.is_empty() {
            let txn = crate::db::begin_write(&self.state.db).await?;
            let changes: Vec<&LinkChange> = plan.link_changes.iter().collect();
            self.record_links(&txn, &changes).await?;
            txn.commit().await?;
        }
        let concurrency = self
            .state
            .google()?
            .calendar
            .options()
            .max_concurrent_per_account
            .saturating_mul(CHUNKS_PER_REQUEST_SLOT)
            .max(1);
        let shared = Mutex::new(Shared {
            totals: Tally::default(),
            calls_recorded,
        });
        // Chunks record one at a time: on SQLite a second writer would wait in the busy handler's
        // sleeps, on PostgreSQL behind the same run row's lock.
        let recording = tokio::sync::Mutex::new(());
        for phase in [Phase::Series, Phase::Instances] {
            // Built up front: a stream that maps with a closure borrowing `self` is not `Send` here.
            let chunks: Vec<_> = self
                .chunks(plan, phase)
                .into_iter()
                .map(|(side, ops)| self.chunk(side, ops, &shared, &recording, observer))
                .collect();
            let mut results = stream::iter(chunks).buffer_unordered(concurrency);
            let mut stop = None;
            while let Some(result) = results.next().await {
                if let Err(e) = result {
                    // Let the chunks in flight land and be recorded; send nothing more.
                    stop.get_or_insert(e);
                }
            }
            if let Some(e) = stop {
                return Err(e);
            }
        }
        let totals = shared.lock().map(|s| s.totals).unwrap_or_default();
        Ok(totals)
    }

    /// The phase's operations, by account, in chunks of at most [`MAX_BATCH_SIZE`].
    fn chunks<'p>(&self, plan: &'p Plan, phase: Phase) -> Vec<(Side, Vec<&'p PlannedOperation>)> {
        let same_account = self.source.account_id == self.destination.account_id;
        let mut groups: Vec<(Side, Vec<&PlannedOperation>)> = Vec::new();
        for side in [Side::Source, Side::Destination] {
            let ops: Vec<&PlannedOperation> = plan
                .operations
                .iter()
                .filter(|op| op.phase == phase)
                .filter(|op| same_account || op.operation.side() == side)
                .collect();
            if !ops.is_empty() {
                groups.push((side, ops));
            }
            if same_account {
                break;
            }
        }
        groups
            .into_iter()
            .flat_map(|(side, ops)| {
                ops.chunks(MAX_BATCH_SIZE)
                    .map(|chunk| (side, chunk.to_vec()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Sends one chunk (and its 409 follow-ups), then records it.
    async fn chunk(
        &self,
        side: Side,
        ops: Vec<&PlannedOperation>,
        shared: &Mutex<Shared>,
        recording: &tokio::sync::Mutex<()>,
        observer: &impl BatchObserver,
    ) -> Result<(), ExecuteError> {
        let account_id = self.calendar(side).account_id;
        let requests: Vec<BatchRequest> = ops.iter().map(|op| self.request(&op.operation)).collect();
        let mut results = self.send(side, account_id, requests).await?;
        let duplicates: Vec<usize> = ops
            .iter()
            .zip(&results)
            .enumerate()
            .filter(|(_, (op, result))| {
                matches!(op.operation, Operation::Insert { .. })
                    && matches!(result, Err(GoogleError::Duplicate))
            })
            .map(|(i, _)| i)
            .collect();
        if !duplicates.is_empty() {
            let puts = duplicates
                .iter()
                .filter_map(|&i| match &ops[i].operation {
                    Operation::Insert { side, event_id, body } => Some(BatchRequest::change_event(
                        &self.calendar(*side).google_calendar_id,
                        event_id,
                        EventChange::Replace(body),
                        None,
                    )),
                    _ => None,
                })
                .collect();
            let answers = self.send(side, account_id, puts).await?;
            for (i, answer) in duplicates.into_iter().zip(answers) {
                results[i] = answer;
            }
        }
        let _turn = recording.lock().await;
        self.record(&ops, results, shared, observer).await
    }

    fn request(&self, operation: &Operation) -> BatchRequest {
        let calendar_id = &self.calendar(operation.side()).google_calendar_id;
        match operation {
            Operation::Insert { body, .. } => BatchRequest::insert_event(calendar_id, body),
            Operation::Update {
                event_id, body, etag, ..
            } => {
                BatchRequest::change_event(calendar_id, event_id, EventChange::Replace(body), etag.as_deref())
            }
            Operation::Patch {
                event_id,
                patch,
                etag,
                ..
            } => {
                BatchRequest::change_event(calendar_id, event_id, EventChange::Patch(patch), etag.as_deref())
            }
            Operation::Delete { event_id, .. } => BatchRequest::delete_event(calendar_id, event_id),
        }
    }

    /// One batch call with the account's token; parts refused with 401 go again once with a new token.
    async fn send(
        &self,
        side: Side,
        account_id: Uuid,
        requests: Vec<BatchRequest>,
    ) -> Result<Vec<Result<BatchResponse, GoogleError>>, ExecuteError> {
        let google = self.state.google()?.account(account_id).counting(self.counter);
        google.batch(&requests).await.map_err(|error| match error {
            GoogleError::InvalidGrant | GoogleError::NeedsReauth { .. } => ExecuteError::NeedsReauth {
                side,
                error: error.into(),
            },
            other => ExecuteError::Local(other.into()),
        })
    }

    /// Records a chunk's answers, links and counters in one transaction, then tells the observer.
    async fn record(
        &self,
        ops: &[&PlannedOperation],
        results: Vec<Result<BatchResponse, GoogleError>>,
        shared: &Mutex<Shared>,
        observer: &impl BatchObserver,
    ) -> Result<(), ExecuteError> {
        // Whether each operation landed is Google's answer alone; the counts follow from it.
        let landed: Vec<bool> = ops
            .iter()
            .zip(&results)
            .map(|(planned, result)| match (&planned.operation, result) {
                (_, Ok(_)) => true,
                (Operation::Delete { .. }, Err(GoogleError::Gone | GoogleError::NotFound)) => true,
                (operation, Err(error)) => {
                    tracing::info!(
                        config_id = %self.config_id,
                        side = operation.side().as_str(),
                        event_id = operation.event_id(),
                        error = %error,
                        "sync write failed; retried by the next run"
                    );
                    false
                }
            })
            .collect();
        let mut tally = Tally::default();
        for (planned, landed) in ops.iter().zip(&landed) {
            if *landed {
                tally.count(planned.effect);
            } else {
                tally.failed += 1;
            }
        }
        // The lock serialises the chunks' counter updates, so each adds exactly what it saw.
        let (totals, calls) = {
            let mut shared = shared
                .lock()
                .map_err(|_| AppError::internal(anyhow::anyhow!("sync tally lock poisoned")))?;
            let now = self.counter.get();
            let calls = now.saturating_sub(shared.calls_recorded);
            shared.calls_recorded = now;
            shared.totals.add(tally);
            (shared.totals, calls)
        };
        let txn = crate::db::begin_write(&self.state.db).await?;
        // The run row first: chunks recording side by side lock it before anything else, always in
        // the same order (no deadlock on PostgreSQL).
        add_to_run(&txn, self.run_id, tally, calls).await?;
        let mut answers: Vec<(Side, google::Event)> = Vec::new();
        let mut links: Vec<&LinkChange> = Vec::new();
        for ((planned, result), landed) in ops.iter().zip(results).zip(landed) {
            if !landed {
                continue;
            }
            let operation = &planned.operation;
            match (operation, result) {
                (Operation::Delete { side, event_id }, _) => {
                    self.cache_deletion(&txn, *side, event_id, planned.phase).await?;
                }
                (_, Ok(response)) => match response.event() {
                    Ok(event) => answers.push((operation.side(), event)),
                    // It landed; the next listing brings the event into the cache.
                    Err(e) => tracing::warn!(error = %e, "unreadable answer to a sync write"),
                },
                (_, Err(_)) => {}
            }
            if let Some(change) = &planned.link {
                links.push(change);
            }
        }
        self.record_links(&txn, &links).await?;
        for side in [Side::Source, Side::Destination] {
            let events: Vec<&google::Event> = answers
                .iter()
                .filter(|(answered, _)| *answered == side)
                .map(|(_, event)| event)
                .collect();
            if !events.is_empty() {
                store::upsert_batch(
                    &txn,
                    &self.state.cipher,
                    self.user_id,
                    self.calendar(side),
                    &events,
                )
                .await?;
            }
        }
        txn.commit().await?;
        self.state.cache_changes.events_changed(self.user_id).await;
        observer.landed(totals).await;
        Ok(())
    }

    /// A deleted event becomes a tombstone (a master takes its exceptions along); a cancelled instance
    /// becomes a cancelled exception, as the next listing will show it.
    async fn cache_deletion(
        &self,
        txn: &DatabaseTransaction,
        side: Side,
        event_id: &str,
        phase: Phase,
    ) -> AppResult<()> {
        let calendar = self.calendar(side);
        if phase == Phase::Instances
            && let Some((master_id, key)) = recurrence::parse_instance_id(event_id)
        {
            let original_start = match key {
                InstanceKey::Date(date) => EventTime::Date(date),
                InstanceKey::Instant(instant) => EventTime::DateTime {
                    instant,
                    time_zone: None,
                },
            };
            let cancelled = google::Event {
                id: Some(event_id.to_owned()),
                status: Some("cancelled".to_owned()),
                recurring_event_id: Some(master_id.to_owned()),
                original_start_time: Some(store::time_to_google(&original_start)),
                ..google::Event::default()
            };
            store::upsert_from_google(txn, &self.state.cipher, self.user_id, calendar, &cancelled).await?;
            return Ok(());
        }
        let row: Option<Uuid> = events::Entity::find()
            .filter(events::Column::CalendarId.eq(calendar.id))
            .filter(events::Column::GoogleEventId.eq(event_id))
            .select_only()
            .column(events::Column::Id)
            .into_tuple()
            .one(txn)
            .await?;
        if let Some(row_id) = row {
            store::tombstone(txn, self.user_id, calendar.id, row_id, true).await?;
        }
        Ok(())
    }

    async fn record_links<C: ConnectionTrait>(&self, db: &C, changes: &[&LinkChange]) -> AppResult<()> {
        record_links(db, self.config_id, self.source.id, self.destination.id, changes).await
    }
}

/// Writes link changes: the upserts in one statement (they name distinct origins), removals one by one.
pub async fn record_links<C: ConnectionTrait>(
    db: &C,
    config_id: Uuid,
    source_calendar_id: Uuid,
    destination_calendar_id: Uuid,
    changes: &[&LinkChange],
) -> AppResult<()> {
    let now = Utc::now();
    let mut rows = Vec::new();
    for change in changes {
        match change {
            LinkChange::Upsert(link) => {
                let (origin_calendar, mirror_calendar) = match Side::from(link.origin) {
                    Side::Source => (source_calendar_id, destination_calendar_id),
                    Side::Destination => (destination_calendar_id, source_calendar_id),
                };
                let key = (link.origin, link.source_event_id.clone());
                rows.push((
                    key,
                    event_links::ActiveModel {
                        id: Set(Uuid::now_v7()),
                        config_id: Set(config_id),
                        source_calendar_id: Set(origin_calendar),
                        source_event_id: Set(link.source_event_id.clone()),
                        mirror_calendar_id: Set(mirror_calendar),
                        mirror_event_id: Set(link.mirror_event_id.clone()),
                        origin: Set(link.origin),
                        source_hash: Set(link.source_hash.clone()),
                        mirror_hash: Set(link.mirror_hash.clone()),
                        created_at: Set(now),
                        updated_at: Set(now),
                    },
                ));
            }
            LinkChange::Remove {
                origin,
                source_event_id,
                ..
            } => {
                event_links::Entity::delete_many()
                    .filter(event_links::Column::ConfigId.eq(config_id))
                    .filter(event_links::Column::Origin.eq(*origin))
                    .filter(event_links::Column::SourceEventId.eq(source_event_id.as_str()))
                    .exec(db)
                    .await?;
            }
        }
    }
    // One statement may not touch a row twice (PostgreSQL): the last change of an origin wins.
    let mut seen = std::collections::HashSet::new();
    let mut rows: Vec<event_links::ActiveModel> = rows
        .into_iter()
        .rev()
        .filter(|(key, _)| seen.insert(key.clone()))
        .map(|(_, row)| row)
        .collect();
    rows.reverse();
    if rows.is_empty() {
        return Ok(());
    }
    event_links::Entity::insert_many(rows)
        .on_conflict(
            OnConflict::columns([
                event_links::Column::ConfigId,
                event_links::Column::Origin,
                event_links::Column::SourceEventId,
            ])
            .update_columns([
                event_links::Column::SourceCalendarId,
                event_links::Column::MirrorCalendarId,
                event_links::Column::MirrorEventId,
                event_links::Column::Origin,
                event_links::Column::SourceHash,
                event_links::Column::MirrorHash,
                event_links::Column::UpdatedAt,
            ])
            .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Adds a batch's outcome to the run row's counters (so a run taken over after a crash keeps counting).
pub async fn add_to_run<C: ConnectionTrait>(db: &C, run_id: Uuid, tally: Tally, calls: u64) -> AppResult<()> {
    let calls = i32::try_from(calls).unwrap_or(i32::MAX);
    sync_runs::Entity::update_many()
        .col_expr(
            sync_runs::Column::Created,
            Expr::col(sync_runs::Column::Created).add(tally.created),
        )
        .col_expr(
            sync_runs::Column::Updated,
            Expr::col(sync_runs::Column::Updated).add(tally.updated),
        )
        .col_expr(
            sync_runs::Column::Deleted,
            Expr::col(sync_runs::Column::Deleted).add(tally.deleted),
        )
        .col_expr(
            sync_runs::Column::Failed,
            Expr::col(sync_runs::Column::Failed).add(tally.failed),
        )
        .col_expr(
            sync_runs::Column::GoogleCalls,
            Expr::col(sync_runs::Column::GoogleCalls).add(calls),
        )
        .filter(sync_runs::Column::Id.eq(run_id))
        .exec(db)
        .await?;
    Ok(())
}
