//! The calendars domain's entry points, for resolvers, jobs and the CLI alike.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use super::{jobs, list, list::ListedCalendar};
use crate::{
    accounts::service::find_owned,
    entities::{enums::AccountStatus, google_accounts},
    error::AppResult,
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
