//! `chronos rotate-keys`: re-encrypts every encrypted column under the key ring's first key.
//!
//! Rows are walked in id order, a page at a time, and each value is written back only if it is still the
//! ciphertext that was read (so a concurrent write is never overwritten). Values already under the first
//! key are skipped, which makes the command resumable: run it again after an interruption and it carries on.
//! Old keys stay in `ENCRYPTION_KEYS` until it has finished, so everything decrypts throughout.

use std::collections::HashMap;

use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect, sea_query::Expr,
};
use uuid::Uuid;

use crate::{
    crypto::{Aad, Cipher},
    entities::{calendars, events, google_accounts, todo_lists, todos},
    error::{AppError, AppResult},
};

const PAGE: u64 = 500;

/// One encrypted value of a row.
struct Cell {
    column: &'static str,
    value: Vec<u8>,
}

struct Row {
    id: Uuid,
    user_id: Uuid,
    cells: Vec<Cell>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RotationReport {
    pub examined: u64,
    pub rotated: u64,
}

/// Re-encrypts every value not under the first key. Fails on a value no key can decrypt, naming its row,
/// without touching it.
pub async fn rotate_all(db: &DatabaseConnection, cipher: &Cipher) -> AppResult<RotationReport> {
    let owners = calendar_owners(db).await?;
    let mut report = RotationReport::default();
    for table in Table::ALL {
        let mut after = None;
        loop {
            let rows = table.page(db, after, &owners).await?;
            let Some(last) = rows.last() else { break };
            after = Some(last.id);
            for row in rows {
                for cell in row.cells {
                    report.examined += 1;
                    if !cipher.needs_rotation(&cell.value) {
                        continue;
                    }
                    let aad = Aad::new(row.user_id, table.name(), cell.column, row.id);
                    let fresh = cipher.reencrypt(&aad, &cell.value).map_err(|e| {
                        AppError::internal(anyhow::anyhow!(
                            "{}.{} of row {} does not decrypt: {e}",
                            table.name(),
                            cell.column,
                            row.id
                        ))
                    })?;
                    if table.write(db, row.id, cell.column, &cell.value, fresh).await? {
                        report.rotated += 1;
                    }
                }
            }
        }
    }
    Ok(report)
}

/// calendar id -> user id, for tables whose rows reach their user through a calendar.
async fn calendar_owners(db: &DatabaseConnection) -> AppResult<HashMap<Uuid, Uuid>> {
    let accounts: HashMap<Uuid, Uuid> = google_accounts::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|a| (a.id, a.user_id))
        .collect();
    Ok(calendars::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .filter_map(|c| accounts.get(&c.account_id).map(|user| (c.id, *user)))
        .collect())
}

/// The tables with encrypted columns. (`push_channels.token` is a SHA-256 digest, not a ciphertext: no key
/// touches it.)
#[derive(Clone, Copy)]
enum Table {
    GoogleAccounts,
    Events,
    TodoLists,
    Todos,
}

fn cells(pairs: impl IntoIterator<Item = (&'static str, Option<Vec<u8>>)>) -> Vec<Cell> {
    pairs
        .into_iter()
        .filter_map(|(column, value)| value.map(|value| Cell { column, value }))
        .collect()
}

impl Table {
    const ALL: [Table; 4] = [
        Table::GoogleAccounts,
        Table::Events,
        Table::TodoLists,
        Table::Todos,
    ];

    fn name(self) -> &'static str {
        match self {
            Table::GoogleAccounts => "google_accounts",
            Table::Events => "events",
            Table::TodoLists => "todo_lists",
            Table::Todos => "todos",
        }
    }

    async fn page(
        self,
        db: &DatabaseConnection,
        after: Option<Uuid>,
        owners: &HashMap<Uuid, Uuid>,
    ) -> AppResult<Vec<Row>> {
        macro_rules! page_of {
            ($entity:ident) => {{
                let mut query = $entity::Entity::find()
                    .order_by_asc($entity::Column::Id)
                    .limit(PAGE);
                if let Some(after) = after {
                    query = query.filter($entity::Column::Id.gt(after));
                }
                query.all(db).await?
            }};
        }
        let owner = |calendar_id: &Uuid| owners.get(calendar_id).copied();
        Ok(match self {
            Table::GoogleAccounts => page_of!(google_accounts)
                .into_iter()
                .map(|r| Row {
                    id: r.id,
                    user_id: r.user_id,
                    cells: cells([
                        ("access_token", r.access_token),
                        ("refresh_token", r.refresh_token),
                    ]),
                })
                .collect(),
            Table::Events => page_of!(events)
                .into_iter()
                .filter_map(|r| {
                    Some(Row {
                        id: r.id,
                        user_id: owner(&r.calendar_id)?,
                        cells: cells([
                            ("summary", r.summary),
                            ("description", r.description),
                            ("location", r.location),
                        ]),
                    })
                })
                .collect(),
            Table::TodoLists => page_of!(todo_lists)
                .into_iter()
                .map(|r| Row {
                    id: r.id,
                    user_id: r.user_id,
                    cells: cells([("name", Some(r.name))]),
                })
                .collect(),
            Table::Todos => page_of!(todos)
                .into_iter()
                .map(|r| Row {
                    id: r.id,
                    user_id: r.user_id,
                    cells: cells([("title", Some(r.title)), ("notes", r.notes)]),
                })
                .collect(),
        })
    }

    /// Compare-and-swap of one value; false when the row changed since it was read.
    async fn write(
        self,
        db: &DatabaseConnection,
        id: Uuid,
        column: &'static str,
        old: &[u8],
        new: Vec<u8>,
    ) -> AppResult<bool> {
        macro_rules! swap {
            ($entity:ident, $column:ident) => {
                $entity::Entity::update_many()
                    .col_expr($entity::Column::$column, Expr::value(new))
                    .filter($entity::Column::Id.eq(id))
                    .filter($entity::Column::$column.eq(old.to_vec()))
                    .exec(db)
                    .await?
                    .rows_affected
            };
        }
        let affected = match (self, column) {
            (Table::GoogleAccounts, "access_token") => swap!(google_accounts, AccessToken),
            (Table::GoogleAccounts, "refresh_token") => swap!(google_accounts, RefreshToken),
            (Table::Events, "summary") => swap!(events, Summary),
            (Table::Events, "description") => swap!(events, Description),
            (Table::Events, "location") => swap!(events, Location),
            (Table::TodoLists, "name") => swap!(todo_lists, Name),
            (Table::Todos, "title") => swap!(todos, Title),
            (Table::Todos, "notes") => swap!(todos, Notes),
            (table, column) => {
                return Err(AppError::internal(anyhow::anyhow!(
                    "no encrypted column {}.{column}",
                    table.name()
                )));
            }
        };
        Ok(affected == 1)
    }
}
