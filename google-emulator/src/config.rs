//! Emulator options. Behaviours the reference marks [unverified] are switches here.

/// How repeated `privateExtendedProperty` / `sharedExtendedProperty` filters combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExtPropMatch {
    /// Every constraint must match (the API reference).
    #[default]
    All,
    /// Any constraint may match (the extended-properties guide).
    Any,
}

impl std::str::FromStr for ExtPropMatch {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "all" | "and" => Ok(Self::All),
            "any" | "or" => Ok(Self::Any),
            other => Err(format!("expected all|any, got {other}")),
        }
    }
}

/// The length of Google's quota windows: a minute.
pub const GOOGLE_QUOTA_WINDOW_MS: u64 = 60_000;

/// Every option of the emulator. `Default` gives Google's documented behaviour.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// When set, only this OAuth client id is accepted.
    pub client_id: Option<String>,
    /// When set, only this OAuth client secret is accepted.
    pub client_secret: Option<String>,
    /// Allowed redirect URIs; empty accepts any.
    pub redirect_uris: Vec<String>,
    /// Lifetime of access tokens, in seconds.
    pub access_token_ttl_secs: u64,
    /// Cap on push channel lifetimes, in seconds.
    pub max_channel_ttl_secs: u64,
    /// Largest number of parts accepted in one batch request.
    pub max_batch_parts: usize,
    /// When set, the authorization endpoint consents as this account when no `login_hint` is given;
    /// unset (the default), it shows the account chooser, as Google does.
    pub default_account_email: Option<String>,
    /// How repeated extended-property filters combine.
    pub ext_prop_match: ExtPropMatch,
    /// `reason` of the 410 answered when deleting an already deleted event.
    pub delete_deleted_reason: String,
    /// Whether batch response `Content-ID`s are wrapped in angle brackets.
    pub batch_content_id_brackets: bool,
    /// When set, list pages hold at most this many items whatever `maxResults` says.
    pub page_size_cap: Option<usize>,
    /// Whether OAuth scopes are checked on Calendar API calls.
    pub enforce_scopes: bool,
    /// Whether `If-None-Match` on a GET answers 304 when the etag matches.
    pub if_none_match_not_modified: bool,
    /// Whether a refresh token is only issued on the first offline consent of a
    /// client (or with `prompt=consent`), as Google does.
    pub refresh_token_only_on_first_consent: bool,
    /// Whether `syncToken` combined with `showDeleted=false` is refused with 400.
    pub sync_token_rejects_show_deleted_false: bool,
    /// Largest number of instances produced for one recurring event in one list.
    pub max_expanded_instances: usize,
    /// How many times a push notification is retried after a 5xx or a transport error.
    pub push_retries: u32,
    /// First retry delay of push notifications, in milliseconds (doubles each time).
    pub push_retry_base_ms: u64,
    /// How many request log entries are kept.
    pub request_log_limit: usize,
    /// When set, `updatedMin` older than this many days answers 410 updatedMinTooLongAgo.
    pub updated_min_max_age_days: Option<u64>,
    /// Calendar API requests one user may make in any 60 s (batch parts counted); 0 = no limit.
    pub quota_per_user_per_minute: u64,
    /// Calendar API requests the whole project may make in any 60 s; 0 = no limit.
    pub quota_per_project_per_minute: u64,
    /// Status of a per-project refusal: 403 (the default) or 429, Google answers with both.
    pub quota_project_status: u16,
    /// Length of the quota windows in milliseconds: Google's minute, unless a test shortens it (the
    /// per-minute limits then apply per window).
    pub quota_window_ms: u64,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            client_id: None,
            client_secret: None,
            redirect_uris: Vec::new(),
            access_token_ttl_secs: 3599,
            max_channel_ttl_secs: 604_800,
            max_batch_parts: 1000,
            default_account_email: None,
            ext_prop_match: ExtPropMatch::All,
            delete_deleted_reason: "deleted".to_owned(),
            batch_content_id_brackets: true,
            page_size_cap: None,
            enforce_scopes: true,
            if_none_match_not_modified: true,
            refresh_token_only_on_first_consent: false,
            sync_token_rejects_show_deleted_false: false,
            max_expanded_instances: 2500,
            push_retries: 3,
            push_retry_base_ms: 100,
            request_log_limit: 10_000,
            updated_min_max_age_days: None,
            quota_per_user_per_minute: 600,
            quota_per_project_per_minute: 10_000,
            quota_project_status: 403,
            quota_window_ms: GOOGLE_QUOTA_WINDOW_MS,
        }
    }
}

impl EmulatorConfig {
    /// Google's documented behaviour without request quotas: for test suites and benchmarks
    /// that measure something other than pacing.
    pub fn without_quotas() -> Self {
        Self {
            quota_per_user_per_minute: 0,
            quota_per_project_per_minute: 0,
            ..Self::default()
        }
    }
}
