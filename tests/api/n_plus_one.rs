//! Nested fields are batched: the statements a nested query costs do not grow with the rows it returns.

use serde_json::{Value, json};

use crate::helpers::TestApp;

const NESTED: &str = "query($min: DateTime!, $max: DateTime!) {
  accounts { id calendars { id summary includeInFreeBusy } }
  todoLists { id todos { id title } }
  syncConfigs { id source { id } destination { id } lastRun { id status } }
  events(timeMin: $min, timeMax: $max, first: 100) { edges { node { id calendar { id summary } } } }
}";

/// Each nested path on its own, so a failure names the field that queries per row.
const PARTS: [(&str, &str); 4] = [
    (
        "accounts -> calendars",
        "{ accounts { id calendars { id includeInFreeBusy } } }",
    ),
    ("todoLists -> todos", "{ todoLists { id todos { id } } }"),
    (
        "syncConfigs -> calendars",
        "{ syncConfigs { id source { id } destination { id } } }",
    ),
    (
        "syncConfigs -> lastRun",
        "{ syncConfigs { id lastRun { id status } } }",
    ),
];

/// The window query reads one index range per selected calendar, so its cost follows the calendars asked
/// for, never the events returned.
const EVENTS: &str = "query($min: DateTime!, $max: DateTime!) { events(timeMin: $min, timeMax: $max, first: 100) { edges { node { id calendar { id } } } } }";

/// Free/busy reads the same index ranges as the window query (and the sync configs of copies, once).
const FREE_BUSY: &str = "query($min: DateTime!, $max: DateTime!) { freeBusy(timeMin: $min, timeMax: $max) { start end } freeSlots(durationMinutes: 30, timeMin: $min, timeMax: $max) { start end } }";
/// A search reads the index once for every calendar of the user, then the page's rows in one query.
const SEARCH: &str = "{ searchEvents(query: \"n+1\", first: 100) { edges { node { id calendar { id } } } } }";

fn window() -> Value {
    json!({ "min": "2030-01-01T00:00:00Z", "max": "2030-02-01T00:00:00Z" })
}

impl TestApp {
    /// Statements the server runs for one request of `query`: the fewest of four runs, because a session
    /// records activity (one write) at most once a minute whenever a request falls due, and a loader's
    /// batch can split in two when a loaded machine runs its resolvers more than the batch delay apart.
    async fn statements_for(&self, query: &str, variables: Value) -> (u64, Value) {
        let mut fewest = u64::MAX;
        let mut data = Value::Null;
        for _ in 0..4 {
            let before = self.statements().await;
            data = self.data(query, variables.clone()).await;
            fewest = fewest.min(self.statements().await - before);
        }
        (fewest, data)
    }

    async fn writable_calendars(&self) -> Vec<String> {
        let accounts = self.accounts().await;
        for account in accounts.as_array().expect("accounts") {
            self.data(
                "mutation($id: ID!) { refreshCalendars(accountId: $id) { id } }",
                json!({ "id": account["id"] }),
            )
            .await;
        }
        let data = self.data("{ calendars { id accessRole } }", json!({})).await;
        data["calendars"]
            .as_array()
            .expect("calendars")
            .iter()
            .filter(|c| c["accessRole"] == "owner")
            .map(|c| c["id"].as_str().expect("id").to_string())
            .collect()
    }

    async fn create_events(&self, calendars: &[String], per_calendar: usize) {
        for (i, calendar) in calendars.iter().enumerate() {
            for n in 0..per_calendar {
                self.data(
                    "mutation($cal: ID!, $start: DateTime!, $end: DateTime!) { createEvent(input: { calendarId: $cal, summary: \"N+1\", start: { dateTime: $start }, end: { dateTime: $end } }) { id } }",
                    json!({
                        "cal": calendar,
                        "start": format!("2030-01-{:02}T{:02}:00:00Z", i + 2, n + 8),
                        "end": format!("2030-01-{:02}T{:02}:30:00Z", i + 2, n + 8),
                    }),
                )
                .await;
            }
        }
    }

    /// Adds `lists` lists of `todos` todos, one event per calendar, and a config between consecutive
    /// calendars.
    async fn grow(&self, lists: usize, todos: usize) {
        for l in 0..lists {
            let list = self
                .data(
                    "mutation($name: String!) { createTodoList(input: { name: $name }) { id } }",
                    json!({ "name": format!("List {l}") }),
                )
                .await;
            let list_id = list["createTodoList"]["id"].clone();
            for t in 0..todos {
                self.data(
                    "mutation($list: ID!, $title: String!) { createTodo(input: { listId: $list, title: $title }) { id } }",
                    json!({ "list": list_id, "title": format!("Todo {t}") }),
                )
                .await;
            }
        }
        let calendars = self.writable_calendars().await;
        self.create_events(&calendars, 1).await;
        for pair in calendars.windows(2) {
            // A pair seen in an earlier round already has its config (the create answers CONFLICT).
            let created = self
                .graphql(
                    "mutation($s: ID!, $d: ID!) { createSyncConfig(input: { sourceCalendarId: $s, destinationCalendarId: $d, direction: ONE_WAY }) { id } }",
                    json!({ "s": pair[0], "d": pair[1] }),
                )
                .await;
            if let Some(config_id) = created["data"]["createSyncConfig"]["id"].as_str() {
                // A queued run (no workers here), so `lastRun` has something to load.
                self.data(
                    "mutation($id: ID!) { triggerSync(configId: $id) { id } }",
                    json!({ "id": config_id }),
                )
                .await;
            }
        }
    }
}

#[tokio::test]
async fn a_nested_query_costs_the_same_statements_for_few_and_many_rows() {
    let app = TestApp::spawn_with(|s| s.scheduler_enabled = false).await;
    app.sign_in("nora@example.com").await;
    app.emulator()
        .create_calendar("nora@example.com", "Work", Some("Europe/Berlin"))
        .expect("calendar");
    app.grow(1, 1).await;
    let (few_events, few) = app.statements_for(EVENTS, window()).await;
    let (few_busy_statements, few_busy) = app.statements_for(FREE_BUSY, window()).await;
    let (few_found, few_search) = app.statements_for(SEARCH, json!({})).await;
    let calendars = app.writable_calendars().await;
    app.create_events(&calendars, 6).await;
    let (many_events, many) = app.statements_for(EVENTS, window()).await;
    assert!(
        many["events"]["edges"].as_array().map(Vec::len) > few["events"]["edges"].as_array().map(Vec::len)
    );
    assert_eq!(few_events, many_events, "events -> calendar queries per event");
    let (many_busy_statements, many_busy) = app.statements_for(FREE_BUSY, window()).await;
    assert!(
        many_busy["freeBusy"].as_array().map(Vec::len) > few_busy["freeBusy"].as_array().map(Vec::len),
        "{few_busy} {many_busy}"
    );
    assert_eq!(
        few_busy_statements, many_busy_statements,
        "freeBusy queries per event"
    );
    let (many_found, many_search) = app.statements_for(SEARCH, json!({})).await;
    let found = |data: &Value| {
        data["searchEvents"]["edges"]
            .as_array()
            .map(Vec::len)
            .unwrap_or_default()
    };
    assert!(found(&few_search) >= 1, "{few_search}");
    assert!(found(&many_search) > found(&few_search), "{many_search}");
    assert_eq!(few_found, many_found, "searchEvents queries per event");
    let (_, small_data) = app.statements_for(NESTED, window()).await;
    let mut small_parts = Vec::new();
    for (_, query) in PARTS {
        let variables = if query.contains("$min") {
            window()
        } else {
            json!({})
        };
        small_parts.push(app.statements_for(query, variables).await.0);
    }

    app.connect_account("nora.two@example.com").await;
    app.connect_account("nora.three@example.com").await;
    app.emulator()
        .create_calendar("nora.two@example.com", "Side", None)
        .expect("calendar");
    app.grow(5, 4).await;
    let (_, large_data) = app.statements_for(NESTED, window()).await;
    for ((name, query), small_part) in PARTS.iter().zip(small_parts) {
        let variables = if query.contains("$min") {
            window()
        } else {
            json!({})
        };
        let large_part = app.statements_for(query, variables).await.0;
        assert_eq!(small_part, large_part, "{name} queries per row");
    }

    let count = |data: &Value, path: &[&str]| {
        let mut v = data;
        for p in path {
            v = &v[*p];
        }
        v.as_array().map(Vec::len).unwrap_or_default()
    };
    assert!(count(&large_data, &["accounts"]) > count(&small_data, &["accounts"]));
    assert!(count(&large_data, &["todoLists"]) > count(&small_data, &["todoLists"]));
    assert!(count(&large_data, &["syncConfigs"]) > count(&small_data, &["syncConfigs"]));
    let last_runs = large_data["syncConfigs"]
        .as_array()
        .expect("configs")
        .iter()
        .filter(|config| config["lastRun"]["status"] == "QUEUED")
        .count();
    assert_eq!(
        last_runs,
        count(&large_data, &["syncConfigs"]),
        "every config shows its queued run"
    );
    assert!(count(&large_data, &["events", "edges"]) > count(&small_data, &["events", "edges"]));
}
