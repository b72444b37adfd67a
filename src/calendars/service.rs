//! The calendars domain's entry points, for resolvers, jobs and the CLI alike.

use chrono::Utc;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect, sea_query::Expr};
use uuid::Uuid;

use super::{jobs, list, list::ListedCalendar};
use crate::{
    accounts::service::find_owned,
    entities::{calendars, enums::AccountStatus, google_accounts},
    error::{AppError, AppResult},
    state::AppState,
};

/// The user's calendars, of one account or of all of them. Accounts never listed yet (just signed in
/// or connected) get their first listing queued; their calendars appear once it ran.
pub async fn calendars(
    state: &AppState,
    user_id: Uuid,
    account_id: Option<Uuid>,
) -> AppResult<Vec<ListedCalendar>> {
    let rows = list::list_for_user(&state.db, user_id, account_id).await?;
    let mut never_listed = google_accounts::Entity::find()
        .select_only()
        .column(google_accounts::Column::Id)
        .filter(google_accounts::Column::UserId.eq(user_id))
        .filter(google_accounts::Column::Status.eq(AccountStatus::Active))
        .filter(google_accounts::Column::CalendarListSyncToken.is_null());
    if let Some(account_id) = account_id {
        never_listed = never_listed.filter(google_accounts::Column::Id.eq(account_id));
    }
    for account_id in never_listed.into_tuple::<Uuid>().all(&state.db).await? {
        jobs::enqueue_list_refresh(state, account_id).await?;
    }
    Ok(rows)
}

/// Lists the user's account `account_id` at Google again and returns its calendars. Calendars seen for
/// the first time get their events listed in the background.
pub async fn refresh_calendars(
    state: &AppState,
    user_id: Uuid,
    account_id: Uuid,
) -> AppResult<Vec<ListedCalendar>> {
    let account = find_owned(&state.db, user_id, account_id).await?;
    jobs::refresh_account_list(state, &account).await?;
    list::list_for_user(&state.db, user_id, Some(account_id)).await
}

/// The user's own settings of a calendar (Chronos keeps them; Google never sees them). `None`: unchanged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CalendarSettings {
    pub include_in_free_busy: Option<bool>,
}

/// Changes the settings of the user's calendar `calendar_id` (another user's is NOT_FOUND) and returns
/// the calendar.
pub async fn update_settings(
    state: &AppState,
    user_id: Uuid,
    calendar_id: Uuid,
    settings: CalendarSettings,
) -> AppResult<ListedCalendar> {
    list::find_owned_calendar(&state.db, user_id, calendar_id).await?;
    if let Some(include) = settings.include_in_free_busy {
        calendars::Entity::update_many()
            .col_expr(calendars::Column::IncludeInFreeBusy, Expr::value(include))
            .col_expr(calendars::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(calendars::Column::Id.eq(calendar_id))
            .exec(&state.db)
            .await?;
    }
    list::listed_by(user_id)
        .filter(calendars::Column::Id.eq(calendar_id))
        .into_model::<ListedCalendar>()
        .one(&state.db)
        .await?
        .ok_or(AppError::NotFound("calendar"))
}
