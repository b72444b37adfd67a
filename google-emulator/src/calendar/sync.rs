//! Sync tokens and page tokens.
//!
//! A sync token encodes (reset nonce, epoch, change counter, owner): the owner is a
//! calendar id (events) or an account email (calendarList). Invalidation bumps the epoch.
//! Page tokens point into a stored snapshot of the full result.

use serde_json::Value;

use crate::error::ApiError;
use crate::state::{Snapshot, State};
use crate::util;

pub fn encode(kind: char, nonce: u64, epoch: u64, seq: u64, owner: &str) -> String {
    util::b64url(&format!("{kind}|{nonce}|{epoch}|{seq}|{owner}"))
}

/// Returns the change counter of a token if it is still valid for this owner and epoch.
pub fn decode(token: &str, kind: char, nonce: u64, epoch: u64, current_seq: u64, owner: &str) -> Option<u64> {
    let s = util::b64url_decode(token)?;
    let mut parts = s.splitn(5, '|');
    let k = parts.next()?;
    let n: u64 = parts.next()?.parse().ok()?;
    let e: u64 = parts.next()?.parse().ok()?;
    let seq: u64 = parts.next()?.parse().ok()?;
    let o = parts.next()?;
    let ok =
        k.len() == 1 && k.starts_with(kind) && n == nonce && e == epoch && seq <= current_seq && o == owner;
    ok.then_some(seq)
}

pub struct Page {
    pub items: Vec<Value>,
    pub next_page_token: Option<String>,
    pub next_sync_token: Option<String>,
}

fn invalid_page_token() -> ApiError {
    ApiError::invalid("Invalid page token value.").param("pageToken")
}

fn page_size(max: usize, cap: Option<usize>) -> usize {
    cap.map_or(max, |c| c.clamp(1, max.max(1))).max(1)
}

/// First page of a freshly computed result. Stores a snapshot when more pages follow.
pub fn first_page(
    st: &mut State,
    owner: &str,
    mut items: Vec<Value>,
    sync_token: String,
    max: usize,
    cap: Option<usize>,
) -> Page {
    let size = page_size(max, cap);
    if items.len() <= size {
        return Page {
            items,
            next_page_token: None,
            next_sync_token: Some(sync_token),
        };
    }
    let first: Vec<Value> = items.drain(..size).collect();
    let snap_id = st.store_snapshot(Snapshot {
        owner: owner.to_owned(),
        items,
        sync_token,
    });
    Page {
        items: first,
        next_page_token: Some(util::b64url(&format!("{snap_id}|0"))),
        next_sync_token: None,
    }
}

/// A later page, walked from the snapshot the token points to.
pub fn next_page(
    st: &State,
    owner: &str,
    token: &str,
    max: usize,
    cap: Option<usize>,
) -> Result<Page, ApiError> {
    let raw = util::b64url_decode(token).ok_or_else(invalid_page_token)?;
    let (snap_id, offset) = raw.rsplit_once('|').ok_or_else(invalid_page_token)?;
    let offset: usize = offset.parse().map_err(|_| invalid_page_token())?;
    let snap = st.snapshots.get(snap_id).ok_or_else(invalid_page_token)?;
    if snap.owner != owner || offset > snap.items.len() {
        return Err(invalid_page_token());
    }
    let size = page_size(max, cap);
    let end = (offset + size).min(snap.items.len());
    let items = snap.items[offset..end].to_vec();
    if end < snap.items.len() {
        Ok(Page {
            items,
            next_page_token: Some(util::b64url(&format!("{snap_id}|{end}"))),
            next_sync_token: None,
        })
    } else {
        Ok(Page {
            items,
            next_page_token: None,
            next_sync_token: Some(snap.sync_token.clone()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_round_trip() {
        let t = encode('e', 7, 2, 10, "a@b.c");
        assert_eq!(decode(&t, 'e', 7, 2, 12, "a@b.c"), Some(10));
        assert_eq!(decode(&t, 'e', 7, 3, 12, "a@b.c"), None);
        assert_eq!(decode(&t, 'e', 8, 2, 12, "a@b.c"), None);
        assert_eq!(decode(&t, 'l', 7, 2, 12, "a@b.c"), None);
        assert_eq!(decode(&t, 'e', 7, 2, 12, "x@b.c"), None);
        assert_eq!(decode("garbage", 'e', 7, 2, 12, "a@b.c"), None);
    }
}
