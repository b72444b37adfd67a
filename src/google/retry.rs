//! When to retry a call to Google, and how long to wait first.
//!
//! The policy is pure: it classifies a [`Failure`] and computes a delay from the attempt number, an optional
//! `Retry-After` and a jitter function passed in, so every rule is unit-tested without a clock or a network.
//! [`Backoff`] applies it to the attempts of one call.
//!
//! Retried: 429; 403 with reason `rateLimitExceeded` or `userRateLimitExceeded`; 500, 502, 503, 504;
//! timeouts; connection failures (refused, reset, dropped before the response was complete).
//! Never retried: every other status (400, 401, 404, 409, 410, 412, 403 with any other reason such as
//! `quotaExceeded` or `forbiddenForNonOrganizer`) and local failures (a response that does not parse).
//!
//! Delay before retry `n` (0-based): the shared truncated exponential backoff ([`crate::backoff`]) with full
//! jitter, `random(0, min(max_delay, base_delay * 2^n))`, unless the failure carried a `Retry-After`, which
//! is honoured as given. A `Retry-After` longer than [`RetryPolicy::max_retry_after`] (10 s) ends the
//! retries: the error keeps the `Retry-After`, and a job gets back in the queue for then instead of
//! holding a worker for minutes.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::backoff::{ExponentialBackoff, Jitter, full_jitter};

/// Why one attempt failed, as far as retrying is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Google answered with this status; `reason` is `error.errors[0].reason` when the body had one.
    Status { status: u16, reason: Option<String> },
    /// No answer within the request timeout.
    Timeout,
    /// Connecting failed, or the connection closed before the whole response arrived.
    Connection,
    /// A failure retrying cannot fix (a malformed response, a request that cannot be built).
    Permanent,
}

impl Failure {
    pub fn status(status: u16, reason: Option<&str>) -> Self {
        Self::Status {
            status,
            reason: reason.map(str::to_owned),
        }
    }

    /// Google's "slow down": 429, or 403 with reason `rateLimitExceeded` or `userRateLimitExceeded`.
    pub fn is_rate_limit(&self) -> bool {
        match self {
            Self::Status { status, reason } => {
                *status == 429
                    || (*status == 403
                        && matches!(
                            reason.as_deref(),
                            Some("rateLimitExceeded" | "userRateLimitExceeded")
                        ))
            }
            _ => false,
        }
    }

    /// Whether another attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Status { status, reason } => is_retryable_status(*status, reason.as_deref()),
            Self::Timeout | Self::Connection => true,
            Self::Permanent => false,
        }
    }
}

/// The status rule on its own: 429, 403 rate limits, 500/502/503/504.
pub fn is_retryable_status(status: u16, reason: Option<&str>) -> bool {
    match status {
        429 | 500 | 502 | 503 | 504 => true,
        403 => matches!(reason, Some("rateLimitExceeded" | "userRateLimitExceeded")),
        _ => false,
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Wait this long, then try again.
    RetryAfter(Duration),
    /// Report the failure.
    GiveUp,
}

/// The longest `Retry-After` a call waits for by default before giving up.
pub const MAX_RETRY_AFTER_IN_PROCESS: Duration = Duration::from_secs(10);

/// Retry settings. `Default` follows Google's guidance: 5 retries, 1 s base, 32 s cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (so at most `max_retries + 1` attempts).
    pub max_retries: u32,
    /// Ceiling of the first retry's delay; doubles with each retry.
    pub base_delay: Duration,
    /// Cap of the backoff ceiling.
    pub max_delay: Duration,
    /// The longest `Retry-After` waited for in process; a longer one gives up (the caller, a job, is
    /// rescheduled for then).
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 5,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(32),
            max_retry_after: MAX_RETRY_AFTER_IN_PROCESS,
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        Self {
            max_retries: 0,
            ..Self::default()
        }
    }

    /// The default policy with another base delay (tests use a few milliseconds); the cap scales with it.
    pub fn with_base_delay(base_delay: Duration) -> Self {
        Self {
            base_delay,
            max_delay: base_delay.saturating_mul(32),
            ..Self::default()
        }
    }

    /// The backoff between attempts: the shared policy with full jitter.
    pub fn backoff(&self) -> ExponentialBackoff {
        ExponentialBackoff::new(self.base_delay, self.max_delay, Jitter::Full)
    }

    /// `min(max_delay, base_delay * 2^retry)`, without overflow.
    pub fn backoff_ceiling(&self, retry: u32) -> Duration {
        self.backoff().ceiling(retry)
    }

    /// Decides after a failure. `retries_done` counts the retries already made (0 after the first attempt).
    /// `jitter` maps a ceiling to a delay in `[0, ceiling]`; production passes [`full_jitter`].
    pub fn decide(
        &self,
        retries_done: u32,
        failure: &Failure,
        retry_after: Option<Duration>,
        jitter: impl FnOnce(Duration) -> Duration,
    ) -> Decision {
        if retries_done >= self.max_retries || !failure.is_retryable() {
            return Decision::GiveUp;
        }
        match retry_after {
            Some(wait) if wait > self.max_retry_after => Decision::GiveUp,
            Some(wait) => Decision::RetryAfter(wait),
            None => {
                let ceiling = self.backoff_ceiling(retries_done);
                Decision::RetryAfter(jitter(ceiling).min(ceiling))
            }
        }
    }
}

/// Parses a `Retry-After` value: delay-seconds, or an HTTP date (a date in the past means now).
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse::<u64>().ok().map(Duration::from_secs);
    }
    let when = DateTime::parse_from_rfc2822(value).ok()?.with_timezone(&Utc);
    Some((when - now).to_std().unwrap_or(Duration::ZERO))
}

/// The outcome of one failed attempt, for [`run`].
#[derive(Debug)]
pub struct AttemptError<E> {
    /// What the caller gets if this was the last attempt.
    pub error: E,
    pub failure: Failure,
    pub retry_after: Option<Duration>,
}

impl<E> AttemptError<E> {
    /// A failure that is never retried.
    pub fn permanent(error: E) -> Self {
        Self {
            error,
            failure: Failure::Permanent,
            retry_after: None,
        }
    }
}

/// The retries of one call: after each failed attempt, [`Backoff::wait`] sleeps as the policy says and
/// tells whether to try again.
///
/// ```text
/// let mut backoff = Backoff::new(&policy);
/// loop {
///     match attempt().await {
///         Ok(v) => break v,
///         Err(e) if backoff.wait(&e.failure, e.retry_after).await => continue,
///         Err(e) => return Err(e.error),
///     }
/// }
/// ```
#[derive(Debug)]
pub struct Backoff<'a> {
    policy: &'a RetryPolicy,
    retries: u32,
}

impl<'a> Backoff<'a> {
    pub fn new(policy: &'a RetryPolicy) -> Self {
        Self { policy, retries: 0 }
    }

    /// Retries made so far.
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// Starts the budget again (after progress, e.g. some parts of a batch succeeded).
    pub fn reset(&mut self) {
        self.retries = 0;
    }

    /// Decides after a failed attempt; when retrying, sleeps first and returns `true`.
    pub async fn wait(&mut self, failure: &Failure, retry_after: Option<Duration>) -> bool {
        let decision = self.policy.decide(self.retries, failure, retry_after, |ceiling| {
            full_jitter(&mut rand::rng(), ceiling)
        });
        match decision {
            Decision::GiveUp => false,
            Decision::RetryAfter(delay) => {
                self.retries += 1;
                tracing::debug!(
                    retry = self.retries,
                    delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    failure = ?failure,
                    "retrying a Google call"
                );
                tokio::time::sleep(delay).await;
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use chrono::TimeZone;

    use super::*;

    fn status(code: u16) -> Failure {
        Failure::status(code, None)
    }

    fn max_jitter(ceiling: Duration) -> Duration {
        ceiling
    }

    #[test]
    fn retryable_statuses() {
        for code in [429, 500, 502, 503, 504] {
            assert!(status(code).is_retryable(), "{code} retries");
        }
        for code in [
            200, 204, 301, 304, 400, 401, 403, 404, 405, 409, 410, 412, 413, 422, 501, 505,
        ] {
            assert!(!status(code).is_retryable(), "{code} never retries");
        }
    }

    #[test]
    fn forbidden_retries_only_for_rate_limits() {
        assert!(Failure::status(403, Some("rateLimitExceeded")).is_retryable());
        assert!(Failure::status(403, Some("userRateLimitExceeded")).is_retryable());
        for reason in [
            "quotaExceeded",
            "forbiddenForNonOrganizer",
            "requiredAccessLevel",
            "forbidden",
            "",
        ] {
            assert!(!Failure::status(403, Some(reason)).is_retryable(), "{reason}");
        }
        // The reason only matters for 403: a 429 without a body still retries, a 400 never does.
        assert!(Failure::status(429, Some("anything")).is_retryable());
        assert!(!Failure::status(400, Some("rateLimitExceeded")).is_retryable());
    }

    #[test]
    fn transport_failures_retry_and_local_ones_do_not() {
        assert!(Failure::Timeout.is_retryable());
        assert!(Failure::Connection.is_retryable());
        assert!(!Failure::Permanent.is_retryable());
    }

    #[test]
    fn ceiling_doubles_then_truncates() {
        let p = RetryPolicy::default();
        let secs: Vec<u64> = (0..8).map(|n| p.backoff_ceiling(n).as_secs()).collect();
        assert_eq!(secs, vec![1, 2, 4, 8, 16, 32, 32, 32]);
        // Huge attempt numbers neither overflow nor exceed the cap.
        assert_eq!(p.backoff_ceiling(31), Duration::from_secs(32));
        assert_eq!(p.backoff_ceiling(u32::MAX), Duration::from_secs(32));
        let huge = RetryPolicy {
            base_delay: Duration::from_secs(u64::MAX / 2),
            max_delay: Duration::MAX,
            ..RetryPolicy::default()
        };
        assert_eq!(huge.backoff_ceiling(40), Duration::MAX);
    }

    #[test]
    fn small_base_for_tests_scales_the_cap() {
        let p = RetryPolicy::with_base_delay(Duration::from_millis(5));
        assert_eq!(p.max_retries, 5);
        assert_eq!(p.backoff_ceiling(0), Duration::from_millis(5));
        assert_eq!(p.backoff_ceiling(3), Duration::from_millis(40));
        assert_eq!(p.backoff_ceiling(10), Duration::from_millis(160));
    }

    #[test]
    fn decide_uses_the_jittered_ceiling_of_the_attempt() {
        let p = RetryPolicy::default();
        let seen = std::cell::Cell::new(Duration::ZERO);
        let d = p.decide(2, &status(503), None, |c| {
            seen.set(c);
            c / 2
        });
        assert_eq!(seen.get(), Duration::from_secs(4));
        assert_eq!(d, Decision::RetryAfter(Duration::from_secs(2)));
        // A jitter function returning too much is clamped to the ceiling.
        let d = p.decide(0, &status(503), None, |_| Duration::from_secs(99));
        assert_eq!(d, Decision::RetryAfter(Duration::from_secs(1)));
        let d = p.decide(0, &Failure::Timeout, None, |_| Duration::ZERO);
        assert_eq!(d, Decision::RetryAfter(Duration::ZERO));
    }

    #[test]
    fn decide_gives_up_after_max_retries() {
        let p = RetryPolicy::default();
        for n in 0..5 {
            assert!(matches!(
                p.decide(n, &Failure::Connection, None, max_jitter),
                Decision::RetryAfter(_)
            ));
        }
        assert_eq!(
            p.decide(5, &Failure::Connection, None, max_jitter),
            Decision::GiveUp
        );
        assert_eq!(
            p.decide(6, &Failure::Connection, None, max_jitter),
            Decision::GiveUp
        );
        let none = RetryPolicy::none();
        assert_eq!(none.decide(0, &status(503), None, max_jitter), Decision::GiveUp);
    }

    #[test]
    fn decide_never_retries_permanent_failures() {
        let p = RetryPolicy::default();
        for f in [
            status(400),
            status(401),
            status(404),
            status(409),
            status(410),
            status(412),
            Failure::status(403, Some("quotaExceeded")),
            Failure::Permanent,
        ] {
            assert_eq!(
                p.decide(0, &f, Some(Duration::ZERO), max_jitter),
                Decision::GiveUp,
                "{f:?}"
            );
        }
    }

    #[test]
    fn retry_after_is_honoured_exactly_and_a_long_one_gives_up() {
        let p = RetryPolicy::with_base_delay(Duration::from_millis(5));
        let jitter_unused = |_: Duration| -> Duration { panic!("no jitter when Retry-After is given") };
        assert_eq!(
            p.decide(0, &status(429), Some(Duration::from_secs(1)), jitter_unused),
            Decision::RetryAfter(Duration::from_secs(1))
        );
        assert_eq!(
            p.decide(0, &status(503), Some(Duration::ZERO), |_| Duration::from_secs(9)),
            Decision::RetryAfter(Duration::ZERO)
        );
        assert_eq!(
            p.decide(0, &status(429), Some(Duration::from_secs(10)), max_jitter),
            Decision::RetryAfter(Duration::from_secs(10))
        );
        assert_eq!(
            p.decide(0, &status(503), Some(Duration::from_secs(11)), max_jitter),
            Decision::GiveUp
        );
        // Retry-After does not extend the number of retries.
        assert_eq!(
            p.decide(5, &status(429), Some(Duration::ZERO), max_jitter),
            Decision::GiveUp
        );
    }

    #[test]
    fn retry_after_parses_seconds_and_http_dates() {
        let now = Utc
            .with_ymd_and_hms(2015, 10, 21, 7, 28, 0)
            .single()
            .expect("date");
        assert_eq!(parse_retry_after("0", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after(" 120 ", now), Some(Duration::from_secs(120)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        for bad in ["", "soon", "-1", "1.5", "99999999999999999999999"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }

    /// The loop every caller writes, as a function for the test.
    async fn run<T, E>(
        policy: &RetryPolicy,
        mut attempt: impl FnMut() -> Result<T, AttemptError<E>>,
    ) -> Result<T, E> {
        let mut backoff = Backoff::new(policy);
        loop {
            match attempt() {
                Ok(v) => return Ok(v),
                Err(e) if backoff.wait(&e.failure, e.retry_after).await => continue,
                Err(e) => return Err(e.error),
            }
        }
    }

    #[tokio::test]
    async fn backoff_retries_until_success_and_reports_the_last_error() {
        let policy = RetryPolicy::with_base_delay(Duration::from_millis(1));
        let calls = AtomicU32::new(0);
        let result: Result<u32, &str> = run(&policy, || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            if n < 3 {
                Err(AttemptError {
                    error: "busy",
                    failure: status(503),
                    retry_after: None,
                })
            } else {
                Ok(n)
            }
        })
        .await;
        assert_eq!(result, Ok(3));
        assert_eq!(calls.load(Ordering::SeqCst), 4);

        let calls = AtomicU32::new(0);
        let result: Result<(), &str> = run(&policy, || {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(AttemptError {
                error: "down",
                failure: Failure::Connection,
                retry_after: Some(Duration::ZERO),
            })
        })
        .await;
        assert_eq!(result, Err("down"));
        assert_eq!(calls.load(Ordering::SeqCst), 6, "one attempt and five retries");

        let calls = AtomicU32::new(0);
        let result: Result<(), &str> = run(&policy, || {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(AttemptError::permanent("bad request"))
        })
        .await;
        assert_eq!(result, Err("bad request"));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn backoff_reset_restores_the_budget() {
        let policy = RetryPolicy {
            max_retries: 1,
            ..RetryPolicy::with_base_delay(Duration::from_millis(1))
        };
        let mut backoff = Backoff::new(&policy);
        assert!(backoff.wait(&Failure::Timeout, None).await);
        assert!(!backoff.wait(&Failure::Timeout, None).await);
        backoff.reset();
        assert_eq!(backoff.retries(), 0);
        assert!(backoff.wait(&Failure::Timeout, None).await);
    }
}
