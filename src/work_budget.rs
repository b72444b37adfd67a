//! How much work one request may do beyond what its document shows: the recurring instances it may expand
//! and the time it may take. Each operation gets a fresh budget (the GraphQL layer puts one on every
//! request, on every transport); domain code that expands or loops spends from it and stops when it is
//! spent, so no document, however it is aliased, holds a worker for long.

use std::{
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use crate::error::{AppError, AppResult};

/// Recurring instances one request may expand, over all its fields: a year of a daily series is 365, a
/// week of a busy calendar a few hundred; an aliased flood of year-long minutely series is millions.
pub const EXPANDED_INSTANCES: usize = 50_000;
/// Time one request may spend in budgeted work before it stops (below the HTTP timeout, so the client gets
/// the reason rather than a 408).
pub const DEADLINE: Duration = Duration::from_secs(20);

#[derive(Debug)]
pub struct WorkBudget {
    instances_left: AtomicUsize,
    deadline: Instant,
}

impl Default for WorkBudget {
    fn default() -> Self {
        Self::new(EXPANDED_INSTANCES, DEADLINE)
    }
}

impl WorkBudget {
    pub fn new(instances: usize, time: Duration) -> Self {
        Self {
            instances_left: AtomicUsize::new(instances),
            deadline: Instant::now() + time,
        }
    }

    /// Instances that may still be expanded.
    pub fn instances_left(&self) -> usize {
        self.instances_left.load(Ordering::Relaxed)
    }

    /// Spends `count` expanded instances, or refuses (spending nothing) when fewer are left.
    pub fn spend_instances(&self, count: usize) -> AppResult<()> {
        self.instances_left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(count)
            })
            .map(|_| ())
            .map_err(|_| {
                AppError::bad_input(
                    "events",
                    format!(
                        "this request would expand more than {EXPANDED_INSTANCES} instances of recurring \
                         events; ask for shorter windows, fewer calendars or fewer fields at once"
                    ),
                )
            })
    }

    /// Refuses once the deadline has passed: the server could not finish in time, so the client may retry.
    pub fn check_deadline(&self) -> AppResult<()> {
        if Instant::now() < self.deadline {
            Ok(())
        } else {
            Err(AppError::Overloaded { retry_after_secs: 1 })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_are_spent_until_none_are_left() {
        let budget = WorkBudget::new(10, DEADLINE);
        budget.spend_instances(4).unwrap();
        budget.spend_instances(6).unwrap();
        assert_eq!(budget.instances_left(), 0);
        let refused = budget.spend_instances(1).unwrap_err();
        assert_eq!(refused.code(), "BAD_USER_INPUT");
        assert!(refused.client_message().contains("recurring events"));
    }

    #[test]
    fn a_refused_spend_spends_nothing() {
        let budget = WorkBudget::new(10, DEADLINE);
        assert!(budget.spend_instances(11).is_err());
        assert_eq!(budget.instances_left(), 10);
    }

    #[test]
    fn the_deadline_refuses_as_load() {
        assert!(WorkBudget::new(1, DEADLINE).check_deadline().is_ok());
        let late = WorkBudget::new(1, Duration::ZERO);
        assert_eq!(late.check_deadline().unwrap_err().code(), "UPSTREAM_UNAVAILABLE");
    }
}
