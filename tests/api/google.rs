//! The Google service layer against the in-process emulator: OAuth, incremental listing, retries under
//! injected faults, batching, and single-flight token refresh.

use std::{
    collections::{BTreeMap, HashSet},
    time::Duration,
};

use chrono::Utc;
use chronos::{
    crypto::{Cipher, ExposeSecret, KeyRing, SecretString},
    entities::{enums::AccountStatus, google_accounts, users},
    google::{
        AccessTokens, BatchRequest, CalendarClient, CalendarClientOptions, CallCounter, DeleteOutcome, Event,
        EventChange, EventDateTime, GoogleAccount, GoogleCall, GoogleError, ListEvents, OAuthClient,
        RetryPolicy, TokenSet, encrypt_tokens,
    },
};
use google_emulator::{Emulator, EmulatorConfig, RunningEmulator};
use migration::MigratorTrait;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, DatabaseConnection, EntityTrait};
use serde_json::{Value, json};
use url::Url;
use uuid::Uuid;

use crate::helpers::TestDatabase;

const REDIRECT: &str = "http://127.0.0.1:9/auth/google/callback";

fn fast_retry() -> RetryPolicy {
    RetryPolicy::with_base_delay(Duration::from_millis(5))
}

/// An emulator, the settings pointing at it, and a client for its control API.
struct Google {
    emu: RunningEmulator,
    settings: chronos::config::GoogleSettings,
    http: reqwest::Client,
}

impl Google {
    async fn start() -> Self {
        Self::start_with(EmulatorConfig::default()).await
    }

    async fn start_with(config: EmulatorConfig) -> Self {
        let emu = Emulator::spawn(config).await.expect("spawn emulator");
        let base = Url::parse(&emu.base_url()).expect("emulator URL");
        Self {
            settings: chronos::config::GoogleSettings::single_host(&base),
            emu,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
        }
    }

    fn oauth(&self) -> OAuthClient {
        OAuthClient::new(&self.settings)
            .expect("oauth client")
            .with_retry(fast_retry())
    }

    fn calendar(&self) -> CalendarClient {
        self.calendar_with(fast_retry())
    }

    fn calendar_with(&self, retry: RetryPolicy) -> CalendarClient {
        CalendarClient::new(
            &self.settings.api_url,
            CalendarClientOptions {
                retry,
                timeout: Duration::from_secs(10),
                ..CalendarClientOptions::default()
            },
        )
        .expect("calendar client")
    }

    /// Creates the account and returns a direct access token.
    fn account(&self, email: &str) -> SecretString {
        self.emu.emulator.create_account(email, Some("Test User"));
        SecretString::from(self.emu.emulator.issue_access_token(email).expect("token"))
    }

    async fn control(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let response = self
            .http
            .request(method, format!("{}{path}", self.emu.base_url()))
            .json(&body)
            .send()
            .await
            .expect("control API");
        assert!(response.status().is_success(), "{path}: {}", response.status());
        response.json().await.expect("control JSON")
    }

    async fn fault(&self, spec: Value) {
        self.control(reqwest::Method::POST, "/emulator/faults", spec)
            .await;
    }

    async fn stats(&self) -> Value {
        self.control(reqwest::Method::GET, "/emulator/stats", json!({}))
            .await
    }

    async fn route_count(&self, route: &str) -> u64 {
        self.stats().await["byRoute"][route].as_u64().unwrap_or(0)
    }

    /// Runs the consent flow as a browser would and exchanges the code.
    async fn sign_in(&self, oauth: &OAuthClient, email: &str) -> TokenSet {
        let request = oauth.authorize_url(REDIRECT, Some(email)).expect("authorize URL");
        let (code, _) = self.consent(&request.url).await;
        oauth
            .exchange_code(&code, &request.pkce_verifier, REDIRECT)
            .await
            .expect("exchange")
    }

    /// GETs the authorize URL without following the redirect; returns the code and the query of the Location.
    async fn consent(&self, url: &Url) -> (String, BTreeMap<String, String>) {
        let response = self.http.get(url.clone()).send().await.expect("authorize");
        assert_eq!(response.status(), reqwest::StatusCode::FOUND);
        let location = response.headers()["location"]
            .to_str()
            .expect("location")
            .to_owned();
        assert!(location.starts_with(REDIRECT), "{location}");
        let query: BTreeMap<String, String> = Url::parse(&location)
            .expect("location URL")
            .query_pairs()
            .into_owned()
            .collect();
        (query["code"].clone(), query)
    }
}

const ROUTE_TOKEN: &str = "POST /token";
const ROUTE_EVENTS: &str = "GET /calendar/v3/calendars/{calendarId}/events";

fn timed(id: &str, summary: &str, hour: u32) -> Event {
    let start = Utc::now()
        .date_naive()
        .and_hms_opt(hour % 24, 0, 0)
        .expect("time")
        .and_utc();
    Event {
        id: Some(id.to_owned()),
        summary: Some(summary.to_owned()),
        start: Some(EventDateTime::at(start, None)),
        end: Some(EventDateTime::at(start + chrono::Duration::minutes(30), None)),
        ..Event::default()
    }
}

/// Ids are base32hex (a-v, 0-9), as Google requires for client-supplied ids.
fn event_id(prefix: &str, n: usize) -> String {
    format!("{prefix}{n:05}")
}

// -------------------------------------------------------------------------------------------------
// (a) OAuth
// -------------------------------------------------------------------------------------------------

#[tokio::test]
async fn oauth_round_trip_with_pkce_userinfo_refresh_and_revoke() {
    let g = Google::start().await;
    g.emu
        .emulator
        .create_account("alice@example.com", Some("Alice Doe"));
    let oauth = g.oauth();

    let request = oauth
        .authorize_url(REDIRECT, Some("alice@example.com"))
        .expect("authorize URL");
    let (code, query) = g.consent(&request.url).await;
    assert_eq!(query["state"], request.state, "state comes back unchanged");

    // PKCE: the code is refused with another verifier, and stays usable with the right one.
    let wrong = oauth
        .exchange_code(&code, &SecretString::from("x".repeat(43).as_str()), REDIRECT)
        .await;
    assert_eq!(wrong.err(), Some(GoogleError::InvalidGrant));
    let tokens = oauth
        .exchange_code(&code, &request.pkce_verifier, REDIRECT)
        .await
        .expect("exchange");
    let refresh_token = tokens
        .refresh_token
        .clone()
        .expect("offline access gives a refresh token");
    assert!(tokens.has_calendar_scope(), "scopes: {:?}", tokens.granted_scopes);
    assert!(tokens.expires_at > Utc::now() + chrono::Duration::minutes(50));
    // A code is single-use.
    assert_eq!(
        oauth
            .exchange_code(&code, &request.pkce_verifier, REDIRECT)
            .await
            .err(),
        Some(GoogleError::InvalidGrant)
    );

    let info = oauth.userinfo(&tokens.access_token).await.expect("userinfo");
    assert!(!info.sub.is_empty());
    assert_eq!(info.email.as_deref(), Some("alice@example.com"));
    assert!(info.email_verified);
    assert_eq!(info.name.as_deref(), Some("Alice Doe"));

    let refreshed = oauth.refresh(&refresh_token).await.expect("refresh");
    assert_ne!(
        refreshed.access_token.expose_secret(),
        tokens.access_token.expose_secret()
    );
    assert_eq!(
        refreshed
            .refresh_token
            .as_ref()
            .map(|t| t.expose_secret().to_owned()),
        Some(refresh_token.expose_secret().to_owned()),
        "Google sends no new refresh token: the old one is kept"
    );
    let counter = CallCounter::new();
    let call = GoogleCall::new(Uuid::new_v4(), &refreshed.access_token, &counter);
    let calendars = g
        .calendar()
        .calendar_list(&call, None)
        .await
        .expect("calendar list");
    assert!(
        calendars
            .items
            .iter()
            .any(|c| c.primary && c.id == "alice@example.com")
    );

    oauth.revoke(&refresh_token).await.expect("revoke");
    assert_eq!(
        oauth.refresh(&refresh_token).await.err(),
        Some(GoogleError::InvalidGrant)
    );
    assert_eq!(
        oauth.userinfo(&refreshed.access_token).await.err(),
        Some(GoogleError::Unauthorized),
        "revoking the grant revokes its access tokens"
    );
    oauth
        .revoke(&refresh_token)
        .await
        .expect("revoking twice is not an error");
}

#[tokio::test]
async fn token_endpoint_failures_are_retried_but_invalid_grant_is_not() {
    let g = Google::start().await;
    let oauth = g.oauth();
    let tokens = g.sign_in(&oauth, "bob@example.com").await;
    let refresh_token = tokens.refresh_token.expect("refresh token");

    g.fault(json!({"path": "/token", "status": 503, "times": 2}))
        .await;
    let before = g.route_count(ROUTE_TOKEN).await;
    oauth
        .refresh(&refresh_token)
        .await
        .expect("refresh after two 503s");
    assert_eq!(g.route_count(ROUTE_TOKEN).await - before, 3);

    let before = g.route_count(ROUTE_TOKEN).await;
    let bogus = SecretString::from("1//not-a-token");
    assert_eq!(oauth.refresh(&bogus).await.err(), Some(GoogleError::InvalidGrant));
    assert_eq!(
        g.route_count(ROUTE_TOKEN).await - before,
        1,
        "invalid_grant is final"
    );
}

// -------------------------------------------------------------------------------------------------
// (b) incremental listing
// -------------------------------------------------------------------------------------------------

#[tokio::test]
async fn incremental_listing_returns_exactly_the_changes_in_one_request() {
    let g = Google::start().await;
    let token = g.account("carol@example.com");
    let client = g.calendar();
    let counter = CallCounter::new();
    let call = GoogleCall::new(Uuid::new_v4(), &token, &counter);
    let cal = "carol@example.com";

    for n in 0..5 {
        client
            .insert_event(
                &call,
                cal,
                &timed(&event_id("seed", n), &format!("seed {n}"), 8 + n as u32),
            )
            .await
            .expect("seed");
    }
    let full = client
        .list_events(&call, cal, &ListEvents::full())
        .await
        .expect("full listing");
    assert_eq!(full.items.len(), 5);
    let sync_token = full.next_sync_token.clone().expect("sync token");
    let mut state: BTreeMap<String, Event> = full
        .items
        .iter()
        .map(|e| (e.id.clone().expect("id"), e.clone()))
        .collect();

    // One insert, one update (with the current etag), one delete.
    let inserted = client
        .insert_event(&call, cal, &timed("added00001", "added", 15))
        .await
        .expect("insert");
    let target = state[&event_id("seed", 1)].clone();
    let mut changed = target.clone();
    changed.summary = Some("renamed".into());
    let updated = client
        .change_event(
            &call,
            cal,
            &event_id("seed", 1),
            EventChange::Replace(&changed),
            target.etag.as_deref(),
        )
        .await
        .expect("update");
    assert_eq!(updated.summary.as_deref(), Some("renamed"));
    assert_eq!(
        client
            .change_event(
                &call,
                cal,
                &event_id("seed", 1),
                EventChange::Replace(&changed),
                target.etag.as_deref(),
            )
            .await
            .err(),
        Some(GoogleError::PreconditionFailed),
        "a stale etag is refused"
    );
    assert_eq!(
        client.delete_event(&call, cal, &event_id("seed", 2)).await,
        Ok(DeleteOutcome::Deleted)
    );
    assert_eq!(
        client.delete_event(&call, cal, &event_id("seed", 2)).await,
        Ok(DeleteOutcome::AlreadyDeleted)
    );
    assert_eq!(
        client.delete_event(&call, cal, "missing0001").await,
        Err(GoogleError::NotFound)
    );

    let calls_before = counter.get();
    let lists_before = g.route_count(ROUTE_EVENTS).await;
    let incremental = client
        .list_events(&call, cal, &ListEvents::incremental(&sync_token))
        .await
        .expect("incremental listing");
    assert_eq!(counter.get() - calls_before, 1, "one request (client count)");
    assert_eq!(
        g.route_count(ROUTE_EVENTS).await - lists_before,
        1,
        "one request (emulator count)"
    );

    let by_id: BTreeMap<&str, &Event> = incremental
        .items
        .iter()
        .map(|e| (e.id.as_deref().expect("id"), e))
        .collect();
    assert_eq!(
        incremental.items.len(),
        3,
        "exactly the three changes: {:?}",
        by_id.keys()
    );
    assert_eq!(by_id["added00001"].summary.as_deref(), Some("added"));
    assert_eq!(
        by_id[event_id("seed", 1).as_str()].summary.as_deref(),
        Some("renamed")
    );
    assert!(by_id[event_id("seed", 2).as_str()].is_cancelled());
    assert_eq!(inserted.id.as_deref(), Some("added00001"));
    let next_token = incremental.next_sync_token.clone().expect("next sync token");

    for event in incremental.items {
        let id = event.id.clone().expect("id");
        if event.is_cancelled() {
            state.remove(&id);
        } else {
            state.insert(id, event);
        }
    }

    // An invalidated token asks for a full sync, which yields the same data.
    g.control(
        reqwest::Method::POST,
        &format!("/emulator/calendars/{cal}/invalidate-sync-tokens"),
        json!({}),
    )
    .await;
    assert_eq!(
        client
            .list_events(&call, cal, &ListEvents::incremental(&next_token))
            .await
            .err(),
        Some(GoogleError::FullSyncRequired)
    );
    let resync = client
        .list_events(&call, cal, &ListEvents::full())
        .await
        .expect("full sync");
    let summaries = |events: Vec<&Event>| -> BTreeMap<String, Option<String>> {
        events
            .into_iter()
            .map(|e| (e.id.clone().unwrap_or_default(), e.summary.clone()))
            .collect()
    };
    assert_eq!(
        summaries(resync.items.iter().collect()),
        summaries(state.values().collect())
    );
    assert!(resync.next_sync_token.is_some());
}

#[tokio::test]
async fn listings_follow_short_pages_and_take_the_sync_token_from_the_last_one() {
    let g = Google::start_with(EmulatorConfig {
        page_size_cap: Some(7),
        ..EmulatorConfig::default()
    })
    .await;
    let token = g.account("dave@example.com");
    let client = g.calendar();
    let counter = CallCounter::new();
    let call = GoogleCall::new(Uuid::new_v4(), &token, &counter);
    let cal = "dave@example.com";
    let writes: Vec<BatchRequest> = (0..30)
        .map(|n| BatchRequest::insert_event(cal, &timed(&event_id("page", n), "p", n as u32)))
        .collect();
    assert!(client.batch(&call, &writes).await.iter().all(Result::is_ok));

    let before = counter.get();
    let full = client
        .list_events(&call, cal, &ListEvents::full())
        .await
        .expect("listing");
    assert_eq!(full.items.len(), 30);
    assert_eq!(counter.get() - before, 5, "ceil(30 / 7) pages");
    let unique: HashSet<_> = full.items.iter().filter_map(|e| e.id.clone()).collect();
    assert_eq!(unique.len(), 30);

    client
        .change_event(
            &call,
            cal,
            &event_id("page", 3),
            EventChange::Patch(&json!({"summary": "patched"})),
            None,
        )
        .await
        .expect("patch");
    let changes = client
        .list_events(
            &call,
            cal,
            &ListEvents::incremental(full.next_sync_token.expect("token from the last page")),
        )
        .await
        .expect("incremental");
    assert_eq!(changes.items.len(), 1);
    assert_eq!(changes.items[0].summary.as_deref(), Some("patched"));
}

// -------------------------------------------------------------------------------------------------
// (c) faults, (d) batching
// -------------------------------------------------------------------------------------------------

#[tokio::test]
async fn five_hundred_writes_land_exactly_once_despite_ten_percent_failures() {
    let g = Google::start().await;
    let token = g.account("erin@example.com");
    // A dropped part drops its whole batch, so a 50-part batch fails far more often than 10%: allow a few
    // more consecutive failed rounds than the production default of 5 to keep the test deterministic.
    let client = g.calendar_with(RetryPolicy {
        max_retries: 8,
        ..fast_retry()
    });
    let counter = CallCounter::new();
    let call = GoogleCall::new(Uuid::new_v4(), &token, &counter);
    let cal = "erin@example.com";

    // First, a 429 with Retry-After: 1 on the first batch. Then the first batch that gets through is
    // dropped at its 11th part, after ten inserts ran: their retries must answer 409 and count as landed.
    g.fault(json!({"status": 429, "retryAfter": 1, "times": 1})).await;
    g.fault(json!({"method": "POST", "path": "/calendar/v3/calendars/", "latencyMs": 0, "times": 10}))
        .await;
    g.fault(json!({"method": "POST", "path": "/calendar/v3/calendars/", "drop": true, "times": 1}))
        .await;
    // Then about 10% of every request (batches and their parts) fails.
    for spec in [
        json!({"status": 500, "probability": 0.025}),
        json!({"status": 503, "probability": 0.025}),
        json!({"status": 429, "retryAfter": 0, "probability": 0.02}),
        json!({"status": 403, "reason": "rateLimitExceeded", "probability": 0.02}),
        json!({"drop": true, "probability": 0.005}),
    ] {
        g.fault(spec).await;
    }

    let ids: Vec<String> = (0..500).map(|n| event_id("fault", n)).collect();
    let writes: Vec<BatchRequest> = ids
        .iter()
        .enumerate()
        .map(|(n, id)| BatchRequest::insert_event(cal, &timed(id, &format!("event {n}"), n as u32)))
        .collect();
    let results = client.batch(&call, &writes).await;
    assert_eq!(results.len(), 500);
    let mut duplicates = 0;
    for (id, result) in ids.iter().zip(&results) {
        match result {
            Ok(response) => assert_eq!(response.event().expect("event").id.as_deref(), Some(id.as_str())),
            // A retried insert whose first attempt landed (its batch was dropped after it ran).
            Err(GoogleError::Duplicate) => duplicates += 1,
            Err(other) => panic!("{id} did not land: {other:?}"),
        }
    }

    assert!(
        duplicates >= 10,
        "the inserts of the dropped batch answered 409 ({duplicates})"
    );

    let log = g
        .control(reqwest::Method::GET, "/emulator/requests", json!({}))
        .await;
    let failures = log["requests"]
        .as_array()
        .expect("log")
        .iter()
        .filter(|r| r["status"].as_u64().is_some_and(|s| s == 0 || s >= 400))
        .count();
    assert!(failures > 10, "the faults fired ({failures} failed requests)");
    let stats = g.stats().await;
    assert_eq!(
        stats["batchRequests"].as_u64(),
        Some(counter.get()),
        "the counter saw every batch request, retries included"
    );
    assert!(
        counter.get() > 10,
        "failed parts were retried in follow-up batches"
    );

    g.control(reqwest::Method::DELETE, "/emulator/faults", json!({}))
        .await;
    let listing = client
        .list_events(
            &call,
            cal,
            &ListEvents {
                max_results: Some(2500),
                ..ListEvents::full()
            },
        )
        .await
        .expect("listing");
    let listed: Vec<String> = listing.items.iter().filter_map(|e| e.id.clone()).collect();
    let unique: HashSet<&String> = listed.iter().collect();
    assert_eq!(
        listed.len(),
        500,
        "500 events ({duplicates} retried inserts answered 409)"
    );
    assert_eq!(unique.len(), 500, "no duplicates");
    assert_eq!(unique, ids.iter().collect::<HashSet<_>>());
}

#[tokio::test]
async fn two_hundred_writes_go_out_in_four_batches() {
    let g = Google::start().await;
    let token = g.account("frank@example.com");
    let client = g.calendar();
    let counter = CallCounter::new();
    let call = GoogleCall::new(Uuid::new_v4(), &token, &counter);
    let cal = "frank@example.com";
    let seed: Vec<BatchRequest> = (0..150)
        .map(|n| BatchRequest::insert_event(cal, &timed(&event_id("batch", n), "b", n as u32)))
        .collect();
    let results = client.batch(&call, &seed).await;
    assert!(results.iter().all(Result::is_ok));
    g.control(reqwest::Method::DELETE, "/emulator/stats", json!({}))
        .await;
    let counter = CallCounter::new();
    let call = GoogleCall::new(call.account_id, &token, &counter);

    // 200 writes of every kind: 100 inserts, 50 patches, 50 deletes.
    let mut writes = Vec::new();
    for n in 150..250 {
        writes.push(BatchRequest::insert_event(
            cal,
            &timed(&event_id("batch", n), "b", n as u32),
        ));
    }
    for n in 0..50 {
        writes.push(BatchRequest::change_event(
            cal,
            &event_id("batch", n),
            EventChange::Patch(&json!({"summary": "patched"})),
            None,
        ));
    }
    for n in 50..100 {
        writes.push(BatchRequest::delete_event(cal, &event_id("batch", n)));
    }
    let results = client.batch(&call, &writes).await;
    assert_eq!(results.len(), 200);
    for (n, result) in results.iter().enumerate() {
        let response = result.as_ref().unwrap_or_else(|e| panic!("write {n}: {e:?}"));
        match n {
            0..100 => assert_eq!(response.status, 200),
            100..150 => assert_eq!(
                response.event().expect("event").summary.as_deref(),
                Some("patched")
            ),
            _ => assert_eq!(response.status, 204),
        }
    }
    let stats = g.stats().await;
    assert_eq!(stats["batchRequests"], 4);
    assert_eq!(stats["batchParts"], 200);
    assert_eq!(stats["totalRequests"], 204, "nothing but the four batches");
    assert_eq!(counter.get(), 4);
}

// -------------------------------------------------------------------------------------------------
// (e) access tokens
// -------------------------------------------------------------------------------------------------

struct Store {
    db: DatabaseConnection,
    cipher: Cipher,
    _database: TestDatabase,
}

impl Store {
    async fn create() -> Self {
        let database = TestDatabase::create().await;
        let db = chronos::db::connect(&database.url).await.expect("connect");
        migration::Migrator::up(&db, None).await.expect("migrate");
        Self {
            db,
            cipher: Cipher::new(KeyRing::generate("test1").expect("key ring")),
            _database: database,
        }
    }

    /// A user and a Google account holding `tokens`, as sign-in would leave them.
    async fn account(&self, email: &str, tokens: &TokenSet) -> (Uuid, Uuid) {
        let now = Utc::now();
        let user_id = Uuid::now_v7();
        let account_id = Uuid::now_v7();
        users::ActiveModel {
            id: Set(user_id),
            email: Set(email.to_owned()),
            name: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&self.db)
        .await
        .expect("user");
        let sealed = encrypt_tokens(&self.cipher, user_id, account_id, tokens).expect("encrypt");
        google_accounts::ActiveModel {
            id: Set(account_id),
            user_id: Set(user_id),
            google_sub: Set(format!("sub-{email}")),
            email: Set(email.to_owned()),
            name: Set(None),
            status: Set(AccountStatus::Active),
            access_token: Set(Some(sealed.access_token)),
            refresh_token: Set(sealed.refresh_token),
            access_token_expires_at: Set(Some(tokens.expires_at)),
            granted_scopes: Set(tokens.scope_string()),
            calendar_list_sync_token: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&self.db)
        .await
        .expect("google account");
        (user_id, account_id)
    }

    async fn row(&self, account_id: Uuid) -> google_accounts::Model {
        google_accounts::Entity::find_by_id(account_id)
            .one(&self.db)
            .await
            .expect("query")
            .expect("row")
    }
}

#[tokio::test]
async fn concurrent_callers_on_an_expired_token_share_one_refresh() {
    let g = Google::start().await;
    let store = Store::create().await;
    let oauth = g.oauth();
    let mut tokens = g.sign_in(&oauth, "gina@example.com").await;
    tokens.expires_at = Utc::now() - chrono::Duration::minutes(1);
    let (_, account_id) = store.account("gina@example.com", &tokens).await;
    let access = AccessTokens::new(store.db.clone(), store.cipher.clone(), oauth);

    let before = g.route_count(ROUTE_TOKEN).await;
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let access = access.clone();
            tokio::spawn(async move { access.access_token(account_id).await })
        })
        .collect();
    let mut seen = HashSet::new();
    for task in tasks {
        let token = task.await.expect("task").expect("access token");
        seen.insert(token.expose_secret().to_owned());
    }
    assert_eq!(
        g.route_count(ROUTE_TOKEN).await - before,
        1,
        "exactly one refresh request"
    );
    assert_eq!(seen.len(), 1, "every caller got the refreshed token");
    assert!(!seen.contains(tokens.access_token.expose_secret()));
    let row = store.row(account_id).await;
    assert!(row.access_token_expires_at.expect("expiry") > Utc::now() + chrono::Duration::minutes(50));
    assert_ne!(
        row.access_token.as_deref(),
        Some(tokens.access_token.expose_secret().as_bytes()),
        "stored encrypted"
    );

    // A fresh token is served from the database without calling Google.
    access.access_token(account_id).await.expect("cached token");
    assert_eq!(g.route_count(ROUTE_TOKEN).await - before, 1);

    // Google rejects every token (401): concurrent callers refresh once and succeed on their second try.
    g.control(reqwest::Method::POST, "/emulator/expire-access-tokens", json!({}))
        .await;
    let client = g.calendar();
    let before = g.route_count(ROUTE_TOKEN).await;
    let tasks: Vec<_> = (0..5)
        .map(|_| {
            let access = access.clone();
            let client = client.clone();
            tokio::spawn(async move {
                GoogleAccount::new(&client, &access, account_id)
                    .list_calendars(None)
                    .await
            })
        })
        .collect();
    for task in tasks {
        let listing = task.await.expect("task").expect("listing after one refresh");
        assert!(listing.items.iter().any(|c| c.primary));
    }
    assert_eq!(
        g.route_count(ROUTE_TOKEN).await - before,
        1,
        "one forced refresh for all callers"
    );

    // A batch refused with 401 goes again once, with a refreshed token.
    g.control(reqwest::Method::POST, "/emulator/expire-access-tokens", json!({}))
        .await;
    let before = g.route_count(ROUTE_TOKEN).await;
    let account = GoogleAccount::new(&client, &access, account_id);
    let writes: Vec<BatchRequest> = (0..3)
        .map(|n| {
            BatchRequest::insert_event("gina@example.com", &timed(&event_id("refused", n), "r", n as u32))
        })
        .collect();
    let answers = account.batch(&writes).await.expect("a usable token");
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
    assert_eq!(g.route_count(ROUTE_TOKEN).await - before, 1, "one refresh");
    assert_eq!(account.calls(), 2, "the refused batch and the one sent again");
}

#[tokio::test]
async fn a_revoked_grant_marks_the_account_and_reconnecting_restores_it() {
    let g = Google::start().await;
    let store = Store::create().await;
    let oauth = g.oauth();
    let tokens = g.sign_in(&oauth, "hugo@example.com").await;
    let (user_id, account_id) = store.account("hugo@example.com", &tokens).await;
    let access = AccessTokens::new(store.db.clone(), store.cipher.clone(), oauth.clone());
    let client = g.calendar();

    g.control(
        reqwest::Method::POST,
        "/emulator/accounts/hugo@example.com/revoke",
        json!({}),
    )
    .await;
    let result = GoogleAccount::new(&client, &access, account_id)
        .list_calendars(None)
        .await;
    assert_eq!(
        result.err(),
        Some(GoogleError::NeedsReauth {
            email: "hugo@example.com".into()
        })
    );
    let row = store.row(account_id).await;
    assert_eq!(row.status, AccountStatus::NeedsReauth);
    assert!(
        row.access_token.is_some() && row.refresh_token.is_some(),
        "nothing is deleted"
    );

    // Later calls fail fast, without asking Google.
    let before = g.route_count(ROUTE_TOKEN).await;
    assert!(matches!(
        access.access_token(account_id).await,
        Err(GoogleError::NeedsReauth { .. })
    ));
    assert_eq!(g.route_count(ROUTE_TOKEN).await, before);
    let app_error: chronos::error::AppError = GoogleError::NeedsReauth {
        email: "hugo@example.com".into(),
    }
    .into();
    assert_eq!(app_error.code(), "NEEDS_REAUTH");

    // Connecting again stores new tokens and reactivates the account.
    let fresh = g.sign_in(&oauth, "hugo@example.com").await;
    access
        .store_tokens(account_id, user_id, &fresh)
        .await
        .expect("store tokens");
    assert_eq!(store.row(account_id).await.status, AccountStatus::Active);
    let token = access.access_token(account_id).await.expect("token");
    assert_eq!(token.expose_secret(), fresh.access_token.expose_secret());
    assert_eq!(
        access
            .store_tokens(account_id, Uuid::now_v7(), &fresh)
            .await
            .err(),
        Some(GoogleError::AccountNotFound),
        "another user's id does not match the row"
    );
}
