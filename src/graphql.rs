//! GraphQL plumbing every domain shares: scalars, the request context, ids and Relay pages. The schema
//! itself is assembled in `schema.rs`, above the domains.

pub mod admission;
pub mod budgets;
pub mod document_guard;
pub mod error_codes;
pub mod field_order;
pub mod in_flight;
pub mod introspection;
pub mod measured;
pub mod scalars;
pub mod text_inputs;

use async_graphql::{
    Context, ID, MaybeUndefined,
    connection::{CursorType, OpaqueCursor, PageInfo},
};
use serde::{Serialize, de::DeserializeOwned};
use uuid::Uuid;

use crate::{
    error::{AppError, AppResult},
    session::Viewer,
    state::AppState,
    work_budget::WorkBudget,
};

/// What resolvers read from the request context. Missing data is a server fault (`INTERNAL`), never a
/// panic.
pub trait ContextExt {
    fn state(&self) -> AppResult<&AppState>;
    fn viewer(&self) -> AppResult<&Viewer>;
    /// The signed-in user's id, or `UNAUTHENTICATED`.
    fn user_id(&self) -> AppResult<Uuid>;
    /// This operation's budget of work its document does not show.
    fn work_budget(&self) -> AppResult<&WorkBudget>;
}

impl ContextExt for Context<'_> {
    fn state(&self) -> AppResult<&AppState> {
        self.data::<AppState>()
            .map_err(|_| AppError::internal(anyhow::anyhow!("the request carries no state")))
    }

    fn viewer(&self) -> AppResult<&Viewer> {
        self.data::<Viewer>()
            .map_err(|_| AppError::internal(anyhow::anyhow!("the request carries no viewer")))
    }

    fn user_id(&self) -> AppResult<Uuid> {
        self.viewer()?.require_user()
    }

    fn work_budget(&self) -> AppResult<&WorkBudget> {
        self.data::<WorkBudget>()
            .map_err(|_| AppError::internal(anyhow::anyhow!("the request carries no work budget")))
    }
}

/// Parses an id argument; a malformed id is reported like a missing one (`NOT_FOUND` naming `what`).
pub fn parse_id(id: &ID, what: &'static str) -> AppResult<Uuid> {
    Uuid::parse_str(id.as_str()).map_err(|_| AppError::NotFound(what))
}

pub fn id_of(id: Uuid) -> ID {
    ID(id.to_string())
}

/// The cost of a list field: the most items it can return (`first`, else `default`) times one item's cost,
/// so the schema's complexity limit bounds what any document can make the server build. An out-of-range
/// `first` costs one item: the resolver refuses it with a message naming `first`, clearer than "too complex".
pub fn list_complexity(first: Option<i32>, default: usize, max: usize, child_complexity: usize) -> usize {
    let size = match first {
        None => default,
        Some(n) => usize::try_from(n)
            .ok()
            .filter(|n| (1..=max).contains(n))
            .unwrap_or(1),
    };
    size.saturating_mul(child_complexity).saturating_add(1)
}

/// What a list without pages is costed at: the most items a user has there in practice. A longer list is
/// still bounded when it runs, by the response's cap on values ([`budgets::MAX_OUTPUT_VALUES`]).
pub mod list_cost {
    pub const ACCOUNTS: usize = 10;
    pub const CALENDARS: usize = 50;
    pub const SESSIONS: usize = 20;
    pub const SYNC_CONFIGS: usize = 50;
    pub const TODO_LISTS: usize = 50;
    pub const TODOS_OF_A_LIST: usize = 100;
}

/// The cost of a list without pages: `items` (one of [`list_cost`]) times one item's cost.
pub fn unpaged_complexity(items: usize, child_complexity: usize) -> usize {
    items.saturating_mul(child_complexity).saturating_add(1)
}

/// An optional input field as a change: omitted leaves the value alone (`None`), `null` clears it
/// (`Some(None)`), a value sets it.
pub fn change<T>(value: MaybeUndefined<T>) -> Option<Option<T>> {
    value.into()
}

/// The position an `after` argument names, or `BAD_USER_INPUT` when it is not a cursor of this
/// connection.
pub fn decode_after<C: Serialize + DeserializeOwned + Send + Sync>(
    after: Option<&str>,
) -> AppResult<Option<C>> {
    after
        .map(|cursor| {
            OpaqueCursor::<C>::decode_cursor(cursor)
                .map(|cursor| cursor.0)
                .map_err(|_| AppError::bad_input("after", "not a cursor of this connection"))
        })
        .transpose()
}

/// The opaque cursor of a position, as [`decode_after`] reads it back.
pub fn encode_cursor<C: Serialize + DeserializeOwned + Send + Sync>(position: C) -> String {
    OpaqueCursor(position).encode_cursor()
}

/// Relay page info for a page whose first and last edges have these cursors.
pub fn page_info(
    first: Option<&String>,
    last: Option<&String>,
    has_previous_page: bool,
    has_next_page: bool,
) -> PageInfo {
    PageInfo {
        has_previous_page,
        has_next_page,
        start_cursor: first.cloned(),
        end_cursor: last.cloned(),
    }
}

/// Declares a Relay connection over a node type: the edge (a cursor and the node), the page (its edges
/// and page info), each described as the schema shows it, and `Connection::of`, which builds a page from
/// its nodes and their cursors in order.
macro_rules! relay_connection {
    (
        $(#[$edge_doc:meta])*
        edge $edge:ident {
            $(#[$cursor_doc:meta])* cursor,
            $(#[$node_doc:meta])* node: $node:ty $(,)?
        }
        $(#[$connection_doc:meta])*
        connection $connection:ident {
            $(#[$edges_doc:meta])* edges,
            $(#[$page_info_doc:meta])* page_info $(,)?
        }
    ) => {
        $(#[$edge_doc])*
        #[derive(async_graphql::SimpleObject)]
        pub struct $edge {
            $(#[$cursor_doc])*
            pub cursor: String,
            $(#[$node_doc])*
            pub node: $node,
        }

        $(#[$connection_doc])*
        #[derive(async_graphql::SimpleObject)]
        pub struct $connection {
            $(#[$edges_doc])*
            pub edges: Vec<$edge>,
            $(#[$page_info_doc])*
            pub page_info: async_graphql::connection::PageInfo,
        }

        impl $connection {
            /// The page of these nodes, each with its cursor, in order.
            pub fn of(
                nodes: impl IntoIterator<Item = (String, $node)>,
                has_previous_page: bool,
                has_next_page: bool,
            ) -> Self {
                let edges: Vec<$edge> = nodes
                    .into_iter()
                    .map(|(cursor, node)| $edge { cursor, node })
                    .collect();
                let page_info = $crate::graphql::page_info(
                    edges.first().map(|edge| &edge.cursor),
                    edges.last().map(|edge| &edge.cursor),
                    has_previous_page,
                    has_next_page,
                );
                Self { edges, page_info }
            }
        }
    };
}
pub(crate) use relay_connection;

/// Who is calling, as far as HTTP can tell; resolvers use it for rate limits and session listings.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub ip: std::net::IpAddr,
    pub user_agent: Option<String>,
}
