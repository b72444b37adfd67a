//! The GraphQL endpoint over HTTP: what executes, what is refused, and the limits.

use reqwest::{StatusCode, header};
use serde_json::json;

use crate::helpers::{TestApp, error_code};

/// What a response holds when `{ __typename }` ran.
const EXECUTED: &str = r#""__typename":"Query""#;

#[tokio::test]
async fn typename_answers_over_post() {
    let app = TestApp::spawn().await;
    let body = app.graphql("{ __typename }", json!({})).await;
    assert_eq!(body, json!({ "data": { "__typename": "Query" } }));
}

#[tokio::test]
async fn me_is_null_when_signed_out() {
    let app = TestApp::spawn().await;
    let body = app.graphql("{ me { id email } }", json!({})).await;
    assert_eq!(body["data"]["me"], serde_json::Value::Null);
    assert!(body.get("errors").is_none(), "{body}");
}

#[tokio::test]
async fn text_plain_and_multipart_posts_execute_nothing() {
    let app = TestApp::spawn().await;
    let query = r#"{"query":"{ __typename }"}"#;
    for content_type in [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
    ] {
        let response = app.post_raw("/graphql", content_type, query).await;
        assert_eq!(
            response.status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type}"
        );
        let text = response.text().await.expect("body");
        assert!(!text.contains(EXECUTED), "{content_type} executed: {text}");
    }
    let boundary = "X-BOUNDARY";
    let multipart = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n{query}\r\n--{boundary}--\r\n"
    );
    let response = app
        .post_raw(
            "/graphql",
            &format!("multipart/form-data; boundary={boundary}"),
            multipart,
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(!response.text().await.expect("body").contains(EXECUTED));
}

#[tokio::test]
async fn get_with_a_query_serves_the_playground_and_executes_nothing() {
    let app = TestApp::spawn().await;
    let response = app.get("/graphql?query=%7B__typename%7D").await;
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()[header::CONTENT_TYPE]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let text = response.text().await.expect("body");
    assert!(
        text.contains("Chronos playground"),
        "the playground page expected"
    );
    assert!(!text.contains(EXECUTED), "the query must not run");
}

#[tokio::test]
async fn batches_and_malformed_json_are_refused_with_bad_user_input() {
    let app = TestApp::spawn().await;
    let batch = r#"[{"query":"{ __typename }"},{"query":"{ __typename }"}]"#;
    for body in [batch, "{not json", "42"] {
        let response = app.post_raw("/graphql", "application/json", body).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        let json: serde_json::Value = response.json().await.expect("JSON error");
        assert_eq!(json["error"]["code"], "BAD_USER_INPUT", "{body}");
    }
}

#[tokio::test]
async fn a_depth_20_query_is_refused() {
    let app = TestApp::spawn().await;
    let mut selection = String::from("name");
    for _ in 0..17 {
        selection = format!("ofType {{ {selection} }}");
    }
    let query = format!("{{ __schema {{ types {{ fields {{ type {{ {selection} }} }} }} }} }}");
    let body = app.graphql(&query, json!({})).await;
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .expect("message")
            .contains("too deep"),
        "{body}"
    );
    assert!(body.get("data").is_none_or(|d| d.is_null()), "{body}");
}

#[tokio::test]
async fn a_query_over_the_complexity_limit_is_refused() {
    let app = TestApp::spawn().await;
    // Each feed of 1000 costs 1000 times its change's fields; four of them are over the budget.
    let feeds: String = (0..4)
        .map(|i| format!("f{i}: eventChanges(first: 1000) {{ changes {{ eventId deleted event {{ id summary start {{ dateTime }} }} }} }} "))
        .collect();
    let query = format!("{{ {feeds} }}");
    let body = app.graphql(&query, json!({})).await;
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .expect("message")
            .contains("complex"),
        "{body}"
    );
}

#[tokio::test]
async fn a_two_mebibyte_body_gets_413() {
    let app = TestApp::spawn().await;
    let padding = "x".repeat(2 * 1024 * 1024);
    let body = format!(r#"{{"query":"{{ __typename }}","variables":{{"pad":"{padding}"}}}}"#);
    let response = app.post_raw("/graphql", "application/json", body).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn syntax_errors_carry_bad_user_input() {
    let app = TestApp::spawn().await;
    let body = app.graphql("{ me { ", json!({})).await;
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "{body}");
}

#[tokio::test]
async fn a_foreign_origin_or_cross_site_fetch_is_refused() {
    let app = TestApp::spawn().await;
    let request = |name: &'static str, value: &'static str| {
        app.client
            .post(app.url("/graphql"))
            .header(name, value)
            .json(&json!({ "query": "{ __typename }" }))
    };
    let foreign = request("origin", "https://evil.example")
        .send()
        .await
        .expect("POST");
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    let cross_site = request("sec-fetch-site", "cross-site")
        .send()
        .await
        .expect("POST");
    assert_eq!(cross_site.status(), StatusCode::FORBIDDEN);
    let own = app.address.clone();
    let same = app
        .client
        .post(app.url("/graphql"))
        .header("origin", own)
        .header("sec-fetch-site", "same-origin")
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .expect("POST");
    assert_eq!(same.status(), StatusCode::OK);
}

/// The playground's files: every URL on the page is under one content hash, served with a year of
/// caching and compressed; the page itself is revalidated; a stale hash or unknown file is a 404.
#[tokio::test]
async fn the_playground_assets_are_hashed_immutable_and_compressed() {
    let app = TestApp::spawn().await;
    let page = app
        .client
        .get(app.url("/graphql"))
        .header(header::ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .expect("GET /graphql");
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()[header::CACHE_CONTROL], "no-cache");
    assert_eq!(page.headers()[header::CONTENT_ENCODING], "gzip");
    let hash = app.assert_hashed_bundle("/graphql", "/graphql/assets").await;
    // Modules import their siblings under the same hash.
    for module in [
        "transport.js",
        "schema.js",
        "editor.js",
        "history.js",
        "banner.js",
    ] {
        let response = app.get(&format!("/graphql/assets/{hash}/{module}")).await;
        assert_eq!(response.status(), StatusCode::OK, "{module}");
    }
    let unknown = app.get(&format!("/graphql/assets/{hash}/../Cargo.toml")).await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let unknown = app.get(&format!("/graphql/assets/{hash}/secret.js")).await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}
