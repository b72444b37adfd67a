//! Events: the encrypted cache of Google events, window queries with recurrence expansion, writes
//! through Google, and the delta feed.
//!
//! - [`store`]: the codec between Google's events and the `events` table (the calendars domain writes the
//!   cache through it);
//! - [`recurrence`]: pure expansion of series;
//! - [`window`]: the `events` query; [`lookup`]: event ids and `event(id)`; [`feed`]: `eventChanges`, the
//!   query and the subscription;
//! - [`free_busy`]: `freeBusy` and `freeSlots`, the busy time of the user's calendars and the gaps in it;
//! - [`search`]: `searchEvents` over a blind index of the texts;
//! - [`write`]: create, update and delete through Google; [`validate`]: the input rules.

pub mod feed;
pub mod free_busy;
mod graphql;
pub mod lookup;
pub mod recurrence;
pub mod search;
pub mod store;
pub mod validate;
pub mod window;
pub mod write;

pub use graphql::{Event, EventsMutation, EventsQuery, EventsSubscription};
