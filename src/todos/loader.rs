//! `TodoList.todos` through a DataLoader: the todos of every list in a response come from one query.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use async_graphql::dataloader::{DataLoader, Loader};
use uuid::Uuid;

use super::{items::Todo, store::UserTodos};

/// The todos of one list, all of them or only the (not) completed ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListTodosKey {
    pub list_id: Uuid,
    pub completed: Option<bool>,
}

/// Loads todos by list for ONE user: built per request (in the resolver that returns the lists), so
/// nothing is shared across users or requests.
pub struct TodosByList {
    todos: UserTodos,
}

impl TodosByList {
    pub fn loader(todos: UserTodos) -> Arc<DataLoader<Self>> {
        Arc::new(DataLoader::new(Self { todos }, tokio::spawn))
    }
}

impl Loader<ListTodosKey> for TodosByList {
    type Value = Vec<Todo>;
    /// `async_graphql::Error` because a loader's error must be `Clone` (`AppError` is not); the
    /// conversion logs internal causes once.
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[ListTodosKey]) -> Result<HashMap<ListTodosKey, Vec<Todo>>, Self::Error> {
        let list_ids: Vec<Uuid> = keys
            .iter()
            .map(|key| key.list_id)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let filters: HashSet<Option<bool>> = keys.iter().map(|key| key.completed).collect();
        // One filter for every key: let the database apply it; otherwise load all and split here.
        let shared_filter = match filters.len() {
            1 => filters.into_iter().next().flatten(),
            _ => None,
        };
        let todos = self.todos.todos_of_lists(&list_ids, shared_filter).await?;

        let mut by_key: HashMap<ListTodosKey, Vec<Todo>> =
            keys.iter().map(|key| (*key, Vec::new())).collect();
        for todo in todos {
            for completed in [None, Some(todo.completed)] {
                let key = ListTodosKey {
                    list_id: todo.list_id,
                    completed,
                };
                if let Some(list) = by_key.get_mut(&key) {
                    list.push(todo.clone());
                }
            }
        }
        Ok(by_key)
    }
}
