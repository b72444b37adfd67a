pub mod configs;
pub mod executor;
mod graphql;
pub mod mirror;
pub mod planner;
pub mod run;
pub mod run_graphql;
pub mod runs;
pub mod schedule;

pub use graphql::{
    SyncConfig, SyncConfigLoader, SyncMutation, SyncQuery, SyncRun, SyncRunConnection, SyncRunEdge,
};
