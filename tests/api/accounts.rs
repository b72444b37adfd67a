//! Signing in with Google, connecting more accounts, sessions.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, error_code, location};

#[tokio::test]
async fn two_users_each_with_two_google_accounts() {
    let alice = TestApp::spawn().await;
    let bob = alice.new_browser();

    alice.sign_in("alice@example.com").await;
    assert_eq!(alice.me().await["email"], "alice@example.com");
    let landing = alice.connect_account("alice.work@example.com").await;
    assert!(!landing.contains("error="), "{landing}");

    bob.sign_in("bob@example.com").await;
    let landing = bob.connect_account("bob.work@example.com").await;
    assert!(!landing.contains("error="), "{landing}");

    let emails = |accounts: serde_json::Value| -> Vec<String> {
        accounts
            .as_array()
            .expect("accounts")
            .iter()
            .map(|a| a["email"].as_str().expect("email").to_string())
            .collect()
    };
    assert_eq!(
        emails(alice.accounts().await),
        ["alice@example.com", "alice.work@example.com"]
    );
    assert_eq!(
        emails(bob.accounts().await),
        ["bob@example.com", "bob.work@example.com"]
    );
    assert_ne!(alice.me().await["id"], bob.me().await["id"]);

    // Bob cannot attach an account that belongs to Alice.
    let refused = bob.connect_account("alice.work@example.com").await;
    assert!(refused.contains("error=account_in_use"), "{refused}");
    assert_eq!(emails(bob.accounts().await).len(), 2);
    assert_eq!(emails(alice.accounts().await).len(), 2);

    // Signing in again with a connected account lands on the same user.
    let alice_again = alice.new_browser();
    alice_again.sign_in("alice.work@example.com").await;
    assert_eq!(alice_again.me().await["id"], alice.me().await["id"]);
}

#[tokio::test]
async fn the_session_id_changes_at_sign_in_and_the_csrf_cookie_follows() {
    let app = TestApp::spawn().await;
    app.data("mutation { startGoogleSignIn { url } }", json!({}))
        .await;
    let anonymous_session = app.cookie("chronos_session").expect("anonymous session cookie");
    let anonymous_csrf = app
        .cookie("chronos_csrf")
        .expect("CSRF cookie with the anonymous session");
    app.sign_in("carol@example.com").await;
    let signed_in_session = app.cookie("chronos_session").expect("session cookie");
    assert_ne!(anonymous_session, signed_in_session);
    // The next response reissues the CSRF cookie for the new session.
    app.me().await;
    let csrf = app.cookie("chronos_csrf").expect("CSRF cookie");
    assert_ne!(csrf, anonymous_csrf);
}

#[tokio::test]
async fn callback_errors_redirect_with_a_code() {
    let app = TestApp::spawn().await;
    let denied = app.get("/auth/google/callback?error=access_denied&state=x").await;
    assert_eq!(denied.status(), StatusCode::FOUND);
    assert!(location(&denied).contains("error=access_denied"));

    let unknown_state = app.get("/auth/google/callback?code=abc&state=forged").await;
    assert_eq!(unknown_state.status(), StatusCode::FOUND);
    assert!(location(&unknown_state).contains("error=invalid_state"));

    // A real state with a code Google does not know: the exchange fails.
    let data = app
        .data("mutation { startGoogleSignIn { url } }", json!({}))
        .await;
    let url = url::Url::parse(data["startGoogleSignIn"]["url"].as_str().expect("url")).expect("url");
    let state = url
        .query_pairs()
        .find(|(k, _)| k == "state")
        .expect("state")
        .1
        .to_string();
    let bad_code = app
        .get(&format!("/auth/google/callback?code=bogus&state={state}"))
        .await;
    assert!(location(&bad_code).contains("error=token_exchange_failed"));
    // The state was used up.
    let replay = app
        .get(&format!("/auth/google/callback?code=bogus&state={state}"))
        .await;
    assert!(location(&replay).contains("error=invalid_state"));
    assert!(app.me().await.is_null());
}

#[tokio::test]
async fn redirect_to_must_be_on_an_allowed_origin() {
    let app = TestApp::spawn().await;
    let body = app
        .graphql(
            "mutation { startGoogleSignIn(redirectTo: \"https://evil.example/steal\") { url } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"));
    let path = "/calendar?view=week";
    let data = app
        .data(
            "mutation($to: String) { startGoogleSignIn(redirectTo: $to, loginHint: \"dan@example.com\") { url } }",
            json!({ "to": path }),
        )
        .await;
    let authorize = data["startGoogleSignIn"]["url"].as_str().expect("url");
    let consent = app.client.get(authorize).send().await.expect("authorize");
    let landing = app.client.get(location(&consent)).send().await.expect("callback");
    assert_eq!(location(&landing), app.url(path));
}

#[tokio::test]
async fn sessions_survive_a_restart() {
    let mut app = TestApp::spawn().await;
    app.sign_in("erin@example.com").await;
    let before = app.me().await;
    app.restart().await;
    assert_eq!(app.me().await, before);
}

#[tokio::test]
async fn revoke_session_ends_the_other_session_at_once() {
    let laptop = TestApp::spawn().await;
    let phone = laptop.new_browser();
    laptop.sign_in("frank@example.com").await;
    phone.sign_in("frank@example.com").await;
    let sessions = laptop.sessions().await;
    let sessions = sessions.as_array().expect("sessions");
    assert_eq!(sessions.len(), 2);
    let other = sessions
        .iter()
        .find(|s| s["current"] == false)
        .expect("the phone's session");
    let id = other["id"].as_str().expect("id");
    assert_ne!(
        Some(id.to_string()),
        phone.cookie("chronos_session"),
        "ids are not cookie values"
    );

    assert_eq!(laptop.revoke_session(id).await["data"]["revokeSession"], true);
    assert!(phone.me().await.is_null(), "the phone is signed out at once");
    assert!(!laptop.me().await.is_null());
    let again = laptop.revoke_session(id).await;
    assert_eq!(error_code(&again), Some("NOT_FOUND"));
}

#[tokio::test]
async fn disconnecting_the_account_a_session_signed_in_with_ends_that_session() {
    let app = TestApp::spawn().await;
    app.sign_in("ivy@example.com").await;
    app.connect_account("ivy.side@example.com").await;
    let accounts = app.accounts().await;
    let signed_in_with = accounts[0]["id"].as_str().expect("id").to_string();
    assert_eq!(accounts[0]["email"], "ivy@example.com");
    assert_eq!(app.me().await["email"], "ivy@example.com");

    let body = app.disconnect_account(&signed_in_with).await;
    assert_eq!(body["data"]["disconnectGoogleAccount"], true, "{body}");
    assert!(app.me().await.is_null(), "the session ended with its account");
    // The user goes on with the other account.
    app.sign_in("ivy.side@example.com").await;
    assert_eq!(app.me().await["email"], "ivy@example.com");
    assert_eq!(app.accounts().await.as_array().expect("accounts").len(), 1);
}

/// A request of a session in flight while the session ends saves nothing back: the session stays ended.
#[tokio::test]
async fn an_ended_session_is_not_recreated_by_saving_it() {
    use tower_sessions::{SessionStore, session::Id};

    let app = TestApp::spawn().await;
    app.sign_in("jude@example.com").await;
    let state = app.app_state().await;
    let id: Id = app
        .cookie("chronos_session")
        .expect("session cookie")
        .parse()
        .expect("session id");
    let record = state
        .sessions
        .load(&id)
        .await
        .expect("load")
        .expect("the session");
    // Control: saving a live session keeps it.
    state.sessions.save(&record).await.expect("save");
    assert_eq!(app.me().await["email"], "jude@example.com");

    state.sessions.delete(&id).await.expect("delete");
    state.sessions.save(&record).await.expect("save");
    assert!(app.me().await.is_null(), "the ended session stays ended");
}

#[tokio::test]
async fn sign_out_ends_the_session_and_clears_the_csrf_cookie() {
    let app = TestApp::spawn().await;
    app.sign_in("gina@example.com").await;
    assert_eq!(app.sign_out().await["data"]["signOut"], true);
    assert!(app.me().await.is_null());
    assert_eq!(app.cookie("chronos_csrf"), None);
}

#[tokio::test]
async fn disconnect_revokes_at_google_and_keeps_the_last_account() {
    let app = TestApp::spawn().await;
    app.sign_in("hank@example.com").await;
    app.connect_account("hank.side@example.com").await;
    let accounts = app.accounts().await;
    let primary = accounts[0]["id"].as_str().expect("id").to_string();
    let side = accounts[1]["id"].as_str().expect("id").to_string();

    assert_eq!(
        app.disconnect_account(&side).await["data"]["disconnectGoogleAccount"],
        true
    );
    assert_eq!(app.accounts().await.as_array().expect("accounts").len(), 1);
    let requests: serde_json::Value = app
        .client
        .get(app.emulator_url("/emulator/requests"))
        .send()
        .await
        .expect("request log")
        .json()
        .await
        .expect("JSON");
    assert!(
        requests.to_string().contains("/revoke"),
        "the grant is revoked at Google: {requests}"
    );
    let last = app.disconnect_account(&primary).await;
    assert_eq!(error_code(&last), Some("BAD_USER_INPUT"));
}

#[tokio::test]
async fn signed_out_callers_get_unauthenticated() {
    let app = TestApp::spawn().await;
    for query in [
        "{ accounts { id } }",
        "{ sessions { id } }",
        "mutation { connectGoogleAccount { url } }",
    ] {
        let body = app.graphql(query, json!({})).await;
        assert_eq!(error_code(&body), Some("UNAUTHENTICATED"), "{query}: {body}");
    }
}
