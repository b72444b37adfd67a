//! One Google account, ready to call: the way domain code speaks to Google.
//!
//! [`GoogleAccount`] joins the Calendar client and the account's tokens: each call gets a usable access
//! token (refreshed shortly before it expires), and when Google refuses it with 401 the token is refreshed
//! once and the call made again. Every HTTP request is counted on the handle's [`CallCounter`] (fresh per
//! handle, or shared with [`GoogleAccount::counting`]); retries follow the client's [`RetryPolicy`].
//!
//! [`RetryPolicy`]: super::RetryPolicy

use std::future::Future;

use uuid::Uuid;

use super::{
    batch::{BatchRequest, BatchResponse, EventChange},
    calendar::{
        CalendarClient, CalendarListing, CallCounter, DeleteOutcome, EventsListing, GoogleCall, ListEvents,
        WatchRequest,
    },
    error::GoogleError,
    models::{Channel, Event},
    pacing::Priority,
    tokens::AccessTokens,
};

/// A per-account handle; cheap to create (one per operation is the norm).
#[derive(Debug, Clone)]
pub struct GoogleAccount<'g> {
    calendar: &'g CalendarClient,
    tokens: &'g AccessTokens,
    account_id: Uuid,
    counter: CallCounter,
    priority: Priority,
}

impl<'g> GoogleAccount<'g> {
    pub fn new(calendar: &'g CalendarClient, tokens: &'g AccessTokens, account_id: Uuid) -> Self {
        Self {
            calendar,
            tokens,
            account_id,
            counter: CallCounter::new(),
            priority: Priority::Background,
        }
    }

    /// A person is waiting for these calls: they go ahead of background work within the account's quota.
    pub fn interactive(mut self) -> Self {
        self.priority = Priority::Interactive;
        self
    }

    /// Counts this handle's requests on `counter` too (for example a sync run's `googleCalls`).
    pub fn counting(mut self, counter: &CallCounter) -> Self {
        self.counter = counter.clone();
        self
    }

    pub fn id(&self) -> Uuid {
        self.account_id
    }

    /// HTTP requests sent through this handle's counter so far (retries included; a batch counts once).
    pub fn calls(&self) -> u64 {
        self.counter.get()
    }

    /// Every calendar of the account, or the changes since `sync_token` (see
    /// [`CalendarClient::calendar_list`]).
    pub async fn list_calendars(&self, sync_token: Option<&str>) -> Result<CalendarListing, GoogleError> {
        let calendar = self.calendar;
        self.with_call(|call| async move { calendar.calendar_list(&call, sync_token).await })
            .await
    }

    /// Every page of a calendar's events (see [`CalendarClient::list_events`]).
    pub async fn list_events(
        &self,
        calendar_id: &str,
        params: &ListEvents,
    ) -> Result<EventsListing, GoogleError> {
        let calendar = self.calendar;
        self.with_call(|call| async move { calendar.list_events(&call, calendar_id, params).await })
            .await
    }

    pub async fn get_event(&self, calendar_id: &str, event_id: &str) -> Result<Event, GoogleError> {
        let calendar = self.calendar;
        self.with_call(|call| async move { calendar.get_event(&call, calendar_id, event_id).await })
            .await
    }

    /// Inserts an event (see [`CalendarClient::insert_event`] about client-chosen ids).
    pub async fn insert_event(&self, calendar_id: &str, event: &Event) -> Result<Event, GoogleError> {
        let calendar = self.calendar;
        self.with_call(|call| async move { calendar.insert_event(&call, calendar_id, event).await })
            .await
    }

    /// Replaces or patches an event; with `if_match`, a stale etag gives
    /// [`GoogleError::PreconditionFailed`].
    pub async fn change_event(
        &self,
        calendar_id: &str,
        event_id: &str,
        change: EventChange<'_>,
        if_match: Option<&str>,
    ) -> Result<Event, GoogleError> {
        let calendar = self.calendar;
        self.with_call(|call| async move {
            calendar
                .change_event(&call, calendar_id, event_id, change, if_match)
                .await
        })
        .await
    }

    /// Deletes an event; already deleted is [`DeleteOutcome::AlreadyDeleted`].
    pub async fn delete_event(
        &self,
        calendar_id: &str,
        event_id: &str,
    ) -> Result<DeleteOutcome, GoogleError> {
        let calendar = self.calendar;
        self.with_call(|call| async move { calendar.delete_event(&call, calendar_id, event_id).await })
            .await
    }

    /// Opens a push channel on a calendar's events.
    pub async fn watch(&self, calendar_id: &str, request: &WatchRequest) -> Result<Channel, GoogleError> {
        let calendar = self.calendar;
        self.with_call(|call| async move { calendar.watch_events(&call, calendar_id, request).await })
            .await
    }

    /// Stops a push channel.
    pub async fn stop_channel(&self, channel_id: &str, resource_id: &str) -> Result<(), GoogleError> {
        let calendar = self.calendar;
        self.with_call(|call| async move { calendar.stop_channel(&call, channel_id, resource_id).await })
            .await
    }

    /// Sends `requests` in batches and returns one result per request, in order (see
    /// [`CalendarClient::batch`]). Parts refused with 401 go again once, with a refreshed token. `Err` only
    /// when no usable token can be had (the account must be connected again, or the database failed).
    pub async fn batch(
        &self,
        requests: &[BatchRequest],
    ) -> Result<Vec<Result<BatchResponse, GoogleError>>, GoogleError> {
        let token = self.tokens.access_token(self.account_id).await?;
        let call = GoogleCall::new(self.account_id, &token, &self.counter).with_priority(self.priority);
        let mut results = self.calendar.batch(&call, requests).await;
        let refused: Vec<usize> = results
            .iter()
            .enumerate()
            .filter(|(_, result)| matches!(result, Err(GoogleError::Unauthorized)))
            .map(|(i, _)| i)
            .collect();
        if refused.is_empty() {
            return Ok(results);
        }
        tracing::info!(
            account_id = %self.account_id,
            parts = refused.len(),
            "batch parts refused the access token; refreshing it once"
        );
        let token = self.tokens.force_refresh(self.account_id, &token).await?;
        let call = GoogleCall::new(self.account_id, &token, &self.counter).with_priority(self.priority);
        let again: Vec<BatchRequest> = refused.iter().map(|&i| requests[i].clone()).collect();
        for (i, result) in refused.into_iter().zip(self.calendar.batch(&call, &again).await) {
            results[i] = result;
        }
        Ok(results)
    }

    /// Runs `f` with a call carrying a usable token; on 401 refreshes the token once and runs it again.
    async fn with_call<T, F, Fut>(&self, f: F) -> Result<T, GoogleError>
    where
        F: Fn(GoogleCall) -> Fut,
        Fut: Future<Output = Result<T, GoogleError>>,
    {
        let counter = &self.counter;
        let account_id = self.account_id;
        let priority = self.priority;
        self.tokens
            .with_token(account_id, |token| {
                f(GoogleCall::new(account_id, &token, counter).with_priority(priority))
            })
            .await
    }
}
