//! GraphQL plumbing every domain shares: scalars, the request context, ids and Relay pages. The schema
//! itself is assembled in `schema.rs`, above the domains.

pub mod field_order;
pub mod introspection;
pub mod scalars;

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
};

/// What resolvers read from the request context. Missing data is a server fault (`INTERNAL`), never a
/// panic.
pub trait ContextExt {
    fn state(&self) -> AppResult<&AppState>;
    fn viewer(&self) -> AppResult<&Viewer>;
    /// The signed-in user's id, or `UNAUTHENTICATED`.
    fn user_id(&self) -> AppResult<Uuid>;
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
}

/// Parses an id argument; a malformed id is reported like a missing one (`NOT_FOUND` naming `what`).
pub fn parse_id(id: &ID, what: &'static str) -> AppResult<Uuid> {
    Uuid::parse_str(id.as_str()).map_err(|_| AppError::NotFound(what))
}

pub fn id_of(id: Uuid) -> ID {
    ID(id.to_string())
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

/// An edge of a Relay connection: a node and the cursor to continue after it.
pub trait RelayEdge {
    type Node;
    fn new(cursor: String, node: Self::Node) -> Self;
    fn cursor(&self) -> &String;
}

/// The edges of a page and its page info, from its nodes and their cursors in order.
pub fn relay_page<E: RelayEdge>(
    nodes: impl IntoIterator<Item = (String, E::Node)>,
    has_previous_page: bool,
    has_next_page: bool,
) -> (Vec<E>, PageInfo) {
    let edges: Vec<E> = nodes
        .into_iter()
        .map(|(cursor, node)| E::new(cursor, node))
        .collect();
    let page_info = PageInfo {
        has_previous_page,
        has_next_page,
        start_cursor: edges.first().map(|edge| edge.cursor().clone()),
        end_cursor: edges.last().map(|edge| edge.cursor().clone()),
    };
    (edges, page_info)
}

/// Who is calling, as far as HTTP can tell; resolvers use it for rate limits and session listings.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub ip: std::net::IpAddr,
    pub user_agent: Option<String>,
}
