//! The one integration-test binary: every test drives a real server over HTTP.

mod accounts;
mod foundation;
mod graphql_http;
mod helpers;
