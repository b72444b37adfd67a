//! The perimeter: CSRF, Origin and Fetch-Metadata guards, headers, CORS, rate limits, encryption at rest,
//! and one user's ids behaving like missing ids for another.

use reqwest::{StatusCode, header};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;

use crate::helpers::{TestApp, error_code};

mod documents;
mod production;

const ME: &str = r#"{"query":"{ me { id } }"}"#;

async fn post_me(app: &TestApp, headers: &[(&str, String)]) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url("/graphql"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(ME);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    request.send().await.expect("POST /graphql")
}

#[tokio::test]
async fn posts_with_the_session_cookie_need_this_sessions_csrf_token() {
    let alice = TestApp::spawn().await;
    let bob = alice.new_browser();
    alice.sign_in("alice@example.com").await;
    bob.sign_in("bob@example.com").await;
    let alice_token = alice.cookie("chronos_csrf").expect("CSRF cookie");
    let bob_token = bob.cookie("chronos_csrf").expect("CSRF cookie");

    let missing = post_me(&alice, &[]).await;
    assert_eq!(missing.status(), StatusCode::FORBIDDEN);
    let body: serde_json::Value = missing.json().await.expect("JSON");
    assert_eq!(error_code(&body), Some("FORBIDDEN"));

    let foreign_token = post_me(&alice, &[("x-csrf-token", bob_token)]).await;
    assert_eq!(foreign_token.status(), StatusCode::FORBIDDEN);

    let garbage = post_me(&alice, &[("x-csrf-token", "x".repeat(66))]).await;
    assert_eq!(garbage.status(), StatusCode::FORBIDDEN);

    let own = post_me(&alice, &[("x-csrf-token", alice_token.clone())]).await;
    assert_eq!(own.status(), StatusCode::OK);

    let foreign_origin = post_me(
        &alice,
        &[
            ("x-csrf-token", alice_token.clone()),
            ("origin", "https://evil.example".into()),
        ],
    )
    .await;
    assert_eq!(foreign_origin.status(), StatusCode::FORBIDDEN);

    let cross_site = post_me(
        &alice,
        &[
            ("x-csrf-token", alice_token),
            ("sec-fetch-site", "cross-site".into()),
        ],
    )
    .await;
    assert_eq!(cross_site.status(), StatusCode::FORBIDDEN);
}

async fn websocket_upgrade(app: &TestApp, origin: &str) -> reqwest::Response {
    app.client
        .get(app.url("/graphql/ws"))
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_VERSION, "13")
        .header(header::SEC_WEBSOCKET_KEY, "dGhlIHNhbXBsZSBub25jZQ==")
        .header(header::SEC_WEBSOCKET_PROTOCOL, "graphql-transport-ws")
        .header(header::ORIGIN, origin)
        .send()
        .await
        .expect("upgrade request")
}

#[tokio::test]
async fn websocket_upgrades_from_a_foreign_origin_are_refused() {
    let app = TestApp::spawn().await;
    app.sign_in("carol@example.com").await;
    let foreign = websocket_upgrade(&app, "https://evil.example").await;
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    let own = websocket_upgrade(&app, &app.address.clone()).await;
    assert_eq!(own.status(), StatusCode::SWITCHING_PROTOCOLS);
}

#[tokio::test]
async fn security_headers_and_the_playground_csp_allows_only_its_own_files() {
    let app = TestApp::spawn().await;
    let api = app.get("/healthz").await;
    let headers = api.headers();
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert!(headers.contains_key("referrer-policy"));
    assert!(headers.contains_key("permissions-policy"));
    assert!(
        headers["content-security-policy"]
            .to_str()
            .expect("ascii")
            .contains("default-src 'none'")
    );
    assert!(
        !headers.contains_key("strict-transport-security"),
        "HSTS is for production"
    );

    let page = app.get("/graphql").await;
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .expect("ascii")
        .to_string();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    for loose in [
        "unsafe-inline",
        "unsafe-eval",
        "nonce-",
        "https:",
        "unpkg",
        "data:",
        "blob:",
    ] {
        assert!(!csp.contains(loose), "{loose} in {csp}");
    }
    let html = page.text().await.expect("html");
    assert!(html.contains("<script type=\"module\" src=\"/graphql/assets/"));
    assert!(!html.contains("<script>"), "no inline script");
    assert!(!html.contains("<style"), "no inline style");
    assert!(!html.contains("https://"), "nothing from another host");
}

#[tokio::test]
async fn cors_allows_the_frontend_origin_with_credentials_only() {
    let app = TestApp::spawn().await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/graphql"))
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(
                header::ACCESS_CONTROL_REQUEST_HEADERS,
                "content-type,x-csrf-token",
            )
            .send()
    };
    let own_origin: &'static str = Box::leak(app.address.clone().into_boxed_str());
    let allowed = preflight(own_origin).await.expect("preflight");
    assert_eq!(allowed.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], own_origin);
    assert_eq!(
        allowed.headers()[header::ACCESS_CONTROL_ALLOW_CREDENTIALS],
        "true"
    );
    let refused = preflight("https://evil.example").await.expect("preflight");
    assert!(
        !refused
            .headers()
            .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
    );
}

#[tokio::test]
async fn sign_in_and_the_callback_are_rate_limited_per_ip() {
    let app = TestApp::spawn_with(|s| s.rate_limits.signin_per_min = 3).await;
    for _ in 0..3 {
        app.data("mutation { startGoogleSignIn { url } }", json!({}))
            .await;
    }
    let body = app
        .graphql("mutation { startGoogleSignIn { url } }", json!({}))
        .await;
    assert_eq!(error_code(&body), Some("RATE_LIMITED"), "{body}");
    assert!(
        body["errors"][0]["extensions"]["retryAfter"]
            .as_u64()
            .is_some_and(|s| s >= 1)
    );

    let callback = app.get("/auth/google/callback?code=x&state=y").await;
    assert_eq!(callback.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(callback.headers().contains_key(header::RETRY_AFTER));
}

#[tokio::test]
async fn graphql_is_rate_limited_per_user_over_http() {
    let app = TestApp::spawn_with(|s| s.rate_limits.api_per_min = 5).await;
    app.sign_in("ivy@example.com").await;
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(app.post_graphql("{ me { id } }", json!({})).await.status());
    }
    let limited = app.post_graphql("{ me { id } }", json!({})).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
    assert!(limited.headers().contains_key(header::RETRY_AFTER));
    let body: serde_json::Value = limited.json().await.expect("JSON");
    assert_eq!(error_code(&body), Some("RATE_LIMITED"));
}

/// Every text and blob cell of every table, as one string per row.
pub async fn dump_database(app: &TestApp) -> Vec<String> {
    let db = chronos::db::connect(&app.server.db.url).await.expect("connect");
    let backend = db.get_database_backend();
    let tables_sql = match backend {
        sea_orm::DatabaseBackend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        }
        _ => "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public'",
    };
    let tables = db
        .query_all_raw(Statement::from_string(backend, tables_sql))
        .await
        .expect("tables");
    let mut rows = Vec::new();
    for table in tables {
        let name: String = table.try_get("", "name").expect("name");
        let select = match backend {
            sea_orm::DatabaseBackend::Sqlite => format!("SELECT * FROM \"{name}\""),
            // Every column as text: bytea becomes its \x hex form, which is checked below too.
            _ => format!("SELECT t::text AS row FROM \"{name}\" t"),
        };
        for row in db
            .query_all_raw(Statement::from_string(backend, select))
            .await
            .expect("rows")
        {
            match backend {
                sea_orm::DatabaseBackend::Sqlite => {
                    let mut cells = String::new();
                    for column in row.column_names() {
                        if let Ok(Some(text)) = row.try_get::<Option<String>>("", &column) {
                            cells.push_str(&text);
                        } else if let Ok(Some(bytes)) = row.try_get::<Option<Vec<u8>>>("", &column) {
                            cells.push_str(&String::from_utf8_lossy(&bytes));
                        }
                        cells.push('|');
                    }
                    rows.push(cells);
                }
                _ => rows.push(row.try_get::<String>("", "row").expect("row text")),
            }
        }
    }
    rows
}

/// Asserts no plaintext appears in the database, in raw or hex (bytea) form.
pub async fn assert_not_stored(app: &TestApp, plaintexts: &[&str]) {
    let rows = dump_database(app).await;
    assert!(!rows.is_empty(), "the dump read rows");
    for plaintext in plaintexts {
        let hex: String = plaintext.bytes().map(|b| format!("{b:02x}")).collect();
        for row in &rows {
            assert!(
                !row.contains(plaintext),
                "`{plaintext}` stored in plaintext: {row}"
            );
            assert!(!row.contains(&hex), "`{plaintext}` stored as hex bytes: {row}");
        }
    }
}

#[tokio::test]
async fn google_tokens_are_encrypted_at_rest() {
    let app = TestApp::spawn().await;
    app.sign_in("judy@example.com").await;
    app.connect_account("judy.work@example.com").await;
    // Every access token the emulator issues starts with `ya29.` and every refresh token with `1//`.
    assert_not_stored(&app, &["ya29.", "1//0g"]).await;
    let rows = dump_database(&app).await;
    assert!(
        rows.iter().any(|r| r.contains("judy@example.com")),
        "the dump sees the accounts"
    );
}

#[tokio::test]
async fn another_users_ids_behave_like_missing_ids() {
    let alice = TestApp::spawn().await;
    let bob = alice.new_browser();
    alice.sign_in("alice@example.com").await;
    alice.connect_account("alice.two@example.com").await;
    bob.sign_in("bob@example.com").await;
    bob.connect_account("bob.two@example.com").await;

    let alice_account = alice.accounts().await[1]["id"].as_str().expect("id").to_string();
    let missing = uuid::Uuid::now_v7().to_string();
    for id in [alice_account.as_str(), missing.as_str(), "not-a-uuid"] {
        let body = bob.disconnect_account(id).await;
        assert_eq!(error_code(&body), Some("NOT_FOUND"), "{id}: {body}");
        assert_eq!(body["errors"][0]["message"], "account not found");
    }
    assert_eq!(alice.accounts().await.as_array().expect("accounts").len(), 2);

    let alice_session = alice.sessions().await[0]["id"].as_str().expect("id").to_string();
    let body = bob.revoke_session(&alice_session).await;
    assert_eq!(error_code(&body), Some("NOT_FOUND"));
    assert!(!alice.me().await.is_null(), "Alice is still signed in");
}

fn key_ring_env(ids: &[&str], keys: &std::collections::HashMap<&str, String>) -> String {
    ids.iter()
        .map(|id| keys[id].clone())
        .collect::<Vec<_>>()
        .join(",")
}

async fn decrypt_account_tokens(app: &TestApp, ring: &str) -> Vec<Result<String, String>> {
    use sea_orm::EntityTrait;
    let cipher = chronos::crypto::Cipher::new(chronos::crypto::KeyRing::parse(ring).expect("ring"));
    let db = chronos::db::connect(&app.server.db.url).await.expect("connect");
    let accounts = chronos::entities::google_accounts::Entity::find()
        .all(&db)
        .await
        .expect("accounts");
    let mut out = Vec::new();
    for account in accounts {
        for (column, value) in [
            ("access_token", account.access_token),
            ("refresh_token", account.refresh_token),
        ] {
            let aad = chronos::crypto::Aad::new(account.user_id, "google_accounts", column, account.id);
            let value = value.expect("token stored");
            out.push(cipher.decrypt_string(&aad, &value).map_err(|e| e.to_string()));
        }
    }
    out
}

#[tokio::test]
async fn rotate_keys_re_encrypts_and_old_ciphertexts_decrypt_meanwhile() {
    let app = TestApp::spawn().await;
    app.sign_in("kate@example.com").await;
    app.connect_account("kate.two@example.com").await;
    let old = app.settings().encryption_keys.to_env_string();
    let new = chronos::crypto::KeyRing::generate("k2")
        .expect("ring")
        .to_env_string();
    let keys = std::collections::HashMap::from([("k1", old), ("k2", new)]);

    // During rotation the ring holds both keys: everything written under k1 still decrypts.
    let both = key_ring_env(&["k2", "k1"], &keys);
    let before = decrypt_account_tokens(&app, &both).await;
    assert_eq!(before.len(), 4);
    assert!(before.iter().all(Result::is_ok), "{before:?}");
    assert!(
        decrypt_account_tokens(&app, &keys["k2"])
            .await
            .iter()
            .all(Result::is_err)
    );

    let rotate = || {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_chronos"))
            .arg("rotate-keys")
            .env_clear()
            .env("DATABASE_URL", &app.server.db.url)
            .env("ENCRYPTION_KEYS", &both)
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
    };
    let first = rotate();
    assert!(first.contains("re-encrypted 4 under key k2"), "{first}");
    let second = rotate();
    assert!(
        second.contains("re-encrypted 0 under key k2"),
        "resumable and idempotent: {second}"
    );

    // Only the new key is needed now, and the values are the same tokens.
    let after = decrypt_account_tokens(&app, &keys["k2"]).await;
    assert_eq!(after, before);
}
