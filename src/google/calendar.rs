//! The Google Calendar API v3 client: calendar list, event listing (full and incremental), event writes,
//! push channels and batches.
//!
//! Every method takes a [`GoogleCall`]: the account (for the per-account concurrency limit), its access
//! token and a [`CallCounter`] that counts every HTTP request sent (retries included; a batch counts once).
//! Failures are retried per [`RetryPolicy`]; what is left is a [`GoogleError`]. Domain code calls through
//! [`super::GoogleAccount`], which adds the token (and its refresh); the batch wire format is in
//! [`super::batch`].

use std::{
    collections::HashMap,
    fmt,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::{
    Method,
    header::{CONTENT_TYPE, IF_MATCH},
};
use serde::{Serialize, de::DeserializeOwned};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use url::Url;
use uuid::Uuid;

use crate::crypto::{ExposeSecret, SecretString};

use super::{
    batch::{self, BatchRequest, BatchResponse, EncodedPart, EventChange, multipart_body},
    error::GoogleError,
    models::{CalendarListEntry, CalendarListPage, Channel, Event, EventsPage},
    pacing::{Pacer, Priority},
    retry::{AttemptError, Backoff, Failure, RetryPolicy},
    transport::{self, RawResponse},
};

/// Google's practical batch size (1000 are allowed; quotas favour 50).
pub const MAX_BATCH_SIZE: usize = 50;
/// Guard against a server that never stops paging.
const MAX_PAGES: usize = 10_000;

/// Counts HTTP requests sent to Google (each retry counts; a batch counts once), and the requests (batch
/// parts counted) Google refused as over a rate limit. Clones share the counts.
#[derive(Debug, Clone, Default)]
pub struct CallCounter {
    calls: Arc<AtomicU64>,
    rate_limited: Arc<AtomicU64>,
}

impl CallCounter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Requests refused with a rate-limit answer (429, 403 `rateLimitExceeded`/`userRateLimitExceeded`).
    pub fn rate_limited(&self) -> u64 {
        self.rate_limited.load(Ordering::Relaxed)
    }

    pub(super) fn increment(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    fn add_rate_limited(&self, count: u64) {
        self.rate_limited.fetch_add(count, Ordering::Relaxed);
    }
}

/// Who is calling: the account (for its concurrency limit and its quota), its access token, the request
/// counter, and whether a person is waiting. Domain code does not build these: [`super::GoogleAccount`]
/// does, with a fresh token.
#[derive(Clone)]
pub struct GoogleCall {
    pub account_id: Uuid,
    pub access_token: SecretString,
    pub counter: CallCounter,
    pub priority: Priority,
}

impl GoogleCall {
    pub fn new(account_id: Uuid, access_token: &SecretString, counter: &CallCounter) -> Self {
        Self {
            account_id,
            access_token: access_token.clone(),
            counter: counter.clone(),
            priority: Priority::Background,
        }
    }

    pub fn with_priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }
}

impl fmt::Debug for GoogleCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GoogleCall")
            .field("account_id", &self.account_id)
            .field("access_token", &self.access_token)
            .finish_non_exhaustive()
    }
}

/// Client settings.
#[derive(Debug, Clone)]
pub struct CalendarClientOptions {
    pub retry: RetryPolicy,
    /// Per HTTP request, body included.
    pub timeout: Duration,
    /// HTTP requests in flight per Google account.
    pub max_concurrent_per_account: usize,
    /// Requests per batch HTTP request (at most [`MAX_BATCH_SIZE`]).
    pub batch_size: usize,
}

impl Default for CalendarClientOptions {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(30),
            max_concurrent_per_account: 4,
            batch_size: MAX_BATCH_SIZE,
        }
    }
}

/// Options of a full listing; an incremental listing uses a sync token instead.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListEvents {
    /// Set: incremental listing. `time_min`, `time_max`, `show_deleted` and `private_extended_properties`
    /// are then not sent (Google refuses them with a sync token; deleted entries are always included).
    pub sync_token: Option<String>,
    /// Exclusive lower bound on the event's end.
    pub time_min: Option<DateTime<Utc>>,
    /// Exclusive upper bound on the event's start.
    pub time_max: Option<DateTime<Utc>>,
    pub show_deleted: Option<bool>,
    /// Must be the same for a full listing and the incremental ones that follow it.
    pub single_events: Option<bool>,
    /// Page size (1..=2500); Google's default is 250.
    pub max_results: Option<u32>,
    /// `(name, value)` pairs, all of which must match.
    pub private_extended_properties: Vec<(String, String)>,
}

impl ListEvents {
    /// A full listing with Google's defaults.
    pub fn full() -> Self {
        Self::default()
    }

    /// The changes since `sync_token`.
    pub fn incremental(sync_token: impl Into<String>) -> Self {
        Self {
            sync_token: Some(sync_token.into()),
            ..Self::default()
        }
    }

    fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        if let Some(token) = &self.sync_token {
            q.push(("syncToken", token.clone()));
        } else {
            if let Some(t) = self.time_min {
                q.push(("timeMin", t.to_rfc3339_opts(SecondsFormat::Secs, true)));
            }
            if let Some(t) = self.time_max {
                q.push(("timeMax", t.to_rfc3339_opts(SecondsFormat::Secs, true)));
            }
            if let Some(b) = self.show_deleted {
                q.push(("showDeleted", b.to_string()));
            }
            for (name, value) in &self.private_extended_properties {
                q.push(("privateExtendedProperty", format!("{name}={value}")));
            }
        }
        if let Some(b) = self.single_events {
            q.push(("singleEvents", b.to_string()));
        }
        if let Some(n) = self.max_results {
            q.push(("maxResults", n.clamp(1, 2500).to_string()));
        }
        q
    }
}

/// Every page of an event listing, merged.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventsListing {
    pub items: Vec<Event>,
    /// From the last page: the token for the next incremental listing.
    pub next_sync_token: Option<String>,
    pub time_zone: Option<String>,
    pub access_role: Option<String>,
}

/// Every page of the calendar list, merged.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CalendarListing {
    pub items: Vec<CalendarListEntry>,
    pub next_sync_token: Option<String>,
}

/// What a delete did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// 204: deleted now.
    Deleted,
    /// 410: it was already deleted (for example by an earlier attempt whose answer was lost).
    AlreadyDeleted,
}

/// A push channel to open on a calendar's events.
#[derive(Debug, Clone)]
pub struct WatchRequest {
    /// At most 64 characters; a UUID fits.
    pub channel_id: String,
    /// The HTTPS webhook address.
    pub address: String,
    /// Echoed in `X-Goog-Channel-Token` on every notification.
    pub token: Option<String>,
    /// Requested lifetime; Google may shorten it (trust the answer's `expiration`).
    pub ttl: Option<Duration>,
}

/// One request to send, fully built.
struct Spec {
    /// The API method (`events.list`…): the `method` label of `chronos_google_requests_total`.
    api: &'static str,
    method: Method,
    url: Url,
    if_match: Option<String>,
    body: Option<Bytes>,
    /// A 410 means "full sync required".
    listing: bool,
}

/// The Calendar API client: cheap to clone, clones share the per-account limits.
#[derive(Clone)]
pub struct CalendarClient {
    http: reqwest::Client,
    api_url: Url,
    options: CalendarClientOptions,
    limits: Arc<Mutex<HashMap<Uuid, Arc<Semaphore>>>>,
    pacer: Arc<Pacer>,
}

impl fmt::Debug for CalendarClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CalendarClient")
            .field("api_url", &self.api_url.as_str())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl CalendarClient {
    /// `api_url` is Google's API root (`https://www.googleapis.com`) or the emulator's base URL.
    pub fn new(api_url: &Url, options: CalendarClientOptions) -> Result<Self, GoogleError> {
        if api_url.cannot_be_a_base() {
            return Err(GoogleError::Config(format!("{api_url} cannot be a base URL")));
        }
        let options = CalendarClientOptions {
            batch_size: options.batch_size.clamp(1, MAX_BATCH_SIZE),
            max_concurrent_per_account: options.max_concurrent_per_account.max(1),
            ..options
        };
        Ok(Self {
            http: transport::http_client(options.timeout)?,
            api_url: api_url.clone(),
            options,
            limits: Arc::default(),
            pacer: Arc::new(Pacer::unpaced()),
        })
    }

    /// Paces every request with `pacer` (Google's quotas); without it requests go as fast as the
    /// concurrency limit allows.
    pub fn paced(mut self, pacer: Pacer) -> Self {
        self.pacer = Arc::new(pacer);
        self
    }

    pub fn options(&self) -> &CalendarClientOptions {
        &self.options
    }

    // ---------------------------------------------------------------------------------------------
    // Calendar list
    // ---------------------------------------------------------------------------------------------

    /// Every calendar of the account (hidden ones included), or the changes since `sync_token` (deleted
    /// entries then carry `deleted: true`). A stale token gives [`GoogleError::FullSyncRequired`].
    pub async fn calendar_list(
        &self,
        call: &GoogleCall,
        sync_token: Option<&str>,
    ) -> Result<CalendarListing, GoogleError> {
        let mut query: Vec<(&str, String)> = vec![("maxResults", "250".into())];
        match sync_token {
            Some(token) => query.push(("syncToken", token.to_owned())),
            None => query.push(("showHidden", "true".into())),
        }
        let mut listing = CalendarListing::default();
        self.paginate(
            call,
            "calendarList.list",
            &["users", "me", "calendarList"],
            &query,
            |page: CalendarListPage| {
                listing.items.extend(page.items);
                listing.next_sync_token = page.next_sync_token;
                page.next_page_token
            },
        )
        .await?;
        Ok(listing)
    }

    // ---------------------------------------------------------------------------------------------
    // Events
    // ---------------------------------------------------------------------------------------------

    /// Lists events following every page (a page may be short or empty while more follow). The sync token
    /// is taken from the last page only. A stale sync token gives [`GoogleError::FullSyncRequired`].
    pub async fn list_events(
        &self,
        call: &GoogleCall,
        calendar_id: &str,
        params: &ListEvents,
    ) -> Result<EventsListing, GoogleError> {
        let query = params.query();
        let mut listing = EventsListing::default();
        self.paginate(
            call,
            "events.list",
            &["calendars", calendar_id, "events"],
            &query,
            |page: EventsPage| {
                listing.items.extend(page.items);
                listing.next_sync_token = page.next_sync_token;
                listing.time_zone = page.time_zone.or(listing.time_zone.take());
                listing.access_role = page.access_role.or(listing.access_role.take());
                page.next_page_token
            },
        )
        .await?;
        Ok(listing)
    }

    pub async fn get_event(
        &self,
        call: &GoogleCall,
        calendar_id: &str,
        event_id: &str,
    ) -> Result<Event, GoogleError> {
        let url = self.calendar_url(&["calendars", calendar_id, "events", event_id], &[])?;
        let raw = self
            .execute(call, Spec::new("events.get", Method::GET, url))
            .await?;
        parse(&raw, "event")
    }

    /// Inserts an event (`sendUpdates=none`). With a client-chosen `id`, a 409 ([`GoogleError::Duplicate`])
    /// means an event with that id exists (possibly from an earlier attempt whose answer was lost).
    pub async fn insert_event(
        &self,
        call: &GoogleCall,
        calendar_id: &str,
        event: &Event,
    ) -> Result<Event, GoogleError> {
        let url = self.calendar_url(&["calendars", calendar_id, "events"], &[("sendUpdates", "none")])?;
        let raw = self
            .execute(call, Spec::new("events.insert", Method::POST, url).json(event)?)
            .await?;
        parse(&raw, "event")
    }

    /// Replaces or patches an event ([`EventChange`]). With `if_match`, a stale etag gives
    /// [`GoogleError::PreconditionFailed`].
    pub async fn change_event(
        &self,
        call: &GoogleCall,
        calendar_id: &str,
        event_id: &str,
        change: EventChange<'_>,
        if_match: Option<&str>,
    ) -> Result<Event, GoogleError> {
        let url = self.calendar_url(
            &["calendars", calendar_id, "events", event_id],
            &[("sendUpdates", "none")],
        )?;
        let api = if change.method() == Method::PATCH {
            "events.patch"
        } else {
            "events.update"
        };
        let spec = Spec::new(api, change.method(), url)
            .json(&change.body()?)?
            .if_match(if_match);
        let raw = self.execute(call, spec).await?;
        parse(&raw, "event")
    }

    /// Deletes an event. Already deleted (410) is [`DeleteOutcome::AlreadyDeleted`], not an error; an
    /// unknown id stays [`GoogleError::NotFound`].
    pub async fn delete_event(
        &self,
        call: &GoogleCall,
        calendar_id: &str,
        event_id: &str,
    ) -> Result<DeleteOutcome, GoogleError> {
        let url = self.calendar_url(
            &["calendars", calendar_id, "events", event_id],
            &[("sendUpdates", "none")],
        )?;
        match self
            .execute(call, Spec::new("events.delete", Method::DELETE, url))
            .await
        {
            Ok(_) => Ok(DeleteOutcome::Deleted),
            Err(GoogleError::Gone) => Ok(DeleteOutcome::AlreadyDeleted),
            Err(e) => Err(e),
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Push channels
    // ---------------------------------------------------------------------------------------------

    /// Opens a push channel on a calendar's events (`events.watch`).
    pub async fn watch_events(
        &self,
        call: &GoogleCall,
        calendar_id: &str,
        request: &WatchRequest,
    ) -> Result<Channel, GoogleError> {
        let url = self.calendar_url(&["calendars", calendar_id, "events", "watch"], &[])?;
        let body = Channel {
            id: request.channel_id.clone(),
            kind: Some("web_hook".into()),
            address: Some(request.address.clone()),
            token: request.token.clone(),
            params: request
                .ttl
                .map(|ttl| [("ttl".to_owned(), ttl.as_secs().to_string())].into()),
            ..Channel::default()
        };
        let raw = self
            .execute(call, Spec::new("events.watch", Method::POST, url).json(&body)?)
            .await?;
        parse(&raw, "channel")
    }

    /// Stops a push channel (`channels.stop`). Notifications may still arrive for a short while.
    pub async fn stop_channel(
        &self,
        call: &GoogleCall,
        channel_id: &str,
        resource_id: &str,
    ) -> Result<(), GoogleError> {
        let url = self.calendar_url(&["channels", "stop"], &[])?;
        let body = serde_json::json!({"id": channel_id, "resourceId": resource_id});
        self.execute(call, Spec::new("channels.stop", Method::POST, url).json(&body)?)
            .await?;
        Ok(())
    }

    // ---------------------------------------------------------------------------------------------
    // Batch
    // ---------------------------------------------------------------------------------------------

    /// Sends `requests` in batches of at most [`CalendarClientOptions::batch_size`] (50) and returns one
    /// result per request, in order. `Ok` holds a 2xx answer; `Err` is the part's error (a 409 on an insert
    /// with a client id, a 410 on a delete: the caller decides whether that is success).
    ///
    /// Failed parts that may succeed later (429, 403 rate limits, 5xx) are sent again, alone, in a follow-up
    /// batch after a backoff; a failure of the whole batch request (5xx, timeout, dropped connection) sends
    /// the chunk again. The retry budget restarts whenever a round makes progress, so a chunk is bounded by
    /// its size plus `max_retries` rounds. Once a batch is refused with 401, the remaining chunks are not
    /// sent and all their requests answer [`GoogleError::Unauthorized`].
    pub async fn batch(
        &self,
        call: &GoogleCall,
        requests: &[BatchRequest],
    ) -> Vec<Result<BatchResponse, GoogleError>> {
        let mut results: Vec<Option<Result<BatchResponse, GoogleError>>> = vec![None; requests.len()];
        let indices: Vec<usize> = (0..requests.len()).collect();
        let mut unauthorized = false;
        let mut rest: &[usize] = &indices;
        while !rest.is_empty() {
            if unauthorized {
                for &i in rest {
                    results[i] = Some(Err(GoogleError::Unauthorized));
                }
                break;
            }
            // Each batch carries what the account's quota window has room for now (at most a batch).
            let size = self
                .pacer
                .room(
                    call.account_id,
                    self.options.batch_size.min(rest.len()),
                    call.priority,
                )
                .await;
            let (chunk, later) = rest.split_at(size.min(rest.len()));
            rest = later;
            self.batch_chunk(call, requests, chunk, &mut results).await;
            unauthorized = chunk
                .iter()
                .all(|&i| matches!(results[i], Some(Err(GoogleError::Unauthorized))));
        }
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| Err(GoogleError::InvalidResponse("no answer for a batch part".into())))
            })
            .collect()
    }

    async fn batch_chunk(
        &self,
        call: &GoogleCall,
        requests: &[BatchRequest],
        chunk: &[usize],
        results: &mut [Option<Result<BatchResponse, GoogleError>>],
    ) {
        let mut pending: Vec<usize> = Vec::with_capacity(chunk.len());
        let mut encoded: HashMap<usize, EncodedPart> = HashMap::with_capacity(chunk.len());
        for &i in chunk {
            match self.encode_part(&requests[i]) {
                Ok(part) => {
                    encoded.insert(i, part);
                    pending.push(i);
                }
                Err(e) => results[i] = Some(Err(e)),
            }
        }
        let batch_url = match self.api_endpoint(&["batch", "calendar", "v3"], &[]) {
            Ok(url) => url,
            Err(e) => {
                for i in pending {
                    results[i] = Some(Err(e.clone()));
                }
                return;
            }
        };
        let mut backoff = Backoff::new(&self.options.retry);
        while !pending.is_empty() {
            let round = self.batch_round(call, &batch_url, &pending, &encoded).await;
            let before = pending.len();
            let mut again = Vec::new();
            let mut failure = None;
            let mut retry_after: Option<Duration> = None;
            for (i, outcome) in round {
                match outcome {
                    Ok(response) => results[i] = Some(Ok(response)),
                    Err(attempt) if attempt.failure.is_retryable() => {
                        retry_after = match (retry_after, attempt.retry_after) {
                            (Some(a), Some(b)) => Some(a.max(b)),
                            (a, b) => a.or(b),
                        };
                        failure.get_or_insert(attempt.failure.clone());
                        results[i] = Some(Err(attempt.error));
                        again.push(i);
                    }
                    Err(attempt) => results[i] = Some(Err(attempt.error)),
                }
            }
            if again.is_empty() {
                return;
            }
            if again.len() < before {
                backoff.reset();
            }
            let failure = failure.unwrap_or(Failure::Connection);
            if !backoff.wait(&failure, retry_after).await {
                return;
            }
            tracing::debug!(parts = again.len(), "retrying failed batch parts");
            pending = again;
        }
    }

    /// Sends one batch HTTP request for `pending` and returns an outcome per pending index.
    async fn batch_round(
        &self,
        call: &GoogleCall,
        url: &Url,
        pending: &[usize],
        encoded: &HashMap<usize, EncodedPart>,
    ) -> Vec<(usize, Result<BatchResponse, AttemptError<GoogleError>>)> {
        let parts: Vec<(usize, &EncodedPart)> = pending
            .iter()
            .filter_map(|&i| encoded.get(&i).map(|p| (i, p)))
            .collect();
        let (boundary, body) = multipart_body(&parts);
        let whole = |attempt: AttemptError<GoogleError>| -> Vec<(usize, Result<BatchResponse, AttemptError<GoogleError>>)> {
            pending
                .iter()
                .map(|&i| {
                    (
                        i,
                        Err(AttemptError {
                            error: attempt.error.clone(),
                            failure: attempt.failure.clone(),
                            retry_after: attempt.retry_after,
                        }),
                    )
                })
                .collect()
        };
        let cost = u32::try_from(parts.len()).unwrap_or(u32::MAX);
        self.pacer.admit(call.account_id, cost, call.priority).await;
        let raw = {
            let _permit = self.permit(call.account_id).await;
            call.counter.increment();
            let request = self
                .http
                .post(url.clone())
                .bearer_auth(call.access_token.expose_secret())
                .header(CONTENT_TYPE, format!("multipart/mixed; boundary={boundary}"))
                .body(body);
            transport::send_once("batch", request).await
        };
        let raw = match raw.and_then(|raw| transport::check_status(raw, false)) {
            Ok(raw) => raw,
            Err(attempt) => {
                if attempt.failure.is_rate_limit() {
                    self.paced_outcome(call, 0, pending.len());
                }
                return whole(attempt);
            }
        };
        let Some(boundary) = raw
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(batch::boundary_of)
        else {
            return whole(AttemptError::permanent(GoogleError::InvalidResponse(
                "batch response is not multipart/mixed".into(),
            )));
        };
        let parts = match batch::decode(raw.body, &boundary).await {
            Ok(parts) => parts,
            Err(e) => return whole(AttemptError::permanent(e)),
        };
        let outcomes: Vec<_> = batch::match_parts(pending, parts)
            .into_iter()
            .map(|(i, part)| {
                let outcome = match part {
                    // Lost in transit, as far as this client can tell: worth sending again.
                    None => Err(AttemptError {
                        error: GoogleError::InvalidResponse("batch response is missing a part".into()),
                        failure: Failure::Connection,
                        retry_after: None,
                    }),
                    Some(Err(why)) => Err(AttemptError::permanent(GoogleError::InvalidResponse(why))),
                    Some(Ok(part)) if part.is_success() => Ok(part.into_batch_response()),
                    Some(Ok(part)) => {
                        let listing = encoded.get(&i).is_some_and(|p| p.listing);
                        Err(transport::status_error(
                            part.status,
                            &part.headers,
                            &part.body,
                            listing,
                        ))
                    }
                };
                (i, outcome)
            })
            .collect();
        let refused = outcomes
            .iter()
            .filter(|(_, outcome)| matches!(outcome, Err(attempt) if attempt.failure.is_rate_limit()))
            .count();
        self.paced_outcome(call, outcomes.len() - refused, refused);
        outcomes
    }

    /// Tells the pacer how a call went: rate-limit answers slow the account down, successes speed it up.
    fn paced_outcome(&self, call: &GoogleCall, succeeded: usize, rate_limited: usize) {
        if rate_limited > 0 {
            call.counter.add_rate_limited(rate_limited as u64);
            self.pacer.rate_limited(call.account_id);
        }
        if succeeded > 0 {
            self.pacer
                .succeeded(call.account_id, u32::try_from(succeeded).unwrap_or(u32::MAX));
        }
    }

    /// One request of a batch, serialised with its full path under this client's API root.
    fn encode_part(&self, request: &BatchRequest) -> Result<EncodedPart, GoogleError> {
        let mut segments: Vec<&str> = vec!["calendar", "v3"];
        segments.extend(request.segments.iter().map(String::as_str));
        let query: Vec<(&str, &str)> = request
            .query
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        batch::encode(request, &self.api_endpoint(&segments, &query)?)
    }

    // ---------------------------------------------------------------------------------------------
    // Plumbing
    // ---------------------------------------------------------------------------------------------

    fn api_endpoint(&self, segments: &[&str], query: &[(&str, &str)]) -> Result<Url, GoogleError> {
        let mut url = self.api_url.clone();
        url.path_segments_mut()
            .map_err(|()| GoogleError::Config("the Google API URL cannot be a base".into()))?
            .pop_if_empty()
            .extend(segments);
        url.set_query(None);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    fn calendar_url(&self, segments: &[&str], query: &[(&str, &str)]) -> Result<Url, GoogleError> {
        let mut all: Vec<&str> = vec!["calendar", "v3"];
        all.extend_from_slice(segments);
        self.api_endpoint(&all, query)
    }

    async fn paginate<P, F>(
        &self,
        call: &GoogleCall,
        api: &'static str,
        segments: &[&str],
        query: &[(&str, String)],
        mut on_page: F,
    ) -> Result<(), GoogleError>
    where
        P: DeserializeOwned,
        F: FnMut(P) -> Option<String>,
    {
        let base: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut page_token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut q = base.clone();
            if let Some(token) = page_token.as_deref() {
                q.push(("pageToken", token));
            }
            let url = self.calendar_url(segments, &q)?;
            let raw = self
                .execute(call, Spec::new(api, Method::GET, url).listing())
                .await?;
            let page: P = parse(&raw, "list page")?;
            match on_page(page) {
                Some(next) if page_token.as_deref() == Some(next.as_str()) => {
                    return Err(GoogleError::InvalidResponse(
                        "the page token did not advance".into(),
                    ));
                }
                Some(next) => page_token = Some(next),
                None => return Ok(()),
            }
        }
        Err(GoogleError::InvalidResponse("too many pages".into()))
    }

    /// One request with retries; each attempt holds a per-account permit and is counted.
    async fn execute(&self, call: &GoogleCall, spec: Spec) -> Result<RawResponse, GoogleError> {
        let mut backoff = Backoff::new(&self.options.retry);
        loop {
            self.pacer.admit(call.account_id, 1, call.priority).await;
            let attempt = {
                let _permit = self.permit(call.account_id).await;
                call.counter.increment();
                let mut request = self
                    .http
                    .request(spec.method.clone(), spec.url.clone())
                    .bearer_auth(call.access_token.expose_secret());
                if let Some(etag) = &spec.if_match {
                    request = request.header(IF_MATCH, etag);
                }
                if let Some(body) = &spec.body {
                    request = request
                        .header(CONTENT_TYPE, "application/json")
                        .body(body.clone());
                } else if matches!(spec.method, Method::POST | Method::PUT | Method::PATCH) {
                    request = request.header(reqwest::header::CONTENT_LENGTH, "0");
                }
                match transport::send_once(spec.api, request).await {
                    Ok(raw) => transport::check_status(raw, spec.listing),
                    Err(e) => Err(e),
                }
            };
            match &attempt {
                Ok(_) => self.paced_outcome(call, 1, 0),
                Err(e) if e.failure.is_rate_limit() => self.paced_outcome(call, 0, 1),
                Err(_) => {}
            }
            match attempt {
                Ok(raw) => return Ok(raw),
                Err(e) if backoff.wait(&e.failure, e.retry_after).await => continue,
                Err(e) => return Err(e.error),
            }
        }
    }

    async fn permit(&self, account_id: Uuid) -> Option<OwnedSemaphorePermit> {
        let semaphore = {
            let mut limits = self.limits.lock().unwrap_or_else(PoisonError::into_inner);
            if limits.len() > 10_000 {
                // Forget idle accounts; their semaphores are recreated on demand.
                let max = self.options.max_concurrent_per_account;
                limits.retain(|_, s| Arc::strong_count(s) > 1 || s.available_permits() < max);
            }
            limits
                .entry(account_id)
                .or_insert_with(|| Arc::new(Semaphore::new(self.options.max_concurrent_per_account)))
                .clone()
        };
        semaphore.acquire_owned().await.ok()
    }
}

impl Spec {
    fn new(api: &'static str, method: Method, url: Url) -> Self {
        Self {
            api,
            method,
            url,
            if_match: None,
            body: None,
            listing: false,
        }
    }

    fn json(mut self, body: &impl Serialize) -> Result<Self, GoogleError> {
        let bytes = serde_json::to_vec(body)
            .map_err(|_| GoogleError::InvalidResponse("request body is not JSON".into()))?;
        self.body = Some(Bytes::from(bytes));
        Ok(self)
    }

    fn if_match(mut self, etag: Option<&str>) -> Self {
        self.if_match = etag.map(str::to_owned);
        self
    }

    fn listing(mut self) -> Self {
        self.listing = true;
        self
    }
}

fn parse<T: DeserializeOwned>(raw: &RawResponse, what: &str) -> Result<T, GoogleError> {
    serde_json::from_slice(&raw.body)
        .map_err(|_| GoogleError::InvalidResponse(format!("{what} is not valid JSON")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base: &str) -> CalendarClient {
        CalendarClient::new(&Url::parse(base).unwrap(), CalendarClientOptions::default()).unwrap()
    }

    #[test]
    fn urls_encode_ids_and_keep_a_base_path() {
        let c = client("https://www.googleapis.com");
        let url = c
            .calendar_url(
                &[
                    "calendars",
                    "en.usa#holiday@group.v.calendar.google.com",
                    "events",
                    "a/b c",
                ],
                &[("sendUpdates", "none")],
            )
            .unwrap();
        assert_eq!(
            url.as_str(),
            "https://www.googleapis.com/calendar/v3/calendars/en.usa%23holiday@group.v.calendar.google.com/events/a%2Fb%20c?sendUpdates=none"
        );
        let c = client("http://127.0.0.1:9/google/");
        assert_eq!(
            c.api_endpoint(&["batch", "calendar", "v3"], &[])
                .unwrap()
                .as_str(),
            "http://127.0.0.1:9/google/batch/calendar/v3"
        );
    }

    #[test]
    fn incremental_listings_send_only_what_a_sync_token_allows() {
        let full = ListEvents {
            time_min: Some(DateTime::from_timestamp(0, 0).unwrap()),
            show_deleted: Some(true),
            single_events: Some(true),
            max_results: Some(9999),
            private_extended_properties: vec![("chronos".into(), "1".into())],
            ..ListEvents::full()
        };
        let q = full.query();
        assert!(q.contains(&("timeMin", "1970-01-01T00:00:00Z".into())));
        assert!(q.contains(&("privateExtendedProperty", "chronos=1".into())));
        assert!(q.contains(&("maxResults", "2500".into())));
        let incremental = ListEvents {
            sync_token: Some("tok".into()),
            ..full
        };
        let q = incremental.query();
        assert_eq!(
            q,
            vec![
                ("syncToken", "tok".to_owned()),
                ("singleEvents", "true".to_owned()),
                ("maxResults", "2500".to_owned())
            ]
        );
    }

    #[test]
    fn batch_parts_carry_the_full_path_under_the_api_root() {
        let c = client("http://127.0.0.1:9/google");
        let part = c.encode_part(&BatchRequest::delete_event("a b", "e")).unwrap();
        assert!(part.head.starts_with(
            "DELETE /google/calendar/v3/calendars/a%20b/events/e?sendUpdates=none HTTP/1.1\r\n"
        ));
    }

    #[test]
    fn call_counters_are_shared_by_clones() {
        let counter = CallCounter::new();
        let clone = counter.clone();
        clone.increment();
        counter.increment();
        assert_eq!(counter.get(), 2);
        let token = SecretString::from("ya29.secret");
        let call = GoogleCall::new(Uuid::nil(), &token, &counter);
        assert!(!format!("{call:?}").contains("ya29"));
    }
}
