//! The schema, assembled from the domains' roots, with the limits every request runs under.

use async_graphql::{MergedObject, MergedSubscription, SDLExportOptions, Schema};

use crate::accounts::{AccountsMutation, AccountsQuery};
use crate::calendars::{CalendarsMutation, CalendarsQuery, CalendarsSubscription};
use crate::events::{EventsMutation, EventsQuery, EventsSubscription};
use crate::sync::{SyncMutation, SyncQuery, SyncRunMutation, SyncSubscription};
use crate::todos::{TodosMutation, TodosQuery};
use crate::{session::Viewer, state::AppState};

/// Deepest selection set accepted; the SPA's deepest real query is far below it.
pub const MAX_DEPTH: usize = 12;
/// Complexity budget per operation. List fields multiply their children by the most items they can return
/// (a full page of 500 events with twenty fields is about 13,000); `events` adds its expansion.
pub const MAX_COMPLEXITY: usize = 30_000;

#[derive(MergedObject, Default)]
#[graphql(name = "Query")]
pub struct QueryRoot(AccountsQuery, CalendarsQuery, EventsQuery, TodosQuery, SyncQuery);

#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(
    AccountsMutation,
    CalendarsMutation,
    EventsMutation,
    TodosMutation,
    SyncMutation,
    SyncRunMutation,
);

#[derive(MergedSubscription, Default)]
#[graphql(name = "Subscription")]
pub struct SubscriptionRoot(CalendarsSubscription, EventsSubscription, SyncSubscription);

pub type ChronosSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

pub fn build_schema() -> ChronosSchema {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot::default(),
    )
    .limit_depth(MAX_DEPTH)
    .limit_complexity(MAX_COMPLEXITY)
    .limit_recursive_depth(32)
    .limit_directives(16)
    .disable_suggestions()
    // async-graphql fills result maps in completion order; the spec wants the query's order.
    .extension(crate::graphql::field_order::FieldOrder)
    .extension(crate::graphql::budgets::RequestBudgets)
    .finish()
}

/// What every operation runs with: the application, the viewer, and data loaders scoped to that viewer,
/// made afresh per request (or websocket connection) so nothing cached is ever shared across users.
pub fn request_data(state: &AppState, viewer: Viewer) -> async_graphql::Data {
    let mut data = async_graphql::Data::default();
    if let Some(user_id) = viewer.user_id {
        let (by_id, by_account) = crate::calendars::request_loaders(state, user_id);
        data.insert(by_id);
        data.insert(by_account);
        data.insert(crate::sync::SyncConfigLoader::new(state.db.clone(), user_id));
        data.insert(crate::sync::LatestRunLoader::new(state.db.clone()));
    }
    data.insert(state.clone());
    data.insert(viewer);
    data
}

/// The SDL checked in as `schema.graphql`; sorted so the diff of a change shows only the change.
pub fn sdl() -> String {
    build_schema().sdl_with_options(
        SDLExportOptions::new()
            .sorted_fields()
            .sorted_arguments()
            .sorted_enum_items(),
    )
}
