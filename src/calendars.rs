//! Calendars: each Google account's calendar list, the event cache of each calendar kept fresh by sync
//! tokens, and the push channels that say when to refresh it.
//!
//! - [`service`]: the domain's entry points (list, refresh the calendar list, schedule event refreshes).
//! - [`list`]: the calendar list at Google and in `calendars` (calendarList by sync token).
//! - [`cache`]: [`refresh_events`], the event cache refresh (full, incremental, merge after a 410).
//! - [`push`]: push channels (open, renew, stop) and how notifications find their calendar.
//! - [`jobs`]: the background work: push-triggered and periodic refreshes, channel maintenance.
//! - graphql: the `Calendar` type, its per-request loaders, the resolvers.
//!
//! How the cache fills after sign-in: the sign-in (or connect) callback lists the account's calendars
//! before it redirects, so the first `calendars` query has them (when that listing fails, the first
//! `calendars` query or the sweep queues it); every new calendar gets a refresh job that lists its events
//! in full and opens a push channel. `Calendar.cacheStatus` tells a client how far that is. From then on, push notifications and a periodic sweep queue incremental refreshes.

pub mod cache;
mod graphql;
pub mod jobs;
pub mod list;
pub mod push;
pub mod service;

pub use cache::{RefreshOutcome, refresh_events};
pub use graphql::{
    AccountCalendarsLoader, Calendar, CalendarLoader, CalendarsMutation, CalendarsQuery,
    CalendarsSubscription, request_loaders,
};
