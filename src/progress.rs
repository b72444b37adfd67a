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

/// While applying, a run that has sent nothing for this long sends its state again (with a fresh
/// estimate), so a watcher of a long run paced by Google's quotas never waits long for news.
const KEEPALIVE: Duration = Duration::from_secs(2);

/// How often an applying run checks whether a message is due (held back by the throttle, or
/// [`KEEPALIVE`]). Each check is a clock reading; a message goes out only when one is due.
pub const KEEPALIVE_CHECK: Duration = Duration::from_millis(500);

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

/// One progress message. Serialised as the NOTIFY payload (absent options are left out: it stays small,
/// and a message from an instance that predates them still reads).
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
    /// The changes the run applies in all, once its plan is made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<i32>,
    /// See [`expected_finish`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_finish_at: Option<DateTime<Utc>>,
    pub at: DateTime<Utc>,
}

impl Progress {
    /// Changes finished so far, failed ones included. Derived from the counts, not sent: it cannot
    /// disagree with them.
    pub fn done(&self) -> i32 {
        self.created
            .saturating_add(self.updated)
            .saturating_add(self.deleted)
            .saturating_add(self.failed)
    }

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

/// When a run applying changes is expected to finish: the rate since `since` (when `done_then` changes
/// were done) up to `now` (when `done` are), extrapolated to `total`. An estimate, and only one: `None`
/// while nothing is known (no total, nothing done since `since`, no time elapsed or the clock went
/// back) or when the answer is no instant an API date carries. Never before `now`.
pub fn expected_finish(
    since: DateTime<Utc>,
    done_then: i32,
    now: DateTime<Utc>,
    done: i32,
    total: Option<i32>,
) -> Option<DateTime<Utc>> {
    let total = i64::from(total?);
    let (done_then, done) = (i64::from(done_then), i64::from(done));
    let remaining = (total - done).max(0);
    if remaining == 0 {
        return Some(now);
    }
    let progressed = done - done_then;
    let elapsed_ms = i128::from((now - since).num_milliseconds());
    if progressed <= 0 || elapsed_ms <= 0 {
        return None;
    }
    let to_go_ms = i64::try_from(elapsed_ms * i128::from(remaining) / i128::from(progressed)).ok()?;
    let finish = now.checked_add_signed(chrono::TimeDelta::try_milliseconds(to_go_ms)?)?;
    (chrono::Datelike::year(&finish) <= 9999).then_some(finish)
}

/// Keeps APPLYING messages of one run to a few per second; the other phases always go out. A message
/// held back is not lost: [`Throttle::keepalive`] lets the latest state out soon after.
#[derive(Debug)]
pub struct Throttle {
    every: Duration,
    keepalive: Duration,
    last: Option<Instant>,
    /// An APPLYING message was held back since the last one went out.
    held: bool,
}

impl Default for Throttle {
    fn default() -> Self {
        Self {
            every: Duration::from_secs(1) / APPLYING_PER_SECOND,
            keepalive: KEEPALIVE,
            last: None,
            held: false,
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
            .is_some_and(|last| now.saturating_duration_since(last) < self.every)
        {
            self.held = true;
            return false;
        }
        self.last = Some(now);
        self.held = false;
        true
    }

    /// Whether the run, applying since its first APPLYING message, should send its latest state now: a
    /// message was held back and the throttle lets one out again, or nothing went out for the keepalive
    /// interval. Records that it did.
    pub fn keepalive(&mut self, now: Instant) -> bool {
        let Some(last) = self.last else {
            return false;
        };
        let quiet = now.saturating_duration_since(last);
        if (self.held && quiet >= self.every) || quiet >= self.keepalive {
            self.last = Some(now);
            self.held = false;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message with fresh ids at STARTED with nothing done, for tests to adjust.
    fn sample() -> Progress {
        Progress {
            user_id: Uuid::now_v7(),
            run_id: Uuid::now_v7(),
            config_id: Uuid::now_v7(),
            phase: Phase::Started,
            created: 0,
            updated: 0,
            deleted: 0,
            failed: 0,
            total: None,
            expected_finish_at: None,
            at: Utc::now(),
        }
    }

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
            config_id: config,
            phase: Phase::Started,
            ..sample()
        };
        assert!(progress.is_for(owner, None));
        assert!(progress.is_for(owner, Some(config)));
        assert!(!progress.is_for(owner, Some(other_config)));
        assert!(!progress.is_for(stranger, None));
        assert!(!progress.is_for(stranger, Some(config)));
    }

    #[test]
    fn a_held_back_message_goes_out_soon_after_and_a_quiet_run_repeats_itself() {
        let mut throttle = Throttle::default();
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        // Nothing to repeat before the first APPLYING message.
        assert!(!throttle.keepalive(at(10_000)));
        assert!(throttle.allow(Phase::Applying, start));
        assert!(!throttle.keepalive(at(100)), "nothing held back, not quiet yet");
        assert!(!throttle.allow(Phase::Applying, at(100)));
        assert!(
            !throttle.keepalive(at(200)),
            "held back, but the throttle still says no"
        );
        assert!(throttle.keepalive(at(250)), "the held-back state goes out");
        assert!(!throttle.keepalive(at(600)), "sent once only");
        assert!(!throttle.keepalive(at(2_249)));
        assert!(
            throttle.keepalive(at(2_250)),
            "two quiet seconds: the state again"
        );
        assert!(!throttle.keepalive(at(2_300)));
        // A message that goes out on its own resets the quiet time.
        assert!(throttle.allow(Phase::Applying, at(3_000)));
        assert!(!throttle.keepalive(at(4_999)));
        assert!(throttle.keepalive(at(5_000)));
    }

    fn instant(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    #[test]
    fn the_finish_is_extrapolated_from_the_rate_so_far() {
        // 100 done in 10 s since applying began, 900 to go: 90 s more.
        assert_eq!(
            expected_finish(instant(0), 0, instant(10), 100, Some(1_000)),
            Some(instant(100))
        );
        // Only what this attempt did counts towards the rate: 200 were done before it began.
        assert_eq!(
            expected_finish(instant(0), 200, instant(10), 300, Some(1_000)),
            Some(instant(80))
        );
        // Sub-second rates are kept to the millisecond.
        assert_eq!(
            expected_finish(instant(0), 0, instant(1), 3, Some(4)),
            Some(instant(1) + chrono::TimeDelta::milliseconds(333))
        );
    }

    #[test]
    fn no_estimate_without_a_rate_or_a_total() {
        let cases = [
            ("zero done", instant(0), 0, instant(10), 0, Some(100)),
            (
                "nothing done since applying began",
                instant(0),
                40,
                instant(10),
                40,
                Some(100),
            ),
            ("no plan yet", instant(0), 0, instant(10), 50, None),
            ("no time elapsed", instant(10), 0, instant(10), 50, Some(100)),
            ("the clock went back", instant(10), 0, instant(5), 50, Some(100)),
            ("counts went back", instant(0), 60, instant(10), 50, Some(100)),
        ];
        for (case, since, done_then, now, done, total) in cases {
            assert_eq!(
                expected_finish(since, done_then, now, done, total),
                None,
                "{case}"
            );
        }
    }

    #[test]
    fn a_run_with_nothing_left_is_expected_now_and_never_earlier() {
        for (done_then, done, total) in [(0, 100, 100), (0, 0, 0), (0, 120, 100), (100, 100, 100)] {
            assert_eq!(
                expected_finish(instant(0), done_then, instant(10), done, Some(total)),
                Some(instant(10)),
                "{done_then} {done} {total}"
            );
        }
        // Even with the clock gone back, nothing left means now.
        assert_eq!(
            expected_finish(instant(10), 0, instant(5), 100, Some(100)),
            Some(instant(5))
        );
        for done in 1..=100 {
            let finish = expected_finish(instant(0), 0, instant(7), done, Some(100)).unwrap();
            assert!(finish >= instant(7), "{done}: {finish}");
        }
    }

    #[test]
    fn an_estimate_beyond_any_api_date_is_none_not_an_overflow() {
        // One change in a century, two billion to go.
        let century = 100 * 365 * 86_400;
        assert_eq!(
            expected_finish(instant(0), 0, instant(century), 1, Some(i32::MAX)),
            None
        );
        assert_eq!(
            expected_finish(
                DateTime::<Utc>::MIN_UTC,
                0,
                DateTime::<Utc>::MAX_UTC,
                1,
                Some(i32::MAX)
            ),
            None
        );
        // Extreme counts on either side of zero do not overflow.
        assert_eq!(
            expected_finish(instant(0), i32::MIN, instant(1), i32::MAX, Some(i32::MAX)),
            Some(instant(1))
        );
        assert_eq!(
            expected_finish(instant(0), i32::MIN, instant(1), 0, Some(i32::MAX)),
            Some(instant(1) + chrono::TimeDelta::milliseconds(999))
        );
    }

    #[test]
    fn done_is_every_finished_change() {
        let mut progress = Progress {
            phase: Phase::Applying,
            created: 3,
            updated: 2,
            deleted: 1,
            failed: 4,
            total: Some(20),
            ..sample()
        };
        assert_eq!(progress.done(), 10);
        progress.created = i32::MAX;
        assert_eq!(progress.done(), i32::MAX);
    }

    #[test]
    fn messages_round_trip_through_the_notify_payload() {
        let mut progress = Progress {
            phase: Phase::Applying,
            created: 3,
            updated: 2,
            deleted: 1,
            ..sample()
        };
        let payload = serde_json::to_string(&progress).unwrap();
        assert!(payload.contains("\"phase\":\"APPLYING\""));
        assert!(
            !payload.contains("total") && !payload.contains("expected"),
            "{payload}"
        );
        assert_eq!(serde_json::from_str::<Progress>(&payload).unwrap(), progress);
        progress.total = Some(10_000);
        progress.expected_finish_at = Some(progress.at + chrono::TimeDelta::minutes(17));
        let payload = serde_json::to_string(&progress).unwrap();
        assert_eq!(serde_json::from_str::<Progress>(&payload).unwrap(), progress);
        // Far below PostgreSQL's 8,000-byte limit on a NOTIFY payload.
        assert!(payload.len() < 400, "{} bytes: {payload}", payload.len());
    }
}
