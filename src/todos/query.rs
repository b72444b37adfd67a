//! Reading todos: filtered pages in list order (keyset pagination), and the todos of several lists at
//! once for the DataLoader.

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, FromQueryResult, QueryFilter, QueryOrder, QuerySelect,
    RelationTrait, sea_query::JoinType,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{items::Todo, store::UserTodos};
use crate::{
    entities::{todo_lists, todos},
    error::AppResult,
};

/// Which todos a page holds; every filter is optional.
#[derive(Debug, Clone, Default)]
pub struct TodoFilter {
    pub list_id: Option<Uuid>,
    pub completed: Option<bool>,
    /// Todos due before this instant: `due_at` earlier, or `due_date` earlier than its (UTC) day.
    pub due_before: Option<DateTime<Utc>>,
}

/// Where a page ends: the sort key of its last todo. Serialised into the opaque cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TodoCursor {
    #[serde(rename = "lp")]
    list_position: i32,
    #[serde(rename = "l")]
    list_id: Uuid,
    #[serde(rename = "p")]
    position: i32,
    #[serde(rename = "t")]
    todo_id: Uuid,
}

/// One page of todos, each with the cursor that continues after it.
#[derive(Debug, Clone)]
pub struct TodoPage {
    pub todos: Vec<(TodoCursor, Todo)>,
    pub has_next_page: bool,
}

#[derive(FromQueryResult)]
struct TodoWithListPosition {
    #[sea_orm(nested)]
    todo: todos::Model,
    list_position: i32,
}

impl UserTodos {
    /// Up to `first` todos matching `filter` after `after`, ordered by list (the lists' order), then by
    /// position in the list. Asking for another user's list is NOT_FOUND.
    pub async fn page(
        &self,
        filter: &TodoFilter,
        first: u64,
        after: Option<TodoCursor>,
    ) -> AppResult<TodoPage> {
        if let Some(list_id) = filter.list_id {
            self.require_list(&self.db, list_id).await?;
        }
        let mut query = todos::Entity::find()
            .join(JoinType::InnerJoin, todos::Relation::TodoLists.def())
            .column_as(todo_lists::Column::Position, "list_position")
            .filter(todos::Column::UserId.eq(self.user_id))
            .filter(todo_lists::Column::UserId.eq(self.user_id));
        if let Some(list_id) = filter.list_id {
            query = query.filter(todos::Column::ListId.eq(list_id));
        }
        if let Some(completed) = filter.completed {
            query = query.filter(todos::Column::Completed.eq(completed));
        }
        if let Some(due_before) = filter.due_before {
            query = query.filter(
                Condition::any()
                    .add(todos::Column::DueAt.lt(due_before))
                    .add(todos::Column::DueDate.lt(due_before.date_naive())),
            );
        }
        if let Some(after) = after {
            query = query.filter(after_cursor(&after));
        }
        let mut rows = query
            .order_by_asc(todo_lists::Column::Position)
            .order_by_asc(todo_lists::Column::Id)
            .order_by_asc(todos::Column::Position)
            .order_by_asc(todos::Column::Id)
            .limit(first + 1)
            .into_model::<TodoWithListPosition>()
            .all(&self.db)
            .await?;
        let has_next_page = rows.len() as u64 > first;
        rows.truncate(usize::try_from(first).unwrap_or(usize::MAX));

        let todos = rows
            .into_iter()
            .map(|row| {
                let cursor = TodoCursor {
                    list_position: row.list_position,
                    list_id: row.todo.list_id,
                    position: row.todo.position,
                    todo_id: row.todo.id,
                };
                Ok((cursor, self.decrypt_todo(row.todo)?))
            })
            .collect::<AppResult<_>>()?;
        Ok(TodoPage { todos, has_next_page })
    }

    /// The todos of these lists of the user, each list's in order, in one query.
    pub async fn todos_of_lists(&self, list_ids: &[Uuid], completed: Option<bool>) -> AppResult<Vec<Todo>> {
        let mut query = todos::Entity::find()
            .filter(todos::Column::UserId.eq(self.user_id))
            .filter(todos::Column::ListId.is_in(list_ids.iter().copied()));
        if let Some(completed) = completed {
            query = query.filter(todos::Column::Completed.eq(completed));
        }
        query
            .order_by_asc(todos::Column::ListId)
            .order_by_asc(todos::Column::Position)
            .order_by_asc(todos::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| self.decrypt_todo(row))
            .collect()
    }
}

/// Rows strictly after the cursor in the order (list position, list id, position, todo id).
fn after_cursor(cursor: &TodoCursor) -> Condition {
    let same_position_later_id = Condition::all()
        .add(todos::Column::Position.eq(cursor.position))
        .add(todos::Column::Id.gt(cursor.todo_id));
    let later_in_same_list = Condition::any()
        .add(todos::Column::Position.gt(cursor.position))
        .add(same_position_later_id);
    let same_list_position = Condition::any()
        .add(todo_lists::Column::Id.gt(cursor.list_id))
        .add(
            Condition::all()
                .add(todo_lists::Column::Id.eq(cursor.list_id))
                .add(later_in_same_list),
        );
    Condition::any()
        .add(todo_lists::Column::Position.gt(cursor.list_position))
        .add(
            Condition::all()
                .add(todo_lists::Column::Position.eq(cursor.list_position))
                .add(same_list_position),
        )
}
