//! `/batch/calendar/v3`: multipart/mixed in, each part an HTTP request run through the
//! same router (so faults, latency, log and stats apply per part), multipart/mixed out.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tower::ServiceExt;

use crate::Emulator;
use crate::error::ApiError;
use crate::middleware::{BATCH_PATH, BatchPart, DropConnection, drop_response};
use crate::util;

const PART_BODY_LIMIT: usize = 64 * 1024 * 1024;

pub fn routes() -> Router<Emulator> {
    Router::new().route(BATCH_PATH, post(handle))
}

fn boundary_of(headers: &HeaderMap) -> Option<String> {
    let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let mut parts = ct.split(';');
    let mime = parts.next()?.trim();
    if !mime.eq_ignore_ascii_case("multipart/mixed") {
        return None;
    }
    parts.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from > hay.len() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// Splits a multipart body into the raw bytes of its parts.
fn split_parts(body: &[u8], boundary: &str) -> Option<Vec<Vec<u8>>> {
    let delim = format!("--{boundary}");
    let delim = delim.as_bytes();
    let mut pos = find(body, delim, 0)?;
    let mut parts = Vec::new();
    loop {
        let after = pos + delim.len();
        if body[after..].starts_with(b"--") {
            break;
        }
        // Skip the rest of the delimiter line.
        let line_end = find(body, b"\n", after)? + 1;
        let next = find(body, delim, line_end);
        let end = next.unwrap_or(body.len());
        let mut content = &body[line_end..end];
        if content.ends_with(b"\r\n") {
            content = &content[..content.len() - 2];
        } else if content.ends_with(b"\n") {
            content = &content[..content.len() - 1];
        }
        parts.push(content.to_vec());
        match next {
            Some(n) => pos = n,
            None => break,
        }
    }
    Some(parts)
}

/// Splits headers from body at the first blank line.
fn split_head(raw: &[u8]) -> (String, &[u8]) {
    let crlf = find(raw, b"\r\n\r\n", 0).map(|i| (i, i + 4));
    let lf = find(raw, b"\n\n", 0).map(|i| (i, i + 2));
    let split = match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    };
    match split {
        Some((h, b)) => (String::from_utf8_lossy(&raw[..h]).into_owned(), &raw[b..]),
        None => (String::from_utf8_lossy(raw).into_owned(), &[]),
    }
}

fn parse_headers(head: &str) -> Vec<(String, String)> {
    head.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim().to_owned(), v.trim().to_owned()))
        })
        .collect()
}

struct PartRequest {
    content_id: Option<String>,
    method: Method,
    uri: Uri,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn parse_part(raw: &[u8]) -> Result<PartRequest, Option<String>> {
    let (outer_head, inner) = split_head(raw);
    let outer = parse_headers(&outer_head);
    let content_id = outer
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-id"))
        .map(|(_, v)| v.clone());
    let inner = {
        let mut s = inner;
        while s.starts_with(b"\r\n") || s.starts_with(b"\n") {
            s = if s.starts_with(b"\r\n") { &s[2..] } else { &s[1..] };
        }
        s
    };
    let (head, body) = split_head(inner);
    let mut lines = head.lines();
    let request_line = lines.next().unwrap_or("").trim().to_owned();
    let mut it = request_line.split_whitespace();
    let (Some(m), Some(target)) = (it.next(), it.next()) else {
        return Err(content_id);
    };
    let method = Method::from_bytes(m.as_bytes()).map_err(|_| content_id.clone())?;
    let path_and_query = match url::Url::parse(target) {
        Ok(u) if u.has_host() => match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_owned(),
        },
        _ => target.to_owned(),
    };
    let uri: Uri = path_and_query.parse().map_err(|_| content_id.clone())?;
    let rest: Vec<&str> = lines.collect();
    Ok(PartRequest {
        content_id,
        method,
        uri,
        headers: parse_headers(&rest.join("\n")),
        body: body.to_vec(),
    })
}

fn response_content_id(emu: &Emulator, id: &str) -> String {
    let bare = id.trim().trim_start_matches('<').trim_end_matches('>');
    let v = format!("response-{bare}");
    if emu.config().batch_content_id_brackets {
        format!("<{v}>")
    } else {
        v
    }
}

fn skip_outer(name: &HeaderName) -> bool {
    let n = name.as_str();
    n.starts_with("content-")
        || matches!(
            n,
            "host" | "transfer-encoding" | "connection" | "expect" | "keep-alive" | "upgrade"
        )
}

async fn run_part(router: &Router, outer: &HeaderMap, part: &PartRequest) -> Response {
    let path = part.uri.path();
    if path.starts_with("/batch") || path.starts_with("/emulator") {
        return ApiError::not_found().into_response();
    }
    let mut req = Request::new(Body::from(part.body.clone()));
    *req.method_mut() = part.method.clone();
    *req.uri_mut() = part.uri.clone();
    let headers = req.headers_mut();
    for (k, v) in outer {
        if !skip_outer(k) {
            headers.append(k.clone(), v.clone());
        }
    }
    for (k, v) in &part.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(v)) {
            headers.insert(name, value);
        }
    }
    if let Some(host) = outer.get(header::HOST) {
        headers.insert(header::HOST, host.clone());
    }
    req.extensions_mut().insert(BatchPart);
    match router.clone().oneshot(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    }
}

async fn handle(State(emu): State<Emulator>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(boundary) = boundary_of(&headers) else {
        return ApiError::bad_request("Invalid multipart request with 0 mime parts.").into_response();
    };
    let Some(raw_parts) = split_parts(&body, &boundary).filter(|p| !p.is_empty()) else {
        return ApiError::bad_request("Invalid multipart request with 0 mime parts.").into_response();
    };
    let max = emu.config().max_batch_parts;
    if raw_parts.len() > max {
        return ApiError::bad_request(&format!(
            "Too many requests in batch: {} (the limit is {max}).",
            raw_parts.len()
        ))
        .into_response();
    }
    let router = emu.router();
    let out_boundary = format!("batch_{}", util::random_token("", 12).replace(['-', '_'], "x"));
    let mut out: Vec<u8> = Vec::new();
    for raw in &raw_parts {
        let (content_id, resp) = match parse_part(raw) {
            Ok(part) => {
                let resp = run_part(&router, &headers, &part).await;
                (part.content_id, resp)
            }
            Err(cid) => (
                cid,
                ApiError::bad_request("Failed to parse batch request.").into_response(),
            ),
        };
        if resp.extensions().get::<DropConnection>().is_some() {
            return drop_response();
        }
        let status = resp.status();
        let resp_headers = resp.headers().clone();
        let body = axum::body::to_bytes(resp.into_body(), PART_BODY_LIMIT)
            .await
            .unwrap_or_default();
        out.extend_from_slice(format!("--{out_boundary}\r\n").as_bytes());
        out.extend_from_slice(b"Content-Type: application/http\r\n");
        if let Some(cid) = content_id {
            out.extend_from_slice(format!("Content-ID: {}\r\n", response_content_id(&emu, &cid)).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(
            format!(
                "HTTP/1.1 {} {}\r\n",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            )
            .as_bytes(),
        );
        for name in [
            header::CONTENT_TYPE,
            header::ETAG,
            header::RETRY_AFTER,
            header::VARY,
        ] {
            if let Some(v) = resp_headers.get(&name).and_then(|v| v.to_str().ok()) {
                out.extend_from_slice(format!("{}: {v}\r\n", canonical(&name)).as_bytes());
            }
        }
        out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
        out.extend_from_slice(&body);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{out_boundary}--\r\n").as_bytes());
    let mut resp = (StatusCode::OK, out).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("multipart/mixed; boundary={out_boundary}")) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp
}

fn canonical(name: &HeaderName) -> &'static str {
    match name.as_str() {
        "content-type" => "Content-Type",
        "etag" => "ETag",
        "retry-after" => "Retry-After",
        "vary" => "Vary",
        _ => "X-Header",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_parts_and_requests() {
        let body = "--b\r\nContent-Type: application/http\r\nContent-ID: <item1>\r\n\r\nGET /calendar/v3/calendars/primary/events?maxResults=1 HTTP/1.1\r\nAuthorization: Bearer x\r\n\r\n\r\n--b\r\nContent-Type: application/http\r\n\r\nPOST https://www.googleapis.com/calendar/v3/calendars/primary/events HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{\"a\":1}\r\n--b--\r\n";
        let parts = split_parts(body.as_bytes(), "b").unwrap();
        assert_eq!(parts.len(), 2);
        let p1 = parse_part(&parts[0]).ok().unwrap();
        assert_eq!(p1.content_id.as_deref(), Some("<item1>"));
        assert_eq!(p1.method, Method::GET);
        assert_eq!(
            p1.uri.to_string(),
            "/calendar/v3/calendars/primary/events?maxResults=1"
        );
        assert_eq!(p1.headers[0].0, "Authorization");
        let p2 = parse_part(&parts[1]).ok().unwrap();
        assert_eq!(p2.method, Method::POST);
        assert_eq!(p2.uri.path(), "/calendar/v3/calendars/primary/events");
        assert_eq!(p2.body, b"{\"a\":1}");
    }
}
