//! The progress bus: what sync runs report while they run, fanned out to `syncProgress` subscribers on
//! every instance (a [`Bus`] on its own channel). The message carries the user id so subscribers only ever
//! see their own configs.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::bus::Bus;

/// The PostgreSQL notification channel.
pub const NOTIFY_CHANNEL: &str = "chronos_sync_progress";

/// At most this many APPLYING messages per second and run.
const APPLYING_PER_SECOND: u32 = 4;

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

/// This instance's side of the progress bus.
pub struct ProgressBus(Bus<Progress>);

impl ProgressBus {
    pub fn new(db: DatabaseConnection, shutdown: CancellationToken) -> Self {
        Self(Bus::new(NOTIFY_CHANNEL, db, shutdown))
    }

    /// Publishes a message to every instance's subscribers. Never fails the run: progress is advisory;
    /// the run row is the record.
    pub async fn publish(&self, progress: Progress) {
        self.0.publish(progress).await;
    }

    /// The progress of `user_id`'s runs (of one config, or of all when `config_id` is `None`), as this
    /// instance sees them from now on: nobody ever receives another user's runs. A subscriber too slow
    /// to keep up skips what it missed (the run row holds the totals); the stream ends with the bus.
    pub fn subscribe(
        &self,
        user_id: Uuid,
        config_id: Option<Uuid>,
    ) -> impl futures::Stream<Item = Arc<Progress>> + Send + 'static + use<> {
        let receiver = self.0.subscribe();
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
        self.0.live_subscribers()
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
