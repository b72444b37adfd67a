//! Every operation measured, over POST and the websocket alike: a query or mutation records its latency
//! under its operation name and result code (the first error's `extensions.code`, else `OK`); a
//! subscription counts as started (how many stay live is read from the buses at scrape time).

use std::{
    any::TypeId,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Instant,
};

use async_graphql::{Data, Executor, Request, Response, Value};
use futures::{StreamExt, stream::BoxStream};

use crate::metrics;

/// `inner`, measured. It wraps everything else, so the latency is the whole operation's and the code the
/// one the client receives.
#[derive(Clone)]
pub struct Measured<E> {
    inner: E,
}

impl<E: Executor> Measured<E> {
    pub fn new(inner: E) -> Self {
        Self { inner }
    }
}

/// Marks a request as a subscription. The document is parsed only after the document guard admitted it,
/// so this layer cannot tell; the layer that does ([`super::in_flight`]) sets the mark the request carries.
#[derive(Clone, Default)]
pub struct SubscriptionMark(Arc<AtomicBool>);

impl SubscriptionMark {
    /// The mark `request` carries, if it is measured.
    pub fn of(request: &Request) -> Option<&Self> {
        request
            .data
            .get(&TypeId::of::<Self>())
            .and_then(|data| data.downcast_ref::<Self>())
    }

    pub fn set(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

impl<E: Executor> Executor for Measured<E> {
    async fn execute(&self, request: Request) -> Response {
        let operation = metrics::operation_label(request.operation_name.as_deref());
        let started = Instant::now();
        let response = self.inner.execute(request).await;
        metrics::graphql_operation(operation, result_code(&response), started.elapsed());
        response
    }

    fn execute_stream(
        &self,
        mut request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        let operation = metrics::operation_label(request.operation_name.as_deref());
        let mark = SubscriptionMark::default();
        request.data.insert(mark.clone());
        let started = Instant::now();
        // The inner layers admit and classify the request before they return the stream.
        let responses = self.inner.execute_stream(request, session_data);
        if mark.is_set() {
            metrics::graphql_subscription_started(operation);
            return responses;
        }
        // A query or mutation answers once.
        let mut pending = Some(operation);
        responses
            .map(move |response| {
                if let Some(operation) = pending.take() {
                    metrics::graphql_operation(operation, result_code(&response), started.elapsed());
                }
                response
            })
            .boxed()
    }
}

/// The first error's code, or `OK`. Codes are the server's own (every error carries one by then); a value
/// of another shape is labelled `OTHER` rather than trusted as a label.
fn result_code(response: &Response) -> String {
    let Some(error) = response.errors.first() else {
        return "OK".to_owned();
    };
    match error
        .extensions
        .as_ref()
        .and_then(|extensions| extensions.get("code"))
    {
        Some(Value::String(code)) if metrics::is_operation_name(code) => code.clone(),
        _ => "OTHER".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::ServerError;

    use super::*;

    #[test]
    fn the_result_code_is_the_first_errors() {
        assert_eq!(result_code(&Response::new(Value::Null)), "OK");
        let coded = |code: &str| {
            let mut error = ServerError::new("no", None);
            error
                .extensions
                .get_or_insert_with(Default::default)
                .set("code", Value::from(code));
            error
        };
        let response = Response::from_errors(vec![coded("NOT_FOUND"), coded("FORBIDDEN")]);
        assert_eq!(result_code(&response), "NOT_FOUND");
        let response = Response::from_errors(vec![coded("not a code!")]);
        assert_eq!(result_code(&response), "OTHER");
        let response = Response::from_errors(vec![ServerError::new("uncoded", None)]);
        assert_eq!(result_code(&response), "OTHER");
    }
}
