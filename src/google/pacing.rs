//! Spending Google's request quotas so that steady work never trips them.
//!
//! Google counts requests (each batch part as one) in sliding one-minute windows, per user and per project.
//! [`Pacer`] keeps the same books before a request is sent: a sliding log per account, in this process, and
//! the project's log in the database ([`ProjectLog`]), which every instance on that database shares. A
//! request waits until both windows have room for its cost.
//!
//! Interactive requests (a person's `createEvent`) may use the whole per-account budget; background work
//! (sync runs, cache refreshes) only [`BACKGROUND_SHARE`] of it, so a long sync always leaves room for the
//! person using the account. When Google still says "rate limit" (another client of the same user, a
//! quota lowered at Google), the account's budget halves and then grows back by one request per request
//! that succeeds (additive increase, multiplicative decrease).

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use async_trait::async_trait;
use tokio::time::Instant;
use uuid::Uuid;

pub use crate::config::GoogleQuota;

/// The share of the per-account budget background work may use; the rest is kept for interactive requests.
pub const BACKGROUND_SHARE: f64 = 0.97;
/// The lowest the adaptive factor goes after repeated rate-limit answers.
const MIN_FACTOR: f64 = 0.05;

/// Who is waiting: a person (served first, up to the whole budget) or background work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Priority {
    Interactive,
    #[default]
    Background,
}

/// The project's shared log; implemented over the database (`crate::google::project_log`).
#[async_trait]
pub trait ProjectLog: Send + Sync {
    /// Logs `cost` requests now if the last window holds at most `limit - cost`; otherwise says how long
    /// to wait before asking again.
    async fn try_spend(&self, cost: u32, limit: u32, window: Duration) -> Result<(), Duration>;
}

/// A sliding log of what was spent: (when, how much), oldest first.
#[derive(Debug, Default)]
struct SlidingLog {
    entries: VecDeque<(Instant, u32)>,
    spent: u64,
}

impl SlidingLog {
    fn forget_before(&mut self, horizon: Instant) {
        while let Some(&(at, cost)) = self.entries.front() {
            if at > horizon {
                break;
            }
            self.entries.pop_front();
            self.spent -= u64::from(cost);
        }
    }

    /// How much `limit` leaves now, or how long until something leaves the window when nothing is left.
    fn room(&mut self, now: Instant, limit: u64, keep: Duration) -> Result<u64, Duration> {
        if let Some(horizon) = now.checked_sub(keep) {
            self.forget_before(horizon);
        }
        match limit.checked_sub(self.spent).filter(|room| *room > 0) {
            Some(room) => Ok(room),
            None => Err(self.entries.front().map_or(Duration::ZERO, |&(at, _)| {
                (at + keep).saturating_duration_since(now)
            }) + Duration::from_millis(1)),
        }
    }

    /// Spends `cost` at `now` when the window has room under `limit`; else the wait until it will.
    fn try_spend(&mut self, now: Instant, cost: u32, limit: u64, keep: Duration) -> Result<(), Duration> {
        if let Some(horizon) = now.checked_sub(keep) {
            self.forget_before(horizon);
        }
        let cost_wide = u64::from(cost);
        // A request dearer than the whole budget goes alone, once the window is empty.
        if self.spent + cost_wide <= limit || self.spent == 0 {
            self.entries.push_back((now, cost));
            self.spent += cost_wide;
            return Ok(());
        }
        // The earliest moment enough of the oldest entries have left the window.
        let mut freed = 0u64;
        for &(at, cost) in &self.entries {
            freed += u64::from(cost);
            if self.spent - freed + cost_wide <= limit {
                return Err((at + keep).saturating_duration_since(now) + Duration::from_millis(1));
            }
        }
        Err(self.entries.back().map_or(Duration::ZERO, |&(at, _)| {
            (at + keep).saturating_duration_since(now)
        }) + Duration::from_millis(1))
    }
}

/// One account's books.
#[derive(Debug)]
struct AccountBooks {
    log: SlidingLog,
    /// The adaptive share of the budget in use, from [`MIN_FACTOR`] to 1.
    factor: f64,
}

impl Default for AccountBooks {
    fn default() -> Self {
        Self {
            log: SlidingLog::default(),
            factor: 1.0,
        }
    }
}

/// What an account may spend in a window at `priority`, with the adaptive factor applied.
pub fn account_limit(per_user_per_minute: u32, factor: f64, priority: Priority) -> u64 {
    let share = match priority {
        Priority::Interactive => 1.0,
        Priority::Background => BACKGROUND_SHARE,
    };
    // Truncation is the point: never round a budget up.
    ((f64::from(per_user_per_minute) * factor * share).floor() as u64).max(1)
}

/// Paces requests to Google. One per process (inside the Calendar client).
pub struct Pacer {
    budget: GoogleQuota,
    accounts: Mutex<HashMap<Uuid, AccountBooks>>,
    project: Option<Arc<dyn ProjectLog>>,
}

impl std::fmt::Debug for Pacer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pacer")
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

impl Pacer {
    pub fn new(budget: GoogleQuota, project: Option<Arc<dyn ProjectLog>>) -> Self {
        Self {
            budget,
            accounts: Mutex::new(HashMap::new()),
            project,
        }
    }

    pub fn unpaced() -> Self {
        Self::new(GoogleQuota::UNPACED, None)
    }

    pub fn budget(&self) -> GoogleQuota {
        self.budget
    }

    /// Waits until the account's window has room, and says for how many requests (at most `wanted`), so
    /// that a batch can be cut to what goes now instead of waiting for room for all of it. Nothing is
    /// spent: [`Pacer::admit`] does that.
    pub async fn room(&self, account_id: Uuid, wanted: usize, priority: Priority) -> usize {
        // Never more than the project's whole window holds (its log is asked when the call is admitted).
        let wanted = match usize::try_from(self.budget.per_project_per_minute) {
            Ok(project) if project > 0 => wanted.min(project),
            _ => wanted,
        };
        if self.budget.per_user_per_minute == 0 {
            return wanted;
        }
        let keep = self.keep();
        loop {
            let outcome = {
                let mut accounts = self.books();
                let books = accounts.entry(account_id).or_default();
                let limit = account_limit(self.budget.per_user_per_minute, books.factor, priority);
                books.log.room(Instant::now(), limit, keep)
            };
            match outcome {
                Ok(room) => return wanted.min(usize::try_from(room).unwrap_or(usize::MAX)).max(1),
                Err(wait) => tokio::time::sleep(wait).await,
            }
        }
    }

    /// Waits until `cost` requests of `account_id` fit both windows, and logs them.
    pub async fn admit(&self, account_id: Uuid, cost: u32, priority: Priority) {
        let keep = self.keep();
        if self.budget.per_user_per_minute > 0 {
            loop {
                let outcome = {
                    let mut accounts = self.books();
                    let books = accounts.entry(account_id).or_default();
                    let limit = account_limit(self.budget.per_user_per_minute, books.factor, priority);
                    books.log.try_spend(Instant::now(), cost, limit, keep)
                };
                match outcome {
                    Ok(()) => break,
                    Err(wait) => tokio::time::sleep(wait).await,
                }
            }
        }
        if let (Some(project), true) = (&self.project, self.budget.per_project_per_minute > 0) {
            loop {
                match project
                    .try_spend(cost, self.budget.per_project_per_minute, keep)
                    .await
                {
                    Ok(()) => break,
                    Err(wait) => tokio::time::sleep(wait).await,
                }
            }
        }
    }

    /// Google answered "rate limit" for this account: halve its budget for now.
    pub fn rate_limited(&self, account_id: Uuid) {
        if self.budget.per_user_per_minute == 0 {
            return;
        }
        let mut accounts = self.books();
        let books = accounts.entry(account_id).or_default();
        books.factor = (books.factor / 2.0).max(MIN_FACTOR);
        tracing::warn!(
            %account_id,
            budget = account_limit(self.budget.per_user_per_minute, books.factor, Priority::Interactive),
            "Google rate-limited this account; pacing it more slowly"
        );
    }

    /// `cost` requests succeeded: the budget grows back by as much, up to the configured one.
    pub fn succeeded(&self, account_id: Uuid, cost: u32) {
        if self.budget.per_user_per_minute == 0 {
            return;
        }
        let mut accounts = self.books();
        if let Some(books) = accounts.get_mut(&account_id)
            && books.factor < 1.0
        {
            books.factor =
                (books.factor + f64::from(cost) / f64::from(self.budget.per_user_per_minute)).min(1.0);
        }
    }

    /// How long an entry stays in the log: the window and a margin. A request is logged when it is sent
    /// and counted by Google a moment later, so it must leave the log a moment later too.
    fn keep(&self) -> Duration {
        self.budget.window + (self.budget.window / 60).max(Duration::from_millis(100))
    }

    fn books(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, AccountBooks>> {
        let mut accounts = self.accounts.lock().unwrap_or_else(PoisonError::into_inner);
        if accounts.len() > 10_000 {
            // Forget accounts with nothing in their window and nothing to recover.
            let horizon = Instant::now().checked_sub(self.keep());
            accounts.retain(|_, books| {
                if let Some(horizon) = horizon {
                    books.log.forget_before(horizon);
                }
                books.log.spent > 0 || books.factor < 1.0
            });
        }
        accounts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    /// A pacer with minute windows and no project log.
    fn pacer(per_user_per_minute: u32, per_project_per_minute: u32) -> Pacer {
        Pacer::new(
            GoogleQuota {
                per_user_per_minute,
                per_project_per_minute,
                window: MINUTE,
            },
            None,
        )
    }

    #[test]
    fn a_window_admits_up_to_its_limit_then_says_when_the_oldest_leaves() {
        let start = Instant::now();
        let mut log = SlidingLog::default();
        for i in 0..10 {
            log.try_spend(start + Duration::from_secs(i), 1, 10, MINUTE)
                .unwrap();
        }
        let wait = log
            .try_spend(start + Duration::from_secs(30), 1, 10, MINUTE)
            .unwrap_err();
        // The first entry (at 0 s) leaves at 60 s: 30 s from now.
        assert_eq!(wait, Duration::from_secs(30) + Duration::from_millis(1));
        // At 61 s the entries at 0 and 1 s have left: 8 remain, and the new one.
        log.try_spend(start + Duration::from_secs(61), 1, 10, MINUTE)
            .unwrap();
        assert_eq!(log.spent, 9);
    }

    #[test]
    fn a_costly_request_waits_for_as_many_entries_as_it_needs() {
        let start = Instant::now();
        let mut log = SlidingLog::default();
        for i in 0..5 {
            log.try_spend(start + Duration::from_secs(i * 10), 2, 10, MINUTE)
                .unwrap();
        }
        // 10 spent; a cost of 5 needs the entries at 0, 10 and 20 s gone: at 80 s.
        let wait = log
            .try_spend(start + Duration::from_secs(45), 5, 10, MINUTE)
            .unwrap_err();
        assert_eq!(wait, Duration::from_secs(35) + Duration::from_millis(1));
    }

    #[test]
    fn a_request_dearer_than_the_budget_goes_alone() {
        let start = Instant::now();
        let mut log = SlidingLog::default();
        log.try_spend(start, 50, 10, MINUTE).unwrap();
        assert!(log.try_spend(start, 1, 10, MINUTE).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn room_is_what_the_window_has_left_and_waits_when_it_has_none() {
        let paced = pacer(100, 0);
        let account = Uuid::new_v4();
        assert_eq!(paced.room(account, 50, Priority::Background).await, 50);
        paced.admit(account, 90, Priority::Background).await;
        assert_eq!(paced.room(account, 50, Priority::Background).await, 7);
        assert_eq!(paced.room(account, 50, Priority::Interactive).await, 10);
        paced.admit(account, 7, Priority::Background).await;
        let started = Instant::now();
        assert_eq!(paced.room(account, 50, Priority::Background).await, 50);
        assert!(started.elapsed() >= MINUTE, "no room until the window moved on");

        let project_only = pacer(0, 40);
        assert_eq!(
            project_only.room(account, 50, Priority::Background).await,
            40,
            "a batch fits the project's window"
        );
    }

    #[test]
    fn background_work_leaves_room_for_people() {
        assert_eq!(account_limit(600, 1.0, Priority::Interactive), 600);
        assert_eq!(account_limit(600, 1.0, Priority::Background), 582);
        assert_eq!(account_limit(600, 0.5, Priority::Background), 291);
        assert_eq!(account_limit(1, 0.05, Priority::Background), 1, "never zero");
    }

    #[tokio::test(start_paused = true)]
    async fn an_interactive_request_passes_a_window_full_of_background_work() {
        let pacer = pacer(100, 0);
        let account = Uuid::new_v4();
        let started = Instant::now();
        pacer.admit(account, 97, Priority::Background).await;
        pacer.admit(account, 3, Priority::Interactive).await;
        assert_eq!(started.elapsed(), Duration::ZERO, "no wait for the person");
        pacer.admit(account, 1, Priority::Background).await;
        assert!(started.elapsed() >= MINUTE, "background waits for the window");
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limit_answers_halve_the_budget_and_successes_restore_it() {
        let pacer = pacer(100, 0);
        let account = Uuid::new_v4();
        pacer.rate_limited(account);
        let factor = |pacer: &Pacer| pacer.books()[&account].factor;
        assert_eq!(factor(&pacer), 0.5);
        pacer.rate_limited(account);
        assert_eq!(factor(&pacer), 0.25);
        pacer.succeeded(account, 50);
        assert_eq!(factor(&pacer), 0.75);
        pacer.succeeded(account, 50);
        assert_eq!(factor(&pacer), 1.0);
        for _ in 0..20 {
            pacer.rate_limited(account);
        }
        assert_eq!(factor(&pacer), MIN_FACTOR);
    }

    #[tokio::test(start_paused = true)]
    async fn unpaced_never_waits() {
        let pacer = Pacer::unpaced();
        let started = Instant::now();
        for _ in 0..10_000 {
            pacer.admit(Uuid::nil(), 50, Priority::Background).await;
        }
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn steady_background_work_runs_at_the_budget() {
        // 1,000 requests at 100 a minute: 10 minutes of budget, less the first window's burst.
        let pacer = pacer(100, 0);
        let started = Instant::now();
        for _ in 0..1_000 {
            pacer.admit(Uuid::nil(), 1, Priority::Background).await;
        }
        let minutes = started.elapsed().as_secs_f64() / 60.0;
        // 97 a window (the background share) and a second of margin a minute.
        assert!(
            minutes > 10.0 && minutes < 1_000.0 / 97.0 * 61.0 / 60.0 + 0.1,
            "{minutes}"
        );
    }
}
