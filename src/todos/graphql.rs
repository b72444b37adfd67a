//! GraphQL types and resolvers of the todos domain. Resolvers parse, call [`UserTodos`], and map.

use crate::graphql::{
    ContextExt as _, change, decode_after, encode_cursor, id_of, list_complexity, list_cost, parse_id,
    relay_connection,
    scalars::{Date, DateTime as GqlDateTime},
    unpaged_complexity,
};
use std::sync::Arc;

use async_graphql::{
    ComplexObject, Context, Enum, ID, InputObject, MaybeUndefined, Object, SimpleObject,
    dataloader::DataLoader,
};
use uuid::Uuid;

use super::{
    items::{NewTodo, Todo as TodoRecord, TodoChanges},
    lists::{ListChanges, TodoList as ListRecord},
    loader::{ListTodosKey, TodosByList},
    query::{TodoCursor, TodoFilter},
    store::UserTodos,
    validate,
};
use crate::{
    entities::enums::Priority as DbPriority,
    error::{AppError, AppResult},
};

/// How important a todo is.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum Priority {
    /// No priority set (the default).
    None,
    /// Low priority.
    Low,
    /// Medium priority.
    Medium,
    /// High priority.
    High,
}

impl From<DbPriority> for Priority {
    fn from(priority: DbPriority) -> Self {
        match priority {
            DbPriority::None => Self::None,
            DbPriority::Low => Self::Low,
            DbPriority::Medium => Self::Medium,
            DbPriority::High => Self::High,
        }
    }
}

impl From<Priority> for DbPriority {
    fn from(priority: Priority) -> Self {
        match priority {
            Priority::None => Self::None,
            Priority::Low => Self::Low,
            Priority::Medium => Self::Medium,
            Priority::High => Self::High,
        }
    }
}

/// Something to do, in one of the user's todo lists.
#[derive(SimpleObject, Clone, Debug)]
pub struct Todo {
    /// Opaque id of the todo.
    pub id: ID,
    /// The list the todo belongs to.
    pub list_id: ID,
    /// What to do (1 to 500 characters).
    pub title: String,
    /// Free-form notes (up to 10,000 characters).
    pub notes: Option<String>,
    /// The day the todo is due, when it is due on a day rather than at an instant.
    pub due_date: Option<Date>,
    /// The instant the todo is due, when it is due at a time rather than on a day.
    pub due_at: Option<GqlDateTime>,
    /// How important the todo is.
    pub priority: Priority,
    /// Whether the todo is done.
    pub completed: bool,
    /// When the todo was marked done; null while it is not.
    pub completed_at: Option<GqlDateTime>,
    /// Index of the todo in its list, from 0.
    pub position: i32,
    /// When the todo was created.
    pub created_at: GqlDateTime,
    /// When the todo last changed.
    pub updated_at: GqlDateTime,
}

impl From<TodoRecord> for Todo {
    fn from(todo: TodoRecord) -> Self {
        Self {
            id: id_of(todo.id),
            list_id: id_of(todo.list_id),
            title: todo.title,
            notes: todo.notes,
            due_date: todo.due_date.map(Date),
            due_at: todo.due_at.map(Into::into),
            priority: todo.priority.into(),
            completed: todo.completed,
            completed_at: todo.completed_at.map(Into::into),
            position: todo.position,
            created_at: todo.created_at.into(),
            updated_at: todo.updated_at.into(),
        }
    }
}

/// A named, ordered list of todos.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct TodoList {
    /// Opaque id of the list.
    pub id: ID,
    /// The list's name (1 to 200 characters).
    pub name: String,
    /// Display colour, `#rrggbb`.
    pub color: Option<String>,
    /// Index of the list among the user's lists, from 0.
    pub position: i32,
    #[graphql(skip)]
    list_id: Uuid,
    /// Shared by every list of one response, so their todos load in one query.
    #[graphql(skip)]
    loader: Arc<DataLoader<TodosByList>>,
}

impl TodoList {
    fn new(list: ListRecord, loader: Arc<DataLoader<TodosByList>>) -> Self {
        Self {
            id: id_of(list.id),
            name: list.name,
            color: list.color,
            position: list.position,
            list_id: list.id,
            loader,
        }
    }
}

#[ComplexObject]
impl TodoList {
    /// The list's todos in order; only the completed (true) or open (false) ones when `completed` is given.
    #[graphql(complexity = "unpaged_complexity(list_cost::TODOS_OF_A_LIST, child_complexity)")]
    async fn todos(
        &self,
        #[graphql(desc = "Only completed (true) or only open (false) todos.")] completed: Option<bool>,
    ) -> async_graphql::Result<Vec<Todo>> {
        let todos = self
            .loader
            .load_one(ListTodosKey {
                list_id: self.list_id,
                completed,
            })
            .await?
            .unwrap_or_default();
        Ok(todos.into_iter().map(Todo::from).collect())
    }
}

relay_connection! {
    /// A todo in a page of todos.
    edge TodoEdge {
        /// Opaque; pass it as `after` to continue after this todo.
        cursor,
        /// The todo.
        node: Todo,
    }
    /// A page of todos (Relay connection).
    connection TodoConnection {
        /// The todos of this page, in order.
        edges,
        /// Whether more todos follow, and the cursors to get them.
        page_info,
    }
}

/// A new todo list.
#[derive(InputObject)]
pub struct CreateTodoListInput {
    /// The list's name: 1 to 200 characters, surrounding whitespace removed.
    pub name: String,
    /// Display colour, `#rrggbb`.
    pub color: Option<String>,
}

/// Changes to a todo list; omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdateTodoListInput {
    /// New name: 1 to 200 characters.
    pub name: Option<String>,
    /// New colour `#rrggbb`; null removes the colour.
    pub color: MaybeUndefined<String>,
    /// New index among the user's lists (0 = first; past the end = last); the others are renumbered.
    pub position: Option<i32>,
}

/// A new todo, added at the end of its list.
#[derive(InputObject)]
pub struct CreateTodoInput {
    /// The list to add the todo to.
    pub list_id: ID,
    /// What to do: 1 to 500 characters, surrounding whitespace removed.
    pub title: String,
    /// Notes, up to 10,000 characters.
    pub notes: Option<String>,
    /// Due on this day (exclusive with `dueAt`).
    pub due_date: Option<Date>,
    /// Due at this instant (exclusive with `dueDate`).
    pub due_at: Option<GqlDateTime>,
    /// Priority; NONE when omitted.
    pub priority: Option<Priority>,
}

/// Changes to a todo; omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdateTodoInput {
    /// Moves the todo to the end of this list.
    pub list_id: Option<ID>,
    /// New title: 1 to 500 characters.
    pub title: Option<String>,
    /// New notes; null removes them.
    pub notes: MaybeUndefined<String>,
    /// Due on this day (clears `dueAt`); null removes the due date.
    pub due_date: MaybeUndefined<Date>,
    /// Due at this instant (clears `dueDate`); null removes it.
    pub due_at: MaybeUndefined<GqlDateTime>,
    /// New priority.
    pub priority: Option<Priority>,
    /// Marks the todo done (sets `completedAt` to now) or not done (clears it).
    pub completed: Option<bool>,
}

fn user_todos(ctx: &Context<'_>) -> async_graphql::Result<UserTodos> {
    Ok(UserTodos::for_user(ctx.state()?, ctx.user_id()?))
}

fn page_complexity(first: Option<i32>, child_complexity: usize) -> usize {
    let default = usize::try_from(validate::DEFAULT_PAGE_SIZE).unwrap_or(1);
    let max = usize::try_from(validate::MAX_PAGE_SIZE).unwrap_or(1);
    list_complexity(first, default, max, child_complexity)
}

#[derive(Default)]
pub struct TodosQuery;

#[Object]
impl TodosQuery {
    /// The signed-in user's todo lists, in order.
    #[graphql(complexity = "unpaged_complexity(list_cost::TODO_LISTS, child_complexity)")]
    async fn todo_lists(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<TodoList>> {
        let todos = user_todos(ctx)?;
        let lists = todos.lists().await?;
        let loader = TodosByList::loader(todos);
        Ok(lists
            .into_iter()
            .map(|list| TodoList::new(list, loader.clone()))
            .collect())
    }

    /// The signed-in user's todos, filtered, ordered by list (in the lists' order) then by position, a
    /// page at a time.
    #[graphql(complexity = "page_complexity(first, child_complexity)")]
    async fn todos(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only the todos of this list.")] list_id: Option<ID>,
        #[graphql(desc = "Only completed (true) or only open (false) todos.")] completed: Option<bool>,
        #[graphql(
            desc = "Only todos due before this instant (`dueAt` earlier, or `dueDate` before its day)."
        )]
        due_before: Option<GqlDateTime>,
        #[graphql(desc = "Page size: 0 to 200, default 50.")] first: Option<i32>,
        #[graphql(desc = "A cursor from a previous page: continue after it.")] after: Option<String>,
    ) -> async_graphql::Result<TodoConnection> {
        let todos = user_todos(ctx)?;
        let filter = TodoFilter {
            list_id: list_id.as_ref().map(|id| parse_id(id, "todo list")).transpose()?,
            completed,
            due_before: due_before.map(|t| t.0),
        };
        let first = validate::page_size(first)?;
        let after = decode_after::<TodoCursor>(after.as_deref())?;
        let page = todos.page(&filter, first, after).await?;
        let nodes = page
            .todos
            .into_iter()
            .map(|(cursor, todo)| (encode_cursor(cursor), Todo::from(todo)));
        Ok(TodoConnection::of(nodes, after.is_some(), page.has_next_page))
    }
}

#[derive(Default)]
pub struct TodosMutation;

#[Object]
impl TodosMutation {
    /// Creates a todo list after the user's other lists.
    async fn create_todo_list(
        &self,
        ctx: &Context<'_>,
        input: CreateTodoListInput,
    ) -> async_graphql::Result<TodoList> {
        let todos = user_todos(ctx)?;
        let list = todos.create_list(&input.name, input.color.as_deref()).await?;
        Ok(TodoList::new(list, TodosByList::loader(todos)))
    }

    /// Renames, recolours or moves a todo list.
    async fn update_todo_list(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateTodoListInput,
    ) -> async_graphql::Result<TodoList> {
        let todos = user_todos(ctx)?;
        let changes = ListChanges {
            name: input.name,
            color: change(input.color),
            position: input.position,
        };
        let list = todos.update_list(parse_id(&id, "todo list")?, changes).await?;
        Ok(TodoList::new(list, TodosByList::loader(todos)))
    }

    /// Deletes a todo list and every todo in it.
    async fn delete_todo_list(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<bool> {
        let todos = user_todos(ctx)?;
        todos.delete_list(parse_id(&id, "todo list")?).await?;
        Ok(true)
    }

    /// Creates a todo at the end of its list.
    async fn create_todo(&self, ctx: &Context<'_>, input: CreateTodoInput) -> async_graphql::Result<Todo> {
        let todos = user_todos(ctx)?;
        let new = NewTodo {
            list_id: parse_id(&input.list_id, "todo list")?,
            title: input.title,
            notes: input.notes,
            due_date: input.due_date.map(|date| date.0),
            due_at: input.due_at.map(|t| t.0),
            priority: input.priority.map(DbPriority::from),
        };
        Ok(todos.create_todo(new).await?.into())
    }

    /// Changes a todo; a new `listId` moves it to the end of that list.
    async fn update_todo(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateTodoInput,
    ) -> async_graphql::Result<Todo> {
        let todos = user_todos(ctx)?;
        let changes = TodoChanges {
            list_id: input
                .list_id
                .as_ref()
                .map(|id| parse_id(id, "todo list"))
                .transpose()?,
            title: input.title,
            notes: change(input.notes),
            due_date: change(input.due_date).map(|date| date.map(|date| date.0)),
            due_at: change(input.due_at.map_value(|t| t.0)),
            priority: input.priority.map(DbPriority::from),
            completed: input.completed,
        };
        Ok(todos.update_todo(parse_id(&id, "todo")?, changes).await?.into())
    }

    /// Deletes a todo; the todos after it in its list move up.
    async fn delete_todo(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<bool> {
        let todos = user_todos(ctx)?;
        todos.delete_todo(parse_id(&id, "todo")?).await?;
        Ok(true)
    }

    /// Puts a list's todos in a new order, atomically. `todoIds` must name every todo of the list exactly
    /// once; returns the todos in their new order.
    async fn reorder_todos(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The list to reorder.")] list_id: ID,
        #[graphql(desc = "Every todo of the list, each once, in the new order.")] todo_ids: Vec<ID>,
    ) -> async_graphql::Result<Vec<Todo>> {
        let todos = user_todos(ctx)?;
        let list_id = parse_id(&list_id, "todo list")?;
        let todo_ids = todo_ids
            .iter()
            .map(|id| {
                Uuid::parse_str(id.as_str())
                    .map_err(|_| AppError::bad_input("todoIds", format!("{} is not a todo id", id.as_str())))
            })
            .collect::<AppResult<Vec<_>>>()?;
        Ok(todos
            .reorder(list_id, &todo_ids)
            .await?
            .into_iter()
            .map(Todo::from)
            .collect())
    }
}
