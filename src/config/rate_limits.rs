//! `RATE_LIMIT_SIGNIN_PER_MIN` (per client IP), `RATE_LIMIT_API_PER_MIN` and
//! `RATE_LIMIT_IN_FLIGHT_PER_USER` (per user); `0` disables.

use std::time::Duration;

use super::vars::Vars;

/// How long an operation over the in-flight limit waits for a slot before it is refused.
pub const IN_FLIGHT_WAIT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct RateLimits {
    /// Sign-in and OAuth callback requests per client IP per minute; 0 disables.
    pub signin_per_min: u32,
    /// GraphQL requests per user per minute; 0 disables.
    pub api_per_min: u32,
    /// GraphQL queries and mutations one user may have executing at once on this instance, so one user
    /// cannot take the database pool from everyone else; 0 disables. Subscriptions do not count.
    pub in_flight_per_user: u32,
    /// How long an operation over `in_flight_per_user` waits for a slot before RATE_LIMITED.
    pub in_flight_wait: Duration,
}

pub(super) fn parse(vars: &mut Vars<'_>) -> RateLimits {
    RateLimits {
        signin_per_min: vars.u32("RATE_LIMIT_SIGNIN_PER_MIN", 10),
        api_per_min: vars.u32("RATE_LIMIT_API_PER_MIN", 600),
        in_flight_per_user: vars.u32("RATE_LIMIT_IN_FLIGHT_PER_USER", 4),
        in_flight_wait: IN_FLIGHT_WAIT,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::vars::map;

    #[test]
    fn defaults_zero_and_malformed_values() {
        let m = map(&[]);
        let mut v = Vars::new(&m);
        let r = parse(&mut v);
        assert_eq!((r.signin_per_min, r.api_per_min), (10, 600));
        assert_eq!(r.in_flight_per_user, 4);

        let m = map(&[
            ("RATE_LIMIT_SIGNIN_PER_MIN", "0"),
            ("RATE_LIMIT_API_PER_MIN", "-3"),
        ]);
        let mut v = Vars::new(&m);
        let r = parse(&mut v);
        assert_eq!(r.signin_per_min, 0, "0 disables");
        assert_eq!(
            v.into_problems(),
            vec!["RATE_LIMIT_API_PER_MIN must be a whole number, not `-3`".to_string()]
        );
    }
}
