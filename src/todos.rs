//! Todo lists and todos: ordered, encrypted at rest, scoped to the signed-in user.
//!
//! [`UserTodos`] is the domain: every function of it reads and writes only that user's rows, and another
//! user's ids behave like missing ones. Positions are kept 0..n-1 (lists per user, todos per list); every
//! change to a numbering runs in one write transaction holding a lock on the parent (the user's row for
//! lists, the list's row for todos) so concurrent changes apply one after the other.

mod graphql;
mod items;
mod lists;
mod loader;
mod query;
mod store;
mod validate;

pub use graphql::{Priority, Todo, TodoConnection, TodoList, TodosMutation, TodosQuery};
pub use items::{NewTodo, Todo as TodoRecord, TodoChanges};
pub use lists::{ListChanges, TodoList as TodoListRecord};
pub use query::{TodoCursor, TodoFilter, TodoPage};
pub use store::UserTodos;
