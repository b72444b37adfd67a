//! GraphQL types, loaders and resolvers of the calendars domain.

use crate::graphql::{
    ContextExt as _, list_cost, parse_id, scalars::DateTime as GqlDateTime, unpaged_complexity,
};
use std::collections::HashMap;

use async_graphql::{
    Context, Enum, ID, InputObject, Object, SimpleObject, Subscription,
    dataloader::{DataLoader, Loader},
};
use futures::{Stream, StreamExt as _};
use sea_orm::{ColumnTrait, DatabaseConnection, QueryFilter, QueryOrder};
use uuid::Uuid;

use super::{
    list::{self, CacheState, ListedCalendar},
    service::{self, CalendarSettings},
};
use crate::{entities::calendars, error::AppError, state::AppState};

/// A calendar of one of the user's Google accounts, as Google's calendar list describes it.
#[derive(SimpleObject, Clone, Debug, PartialEq, Eq)]
pub struct Calendar {
    /// Opaque Chronos id of the calendar.
    pub id: ID,
    /// The Google account the calendar is listed in.
    pub account_id: ID,
    /// Google's calendar id (the account's email for its primary calendar).
    pub google_calendar_id: String,
    /// The name the user sees (their override of the calendar's name, if any).
    pub summary: String,
    /// IANA time zone of the calendar.
    pub time_zone: Option<String>,
    /// The account's access: `owner`, `writer`, `reader` or `freeBusyReader`.
    pub access_role: String,
    /// Whether this is the account's primary calendar.
    pub primary: bool,
    /// Colour of the calendar, `#rrggbb`.
    pub background_color: Option<String>,
    /// Whether `freeBusy` and `freeSlots` count the calendar when no calendars are named. Primary
    /// calendars count until the user says otherwise, other calendars once the user says so
    /// (`updateCalendar`).
    pub include_in_free_busy: bool,
    /// When the calendar's events were last listed from Google; null until the first listing finished.
    pub last_synced_at: Option<GqlDateTime>,
    /// How far Chronos' copy of the calendar's events is: `PENDING` while the first listing is queued or
    /// running (show "loading", not an empty week), `READY` once listed, `FAILED` when the account must be
    /// connected again before the copy can refresh.
    pub cache_status: CacheStatus,
    /// When the cached events were last brought up to date with Google (the time they are as of); null
    /// until the first listing finished.
    pub cached_at: Option<GqlDateTime>,
}

/// How far a calendar's cached events are.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum CacheStatus {
    /// The calendar is known, its events are still being listed for the first time.
    Pending,
    /// The events are cached; changes at Google keep arriving in the background.
    Ready,
    /// The cache cannot refresh: the calendar's Google account must be connected again.
    Failed,
}

impl From<CacheState> for CacheStatus {
    fn from(state: CacheState) -> Self {
        match state {
            CacheState::Pending => Self::Pending,
            CacheState::Ready => Self::Ready,
            CacheState::Failed => Self::Failed,
        }
    }
}

impl From<ListedCalendar> for Calendar {
    fn from(listed: ListedCalendar) -> Self {
        let cache_status = listed.cache_state().into();
        let m = listed.calendar;
        let include_in_free_busy = m.includes_in_free_busy();
        Self {
            id: ID(m.id.to_string()),
            account_id: ID(m.account_id.to_string()),
            google_calendar_id: m.google_calendar_id,
            summary: m.summary,
            time_zone: m.time_zone,
            access_role: m.access_role,
            primary: m.is_primary,
            background_color: m.background_color,
            include_in_free_busy,
            last_synced_at: m.last_synced_at.map(Into::into),
            cache_status,
            cached_at: m.last_synced_at.map(Into::into),
        }
    }
}

/// Loads the calendars of one user by calendar id; another user's calendar loads as missing.
///
/// Build one per request ([`CalendarLoader::new`]), or take the request's with [`CalendarLoader::load_in`].
pub struct CalendarsById {
    db: DatabaseConnection,
    user_id: Uuid,
}

impl Loader<Uuid> for CalendarsById {
    type Value = Calendar;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Calendar>, Self::Error> {
        let rows = list::listed_by(self.user_id)
            .filter(calendars::Column::Id.is_in(keys.iter().copied()))
            .into_model::<ListedCalendar>()
            .all(&self.db)
            .await
            .map_err(AppError::from)?;
        Ok(rows
            .into_iter()
            .map(|row| (row.calendar.id, Calendar::from(row)))
            .collect())
    }
}

/// Per-request loader of calendars by id, scoped to the signed-in user (its cache must not outlive
/// the request, or it would serve one user's calendars to another).
pub struct CalendarLoader(DataLoader<CalendarsById>);

impl CalendarLoader {
    pub fn new(db: DatabaseConnection, user_id: Uuid) -> Self {
        Self(DataLoader::new(CalendarsById { db, user_id }, tokio::spawn))
    }

    pub async fn load(&self, id: Uuid) -> async_graphql::Result<Option<Calendar>> {
        self.0.load_one(id).await
    }

    /// The calendar `id` of the signed-in user through the request's loader (inserted as request data),
    /// or through a loader of its own when the request carries none (no batching then).
    pub async fn load_in(ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<Option<Calendar>> {
        if let Some(loader) = ctx.data_opt::<CalendarLoader>() {
            return loader.load(id).await;
        }
        let user_id = ctx.user_id()?;
        let state = ctx.state()?;
        Self::new(state.db.clone(), user_id).load(id).await
    }
}

/// Loads the calendars of Google accounts by account id, scoped to one user.
pub struct CalendarsByAccount {
    db: DatabaseConnection,
    user_id: Uuid,
}

impl Loader<Uuid> for CalendarsByAccount {
    type Value = Vec<Calendar>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Vec<Calendar>>, Self::Error> {
        let rows = list::listed_by(self.user_id)
            .filter(calendars::Column::AccountId.is_in(keys.iter().copied()))
            .order_by_desc(calendars::Column::IsPrimary)
            .order_by_asc(calendars::Column::Summary)
            .order_by_asc(calendars::Column::Id)
            .into_model::<ListedCalendar>()
            .all(&self.db)
            .await
            .map_err(AppError::from)?;
        let mut by_account: HashMap<Uuid, Vec<Calendar>> = HashMap::new();
        for row in rows {
            by_account
                .entry(row.calendar.account_id)
                .or_default()
                .push(row.into());
        }
        Ok(by_account)
    }
}

/// Per-request loader of each Google account's calendars, scoped to the signed-in user.
pub struct AccountCalendarsLoader(DataLoader<CalendarsByAccount>);

impl AccountCalendarsLoader {
    pub fn new(db: DatabaseConnection, user_id: Uuid) -> Self {
        Self(DataLoader::new(CalendarsByAccount { db, user_id }, tokio::spawn))
    }

    /// The calendars of the signed-in user's account `account_id` (empty for anyone else's account),
    /// through the request's loader when it carries one.
    pub async fn load_in(ctx: &Context<'_>, account_id: Uuid) -> async_graphql::Result<Vec<Calendar>> {
        let loaded = match ctx.data_opt::<AccountCalendarsLoader>() {
            Some(loader) => loader.0.load_one(account_id).await?,
            None => {
                let user_id = ctx.user_id()?;
                let state = ctx.state()?;
                Self::new(state.db.clone(), user_id)
                    .0
                    .load_one(account_id)
                    .await?
            }
        };
        Ok(loaded.unwrap_or_default())
    }
}

/// The calendars domain's per-request data: add it to every GraphQL request of a signed-in user
/// (`request.data(...)` for each loader) so sibling fields share one batched query.
pub fn request_loaders(state: &AppState, user_id: Uuid) -> (CalendarLoader, AccountCalendarsLoader) {
    (
        CalendarLoader::new(state.db.clone(), user_id),
        AccountCalendarsLoader::new(state.db.clone(), user_id),
    )
}

#[derive(Default)]
pub struct CalendarsQuery;

#[Object]
impl CalendarsQuery {
    /// The signed-in user's calendars: of one Google account, or of all of them when `accountId` is
    /// omitted. Primary calendars first, then by name.
    #[graphql(complexity = "unpaged_complexity(list_cost::CALENDARS, child_complexity)")]
    async fn calendars(
        &self,
        ctx: &Context<'_>,
        account_id: Option<ID>,
    ) -> async_graphql::Result<Vec<Calendar>> {
        let user_id = ctx.user_id()?;
        let state = ctx.state()?;
        let account_id = account_id.map(|id| parse_id(&id, "account")).transpose()?;
        let rows = service::calendars(state, user_id, account_id).await?;
        Ok(rows.into_iter().map(Calendar::from).collect())
    }
}

/// The user's settings of a calendar; omitted (or null) fields stay as they are.
#[derive(InputObject, Clone, Debug)]
pub struct UpdateCalendarInput {
    /// Whether `freeBusy` and `freeSlots` count the calendar when no calendars are named.
    pub include_in_free_busy: Option<bool>,
}

#[derive(Default)]
pub struct CalendarsSubscription;

#[Subscription]
impl CalendarsSubscription {
    /// The signed-in user's calendars (all accounts, ordered as `calendars`), live: the list as it is
    /// first, then the whole list again whenever it changed: a calendar appeared, disappeared or changed at
    /// Google (name, colour, time zone, access), its events finished caching (`cacheStatus` PENDING →
    /// READY), or its account needs reconnecting (FAILED; noticed within 30 s). Replace the list you hold
    /// with each message.
    #[graphql(complexity = "unpaged_complexity(list_cost::CALENDARS, child_complexity)")]
    async fn calendars_changed(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<Vec<Calendar>>> + use<>> {
        let user_id = ctx.user_id()?;
        let state = ctx.state()?.clone();
        Ok(list::live(state, user_id).map(|listed| {
            listed
                .map(|rows| rows.into_iter().map(Calendar::from).collect())
                .map_err(Into::into)
        }))
    }
}

#[derive(Default)]
pub struct CalendarsMutation;

#[Object]
impl CalendarsMutation {
    /// Lists the account's calendars at Google again (only the changes since the last listing) and
    /// returns them. New calendars get their events cached in the background; calendars gone at Google are
    /// removed with their cached events and the sync configs using them.
    async fn refresh_calendars(
        &self,
        ctx: &Context<'_>,
        account_id: ID,
    ) -> async_graphql::Result<Vec<Calendar>> {
        let user_id = ctx.user_id()?;
        let state = ctx.state()?;
        let account_id = parse_id(&account_id, "account")?;
        let rows = service::refresh_calendars(state, user_id, account_id).await?;
        Ok(rows.into_iter().map(Calendar::from).collect())
    }

    /// Changes the user's own settings of one of their calendars (nothing changes at Google) and returns
    /// the calendar. Another user's calendar is NOT_FOUND.
    async fn update_calendar(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateCalendarInput,
    ) -> async_graphql::Result<Calendar> {
        let user_id = ctx.user_id()?;
        let state = ctx.state()?;
        let id = parse_id(&id, "calendar")?;
        let settings = CalendarSettings {
            include_in_free_busy: input.include_in_free_busy,
        };
        Ok(service::update_settings(state, user_id, id, settings)
            .await?
            .into())
    }
}
