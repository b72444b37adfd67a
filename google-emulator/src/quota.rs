//! Google's request quotas: per user and per project, each a one-minute sliding window.
//! Every Calendar API request counts once, and so does every part of a batch (the batch
//! envelope itself does not). A refused request is not counted, so a client that backs off
//! gets through as soon as the window has room again.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::config::EmulatorConfig;
use crate::error::ApiError;

/// Why a request was refused: the `reason` Google puts in the error item.
pub const USER_REASON: &str = "userRateLimitExceeded";
pub const PROJECT_REASON: &str = "rateLimitExceeded";

/// Monotonic milliseconds plus an offset tests move forward, so that windows can be
/// walked through without sleeping.
#[derive(Debug)]
pub struct QuotaClock {
    start: Instant,
    offset_ms: AtomicU64,
}

impl Default for QuotaClock {
    fn default() -> Self {
        Self {
            start: Instant::now(),
            offset_ms: AtomicU64::new(0),
        }
    }
}

impl QuotaClock {
    pub fn now_ms(&self) -> u64 {
        let elapsed = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        elapsed.saturating_add(self.offset_ms.load(Ordering::SeqCst))
    }

    pub fn advance(&self, ms: u64) {
        self.offset_ms.fetch_add(ms, Ordering::SeqCst);
    }
}

/// The limits in force; 0 switches a limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaLimits {
    pub per_user_per_minute: u64,
    pub per_project_per_minute: u64,
    /// 403 or 429: Google answers the project limit with either.
    pub project_status: u16,
    /// The windows' length: Google's minute ([`crate::config::GOOGLE_QUOTA_WINDOW_MS`]) unless a
    /// test shortens it.
    pub window_ms: u64,
}

impl QuotaLimits {
    pub fn from_config(config: &EmulatorConfig) -> Self {
        Self {
            per_user_per_minute: config.quota_per_user_per_minute,
            per_project_per_minute: config.quota_per_project_per_minute,
            project_status: config.quota_project_status,
            window_ms: config.quota_window_ms.max(1),
        }
    }

    pub fn json(&self) -> Value {
        json!({
            "perUserPerMinute": self.per_user_per_minute,
            "perProjectPerMinute": self.per_project_per_minute,
            "projectStatus": self.project_status,
            "windowMs": self.window_ms,
        })
    }
}

/// A refusal: which limit was hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    User,
    Project { status: u16 },
}

impl Refusal {
    pub fn reason(self) -> &'static str {
        match self {
            Self::User => USER_REASON,
            Self::Project { .. } => PROJECT_REASON,
        }
    }

    /// Google's exact body: `usageLimits` domain, its messages, 403 (or 429 for the project).
    pub fn error(self) -> ApiError {
        let status = match self {
            Self::User => StatusCode::FORBIDDEN,
            Self::Project { status } => StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN),
        };
        ApiError::for_fault(status, Some(self.reason()))
    }
}

/// Timestamps (ms) of the requests accepted within the last window.
#[derive(Debug, Default, Clone)]
struct Window(VecDeque<u64>);

impl Window {
    fn expire(&mut self, now_ms: u64, window_ms: u64) {
        while let Some(&t) = self.0.front() {
            if t.saturating_add(window_ms) <= now_ms {
                self.0.pop_front();
            } else {
                break;
            }
        }
    }

    fn full(&mut self, now_ms: u64, limit: u64, window_ms: u64) -> bool {
        if limit == 0 {
            return false;
        }
        self.expire(now_ms, window_ms);
        self.0.len() as u64 >= limit
    }
}

/// Quota state: the limits, the windows and the refusal counts.
#[derive(Debug, Clone)]
pub struct Quotas {
    pub limits: QuotaLimits,
    project: Window,
    users: HashMap<String, Window>,
    pub refusals: BTreeMap<&'static str, u64>,
}

impl Quotas {
    pub fn new(limits: QuotaLimits) -> Self {
        Self {
            limits,
            project: Window::default(),
            users: HashMap::new(),
            refusals: BTreeMap::new(),
        }
    }

    /// Counts one request of `user` at `now_ms`, or refuses it (and counts the refusal).
    /// The user limit is checked first: Google names the narrower limit.
    pub fn admit(&mut self, user: &str, now_ms: u64) -> Result<(), Refusal> {
        let limits = self.limits;
        let user_window = self.users.entry(user.to_owned()).or_default();
        let refusal = if user_window.full(now_ms, limits.per_user_per_minute, limits.window_ms) {
            Some(Refusal::User)
        } else if self
            .project
            .full(now_ms, limits.per_project_per_minute, limits.window_ms)
        {
            Some(Refusal::Project {
                status: limits.project_status,
            })
        } else {
            None
        };
        if let Some(r) = refusal {
            *self.refusals.entry(r.reason()).or_insert(0) += 1;
            return Err(r);
        }
        // Only windows with a limit keep timestamps: an unlimited emulator stores nothing.
        if limits.per_user_per_minute > 0 {
            user_window.0.push_back(now_ms);
        }
        if limits.per_project_per_minute > 0 {
            self.project.0.push_back(now_ms);
        }
        Ok(())
    }

    /// New limits; the windows keep what they counted.
    pub fn set_limits(&mut self, limits: QuotaLimits) {
        if limits.per_user_per_minute == 0 {
            self.users.clear();
        }
        if limits.per_project_per_minute == 0 {
            self.project.0.clear();
        }
        self.limits = limits;
    }

    pub fn clear_refusals(&mut self) {
        self.refusals.clear();
    }

    /// `{total, byReason: {reason: n}}` for `GET /emulator/stats`.
    pub fn refusals_json(&self) -> Value {
        json!({
            "total": self.refusals.values().sum::<u64>(),
            "byReason": self.refusals,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quotas(user: u64, project: u64) -> Quotas {
        Quotas::new(QuotaLimits {
            per_user_per_minute: user,
            per_project_per_minute: project,
            project_status: 403,
            window_ms: crate::config::GOOGLE_QUOTA_WINDOW_MS,
        })
    }

    #[test]
    fn user_window_slides() {
        let mut q = quotas(3, 0);
        assert!(q.admit("a", 0).is_ok());
        assert!(q.admit("a", 10_000).is_ok());
        assert!(q.admit("a", 20_000).is_ok());
        assert_eq!(q.admit("a", 59_999), Err(Refusal::User));
        // Another user has a window of its own.
        assert!(q.admit("b", 59_999).is_ok());
        // The request at 0 leaves the window at exactly 60 s, one slot frees up.
        assert!(q.admit("a", 60_000).is_ok());
        assert_eq!(q.admit("a", 60_001), Err(Refusal::User));
        // At 70 s the request at 10 s has left too.
        assert!(q.admit("a", 70_000).is_ok());
        assert_eq!(q.refusals.get(USER_REASON), Some(&2));
    }

    #[test]
    fn refused_requests_are_not_counted() {
        let mut q = quotas(1, 0);
        assert!(q.admit("a", 0).is_ok());
        for t in 1..100 {
            assert!(q.admit("a", t * 100).is_err());
        }
        assert!(q.admit("a", 60_000).is_ok());
    }

    #[test]
    fn project_window_spans_users() {
        let mut q = quotas(0, 2);
        assert!(q.admit("a", 0).is_ok());
        assert!(q.admit("b", 1).is_ok());
        assert_eq!(q.admit("c", 2), Err(Refusal::Project { status: 403 }));
        assert!(q.admit("c", 60_000).is_ok());
        assert_eq!(q.refusals_json()["byReason"][PROJECT_REASON], 1);
    }

    #[test]
    fn user_limit_named_before_project_limit() {
        let mut q = quotas(1, 1);
        assert!(q.admit("a", 0).is_ok());
        assert_eq!(q.admit("a", 1), Err(Refusal::User));
        assert_eq!(q.admit("b", 1), Err(Refusal::Project { status: 403 }));
    }

    #[test]
    fn zero_means_off() {
        let mut q = quotas(0, 0);
        for t in 0..20_000 {
            assert!(q.admit("a", t).is_ok());
        }
        assert!(q.users.get("a").is_none_or(|w| w.0.is_empty()));
        assert_eq!(q.refusals_json()["total"], 0);
    }

    #[test]
    fn refusal_bodies_are_googles() {
        let b = Refusal::User.error().body();
        assert_eq!(
            b,
            json!({"error": {"code": 403, "message": "User Rate Limit Exceeded", "errors": [
                {"domain": "usageLimits", "reason": "userRateLimitExceeded", "message": "User Rate Limit Exceeded"}
            ]}})
        );
        let b = Refusal::Project { status: 429 }.error().body();
        assert_eq!(b["error"]["code"], 429);
        assert_eq!(b["error"]["errors"][0]["reason"], "rateLimitExceeded");
        assert_eq!(b["error"]["errors"][0]["domain"], "usageLimits");
        assert_eq!(b["error"]["message"], "Rate Limit Exceeded");
    }

    #[test]
    fn clock_advances() {
        let c = QuotaClock::default();
        let before = c.now_ms();
        c.advance(60_000);
        assert!(c.now_ms() >= before + 60_000);
    }
}
