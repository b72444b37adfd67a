//! `chronos rotate-keys`: re-encrypts every encrypted column under the key ring's first key.
//!
//! Rows are walked in id order, a page at a time, and each value is written back only if it is still the
//! ciphertext that was read (so a concurrent write is never overwritten). Values already under the first
//! key are skipped, which makes the command resumable: run it again after an interruption and it carries on.
//! Old keys stay in `ENCRYPTION_KEYS` until it has finished, so everything decrypts throughout.
//!
//! The search index's digests depend on the master key too ([`crate::crypto::BlindIndex`]): afterwards,
//! every event with entries under an older key is re-indexed under the first key (searches match entries
//! under any key of the ring meanwhile), and so is every live event without entries (events cached
//! before the index existed; an event without a single word is looked at again on each run).

use std::collections::HashMap;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait as _, Query},
};
use uuid::Uuid;

use crate::{
    crypto::{Aad, Cipher},
    entities::{
        calendars, enums::EventStatus, event_search_tokens, events, google_accounts, todo_lists, todos,
    },
    error::{AppError, AppResult},
    events::{search, store},
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
    /// Events whose search entries were rewritten under the first key.
    pub reindexed: u64,
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
    report.reindexed = reindex_search(db, cipher, &owners).await?;
    Ok(report)
}

/// Re-indexes the events with search entries under an older key, then the live events without entries.
/// Each page is walked in id order, so the pass ends even when an event yields no entries.
async fn reindex_search(
    db: &DatabaseConnection,
    cipher: &Cipher,
    owners: &HashMap<Uuid, Uuid>,
) -> AppResult<u64> {
    let primary = cipher.key_ring().primary_id().to_owned();
    let mut count = 0;
    let mut after = None;
    loop {
        let mut query = event_search_tokens::Entity::find()
            .select_only()
            .column(event_search_tokens::Column::EventId)
            .distinct()
            .filter(event_search_tokens::Column::KeyId.ne(primary.as_str()))
            .order_by_asc(event_search_tokens::Column::EventId)
            .limit(PAGE);
        if let Some(after) = after {
            query = query.filter(event_search_tokens::Column::EventId.gt(after));
        }
        let ids: Vec<Uuid> = query.into_tuple().all(db).await?;
        let Some(last) = ids.last() else { break };
        after = Some(*last);
        for id in ids {
            count += u64::from(reindex_event(db, cipher, owners, id).await?);
        }
    }
    let mut after = None;
    loop {
        let unindexed = Query::select()
            .expr(Expr::val(1))
            .from(event_search_tokens::Entity)
            .and_where(
                Expr::col((event_search_tokens::Entity, event_search_tokens::Column::EventId))
                    .equals((events::Entity, events::Column::Id)),
            )
            .to_owned();
        let mut query = events::Entity::find()
            .select_only()
            .column(events::Column::Id)
            .filter(events::Column::DeletedAt.is_null())
            .filter(events::Column::Status.ne(EventStatus::Cancelled))
            .filter(Expr::exists(unindexed).not())
            .order_by_asc(events::Column::Id)
            .limit(PAGE);
        if let Some(after) = after {
            query = query.filter(events::Column::Id.gt(after));
        }
        let ids: Vec<Uuid> = query.into_tuple().all(db).await?;
        let Some(last) = ids.last() else { break };
        after = Some(*last);
        for id in ids {
            count += u64::from(reindex_event(db, cipher, owners, id).await?);
        }
    }
    Ok(count)
}

/// Rewrites one event's search entries from its current texts. The row is locked first (PostgreSQL; a
/// SQLite write transaction excludes other writers anyway), so a concurrent write of the event either
/// comes before and is what gets indexed, or waits and rewrites the entries itself.
async fn reindex_event(
    db: &DatabaseConnection,
    cipher: &Cipher,
    owners: &HashMap<Uuid, Uuid>,
    id: Uuid,
) -> AppResult<bool> {
    let txn = crate::db::begin_write(db).await?;
    let Some(row) = events::Entity::find_by_id(id).lock_exclusive().one(&txn).await? else {
        // Deleted meanwhile: its entries went with it.
        txn.commit().await?;
        return Ok(false);
    };
    let user_id = match owners.get(&row.calendar_id) {
        Some(user_id) => *user_id,
        None => calendar_owners(&txn)
            .await?
            .get(&row.calendar_id)
            .copied()
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("event {id} has no owner")))?,
    };
    let event = store::decode(cipher, user_id, &row)?;
    let texts = [(row.id, search::texts_of(&event))];
    search::index::reindex(&txn, cipher, user_id, &texts, &Default::default()).await?;
    txn.commit().await?;
    Ok(true)
}

/// calendar id -> user id, for tables whose rows reach their user through a calendar.
async fn calendar_owners<C: ConnectionTrait>(db: &C) -> AppResult<HashMap<Uuid, Uuid>> {
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
