//! The entities match the migrations: same columns in the same order, same types, same
//! nullability, same foreign keys; and every entity round-trips a fully populated and a minimal row
//! with the cascades the schema promises. On SQLite always, and on a fresh PostgreSQL database when
//! `TEST_DATABASE_URL` is set (e.g. `postgres://postgres@127.0.0.1:5432/postgres`).

use std::path::PathBuf;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use migration::{Migrator, MigratorTrait};
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{ForeignKeyAction, TableRef};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, Database, DatabaseConnection, DbBackend, IntoActiveModel, Iterable,
    PaginatorTrait, Statement,
};
use serde_json::json;

use super::enums::*;
use super::*;

/// A migrated scratch database, removed by [`TestDb::finish`].
struct TestDb {
    db: DatabaseConnection,
    cleanup: Cleanup,
}

enum Cleanup {
    File(PathBuf),
    Postgres { admin: DatabaseConnection, name: String },
}

impl TestDb {
    async fn sqlite() -> Self {
        let path = std::env::temp_dir().join(format!("chronos-entities-{}.db", Uuid::new_v4()));
        let db = Database::connect(format!("sqlite://{}?mode=rwc", path.display()))
            .await
            .unwrap();
        Migrator::up(&db, None).await.unwrap();
        Self {
            db,
            cleanup: Cleanup::File(path),
        }
    }

    async fn postgres() -> Self {
        let admin_url = std::env::var("TEST_DATABASE_URL")
            .expect("TEST_DATABASE_URL names the PostgreSQL this ignored test runs on");
        let name = format!("chronos_entities_{}", Uuid::new_v4().simple());
        let admin = Database::connect(&admin_url).await.unwrap();
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let db = Database::connect(database_url(&admin_url, &name)).await.unwrap();
        Migrator::up(&db, None).await.unwrap();
        Self {
            db,
            cleanup: Cleanup::Postgres { admin, name },
        }
    }

    /// Runs the checks, removes the database (even when a check failed), then reports.
    async fn check(self) {
        let db = self.db.clone();
        let outcome = tokio::spawn(async move {
            check_schema(&db).await;
            check_rows(&db).await;
        })
        .await;
        self.finish().await;
        if let Err(error) = outcome {
            std::panic::resume_unwind(error.into_panic());
        }
    }

    async fn finish(self) {
        self.db.close().await.unwrap();
        match self.cleanup {
            Cleanup::File(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            Cleanup::Postgres { admin, name } => {
                admin
                    .execute_unprepared(&format!("DROP DATABASE {name}"))
                    .await
                    .unwrap();
                admin.close().await.unwrap();
            }
        }
    }
}

/// `admin_url` with its database name replaced by `name` (query string kept).
fn database_url(admin_url: &str, name: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (admin_url, None),
    };
    let authority_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

#[tokio::test]
async fn sqlite_entities_match_migrations() {
    TestDb::sqlite().await.check().await;
}

#[tokio::test]
#[ignore = "needs TEST_DATABASE_URL (CI runs it in its PostgreSQL pass)"]
async fn postgres_only_entities_match_migrations() {
    TestDb::postgres().await.check().await;
}

// ---------------------------------------------------------------------------------------------
// Schema

async fn check_schema(db: &DatabaseConnection) {
    check_entity(db, users::Entity).await;
    check_entity(db, google_accounts::Entity).await;
    check_entity(db, calendars::Entity).await;
    check_entity(db, sync_configs::Entity).await;
    check_entity(db, sync_runs::Entity).await;
    check_entity(db, event_links::Entity).await;
    check_entity(db, events::Entity).await;
    check_entity(db, event_search_tokens::Entity).await;
    check_entity(db, event_change_sequences::Entity).await;
    check_entity(db, todo_lists::Entity).await;
    check_entity(db, todos::Entity).await;
    check_entity(db, push_channels::Entity).await;
    check_entity(db, sessions::Entity).await;
    check_entity(db, jobs::Entity).await;
}

/// (column name, declared type, nullable), in table order.
type ColumnShape = (String, String, bool);
/// (column, referenced table, referenced column, ON DELETE action).
type ForeignKeyShape = (String, String, String, String);

async fn check_entity<E: EntityTrait>(db: &DatabaseConnection, entity: E) {
    let backend = db.get_database_backend();
    let table = entity.table_name();

    let expected: Vec<ColumnShape> = E::Column::iter()
        .map(|column| {
            let def = column.def();
            (
                column.as_str().to_owned(),
                declared_type(backend, def.get_column_type()),
                def.is_null(),
            )
        })
        .collect();
    assert_eq!(table_columns(db, table).await, expected, "columns of {table}");

    let mut expected: Vec<ForeignKeyShape> = E::Relation::iter()
        .map(|relation| relation.def())
        .filter(|def| !def.is_owner && !def.skip_fk) // belongs_to: this table holds the key
        .map(|def| {
            let TableRef::Table(to_table, _) = &def.to_tbl else {
                panic!("{table}: relation to a non-table");
            };
            (
                single_column(&def.from_col),
                to_table.1.inner().into_owned(),
                single_column(&def.to_col),
                action_name(def.on_delete.as_ref()).to_owned(),
            )
        })
        .collect();
    expected.sort();
    assert_eq!(
        table_foreign_keys(db, table).await,
        expected,
        "foreign keys of {table}"
    );
}

fn single_column(identity: &sea_orm::Identity) -> String {
    match identity {
        sea_orm::Identity::Unary(column) => column.inner().into_owned(),
        other => panic!("composite foreign key {other:?}"),
    }
}

fn action_name(action: Option<&ForeignKeyAction>) -> &'static str {
    match action {
        Some(ForeignKeyAction::Cascade) => "CASCADE",
        Some(ForeignKeyAction::SetNull) => "SET NULL",
        Some(ForeignKeyAction::Restrict) => "RESTRICT",
        Some(ForeignKeyAction::SetDefault) => "SET DEFAULT",
        Some(ForeignKeyAction::NoAction) | None => "NO ACTION",
        Some(other) => panic!("unexpected action {other:?}"),
    }
}

/// The type the migrations' schema builder declares for `column_type` (as the database reports it).
fn declared_type(backend: DbBackend, column_type: &ColumnType) -> String {
    let postgres = backend == DbBackend::Postgres;
    let name = match column_type {
        ColumnType::String(StringLen::N(n)) if postgres => return format!("character varying({n})"),
        ColumnType::String(StringLen::N(n)) => return format!("varchar({n})"),
        ColumnType::String(_) if postgres => "character varying",
        ColumnType::String(_) => "varchar",
        ColumnType::Uuid if postgres => "uuid",
        ColumnType::Uuid => "uuid_text",
        ColumnType::TimestampWithTimeZone if postgres => "timestamp with time zone",
        ColumnType::TimestampWithTimeZone => "timestamp_with_timezone_text",
        ColumnType::Date if postgres => "date",
        ColumnType::Date => "date_text",
        ColumnType::Boolean => "boolean",
        ColumnType::Integer => "integer",
        ColumnType::BigInteger if postgres => "bigint",
        ColumnType::BigInteger => "integer",
        ColumnType::Blob if postgres => "bytea",
        ColumnType::Blob => "blob",
        ColumnType::JsonBinary if postgres => "jsonb",
        ColumnType::JsonBinary => "jsonb_text",
        other => panic!("column type {other:?} not used by the migrations"),
    };
    name.to_owned()
}

async fn table_columns(db: &DatabaseConnection, table: &str) -> Vec<ColumnShape> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "SELECT column_name::text, \
                CASE WHEN character_maximum_length IS NULL THEN data_type::text \
                     ELSE data_type::text || '(' || character_maximum_length::text || ')' END, \
                is_nullable::text = 'YES' \
             FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1 \
             ORDER BY ordinal_position"
        }
        _ => "SELECT name, type, \"notnull\" = 0 FROM pragma_table_info(?) ORDER BY cid",
    };
    db.query_all_raw(Statement::from_sql_and_values(backend, sql, [table.into()]))
        .await
        .unwrap()
        .iter()
        .map(|row| {
            (
                row.try_get_by_index::<String>(0).unwrap(),
                row.try_get_by_index::<String>(1).unwrap().to_lowercase(),
                row.try_get_by_index::<bool>(2).unwrap(),
            )
        })
        .collect()
}

async fn table_foreign_keys(db: &DatabaseConnection, table: &str) -> Vec<ForeignKeyShape> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "SELECT kcu.column_name::text, ccu.table_name::text, ccu.column_name::text, \
                rc.delete_rule::text \
             FROM information_schema.referential_constraints rc \
             JOIN information_schema.key_column_usage kcu \
               ON kcu.constraint_schema = rc.constraint_schema \
              AND kcu.constraint_name = rc.constraint_name \
             JOIN information_schema.constraint_column_usage ccu \
               ON ccu.constraint_schema = rc.constraint_schema \
              AND ccu.constraint_name = rc.constraint_name \
             WHERE rc.constraint_schema = current_schema() AND kcu.table_name = $1"
        }
        _ => "SELECT \"from\", \"table\", \"to\", on_delete FROM pragma_foreign_key_list(?)",
    };
    let mut keys: Vec<ForeignKeyShape> = db
        .query_all_raw(Statement::from_sql_and_values(backend, sql, [table.into()]))
        .await
        .unwrap()
        .iter()
        .map(|row| {
            (
                row.try_get_by_index::<String>(0).unwrap(),
                row.try_get_by_index::<String>(1).unwrap(),
                row.try_get_by_index::<String>(2).unwrap(),
                row.try_get_by_index::<String>(3).unwrap(),
            )
        })
        .collect();
    keys.sort();
    keys
}

// ---------------------------------------------------------------------------------------------
// Rows

/// A timestamp with microseconds (PostgreSQL's precision).
fn at(hour: u32, micros: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, hour, 0, 0).unwrap() + Duration::microseconds(micros)
}

fn date(day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, day).unwrap()
}

/// Inserts `$model` through the entity module `$entity`, and checks that the row returned by the
/// insert and the row read back equal it.
macro_rules! round_trip {
    ($db:expr, $entity:ident, $model:expr) => {{
        let model: $entity::Model = $model;
        let inserted = model
            .clone()
            .into_active_model()
            .reset_all()
            .insert($db)
            .await
            .unwrap();
        assert_eq!(inserted, model, "{} as inserted", stringify!($entity));
        let found = $entity::Entity::find_by_id(model.id.clone())
            .one($db)
            .await
            .unwrap();
        assert_eq!(found.as_ref(), Some(&model), "{} as read", stringify!($entity));
        model
    }};
}

async fn count<E>(db: &DatabaseConnection, entity: E) -> u64
where
    E: EntityTrait,
    E::Model: Sync,
{
    let _ = entity;
    E::find().count(db).await.unwrap()
}

async fn check_rows(db: &DatabaseConnection) {
    let user = round_trip!(
        db,
        users,
        users::Model {
            id: Uuid::now_v7(),
            email: "ada@example.com".into(),
            name: Some("Ada".into()),
            created_at: at(8, 1),
            updated_at: at(9, 999_999),
        }
    );
    let other_user = round_trip!(
        db,
        users,
        users::Model {
            id: Uuid::now_v7(),
            email: "bob@example.com".into(),
            name: None,
            created_at: at(8, 0),
            updated_at: at(8, 0),
        }
    );

    let account = round_trip!(
        db,
        google_accounts,
        google_accounts::Model {
            id: Uuid::now_v7(),
            user_id: user.id,
            google_sub: "1234567890".into(),
            email: "ada@example.com".into(),
            name: Some("Ada L.".into()),
            status: AccountStatus::NeedsReauth,
            access_token: Some(vec![0, 1, 2, 255]),
            refresh_token: Some(vec![9; 64]),
            access_token_expires_at: Some(at(10, 5)),
            granted_scopes: "openid email https://www.googleapis.com/auth/calendar".into(),
            calendar_list_sync_token: Some("sync-token".into()),
            created_at: at(8, 2),
            updated_at: at(8, 3),
        }
    );
    let minimal_account = round_trip!(
        db,
        google_accounts,
        google_accounts::Model {
            id: Uuid::now_v7(),
            user_id: other_user.id,
            google_sub: "42".into(),
            email: "bob@example.com".into(),
            name: None,
            status: AccountStatus::Active,
            access_token: None,
            refresh_token: None,
            access_token_expires_at: None,
            granted_scopes: String::new(),
            calendar_list_sync_token: None,
            created_at: at(8, 0),
            updated_at: at(8, 0),
        }
    );
    // google_sub is unique.
    let mut duplicate = minimal_account.clone();
    duplicate.id = Uuid::now_v7();
    duplicate.user_id = user.id;
    assert!(
        duplicate
            .into_active_model()
            .reset_all()
            .insert(db)
            .await
            .is_err()
    );

    let calendar = |id: &str, primary: bool| calendars::Model {
        id: Uuid::now_v7(),
        account_id: account.id,
        google_calendar_id: id.into(),
        summary: id.into(),
        description: None,
        time_zone: None,
        access_role: "owner".into(),
        is_primary: primary,
        background_color: None,
        foreground_color: None,
        color_id: None,
        include_in_free_busy: None,
        events_sync_token: None,
        last_full_sync_at: None,
        last_synced_at: None,
        deleted_at: None,
        created_at: at(8, 0),
        updated_at: at(8, 0),
    };
    let source = round_trip!(
        db,
        calendars,
        calendars::Model {
            description: Some("Work".into()),
            time_zone: Some("Europe/Paris".into()),
            background_color: Some("#9fe1e7".into()),
            foreground_color: Some("#000000".into()),
            color_id: Some("14".into()),
            include_in_free_busy: Some(false),
            events_sync_token: Some("events-token".into()),
            last_full_sync_at: Some(at(7, 7)),
            last_synced_at: Some(at(7, 8)),
            deleted_at: Some(at(7, 9)),
            ..calendar("ada@example.com", true)
        }
    );
    let destination = round_trip!(db, calendars, calendar("family", false));
    // (account_id, google_calendar_id) is unique.
    assert!(
        calendar("family", false)
            .into_active_model()
            .reset_all()
            .insert(db)
            .await
            .is_err()
    );

    let config = round_trip!(
        db,
        sync_configs,
        sync_configs::Model {
            id: Uuid::now_v7(),
            user_id: user.id,
            source_calendar_id: source.id,
            destination_calendar_id: destination.id,
            direction: SyncDirection::TwoWay,
            lookahead_days: 90,
            lookback_days: 0,
            privacy_enabled: true,
            privacy_placeholder: "Busy".into(),
            reverse_privacy_enabled: false,
            reverse_privacy_placeholder: "Busy".into(),
            destination_color_id: Some("5".into()),
            reverse_color_id: Some("6".into()),
            enabled: true,
            interval_minutes: Some(15),
            status: SyncConfigStatus::Paused,
            paused_reason: Some("mass delete".into()),
            next_run_at: Some(at(11, 0)),
            created_at: at(8, 0),
            updated_at: at(8, 0),
        }
    );
    let (source_link, mirror_link) = (
        sync_configs::Entity::find_by_id(config.id)
            .find_also_linked(sync_configs::SourceCalendar)
            .one(db)
            .await
            .unwrap()
            .and_then(|(_, calendar)| calendar),
        sync_configs::Entity::find_by_id(config.id)
            .find_also_linked(sync_configs::DestinationCalendar)
            .one(db)
            .await
            .unwrap()
            .and_then(|(_, calendar)| calendar),
    );
    assert_eq!(source_link.map(|c| c.id), Some(source.id));
    assert_eq!(mirror_link.map(|c| c.id), Some(destination.id));

    round_trip!(
        db,
        sync_runs,
        sync_runs::Model {
            id: Uuid::now_v7(),
            config_id: config.id,
            trigger: SyncTrigger::Push,
            status: SyncRunStatus::Partial,
            started_at: Some(at(10, 1)),
            finished_at: Some(at(10, 2)),
            created: 1,
            updated: 2,
            deleted: 3,
            skipped: 4,
            failed: 5,
            google_calls: 6,
            conflicts: 7,
            error: Some("quota".into()),
            allow_mass_delete: true,
            created_at: at(10, 0),
        }
    );
    // The counters default to 0 in the database.
    let queued = sync_runs::ActiveModel {
        id: Set(Uuid::now_v7()),
        config_id: Set(config.id),
        trigger: Set(SyncTrigger::Manual),
        status: Set(SyncRunStatus::Queued),
        started_at: Set(None),
        finished_at: Set(None),
        error: Set(None),
        created_at: Set(at(10, 3)),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    assert_eq!(
        (queued.created, queued.google_calls, queued.allow_mass_delete),
        (0, 0, false)
    );

    round_trip!(
        db,
        event_links,
        event_links::Model {
            id: Uuid::now_v7(),
            config_id: config.id,
            source_calendar_id: source.id,
            source_event_id: "src1".into(),
            mirror_calendar_id: destination.id,
            mirror_event_id: "mir1".into(),
            origin: LinkOrigin::Destination,
            source_hash: "h1".into(),
            mirror_hash: "h2".into(),
            created_at: at(10, 0),
            updated_at: at(10, 0),
        }
    );

    let seq1 = event_change_sequences::next_value(db, user.id).await.unwrap();
    let seq2 = event_change_sequences::next_value(db, user.id).await.unwrap();
    assert_eq!((seq1, seq2), (1, 2));
    assert_eq!(
        event_change_sequences::next_value(db, other_user.id)
            .await
            .unwrap(),
        1,
        "each user's counter is its own"
    );

    let timed = round_trip!(
        db,
        events,
        events::Model {
            id: Uuid::now_v7(),
            calendar_id: destination.id,
            google_event_id: "evt1".into(),
            i_cal_uid: Some("evt1@google.com".into()),
            summary: Some(b"ciphertext".to_vec()),
            description: Some(vec![]),
            location: Some(vec![1]),
            start_date: None,
            start_date_time: Some(at(12, 0)),
            start_time_zone: Some("Europe/Paris".into()),
            end_date: None,
            end_date_time: Some(at(13, 0)),
            end_time_zone: Some("Europe/Paris".into()),
            all_day: false,
            range_start: at(12, 0),
            range_end: Utc.with_ymd_and_hms(9999, 12, 31, 0, 0, 0).unwrap(),
            long_span: true,
            recurrence: Some(json!(["RRULE:FREQ=WEEKLY;BYDAY=MO", "EXDATE:20261130T120000Z"])),
            recurring_event_id: Some("series".into()),
            original_start_date: Some(date(23)),
            original_start_date_time: Some(at(12, 1)),
            original_start_time_zone: Some("UTC".into()),
            status: EventStatus::Tentative,
            transparency: Some("transparent".into()),
            visibility: Some("private".into()),
            color_id: Some("3".into()),
            event_type: Some("default".into()),
            etag: Some("\"3\"".into()),
            google_updated: Some(at(11, 11)),
            extended_private: Some(json!({ "chronosMirror": "x", "n": "1" })),
            extended_shared: Some(json!({})),
            self_response_status: Some("declined".into()),
            mirror_config_id: Some(config.id),
            change_seq: seq1,
            deleted_at: Some(at(14, 0)),
            created_at: at(11, 0),
            updated_at: at(11, 1),
        }
    );
    let all_day = round_trip!(
        db,
        events,
        events::Model {
            id: Uuid::now_v7(),
            calendar_id: source.id,
            google_event_id: "evt2".into(),
            i_cal_uid: None,
            summary: None,
            description: None,
            location: None,
            start_date: Some(date(24)),
            start_date_time: None,
            start_time_zone: None,
            end_date: Some(date(25)),
            end_date_time: None,
            end_time_zone: None,
            all_day: true,
            range_start: Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap(),
            range_end: Utc.with_ymd_and_hms(2026, 11, 25, 14, 0, 0).unwrap(),
            long_span: false,
            recurrence: None,
            recurring_event_id: None,
            original_start_date: None,
            original_start_date_time: None,
            original_start_time_zone: None,
            status: EventStatus::Confirmed,
            transparency: None,
            visibility: None,
            color_id: None,
            event_type: None,
            etag: None,
            google_updated: None,
            extended_private: None,
            extended_shared: None,
            self_response_status: None,
            mirror_config_id: None,
            change_seq: seq2,
            deleted_at: None,
            created_at: at(11, 0),
            updated_at: at(11, 0),
        }
    );
    // (calendar_id, google_event_id) is unique.
    let mut duplicate = all_day.clone();
    duplicate.id = Uuid::now_v7();
    assert!(
        duplicate
            .into_active_model()
            .reset_all()
            .insert(db)
            .await
            .is_err()
    );
    // Window query: range_start < max AND range_end > min, timestamps compared correctly.
    let window = |min: DateTime<Utc>, max: DateTime<Utc>| {
        events::Entity::find()
            .filter(events::Column::RangeStart.lt(max))
            .filter(events::Column::RangeEnd.gt(min))
            .all(db)
    };
    let ids = |hits: Vec<events::Model>| hits.into_iter().map(|e| e.id).collect::<Vec<_>>();
    // Bounds are strict, to the microsecond.
    assert!(ids(window(at(8, 0), at(12, 0)).await.unwrap()).is_empty());
    assert_eq!(ids(window(at(8, 0), at(12, 1)).await.unwrap()), vec![timed.id]);
    let nov23 = Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap();
    assert_eq!(
        ids(window(nov23, nov23 + Duration::hours(10)).await.unwrap()),
        vec![timed.id]
    );
    let mut both = ids(window(nov23, nov23 + Duration::hours(11)).await.unwrap());
    both.sort();
    assert_eq!(both, vec![timed.id, all_day.id]);
    assert_eq!(
        ids(window(
            Utc.with_ymd_and_hms(2026, 11, 25, 14, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap()
        )
        .await
        .unwrap()),
        vec![timed.id]
    );
    let feed = events::Entity::find()
        .filter(events::Column::ChangeSeq.gt(seq1))
        .all(db)
        .await
        .unwrap();
    assert_eq!(feed.iter().map(|e| e.id).collect::<Vec<_>>(), vec![all_day.id]);

    let list = round_trip!(
        db,
        todo_lists,
        todo_lists::Model {
            id: Uuid::now_v7(),
            user_id: user.id,
            name: b"groceries".to_vec(),
            color: Some("#ff0000".into()),
            position: 0,
            created_at: at(8, 0),
            updated_at: at(8, 0),
        }
    );
    let todo = |position: i32| todos::Model {
        id: Uuid::now_v7(),
        list_id: list.id,
        user_id: user.id,
        title: b"milk".to_vec(),
        notes: None,
        due_date: None,
        due_at: None,
        priority: Priority::None,
        completed: false,
        completed_at: None,
        position,
        created_at: at(8, 0),
        updated_at: at(8, 0),
    };
    round_trip!(
        db,
        todos,
        todos::Model {
            notes: Some(b"2 litres".to_vec()),
            due_date: Some(date(24)),
            due_at: Some(at(18, 0)),
            priority: Priority::High,
            completed: true,
            completed_at: Some(at(9, 9)),
            ..todo(0)
        }
    );
    // Positions are not unique (a reorder rewrites them in one transaction).
    round_trip!(db, todos, todo(0));

    round_trip!(
        db,
        push_channels,
        push_channels::Model {
            id: Uuid::now_v7(),
            calendar_id: source.id,
            channel_id: "channel-1".into(),
            resource_id: "resource-1".into(),
            token: vec![7; 32],
            expires_at: at(20, 0),
            stopped_at: Some(at(19, 0)),
            created_at: at(8, 0),
        }
    );

    let session = |id: &str, user_id: Option<Uuid>| sessions::Model {
        id: id.into(),
        user_id,
        data: vec![0x81, 0xa1, b'k'],
        expires_at: at(23, 0),
        user_agent: None,
        created_at: at(8, 0),
        last_seen_at: at(8, 0),
    };
    round_trip!(
        db,
        sessions,
        sessions::Model {
            user_agent: Some("Firefox".into()),
            ..session("signed-in", Some(user.id))
        }
    );
    round_trip!(db, sessions, session("anonymous", None));

    let job = |dedupe_key: Option<&str>| jobs::Model {
        id: Uuid::now_v7(),
        kind: "sync_run".into(),
        payload: json!({ "config_id": config.id }),
        dedupe_key: dedupe_key.map(Into::into),
        status: JobStatus::Queued,
        run_at: at(10, 0),
        attempts: 0,
        max_attempts: 5,
        lease_owner: None,
        lease_expires_at: None,
        last_error: None,
        created_at: at(8, 0),
        updated_at: at(8, 0),
        concurrency_key: None,
    };
    round_trip!(
        db,
        jobs,
        jobs::Model {
            status: JobStatus::Failed,
            attempts: 5,
            lease_owner: Some("worker-1".into()),
            lease_expires_at: Some(at(10, 5)),
            last_error: Some("boom".into()),
            ..job(Some("sync:1"))
        }
    );
    // NULL keys never collide; equal keys do.
    round_trip!(db, jobs, job(None));
    round_trip!(db, jobs, job(None));
    assert!(
        job(Some("sync:1"))
            .into_active_model()
            .reset_all()
            .insert(db)
            .await
            .is_err()
    );

    // Deleting a config takes its runs and links, and unmarks its mirrors.
    sync_configs::Entity::delete_by_id(config.id)
        .exec(db)
        .await
        .unwrap();
    assert_eq!(count(db, sync_runs::Entity).await, 0);
    assert_eq!(count(db, event_links::Entity).await, 0);
    let unmarked = events::Entity::find_by_id(timed.id)
        .one(db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(unmarked.mirror_config_id, None);

    // Search entries: opaque bytes in, the same bytes out.
    let entry = event_search_tokens::Model {
        event_id: timed.id,
        token: (0u8..16).collect(),
        key_id: "key-1".into(),
    };
    let inserted = entry
        .clone()
        .into_active_model()
        .reset_all()
        .insert(db)
        .await
        .unwrap();
    assert_eq!(inserted, entry);
    let found = event_search_tokens::Entity::find_by_id((entry.event_id, entry.token.clone()))
        .one(db)
        .await
        .unwrap();
    assert_eq!(found, Some(entry));

    // Deleting a user takes everything that is theirs, and only that.
    users::Entity::delete_by_id(user.id).exec(db).await.unwrap();
    assert_eq!(count(db, users::Entity).await, 1);
    assert_eq!(count(db, google_accounts::Entity).await, 1);
    assert_eq!(count(db, calendars::Entity).await, 0);
    assert_eq!(count(db, events::Entity).await, 0);
    assert_eq!(count(db, event_search_tokens::Entity).await, 0);
    assert_eq!(count(db, push_channels::Entity).await, 0);
    assert_eq!(count(db, todo_lists::Entity).await, 0);
    assert_eq!(count(db, todos::Entity).await, 0);
    assert_eq!(
        sessions::Entity::find()
            .all(db)
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.id)
            .collect::<Vec<_>>(),
        vec!["anonymous".to_owned()]
    );
    assert_eq!(count(db, jobs::Entity).await, 3);
    assert_eq!(
        count(db, event_change_sequences::Entity).await,
        1,
        "the user's counter goes with them, the other user's stays"
    );
}
