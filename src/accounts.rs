//! Users, their Google accounts, signing in and out, and sessions.

mod graphql;
pub mod service;
pub mod sessions;
pub mod signin;

pub use graphql::{AccountsMutation, AccountsQuery, GoogleAccount, User};
