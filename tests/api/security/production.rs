//! Production does not publish the schema: introspection is refused over POST and over the websocket, and
//! `GET /graphql` answers 404, unless `GRAPHQL_INTROSPECTION` / `GRAPHIQL` turn them on. Development
//! serves both.

use reqwest::{StatusCode, header};
use serde_json::{Value, json};

use crate::helpers::{Socket, TestApp, error_code};

const SCHEMA: &str = "{ __schema { queryType { name } mutationType { name } } }";
/// The same question asked under an alias and through a fragment.
const TYPE_IN_FRAGMENT: &str =
    "query { ...T } fragment T on Query { described: __type(name: \"Mutation\") { fields { name } } }";
const TYPENAME: &str = "{ __typename }";

/// An anonymous connection with no Origin: a non-browser client.
async fn connect(app: &TestApp) -> Socket {
    app.websocket_with(&app.address, None).await
}

async fn post(app: &TestApp, query: &str) -> Value {
    app.graphql(query, json!({})).await
}

fn assert_refused(body: &Value) {
    assert_eq!(error_code(body), Some("FORBIDDEN"), "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("introspection is disabled"), "{body}");
    let location = &body["errors"][0]["locations"][0];
    assert!(location["line"].as_u64() >= Some(1), "a real location: {body}");
    assert!(body["data"].is_null(), "{body}");
    let text = body.to_string();
    assert!(
        !text.contains("Mutation") && !text.contains("queryType"),
        "nothing of the schema: {text}"
    );
}

fn assert_served(body: &Value) {
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(body["data"]["__schema"]["queryType"]["name"], "Query", "{body}");
    assert_eq!(
        body["data"]["__schema"]["mutationType"]["name"], "Mutation",
        "{body}"
    );
}

#[tokio::test]
async fn production_refuses_introspection_over_post_and_websocket_and_hides_graphiql() {
    let app = TestApp::spawn_production(&[]).await;
    assert!(app.settings().is_production());

    // Positive control: the endpoint answers ordinary operations.
    assert_eq!(post(&app, TYPENAME).await["data"]["__typename"], "Query");
    assert_refused(&post(&app, SCHEMA).await);
    assert_refused(&post(&app, TYPE_IN_FRAGMENT).await);

    let mut socket = connect(&app).await;
    let control = socket.run("1", TYPENAME).await;
    assert_eq!(control["data"]["__typename"], "Query", "{control}");
    assert_refused(&socket.run("2", SCHEMA).await);
    assert_refused(&socket.run("3", TYPE_IN_FRAGMENT).await);

    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    let page = app.get("/graphql").await;
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
    let body = page.text().await.expect("body");
    assert!(!body.contains("graphiql"), "{body}");
}

#[tokio::test]
async fn development_serves_introspection_and_graphiql() {
    let app = TestApp::spawn().await;
    assert!(!app.settings().is_production());

    assert_served(&post(&app, SCHEMA).await);
    let mut socket = connect(&app).await;
    assert_served(&socket.run("1", SCHEMA).await);

    let page = app.get("/graphql").await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.headers()[header::CONTENT_TYPE]
            .to_str()
            .expect("ascii")
            .starts_with("text/html")
    );
}

#[tokio::test]
async fn production_serves_introspection_and_graphiql_when_turned_on() {
    let app = TestApp::spawn_production(&[("GRAPHQL_INTROSPECTION", "true"), ("GRAPHIQL", "true")]).await;
    assert!(app.settings().is_production());

    assert_served(&post(&app, SCHEMA).await);
    let described = post(&app, TYPE_IN_FRAGMENT).await;
    assert!(described.get("errors").is_none(), "{described}");
    assert!(described["data"]["described"]["fields"].is_array(), "{described}");
    let mut socket = connect(&app).await;
    assert_served(&socket.run("1", SCHEMA).await);

    assert_eq!(app.get("/graphql").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn each_setting_turns_on_alone() {
    let app = TestApp::spawn_production(&[("GRAPHIQL", "true")]).await;
    assert_eq!(app.get("/graphql").await.status(), StatusCode::OK);
    assert_refused(&post(&app, SCHEMA).await);

    let app = TestApp::spawn_production(&[("GRAPHQL_INTROSPECTION", "yes")]).await;
    assert_served(&post(&app, SCHEMA).await);
    assert_eq!(app.get("/graphql").await.status(), StatusCode::NOT_FOUND);
}
