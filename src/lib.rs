//! Chronos: a GraphQL API server for calendars, todos and Google Calendar sync.

pub mod accounts;
pub mod app;
pub mod backoff;
pub mod calendars;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod db;
pub mod demo;
pub mod entities;
pub mod error;
pub mod events;
pub mod google;
pub mod graphql;
pub mod http;
pub mod jobs;
pub mod key_rotation;
pub mod progress;
pub mod rate_limit;
pub mod schema;
pub mod session;
pub mod state;
pub mod sync;
pub mod telemetry;
pub mod todos;
