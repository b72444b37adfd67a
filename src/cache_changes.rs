//! The bus of cache changes: "this user's cached events (or calendars) changed", announced on every
//! instance after the change committed, so live subscriptions read what is new.
//!
//! A message names the user and what changed, never the change itself: the subscriber reads the changes
//! from the database after its own cursor. So nothing is lost when a message is (a subscriber too slow
//! for the broadcast, a PostgreSQL relay reconnecting: subscribers also look again now and then), nothing
//! is seen twice, and a change reaches only its owner.

use std::{sync::Arc, time::Duration};

use futures::Stream;
use sea_orm::DatabaseConnection;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::bus::Bus;

/// The PostgreSQL notification channel.
pub const NOTIFY_CHANNEL: &str = "chronos_cache_changes";

/// How often a subscriber looks again without being told: the bound on how late a change announced
/// while the relay was not listening arrives.
pub const LOOK_AGAIN: Duration = Duration::from_secs(30);

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CacheChange {
    /// Rows of the user's cached events (the `eventChanges` feed moved).
    Events,
    /// The user's calendars: one appeared, disappeared, changed, or its cache finished or failed.
    Calendars,
}

/// One announcement (the NOTIFY payload).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheChanged {
    pub user_id: Uuid,
    pub change: CacheChange,
}

/// This instance's side of the bus.
pub struct CacheChangeBus(Bus<CacheChanged>);

impl CacheChangeBus {
    pub fn new(db: DatabaseConnection, shutdown: CancellationToken) -> Self {
        Self(Bus::new(NOTIFY_CHANNEL, db, shutdown))
    }

    /// Announces, on every instance, that `user_id`'s cached events changed. Call it after the change
    /// committed. Never fails: an announcement that cannot go out is logged, and subscribers find the
    /// change when they look again.
    pub async fn events_changed(&self, user_id: Uuid) {
        self.0
            .publish(CacheChanged {
                user_id,
                change: CacheChange::Events,
            })
            .await;
    }

    /// Announces, on every instance, that `user_id`'s calendars changed.
    pub async fn calendars_changed(&self, user_id: Uuid) {
        self.0
            .publish(CacheChanged {
                user_id,
                change: CacheChange::Calendars,
            })
            .await;
    }

    /// A signal each time `user_id`'s `change` may have something new to read: at once (the subscriber
    /// reads what is there), on every announcement for the user, after a lag of the broadcast, and every
    /// `look_again` without one. Announcements that arrive while the subscriber reads are folded into one
    /// signal. The stream ends with the bus.
    pub fn wake_ups(
        &self,
        user_id: Uuid,
        change: CacheChange,
        look_again: Duration,
    ) -> impl Stream<Item = ()> + Send + 'static + use<> {
        let receiver = self.0.subscribe();
        futures::stream::unfold((receiver, true), move |(mut receiver, first)| async move {
            if first {
                return Some(((), (receiver, false)));
            }
            loop {
                let next = tokio::time::timeout(look_again, receiver.recv()).await;
                let wake = match next {
                    Err(_elapsed) => true,
                    Ok(Ok(message)) => message.user_id == user_id && message.change == change,
                    Ok(Err(RecvError::Lagged(_))) => true,
                    Ok(Err(RecvError::Closed)) => return None,
                };
                if wake {
                    drain(&mut receiver);
                    return Some(((), (receiver, false)));
                }
            }
        })
    }

    /// The subscribers on this instance that an announcement made now, on any instance, would reach: a
    /// readiness signal for tests that make a change and want it watched.
    pub fn live_subscribers(&self) -> usize {
        self.0.live_subscribers()
    }
}

/// Drops what is already queued: the read that follows sees every change those messages announced.
fn drain(receiver: &mut broadcast::Receiver<Arc<CacheChanged>>) {
    while let Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) = receiver.try_recv() {}
}

#[cfg(test)]
mod tests {
    use futures::StreamExt as _;

    use super::*;

    async fn bus() -> CacheChangeBus {
        let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
        CacheChangeBus::new(db, CancellationToken::new())
    }

    #[tokio::test]
    async fn a_subscriber_wakes_at_once_then_only_for_its_own_user_and_kind() {
        let bus = bus().await;
        let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
        let mut wakes = Box::pin(bus.wake_ups(alice, CacheChange::Events, Duration::from_secs(3600)));
        assert_eq!(wakes.next().await, Some(()), "the first read happens at once");

        bus.events_changed(bob).await;
        bus.calendars_changed(alice).await;
        let nothing = tokio::time::timeout(Duration::from_millis(100), wakes.next()).await;
        assert!(
            nothing.is_err(),
            "another user's or another kind's announcement wakes nobody"
        );

        bus.events_changed(alice).await;
        assert_eq!(
            wakes.next().await,
            Some(()),
            "positive control: the owner's announcement wakes"
        );
    }

    #[tokio::test]
    async fn queued_announcements_fold_into_one_wake_up() {
        let bus = bus().await;
        let alice = Uuid::new_v4();
        let mut wakes = Box::pin(bus.wake_ups(alice, CacheChange::Events, Duration::from_secs(3600)));
        wakes.next().await;
        for _ in 0..5 {
            bus.events_changed(alice).await;
        }
        assert_eq!(wakes.next().await, Some(()));
        let nothing = tokio::time::timeout(Duration::from_millis(100), wakes.next()).await;
        assert!(nothing.is_err(), "five queued announcements are one read");
        bus.events_changed(alice).await;
        assert_eq!(
            wakes.next().await,
            Some(()),
            "positive control: the next one wakes again"
        );
    }

    #[tokio::test]
    async fn a_subscriber_looks_again_without_being_told() {
        let bus = bus().await;
        let mut wakes =
            Box::pin(bus.wake_ups(Uuid::new_v4(), CacheChange::Calendars, Duration::from_millis(50)));
        wakes.next().await;
        let again = tokio::time::timeout(Duration::from_secs(5), wakes.next()).await;
        assert_eq!(again, Ok(Some(())));
    }
}
