//! `searchEvents` over HTTP against the Google emulator: words, several words, beginnings of words,
//! accents and case, the ranking, time bounds, pages, input errors, isolation between users, the index
//! following Google-side changes and deletions, and no searched word stored in plaintext anywhere in the
//! database.

use chronos::state::AppState;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, error_code};

const SEARCH: &str = "query($query: String!, $timeMin: DateTime, $timeMax: DateTime, $calendarIds: [ID!], $first: Int, $after: String) {
    searchEvents(query: $query, timeMin: $timeMin, timeMax: $timeMax, calendarIds: $calendarIds, first: $first, after: $after) {
        edges { cursor node { id summary description location calendarId recurrence status } }
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    }
}";

impl TestApp {
    /// `searchEvents` with these variables: the raw response.
    async fn search_raw(&self, variables: Value) -> Value {
        self.graphql(SEARCH, variables).await
    }

    /// The summaries `searchEvents(query)` returns, in order (one page of at most 100).
    async fn search_summaries(&self, query: &str) -> Vec<String> {
        self.search_with(json!({ "query": query })).await
    }

    async fn search_with(&self, variables: Value) -> Vec<String> {
        let body = self.search_raw(variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        search_nodes(&body)
            .iter()
            .map(|node| node["summary"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// The user's primary calendar (listed first, so its events are cached).
    async fn primary_calendar(&self) -> String {
        let accounts = self.accounts().await;
        let account = accounts[0]["id"].clone();
        let data = self
            .data(
                "mutation($id: ID!) { refreshCalendars(accountId: $id) { id primary } }",
                json!({ "id": account }),
            )
            .await;
        data["refreshCalendars"]
            .as_array()
            .expect("calendars")
            .iter()
            .find(|c| c["primary"] == json!(true))
            .and_then(|c| c["id"].as_str())
            .expect("primary calendar")
            .to_owned()
    }

    /// Creates an event through Chronos (Google, then the cache); returns its id.
    async fn create_searchable(&self, calendar: &str, input: Value) -> String {
        let mut input = input;
        input["calendarId"] = json!(calendar);
        let data = self
            .data(
                "mutation($input: CreateEventInput!) { createEvent(input: $input) { id } }",
                json!({ "input": input }),
            )
            .await;
        data["createEvent"]["id"].as_str().expect("event id").to_owned()
    }
}

fn search_nodes(body: &Value) -> Vec<Value> {
    body["data"]["searchEvents"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("edges in {body}"))
        .iter()
        .map(|edge| edge["node"].clone())
        .collect()
}

fn at(summary: &str, day: u32) -> Value {
    json!({
        "summary": summary,
        "start": { "dateTime": format!("2030-01-{day:02}T09:00:00Z") },
        "end": { "dateTime": format!("2030-01-{day:02}T10:00:00Z") },
    })
}

fn assert_bad_input(body: &Value, field: &str) {
    assert_eq!(error_code(body), Some("BAD_USER_INPUT"), "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["field"].as_str(),
        Some(field),
        "{body}"
    );
}

async fn signed_in(email: &str) -> (TestApp, String) {
    let app = TestApp::spawn_with(|settings| settings.scheduler_enabled = false).await;
    app.emulator().create_account(email, None);
    app.sign_in(email).await;
    let calendar = app.primary_calendar().await;
    (app, calendar)
}

#[tokio::test]
async fn finds_by_words_beginnings_accents_and_case_whole_words_first() {
    let (app, calendar) = signed_in("searcher@example.com").await;
    let mut dentist = at("Dentist appointment", 10);
    dentist["location"] = json!("Café Müller");
    app.create_searchable(&calendar, dentist).await;
    let mut lunch = at("Team lunch", 5);
    lunch["description"] = json!("Dentists' conference, notes to follow");
    app.create_searchable(&calendar, lunch).await;
    app.create_searchable(&calendar, at("CAFE MULLER: dentist", 20))
        .await;
    app.create_searchable(&calendar, at("Gym", 7)).await;

    // One word, whatever its case: the whole-word matches by start, then the beginning of "Dentists'".
    let whole_then_prefix = ["Dentist appointment", "CAFE MULLER: dentist", "Team lunch"];
    assert_eq!(app.search_summaries("dentist").await, whole_then_prefix);
    assert_eq!(app.search_summaries("DeNtIsT").await, whole_then_prefix);
    // Only beginnings: one rank, by start.
    assert_eq!(
        app.search_summaries("dent").await,
        ["Team lunch", "Dentist appointment", "CAFE MULLER: dentist"]
    );
    // Accents either way; the event spelled as asked comes first.
    assert_eq!(
        app.search_summaries("café müller").await,
        ["Dentist appointment", "CAFE MULLER: dentist"]
    );
    assert_eq!(
        app.search_summaries("cafe muller").await,
        ["CAFE MULLER: dentist", "Dentist appointment"]
    );
    // Several words: every one must match, in any field.
    assert_eq!(
        app.search_summaries("dentist café").await,
        ["Dentist appointment", "CAFE MULLER: dentist"]
    );
    assert_eq!(app.search_summaries("lunch dentists").await, ["Team lunch"]);
    assert_eq!(app.search_summaries("notes, conference!").await, ["Team lunch"]);
    assert_eq!(app.search_summaries("gym").await, ["Gym"]);
    // The middle of a word, or a word nobody wrote, matches nothing.
    assert!(app.search_summaries("tist").await.is_empty());
    assert!(app.search_summaries("dentist gym").await.is_empty());
    assert!(app.search_summaries("zebra").await.is_empty());

    // Time bounds keep what overlaps them.
    assert_eq!(
        app.search_with(
            json!({ "query": "dent", "timeMin": "2030-01-08T00:00:00Z", "timeMax": "2030-01-15T00:00:00Z" })
        )
        .await,
        ["Dentist appointment"]
    );
    assert_eq!(
        app.search_with(json!({ "query": "dent", "timeMin": "2030-01-10T10:00:00Z" }))
            .await,
        ["CAFE MULLER: dentist"]
    );
    assert_eq!(
        app.search_with(json!({ "query": "dent", "timeMax": "2030-01-10T09:00:00Z" }))
            .await,
        ["Team lunch"]
    );
    // Calendars asked for by id.
    assert_eq!(
        app.search_with(json!({ "query": "gym", "calendarIds": [calendar] }))
            .await,
        ["Gym"]
    );
}

#[tokio::test]
async fn pages_follow_the_ranking_and_bad_input_names_its_field() {
    let (app, calendar) = signed_in("pager@example.com").await;
    for (summary, day) in [
        ("Review weekly", 3),
        ("Reviewer sync", 1),
        ("Review", 9),
        ("Reviews due", 2),
    ] {
        app.create_searchable(&calendar, at(summary, day)).await;
    }
    let everything = app.search_summaries("review").await;
    assert_eq!(
        everything,
        ["Review weekly", "Review", "Reviewer sync", "Reviews due"]
    );

    let mut pages = Vec::new();
    let mut after = Value::Null;
    loop {
        let body = app
            .search_raw(json!({ "query": "review", "first": 1, "after": after }))
            .await;
        assert!(body.get("errors").is_none(), "{body}");
        let page = &body["data"]["searchEvents"];
        assert_eq!(page["pageInfo"]["hasPreviousPage"], json!(!after.is_null()));
        pages.extend(search_nodes(&body).iter().map(|n| n["summary"].clone()));
        if page["pageInfo"]["hasNextPage"] == json!(false) {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(pages, everything);

    let bad = |variables: Value, field: &'static str| {
        let app = &app;
        async move {
            let body = app.search_raw(variables).await;
            assert_bad_input(&body, field);
        }
    };
    bad(json!({ "query": "" }), "query").await;
    bad(json!({ "query": "  ?! -- " }), "query").await;
    bad(json!({ "query": "x".repeat(257) }), "query").await;
    bad(json!({ "query": "a b c d e f g h i" }), "query").await;
    bad(json!({ "query": "review", "after": "not-a-cursor" }), "after").await;
    bad(json!({ "query": "review", "first": 0 }), "first").await;
    bad(json!({ "query": "review", "first": 501 }), "first").await;
    bad(
        json!({ "query": "review", "timeMin": "2030-01-02T00:00:00Z", "timeMax": "2030-01-01T00:00:00Z" }),
        "timeMax",
    )
    .await;
    // The same query with good input answers (the errors above are about the input only).
    assert_eq!(
        app.search_with(json!({ "query": "x".repeat(256) })).await,
        Vec::<String>::new()
    );
    let unknown = app
        .search_raw(json!({ "query": "review", "calendarIds": [Uuid::now_v7().to_string()] }))
        .await;
    assert_eq!(error_code(&unknown), Some("NOT_FOUND"), "{unknown}");
}

#[tokio::test]
async fn never_returns_another_users_events() {
    let (alice, alice_calendar) = signed_in("alice.search@example.com").await;
    alice
        .create_searchable(&alice_calendar, at("Secret dentist visit", 4))
        .await;
    let bob = alice.new_browser();
    bob.emulator().create_account("bob.search@example.com", None);
    bob.sign_in("bob.search@example.com").await;
    let bob_calendar = bob.primary_calendar().await;
    bob.create_searchable(&bob_calendar, at("Dentist for Bob", 6))
        .await;

    // Each finds their own event by the shared word, never the other's.
    assert_eq!(alice.search_summaries("dentist").await, ["Secret dentist visit"]);
    assert_eq!(bob.search_summaries("dentist").await, ["Dentist for Bob"]);
    assert_eq!(alice.search_summaries("secret").await, ["Secret dentist visit"]);
    assert!(bob.search_summaries("secret").await.is_empty());
    assert!(bob.search_summaries("sec").await.is_empty());

    // Another user's calendar is not found, like a missing one; asking for one's own works.
    let foreign = bob
        .search_raw(json!({ "query": "secret", "calendarIds": [alice_calendar] }))
        .await;
    assert_eq!(error_code(&foreign), Some("NOT_FOUND"), "{foreign}");
    assert!(foreign["data"].is_null() || foreign["data"]["searchEvents"].is_null());
    assert_eq!(
        alice
            .search_with(json!({ "query": "secret", "calendarIds": [alice_calendar] }))
            .await,
        ["Secret dentist visit"]
    );

    // Signed out: no search at all.
    let stranger = alice.new_browser();
    let body = stranger.search_raw(json!({ "query": "dentist" })).await;
    assert_eq!(error_code(&body), Some("UNAUTHENTICATED"), "{body}");
}

/// The Google-side life of an event: listed in, renamed, a series, a cancelled instance, deleted.
#[tokio::test]
async fn the_index_follows_google_side_changes_and_deletions() {
    let email = "follower@example.com";
    let (app, calendar) = signed_in(email).await;
    let side: AppState = app.app_state().await;
    let refresh = || async {
        chronos::calendars::refresh_events(&side, Uuid::parse_str(&calendar).expect("uuid"))
            .await
            .unwrap_or_else(|e| panic!("refresh failed: {e:?}"));
    };
    let inserted = app
        .emulator()
        .insert_event(
            email,
            json!({
                "summary": "Quarterly planning",
                "location": "Zürich office",
                "start": { "dateTime": "2030-02-01T09:00:00Z" },
                "end": { "dateTime": "2030-02-01T10:00:00Z" },
            }),
        )
        .expect("insert at Google");
    let google_id = inserted["id"].as_str().expect("google id").to_owned();
    assert!(app.search_summaries("quarterly").await.is_empty());
    refresh().await;
    assert_eq!(app.search_summaries("zurich").await, ["Quarterly planning"]);

    // Renamed at Google: the new words are found, the old ones no longer.
    let token = app.emulator().issue_access_token(email).expect("token");
    let http = reqwest::Client::new();
    let url = app.emulator_url(&format!("/calendar/v3/calendars/{email}/events/{google_id}"));
    let patched = http
        .patch(&url)
        .bearer_auth(&token)
        .json(&json!({ "summary": "Annual review" }))
        .send()
        .await
        .expect("patch");
    assert!(patched.status().is_success(), "{}", patched.status());
    refresh().await;
    assert_eq!(app.search_summaries("annual").await, ["Annual review"]);
    assert_eq!(app.search_summaries("zürich").await, ["Annual review"]);
    assert!(app.search_summaries("quarterly").await.is_empty());

    // A series is found once, as its master; cancelling one instance adds nothing.
    let series = app
        .emulator()
        .insert_event(
            email,
            json!({
                "summary": "Standup",
                "start": { "dateTime": "2030-03-04T09:00:00Z", "timeZone": "UTC" },
                "end": { "dateTime": "2030-03-04T09:15:00Z", "timeZone": "UTC" },
                "recurrence": ["RRULE:FREQ=DAILY;COUNT=5"],
            }),
        )
        .expect("series at Google");
    let series_id = series["id"].as_str().expect("series id");
    let instance = app.emulator_url(&format!(
        "/calendar/v3/calendars/{email}/events/{series_id}_20300305T090000Z"
    ));
    let cancelled = http
        .delete(&instance)
        .bearer_auth(&token)
        .send()
        .await
        .expect("cancel instance");
    assert!(cancelled.status().is_success(), "{}", cancelled.status());
    refresh().await;
    let body = app.search_raw(json!({ "query": "standup" })).await;
    let nodes = search_nodes(&body);
    assert_eq!(nodes.len(), 1, "{body}");
    assert_eq!(nodes[0]["recurrence"], json!(["RRULE:FREQ=DAILY;COUNT=5"]));
    assert_eq!(nodes[0]["status"], json!("CONFIRMED"));
    // A window inside the series' span finds the master.
    assert_eq!(
        app.search_with(json!({ "query": "standup", "timeMin": "2030-03-06T00:00:00Z", "timeMax": "2030-03-07T00:00:00Z" }))
            .await,
        ["Standup"]
    );

    // A changed instance is an exception of its own, found by its own words; once cancelled, not at all.
    let moved = app.emulator_url(&format!(
        "/calendar/v3/calendars/{email}/events/{series_id}_20300306T090000Z"
    ));
    let changed = http
        .patch(&moved)
        .bearer_auth(&token)
        .json(&json!({ "summary": "Standup moved to Friday" }))
        .send()
        .await
        .expect("change instance");
    assert!(changed.status().is_success(), "{}", changed.status());
    refresh().await;
    assert_eq!(app.search_summaries("friday").await, ["Standup moved to Friday"]);
    assert_eq!(
        app.search_summaries("standup").await,
        ["Standup", "Standup moved to Friday"]
    );
    let cancelled = http
        .delete(&moved)
        .bearer_auth(&token)
        .send()
        .await
        .expect("cancel the exception");
    assert!(cancelled.status().is_success(), "{}", cancelled.status());
    refresh().await;
    assert!(app.search_summaries("friday").await.is_empty());
    assert_eq!(app.search_summaries("standup").await, ["Standup"]);

    // Deleted at Google: gone from the results.
    let deleted = http
        .delete(&url)
        .bearer_auth(&token)
        .send()
        .await
        .expect("delete");
    assert!(deleted.status().is_success(), "{}", deleted.status());
    refresh().await;
    assert!(app.search_summaries("annual").await.is_empty());
    assert_eq!(app.search_summaries("standup").await, ["Standup"]);

    // Deleted through Chronos: gone too.
    let id = nodes[0]["id"].as_str().expect("id");
    app.data("mutation($id: ID!) { deleteEvent(id: $id) }", json!({ "id": id }))
        .await;
    assert!(app.search_summaries("standup").await.is_empty());
}

/// Every byte the database holds, as text: SQLite's files (the database, its WAL), or every row of every
/// table of the PostgreSQL database cast to text.
async fn database_dump(app: &TestApp) -> String {
    if !app.server.db.url.starts_with("postgres") {
        let mut out = String::new();
        for entry in std::fs::read_dir(app.server.db.dir()).expect("database dir") {
            let path = entry.expect("entry").path();
            if path.is_file() {
                let bytes = std::fs::read(&path).expect("read database file");
                out.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
        return out;
    }
    let db = sea_orm::Database::connect(&app.server.db.url)
        .await
        .expect("connect");
    let tables = db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
        ))
        .await
        .expect("tables");
    let mut out = String::new();
    for table in tables {
        let name: String = table.try_get_by_index(0).expect("table name");
        let rows = db
            .query_all_raw(Statement::from_string(
                DbBackend::Postgres,
                format!("SELECT t::text FROM \"{name}\" t"),
            ))
            .await
            .expect("rows");
        for row in rows {
            let text: String = row.try_get_by_index(0).expect("row text");
            out.push_str(&text);
            out.push('\n');
        }
    }
    db.close().await.ok();
    out
}

#[tokio::test]
async fn no_searched_word_is_stored_in_plaintext() {
    let (app, calendar) = signed_in("vault@example.com").await;
    let terms = ["Zanzibarquest", "Obfuscatorium", "Quixotevale", "Périgourdine"];
    let mut input = at("Zanzibarquest kickoff", 12);
    input["description"] = json!("Bring the Obfuscatorium slides");
    input["location"] = json!("Quixotevale, salle Périgourdine");
    app.create_searchable(&calendar, input).await;
    // Positive control: each term, and a beginning of it, finds the event.
    for term in terms {
        assert_eq!(
            app.search_summaries(term).await,
            ["Zanzibarquest kickoff"],
            "{term}"
        );
        let beginning: String = term.chars().take(5).collect();
        assert_eq!(
            app.search_summaries(&beginning).await,
            ["Zanzibarquest kickoff"],
            "{beginning}"
        );
    }

    let dump = database_dump(&app).await.to_lowercase();
    assert!(dump.len() > 10_000, "the dump holds the database");
    // A control on the dump itself: words stored in plaintext (the calendar's id at Google) are found.
    assert!(dump.contains("vault@example.com"));
    for term in terms {
        let forms = [
            term.to_lowercase(),
            search_fold(term),
            hex(term.to_lowercase().as_bytes()),
            hex(search_fold(term).as_bytes()),
        ];
        for form in forms {
            assert!(!dump.contains(&form), "{form:?} ({term}) is in the database");
        }
    }
}

/// What search folds a word to, for the dump check (lowercase, accents dropped).
fn search_fold(word: &str) -> String {
    word.to_lowercase().replace('é', "e")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs `chronos rotate-keys` on the test database with `keys` (ENCRYPTION_KEYS); returns its output.
fn rotate_keys(app: &TestApp, keys: &str) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_chronos"))
        .arg("rotate-keys")
        .env_clear()
        .env("DATABASE_URL", &app.server.db.url)
        .env("ENCRYPTION_KEYS", keys)
        .env("CSRF_SECRET", "0123456789abcdef0123456789abcdef")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run rotate-keys");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

#[tokio::test]
async fn rotate_keys_reindexes_search_and_backfills_unindexed_events() {
    use chronos::{
        crypto::{Cipher, KeyRing},
        events::search::{SearchQuery, search},
    };

    let (app, calendar) = signed_in("rotor@example.com").await;
    app.create_searchable(&calendar, at("Budget offsite", 8)).await;
    assert_eq!(app.search_summaries("offsite").await, ["Budget offsite"]);
    let user_id = Uuid::parse_str(app.me().await["id"].as_str().expect("user id")).expect("uuid");
    let db = app.server_state().await.db.clone();

    let old = app.settings().encryption_keys.clone();
    let new = KeyRing::generate("k2").expect("ring");
    let both = format!("{},{}", new.to_env_string(), old.to_env_string());
    let found = |ring: KeyRing| {
        let db = db.clone();
        async move {
            let query = SearchQuery {
                text: "budget",
                calendar_ids: None,
                time_min: None,
                time_max: None,
                first: 10,
                after: None,
            };
            search(&db, &Cipher::new(ring), user_id, query)
                .await
                .expect("search")
                .edges
                .len()
        }
    };
    let key_ids = || {
        let db = db.clone();
        async move {
            db.query_all_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT DISTINCT key_id FROM event_search_tokens ORDER BY 1",
            ))
            .await
            .expect("key ids")
            .iter()
            .map(|row| row.try_get_by_index::<String>(0).expect("key id"))
            .collect::<Vec<_>>()
        }
    };

    // Mid-rotation the ring holds both keys: entries under the old one still match.
    assert_eq!(key_ids().await, ["k1"]);
    assert_eq!(found(KeyRing::parse(&both).expect("both")).await, 1);
    assert_eq!(found(new.clone()).await, 0, "entries depend on the key");

    let first = rotate_keys(&app, &both);
    assert!(first.contains("re-indexed 1 events for search"), "{first}");
    assert_eq!(key_ids().await, ["k2"]);
    assert_eq!(found(new.clone()).await, 1);
    let second = rotate_keys(&app, &both);
    assert!(second.contains("re-indexed 0 events for search"), "{second}");

    // Events cached before the index existed have no entries: the command indexes them.
    db.execute_unprepared("DELETE FROM event_search_tokens")
        .await
        .expect("clear the index");
    assert_eq!(found(new.clone()).await, 0);
    let backfill = rotate_keys(&app, &new.to_env_string());
    assert!(backfill.contains("re-indexed 1 events for search"), "{backfill}");
    assert_eq!(found(new).await, 1);
}
