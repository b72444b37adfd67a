//! Todo lists: create, rename, recolour, move, delete. A user's lists are numbered 0..n-1.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait},
};
use uuid::Uuid;

use super::{
    store::{UserTodos, next_position},
    validate,
};
use crate::{
    entities::{todo_lists, todos},
    error::{AppError, AppResult},
};

/// A todo list, decrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TodoList {
    pub id: Uuid,
    pub name: String,
    pub color: Option<String>,
    pub position: i32,
}

/// Changes to a list; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ListChanges {
    pub name: Option<String>,
    /// `Some(None)` removes the colour.
    pub color: Option<Option<String>>,
    /// The list's new index among the user's lists; past the end means last.
    pub position: Option<i32>,
}

impl UserTodos {
    /// The user's lists in their order.
    pub async fn lists(&self) -> AppResult<Vec<TodoList>> {
        todo_lists::Entity::find()
            .filter(todo_lists::Column::UserId.eq(self.user_id))
            .order_by_asc(todo_lists::Column::Position)
            .order_by_asc(todo_lists::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| self.decrypt_list(row))
            .collect()
    }

    /// Adds a list after the user's other lists.
    pub async fn create_list(&self, name: &str, color: Option<&str>) -> AppResult<TodoList> {
        let name = validate::list_name(name)?;
        let color = color.map(validate::color).transpose()?;
        let id = Uuid::now_v7();
        let encrypted_name = self.encrypt(self.aad("todo_lists", "name", id), &name)?;
        let now = Utc::now();

        let txn = self.begin_write().await?;
        self.lock_lists_order(&txn).await?;
        let max: Option<i32> = todo_lists::Entity::find()
            .filter(todo_lists::Column::UserId.eq(self.user_id))
            .select_only()
            .expr(todo_lists::Column::Position.max())
            .into_tuple::<Option<i32>>()
            .one(&txn)
            .await?
            .flatten();
        let row = todo_lists::ActiveModel {
            id: Set(id),
            user_id: Set(self.user_id),
            name: Set(encrypted_name),
            color: Set(color.clone()),
            position: Set(next_position(max)),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        Ok(TodoList {
            id,
            name,
            color,
            position: row.position,
        })
    }

    /// Renames, recolours and/or moves a list. A move renumbers all the user's lists 0..n-1.
    pub async fn update_list(&self, id: Uuid, changes: ListChanges) -> AppResult<TodoList> {
        let name = changes.name.as_deref().map(validate::list_name).transpose()?;
        let color = changes
            .color
            .map(|color| color.as_deref().map(validate::color).transpose())
            .transpose()?;
        let target_index = changes.position.map(validate::list_position).transpose()?;

        let txn = self.begin_write().await?;
        self.lock_lists_order(&txn).await?;
        let mut order: Vec<todo_lists::Model> = todo_lists::Entity::find()
            .filter(todo_lists::Column::UserId.eq(self.user_id))
            .order_by_asc(todo_lists::Column::Position)
            .order_by_asc(todo_lists::Column::Id)
            .all(&txn)
            .await?;
        let index = order
            .iter()
            .position(|list| list.id == id)
            .ok_or(AppError::NotFound("todo list"))?;
        if let Some(target) = target_index {
            let moved = order.remove(index);
            order.insert(target.min(order.len()), moved);
        }

        let mut updated = None;
        for (new_position, list) in order.into_iter().enumerate() {
            let new_position = i32::try_from(new_position).map_err(AppError::internal)?;
            if list.id == id {
                let mut row = list.into_active_model();
                if let Some(name) = &name {
                    row.name = Set(self.encrypt(self.aad("todo_lists", "name", id), name)?);
                }
                if let Some(color) = &color {
                    row.color = Set(color.clone());
                }
                row.position = Set(new_position);
                row.updated_at = Set(Utc::now());
                updated = Some(row.update(&txn).await?);
            } else if list.position != new_position {
                todo_lists::Entity::update_many()
                    .col_expr(todo_lists::Column::Position, Expr::value(new_position))
                    .filter(todo_lists::Column::Id.eq(list.id))
                    .exec(&txn)
                    .await?;
            }
        }
        let updated = updated.ok_or(AppError::NotFound("todo list"))?;
        txn.commit().await?;
        self.decrypt_list(updated)
    }

    /// Deletes a list and its todos; the lists after it move up.
    pub async fn delete_list(&self, id: Uuid) -> AppResult<()> {
        let txn = self.begin_write().await?;
        self.lock_lists_order(&txn).await?;
        let list = self.lock_list(&txn, id).await?;
        todos::Entity::delete_many()
            .filter(todos::Column::ListId.eq(id))
            .exec(&txn)
            .await?;
        todo_lists::Entity::delete_by_id(id).exec(&txn).await?;
        todo_lists::Entity::update_many()
            .col_expr(
                todo_lists::Column::Position,
                Expr::col(todo_lists::Column::Position).sub(1),
            )
            .filter(todo_lists::Column::UserId.eq(self.user_id))
            .filter(todo_lists::Column::Position.gt(list.position))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(())
    }

    pub(super) fn decrypt_list(&self, row: todo_lists::Model) -> AppResult<TodoList> {
        Ok(TodoList {
            name: self.decrypt(self.aad("todo_lists", "name", row.id), &row.name)?,
            id: row.id,
            color: row.color,
            position: row.position,
        })
    }
}
