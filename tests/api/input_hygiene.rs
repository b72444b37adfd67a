//! Plain text in, plain text stored: control characters from clients are refused naming the field, over
//! POST and the websocket alike, and Google's strings are cleaned so they can never make a refresh fail.
//! Run on SQLite and on PostgreSQL (which refuses NUL in text columns outright).

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
