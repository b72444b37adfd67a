use google_emulator::{Emulator, EmulatorConfig, RunningEmulator};
use reqwest::{Method, StatusCode, header::HeaderMap};
use serde_json::{Value, json};

pub struct TestEmu {
    pub running: RunningEmulator,
    pub client: reqwest::Client,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl TestEmu {
    pub async fn start() -> Self {
        Self::start_with(EmulatorConfig::default()).await
    }

    pub async fn start_with(config: EmulatorConfig) -> Self {
        let running = Emulator::spawn(config).await.expect("spawn emulator");
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Self { running, client }
    }

    pub fn emu(&self) -> &Emulator {
        &self.running.emulator
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.running.base_url(), path)
    }

    /// Creates the account (if needed) and returns a full-scope access token.
    pub async fn token(&self, email: &str) -> String {
        let r = self
            .control(Method::POST, "/emulator/accounts", json!({"email": email}))
            .await;
        assert_eq!(r.status, 200);
        let r = self
            .control(
                Method::POST,
                &format!("/emulator/accounts/{email}/token"),
                json!({}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.body["access_token"].as_str().unwrap().to_owned()
    }

    pub async fn control(&self, method: Method, path: &str, body: Value) -> Resp {
        let resp = self
            .client
            .request(method, self.url(path))
            .json(&body)
            .send()
            .await
            .expect("control request");
        to_resp(resp).await
    }

    pub async fn call(&self, method: Method, token: &str, path: &str, body: Option<Value>) -> Resp {
        self.call_with(method, token, path, body, &[]).await
    }

    pub async fn call_with(
        &self,
        method: Method,
        token: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut req = self.client.request(method, self.url(path)).bearer_auth(token);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        to_resp(req.send().await.expect("api request")).await
    }

    pub async fn get(&self, token: &str, path: &str) -> Resp {
        self.call(Method::GET, token, path, None).await
    }

    pub async fn insert(&self, token: &str, cal: &str, event: Value) -> Value {
        let r = self
            .call(
                Method::POST,
                token,
                &format!("/calendar/v3/calendars/{cal}/events"),
                Some(event),
            )
            .await;
        assert_eq!(r.status, 200, "insert failed: {}", r.body);
        r.body
    }

    pub async fn stats(&self) -> Value {
        self.control(Method::GET, "/emulator/stats", json!({})).await.body
    }
}

pub async fn to_resp(resp: reqwest::Response) -> Resp {
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap_or_default();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Resp {
        status,
        headers,
        body,
    }
}

/// A timed event body.
pub fn timed(summary: &str, start: &str, end: &str) -> Value {
    json!({"summary": summary, "start": {"dateTime": start}, "end": {"dateTime": end}})
}

/// The (domain, reason) of the first error item.
pub fn reason(body: &Value) -> (String, String) {
    let e = &body["error"]["errors"][0];
    (
        e["domain"].as_str().unwrap_or("").to_owned(),
        e["reason"].as_str().unwrap_or("").to_owned(),
    )
}

pub fn ids(items: &Value) -> Vec<String> {
    items
        .as_array()
        .map(|a| {
            a.iter()
                .map(|i| i["id"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

pub fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
