//! A browser for benchmarks: a cookie jar, and the SPA's way of signing in and calling the API.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use reqwest::cookie::{CookieStore as _, Jar};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// A browser: a cookie jar and the SPA's way of calling the API.
pub struct Browser {
    pub base: String,
    jar: Arc<Jar>,
    pub http: reqwest::Client,
}

impl Browser {
    pub fn new(base: &str) -> anyhow::Result<Self> {
        let jar = Arc::new(Jar::default());
        let http = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            base: base.to_owned(),
            jar,
            http,
        })
    }

    pub fn cookies(&self) -> Option<HeaderValue> {
        self.jar.cookies(&url::Url::parse(&self.base).ok()?)
    }

    pub fn csrf(&self) -> Option<String> {
        let cookies = self.cookies()?;
        cookies
            .to_str()
            .ok()?
            .split("; ")
            .find_map(|pair| pair.strip_prefix("chronos_csrf=").map(str::to_owned))
    }

    pub async fn data(&self, query: &str, variables: Value) -> anyhow::Result<Value> {
        let mut request = self
            .http
            .post(format!("{}/graphql", self.base))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = self.csrf() {
            request = request.header("x-csrf-token", token);
        }
        let body: Value = request.send().await?.json().await?;
        if body.get("errors").is_some() {
            bail!("GraphQL errors: {body}");
        }
        Ok(body["data"].clone())
    }

    /// The OAuth flow through the emulator, which consents at once.
    pub async fn sign_in(&self, email: &str) -> anyhow::Result<()> {
        let data = self
            .data(
                "mutation($hint: String) { startGoogleSignIn(loginHint: $hint) { url } }",
                json!({ "hint": email }),
            )
            .await?;
        let authorize = data["startGoogleSignIn"]["url"]
            .as_str()
            .context("authorization URL")?;
        let consent = self.http.get(authorize).send().await?;
        let callback = location(&consent)?;
        let landing = self.http.get(&callback).send().await?;
        let landed = location(&landing)?;
        if landed.contains("error=") {
            bail!("sign-in failed: {landed}");
        }
        Ok(())
    }

    pub async fn wait_for_primary_ready(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let data = self
                .data("{ calendars { primary cacheStatus } }", json!({}))
                .await?;
            let ready = data["calendars"].as_array().is_some_and(|list| {
                list.iter()
                    .any(|c| c["primary"] == true && c["cacheStatus"] == "READY")
            });
            if ready {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        bail!("the primary calendar never became READY")
    }
}

fn location(response: &reqwest::Response) -> anyhow::Result<String> {
    Ok(response
        .headers()
        .get("location")
        .context("a redirect")?
        .to_str()?
        .to_owned())
}
