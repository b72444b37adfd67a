//! Checks every operation passes before it executes, on every transport: POST and the websocket run
//! operations through the same [`Admitted`] executors, so a rule written once holds on both.

use std::sync::Arc;

use async_graphql::{Data, Executor, Pos, Request, Response, ServerError};
use futures::{
    StreamExt,
    stream::{self, BoxStream},
};

use crate::error::AppError;

/// One rule an operation must pass before it runs.
pub trait Admission: Clone + Send + Sync + Unpin + 'static {
    /// The request to run (possibly marked), or the refusal to answer instead.
    fn admit(&self, request: Request) -> Result<Request, ServerError>;
}

/// `inner`, running only the requests `admission` lets through.
#[derive(Clone)]
pub struct Admitted<E, A> {
    inner: E,
    admission: A,
}

impl<E: Executor, A: Admission> Admitted<E, A> {
    pub fn new(inner: E, admission: A) -> Self {
        Self { inner, admission }
    }
}

impl<E: Executor, A: Admission> Executor for Admitted<E, A> {
    async fn execute(&self, request: Request) -> Response {
        match self.admission.admit(request) {
            Ok(request) => self.inner.execute(request).await,
            Err(refusal) => Response::from_errors(vec![refusal]),
        }
    }

    fn execute_stream(
        &self,
        request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        match self.admission.admit(request) {
            Ok(request) => self.inner.execute_stream(request, session_data),
            Err(refusal) => stream::once(async move { Response::from_errors(vec![refusal]) }).boxed(),
        }
    }
}

/// A refusal of the document as a whole (`BAD_USER_INPUT` on `query`, no position).
pub fn document_refusal(message: String) -> ServerError {
    refusal(AppError::bad_input("query", message), None)
}

/// A refusal as a GraphQL error: the error's contract code and client message, at `pos` when the cause
/// has a place in the document.
pub fn refusal(error: AppError, pos: Option<Pos>) -> ServerError {
    let error: async_graphql::Error = error.into();
    let mut refusal = ServerError::new(error.message, pos);
    refusal.extensions = error.extensions;
    refusal
}
