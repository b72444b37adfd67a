//! The one integration-test binary: every test drives a real server over HTTP.

mod accounts;
mod calendars;
mod events;
mod foundation;
mod google;
mod graphql_http;
mod helpers;
mod jobs;
mod security;
mod todos;
