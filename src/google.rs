//! Everything that speaks to Google: OAuth 2.0 sign-in and token refresh, access tokens per account, and the
//! Calendar API v3 client (typed models, listing by sync tokens, writes, push channels, batches, retries).
//!
//! - [`account`]: [`GoogleAccount`], one account ready to call: what domain code uses (token and its
//!   refresh on 401, the request counter, the client's retries).
//! - [`oauth`]: [`OAuthClient`] (authorize URL with PKCE, code exchange, refresh, revoke, userinfo).
//! - [`tokens`]: [`AccessTokens`] (decrypt, refresh before expiry, single flight per account, NEEDS_REAUTH).
//! - [`calendar`]: [`CalendarClient`] and [`GoogleCall`] (account, token, [`CallCounter`]).
//! - [`batch`]: the batch wire format ([`BatchRequest`], [`BatchResponse`], multipart/mixed on `multer`
//!   and `httparse`) and [`EventChange`] (replace or patch).
//! - [`models`]: serde models of Google's resources.
//! - [`pacing`]: [`Pacer`], Google's quotas spent before each request (per account here, per project in
//!   the database through [`project_log`]), interactive calls first.
//! - [`retry`]: the pure retry policy (which failures, how long to wait).
//! - [`error`]: [`GoogleError`] and its mapping into [`crate::error::AppError`].

pub mod account;
pub mod batch;
pub mod calendar;
pub mod error;
pub mod models;
pub mod oauth;
pub mod pacing;
pub mod project_log;
pub mod retry;
pub mod tokens;
mod transport;

pub use account::GoogleAccount;
pub use batch::{BatchRequest, BatchResponse, EventChange};
pub use calendar::{
    CalendarClient, CalendarClientOptions, CalendarListing, CallCounter, DeleteOutcome, EventsListing,
    GoogleCall, ListEvents, MAX_BATCH_SIZE, WatchRequest,
};
pub use error::GoogleError;
pub use models::{
    CalendarListEntry, CalendarListPage, Channel, Event, EventDateTime, EventsPage, ExtendedProperties,
    GoogleErrorBody, Reminders, UserInfo,
};
pub use oauth::{AuthorizationRequest, CALENDAR_SCOPE, OAuthClient, SCOPES, TokenSet};
pub use pacing::{Pacer, Priority};
pub use project_log::DatabaseProjectLog;
pub use retry::RetryPolicy;
pub use tokens::{AccessTokens, EncryptedTokens, encrypt_tokens};

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::crypto::SecretString;

    fn assert_send<T: Send>(_: &T) {}

    /// Handlers and jobs run these futures on a multi-threaded runtime: they must be `Send`.
    #[allow(dead_code)]
    fn futures_are_send(
        oauth: &OAuthClient,
        tokens: &AccessTokens,
        client: &CalendarClient,
        call: &GoogleCall,
        account: &GoogleAccount<'_>,
        token: &SecretString,
        set: &TokenSet,
    ) {
        assert_send(&oauth.exchange_code("c", token, "http://x"));
        assert_send(&oauth.refresh(token));
        assert_send(&oauth.revoke(token));
        assert_send(&oauth.userinfo(token));
        assert_send(&tokens.access_token(Uuid::nil()));
        assert_send(&tokens.force_refresh(Uuid::nil(), token));
        assert_send(&tokens.store_tokens(Uuid::nil(), Uuid::nil(), set));
        assert_send(&tokens.with_token(Uuid::nil(), |_t| async { Ok(()) }));
        assert_send(&client.calendar_list(call, None));
        assert_send(&client.list_events(call, "c", &ListEvents::full()));
        assert_send(&client.get_event(call, "c", "e"));
        assert_send(&client.insert_event(call, "c", &Event::default()));
        assert_send(&client.delete_event(call, "c", "e"));
        assert_send(&client.batch(call, &[]));
        assert_send(&account.list_calendars(None));
        assert_send(&account.list_events("c", &ListEvents::full()));
        assert_send(&account.change_event("c", "e", EventChange::Patch(&serde_json::Value::Null), None));
        assert_send(&account.delete_event("c", "e"));
        assert_send(&account.watch(
            "c",
            &WatchRequest {
                channel_id: String::new(),
                address: String::new(),
                token: None,
                ttl: None,
            },
        ));
        assert_send(&account.stop_channel("c", "r"));
        assert_send(&account.batch(&[]));
    }
}
