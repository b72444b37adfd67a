//! The reference web client at `/` (`WEB_CLIENT`): served with the strict CSP and its files under one
//! content hash when on; when off, `/` leads to the playground as before and the client's files are not
//! served.

use reqwest::{StatusCode, header};

use crate::helpers::{TestApp, location};

const STRICT_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

fn asset_links(html: &str) -> Vec<String> {
    html.split('"')
        .filter(|s| s.starts_with("/assets/"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn when_on_the_root_serves_the_client_with_its_files_under_one_hash() {
    let app = TestApp::spawn_with(|settings| settings.web_client = true).await;
    // A failed sign-in lands on `/?error=<code>`: the same page, which explains the code itself.
    for path in ["/", "/?error=account_in_use"] {
        let page = app.get(path).await;
        assert_eq!(page.status(), StatusCode::OK, "{path}");
        assert_eq!(page.headers()[header::CONTENT_SECURITY_POLICY], STRICT_CSP);
        assert_eq!(page.headers()[header::CACHE_CONTROL], "no-cache");
        assert!(
            page.headers()[header::CONTENT_TYPE]
                .to_str()
                .expect("ascii")
                .starts_with("text/html")
        );
    }
    let html = app.get("/").await.text().await.expect("html");
    assert!(html.contains("<script type=\"module\" src=\"/assets/"), "{html}");
    assert!(
        !html.contains("<script>") && !html.contains("style=\""),
        "nothing inline: {html}"
    );
    let hash = app.assert_hashed_bundle("/", "/assets").await;
    // Modules the page does not link are imported by relative path under the same hash; the
    // websocket client is the playground's own file, served in both.
    for module in [
        "accounts.js",
        "event-form.js",
        "todos.js",
        "sync.js",
        "live.js",
        "errors.js",
    ] {
        let response = app.get(&format!("/assets/{hash}/{module}")).await;
        assert_eq!(response.status(), StatusCode::OK, "{module}");
        assert!(
            response.headers()[header::CONTENT_TYPE]
                .to_str()
                .expect("ascii")
                .starts_with("text/javascript")
        );
    }
    let playground = app.get("/graphql").await.text().await.expect("playground");
    let playground_hash = playground
        .split("/graphql/assets/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("the playground's hash");
    let shared = app
        .get(&format!("/assets/{hash}/transport.js"))
        .await
        .bytes()
        .await
        .expect("bytes");
    let own = app
        .get(&format!("/graphql/assets/{playground_hash}/transport.js"))
        .await
        .bytes()
        .await
        .expect("bytes");
    assert_eq!(shared, own, "one transport.js for both pages");
    assert_eq!(
        app.get(&format!("/assets/{hash}/../Cargo.toml")).await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn when_off_the_root_redirects_to_the_playground_and_no_client_is_served() {
    let app = TestApp::spawn().await;
    let root = app.get("/").await;
    assert_eq!(root.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&root), "/graphql");
    let failed = app.get("/?error=account_in_use").await;
    assert_eq!(location(&failed), "/graphql?error=account_in_use");
    // The positive control: the client's hash, as the server would serve it when on.
    let on = TestApp::spawn_with(|settings| settings.web_client = true).await;
    let html = on.get("/").await.text().await.expect("html");
    let link = asset_links(&html).into_iter().next().expect("an asset link");
    assert_eq!(on.get(&link).await.status(), StatusCode::OK);
    assert_eq!(app.get(&link).await.status(), StatusCode::NOT_FOUND);
}
