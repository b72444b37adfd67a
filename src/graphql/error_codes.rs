//! Every error a client receives carries a contract code in `extensions.code`, over POST and the
//! websocket alike, and no meaningless position.
//!
//! [`CodedErrors`] wraps the executor every transport runs operations through. Errors with no code of
//! their own were raised before any resolver ran (syntax, validation, depth and complexity limits) or
//! while a resolver read its arguments: they are the client's to fix (`BAD_USER_INPUT`). Anything else is
//! a server fault, logged here and answered as `INTERNAL` without its details.

use std::sync::Arc;

use async_graphql::{Data, Executor, Request, Response, ServerError, Value};
use futures::{StreamExt, stream::BoxStream};

/// An executor whose every error carries a code.
#[derive(Clone)]
pub struct CodedErrors<E> {
    inner: E,
}

impl<E: Executor> CodedErrors<E> {
    pub fn new(inner: E) -> Self {
        Self { inner }
    }
}

impl<E: Executor> Executor for CodedErrors<E> {
    async fn execute(&self, request: Request) -> Response {
        let mut response = self.inner.execute(request).await;
        label_uncoded_errors(&mut response.errors);
        response
    }

    fn execute_stream(
        &self,
        request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        self.inner
            .execute_stream(request, session_data)
            .map(|mut response| {
                label_uncoded_errors(&mut response.errors);
                response
            })
            .boxed()
    }
}

/// Codes the errors that have none and drops positions that are not in the document.
fn label_uncoded_errors(errors: &mut [ServerError]) {
    for error in errors {
        // Line 0 is not a place in the document (some request-level errors carry it).
        error.locations.retain(|location| location.line > 0);
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_some() {
            continue;
        }
        if is_client_error(&error.path, &error.message) {
            extensions.set("code", Value::from("BAD_USER_INPUT"));
        } else {
            tracing::error!(message = %error.message, path = ?error.path, "uncoded error in a resolver");
            extensions.set("code", Value::from("INTERNAL"));
            error.message = "internal error".to_owned();
        }
    }
}

/// Requests fail before execution with no path; an argument that does not parse fails at execution with
/// async-graphql's "Failed to parse" message.
fn is_client_error(path: &[async_graphql::PathSegment], message: &str) -> bool {
    path.is_empty() || message.starts_with("Failed to parse")
}

#[cfg(test)]
mod tests {
    use async_graphql::{PathSegment, Pos};

    use super::*;

    fn labelled(error: ServerError) -> ServerError {
        let mut errors = [error];
        label_uncoded_errors(&mut errors);
        let [error] = errors;
        error
    }

    fn code(error: &ServerError) -> Option<String> {
        match error.extensions.as_ref()?.get("code")? {
            Value::String(code) => Some(code.clone()),
            _ => None,
        }
    }

    #[test]
    fn errors_before_execution_are_the_clients() {
        let error = labelled(ServerError::new(
            "Unknown field \"nope\"",
            Some(Pos { line: 1, column: 3 }),
        ));
        assert_eq!(code(&error).as_deref(), Some("BAD_USER_INPUT"));
        assert_eq!(error.message, "Unknown field \"nope\"");
    }

    #[test]
    fn arguments_that_do_not_parse_are_the_clients() {
        let mut error = ServerError::new("Failed to parse \"Date\": expected a date as yyyy-mm-dd", None);
        error.path = vec![PathSegment::Field("todos".into())];
        let error = labelled(error);
        assert_eq!(code(&error).as_deref(), Some("BAD_USER_INPUT"));
    }

    #[test]
    fn other_uncoded_resolver_errors_are_internal_and_say_nothing() {
        let mut error = ServerError::new("Data `chronos::session::TypedSession` does not exist.", None);
        error.path = vec![PathSegment::Field("signOut".into())];
        let error = labelled(error);
        assert_eq!(code(&error).as_deref(), Some("INTERNAL"));
        assert_eq!(error.message, "internal error");
    }

    #[test]
    fn positions_outside_the_document_are_dropped() {
        let error = labelled(ServerError::new("bad request", Some(Pos { line: 0, column: 0 })));
        assert!(error.locations.is_empty());
        let error = labelled(ServerError::new("bad field", Some(Pos { line: 2, column: 5 })));
        assert_eq!(error.locations, vec![Pos { line: 2, column: 5 }]);
    }

    #[test]
    fn coded_errors_keep_their_code() {
        let mut error = ServerError::new("not found", None);
        error.path = vec![PathSegment::Field("event".into())];
        error
            .extensions
            .get_or_insert_with(Default::default)
            .set("code", Value::from("NOT_FOUND"));
        let error = labelled(error);
        assert_eq!(code(&error).as_deref(), Some("NOT_FOUND"));
        assert_eq!(error.message, "not found");
    }
}
