//! Todos: create, change, move between lists, delete, reorder. The todos of a list are numbered 0..n-1;
//! every change to that numbering runs in one transaction holding the list's lock.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, DatabaseTransaction, EntityTrait, IntoActiveModel, QueryFilter, QuerySelect,
    sea_query::{Expr, ExprTrait},
};
use uuid::Uuid;

use super::{
    store::{UserTodos, next_position},
    validate,
};
use crate::{
    entities::{enums::Priority, todos},
    error::{AppError, AppResult},
};

/// How often a change that raced with a concurrent move of the same todo is tried again.
const MOVE_ATTEMPTS: usize = 5;

/// A todo, decrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Todo {
    pub id: Uuid,
    pub list_id: Uuid,
    pub title: String,
    pub notes: Option<String>,
    pub due_date: Option<NaiveDate>,
    pub due_at: Option<DateTime<Utc>>,
    pub priority: Priority,
    pub completed: bool,
    pub completed_at: Option<DateTime<Utc>>,
    pub position: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A todo to create.
#[derive(Debug, Clone)]
pub struct NewTodo {
    pub list_id: Uuid,
    pub title: String,
    pub notes: Option<String>,
    pub due_date: Option<NaiveDate>,
    pub due_at: Option<DateTime<Utc>>,
    pub priority: Option<Priority>,
}

/// Changes to a todo; `None` leaves a field as it is, `Some(None)` clears a nullable one.
#[derive(Debug, Clone, Default)]
pub struct TodoChanges {
    /// Moves the todo to the end of that list.
    pub list_id: Option<Uuid>,
    pub title: Option<String>,
    pub notes: Option<Option<String>>,
    /// Setting a due date clears `due_at`.
    pub due_date: Option<Option<NaiveDate>>,
    /// Setting a due instant clears `due_date`.
    pub due_at: Option<Option<DateTime<Utc>>>,
    pub priority: Option<Priority>,
    pub completed: Option<bool>,
}

impl UserTodos {
    /// Adds a todo at the end of its list.
    pub async fn create_todo(&self, new: NewTodo) -> AppResult<Todo> {
        let title = validate::title(&new.title)?;
        let notes = new.notes.as_deref().map(validate::notes).transpose()?;
        validate::single_due(new.due_date.is_some(), new.due_at.is_some())?;
        let id = Uuid::now_v7();
        let encrypted_title = self.encrypt(self.aad("todos", "title", id), &title)?;
        let encrypted_notes = notes
            .as_deref()
            .map(|notes| self.encrypt(self.aad("todos", "notes", id), notes))
            .transpose()?;
        let now = Utc::now();

        let txn = self.begin_write().await?;
        self.lock_list(&txn, new.list_id).await?;
        let position = next_position(max_position(&txn, new.list_id).await?);
        let row = todos::ActiveModel {
            id: Set(id),
            list_id: Set(new.list_id),
            user_id: Set(self.user_id),
            title: Set(encrypted_title),
            notes: Set(encrypted_notes),
            due_date: Set(new.due_date),
            due_at: Set(new.due_at),
            priority: Set(new.priority.unwrap_or(Priority::None)),
            completed: Set(false),
            completed_at: Set(None),
            position: Set(position),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        Ok(Todo {
            title,
            notes,
            ..todo_without_text(row)
        })
    }

    /// Changes a todo. A new `list_id` moves it to the end of that list and closes the gap it leaves.
    pub async fn update_todo(&self, id: Uuid, changes: TodoChanges) -> AppResult<Todo> {
        let title = changes.title.as_deref().map(validate::title).transpose()?;
        let notes = changes
            .notes
            .map(|notes| notes.as_deref().map(validate::notes).transpose())
            .transpose()?;
        validate::single_due(
            matches!(changes.due_date, Some(Some(_))),
            matches!(changes.due_at, Some(Some(_))),
        )?;
        let encrypted_title = title
            .as_deref()
            .map(|title| self.encrypt(self.aad("todos", "title", id), title))
            .transpose()?;
        let encrypted_notes = notes
            .as_ref()
            .map(|notes| {
                notes
                    .as_deref()
                    .map(|notes| self.encrypt(self.aad("todos", "notes", id), notes))
                    .transpose()
            })
            .transpose()?;

        for _ in 0..MOVE_ATTEMPTS {
            let txn = self.begin_write().await?;
            let Some(current) = self.lock_todo(&txn, id, changes.list_id).await? else {
                continue;
            };
            let now = Utc::now();
            let source_list = current.list_id;
            let source_position = current.position;
            let mut row = current.clone().into_active_model();
            let moving_to = changes.list_id.filter(|target| *target != source_list);
            if let Some(target) = moving_to {
                row.list_id = Set(target);
                row.position = Set(next_position(max_position(&txn, target).await?));
            }
            if let Some(title) = &encrypted_title {
                row.title = Set(title.clone());
            }
            if let Some(notes) = &encrypted_notes {
                row.notes = Set(notes.clone());
            }
            if let Some(due_date) = changes.due_date {
                row.due_date = Set(due_date);
                if due_date.is_some() {
                    row.due_at = Set(None);
                }
            }
            if let Some(due_at) = changes.due_at {
                row.due_at = Set(due_at);
                if due_at.is_some() {
                    row.due_date = Set(None);
                }
            }
            if let Some(priority) = changes.priority {
                row.priority = Set(priority);
            }
            match changes.completed {
                Some(true) if !current.completed => {
                    row.completed = Set(true);
                    row.completed_at = Set(Some(now));
                }
                Some(false) => {
                    row.completed = Set(false);
                    row.completed_at = Set(None);
                }
                _ => {}
            }
            row.updated_at = Set(now);
            let updated = row.update(&txn).await?;
            if moving_to.is_some() {
                close_gap(&txn, source_list, source_position).await?;
            }
            txn.commit().await?;
            return self.decrypt_todo(updated);
        }
        Err(AppError::Conflict(
            "the todo kept moving between lists; try again".into(),
        ))
    }

    /// Deletes a todo; the todos after it in its list move up.
    pub async fn delete_todo(&self, id: Uuid) -> AppResult<()> {
        for _ in 0..MOVE_ATTEMPTS {
            let txn = self.begin_write().await?;
            let Some(current) = self.lock_todo(&txn, id, None).await? else {
                continue;
            };
            todos::Entity::delete_by_id(id).exec(&txn).await?;
            close_gap(&txn, current.list_id, current.position).await?;
            txn.commit().await?;
            return Ok(());
        }
        Err(AppError::Conflict(
            "the todo kept moving between lists; try again".into(),
        ))
    }

    /// Puts the list's todos in the order of `todo_ids`, which must name every todo of the list exactly
    /// once. The list is locked and its todos read inside the transaction, so concurrent reorders apply one
    /// after the other and positions stay 0..n-1.
    pub async fn reorder(&self, list_id: Uuid, todo_ids: &[Uuid]) -> AppResult<Vec<Todo>> {
        let txn = self.begin_write().await?;
        self.lock_list(&txn, list_id).await?;
        let current: Vec<todos::Model> = todos::Entity::find()
            .filter(todos::Column::ListId.eq(list_id))
            .filter(todos::Column::UserId.eq(self.user_id))
            .all(&txn)
            .await?;
        check_permutation(todo_ids, current.iter().map(|todo| todo.id))?;

        let mut by_id: HashMap<Uuid, todos::Model> = current.into_iter().map(|t| (t.id, t)).collect();
        let now = Utc::now();
        let mut ordered = Vec::with_capacity(todo_ids.len());
        for (index, id) in todo_ids.iter().enumerate() {
            let todo = by_id.remove(id).ok_or(AppError::NotFound("todo"))?;
            let position = i32::try_from(index).map_err(AppError::internal)?;
            if todo.position == position {
                ordered.push(todo);
                continue;
            }
            let mut row = todo.into_active_model();
            row.position = Set(position);
            row.updated_at = Set(now);
            ordered.push(row.update(&txn).await?);
        }
        txn.commit().await?;
        ordered.into_iter().map(|row| self.decrypt_todo(row)).collect()
    }

    /// Reads the user's todo and locks its list (and `also`, when given), in id order so that two
    /// transactions locking the same two lists cannot deadlock. `None` means the todo moved to another
    /// list between the read and the lock: the caller starts again.
    async fn lock_todo(
        &self,
        txn: &DatabaseTransaction,
        id: Uuid,
        also: Option<Uuid>,
    ) -> AppResult<Option<todos::Model>> {
        let todo = self.find_todo(txn, id).await?;
        let mut lists = vec![todo.list_id];
        lists.extend(also.filter(|list| *list != todo.list_id));
        lists.sort();
        for list in lists {
            self.lock_list(txn, list).await?;
        }
        let locked = self.find_todo(txn, id).await?;
        Ok((locked.list_id == todo.list_id).then_some(locked))
    }

    async fn find_todo(&self, txn: &DatabaseTransaction, id: Uuid) -> AppResult<todos::Model> {
        todos::Entity::find_by_id(id)
            .filter(todos::Column::UserId.eq(self.user_id))
            .one(txn)
            .await?
            .ok_or(AppError::NotFound("todo"))
    }

    pub(super) fn decrypt_todo(&self, row: todos::Model) -> AppResult<Todo> {
        let title = self.decrypt(self.aad("todos", "title", row.id), &row.title)?;
        let notes = row
            .notes
            .as_deref()
            .map(|notes| self.decrypt(self.aad("todos", "notes", row.id), notes))
            .transpose()?;
        Ok(Todo {
            title,
            notes,
            ..todo_without_text(row)
        })
    }
}

/// Every field but the encrypted ones (left empty for the caller to fill).
fn todo_without_text(row: todos::Model) -> Todo {
    Todo {
        id: row.id,
        list_id: row.list_id,
        title: String::new(),
        notes: None,
        due_date: row.due_date,
        due_at: row.due_at,
        priority: row.priority,
        completed: row.completed,
        completed_at: row.completed_at,
        position: row.position,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

async fn max_position(txn: &DatabaseTransaction, list_id: Uuid) -> AppResult<Option<i32>> {
    Ok(todos::Entity::find()
        .filter(todos::Column::ListId.eq(list_id))
        .select_only()
        .expr(todos::Column::Position.max())
        .into_tuple::<Option<i32>>()
        .one(txn)
        .await?
        .flatten())
}

/// Moves the todos after `removed_position` up by one.
async fn close_gap(txn: &DatabaseTransaction, list_id: Uuid, removed_position: i32) -> AppResult<()> {
    todos::Entity::update_many()
        .col_expr(todos::Column::Position, Expr::col(todos::Column::Position).sub(1))
        .filter(todos::Column::ListId.eq(list_id))
        .filter(todos::Column::Position.gt(removed_position))
        .exec(txn)
        .await?;
    Ok(())
}

/// `requested` must be exactly the ids of `current`, each once.
fn check_permutation(requested: &[Uuid], current: impl IntoIterator<Item = Uuid>) -> AppResult<()> {
    let current: HashSet<Uuid> = current.into_iter().collect();
    let mut seen = HashSet::with_capacity(requested.len());
    for id in requested {
        if !current.contains(id) {
            return Err(AppError::bad_input(
                "todoIds",
                format!("{id} is not a todo of this list"),
            ));
        }
        if !seen.insert(*id) {
            return Err(AppError::bad_input("todoIds", format!("{id} is given twice")));
        }
    }
    if seen.len() != current.len() {
        return Err(AppError::bad_input(
            "todoIds",
            format!(
                "must name every todo of the list: {} given, the list has {}",
                seen.len(),
                current.len()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(result: AppResult<()>) -> bool {
        matches!(result, Err(AppError::BadUserInput { field, .. }) if field == "todoIds")
    }

    #[test]
    fn a_permutation_of_the_list_is_accepted() {
        let [a, b, c] = [Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7()];
        assert!(check_permutation(&[c, a, b], [a, b, c]).is_ok());
        assert!(check_permutation(&[], []).is_ok());
    }

    #[test]
    fn missing_duplicated_and_foreign_ids_are_refused() {
        let [a, b, c, other] = [Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7()];
        assert!(refused(check_permutation(&[a, b], [a, b, c])));
        assert!(refused(check_permutation(&[a, b, b], [a, b, c])));
        assert!(refused(check_permutation(&[a, b, c, a], [a, b, c])));
        assert!(refused(check_permutation(&[a, b, other], [a, b, c])));
        assert!(refused(check_permutation(&[a, b, c, other], [a, b, c])));
    }
}
