//! Where Chronos finds Google and how it identifies itself: `GOOGLE_CLIENT_ID`, `GOOGLE_CLIENT_SECRET`,
//! `GOOGLE_ACCOUNTS_URL`, `GOOGLE_OAUTH_URL` and `GOOGLE_API_URL`.

use std::time::Duration;

use url::Url;

use super::vars::{Vars, fixed_url};
use crate::crypto::SecretString;

/// Where Chronos finds Google. All three point at one host when the emulator stands in for Google.
#[derive(Debug, Clone)]
pub struct GoogleSettings {
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    pub accounts_url: Url,
    pub oauth_url: Url,
    pub api_url: Url,
    /// The request budget Chronos paces itself to.
    pub quota: GoogleQuota,
}

/// Google's request quotas as Chronos spends them (`GOOGLE_QUOTA_PER_USER_PER_MINUTE`,
/// `GOOGLE_QUOTA_PER_PROJECT_PER_MINUTE`); batch parts count one each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoogleQuota {
    /// Requests per account per window; 0: unpaced.
    pub per_user_per_minute: u32,
    /// Requests per project per window, shared by every instance on the database; 0: unpaced.
    pub per_project_per_minute: u32,
    /// Google's windows are a minute long; only tests shorten them, to walk through several quickly.
    pub window: Duration,
}

impl GoogleQuota {
    /// Google's published numbers.
    pub const GOOGLE: Self = Self {
        per_user_per_minute: 600,
        per_project_per_minute: 10_000,
        window: Duration::from_secs(60),
    };

    pub const UNPACED: Self = Self {
        per_user_per_minute: 0,
        per_project_per_minute: 0,
        window: Duration::from_secs(60),
    };
}

impl GoogleSettings {
    /// Every Google endpoint on one base URL, as the emulator serves them.
    pub fn single_host(base: &Url) -> Self {
        Self {
            client_id: Some("chronos-local".into()),
            client_secret: Some(SecretString::from("chronos-local-secret")),
            accounts_url: base.clone(),
            oauth_url: base.clone(),
            api_url: base.clone(),
            quota: GoogleQuota::GOOGLE,
        }
    }
}

pub(super) fn parse(vars: &mut Vars<'_>, production: bool) -> GoogleSettings {
    let accounts_url = vars.http_url("GOOGLE_ACCOUNTS_URL");
    let oauth_url = vars.http_url("GOOGLE_OAUTH_URL");
    let api_url = vars.http_url("GOOGLE_API_URL");
    let client_id = vars.get("GOOGLE_CLIENT_ID");
    let client_secret = vars.get("GOOGLE_CLIENT_SECRET").map(SecretString::from);
    if client_id.is_some() != client_secret.is_some() {
        vars.problem("GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET must be set together");
    }
    vars.require_in_production(production, "GOOGLE_CLIENT_ID", "");
    vars.require_in_production(production, "GOOGLE_CLIENT_SECRET", "");
    GoogleSettings {
        client_id,
        client_secret,
        accounts_url: accounts_url.unwrap_or_else(|| fixed_url("https://accounts.google.com")),
        oauth_url: oauth_url.unwrap_or_else(|| fixed_url("https://oauth2.googleapis.com")),
        api_url: api_url.unwrap_or_else(|| fixed_url("https://www.googleapis.com")),
        quota: GoogleQuota {
            per_user_per_minute: vars.u32(
                "GOOGLE_QUOTA_PER_USER_PER_MINUTE",
                GoogleQuota::GOOGLE.per_user_per_minute,
            ),
            per_project_per_minute: vars.u32(
                "GOOGLE_QUOTA_PER_PROJECT_PER_MINUTE",
                GoogleQuota::GOOGLE.per_project_per_minute,
            ),
            window: GoogleQuota::GOOGLE.window,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::vars::map;

    #[test]
    fn defaults_are_google_and_no_client() {
        let m = map(&[]);
        let mut v = Vars::new(&m);
        let g = parse(&mut v, false);
        assert!(v.problems().is_empty());
        assert!(g.client_id.is_none() && g.client_secret.is_none());
        assert_eq!(g.accounts_url.as_str(), "https://accounts.google.com/");
        assert_eq!(g.oauth_url.as_str(), "https://oauth2.googleapis.com/");
        assert_eq!(g.api_url.as_str(), "https://www.googleapis.com/");
    }

    #[test]
    fn half_a_client_bad_urls_and_a_missing_client_in_production_are_named() {
        let m = map(&[("GOOGLE_CLIENT_ID", "id"), ("GOOGLE_API_URL", "not a url")]);
        let mut v = Vars::new(&m);
        parse(&mut v, true);
        assert_eq!(
            v.into_problems(),
            vec![
                "GOOGLE_API_URL must be an absolute http(s) URL, not `not a url`".to_string(),
                "GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET must be set together".to_string(),
                "GOOGLE_CLIENT_SECRET must be set explicitly in production".to_string(),
            ]
        );
    }
}
