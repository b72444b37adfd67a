//! The batch codec: requests into one `multipart/mixed` body, and Google's `multipart/mixed` answer back
//! into one HTTP response per part. `multer` splits the answer into parts and `httparse` reads each part's
//! HTTP response; nothing here sends anything (the client in `calendar.rs` does, with its retries).
//!
//! Each request part carries `Content-ID: <itemN>` (N: the request's index); Google answers with
//! `<response-itemN>`, so answers are matched by id, and by position only when a part has no usable id.

use std::{collections::HashMap, convert::Infallible};

use bytes::Bytes;
use rand::{Rng, distr::Alphanumeric};
use reqwest::{
    Method,
    header::{HeaderMap, HeaderName, HeaderValue},
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;
use url::Url;

use super::{error::GoogleError, models::Event};

/// Most headers a part's HTTP response may carry (Google sends about five).
const MAX_PART_HEADERS: usize = 64;

/// How an event changes: replaced whole (`PUT`: fields left out are deleted) or patched (`PATCH`: only the
/// fields sent change; `null` clears a field or an extended-property key).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EventChange<'a> {
    Replace(&'a Event),
    Patch(&'a Value),
}

impl EventChange<'_> {
    pub fn method(&self) -> Method {
        match self {
            Self::Replace(_) => Method::PUT,
            Self::Patch(_) => Method::PATCH,
        }
    }

    /// The request body.
    pub fn body(&self) -> Result<Value, GoogleError> {
        match self {
            Self::Replace(event) => to_json(event),
            Self::Patch(patch) => Ok((*patch).clone()),
        }
    }
}

/// One request of a batch.
#[derive(Debug, Clone)]
pub struct BatchRequest {
    pub method: Method,
    /// Path segments under `/calendar/v3/` (unencoded).
    pub segments: Vec<String>,
    pub query: Vec<(String, String)>,
    pub if_match: Option<String>,
    pub body: Option<Value>,
}

impl BatchRequest {
    fn event_path(calendar_id: &str, event_id: Option<&str>) -> Vec<String> {
        let mut segments = vec![
            "calendars".to_owned(),
            calendar_id.to_owned(),
            "events".to_owned(),
        ];
        segments.extend(event_id.map(str::to_owned));
        segments
    }

    fn write(method: Method, segments: Vec<String>, body: Option<Value>, if_match: Option<&str>) -> Self {
        Self {
            method,
            segments,
            query: vec![("sendUpdates".into(), "none".into())],
            if_match: if_match.map(str::to_owned),
            body,
        }
    }

    pub fn get_event(calendar_id: &str, event_id: &str) -> Self {
        Self {
            method: Method::GET,
            segments: Self::event_path(calendar_id, Some(event_id)),
            query: Vec::new(),
            if_match: None,
            body: None,
        }
    }

    /// Insert (give the event a deterministic `id` so a retried insert that landed answers 409).
    pub fn insert_event(calendar_id: &str, event: &Event) -> Self {
        Self::write(
            Method::POST,
            Self::event_path(calendar_id, None),
            Some(to_json(event).unwrap_or(Value::Null)),
            None,
        )
    }

    /// Replaces or patches an event; with `if_match`, a stale etag answers 412.
    pub fn change_event(
        calendar_id: &str,
        event_id: &str,
        change: EventChange<'_>,
        if_match: Option<&str>,
    ) -> Self {
        Self::write(
            change.method(),
            Self::event_path(calendar_id, Some(event_id)),
            Some(change.body().unwrap_or(Value::Null)),
            if_match,
        )
    }

    pub fn delete_event(calendar_id: &str, event_id: &str) -> Self {
        Self::write(
            Method::DELETE,
            Self::event_path(calendar_id, Some(event_id)),
            None,
            None,
        )
    }

    /// A 410 on it means "full sync required" rather than "deleted".
    pub(super) fn is_listing(&self) -> bool {
        self.method == Method::GET && self.segments.last().is_some_and(|s| s == "events")
    }
}

fn to_json(value: &impl Serialize) -> Result<Value, GoogleError> {
    serde_json::to_value(value).map_err(|_| GoogleError::InvalidResponse("request body is not JSON".into()))
}

/// A successful (2xx) answer to one batch request.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchResponse {
    pub status: u16,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    /// The JSON body, when there is one (a delete has none).
    pub body: Option<Value>,
}

impl BatchResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as a typed resource (usually an [`Event`]).
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, GoogleError> {
        let body = self
            .body
            .clone()
            .ok_or_else(|| GoogleError::InvalidResponse("batch part has no body".into()))?;
        serde_json::from_value(body).map_err(|_| GoogleError::InvalidResponse("batch part body".into()))
    }

    pub fn event(&self) -> Result<Event, GoogleError> {
        self.json()
    }
}

// -------------------------------------------------------------------------------------------------
// Encoding
// -------------------------------------------------------------------------------------------------

/// One batch request, serialised once: request line and headers, and the body.
#[derive(Debug, Clone)]
pub(super) struct EncodedPart {
    pub head: String,
    pub body: Vec<u8>,
    pub listing: bool,
}

/// Serialises `request`, whose full URL (API root, `calendar/v3`, path and query) is `url`.
pub(super) fn encode(request: &BatchRequest, url: &Url) -> Result<EncodedPart, GoogleError> {
    let target = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    let mut head = format!("{} {target} HTTP/1.1\r\n", request.method);
    // An etag with a line break would smuggle a header into the part.
    if let Some(etag) = request.if_match.as_deref().filter(|e| !e.contains(['\r', '\n'])) {
        head.push_str(&format!("If-Match: {etag}\r\n"));
    }
    let body = match &request.body {
        Some(value) => {
            let json = serde_json::to_vec(value)
                .map_err(|_| GoogleError::InvalidResponse("batch body is not JSON".into()))?;
            head.push_str("Content-Type: application/json; charset=UTF-8\r\n");
            head.push_str(&format!("Content-Length: {}\r\n", json.len()));
            json
        }
        None => Vec::new(),
    };
    Ok(EncodedPart {
        head,
        body,
        listing: request.is_listing(),
    })
}

/// The batch body for `(index, part)` pairs, and its boundary (random, and absent from every part).
pub(super) fn multipart_body(parts: &[(usize, &EncodedPart)]) -> (String, Vec<u8>) {
    let boundary = loop {
        let candidate: String = rand::rng()
            .sample_iter(&Alphanumeric)
            .take(32)
            .map(char::from)
            .collect();
        let candidate = format!("batch_{candidate}");
        let clash = parts.iter().any(|(_, p)| {
            p.head.contains(&candidate) || p.body.windows(candidate.len()).any(|w| w == candidate.as_bytes())
        });
        if !clash {
            break candidate;
        }
    };
    let mut out = Vec::new();
    for (i, part) in parts {
        out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        out.extend_from_slice(b"Content-Type: application/http\r\n");
        out.extend_from_slice(format!("Content-ID: <item{i}>\r\n\r\n").as_bytes());
        out.extend_from_slice(part.head.as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&part.body);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (boundary, out)
}

// -------------------------------------------------------------------------------------------------
// Decoding
// -------------------------------------------------------------------------------------------------

/// The HTTP response one part carries.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct PartResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl PartResponse {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// As the caller sees a 2xx answer.
    pub fn into_batch_response(self) -> BatchResponse {
        BatchResponse {
            status: self.status,
            headers: self
                .headers
                .iter()
                .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
                .collect(),
            body: serde_json::from_slice(&self.body).ok(),
        }
    }
}

/// One part of a batch answer: the request index its Content-ID names, and its response, or why that
/// part could not be read (the other parts still count).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ResponsePart {
    pub index: Option<usize>,
    pub response: Result<PartResponse, String>,
}

/// The boundary of a `multipart/*` content type (multer's own helper accepts only form-data).
pub(super) fn boundary_of(content_type: &str) -> Option<String> {
    let mut params = content_type.split(';');
    let mime = params.next()?.trim();
    if !mime.to_ascii_lowercase().starts_with("multipart/") {
        return None;
    }
    params.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_owned())
            .filter(|b| !b.is_empty())
    })
}

/// Splits a `multipart/mixed` batch answer into its parts. An answer that is not multipart at all is an
/// error naming what is wrong; a part that is not an HTTP response is reported in its [`ResponsePart`].
pub(super) async fn decode(body: Bytes, boundary: &str) -> Result<Vec<ResponsePart>, GoogleError> {
    let malformed = |e: multer::Error| {
        GoogleError::InvalidResponse(format!("batch response is not valid multipart/mixed: {e}"))
    };
    let stream = futures::stream::once(async move { Ok::<Bytes, Infallible>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut parts = Vec::new();
    while let Some(field) = multipart.next_field().await.map_err(malformed)? {
        let index = field
            .headers()
            .get("content-id")
            .and_then(|v| v.to_str().ok())
            .and_then(content_id_index);
        let content = field.bytes().await.map_err(malformed)?;
        parts.push(ResponsePart {
            index,
            response: parse_http_response(&content),
        });
    }
    Ok(parts)
}

/// `<response-item12>`, `response-item12` or `<item12>` -> 12.
fn content_id_index(raw: &str) -> Option<usize> {
    let id = raw.trim().trim_start_matches('<').trim_end_matches('>');
    let id = id.strip_prefix("response-").unwrap_or(id);
    id.strip_prefix("item")?.parse().ok()
}

/// `HTTP/1.1 <status> <reason>`, headers, a blank line, the body (cut at Content-Length when given).
fn parse_http_response(content: &[u8]) -> Result<PartResponse, String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_PART_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(content) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Err("the part's HTTP response is cut short".into()),
        Err(e) => return Err(format!("the part is not an HTTP response: {e}")),
    };
    let status = response.code.ok_or("the part's HTTP response has no status")?;
    let mut map = HeaderMap::new();
    for header in response.headers.iter() {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(header.name.as_bytes()),
            HeaderValue::from_bytes(header.value),
        ) {
            map.append(name, value);
        }
    }
    let body = &content[head_len..];
    let length = map
        .get(reqwest::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    let body = match length {
        Some(n) if n <= body.len() => &body[..n],
        _ => body,
    };
    Ok(PartResponse {
        status,
        headers: map,
        body: Bytes::copy_from_slice(body),
    })
}

/// Pairs the answer's parts with the `pending` request indices: by Content-ID, then the parts without a
/// usable one in order among the requests still unanswered. A request without a part gets `None`.
pub(super) fn match_parts(
    pending: &[usize],
    parts: Vec<ResponsePart>,
) -> Vec<(usize, Option<Result<PartResponse, String>>)> {
    let mut by_index: HashMap<usize, Result<PartResponse, String>> = HashMap::new();
    let mut unmatched = Vec::new();
    for part in parts {
        match part.index {
            Some(i) if pending.contains(&i) && !by_index.contains_key(&i) => {
                by_index.insert(i, part.response);
            }
            _ => unmatched.push(part.response),
        }
    }
    let mut unmatched = unmatched.into_iter();
    pending
        .iter()
        .map(|&i| (i, by_index.remove(&i).or_else(|| unmatched.next())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(raw: &str) -> Url {
        Url::parse(raw).unwrap()
    }

    fn event() -> Event {
        Event {
            id: Some("abcdef12345".into()),
            summary: Some("x".into()),
            ..Event::default()
        }
    }

    #[test]
    fn requests_are_encoded_as_http_requests_without_header_injection() {
        let insert = encode(
            &BatchRequest::insert_event("a@example.com", &event()),
            &url("http://127.0.0.1:9/calendar/v3/calendars/a@example.com/events?sendUpdates=none"),
        )
        .unwrap();
        assert!(
            insert.head.starts_with(
                "POST /calendar/v3/calendars/a@example.com/events?sendUpdates=none HTTP/1.1\r\n"
            )
        );
        assert!(insert.head.contains("Content-Type: application/json"));
        assert_eq!(insert.body, br#"{"id":"abcdef12345","summary":"x"}"#);
        let e = event();
        let replace = BatchRequest::change_event("c", "e", EventChange::Replace(&e), Some("\"123\""));
        assert_eq!(replace.method, Method::PUT);
        let put = encode(
            &replace,
            &url("http://h/calendar/v3/calendars/c/events/e?sendUpdates=none"),
        )
        .unwrap();
        assert!(
            put.head
                .starts_with("PUT /calendar/v3/calendars/c/events/e?sendUpdates=none HTTP/1.1\r\n")
        );
        assert!(put.head.contains("If-Match: \"123\"\r\n"));
        let patch = serde_json::json!({"summary": null});
        let patch = BatchRequest::change_event("c", "e", EventChange::Patch(&patch), None);
        assert_eq!(patch.method, Method::PATCH);
        assert_eq!(patch.body, Some(serde_json::json!({"summary": null})));
        let injected = encode(
            &BatchRequest::change_event("c", "e", EventChange::Replace(&e), Some("x\r\nEvil: 1")),
            &url("http://h/calendar/v3/calendars/c/events/e"),
        )
        .unwrap();
        assert!(!injected.head.contains("Evil"));
        let delete = encode(
            &BatchRequest::delete_event("c", "e"),
            &url("http://h/calendar/v3/calendars/c/events/e"),
        )
        .unwrap();
        assert!(delete.body.is_empty());
        assert!(!delete.listing);
        assert!(
            BatchRequest {
                method: Method::GET,
                segments: vec!["calendars".into(), "c".into(), "events".into()],
                query: Vec::new(),
                if_match: None,
                body: None,
            }
            .is_listing()
        );

        let (boundary, body) = multipart_body(&[(3, &insert), (7, &delete)]);
        let text = String::from_utf8(body).unwrap();
        assert!(text.starts_with(&format!(
            "--{boundary}\r\nContent-Type: application/http\r\nContent-ID: <item3>\r\n\r\nPOST "
        )));
        assert!(text.contains("Content-ID: <item7>"));
        assert!(text.ends_with(&format!("--{boundary}--\r\n")));
    }

    #[tokio::test]
    async fn an_encoded_batch_reads_back_with_the_decoder() {
        let a = encode(
            &BatchRequest::insert_event("c", &event()),
            &url("http://h/calendar/v3/calendars/c/events"),
        )
        .unwrap();
        let (boundary, body) = multipart_body(&[(0, &a), (1, &a)]);
        // Requests are not responses: the decoder reads both parts and says so for each.
        let parts = decode(Bytes::from(body), &boundary).await.unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[1].index, Some(1));
        assert!(parts.iter().all(|p| p.response.is_err()));
    }

    const WELL_FORMED: &str = "preamble\r\n--b1\r\nContent-Type: application/http\r\nContent-ID: <response-item4>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: application/json; charset=UTF-8\r\nETag: \"9\"\r\nContent-Length: 12\r\n\r\n{\"id\":\"e4\"}\ntrailing\r\n--b1\r\nContent-Type: application/http\r\nContent-ID: response-item5\r\n\r\nHTTP/1.1 409 Conflict\r\nContent-Type: application/json\r\n\r\n{\"error\":{\"code\":409,\"errors\":[{\"reason\":\"duplicate\"}]}}\r\n--b1\r\nContent-Type: application/http\r\n\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n\r\n--b1--\r\n";

    #[tokio::test]
    async fn well_formed_answers_parse_with_any_content_id_style() {
        let parts = decode(Bytes::from_static(WELL_FORMED.as_bytes()), "b1")
            .await
            .unwrap();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0].index, Some(4));
        let ok = parts[0].response.clone().unwrap();
        assert_eq!(ok.status, 200);
        assert_eq!(ok.body, Bytes::from_static(b"{\"id\":\"e4\"}\n"));
        let answer = ok.into_batch_response();
        assert_eq!(answer.header("ETag"), Some("\"9\""));
        assert_eq!(answer.event().unwrap().id.as_deref(), Some("e4"));
        assert_eq!(parts[1].index, Some(5));
        let conflict = parts[1].response.clone().unwrap();
        assert_eq!(conflict.status, 409);
        assert!(!conflict.is_success());
        assert!(conflict.body.starts_with(b"{\"error\""));
        assert_eq!(parts[2].index, None);
        let empty = parts[2].response.clone().unwrap();
        assert_eq!(empty.status, 204);
        assert!(empty.body.is_empty());
        assert_eq!(empty.into_batch_response().body, None);
    }

    #[tokio::test]
    async fn a_part_that_is_not_an_http_response_fails_alone() {
        let body = "--b\r\nContent-ID: <response-item0>\r\n\r\nHTTP/1.1 200 OK\r\n\r\n{}\r\n--b\r\nContent-ID: <response-item1>\r\n\r\nnot http at all\r\n--b\r\nContent-ID: <response-item2>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: application/json\r\n--b--\r\n";
        let parts = decode(Bytes::from(body), "b").await.unwrap();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0].response.as_ref().map(|r| r.status), Ok(200));
        let bad = parts[1].response.clone().unwrap_err();
        assert!(bad.contains("not an HTTP response"), "{bad}");
        let cut = parts[2].response.clone().unwrap_err();
        assert!(cut.contains("cut short"), "{cut}");
    }

    #[tokio::test]
    async fn malformed_answers_give_a_clear_error_and_never_panic() {
        for (body, boundary) in [
            ("not multipart", "b1"),
            (
                "--b1\r\nContent-ID: <item0>\r\n\r\nHTTP/1.1 200 OK\r\n\r\n{}",
                "b1",
            ),
            ("--other\r\n\r\nHTTP/1.1 200 OK\r\n\r\n--other--\r\n", "b1"),
            ("", "b1"),
        ] {
            match decode(Bytes::from(body), boundary).await {
                Err(GoogleError::InvalidResponse(message)) => {
                    assert!(
                        message.starts_with("batch response is not valid multipart/mixed"),
                        "{message}"
                    )
                }
                other => panic!("{body:?}: {other:?}"),
            }
        }
        // Arbitrary bytes: an error or parts, never a panic.
        for seed in 0u8..64 {
            let junk: Vec<u8> = (0..200u16)
                .map(|i| (i as u8).wrapping_mul(seed).wrapping_add(seed))
                .collect();
            let mut body = b"--b\r\n".to_vec();
            body.extend_from_slice(&junk);
            let _ = decode(Bytes::from(body), "b").await;
        }
    }

    #[test]
    fn boundaries_and_content_ids_are_read_leniently() {
        assert_eq!(
            boundary_of("multipart/mixed; boundary=batch_abc").as_deref(),
            Some("batch_abc")
        );
        assert_eq!(
            boundary_of("Multipart/Mixed; charset=utf-8; Boundary=\"q\"").as_deref(),
            Some("q")
        );
        assert_eq!(boundary_of("application/json"), None);
        assert_eq!(boundary_of("multipart/mixed; boundary="), None);
        assert_eq!(content_id_index("<item12>"), Some(12));
        assert_eq!(content_id_index("response-item3"), Some(3));
        assert_eq!(content_id_index("<response-other>"), None);
    }

    #[test]
    fn parts_match_by_content_id_then_by_position() {
        let ok = |status| ResponsePart {
            index: None,
            response: Ok(PartResponse {
                status,
                headers: HeaderMap::new(),
                body: Bytes::new(),
            }),
        };
        let with = |index, status| ResponsePart {
            index: Some(index),
            ..ok(status)
        };
        let status = |r: &Option<Result<PartResponse, String>>| {
            r.as_ref()
                .map(|r| r.as_ref().map(|p| p.status).map_err(String::clone))
        };
        let matched = match_parts(&[2, 5, 7], vec![with(7, 201), ok(202), with(9, 203)]);
        let got: Vec<_> = matched.iter().map(|(i, r)| (*i, status(r))).collect();
        assert_eq!(
            got,
            vec![(2, Some(Ok(202))), (5, Some(Ok(203))), (7, Some(Ok(201)))]
        );
        let missing = match_parts(&[0, 1], vec![with(1, 200)]);
        assert_eq!(status(&missing[0].1), None);
    }
}
