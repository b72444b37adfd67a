//! `RATE_LIMIT_SIGNIN_PER_MIN` (per client IP) and `RATE_LIMIT_API_PER_MIN` (per user); `0` disables.

use super::vars::Vars;

#[derive(Debug, Clone)]
pub struct RateLimits {
    /// Sign-in and OAuth callback requests per client IP per minute; 0 disables.
    pub signin_per_min: u32,
    /// GraphQL requests per user per minute; 0 disables.
    pub api_per_min: u32,
}

pub(super) fn parse(vars: &mut Vars<'_>) -> RateLimits {
    RateLimits {
        signin_per_min: vars.u32("RATE_LIMIT_SIGNIN_PER_MIN", 10),
        api_per_min: vars.u32("RATE_LIMIT_API_PER_MIN", 600),
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
