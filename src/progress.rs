//! The progress bus: what sync runs report while they run, fanned out to `syncProgress` subscribers.
//!
//! Every instance keeps an in-process broadcast channel. On SQLite a run publishes straight into it. On
//! PostgreSQL it publishes with `NOTIFY` instead, and every instance that has subscribers relays the
//! notifications of its `LISTEN` connection into its broadcast (its own included), so a subscriber on one
//! instance sees the runs executing on any other. The relay starts with the first subscription; the
//! message carries the user id so subscribers only ever see their own configs.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The PostgreSQL notification channel.
pub const NOTIFY_CHANNEL: &str = "chronos_sync_progress";

/// Messages a slow subscriber may fall behind by before it skips some.
const BROADCAST_CAPACITY: usize = 1024;

/// At most this many APPLYING messages per second and run.
const APPLYING_PER_SECOND: u32 = 4;

/// How long the relay waits before listening again after its connection failed.
const RELAY_RETRY: Duration = Duration::from_secs(2);

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Phase {
    Started,
    Listing,
    Applying,
    Finished,
    Failed,
}

/// One progress message. Serialised as the NOTIFY payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    pub user_id: Uuid,
    pub run_id: Uuid,
    pub config_id: Uuid,
    pub phase: Phase,
    pub created: i32,
    pub updated: i32,
    pub deleted: i32,
    pub failed: i32,
    pub at: DateTime<Utc>,
}

impl Progress {
    /// Whether a subscriber of `user_id` (to one config, or to all) may see this message.
    pub fn is_for(&self, user_id: Uuid, config_id: Option<Uuid>) -> bool {
        self.user_id == user_id && config_id.is_none_or(|id| id == self.config_id)
    }
}

/// This instance's side of the bus. Cheap to share (`Arc` inside `App`).
pub struct ProgressBus {
    sender: broadcast::Sender<Arc<Progress>>,
    db: DatabaseConnection,
    shutdown: CancellationToken,
    relay_started: Mutex<bool>,
    /// Whether the PostgreSQL relay is listening (notifications before that are not relayed).
    relay_listening: Arc<tokio::sync::watch::Sender<bool>>,
}

impl ProgressBus {
    pub fn new(db: DatabaseConnection, shutdown: CancellationToken) -> Self {
        let (sender, _) = broadcast::channel(BROADCAST_CAPACITY);
        Self {
            sender,
            db,
            shutdown,
            relay_started: Mutex::new(false),
            relay_listening: Arc::new(tokio::sync::watch::Sender::new(false)),
        }
    }

    fn on_postgres(&self) -> bool {
        self.db.get_database_backend() == DbBackend::Postgres
    }

    /// Publishes a message to every instance's subscribers. Never fails the run: a message that cannot be
    /// sent is logged and dropped (progress is advisory; the run row is the record).
    pub async fn publish(&self, progress: Progress) {
        if self.on_postgres() {
            match serde_json::to_string(&progress) {
                Ok(payload) => {
                    let notify = Statement::from_sql_and_values(
                        DbBackend::Postgres,
                        "SELECT pg_notify($1, $2)",
                        [NOTIFY_CHANNEL.into(), payload.into()],
                    );
                    match self.db.execute_raw(notify).await {
                        Ok(_) => return,
                        Err(e) => tracing::warn!(error = %e, "NOTIFY of sync progress failed; local only"),
                    }
                }
                Err(e) => tracing::warn!(error = %e, "sync progress not serialisable"),
            }
        }
        // No receiver is not an error: nobody is watching.
        let _ = self.sender.send(Arc::new(progress));
    }

    /// The progress of `user_id`'s runs (of one config, or of all when `config_id` is `None`), as this
    /// instance sees them from now on: nobody ever receives another user's runs. A subscriber too slow
    /// to keep up skips what it missed (the run row holds the totals); the stream ends with the bus.
    pub fn subscribe(
        &self,
        user_id: Uuid,
        config_id: Option<Uuid>,
    ) -> impl futures::Stream<Item = Arc<Progress>> + Send + 'static + use<> {
        let receiver = self.sender.subscribe();
        self.start_relay();
        futures::stream::unfold(receiver, move |mut receiver| async move {
            loop {
                match receiver.recv().await {
                    Ok(progress) if progress.is_for(user_id, config_id) => {
                        return Some((progress, receiver));
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
    }

    /// The subscribers on this instance that a message published now, on any instance, would reach: a
    /// readiness signal for whoever starts a run and wants it watched.
    pub fn live_subscribers(&self) -> usize {
        if self.on_postgres() && !*self.relay_listening.borrow() {
            return 0;
        }
        self.sender.receiver_count()
    }

    /// On PostgreSQL, starts relaying notifications into the broadcast (once per instance).
    fn start_relay(&self) {
        if !self.on_postgres() {
            return;
        }
        let mut started = self.relay_started.lock().unwrap_or_else(PoisonError::into_inner);
        if *started {
            return;
        }
        *started = true;
        let pool = self.db.get_postgres_connection_pool().clone();
        let sender = self.sender.clone();
        let shutdown = self.shutdown.clone();
        let listening = self.relay_listening.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    result = relay(&pool, &sender, &listening) => {
                        listening.send_replace(false);
                        if let Err(e) = result {
                            tracing::warn!(error = %e, "sync progress relay lost its connection; listening again");
                        }
                    }
                }
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(RELAY_RETRY) => {}
                }
            }
        });
    }
}

/// Listens on [`NOTIFY_CHANNEL`] and forwards every readable payload until the connection fails.
async fn relay(
    pool: &sea_orm::sqlx::PgPool,
    sender: &broadcast::Sender<Arc<Progress>>,
    listening: &tokio::sync::watch::Sender<bool>,
) -> Result<(), sea_orm::sqlx::Error> {
    let mut listener = sea_orm::sqlx::postgres::PgListener::connect_with(pool).await?;
    listener.listen(NOTIFY_CHANNEL).await?;
    listening.send_replace(true);
    loop {
        let notification = listener.recv().await?;
        match serde_json::from_str::<Progress>(notification.payload()) {
            Ok(progress) => {
                let _ = sender.send(Arc::new(progress));
            }
            Err(e) => tracing::debug!(error = %e, "unreadable sync progress notification ignored"),
        }
    }
}

/// Keeps APPLYING messages of one run to a few per second; the other phases always go out.
#[derive(Debug)]
pub struct Throttle {
    every: Duration,
    last: Option<Instant>,
}

impl Default for Throttle {
    fn default() -> Self {
        Self {
            every: Duration::from_secs(1) / APPLYING_PER_SECOND,
            last: None,
        }
    }
}

impl Throttle {
    /// Whether a message of `phase` may go out now (and, if so, records that it did).
    pub fn allow(&mut self, phase: Phase, now: Instant) -> bool {
        if phase != Phase::Applying {
            return true;
        }
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < self.every)
        {
            return false;
        }
        self.last = Some(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applying_messages_are_throttled_and_other_phases_are_not() {
        let mut throttle = Throttle::default();
        let start = Instant::now();
        assert!(throttle.allow(Phase::Applying, start));
        assert!(!throttle.allow(Phase::Applying, start + Duration::from_millis(100)));
        assert!(throttle.allow(Phase::Finished, start + Duration::from_millis(100)));
        assert!(throttle.allow(Phase::Applying, start + Duration::from_millis(260)));
        let sent = (0..100)
            .filter(|i| throttle.allow(Phase::Applying, start + Duration::from_millis(300 + i * 10)))
            .count();
        assert!(sent <= 5, "{sent} messages in one second");
    }

    #[test]
    fn a_subscriber_sees_only_its_own_runs_of_the_config_it_asked_for() {
        let (owner, stranger, config, other_config) =
            (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let progress = Progress {
            user_id: owner,
            run_id: Uuid::now_v7(),
            config_id: config,
            phase: Phase::Started,
            created: 0,
            updated: 0,
            deleted: 0,
            failed: 0,
            at: Utc::now(),
        };
        assert!(progress.is_for(owner, None));
        assert!(progress.is_for(owner, Some(config)));
        assert!(!progress.is_for(owner, Some(other_config)));
        assert!(!progress.is_for(stranger, None));
        assert!(!progress.is_for(stranger, Some(config)));
    }

    #[test]
    fn messages_round_trip_through_the_notify_payload() {
        let progress = Progress {
            user_id: Uuid::now_v7(),
            run_id: Uuid::now_v7(),
            config_id: Uuid::now_v7(),
            phase: Phase::Applying,
            created: 3,
            updated: 2,
            deleted: 1,
            failed: 0,
            at: Utc::now(),
        };
        let payload = serde_json::to_string(&progress).unwrap();
        assert!(payload.contains("\"phase\":\"APPLYING\""));
        assert_eq!(serde_json::from_str::<Progress>(&payload).unwrap(), progress);
    }
}
