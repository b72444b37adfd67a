pub mod configs;
pub mod executor;
mod graphql;
pub mod history;
pub mod mirror;
pub mod planner;
pub mod runner;
pub mod schedule;

pub use graphql::progress::{SyncRunMutation, SyncSubscription};
pub use graphql::{
    LatestRunLoader, SyncConfig, SyncConfigLoader, SyncMutation, SyncQuery, SyncRun, SyncRunConnection,
    SyncRunEdge,
};
