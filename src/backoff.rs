//! Capped exponential backoff with jitter: the one delay policy for everything that tries again.
//!
//! Retry `n` (0-based) has the ceiling `min(max, base * 2^n)`; the delay is drawn under it:
//! - [`Jitter::Full`], uniform in `[0, ceiling]`: the retries of many callers spread as widely as possible
//!   (the Google client, whose retries are short and many).
//! - [`Jitter::Equal`], uniform in `[ceiling / 2, ceiling]`: spread out, yet never much sooner than the
//!   ceiling (the job queue, where a retry soon after a failure would most likely fail the same way).

use std::time::Duration;

use rand::Rng;

/// How the delay is drawn under the ceiling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    Full,
    Equal,
}

/// Truncated exponential backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExponentialBackoff {
    /// The first retry's ceiling.
    pub base: Duration,
    /// No ceiling exceeds this.
    pub max: Duration,
    pub jitter: Jitter,
}

impl ExponentialBackoff {
    pub const fn new(base: Duration, max: Duration, jitter: Jitter) -> Self {
        Self { base, max, jitter }
    }

    /// `min(max, base * 2^retry)`, without overflow.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// The delay before retry `retry` (0-based), jittered.
    pub fn delay(&self, retry: u32) -> Duration {
        self.delay_with(&mut rand::rng(), retry)
    }

    /// [`Self::delay`] with the random source given (tests pass a seeded one).
    pub fn delay_with<R: Rng + ?Sized>(&self, rng: &mut R, retry: u32) -> Duration {
        let ceiling = self.ceiling(retry);
        match self.jitter {
            Jitter::Full => full_jitter(rng, ceiling),
            Jitter::Equal => equal_jitter(rng, ceiling),
        }
    }
}

/// A uniformly random delay in `[0, ceiling]`.
pub fn full_jitter<R: Rng + ?Sized>(rng: &mut R, ceiling: Duration) -> Duration {
    let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(rng.random_range(0..=nanos))
}

/// A uniformly random delay in `[ceiling / 2, ceiling]`.
pub fn equal_jitter<R: Rng + ?Sized>(rng: &mut R, ceiling: Duration) -> Duration {
    let half = ceiling / 2;
    half + full_jitter(rng, ceiling - half)
}

#[cfg(test)]
mod tests {
    use rand::{SeedableRng, rngs::StdRng};

    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn ceiling_doubles_then_truncates_without_overflow() {
        let b = ExponentialBackoff::new(secs(1), secs(32), Jitter::Full);
        let ceilings: Vec<u64> = (0..8).map(|n| b.ceiling(n).as_secs()).collect();
        assert_eq!(ceilings, vec![1, 2, 4, 8, 16, 32, 32, 32]);
        assert_eq!(b.ceiling(u32::MAX), secs(32));
        let huge = ExponentialBackoff::new(secs(u64::MAX / 2), Duration::MAX, Jitter::Full);
        assert_eq!(huge.ceiling(40), Duration::MAX);
        let zero = ExponentialBackoff::new(Duration::ZERO, secs(60), Jitter::Equal);
        assert_eq!(zero.delay(3), Duration::ZERO);
    }

    #[test]
    fn full_jitter_stays_within_the_ceiling_and_spreads() {
        let mut rng = StdRng::seed_from_u64(7);
        let ceiling = Duration::from_millis(100);
        let samples: Vec<Duration> = (0..2000).map(|_| full_jitter(&mut rng, ceiling)).collect();
        assert!(samples.iter().all(|d| *d <= ceiling));
        let low = samples.iter().filter(|d| **d < Duration::from_millis(10)).count();
        let high = samples.iter().filter(|d| **d > Duration::from_millis(90)).count();
        // About 10% in each tail: not clustered at the ceiling.
        assert!((100..=300).contains(&low), "low tail {low}");
        assert!((100..=300).contains(&high), "high tail {high}");
        assert_eq!(full_jitter(&mut rng, Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn equal_jitter_keeps_at_least_half_and_spreads() {
        let mut rng = StdRng::seed_from_u64(11);
        let ceiling = Duration::from_millis(100);
        let samples: Vec<Duration> = (0..2000).map(|_| equal_jitter(&mut rng, ceiling)).collect();
        assert!(samples.iter().all(|d| *d >= ceiling / 2 && *d <= ceiling));
        let low = samples.iter().filter(|d| **d < Duration::from_millis(55)).count();
        let high = samples.iter().filter(|d| **d > Duration::from_millis(95)).count();
        assert!((100..=300).contains(&low), "low tail {low}");
        assert!((100..=300).contains(&high), "high tail {high}");
        assert_eq!(equal_jitter(&mut rng, Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn delays_follow_the_jitter_of_the_policy() {
        let mut rng = StdRng::seed_from_u64(3);
        let full = ExponentialBackoff::new(secs(5), secs(60), Jitter::Full);
        let equal = ExponentialBackoff {
            jitter: Jitter::Equal,
            ..full
        };
        for _ in 0..200 {
            for (retry, ceiling) in [(0, 5), (1, 10), (2, 20), (3, 40), (4, 60), (39, 60)] {
                let ceiling = secs(ceiling);
                let d = equal.delay_with(&mut rng, retry);
                assert!(d >= ceiling / 2 && d <= ceiling, "equal, retry {retry}: {d:?}");
                let d = full.delay_with(&mut rng, retry);
                assert!(d <= ceiling, "full, retry {retry}: {d:?}");
            }
        }
    }
}
