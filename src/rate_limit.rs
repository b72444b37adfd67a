//! Rate limits (governor), kept in memory per instance: N instances allow N times the configured rate.

use std::{hash::Hash, net::IpAddr, num::NonZeroU32, sync::Arc};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock, clock::DefaultClock};
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
        }
    }

    /// Drops the state of keys that are back to a full quota, so memory follows active clients only.
    pub fn forget_idle(&self) {
        self.signin.forget_idle();
        self.api_user.forget_idle();
        self.api_ip.forget_idle();
        self.webhook.forget_idle();
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

    #[test]
    fn zero_switches_a_limit_off() {
        let limiter = Limiter::<IpAddr>::per_minute(0);
        let ip: IpAddr = [10, 0, 0, 1].into();
        for _ in 0..1000 {
            assert!(limiter.check(&ip).is_ok());
        }
    }
}
