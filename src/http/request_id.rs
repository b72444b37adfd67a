//! `X-Request-ID`: honoured when a client sends a sane one, generated otherwise, echoed on the response.

use axum::{body::Body, http::Request};

pub const HEADER: &str = "x-request-id";
const MAX_LEN: usize = 128;

/// Removes a client-sent id that is too long or holds anything but visible ASCII, so logs stay clean and
/// a fresh id is generated in its place.
pub fn drop_invalid_request_id(mut request: Request<Body>) -> Request<Body> {
    let valid = request.headers().get(HEADER).is_none_or(|value| {
        let bytes = value.as_bytes();
        !bytes.is_empty() && bytes.len() <= MAX_LEN && bytes.iter().all(|b| b.is_ascii_graphic())
    });
    if !valid {
        request.headers_mut().remove(HEADER);
    }
    request
}
