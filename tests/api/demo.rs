//! `chronos demo` from the outside: start the binary, sign in through the printed flow, read the seed.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use reqwest::{StatusCode, cookie::CookieStore, cookie::Jar};
use serde_json::{Value, json};

use crate::helpers::location;

struct Demo {
    child: Child,
    address: String,
    client: reqwest::Client,
    jar: Arc<Jar>,
    _dir: tempfile::TempDir,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Demo {
    async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut child = Command::new(env!("CARGO_BIN_EXE_chronos"))
            .arg("demo")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("BIND_ADDR", "127.0.0.1:0")
            .env("CHRONOS_DATA_DIR", dir.path().join("data"))
            .env("RUST_LOG", "warn")
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn chronos demo");
        let stdout = child.stdout.take().expect("stdout");
        let (first, rest) = tokio::task::spawn_blocking(move || {
            let mut reader = BufReader::new(stdout);
            let mut first = String::new();
            reader.read_line(&mut first).expect("first line");
            let mut rest = String::new();
            // The banner ends with how to stop; stdout then stays open while the server runs.
            for _ in 0..40 {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                rest.push_str(&line);
                if line.contains("Stop with Ctrl-C") {
                    break;
                }
            }
            (first, rest)
        })
        .await
        .expect("reader");
        let address = first
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .to_string();
        let first_url = rest
            .split("http://")
            .nth(1)
            .and_then(|tail| tail.split_whitespace().next())
            .unwrap_or_default();
        assert_eq!(
            format!("http://{first_url}"),
            format!("{address}/"),
            "prints the web client's URL first: {rest}"
        );
        assert!(
            rest.contains(&format!("{address}/graphql")),
            "prints the playground URL: {rest}"
        );
        assert!(
            rest.contains("startGoogleSignIn"),
            "prints how to sign in: {rest}"
        );
        let jar = Arc::new(Jar::default());
        let client = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Self {
            child,
            address,
            client,
            jar,
            _dir: dir,
        }
    }

    async fn graphql(&self, query: &str, variables: Value) -> Value {
        let url = url::Url::parse(&self.address).expect("address");
        let csrf = self.jar.cookies(&url).and_then(|cookies| {
            cookies
                .to_str()
                .ok()?
                .split("; ")
                .find_map(|pair| pair.strip_prefix("chronos_csrf=").map(str::to_owned))
        });
        let mut request = self
            .client
            .post(format!("{}/graphql", self.address))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = csrf {
            request = request.header("x-csrf-token", token);
        }
        let response = request.send().await.expect("POST /graphql");
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.expect("JSON");
        assert!(body.get("errors").is_none(), "{body}");
        body["data"].clone()
    }
}

#[tokio::test]
async fn the_demo_signs_in_a_demo_account_and_serves_its_seeded_events() {
    let demo = Demo::start().await;
    // As the banner says: run startGoogleSignIn, open the URL, pick alice in the emulator's chooser.
    let data = demo
        .graphql("mutation { startGoogleSignIn { url } }", json!({}))
        .await;
    let authorize = url::Url::parse(data["startGoogleSignIn"]["url"].as_str().expect("url")).expect("URL");
    let chooser = demo
        .client
        .get(authorize.clone())
        .send()
        .await
        .expect("authorize");
    assert_eq!(chooser.status(), StatusCode::OK, "the account chooser");
    let html = chooser.text().await.expect("chooser page");
    for (email, _) in chronos::demo::DEMO_ACCOUNTS {
        assert!(
            html.contains(&format!("data-email=\"{email}\"")),
            "{email} listed: {html}"
        );
    }
    let alice = chronos::demo::DEMO_ACCOUNTS[0].0;
    let href = html
        .split(&format!("data-email=\"{alice}\" href=\""))
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("alice's link")
        .replace("&amp;", "&");
    let consent = demo
        .client
        .get(authorize.join(&href).expect("link URL"))
        .send()
        .await
        .expect("pick alice");
    assert_eq!(consent.status(), StatusCode::FOUND);
    let landing = demo
        .client
        .get(location(&consent))
        .send()
        .await
        .expect("callback");
    assert_eq!(landing.status(), StatusCode::FOUND);
    assert!(!location(&landing).contains("error="), "{}", location(&landing));
    let landing_page = demo
        .client
        .get(format!("{}{}", demo.address, "/"))
        .send()
        .await
        .expect("GET /");
    assert_eq!(
        landing_page.status(),
        StatusCode::OK,
        "the landing is the web client"
    );
    let html = landing_page.text().await.expect("the client's page");
    assert!(html.contains("src=\"/assets/"), "{html}");

    let me = demo.graphql("{ me { email } }", json!({})).await;
    assert_eq!(me["me"]["email"], "alice@demo.chronos.dev");

    // The first calendars query starts filling the cache; the seed is two weeks from this week's Monday.
    let today = chrono::Utc::now().date_naive();
    let monday = today
        - chrono::Duration::days(i64::from(
            chrono::Datelike::weekday(&today).num_days_from_monday(),
        ));
    let window = json!({
        "min": format!("{monday}T00:00:00Z"),
        "max": format!("{}T00:00:00Z", monday + chrono::Duration::days(15)),
    });
    let query = "query($min: DateTime!, $max: DateTime!) { calendars { summary } events(timeMin: $min, timeMax: $max, first: 100) { edges { node { summary allDay recurringEventId start { dateTime date timeZone } } } } }";
    let deadline = Instant::now() + Duration::from_secs(30);
    let events = loop {
        let data = demo.graphql(query, window.clone()).await;
        let events = data["events"]["edges"].as_array().cloned().unwrap_or_default();
        if events.len() >= 11 || Instant::now() > deadline {
            let calendars = data["calendars"].to_string();
            assert!(calendars.contains("Work"), "{calendars}");
            break events;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let summaries: Vec<&str> = events
        .iter()
        .filter_map(|e| e["node"]["summary"].as_str())
        .collect();
    let standups: Vec<&Value> = events
        .iter()
        .filter(|e| e["node"]["summary"] == "Team standup")
        .collect();
    assert_eq!(standups.len(), 6, "the weekly series is expanded: {summaries:?}");
    assert!(standups.iter().all(|s| s["node"]["recurringEventId"].is_string()));
    let new_york_hour = |s: &&&Value| {
        let start = s["node"]["start"]["dateTime"].as_str().expect("timed instance");
        let instant = chrono::DateTime::parse_from_rfc3339(start).expect("RFC 3339");
        chrono::Timelike::hour(&instant.with_timezone(&chrono_tz::America::New_York))
    };
    let moved = standups.iter().filter(|s| new_york_hour(s) == 11).count();
    assert!(
        standups.iter().all(|s| matches!(new_york_hour(&s), 9 | 11)),
        "{standups:?}"
    );
    assert_eq!(
        moved, 1,
        "one instance moved to 11:00 New York time: {standups:?}"
    );
    let conference = events
        .iter()
        .find(|e| e["node"]["summary"] == "Conference")
        .expect("all-day event");
    assert_eq!(conference["node"]["allDay"], true);
    for summary in ["Lunch with Sam", "Dentist", "Gym", "Quarterly planning"] {
        assert!(
            summaries.contains(&summary),
            "{summary} missing from {summaries:?}"
        );
    }
}
