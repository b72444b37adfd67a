use google_emulator::EmulatorConfig;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::TestEmu;

struct PartOut {
    content_id: Option<String>,
    status: u16,
    body: Value,
}

fn build(parts: &[(&str, &str, Option<Value>)]) -> String {
    let mut s = String::new();
    for (i, (method, path, body)) in parts.iter().enumerate() {
        s.push_str("--batch_foo\r\n");
        s.push_str("Content-Type: application/http\r\n");
        s.push_str(&format!("Content-ID: <item{}>\r\n\r\n", i + 1));
        s.push_str(&format!("{method} {path} HTTP/1.1\r\n"));
        match body {
            Some(b) => {
                let text = b.to_string();
                s.push_str("Content-Type: application/json\r\n");
                s.push_str(&format!("Content-Length: {}\r\n\r\n{text}\r\n", text.len()));
            }
            None => s.push_str("\r\n"),
        }
    }
    s.push_str("--batch_foo--\r\n");
    s
}

fn parse(content_type: &str, body: &str) -> Vec<PartOut> {
    let boundary = content_type.split("boundary=").nth(1).unwrap().trim();
    let delim = format!("--{boundary}");
    body.split(&delim)
        .filter(|p| !p.trim().is_empty() && !p.starts_with("--"))
        .map(|p| {
            let (head, http) = p.split_once("\r\n\r\n").unwrap();
            let content_id = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-ID: "))
                .map(str::to_owned);
            let status_line = http.lines().next().unwrap();
            let status: u16 = status_line.split_whitespace().nth(1).unwrap().parse().unwrap();
            let json_part = http.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("").trim();
            let body = serde_json::from_str(json_part).unwrap_or(Value::Null);
            PartOut {
                content_id,
                status,
                body,
            }
        })
        .collect()
}

async fn send(t: &TestEmu, tok: &str, payload: String) -> (u16, String, String) {
    let resp = t
        .client
        .post(t.url("/batch/calendar/v3"))
        .bearer_auth(tok)
        .header("Content-Type", "multipart/mixed; boundary=batch_foo")
        .body(payload)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, ct, resp.text().await.unwrap())
}

#[tokio::test]
async fn three_parts_with_content_ids_and_a_failure() {
    let t = TestEmu::start().await;
    let tok = t.token("alice@example.com").await;
    let payload = build(&[
        (
            "POST",
            "/calendar/v3/calendars/primary/events",
            Some(
                json!({"summary": "batched", "start": {"dateTime": "2024-05-01T10:00:00Z"}, "end": {"dateTime": "2024-05-01T11:00:00Z"}}),
            ),
        ),
        ("GET", "/calendar/v3/calendars/primary/events/nosuchevent", None),
        ("GET", "/calendar/v3/calendars/primary/events?maxResults=5", None),
    ]);
    let (status, ct, body) = send(&t, &tok, payload).await;
    assert_eq!(status, 200);
    assert!(ct.starts_with("multipart/mixed; boundary="), "{ct}");
    let parts = parse(&ct, &body);
    assert_eq!(parts.len(), 3, "{body}");
    assert_eq!(parts[0].content_id.as_deref(), Some("<response-item1>"));
    assert_eq!(parts[1].content_id.as_deref(), Some("<response-item2>"));
    assert_eq!(parts[2].content_id.as_deref(), Some("<response-item3>"));
    assert_eq!(parts[0].status, 200);
    assert_eq!(parts[0].body["summary"], "batched");
    assert_eq!(parts[1].status, 404);
    assert_eq!(parts[1].body["error"]["errors"][0]["reason"], "notFound");
    assert_eq!(parts[2].status, 200);
    assert_eq!(parts[2].body["items"][0]["summary"], "batched");
    assert!(body.contains("HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=UTF-8\r\n"));

    let stats = t.stats().await;
    assert_eq!(stats["batchRequests"], 1);
    assert_eq!(stats["batchParts"], 3);
    assert_eq!(stats["byRoute"]["POST /batch/calendar/v3"], 1);
    assert_eq!(
        stats["byRoute"]["GET /calendar/v3/calendars/{calendarId}/events"],
        1
    );
    assert_eq!(
        stats["byRoute"]["GET /calendar/v3/calendars/{calendarId}/events/{eventId}"],
        1
    );
    assert_eq!(stats["totalRequests"], 4);

    // a fault on one part's path hits only that part
    let r = t
        .control(
            Method::POST,
            "/emulator/faults",
            json!({"path": "/events/nosuchevent", "status": 503, "times": 1}),
        )
        .await;
    assert_eq!(r.status, 200);
    let payload = build(&[
        ("GET", "/calendar/v3/calendars/primary/events/nosuchevent", None),
        ("GET", "/calendar/v3/users/me/calendarList", None),
    ]);
    let (status, ct, body) = send(&t, &tok, payload).await;
    assert_eq!(status, 200);
    let parts = parse(&ct, &body);
    assert_eq!(parts[0].status, 503);
    assert_eq!(parts[0].body["error"]["errors"][0]["reason"], "backendError");
    assert_eq!(parts[1].status, 200);

    // a part with its own Authorization overrides the outer one; no auth at all is 401
    let payload = "--batch_foo\r\nContent-Type: application/http\r\n\r\nGET /calendar/v3/colors HTTP/1.1\r\nAuthorization: Bearer wrong\r\n\r\n\r\n--batch_foo--\r\n".to_owned();
    let (_, ct, body) = send(&t, &tok, payload).await;
    let parts = parse(&ct, &body);
    assert_eq!(parts[0].status, 401);
    assert!(parts[0].content_id.is_none());
}

#[tokio::test]
async fn limits_and_bad_requests() {
    let t = TestEmu::start_with(EmulatorConfig {
        max_batch_parts: 2,
        batch_content_id_brackets: false,
        ..EmulatorConfig::default()
    })
    .await;
    let tok = t.token("alice@example.com").await;
    let three = build(&[
        ("GET", "/calendar/v3/colors", None),
        ("GET", "/calendar/v3/colors", None),
        ("GET", "/calendar/v3/colors", None),
    ]);
    let (status, _, body) = send(&t, &tok, three).await;
    assert_eq!(status, 400, "{body}");
    let two = build(&[
        ("GET", "/calendar/v3/colors", None),
        ("GET", "/calendar/v3/colors", None),
    ]);
    let (status, ct, body) = send(&t, &tok, two).await;
    assert_eq!(status, 200);
    let parts = parse(&ct, &body);
    assert_eq!(parts[0].content_id.as_deref(), Some("response-item1"));

    let resp = t
        .client
        .post(t.url("/batch/calendar/v3"))
        .header("Content-Type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn latency_applies_once_per_batch_and_per_part_only_when_asked() {
    use std::time::{Duration, Instant};

    let t = TestEmu::start().await;
    let tok = t.token("alice@example.com").await;
    let three_reads = || {
        build(&[
            ("GET", "/calendar/v3/calendars/primary/events?maxResults=1", None),
            ("GET", "/calendar/v3/calendars/primary/events?maxResults=2", None),
            ("GET", "/calendar/v3/calendars/primary/events?maxResults=3", None),
        ])
    };
    let set = t
        .control(
            Method::PUT,
            "/emulator/latency",
            json!({"ms": 0, "batchPartMs": 150}),
        )
        .await;
    assert_eq!(set.body, json!({"ms": 0, "batchPartMs": 150}));
    let started = Instant::now();
    assert_eq!(send(&t, &tok, three_reads()).await.0, 200);
    assert!(
        started.elapsed() >= Duration::from_millis(450),
        "parts wait in sequence"
    );

    let refused = t
        .control(
            Method::PUT,
            "/emulator/latency",
            json!({"ms": 0, "batchPartMs": "slow"}),
        )
        .await;
    assert_eq!(refused.status, 400);
    let set = t
        .control(Method::PUT, "/emulator/latency", json!({"ms": 200}))
        .await;
    assert_eq!(set.body["batchPartMs"], 0);
    let started = Instant::now();
    assert_eq!(send(&t, &tok, three_reads()).await.0, 200);
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "the batch request waits"
    );
}
