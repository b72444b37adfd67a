//! Fair sharing: a user's queries and mutations take one of their few in-flight slots while they execute,
//! over POST and the websocket alike, so one user cannot take the database pool from everyone else.
//! Subscriptions are long-lived streams that mostly wait: they hold no slot.

use std::sync::Arc;

use async_graphql::{
    Data, Executor, Request, Response, ServerError,
    parser::types::{DocumentOperations, OperationType},
};
use futures::{
    StreamExt,
    stream::{self, BoxStream},
};
use uuid::Uuid;

use super::measured::SubscriptionMark;
use crate::{error::AppError, rate_limit::InFlight};

/// `inner`, running each query or mutation of `user` in one of the user's slots. Signed-out callers have
/// no slots to count (what they may run does not reach the database; their rate is limited per address).
#[derive(Clone)]
pub struct InFlightLimited<E> {
    inner: E,
    slots: InFlight,
    user: Option<Uuid>,
}

impl<E: Executor> InFlightLimited<E> {
    pub fn new(inner: E, slots: InFlight, user: Option<Uuid>) -> Self {
        Self { inner, slots, user }
    }

    async fn execute_in_slot(&self, request: Request, session_data: Option<Arc<Data>>) -> Response {
        let _in_flight = crate::metrics::operation_in_flight();
        let _slot = match self.user {
            Some(user) => match self.slots.acquire(user).await {
                Ok(slot) => Some(slot),
                Err(refusal) => return Response::from_errors(vec![whole_request_refusal(refusal)]),
            },
            None => None,
        };
        self.once(request, session_data).await
    }

    /// The one response of a query or mutation, with the connection's data when there is some.
    async fn once(&self, request: Request, session_data: Option<Arc<Data>>) -> Response {
        match session_data {
            Some(data) => self
                .inner
                .execute_stream(request, Some(data))
                .next()
                .await
                .unwrap_or_default(),
            None => self.inner.execute(request).await,
        }
    }
}

impl<E: Executor> Executor for InFlightLimited<E> {
    async fn execute(&self, request: Request) -> Response {
        self.execute_in_slot(request, None).await
    }

    fn execute_stream(
        &self,
        mut request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        if is_subscription(&mut request) {
            if let Some(mark) = SubscriptionMark::of(&request) {
                mark.set();
            }
            return self.inner.execute_stream(request, session_data);
        }
        let this = self.clone();
        stream::once(async move { this.execute_in_slot(request, session_data).await }).boxed()
    }
}

/// Whether the operation to run is a subscription. The document is parsed once and kept on the request
/// for the schema; one that does not parse, or names no operation it has, is left to the schema to refuse.
fn is_subscription(request: &mut Request) -> bool {
    let name = request.operation_name.clone();
    let Ok(document) = request.parsed_query() else {
        return false;
    };
    let operation = match &document.operations {
        DocumentOperations::Single(operation) => Some(operation),
        DocumentOperations::Multiple(operations) => name
            .as_deref()
            .and_then(|name| operations.iter().find(|(n, _)| n.as_str() == name))
            .map(|(_, operation)| operation),
    };
    operation.is_some_and(|operation| operation.node.ty == OperationType::Subscription)
}

/// The refusal as a GraphQL error that answers for the whole request (HTTP 429 with Retry-After on POST).
fn whole_request_refusal(error: AppError) -> ServerError {
    let error = error.for_whole_request();
    let mut refusal = ServerError::new(error.message, None);
    refusal.source = error.source;
    refusal.extensions = error.extensions;
    refusal
}
