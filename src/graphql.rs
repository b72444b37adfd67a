//! The schema, assembled from the domains' roots, with the limits every request runs under.

use async_graphql::{EmptySubscription, MergedObject, SDLExportOptions, Schema};

use crate::accounts::{AccountsMutation, AccountsQuery};
use crate::calendars::{CalendarsMutation, CalendarsQuery};
use crate::events::{EventsMutation, EventsQuery};
use crate::todos::{TodosMutation, TodosQuery};

/// Deepest selection set accepted; the SPA's deepest real query is far below it.
pub const MAX_DEPTH: usize = 12;
/// Complexity budget per operation; list fields multiply their children by the page size.
pub const MAX_COMPLEXITY: usize = 2_000;

#[derive(MergedObject, Default)]
#[graphql(name = "Query")]
pub struct QueryRoot(AccountsQuery, CalendarsQuery, EventsQuery, TodosQuery);

#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(AccountsMutation, CalendarsMutation, EventsMutation, TodosMutation);

pub type ChronosSchema = Schema<QueryRoot, MutationRoot, EmptySubscription>;

pub fn build_schema() -> ChronosSchema {
    Schema::build(QueryRoot::default(), MutationRoot::default(), EmptySubscription)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
        .limit_recursive_depth(32)
        .limit_directives(16)
        .disable_suggestions()
        .finish()
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
