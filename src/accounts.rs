//! Users and their Google accounts.

mod graphql;

pub use graphql::{AccountsQuery, User};
