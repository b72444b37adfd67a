//! GraphQL plumbing every domain shares: scalars, the request context, ids and Relay pages. The schema
//! itself is assembled in `schema.rs`, above the domains.

pub mod field_order;
pub mod scalars;

/// Relay page info for a page of edges whose cursors are `first` and `last`.
pub fn page_info(
    first: Option<&String>,
    last: Option<&String>,
    has_previous_page: bool,
    has_next_page: bool,
) -> async_graphql::connection::PageInfo {
    async_graphql::connection::PageInfo {
        has_previous_page,
        has_next_page,
        start_cursor: first.cloned(),
        end_cursor: last.cloned(),
    }
}

/// Who is calling, as far as HTTP can tell; resolvers use it for rate limits and session listings.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub ip: std::net::IpAddr,
    pub user_agent: Option<String>,
}
