//! GraphQL types and resolvers of the accounts domain.

use crate::graphql::{
    ContextExt as _, list_cost, parse_id, scalars::DateTime as GqlDateTime, unpaged_complexity,
};
use async_graphql::{ComplexObject, Context, Enum, ID, Object, SimpleObject};
use chrono::Utc;
use sea_orm::EntityTrait;
use uuid::Uuid;

use super::{service, sessions, signin};
use crate::{
    entities::{enums::AccountStatus as DbAccountStatus, google_accounts, users},
    error::{AppError, AppResult},
    graphql::ClientInfo,
    session::TypedSession,
};

/// A person using Chronos. One user may connect several Google accounts.
#[derive(SimpleObject, Clone)]
pub struct User {
    pub id: ID,
    /// Email of the Google account the user first signed in with.
    pub email: String,
    pub name: Option<String>,
    pub created_at: GqlDateTime,
}

impl From<users::Model> for User {
    fn from(m: users::Model) -> Self {
        Self {
            id: ID(m.id.to_string()),
            email: m.email,
            name: m.name,
            created_at: m.created_at.into(),
        }
    }
}

/// Whether Chronos can act on a Google account.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum AccountStatus {
    Active,
    /// Google refused the stored grant: connect the account again.
    NeedsReauth,
}

/// A Google account connected to the signed-in user.
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct GoogleAccount {
    pub id: ID,
    pub email: String,
    pub name: Option<String>,
    pub status: AccountStatus,
}

#[ComplexObject]
impl GoogleAccount {
    /// The account's calendars as last listed from Google (see `refreshCalendars`).
    #[graphql(complexity = "unpaged_complexity(list_cost::CALENDARS, child_complexity)")]
    async fn calendars(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<crate::calendars::Calendar>> {
        crate::calendars::AccountCalendarsLoader::load_in(ctx, parse_id(&self.id, "account")?).await
    }
}

impl From<google_accounts::Model> for GoogleAccount {
    fn from(m: google_accounts::Model) -> Self {
        Self {
            id: ID(m.id.to_string()),
            email: m.email,
            name: m.name,
            status: match m.status {
                DbAccountStatus::Active => AccountStatus::Active,
                DbAccountStatus::NeedsReauth => AccountStatus::NeedsReauth,
            },
        }
    }
}

/// Where to send the browser to continue with Google.
#[derive(SimpleObject)]
pub struct AuthRedirect {
    pub url: String,
}

/// A signed-in browser session of the user.
#[derive(SimpleObject)]
#[graphql(name = "Session")]
pub struct SessionInfo {
    /// Opaque; not the cookie value.
    pub id: ID,
    /// The session making this request.
    pub current: bool,
    pub user_agent: Option<String>,
    pub created_at: GqlDateTime,
    pub last_seen_at: GqlDateTime,
}

#[derive(Default)]
pub struct AccountsQuery;

#[Object]
impl AccountsQuery {
    /// The signed-in user, or null when signed out.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        let Some(user_id) = ctx.viewer()?.user_id else {
            return Ok(None);
        };
        let state = ctx.state()?;
        let user = users::Entity::find_by_id(user_id)
            .one(&state.db)
            .await
            .map_err(AppError::from)?;
        Ok(user.map(User::from))
    }

    /// The signed-in user's connected Google accounts.
    #[graphql(complexity = "unpaged_complexity(list_cost::ACCOUNTS, child_complexity)")]
    async fn accounts(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<GoogleAccount>> {
        let user_id = ctx.user_id()?;
        let state = ctx.state()?;
        Ok(service::list(&state.db, user_id)
            .await?
            .into_iter()
            .map(GoogleAccount::from)
            .collect())
    }

    /// The signed-in user's sessions, most recently active first.
    #[graphql(complexity = "unpaged_complexity(list_cost::SESSIONS, child_complexity)")]
    async fn sessions(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<SessionInfo>> {
        let viewer = ctx.viewer()?;
        let user_id = viewer.require_user()?;
        let state = ctx.state()?;
        let list = sessions::list(&state.db, user_id, viewer.session_id.as_deref(), Utc::now()).await?;
        Ok(list
            .into_iter()
            .map(|s| SessionInfo {
                id: ID(s.public_id),
                current: s.current,
                user_agent: s.user_agent,
                created_at: s.created_at.into(),
                last_seen_at: s.last_seen_at.into(),
            })
            .collect())
    }
}

/// The browser session a cookie-changing operation works on. Only POST carries one: over the websocket
/// these operations are refused with what to do instead.
fn http_session<'a>(ctx: &Context<'a>) -> AppResult<&'a TypedSession> {
    ctx.data::<TypedSession>().map_err(|_| {
        AppError::bad_input(
            "operation",
            "sign-in, connect and sign-out change the browser's session cookie: send them as POST /graphql, \
             not over the websocket",
        )
    })
}

/// Starts a sign-in (or, with `connect_for`, a connect) flow in the caller's session, within the sign-in
/// rate limit of the caller's address.
async fn start_flow(
    ctx: &Context<'_>,
    redirect_to: Option<String>,
    login_hint: Option<String>,
    connect_for: Option<Uuid>,
) -> async_graphql::Result<AuthRedirect> {
    let state = ctx.state()?;
    state.rate_limits.signin.check(&ctx.data::<ClientInfo>()?.ip)?;
    let session = http_session(ctx)?;
    let url = signin::start(
        state,
        session,
        redirect_to.as_deref(),
        login_hint.as_deref(),
        connect_for,
    )
    .await?;
    Ok(AuthRedirect { url })
}

#[derive(Default)]
pub struct AccountsMutation;

#[Object]
impl AccountsMutation {
    /// Begins signing in with Google: send the browser to the returned URL. Google returns it to
    /// `/auth/google/callback`, which signs in and redirects to `redirectTo` (an allowed frontend URL) or
    /// FRONTEND_URL, adding `?error=<code>` when sign-in failed.
    async fn start_google_sign_in(
        &self,
        ctx: &Context<'_>,
        redirect_to: Option<String>,
        login_hint: Option<String>,
    ) -> async_graphql::Result<AuthRedirect> {
        start_flow(ctx, redirect_to, login_hint, None).await
    }

    /// Like `startGoogleSignIn`, for a signed-in user: the Google account chosen at Google is added to
    /// this user. An account already connected to another user is refused (`?error=account_in_use`).
    async fn connect_google_account(
        &self,
        ctx: &Context<'_>,
        redirect_to: Option<String>,
        login_hint: Option<String>,
    ) -> async_graphql::Result<AuthRedirect> {
        let user_id = ctx.user_id()?;
        start_flow(ctx, redirect_to, login_hint, Some(user_id)).await
    }

    /// Revokes Chronos's access at Google and forgets the account and everything cached for it.
    async fn disconnect_google_account(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<bool> {
        let user_id = ctx.user_id()?;
        let state = ctx.state()?;
        service::disconnect(state, user_id, parse_id(&id, "account")?).await?;
        Ok(true)
    }

    /// Ends this session.
    async fn sign_out(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        sessions::sign_out(ctx.state()?, http_session(ctx)?).await?;
        Ok(true)
    }

    /// Ends one of the signed-in user's sessions at once.
    async fn revoke_session(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<bool> {
        let user_id = ctx.user_id()?;
        let state = ctx.state()?;
        sessions::revoke(state, user_id, id.as_str()).await?;
        Ok(true)
    }
}
