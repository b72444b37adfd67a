//! CSRF tokens bound to a session. Pure: no I/O, no clock.
//!
//! A token is `base64url(nonce) "." base64url(mac)` (no padding), where `nonce`
//! is 16 random bytes and `mac = HMAC-SHA256(secret, "chronos-csrf|" ||
//! session_binding || "|" || nonce)`. The nonce is the fixed-length suffix of
//! the MAC input, so the encoding is unambiguous whatever the binding contains.
//!
//! `secret` is a server-wide key; `session_binding` is an opaque random value
//! stored in the session (see `session::new_session_binding`), so a token issued for
//! one session never verifies for another.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const DOMAIN: &[u8] = b"chronos-csrf|";
const NONCE_LEN: usize = 16;
const MAC_LEN: usize = 32;
/// Length of the base64url (unpadded) nonce part.
const NONCE_B64_LEN: usize = 22;
/// Length of the base64url (unpadded) MAC part.
const MAC_B64_LEN: usize = 43;

/// Length in characters of every token produced by [`CsrfToken::issue`].
pub const TOKEN_LEN: usize = NONCE_B64_LEN + 1 + MAC_B64_LEN;

/// Issues and verifies CSRF tokens.
#[derive(Debug, Clone, Copy)]
pub struct CsrfToken;

impl CsrfToken {
    /// Issues a fresh token for the session identified by `session_binding`.
    ///
    /// Each call uses a new random nonce, so two tokens differ. Tokens issued
    /// with an empty `secret` or an empty `session_binding` never verify.
    pub fn issue(secret: &[u8], session_binding: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let mac = mac(secret, session_binding, &nonce).finalize().into_bytes();
        let mut token = String::with_capacity(TOKEN_LEN);
        URL_SAFE_NO_PAD.encode_string(nonce, &mut token);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(mac, &mut token);
        token
    }

    /// Checks `presented` against `secret` and `session_binding` in constant time.
    ///
    /// Returns false (never panics) for any malformed input, and always false
    /// when `secret` or `session_binding` is empty (fail closed on misconfiguration).
    pub fn verify(secret: &[u8], session_binding: &str, presented: &str) -> bool {
        if secret.is_empty() || session_binding.is_empty() || presented.len() != TOKEN_LEN {
            return false;
        }
        let Some((nonce_b64, mac_b64)) = presented.split_once('.') else {
            return false;
        };
        if nonce_b64.len() != NONCE_B64_LEN || mac_b64.len() != MAC_B64_LEN {
            return false;
        }
        let mut nonce = [0u8; NONCE_LEN];
        match URL_SAFE_NO_PAD.decode_slice(nonce_b64, &mut nonce) {
            Ok(NONCE_LEN) => {}
            _ => return false,
        }
        let mut tag = [0u8; MAC_LEN];
        match URL_SAFE_NO_PAD.decode_slice(mac_b64, &mut tag) {
            Ok(MAC_LEN) => {}
            _ => return false,
        }
        mac(secret, session_binding, &nonce).verify_slice(&tag).is_ok()
    }
}

fn mac(secret: &[u8], session_binding: &str, nonce: &[u8; NONCE_LEN]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this never fails; the fallback keeps
    // the code panic-free and can only make verification fail.
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| <HmacSha256 as KeyInit>::new(&Default::default()));
    mac.update(DOMAIN);
    mac.update(session_binding.as_bytes());
    mac.update(b"|");
    mac.update(nonce);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{crypto::constant_time_eq, session::new_session_binding};

    const SECRET: &[u8] = b"server-wide csrf secret, 32+ bytes long!";
    const SESSION: &str = "session-binding-A";

    #[test]
    fn valid_token_verifies() {
        let t = CsrfToken::issue(SECRET, SESSION);
        assert_eq!(t.len(), TOKEN_LEN);
        assert!(CsrfToken::verify(SECRET, SESSION, &t));
        // Reusable within the session.
        assert!(CsrfToken::verify(SECRET, SESSION, &t));
    }

    #[test]
    fn token_shape() {
        let t = CsrfToken::issue(SECRET, SESSION);
        let (n, m) = t.split_once('.').unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(n).unwrap().len(), NONCE_LEN);
        assert_eq!(URL_SAFE_NO_PAD.decode(m).unwrap().len(), MAC_LEN);
        assert!(
            t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        );
    }

    #[test]
    fn mac_matches_spec() {
        let t = CsrfToken::issue(SECRET, SESSION);
        let (n, m) = t.split_once('.').unwrap();
        let nonce = URL_SAFE_NO_PAD.decode(n).unwrap();
        let mut input = b"chronos-csrf|".to_vec();
        input.extend_from_slice(SESSION.as_bytes());
        input.push(b'|');
        input.extend_from_slice(&nonce);
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(SECRET).unwrap();
        mac.update(&input);
        assert_eq!(URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()), m.to_owned());
    }

    #[test]
    fn two_tokens_differ() {
        let a = CsrfToken::issue(SECRET, SESSION);
        let b = CsrfToken::issue(SECRET, SESSION);
        assert_ne!(a, b);
        assert_ne!(a.split_once('.').unwrap().0, b.split_once('.').unwrap().0);
        assert!(CsrfToken::verify(SECRET, SESSION, &a));
        assert!(CsrfToken::verify(SECRET, SESSION, &b));
    }

    #[test]
    fn other_session_fails() {
        let t = CsrfToken::issue(SECRET, SESSION);
        assert!(!CsrfToken::verify(SECRET, "session-binding-B", &t));
        assert!(!CsrfToken::verify(SECRET, "session-binding-A ", &t));
        assert!(!CsrfToken::verify(SECRET, "session-binding-", &t));
        let b = new_session_binding();
        let t2 = CsrfToken::issue(SECRET, &b);
        assert!(CsrfToken::verify(SECRET, &b, &t2));
        assert!(!CsrfToken::verify(SECRET, SESSION, &t2));
    }

    #[test]
    fn wrong_secret_fails() {
        let t = CsrfToken::issue(SECRET, SESSION);
        assert!(!CsrfToken::verify(b"another secret", SESSION, &t));
        assert!(!CsrfToken::verify(&SECRET[..SECRET.len() - 1], SESSION, &t));
    }

    #[test]
    fn empty_secret_or_binding_never_verifies() {
        let t = CsrfToken::issue(b"", SESSION);
        assert!(!CsrfToken::verify(b"", SESSION, &t));
        let t = CsrfToken::issue(SECRET, "");
        assert!(!CsrfToken::verify(SECRET, "", &t));
    }

    #[test]
    fn every_tampered_character_fails() {
        let t = CsrfToken::issue(SECRET, SESSION);
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ";
        for i in 0..t.len() {
            for &c in alphabet {
                let mut bytes = t.clone().into_bytes();
                if bytes[i] == c {
                    continue;
                }
                bytes[i] = c;
                let tampered = String::from_utf8(bytes).unwrap();
                assert!(
                    !CsrfToken::verify(SECRET, SESSION, &tampered),
                    "pos {i} char {}",
                    c as char
                );
            }
        }
    }

    #[test]
    fn swapped_or_recombined_parts_fail() {
        let a = CsrfToken::issue(SECRET, SESSION);
        let b = CsrfToken::issue(SECRET, SESSION);
        let (an, am) = a.split_once('.').unwrap();
        let (bn, bm) = b.split_once('.').unwrap();
        assert!(!CsrfToken::verify(SECRET, SESSION, &format!("{an}.{bm}")));
        assert!(!CsrfToken::verify(SECRET, SESSION, &format!("{bn}.{am}")));
        assert!(!CsrfToken::verify(SECRET, SESSION, &format!("{am}.{an}")));
    }

    #[test]
    fn malformed_inputs_fail() {
        let t = CsrfToken::issue(SECRET, SESSION);
        let (n, m) = t.split_once('.').unwrap();
        let padded_nonce = format!("{n}==");
        let long = "A".repeat(1 << 20);
        let long_dotted = format!("{t}{}", ".".repeat(10_000));
        let cases: Vec<String> = vec![
            String::new(),
            ".".into(),
            "..".into(),
            "garbage".into(),
            "not.a.token".into(),
            format!("{n}{m}"),             // missing dot
            format!("{n}.{m}."),           // extra dot at end
            format!(".{n}.{m}"),           // extra dot at start
            format!("{n}..{m}"),           // double dot
            format!("{n}.{m}.{m}"),        // extra part
            format!("{padded_nonce}.{m}"), // padding
            format!("{n}.{m}="),
            format!("{n}.{}", &m[..m.len() - 1]), // truncated mac
            format!("{}.{m}", &n[..n.len() - 1]), // truncated nonce
            format!("{n}.{m}A"),
            format!(" {t}"),
            format!("{t} "),
            format!("{t}\n"),
            t.replace('.', ","),
            format!("{}.{}", "!".repeat(22), "!".repeat(43)), // right lengths, not base64
            format!("{}.{}", "+".repeat(22), "/".repeat(43)), // standard, not url-safe
            format!("{}.{}", "A".repeat(22), "A".repeat(43)), // all zero bytes
            format!("{}.{}", "é".repeat(11), "A".repeat(43)), // multibyte chars
            "A".repeat(TOKEN_LEN),
            long,
            long_dotted,
        ];
        for c in &cases {
            assert!(
                !CsrfToken::verify(SECRET, SESSION, c),
                "{:?}",
                &c[..c.len().min(80)]
            );
        }
        // Non-canonical trailing bits in the last base64 character are rejected
        // (so a token has exactly one accepted spelling).
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let last = m.as_bytes()[m.len() - 1];
        let idx = alphabet.iter().position(|&c| c == last).unwrap();
        let alt = alphabet[idx ^ 1] as char;
        let noncanonical = format!("{n}.{}{alt}", &m[..m.len() - 1]);
        assert!(URL_SAFE_NO_PAD.decode(m).is_ok());
        assert!(!CsrfToken::verify(SECRET, SESSION, &noncanonical));
    }

    #[test]
    fn constant_time_eq_works() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(!constant_time_eq(b"a", b""));
    }

    #[test]
    fn session_bindings_are_random() {
        let a = new_session_binding();
        let b = new_session_binding();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
    }
}
