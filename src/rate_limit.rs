//! Rate limits (governor), kept in memory per instance: N instances allow N times the configured rate.

use std::{
    collections::HashMap,
    hash::Hash,
    net::IpAddr,
    num::NonZeroU32,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock, clock::DefaultClock};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use crate::{config::RateLimits, error::AppError};

/// Notifications per push channel per minute; Google sends bursts, which coalescing absorbs anyway.
const WEBHOOK_PER_MIN: u32 = 600;

/// One keyed limiter; `None` when switched off (a configured rate of 0).
#[derive(Clone)]
pub struct Limiter<K: Hash + Eq + Clone>(Option<Arc<DefaultKeyedRateLimiter<K>>>);

impl<K: Hash + Eq + Clone> Limiter<K> {
    fn per_minute(per_min: u32) -> Self {
        Self(NonZeroU32::new(per_min).map(|n| Arc::new(RateLimiter::keyed(Quota::per_minute(n)))))
    }

    /// `RATE_LIMITED` with the seconds to wait when `key` is over its quota.
    pub fn check(&self, key: &K) -> Result<(), AppError> {
        let Some(limiter) = &self.0 else {
            return Ok(());
        };
        limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            AppError::RateLimited {
                retry_after_secs: wait.as_secs().max(1),
            }
        })
    }

    fn forget_idle(&self) {
        if let Some(limiter) = &self.0 {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

/// How many operations each user may have executing at once; the rest wait up to `wait` for a slot,
/// then are refused. `None` when switched off.
#[derive(Clone)]
pub struct InFlight(Option<Arc<InFlightSlots>>);

struct InFlightSlots {
    per_user: usize,
    wait: Duration,
    users: Mutex<HashMap<Uuid, Arc<Semaphore>>>,
}

/// One operation's slot, given back when dropped.
#[must_use]
pub struct Slot {
    _permit: Option<OwnedSemaphorePermit>,
}

impl InFlight {
    fn new(per_user: u32, wait: Duration) -> Self {
        Self((per_user > 0).then(|| {
            Arc::new(InFlightSlots {
                per_user: per_user as usize,
                wait,
                users: Mutex::default(),
            })
        }))
    }

    /// A slot for one of `user`'s operations, or `RATE_LIMITED` when none frees up within the wait.
    pub async fn acquire(&self, user: Uuid) -> Result<Slot, AppError> {
        let Some(slots) = &self.0 else {
            return Ok(Slot { _permit: None });
        };
        let semaphore = slots
            .users
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(user)
            .or_insert_with(|| Arc::new(Semaphore::new(slots.per_user)))
            .clone();
        match tokio::time::timeout(slots.wait, semaphore.acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Slot {
                _permit: Some(permit),
            }),
            // The semaphore is never closed; a timeout is the refusal.
            _ => Err(AppError::RateLimited { retry_after_secs: 1 }),
        }
    }

    /// Operations of `user` executing now.
    pub fn in_use(&self, user: Uuid) -> usize {
        let Some(slots) = &self.0 else { return 0 };
        slots
            .users
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&user)
            .map_or(0, |s| slots.per_user - s.available_permits())
    }

    fn forget_idle(&self) {
        if let Some(slots) = &self.0 {
            slots
                .users
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .retain(|_, s| Arc::strong_count(s) > 1 || s.available_permits() < slots.per_user);
        }
    }
}

/// Every limiter of the instance.
#[derive(Clone)]
pub struct RateLimiters {
    /// Sign-in and the OAuth callback, per client IP.
    pub signin: Limiter<IpAddr>,
    /// GraphQL, per signed-in user.
    pub api_user: Limiter<Uuid>,
    /// GraphQL from signed-out callers, per client IP.
    pub api_ip: Limiter<IpAddr>,
    /// Push notifications, per channel (counted once the channel and its token are known good).
    pub webhook: Limiter<Uuid>,
    /// GraphQL queries and mutations executing at once, per signed-in user.
    pub in_flight: InFlight,
}

impl RateLimiters {
    pub fn new(limits: &RateLimits) -> Self {
        Self {
            signin: Limiter::per_minute(limits.signin_per_min),
            api_user: Limiter::per_minute(limits.api_per_min),
            api_ip: Limiter::per_minute(limits.api_per_min),
            webhook: Limiter::per_minute(if limits.api_per_min == 0 {
                0
            } else {
                WEBHOOK_PER_MIN
            }),
            in_flight: InFlight::new(limits.in_flight_per_user, limits.in_flight_wait),
        }
    }

    /// Drops the state of keys that are back to a full quota, so memory follows active clients only.
    pub fn forget_idle(&self) {
        self.signin.forget_idle();
        self.api_user.forget_idle();
        self.api_ip.forget_idle();
        self.webhook.forget_idle();
        self.in_flight.forget_idle();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn over_quota_answers_rate_limited_with_a_wait() {
        let limiter = Limiter::<IpAddr>::per_minute(2);
        let ip: IpAddr = [10, 0, 0, 1].into();
        assert!(limiter.check(&ip).is_ok());
        assert!(limiter.check(&ip).is_ok());
        match limiter.check(&ip) {
            Err(AppError::RateLimited { retry_after_secs }) => assert!(retry_after_secs >= 1),
            other => panic!("expected RATE_LIMITED, got {other:?}"),
        }
        let other: IpAddr = [10, 0, 0, 2].into();
        assert!(limiter.check(&other).is_ok(), "quotas are per key");
    }

    #[tokio::test]
    async fn in_flight_slots_are_per_user_and_given_back() {
        let limit = InFlight::new(1, Duration::from_millis(50));
        let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
        let held = limit.acquire(alice).await.expect("a free slot");
        assert_eq!(limit.in_use(alice), 1);
        match limit.acquire(alice).await {
            Err(AppError::RateLimited { retry_after_secs }) => assert_eq!(retry_after_secs, 1),
            other => panic!("expected RATE_LIMITED, got {:?}", other.err()),
        }
        let _bob = limit.acquire(bob).await.expect("another user's slot");
        drop(held);
        assert_eq!(limit.in_use(alice), 0);
        let _again = limit.acquire(alice).await.expect("the slot came back");
        limit.forget_idle();
        assert_eq!(limit.in_use(alice), 1, "slots in use are kept");
    }

    #[test]
    fn zero_switches_a_limit_off() {
        let limiter = Limiter::<IpAddr>::per_minute(0);
        let ip: IpAddr = [10, 0, 0, 1].into();
        for _ in 0..1000 {
            assert!(limiter.check(&ip).is_ok());
        }
    }
}
