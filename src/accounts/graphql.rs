//! GraphQL types and resolvers of the accounts domain.

use async_graphql::{Context, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};
use sea_orm::EntityTrait;

use crate::{app::AppState, entities::users, error::AppError, session::Viewer};

/// A person using Chronos. One user may connect several Google accounts.
#[derive(SimpleObject, Clone)]
pub struct User {
    pub id: ID,
    /// Email of the Google account the user first signed in with.
    pub email: String,
    pub name: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<users::Model> for User {
    fn from(m: users::Model) -> Self {
        Self {
            id: ID(m.id.to_string()),
            email: m.email,
            name: m.name,
            created_at: m.created_at,
        }
    }
}

#[derive(Default)]
pub struct AccountsQuery;

#[Object]
impl AccountsQuery {
    /// The signed-in user, or null when signed out.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        let Some(user_id) = ctx.data::<Viewer>()?.user_id else {
            return Ok(None);
        };
        let state = ctx.data::<AppState>()?;
        let user = users::Entity::find_by_id(user_id)
            .one(&state.db)
            .await
            .map_err(AppError::from)?;
        Ok(user.map(User::from))
    }
}
