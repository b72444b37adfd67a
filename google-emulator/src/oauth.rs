//! Google OAuth 2.0 and OpenID Connect: authorization (auto-consent), token, revoke,
//! userinfo, tokeninfo and discovery.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::Emulator;
use crate::auth::{SCOPE_PREFIX, bearer};
use crate::config::EmulatorConfig;
use crate::error::OAuthError;
use crate::state::{AccessToken, AuthCode, Grant, State as World};
use crate::util::{self, Params};

pub const ISSUER: &str = "https://accounts.google.com";
const EMAIL_SCOPE: &str = "https://www.googleapis.com/auth/userinfo.email";
const PROFILE_SCOPE: &str = "https://www.googleapis.com/auth/userinfo.profile";
const DIRECT_CLIENT: &str = "google-emulator";

pub fn routes() -> Router<Emulator> {
    Router::new()
        .route("/o/oauth2/v2/auth", get(authorize))
        .route("/o/oauth2/auth", get(authorize))
        .route("/token", axum::routing::post(token))
        .route("/o/oauth2/token", axum::routing::post(token))
        .route("/oauth2/v4/token", axum::routing::post(token))
        .route("/revoke", axum::routing::post(revoke).get(revoke))
        .route("/o/oauth2/revoke", axum::routing::post(revoke).get(revoke))
        .route("/oauth2/v3/userinfo", get(userinfo_v3).post(userinfo_v3))
        .route("/v1/userinfo", get(userinfo_v3).post(userinfo_v3))
        .route("/oauth2/v2/userinfo", get(userinfo_v2))
        .route("/oauth2/v3/tokeninfo", get(tokeninfo).post(tokeninfo))
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/oauth2/v3/certs", get(certs))
}

/// Expands the short scope names Google accepts.
fn expand_scope(s: &str) -> String {
    match s {
        "email" => EMAIL_SCOPE.to_owned(),
        "profile" => PROFILE_SCOPE.to_owned(),
        "openid" => "openid".to_owned(),
        other if other.starts_with("https://") => other.to_owned(),
        other if other.starts_with("calendar") || other.starts_with("userinfo.") => {
            format!("{SCOPE_PREFIX}{other}")
        }
        other => other.to_owned(),
    }
}

fn has_scope(scopes: &[String], wanted: &[&str]) -> bool {
    scopes.iter().any(|s| wanted.contains(&s.as_str()))
}

fn error_page(status: StatusCode, error: &str, detail: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html><html><head><title>Error {code}: {error}</title></head><body>\
         <h1>Access blocked: authorization error</h1><p>Error {code}: {error}</p><p>{detail}</p></body></html>",
        code = status.as_u16()
    );
    let mut resp = (status, html).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    resp
}

fn redirect(url: &str) -> Response {
    let mut resp = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(url) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

fn with_query(base: &url::Url, pairs: &[(&str, &str)]) -> String {
    let mut u = base.clone();
    {
        let mut q = u.query_pairs_mut();
        for (k, v) in pairs {
            q.append_pair(k, v);
        }
    }
    u.to_string()
}

async fn authorize(State(emu): State<Emulator>, uri: axum::http::Uri, RawQuery(q): RawQuery) -> Response {
    let p = Params::parse(q.as_deref());
    let cfg = emu.config();
    let Some(client_id) = p.get_nonempty("client_id") else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing required parameter: client_id",
        );
    };
    if let Some(expected) = &cfg.client_id
        && expected != client_id
    {
        return error_page(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "The OAuth client was not found.",
        );
    }
    let Some(redirect_uri) = p.get_nonempty("redirect_uri") else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing required parameter: redirect_uri",
        );
    };
    let Ok(redirect_url) = url::Url::parse(redirect_uri) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!("Invalid parameter value for redirect_uri: {redirect_uri}"),
        );
    };
    if !cfg.redirect_uris.is_empty() && !cfg.redirect_uris.iter().any(|u| u == redirect_uri) {
        return error_page(
            StatusCode::BAD_REQUEST,
            "redirect_uri_mismatch",
            &format!("redirect_uri={redirect_uri}"),
        );
    }
    let state_param = p.get("state");
    let mut err_pairs: Vec<(&str, &str)> = Vec::new();
    match p.get_nonempty("response_type") {
        None => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Missing required parameter: response_type",
            );
        }
        Some("code") => {}
        Some(_) => {
            err_pairs.push(("error", "unsupported_response_type"));
            if let Some(s) = state_param {
                err_pairs.push(("state", s));
            }
            return redirect(&with_query(&redirect_url, &err_pairs));
        }
    }
    let Some(scope) = p.get_nonempty("scope") else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing required parameter: scope",
        );
    };
    let challenge = match p.get_nonempty("code_challenge") {
        None => None,
        Some(c) => {
            let method = p.get_nonempty("code_challenge_method").unwrap_or("plain");
            if method != "S256" && method != "plain" {
                return error_page(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "Invalid code_challenge_method value.",
                );
            }
            Some((c.to_owned(), method.to_owned()))
        }
    };
    let Some(email) = p
        .get_nonempty("login_hint")
        .filter(|h| h.contains('@'))
        .or(cfg.default_account_email.as_deref())
        .map(str::to_ascii_lowercase)
    else {
        return chooser(&emu, uri.path(), &p);
    };
    let mut scopes: Vec<String> = Vec::new();
    for s in scope.split_whitespace().map(expand_scope) {
        if !scopes.contains(&s) {
            scopes.push(s);
        }
    }
    let offline = p.get("access_type") == Some("offline");
    let force_consent = p.get("prompt").is_some_and(|v| v.contains("consent"));
    let include_granted = p.get("include_granted_scopes") == Some("true");

    let mut st = emu.lock();
    st.ensure_account(&email, None);
    let previous: Vec<&Grant> = st
        .grants
        .values()
        .filter(|g| !g.revoked && g.email == email && g.client_id == client_id)
        .collect();
    if include_granted {
        for g in &previous {
            for s in &g.scopes {
                if !scopes.contains(s) {
                    scopes.push(s.clone());
                }
            }
        }
    }
    let had_refresh = previous.iter().any(|g| g.refresh_token.is_some());
    let issue_refresh =
        offline && (!cfg.refresh_token_only_on_first_consent || force_consent || !had_refresh);
    let code = util::random_token("4/0A", 32);
    st.codes.insert(
        code.clone(),
        AuthCode {
            client_id: client_id.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            scopes: scopes.clone(),
            email,
            challenge,
            issue_refresh,
            nonce: p.get_nonempty("nonce").map(str::to_owned),
            expires: Utc::now() + Duration::minutes(10),
        },
    );
    drop(st);
    let scope_str = scopes.join(" ");
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    if let Some(s) = state_param {
        pairs.push(("state", s));
    }
    pairs.push(("code", &code));
    pairs.push(("scope", &scope_str));
    pairs.push(("authuser", "0"));
    pairs.push(("prompt", "consent"));
    redirect(&with_query(&redirect_url, &pairs))
}

/// Google's account chooser, for an authorization request without `login_hint`: one link per account,
/// each the same authorization URL with `login_hint` set to it, and a form for another address (which
/// the emulator creates on consent). No script, so it works with any client that follows links.
fn chooser(emu: &Emulator, path: &str, p: &Params) -> Response {
    let others: Vec<&(String, String)> = p.0.iter().filter(|(k, _)| k != "login_hint").collect();
    let href = |email: &str| {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &others {
            query.append_pair(k, v);
        }
        query.append_pair("login_hint", email);
        format!("{path}?{}", query.finish())
    };
    let accounts: Vec<(String, String)> = emu
        .lock()
        .accounts
        .values()
        .map(|a| (a.email.clone(), a.name.clone()))
        .collect();
    let mut items = String::new();
    for (email, name) in &accounts {
        items.push_str(&format!(
            "<li><a class=\"account\" data-email=\"{email_attr}\" href=\"{href}\">\
             <span class=\"name\">{name}</span> <span class=\"email\">{email}</span></a></li>",
            email_attr = escape_html(email),
            href = escape_html(&href(email)),
            name = escape_html(name),
            email = escape_html(email),
        ));
    }
    if accounts.is_empty() {
        items.push_str("<li>No accounts yet: enter an address below.</li>");
    }
    let hidden: String = others
        .iter()
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape_html(k),
                escape_html(v)
            )
        })
        .collect();
    let html = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Choose an account - Google emulator</title>\
         <meta name=\"viewport\" content=\"width=device-width\"><link rel=\"icon\" href=\"data:,\"><style>{CHOOSER_STYLE}</style></head><body>\
         <h1>Choose an account</h1><p>to continue to the application (Google emulator: no password)</p>\
         <ul id=\"accounts\">{items}</ul>\
         <form id=\"other\" method=\"get\" action=\"{action}\">{hidden}\
         <label>Use another account <input type=\"email\" name=\"login_hint\" required \
         placeholder=\"someone@example.com\"></label> <button type=\"submit\">Next</button></form>\
         </body></html>",
        action = escape_html(path),
    );
    let mut resp = (StatusCode::OK, html).into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

const CHOOSER_STYLE: &str = "body{font:15px system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem;color:#202124}\
h1{font-weight:400;font-size:1.6rem;margin-bottom:.2rem}ul{list-style:none;padding:0;border-top:1px solid #dadce0}\
li{border-bottom:1px solid #dadce0}a.account{display:block;padding:.8rem .4rem;text-decoration:none;color:inherit}\
a.account:hover{background:#f1f3f4}.name{display:block;font-weight:500}.email{color:#5f6368;font-size:.9rem}\
form{margin-top:1.2rem}input{padding:.4rem;width:14rem}";

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Form (or JSON) body of the token endpoint.
fn parse_body(headers: &HeaderMap, body: &Bytes) -> Params {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let pairs = v
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        let s = match v {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        (k.clone(), s)
                    })
                    .collect()
            })
            .unwrap_or_default();
        return Params(pairs);
    }
    Params::parse(std::str::from_utf8(body).ok())
}

/// Client credentials from HTTP Basic (each part form-url-decoded) or the body.
fn client_credentials(headers: &HeaderMap, form: &Params) -> (Option<String>, Option<String>) {
    if let Some(v) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())
        && let Some((scheme, rest)) = v.trim().split_once(' ')
        && scheme.eq_ignore_ascii_case("basic")
        && let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(rest.trim())
        && let Ok(s) = String::from_utf8(raw)
        && let Some((id, secret)) = s.split_once(':')
    {
        let dec = |x: &str| {
            url::form_urlencoded::parse(format!("x={x}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        return (Some(dec(id)), Some(dec(secret)));
    }
    (
        form.get_nonempty("client_id").map(str::to_owned),
        form.get("client_secret").map(str::to_owned),
    )
}

fn json_response(v: Value) -> Response {
    let mut resp = (StatusCode::OK, v.to_string()).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, max-age=0, must-revalidate"),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

fn issue_access(
    st: &mut World,
    cfg: &EmulatorConfig,
    grant: u64,
    email: &str,
    client_id: &str,
    scopes: &[String],
) -> String {
    let token = util::random_token("ya29.", 48);
    st.access_tokens.insert(
        token.clone(),
        AccessToken {
            email: email.to_owned(),
            client_id: client_id.to_owned(),
            scopes: scopes.to_vec(),
            grant,
            expires: i64::try_from(cfg.access_token_ttl_secs)
                .ok()
                .and_then(Duration::try_seconds)
                .and_then(|d| Utc::now().checked_add_signed(d))
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
            revoked: false,
        },
    );
    token
}

fn id_token(
    st: &World,
    cfg: &EmulatorConfig,
    email: &str,
    client_id: &str,
    scopes: &[String],
    nonce: Option<&str>,
) -> Option<String> {
    let acc = st.account(email)?;
    let now = Utc::now().timestamp();
    let mut claims = json!({
        "iss": ISSUER,
        "azp": client_id,
        "aud": client_id,
        "sub": acc.sub,
        "iat": now,
        "exp": now + 3600,
    });
    if has_scope(scopes, &[EMAIL_SCOPE]) {
        claims["email"] = json!(acc.email);
        claims["email_verified"] = json!(true);
    }
    if has_scope(scopes, &[PROFILE_SCOPE]) {
        claims["name"] = json!(acc.name);
        claims["given_name"] = json!(acc.given_name());
        if let Some(f) = acc.family_name() {
            claims["family_name"] = json!(f);
        }
        claims["picture"] = json!(acc.picture());
    }
    if let Some(n) = nonce {
        claims["nonce"] = json!(n);
    }
    let enc = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let header = json!({"alg": "HS256", "kid": "google-emulator", "typ": "JWT"});
    let signing_input = format!("{}.{}", enc(&header), enc(&claims));
    let key = cfg.client_secret.as_deref().unwrap_or(DIRECT_CLIENT);
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).ok()?;
    mac.update(signing_input.as_bytes());
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    Some(format!("{signing_input}.{sig}"))
}

fn pkce_ok(challenge: &str, method: &str, verifier: &str) -> bool {
    if method == "S256" {
        let digest = Sha256::digest(verifier.as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest) == challenge
    } else {
        verifier == challenge
    }
}

async fn token(State(emu): State<Emulator>, headers: HeaderMap, body: Bytes) -> Response {
    match token_inner(&emu, &headers, &body) {
        Ok(v) => json_response(v),
        Err(e) => e.into_response(),
    }
}

fn token_inner(emu: &Emulator, headers: &HeaderMap, body: &Bytes) -> Result<Value, OAuthError> {
    let cfg = emu.config();
    let form = parse_body(headers, body);
    let (client_id, secret) = client_credentials(headers, &form);
    let Some(client_id) = client_id else {
        return Err(OAuthError::invalid_request(
            "Could not determine client ID from request.",
        ));
    };
    if let Some(expected) = &cfg.client_id
        && *expected != client_id
    {
        return Err(OAuthError::invalid_client("The OAuth client was not found."));
    }
    if let Some(expected) = &cfg.client_secret
        && secret.as_deref() != Some(expected.as_str())
    {
        return Err(OAuthError::invalid_client("Unauthorized"));
    }
    let grant_type = form.get("grant_type").unwrap_or("");
    let mut st = emu.lock();
    match grant_type {
        "authorization_code" => {
            let code = form
                .get_nonempty("code")
                .ok_or_else(|| OAuthError::invalid_request("Missing required parameter: code"))?;
            let now = Utc::now();
            let ac = st
                .codes
                .get(code)
                .filter(|c| c.expires > now && c.client_id == client_id)
                .cloned()
                .ok_or_else(|| OAuthError::invalid_grant("Bad Request"))?;
            let redirect_uri = form
                .get_nonempty("redirect_uri")
                .ok_or_else(|| OAuthError::invalid_request("Missing parameter: redirect_uri"))?;
            if redirect_uri != ac.redirect_uri {
                return Err(OAuthError::new(
                    StatusCode::BAD_REQUEST,
                    "redirect_uri_mismatch",
                    "Bad Request",
                ));
            }
            if let Some((challenge, method)) = &ac.challenge {
                let verifier = form
                    .get_nonempty("code_verifier")
                    .ok_or_else(|| OAuthError::invalid_grant("Missing code verifier."))?;
                if !pkce_ok(challenge, method, verifier) {
                    return Err(OAuthError::invalid_grant("Invalid code verifier."));
                }
            }
            st.codes.remove(code);
            let grant_id = st.next_grant;
            st.next_grant += 1;
            let refresh = ac.issue_refresh.then(|| util::random_token("1//0g", 48));
            st.grants.insert(
                grant_id,
                Grant {
                    email: ac.email.clone(),
                    client_id: client_id.clone(),
                    scopes: ac.scopes.clone(),
                    refresh_token: refresh.clone(),
                    revoked: false,
                },
            );
            if let Some(r) = &refresh {
                st.refresh_tokens.insert(r.clone(), grant_id);
            }
            let access = issue_access(&mut st, cfg, grant_id, &ac.email, &client_id, &ac.scopes);
            let mut out = json!({
                "access_token": access,
                "expires_in": cfg.access_token_ttl_secs,
                "scope": ac.scopes.join(" "),
                "token_type": "Bearer",
            });
            if let Some(r) = refresh {
                out["refresh_token"] = json!(r);
            }
            if ac.scopes.iter().any(|s| s == "openid")
                && let Some(idt) = id_token(&st, cfg, &ac.email, &client_id, &ac.scopes, ac.nonce.as_deref())
            {
                out["id_token"] = json!(idt);
            }
            Ok(out)
        }
        "refresh_token" => {
            let rt = form
                .get_nonempty("refresh_token")
                .ok_or_else(|| OAuthError::invalid_request("Missing required parameter: refresh_token"))?;
            let grant_id = *st
                .refresh_tokens
                .get(rt)
                .ok_or_else(|| OAuthError::invalid_grant("Token has been expired or revoked."))?;
            let grant = st
                .grants
                .get(&grant_id)
                .filter(|g| !g.revoked)
                .cloned()
                .ok_or_else(|| OAuthError::invalid_grant("Token has been expired or revoked."))?;
            if st.account(&grant.email).is_none() {
                return Err(OAuthError::invalid_grant("Token has been expired or revoked."));
            }
            if grant.client_id != client_id {
                return Err(OAuthError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized_client",
                    "Unauthorized",
                ));
            }
            let access = issue_access(&mut st, cfg, grant_id, &grant.email, &client_id, &grant.scopes);
            let mut out = json!({
                "access_token": access,
                "expires_in": cfg.access_token_ttl_secs,
                "scope": grant.scopes.join(" "),
                "token_type": "Bearer",
            });
            if grant.scopes.iter().any(|s| s == "openid")
                && let Some(idt) = id_token(&st, cfg, &grant.email, &client_id, &grant.scopes, None)
            {
                out["id_token"] = json!(idt);
            }
            Ok(out)
        }
        other => Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            &format!("Invalid grant_type: {other}"),
        )),
    }
}

fn revoke_grant(st: &mut World, grant_id: u64) {
    if let Some(g) = st.grants.get_mut(&grant_id) {
        g.revoked = true;
    }
    for t in st.access_tokens.values_mut() {
        if t.grant == grant_id {
            t.revoked = true;
        }
    }
}

async fn revoke(
    State(emu): State<Emulator>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let qp = Params::parse(q.as_deref());
    let form = parse_body(&headers, &body);
    let token = qp
        .get_nonempty("token")
        .or_else(|| form.get_nonempty("token"))
        .map(str::to_owned);
    let mut st = emu.lock();
    let grant = token.as_deref().and_then(|t| {
        st.access_tokens
            .get(t)
            .filter(|a| !a.revoked)
            .map(|a| a.grant)
            .or_else(|| st.refresh_tokens.get(t).copied())
    });
    let live = grant.filter(|g| st.grants.get(g).is_some_and(|g| !g.revoked));
    match live {
        Some(g) => {
            revoke_grant(&mut st, g);
            json_response(json!({}))
        }
        None => OAuthError::new(
            StatusCode::BAD_REQUEST,
            "invalid_token",
            "Token expired or revoked",
        )
        .into_response(),
    }
}

fn unauthorized() -> Response {
    let mut r =
        OAuthError::new(StatusCode::UNAUTHORIZED, "invalid_request", "Invalid Credentials").into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"https://accounts.google.com/\", error=\"invalid_token\""),
    );
    r
}

fn userinfo_token(emu: &Emulator, headers: &HeaderMap, q: Option<&str>) -> Option<(String, Vec<String>)> {
    let p = Params::parse(q);
    let token = bearer(headers, &p)?;
    let st = emu.lock();
    let at = st
        .access_tokens
        .get(&token)
        .filter(|a| !a.revoked && a.expires > Utc::now())?;
    Some((at.email.clone(), at.scopes.clone()))
}

async fn userinfo_v3(State(emu): State<Emulator>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let Some((email, scopes)) = userinfo_token(&emu, &headers, q.as_deref()) else {
        return unauthorized();
    };
    let st = emu.lock();
    let Some(acc) = st.account(&email) else {
        return unauthorized();
    };
    let mut out = json!({"sub": acc.sub});
    if has_scope(&scopes, &[PROFILE_SCOPE]) {
        out["name"] = json!(acc.name);
        out["given_name"] = json!(acc.given_name());
        if let Some(f) = acc.family_name() {
            out["family_name"] = json!(f);
        }
        out["picture"] = json!(acc.picture());
    }
    if has_scope(&scopes, &[EMAIL_SCOPE]) {
        out["email"] = json!(acc.email);
        out["email_verified"] = json!(true);
    }
    json_response(out)
}

async fn userinfo_v2(State(emu): State<Emulator>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let Some((email, scopes)) = userinfo_token(&emu, &headers, q.as_deref()) else {
        return unauthorized();
    };
    let st = emu.lock();
    let Some(acc) = st.account(&email) else {
        return unauthorized();
    };
    let mut out = json!({"id": acc.sub});
    if has_scope(&scopes, &[EMAIL_SCOPE]) {
        out["email"] = json!(acc.email);
        out["verified_email"] = json!(true);
    }
    if has_scope(&scopes, &[PROFILE_SCOPE]) {
        out["name"] = json!(acc.name);
        out["given_name"] = json!(acc.given_name());
        if let Some(f) = acc.family_name() {
            out["family_name"] = json!(f);
        }
        out["picture"] = json!(acc.picture());
    }
    json_response(out)
}

async fn tokeninfo(
    State(emu): State<Emulator>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let qp = Params::parse(q.as_deref());
    let form = parse_body(&headers, &body);
    let token = qp
        .get_nonempty("access_token")
        .or_else(|| form.get_nonempty("access_token"))
        .unwrap_or("");
    let st = emu.lock();
    let now = Utc::now();
    let Some(at) = st
        .access_tokens
        .get(token)
        .filter(|a| !a.revoked && a.expires > now)
    else {
        return OAuthError::new(StatusCode::BAD_REQUEST, "invalid_token", "Invalid Value").into_response();
    };
    let sub = st.account(&at.email).map(|a| a.sub.clone()).unwrap_or_default();
    let mut out = json!({
        "azp": at.client_id,
        "aud": at.client_id,
        "sub": sub,
        "scope": at.scopes.join(" "),
        "exp": at.expires.timestamp().to_string(),
        "expires_in": (at.expires - now).num_seconds().to_string(),
        "access_type": "offline",
    });
    if has_scope(&at.scopes, &[EMAIL_SCOPE]) {
        out["email"] = json!(at.email);
        out["email_verified"] = json!("true");
    }
    json_response(out)
}

fn base_from_headers(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}")
}

async fn discovery(headers: HeaderMap) -> Response {
    let base = base_from_headers(&headers);
    json_response(json!({
        "issuer": ISSUER,
        "authorization_endpoint": format!("{base}/o/oauth2/v2/auth"),
        "token_endpoint": format!("{base}/token"),
        "userinfo_endpoint": format!("{base}/v1/userinfo"),
        "revocation_endpoint": format!("{base}/revoke"),
        "jwks_uri": format!("{base}/oauth2/v3/certs"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["HS256"],
        "scopes_supported": ["openid", "email", "profile"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "claims_supported": ["aud", "email", "email_verified", "exp", "family_name", "given_name", "iat", "iss", "name", "picture", "sub"],
        "code_challenge_methods_supported": ["plain", "S256"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
    }))
}

async fn certs() -> Response {
    json_response(json!({"keys": []}))
}

/// Every scope a direct (control API) token carries.
pub fn full_scopes() -> Vec<String> {
    vec![
        "openid".to_owned(),
        EMAIL_SCOPE.to_owned(),
        PROFILE_SCOPE.to_owned(),
        format!("{SCOPE_PREFIX}calendar"),
    ]
}

/// Issues an access token for `email` outside the OAuth flow (control API and library).
/// Returns the token and its scopes; `None` for an unknown account.
pub fn issue_direct_token(
    st: &mut World,
    cfg: &EmulatorConfig,
    email: &str,
    scopes: Option<Vec<String>>,
) -> Option<(String, Vec<String>)> {
    let email = st.account(email)?.email.clone();
    let scopes = scopes
        .map(|s| s.iter().map(|x| expand_scope(x)).collect())
        .unwrap_or_else(full_scopes);
    let grant_id = st.next_grant;
    st.next_grant += 1;
    st.grants.insert(
        grant_id,
        Grant {
            email: email.clone(),
            client_id: DIRECT_CLIENT.to_owned(),
            scopes: scopes.clone(),
            refresh_token: None,
            revoked: false,
        },
    );
    let token = issue_access(st, cfg, grant_id, &email, DIRECT_CLIENT, &scopes);
    Some((token, scopes))
}

/// Revokes every grant of `email`; returns how many were live.
pub fn revoke_account(st: &mut World, email: &str) -> usize {
    let email = email.to_ascii_lowercase();
    let ids: Vec<u64> = st
        .grants
        .iter()
        .filter(|(_, g)| g.email == email && !g.revoked)
        .map(|(id, _)| *id)
        .collect();
    for id in &ids {
        revoke_grant(st, *id);
    }
    for t in st.access_tokens.values_mut() {
        if t.email == email {
            t.revoked = true;
        }
    }
    ids.len()
}

/// Expires every access token; returns how many were live.
pub fn expire_all(st: &mut World) -> usize {
    let now = Utc::now();
    let mut n = 0;
    for t in st.access_tokens.values_mut() {
        if t.expires > now && !t.revoked {
            n += 1;
        }
        t.expires = now - Duration::seconds(1);
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_rfc7636_example() {
        assert!(pkce_ok(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "S256",
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        ));
        assert!(pkce_ok("abc", "plain", "abc"));
        assert!(!pkce_ok("abc", "plain", "abd"));
    }

    #[test]
    fn scopes_expand() {
        assert_eq!(expand_scope("email"), EMAIL_SCOPE);
        assert_eq!(
            expand_scope("calendar.readonly"),
            "https://www.googleapis.com/auth/calendar.readonly"
        );
    }
}
