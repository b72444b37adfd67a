//! Plain text in, plain text stored: control characters from clients are refused naming the field, over
//! POST and the websocket alike, and Google's strings are cleaned so they can never make a refresh fail.
//! Run on SQLite and on PostgreSQL (which refuses NUL in text columns outright).

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_code};

const CREATE_LIST: &str =
    "mutation($input: CreateTodoListInput!) { createTodoList(input: $input) { id name } }";

async fn calendars_of(app: &TestApp) -> Vec<Value> {
    let account = app.accounts().await[0]["id"].clone();
    let listed = app
        .data(
            "mutation($id: ID!) { refreshCalendars(accountId: $id) { id summary primary } }",
            json!({ "id": account }),
        )
        .await;
    listed["refreshCalendars"].as_array().expect("calendars").clone()
}

#[tokio::test]
async fn control_characters_in_text_inputs_are_refused_naming_the_field() {
    let app = TestApp::spawn().await;
    app.sign_in("hygiene@example.com").await;

    // The control: the same mutation with plain text (tab and newline included) succeeds.
    let created = app
        .data(
            CREATE_LIST,
            json!({ "input": { "name": "Groceries\tand\nmore" } }),
        )
        .await;
    assert_eq!(created["createTodoList"]["name"], "Groceries\tand\nmore");

    for bad in ["nul\u{0}", "escape\u{1b}[31m", "carriage\rreturn", "del\u{7f}"] {
        let body = app
            .graphql(CREATE_LIST, json!({ "input": { "name": bad } }))
            .await;
        assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "{bad:?}: {body}");
        let message = body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains("$input.name"), "{bad:?}: {message}");
    }
    // Written into the document rather than passed as a variable.
    let body = app
        .graphql(
            r#"mutation { createTodoList(input: { name: "inline\u0000" }) { id } }"#,
            json!({}),
        )
        .await;
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("input.name"),
        "{body}"
    );

    // The sync privacy placeholder, the input that answered INTERNAL on PostgreSQL.
    app.emulator()
        .create_calendar("hygiene@example.com", "Copies", Some("UTC"))
        .expect("calendar");
    let calendars = calendars_of(&app).await;
    let calendar = |primary: bool| {
        calendars
            .iter()
            .find(|c| c["primary"] == primary)
            .expect("calendar")["id"]
            .clone()
    };
    let create_config = "mutation($input: CreateSyncConfigInput!) { createSyncConfig(input: $input) { id } }";
    let input = |placeholder: &str| {
        json!({ "input": {
            "sourceCalendarId": calendar(true),
            "destinationCalendarId": calendar(false),
            "direction": "ONE_WAY",
            "privacy": { "enabled": true, "placeholder": placeholder },
        }})
    };
    let body = app.graphql(create_config, input("Bu\u{0}sy")).await;
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("$input.privacy.placeholder"),
        "{body}"
    );
    // Nothing was written by the refused request: the clean one creates the only config.
    app.data(create_config, input("Busy")).await;
    let configs = app.data("{ syncConfigs { id } }", json!({})).await;
    assert_eq!(configs["syncConfigs"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn a_control_character_in_a_calendar_name_at_google_is_cleaned_and_the_refresh_succeeds() {
    let app = TestApp::spawn().await;
    app.sign_in("names@example.com").await;
    app.emulator()
        .create_calendar("names@example.com", "Te\u{0}am\u{1b} plans", Some("UTC"))
        .expect("calendar");
    let calendars = calendars_of(&app).await;
    let names: Vec<&str> = calendars.iter().filter_map(|c| c["summary"].as_str()).collect();
    assert!(names.contains(&"Team plans"), "{names:?}");
    // And it stays readable afterwards.
    let listed = app.data("{ calendars { summary } }", json!({})).await;
    assert!(
        listed["calendars"]
            .as_array()
            .expect("calendars")
            .iter()
            .any(|c| c["summary"] == "Team plans"),
        "{listed}"
    );
}

#[tokio::test]
async fn control_characters_in_event_strings_at_google_are_cleaned_and_the_refresh_succeeds() {
    const EMAIL: &str = "agenda@example.com";
    let app = TestApp::spawn_with(|settings| settings.scheduler_enabled = false).await;
    app.sign_in(EMAIL).await;
    let primary = calendars_of(&app)
        .await
        .into_iter()
        .find(|c| c["primary"] == true)
        .expect("primary calendar")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let emulator = app.emulator();
    // The control: a plain event, refreshed and read the same way.
    emulator
        .insert_event(
            EMAIL,
            json!({ "summary": "Plain", "start": { "dateTime": "2030-01-10T08:00:00Z" },
                    "end": { "dateTime": "2030-01-10T08:30:00Z" } }),
        )
        .expect("insert");
    emulator
        .insert_event(
            EMAIL,
            json!({
                "summary": "Stand\u{0}up\u{1b}",
                "description": "Notes\r\nline two\u{7}",
                "location": "Room\u{0} 4\u{7f}",
                "iCalUID": "uid\u{0}1@example.com",
                "start": { "dateTime": "2030-01-10T09:00:00Z" },
                "end": { "dateTime": "2030-01-10T09:30:00Z" },
                "extendedProperties": { "private": { "note": "a\u{0}b" }, "shared": { "k\u{1}": "v\u{2}" } },
            }),
        )
        .expect("insert");

    let state = app.app_state().await;
    let calendar_id = uuid::Uuid::parse_str(&primary).expect("uuid");
    chronos::calendars::refresh_events(&state, calendar_id)
        .await
        .unwrap_or_else(|e| panic!("the refresh failed: {e:?}"));

    let window = app
        .data(
            "query($ids: [ID!]) { events(calendarIds: $ids, timeMin: \"2030-01-10T00:00:00Z\",
                timeMax: \"2030-01-11T00:00:00Z\") { edges { node { summary description location } } } }",
            json!({ "ids": [primary] }),
        )
        .await;
    let nodes: Vec<&Value> = window["events"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|edge| &edge["node"])
        .collect();
    assert_eq!(nodes.len(), 2, "{window}");
    assert_eq!(nodes[0]["summary"], "Plain");
    assert_eq!(nodes[1]["summary"], "Standup");
    assert_eq!(nodes[1]["description"], "Notes\nline two");
    assert_eq!(nodes[1]["location"], "Room 4");

    // The strings stored in the clear are cleaned too (on PostgreSQL a NUL there failed the refresh).
    let rows = chronos::entities::events::Entity::find()
        .filter(chronos::entities::events::Column::CalendarId.eq(calendar_id))
        .filter(chronos::entities::events::Column::ICalUid.eq("uid1@example.com"))
        .all(&state.db)
        .await
        .expect("rows");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].extended_private, Some(json!({ "note": "ab" })));
    assert_eq!(rows[0].extended_shared, Some(json!({ "k": "v" })));
}

#[tokio::test]
async fn dates_and_instants_outside_years_0001_to_9999_are_refused() {
    let app = TestApp::spawn().await;
    app.sign_in("dates@example.com").await;
    let window = "query($min: DateTime!, $max: DateTime!) { events(timeMin: $min, timeMax: $max) { edges { cursor } } }";
    // The control: an ordinary window answers.
    app.data(
        window,
        json!({ "min": "2030-01-01T00:00:00Z", "max": "2030-02-01T00:00:00Z" }),
    )
    .await;
    for (min, max) in [
        ("0000-12-31T00:00:00Z", "2030-02-01T00:00:00Z"),
        ("2030-01-01T00:00:00Z", "9999-12-31T23:30:00-01:00"),
    ] {
        let body = app.graphql(window, json!({ "min": min, "max": max })).await;
        assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "{min} {max}: {body}");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("0001 to 9999"),
            "{body}"
        );
    }
    let list = app
        .data(CREATE_LIST, json!({ "input": { "name": "Dated" } }))
        .await["createTodoList"]["id"]
        .clone();
    let create_todo = "mutation($input: CreateTodoInput!) { createTodo(input: $input) { id dueDate } }";
    let created = app
        .data(
            create_todo,
            json!({ "input": { "listId": list, "title": "ok", "dueDate": "0001-01-01" } }),
        )
        .await;
    assert_eq!(created["createTodo"]["dueDate"], "0001-01-01");
    let body = app
        .graphql(
            create_todo,
            json!({ "input": { "listId": list, "title": "no", "dueDate": "0000-01-01" } }),
        )
        .await;
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "{body}");
}

/// The same boundary queries answer the same on SQLite and on PostgreSQL (the suite runs on both): the
/// expected answers below are one list for both. Instants are kept to the microsecond (PostgreSQL rounds
/// finer ones, SQLite kept them), and Google times past year 9999 in UTC are not stored.
#[tokio::test]
async fn boundary_comparisons_answer_the_same_on_every_database() {
    const EMAIL: &str = "bounds@example.com";
    let app = TestApp::spawn_with(|settings| settings.scheduler_enabled = false).await;
    app.sign_in(EMAIL).await;
    let list = app
        .data(CREATE_LIST, json!({ "input": { "name": "Bounds" } }))
        .await["createTodoList"]["id"]
        .clone();
    let create_todo = "mutation($input: CreateTodoInput!) { createTodo(input: $input) { dueAt dueDate } }";
    let todos = [
        (
            "first",
            json!({ "dueAt": "0001-01-01T00:00:00Z" }),
            "0001-01-01T00:00:00Z",
        ),
        (
            "before",
            json!({ "dueAt": "2029-12-31T23:59:59.999999Z" }),
            "2029-12-31T23:59:59.999999Z",
        ),
        (
            "at",
            json!({ "dueAt": "2030-01-01T00:00:00Z" }),
            "2030-01-01T00:00:00Z",
        ),
        (
            "nano",
            json!({ "dueAt": "2030-01-01T00:00:00.000000400Z" }),
            "2030-01-01T00:00:00Z",
        ),
        (
            "after",
            json!({ "dueAt": "2030-01-01T00:00:00.000001Z" }),
            "2030-01-01T00:00:00.000001Z",
        ),
        (
            "last",
            json!({ "dueAt": "9999-12-31T23:59:59.999999999Z" }),
            "9999-12-31T23:59:59.999999Z",
        ),
        ("day-before", json!({ "dueDate": "2029-12-31" }), ""),
        ("day-of", json!({ "dueDate": "2030-01-01" }), ""),
    ];
    for (title, due, stored) in &todos {
        let mut input = json!({ "listId": list, "title": title });
        input.as_object_mut().expect("object").extend(
            due.as_object()
                .expect("object")
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        let created = app.data(create_todo, json!({ "input": input })).await["createTodo"].clone();
        if !stored.is_empty() {
            assert_eq!(created["dueAt"], *stored, "{title}");
        }
    }
    let due_before = |bound: &'static str| {
        let app = &app;
        async move {
            let data = app
                .data(
                    "query($bound: DateTime) { todos(dueBefore: $bound, first: 50) { edges { node { title } } } }",
                    json!({ "bound": bound }),
                )
                .await;
            let mut titles: Vec<String> = data["todos"]["edges"]
                .as_array()
                .expect("edges")
                .iter()
                .filter_map(|e| e["node"]["title"].as_str().map(str::to_owned))
                .collect();
            titles.sort();
            titles
        }
    };
    let cases: [(&str, &[&str]); 6] = [
        ("2030-01-01T00:00:00Z", &["before", "day-before", "first"]),
        // Below PostgreSQL's precision: the same bound as above on both.
        (
            "2030-01-01T00:00:00.000000400Z",
            &["before", "day-before", "first"],
        ),
        (
            "2030-01-01T00:00:00.000001Z",
            &["at", "before", "day-before", "first", "nano"],
        ),
        (
            "2030-01-01T00:00:00.000002Z",
            &["after", "at", "before", "day-before", "first", "nano"],
        ),
        ("0001-01-01T00:00:00Z", &[]),
        (
            "9999-12-31T23:59:59.999999999Z",
            &["after", "at", "before", "day-before", "day-of", "first", "nano"],
        ),
    ];
    for (bound, expected) in cases {
        assert_eq!(due_before(bound).await, expected, "dueBefore {bound}");
    }

    // Events at the edges of the supported years and of a window.
    let emulator = app.emulator();
    for event in [
        json!({ "summary": "first-day", "start": { "date": "0001-01-01" }, "end": { "date": "0001-01-02" } }),
        json!({ "summary": "last-hour", "start": { "dateTime": "9999-12-31T23:00:00Z" },
                "end": { "dateTime": "9999-12-31T23:59:59Z" } }),
        // Ends in year 10000 in UTC: not stored, on either database.
        json!({ "summary": "past-9999", "start": { "dateTime": "9999-12-31T18:00:00-05:00" },
                "end": { "dateTime": "9999-12-31T20:00:00-05:00" } }),
        json!({ "summary": "touch", "start": { "dateTime": "2030-01-01T00:00:00Z" },
                "end": { "dateTime": "2030-01-01T01:00:00Z" } }),
    ] {
        emulator.insert_event(EMAIL, event).expect("insert");
    }
    let primary = calendars_of(&app)
        .await
        .into_iter()
        .find(|c| c["primary"] == true)
        .expect("primary")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let state = app.app_state().await;
    chronos::calendars::refresh_events(&state, uuid::Uuid::parse_str(&primary).expect("uuid"))
        .await
        .unwrap_or_else(|e| panic!("the refresh failed: {e:?}"));
    let window = |min: &'static str, max: &'static str| {
        let app = &app;
        let primary = primary.clone();
        async move {
            let data = app
                .data(
                    "query($ids: [ID!], $min: DateTime!, $max: DateTime!) {
                        events(calendarIds: $ids, timeMin: $min, timeMax: $max) { edges { node { summary } } } }",
                    json!({ "ids": [primary], "min": min, "max": max }),
                )
                .await;
            data["events"]["edges"]
                .as_array()
                .expect("edges")
                .iter()
                .filter_map(|e| e["node"]["summary"].as_str().map(str::to_owned))
                .collect::<Vec<_>>()
        }
    };
    let windows: [(&str, &str, &[&str]); 5] = [
        ("0001-01-01T00:00:00Z", "0001-01-03T00:00:00Z", &["first-day"]),
        (
            "9999-12-31T00:00:00Z",
            "9999-12-31T23:59:59.999999999Z",
            &["last-hour"],
        ),
        // Touching is not overlapping, at either end, whatever the digits below a microsecond.
        ("2030-01-01T01:00:00Z", "2030-01-01T02:00:00Z", &[]),
        ("2029-12-31T23:00:00Z", "2030-01-01T00:00:00.000000400Z", &[]),
        ("2030-01-01T00:59:59.999999Z", "2030-01-01T03:00:00Z", &["touch"]),
    ];
    for (min, max, expected) in windows {
        assert_eq!(window(min, max).await, expected, "window {min} .. {max}");
    }
}
