//! Small helpers: identifiers, timestamps, query parameters.

use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use rand::Rng;

use crate::error::ApiError;

/// Random lowercase base32hex string (alphabet `0-9a-v`) of `bytes` random bytes.
pub fn base32hex_id(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill(&mut buf[..]);
    data_encoding::BASE32HEX_NOPAD.encode(&buf).to_ascii_lowercase()
}

/// A Google-like event id: 26 base32hex characters.
pub fn new_event_id() -> String {
    base32hex_id(16)
}

/// Random URL-safe token with a prefix.
pub fn random_token(prefix: &str, bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill(&mut buf[..]);
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&buf)
    )
}

/// Random numeric string of `digits` digits, not starting with 0.
pub fn random_digits(digits: usize) -> String {
    let mut rng = rand::rng();
    let mut s = String::with_capacity(digits);
    s.push(char::from(b'1' + rng.random_range(0..9u8)));
    for _ in 1..digits {
        s.push(char::from(b'0' + rng.random_range(0..10u8)));
    }
    s
}

/// Whether `id` is a valid client-supplied event id: base32hex (a-v, 0-9), length 5..=1024.
pub fn is_valid_event_id(id: &str) -> bool {
    (5..=1024).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'v').contains(&b))
}

/// RFC 3339 UTC with milliseconds, like Google's `updated`.
pub fn rfc3339_millis(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn b64url(s: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s.as_bytes())
}

pub fn b64url_decode(s: &str) -> Option<String> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('=').as_bytes())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
}

/// Query parameters, keeping repeated names.
#[derive(Debug, Default, Clone)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    pub fn parse(query: Option<&str>) -> Self {
        Self(
            query
                .map(|q| {
                    url::form_urlencoded::parse(q.as_bytes())
                        .map(|(k, v)| (k.into_owned(), v.into_owned()))
                        .collect()
                })
                .unwrap_or_default(),
        )
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn get_nonempty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, v)| k == name && !v.is_empty())
    }

    pub fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.get(name) {
            None | Some("") => Ok(None),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(v) => Err(ApiError::invalid(&format!("Invalid boolean value: '{v}'.")).param(name)),
        }
    }

    pub fn flag(&self, name: &str) -> Result<bool, ApiError> {
        Ok(self.bool(name)?.unwrap_or(false))
    }

    /// An integer parameter within `min..=max`, else Google's range error.
    pub fn int_in(&self, name: &str, default: usize, min: usize, max: usize) -> Result<usize, ApiError> {
        match self.get_nonempty(name) {
            None => Ok(default),
            Some(v) => {
                let n: i64 = v.parse().map_err(|_| {
                    ApiError::invalid(&format!("Invalid value '{v}'. Values must be integers.")).param(name)
                })?;
                if n < min as i64 || n > max as i64 {
                    return Err(ApiError::invalid(&format!(
                        "Invalid value '{v}'. Values must be within the range: [{min}, {max}]"
                    ))
                    .param(name));
                }
                Ok(usize::try_from(n).unwrap_or(default))
            }
        }
    }

    /// An RFC 3339 timestamp parameter (offset required).
    pub fn time(&self, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
        match self.get_nonempty(name) {
            None => Ok(None),
            Some(v) => DateTime::parse_from_rfc3339(v)
                .map(|t| Some(t.with_timezone(&Utc)))
                .map_err(|_| ApiError::bad_request(&format!("Invalid value for: {name}")).param(name)),
        }
    }
}

/// Matches `text` against `pattern`: a glob with `*` (anchored) when it contains `*`,
/// else a substring.
pub fn path_matches(pattern: &str, text: &str) -> bool {
    if !pattern.contains('*') {
        return text.contains(pattern);
    }
    glob_match(pattern.as_bytes(), text.as_bytes())
}

fn glob_match(p: &[u8], t: &[u8]) -> bool {
    let (mut pi, mut ti) = (0usize, 0usize);
    let (mut star, mut mark) = (None::<usize>, 0usize);
    while ti < t.len() {
        if pi < p.len() && p[pi] != b'*' && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        let id = new_event_id();
        assert_eq!(id.len(), 26);
        assert!(is_valid_event_id(&id));
        assert!(!is_valid_event_id("abcd"));
        assert!(!is_valid_event_id("abcdw"));
        assert!(!is_valid_event_id("123e4567-e89b-12d3-a456-426614174000"));
        assert!(is_valid_event_id("abcde"));
    }

    #[test]
    fn globs() {
        assert!(path_matches("/events", "/calendar/v3/calendars/a/events"));
        assert!(path_matches(
            "/calendar/v3/*/events",
            "/calendar/v3/calendars/a/events"
        ));
        assert!(!path_matches(
            "/calendar/v3/*/events",
            "/calendar/v3/calendars/a/events/b"
        ));
        assert!(path_matches("*", "/x"));
        assert!(path_matches("/calendar/*", "/calendar/v3/x"));
    }

    #[test]
    fn digits() {
        let d = random_digits(21);
        assert_eq!(d.len(), 21);
        assert!(d.bytes().all(|b| b.is_ascii_digit()));
    }
}
