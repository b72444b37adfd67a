use base64::Engine;
use google_emulator::EmulatorConfig;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{Resp, TestEmu, to_resp};

const REDIRECT: &str = "http://localhost:9999/auth/google/callback";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-long-enough-verifier";

fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Runs the authorization endpoint and returns the redirect's query pairs.
async fn authorize(t: &TestEmu, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let ch = challenge(VERIFIER);
    let mut params: Vec<(&str, &str)> = vec![
        ("client_id", "my-client"),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        (
            "scope",
            "openid email profile https://www.googleapis.com/auth/calendar",
        ),
        ("access_type", "offline"),
        ("state", "st-123"),
        ("code_challenge", &ch),
        ("code_challenge_method", "S256"),
        ("login_hint", "alice@example.com"),
    ];
    for (k, v) in extra {
        params.retain(|(pk, _)| pk != k);
        params.push((k, v));
    }
    let resp = t
        .client
        .get(t.url("/o/oauth2/v2/auth"))
        .query(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(REDIRECT), "{location}");
    let url = url::Url::parse(&location).unwrap();
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

async fn token_form(t: &TestEmu, form: &[(&str, &str)]) -> Resp {
    let resp = t.client.post(t.url("/token")).form(form).send().await.unwrap();
    to_resp(resp).await
}

async fn exchange(t: &TestEmu, code: &str, verifier: &str, redirect: &str) -> Resp {
    token_form(
        t,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("client_id", "my-client"),
            ("client_secret", "my-secret"),
            ("redirect_uri", redirect),
            ("code_verifier", verifier),
        ],
    )
    .await
}

fn jwt_claims(token: &str) -> Value {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[1])
        .unwrap();
    serde_json::from_slice(&raw).unwrap()
}

fn assert_auth_error(r: &Resp) {
    assert_eq!(r.status, 401);
    let expected = json!({"error":{"code":401,"message":"Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.","errors":[{"message":"Invalid Credentials","domain":"global","reason":"authError","location":"Authorization","locationType":"header"}],"status":"UNAUTHENTICATED"}});
    assert_eq!(r.body, expected);
}

#[tokio::test]
async fn full_round_trip_with_pkce_refresh_and_revoke() {
    let t = TestEmu::start().await;
    let pairs = authorize(&t, &[]).await;
    assert_eq!(param(&pairs, "state"), Some("st-123"));
    let scope = param(&pairs, "scope").unwrap();
    assert!(scope.contains("https://www.googleapis.com/auth/calendar"));
    assert!(scope.contains("https://www.googleapis.com/auth/userinfo.email"));
    let code = param(&pairs, "code").unwrap().to_owned();

    let r = exchange(&t, &code, VERIFIER, REDIRECT).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["token_type"], "Bearer");
    assert_eq!(r.body["expires_in"], 3599);
    assert!(r.body["scope"].as_str().unwrap().contains("openid"));
    let access = r.body["access_token"].as_str().unwrap().to_owned();
    let refresh = r.body["refresh_token"].as_str().unwrap().to_owned();
    let claims = jwt_claims(r.body["id_token"].as_str().unwrap());
    assert_eq!(claims["aud"], "my-client");
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["iss"], "https://accounts.google.com");

    // userinfo (v3 and OIDC paths)
    for path in ["/oauth2/v3/userinfo", "/v1/userinfo"] {
        let r = t.get(&access, path).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["email"], "alice@example.com");
        assert_eq!(r.body["email_verified"], true);
        assert_eq!(r.body["sub"], claims["sub"]);
        assert!(
            r.body["sub"]
                .as_str()
                .unwrap()
                .bytes()
                .all(|b| b.is_ascii_digit())
        );
        assert!(r.body["name"].is_string());
        assert!(r.body["given_name"].is_string());
        assert!(r.body["picture"].is_string());
    }

    // the access token works on the Calendar API; its primary calendar is the email
    let r = t.get(&access, "/calendar/v3/calendars/primary").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["id"], "alice@example.com");
    assert_eq!(r.body["timeZone"], "UTC");

    // refresh with HTTP Basic client authentication: no new refresh token
    let resp = t
        .client
        .post(t.url("/token"))
        .basic_auth("my-client", Some("my-secret"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])
        .send()
        .await
        .unwrap();
    let r = to_resp(resp).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.get("refresh_token").is_none());
    let access2 = r.body["access_token"].as_str().unwrap().to_owned();
    assert_ne!(access2, access);
    assert_eq!(t.get(&access2, "/calendar/v3/colors").await.status, 200);

    // the code is single-use
    let r = exchange(&t, &code, VERIFIER, REDIRECT).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body,
        json!({"error":"invalid_grant","error_description":"Bad Request"})
    );

    // revoke the refresh token: the grant's access tokens die too
    let resp = t
        .client
        .post(t.url("/revoke"))
        .query(&[("token", &refresh)])
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let r = token_form(
        &t,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", "my-client"),
            ("client_secret", "my-secret"),
        ],
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body,
        json!({"error":"invalid_grant","error_description":"Token has been expired or revoked."})
    );
    assert_auth_error(&t.get(&access, "/calendar/v3/colors").await);
    assert_auth_error(&t.get(&access2, "/calendar/v3/colors").await);
    // revoking again is an error
    let resp = t
        .client
        .post(t.url("/revoke"))
        .form(&[("token", &refresh)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn bad_verifier_redirect_and_missing_params() {
    let t = TestEmu::start().await;
    let pairs = authorize(&t, &[]).await;
    let code = param(&pairs, "code").unwrap().to_owned();

    let r = exchange(
        &t,
        &code,
        "wrong-verifier-wrong-verifier-wrong-verifier",
        REDIRECT,
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"], "invalid_grant");
    assert_eq!(r.body["error_description"], "Invalid code verifier.");

    let r = exchange(&t, &code, VERIFIER, "http://localhost:9999/other").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"], "redirect_uri_mismatch");

    let r = token_form(
        &t,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", "my-client"),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert_eq!(r.body["error_description"], "Missing code verifier.");

    let r = exchange(&t, "4/0Anonsense", VERIFIER, REDIRECT).await;
    assert_eq!(
        r.body,
        json!({"error":"invalid_grant","error_description":"Bad Request"})
    );

    let r = token_form(&t, &[("grant_type", "password"), ("client_id", "my-client")]).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"], "unsupported_grant_type");

    // failed attempts did not consume the code
    let r = exchange(&t, &code, VERIFIER, REDIRECT).await;
    assert_eq!(r.status, 200, "{}", r.body);

    // plain PKCE and no offline access: no refresh token
    let pairs = authorize(
        &t,
        &[
            ("code_challenge", "plain-challenge-value-plain-challenge-value"),
            ("code_challenge_method", "plain"),
            ("access_type", "online"),
            ("scope", "https://www.googleapis.com/auth/calendar"),
        ],
    )
    .await;
    let code = param(&pairs, "code").unwrap().to_owned();
    let r = exchange(&t, &code, "plain-challenge-value-plain-challenge-value", REDIRECT).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.get("refresh_token").is_none());
    assert!(r.body.get("id_token").is_none());

    // authorize without redirect_uri: an error page, no redirect
    let resp = t
        .client
        .get(t.url("/o/oauth2/v2/auth"))
        .query(&[("client_id", "x"), ("response_type", "code"), ("scope", "email")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // unsupported response_type redirects with an error
    let resp = t
        .client
        .get(t.url("/o/oauth2/v2/auth"))
        .query(&[
            ("client_id", "x"),
            ("redirect_uri", REDIRECT),
            ("response_type", "token"),
            ("scope", "email"),
            ("state", "s"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    let loc = resp.headers()["location"].to_str().unwrap();
    assert!(loc.contains("error=unsupported_response_type"), "{loc}");
    assert!(loc.contains("state=s"));
}

#[tokio::test]
async fn default_account_and_configured_client() {
    let t = TestEmu::start_with(EmulatorConfig {
        client_id: Some("good".into()),
        client_secret: Some("secret".into()),
        default_account_email: Some("user@example.com".into()),
        ..EmulatorConfig::default()
    })
    .await;
    let resp = t
        .client
        .get(t.url("/o/oauth2/v2/auth"))
        .query(&[
            ("client_id", "bad"),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", "email"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    let resp = t
        .client
        .get(t.url("/o/oauth2/v2/auth"))
        .query(&[
            ("client_id", "good"),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", "openid email"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    let loc = url::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
    let code = loc
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let form = |secret: &'static str| {
        vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.clone()),
            ("client_id", "good".to_owned()),
            ("client_secret", secret.to_owned()),
            ("redirect_uri", REDIRECT.to_owned()),
        ]
    };
    let r = to_resp(
        t.client
            .post(t.url("/token"))
            .form(&form("nope"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["error"], "invalid_client");
    let r = to_resp(
        t.client
            .post(t.url("/token"))
            .form(&form("secret"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let access = r.body["access_token"].as_str().unwrap();
    let r = t.get(access, "/oauth2/v3/userinfo").await;
    assert_eq!(r.body["email"], "user@example.com");
    // no profile scope: no name
    assert!(r.body.get("name").is_none());
}

#[tokio::test]
async fn expiry_revocation_and_credentials_in_query() {
    let t = TestEmu::start().await;
    let token = t.token("carol@example.com").await;

    // missing credentials
    let r = to_resp(
        t.client
            .get(t.url("/calendar/v3/users/me/calendarList"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["error"]["errors"][0]["reason"], "required");
    assert_eq!(r.body["error"]["status"], "UNAUTHENTICATED");

    // access_token / oauth_token query parameters and ignored standard parameters
    for p in ["access_token", "oauth_token"] {
        let r = to_resp(
            t.client
                .get(t.url(&format!(
                    "/calendar/v3/users/me/calendarList?{p}={token}&alt=json&prettyPrint=false&fields=items(id)&quotaUser=q&key=k"
                )))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }

    // expire all access tokens
    let r = t
        .control(Method::POST, "/emulator/expire-access-tokens", json!({}))
        .await;
    assert_eq!(r.status, 200);
    assert_auth_error(&t.get(&token, "/calendar/v3/users/me/calendarList").await);

    // TTL 0: tokens are born expired
    let t2 = TestEmu::start_with(EmulatorConfig {
        access_token_ttl_secs: 0,
        ..EmulatorConfig::default()
    })
    .await;
    let token = t2.token("dan@example.com").await;
    assert_auth_error(&t2.get(&token, "/calendar/v3/colors").await);

    // control revoke: refresh gives invalid_grant, access tokens 401
    let pairs = authorize(&t, &[("login_hint", "erin@example.com")]).await;
    let code = param(&pairs, "code").unwrap().to_owned();
    let r = exchange(&t, &code, VERIFIER, REDIRECT).await;
    let access = r.body["access_token"].as_str().unwrap().to_owned();
    let refresh = r.body["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(t.get(&access, "/calendar/v3/colors").await.status, 200);
    let r = t
        .control(
            Method::POST,
            "/emulator/accounts/erin@example.com/revoke",
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_auth_error(&t.get(&access, "/calendar/v3/colors").await);
    let r = token_form(
        &t,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", "my-client"),
        ],
    )
    .await;
    assert_eq!(r.body["error"], "invalid_grant");
    assert_eq!(r.body["error_description"], "Token has been expired or revoked.");

    // userinfo with a bad token
    let r = t.get("nonsense", "/oauth2/v3/userinfo").await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn scopes_are_enforced() {
    let t = TestEmu::start().await;
    t.token("ro@example.com").await;
    let r = t
        .control(
            Method::POST,
            "/emulator/accounts/ro@example.com/token",
            json!({"scopes": ["https://www.googleapis.com/auth/calendar.readonly"]}),
        )
        .await;
    let ro = r.body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        t.get(&ro, "/calendar/v3/calendars/primary/events").await.status,
        200
    );
    let r = t
        .call(
            Method::POST,
            &ro,
            "/calendar/v3/calendars/primary/events",
            Some(crate::helpers::timed(
                "x",
                "2024-01-01T10:00:00Z",
                "2024-01-01T11:00:00Z",
            )),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.body["error"]["errors"][0]["reason"], "insufficientPermissions");
    assert_eq!(
        r.body["error"]["message"],
        "Request had insufficient authentication scopes."
    );
}

/// The `href` of every account link of the chooser, by `data-email`.
fn chooser_links(html: &str) -> Vec<(String, String)> {
    html.split("<a class=\"account\" data-email=\"")
        .skip(1)
        .map(|rest| {
            let (email, rest) = rest.split_once('"').unwrap();
            let href = rest.split("href=\"").nth(1).unwrap().split('"').next().unwrap();
            (email.to_owned(), href.replace("&amp;", "&"))
        })
        .collect()
}

#[tokio::test]
async fn without_login_hint_the_chooser_lists_accounts_and_picking_one_signs_in_as_it() {
    let t = TestEmu::start().await;
    for email in ["alice@example.com", "bob@example.com"] {
        let r = t
            .control(Method::POST, "/emulator/accounts", json!({"email": email}))
            .await;
        assert_eq!(r.status, 200);
    }
    let ch = challenge(VERIFIER);
    let params = [
        ("client_id", "my-client"),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        ("scope", "openid email https://www.googleapis.com/auth/calendar"),
        ("state", "st-chooser"),
        ("code_challenge", ch.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let resp = t
        .client
        .get(t.url("/o/oauth2/v2/auth"))
        .query(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "a page, not a redirect");
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page_url = resp.url().clone();
    let html = resp.text().await.unwrap();
    let links = chooser_links(&html);
    let emails: Vec<&str> = links.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(emails, ["alice@example.com", "bob@example.com"], "{html}");
    assert!(
        html.contains("name=\"login_hint\""),
        "a field for another address"
    );
    assert!(
        t.emu().issue_access_token("alice@example.com").is_ok(),
        "a known account has a token"
    );
    assert!(
        t.emu().issue_access_token("user@example.com").is_err(),
        "no default account was created behind the chooser"
    );

    // Picking bob follows his link: the same authorization request with his login_hint.
    let (_, bob_href) = links.iter().find(|(e, _)| e == "bob@example.com").unwrap();
    assert!(bob_href.starts_with("/o/oauth2/v2/auth?"), "{bob_href}");
    let pick = page_url.join(bob_href).unwrap();
    let picked: Vec<(String, String)> = pick.query_pairs().into_owned().collect();
    assert_eq!(param(&picked, "login_hint"), Some("bob@example.com"));
    assert_eq!(param(&picked, "state"), Some("st-chooser"));
    let resp = t.client.get(pick).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    let location = url::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
    assert!(location.as_str().starts_with(REDIRECT));
    let pairs: Vec<(String, String)> = location.query_pairs().into_owned().collect();
    assert_eq!(param(&pairs, "state"), Some("st-chooser"));
    let code = param(&pairs, "code").unwrap();
    let r = exchange(&t, code, VERIFIER, REDIRECT).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let access = r.body["access_token"].as_str().unwrap();
    let r = t.get(access, "/oauth2/v3/userinfo").await;
    assert_eq!(r.body["email"], "bob@example.com");

    // The form for another address carries the request along and signs in as the typed address.
    let mut other: Vec<(&str, &str)> = params.to_vec();
    other.push(("login_hint", "carol@example.com"));
    let resp = t
        .client
        .get(t.url("/o/oauth2/v2/auth"))
        .query(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    for (name, value) in &params {
        assert!(
            html.contains(&format!(
                "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
                value.replace('&', "&amp;")
            )),
            "the form keeps {name}"
        );
    }
}
