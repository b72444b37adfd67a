//! The signed-in user's view of the todos tables: write transactions, row locks, encryption of the
//! personal columns.

use anyhow::Context as _;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, QueryFilter,
    QuerySelect,
};
use uuid::Uuid;

use crate::{
    crypto::{Aad, Cipher},
    entities::{todo_lists, users},
    error::{AppError, AppResult},
    state::SharedState,
};

/// Every read and write of the todos domain goes through one of these, so nothing escapes the user's
/// scope. Cheap to clone (the pool and the cipher are shared handles).
#[derive(Clone)]
pub struct UserTodos {
    pub(super) db: DatabaseConnection,
    pub(super) cipher: Cipher,
    pub(super) user_id: Uuid,
}

impl UserTodos {
    pub fn new(db: DatabaseConnection, cipher: Cipher, user_id: Uuid) -> Self {
        Self { db, cipher, user_id }
    }

    pub fn for_user(app: &SharedState, user_id: Uuid) -> Self {
        Self::new(app.db.clone(), app.cipher.clone(), user_id)
    }

    pub fn user_id(&self) -> Uuid {
        self.user_id
    }

    /// A transaction that will write. On SQLite it takes the write lock at `BEGIN` (IMMEDIATE): a
    /// deferred transaction that reads first and writes later fails at once with SQLITE_BUSY when another
    /// writer got there in between, while `BEGIN IMMEDIATE` waits for the busy timeout instead.
    pub(super) async fn begin_write(&self) -> AppResult<DatabaseTransaction> {
        Ok(crate::db::begin_write(&self.db).await?)
    }

    /// Serialises changes to the order of the user's lists (PostgreSQL row lock on the user; SQLite's
    /// IMMEDIATE transactions are serialised already).
    pub(super) async fn lock_lists_order(&self, txn: &DatabaseTransaction) -> AppResult<()> {
        users::Entity::find_by_id(self.user_id)
            .lock_exclusive()
            .one(txn)
            .await?
            .ok_or(AppError::Unauthenticated)?;
        Ok(())
    }

    /// The user's list, its row locked until the transaction ends, so changes to one list's todos
    /// (create, move, delete, reorder) run one after the other. Another user's list is NOT_FOUND.
    pub(super) async fn lock_list(
        &self,
        txn: &DatabaseTransaction,
        list_id: Uuid,
    ) -> AppResult<todo_lists::Model> {
        todo_lists::Entity::find_by_id(list_id)
            .filter(todo_lists::Column::UserId.eq(self.user_id))
            .lock_exclusive()
            .one(txn)
            .await?
            .ok_or(AppError::NotFound("todo list"))
    }

    /// Whether the user has this list (outside any transaction).
    pub(super) async fn require_list(&self, db: &impl ConnectionTrait, list_id: Uuid) -> AppResult<()> {
        todo_lists::Entity::find_by_id(list_id)
            .filter(todo_lists::Column::UserId.eq(self.user_id))
            .select_only()
            .column(todo_lists::Column::Id)
            .into_tuple::<Uuid>()
            .one(db)
            .await?
            .map(|_| ())
            .ok_or(AppError::NotFound("todo list"))
    }

    pub(super) fn encrypt(&self, scope: Aad, plaintext: &str) -> AppResult<Vec<u8>> {
        self.cipher
            .encrypt_str(&scope, plaintext)
            .with_context(|| format!("encrypting {}.{} of {}", scope.table, scope.column, scope.row_id))
            .map_err(AppError::Internal)
    }

    /// A value that does not decrypt is an internal error (logged), never empty text.
    pub(super) fn decrypt(&self, scope: Aad, envelope: &[u8]) -> AppResult<String> {
        self.cipher
            .decrypt_string(&scope, envelope)
            .with_context(|| format!("decrypting {}.{} of {}", scope.table, scope.column, scope.row_id))
            .map_err(AppError::Internal)
    }

    pub(super) fn aad(&self, table: &'static str, column: &'static str, row_id: Uuid) -> Aad {
        Aad::new(self.user_id, table, column, row_id)
    }
}

/// The position after the last one (0 in an empty list).
pub(super) fn next_position(max: Option<i32>) -> i32 {
    max.map_or(0, |max| max + 1)
}
