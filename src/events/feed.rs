//! `eventChanges`: the delta feed of the cache for offline-first clients, as a query and live.
//!
//! Every write of an event row takes the next value of its user's change sequence in its transaction, and
//! a user's values become visible in increasing order (see `entities::event_change_sequences`), so "the
//! user's rows whose `change_seq` is above the cursor, in `change_seq` order" never skips a change. The
//! feed carries stored rows (singles, series masters, exceptions; instances are the client's to expand)
//! and tombstones.
//! Replaying it from the start and applying each change by `eventId` gives exactly the stored view.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, JoinType, QueryFilter, QueryOrder, QuerySelect, RelationTrait,
};
use std::pin::Pin;

use futures::{Stream, StreamExt as _};
use uuid::Uuid;

use super::store::{self, StoredEvent};
use crate::{
    cache_changes::{self, CacheChange},
    crypto::Cipher,
    entities::{calendars, event_change_sequences, events, google_accounts},
    error::{AppError, AppResult},
    state::AppState,
};

pub const DEFAULT_FEED_SIZE: usize = 500;
pub const MAX_FEED_SIZE: usize = 1000;

/// One change: the event as it now is, or `None` when it was deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub event_id: Uuid,
    pub event: Option<StoredEvent>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedPage {
    pub changes: Vec<Change>,
    /// Where the next call starts: after the last change returned (or where this one started).
    pub cursor: String,
    /// More changes follow right away.
    pub has_more: bool,
}

/// The changes to the user's events after `since` (`None`: from the beginning), at most `first`.
pub async fn changes<C: ConnectionTrait>(
    db: &C,
    cipher: &Cipher,
    user_id: Uuid,
    since: Option<&str>,
    first: usize,
) -> AppResult<FeedPage> {
    let since = since.map(decode_cursor).transpose()?.unwrap_or(0);
    Ok(changes_after(db, cipher, user_id, since, first).await?.0)
}

/// The cursor after the user's latest change as of now: the user's change counter, one row. Its
/// committed value is only ever seen once every change numbered up to it is visible (see
/// `entities::event_change_sequences`), so nothing is skipped from it; values taken by writes that
/// changed nothing are harmless gaps.
pub async fn latest_cursor<C: ConnectionTrait>(db: &C, user_id: Uuid) -> AppResult<String> {
    let counter = event_change_sequences::Entity::find_by_id(user_id)
        .one(db)
        .await?;
    Ok(encode_cursor(counter.map_or(0, |counter| counter.value)))
}

/// A page of changes after the change sequence value `since`, and the value its cursor stands for.
async fn changes_after<C: ConnectionTrait>(
    db: &C,
    cipher: &Cipher,
    user_id: Uuid,
    since: i64,
    first: usize,
) -> AppResult<(FeedPage, i64)> {
    let limit = u64::try_from(first + 1).unwrap_or(u64::MAX);
    let rows = events::Entity::find()
        .join(JoinType::InnerJoin, events::Relation::Calendars.def())
        .join(JoinType::InnerJoin, calendars::Relation::GoogleAccounts.def())
        .filter(google_accounts::Column::UserId.eq(user_id))
        .filter(events::Column::ChangeSeq.gt(since))
        .order_by_asc(events::Column::ChangeSeq)
        .limit(limit)
        .all(db)
        .await?;
    let has_more = rows.len() > first;
    let mut last = since;
    let mut changes = Vec::with_capacity(rows.len().min(first));
    for row in rows.iter().take(first) {
        last = row.change_seq;
        let event = match row.deleted_at {
            Some(_) => None,
            None => Some(store::decode(cipher, user_id, row)?),
        };
        changes.push(Change {
            event_id: row.id,
            event,
        });
    }
    let page = FeedPage {
        changes,
        cursor: encode_cursor(last),
        has_more,
    };
    Ok((page, last))
}

/// The live feed of `eventChanges`: first the page of changes after `since` (possibly empty: it carries
/// the cursor to start from), then a page each time more changes committed, in order, pages of at most
/// [`DEFAULT_FEED_SIZE`] following each other at once when more wait. The pages are those of
/// [`changes`] from the same cursor, so a client that resumes with its last cursor misses nothing and
/// sees nothing twice.
///
/// Nothing is buffered for a slow consumer: the next page is read when the consumer takes it, so one
/// that falls behind by many changes gets them in full pages, not a growing queue. A failed read ends
/// the stream with the error (resume with the last cursor).
pub fn live(
    state: AppState,
    user_id: Uuid,
    since: Option<&str>,
) -> AppResult<impl Stream<Item = AppResult<FeedPage>> + Send + 'static + use<>> {
    let since = since.map(decode_cursor).transpose()?.unwrap_or(0);
    let wake_ups = state
        .cache_changes
        .wake_ups(user_id, CacheChange::Events, cache_changes::LOOK_AGAIN);
    let live = LiveFeed {
        state,
        user_id,
        wake_ups: Box::pin(wake_ups),
        cursor: since,
        first: true,
        more: false,
        ended: false,
    };
    Ok(futures::stream::unfold(live, LiveFeed::next_page))
}

struct LiveFeed {
    state: AppState,
    user_id: Uuid,
    wake_ups: Pin<Box<dyn Stream<Item = ()> + Send>>,
    /// The change sequence value the next page starts after.
    cursor: i64,
    /// Nothing was sent yet: the first page goes out even when empty.
    first: bool,
    /// The last page was full: read on without waiting.
    more: bool,
    ended: bool,
}

impl LiveFeed {
    async fn next_page(mut self) -> Option<(AppResult<FeedPage>, Self)> {
        if self.ended {
            return None;
        }
        loop {
            if !self.more {
                self.wake_ups.next().await?;
            }
            let read = changes_after(
                &self.state.db,
                &self.state.cipher,
                self.user_id,
                self.cursor,
                DEFAULT_FEED_SIZE,
            )
            .await;
            let (page, last) = match read {
                Ok(read) => read,
                Err(e) => {
                    self.ended = true;
                    return Some((Err(e), self));
                }
            };
            self.more = page.has_more;
            self.cursor = last;
            if page.changes.is_empty() && !self.first {
                continue;
            }
            self.first = false;
            return Some((Ok(page), self));
        }
    }
}

fn encode_cursor(change_seq: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("c1|{change_seq}"))
}

fn decode_cursor(raw: &str) -> AppResult<i64> {
    let invalid = || AppError::bad_input("since", "not a cursor of eventChanges");
    let bytes = URL_SAFE_NO_PAD.decode(raw.trim()).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    text.strip_prefix("c1|")
        .and_then(|n| n.parse::<i64>().ok())
        .filter(|n| *n >= 0)
        .ok_or_else(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        for seq in [0, 1, 987_654_321_012] {
            assert_eq!(decode_cursor(&encode_cursor(seq)).unwrap(), seq);
        }
        for garbage in [
            "",
            "12",
            &URL_SAFE_NO_PAD.encode("c1|-4"),
            &URL_SAFE_NO_PAD.encode("w1|3"),
        ] {
            assert!(decode_cursor(garbage).is_err(), "{garbage}");
        }
    }
}
