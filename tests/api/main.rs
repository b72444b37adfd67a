//! The one integration-test binary: every test drives a real server over HTTP.

mod accounts;
mod architecture;
mod browser;
mod calendars;
mod connections;
mod demo;
mod events;
mod foundation;
mod google;
mod graphql_http;
mod helpers;
mod input_hygiene;
mod jobs;
mod landing;
mod load;
mod n_plus_one;
mod quotas;
mod search;
mod security;
mod socket_sessions;
mod sync_configs;
mod sync_instances;
mod sync_runs;
mod todos;
