//! What one operation may cost once it runs: a fresh [`WorkBudget`] for the work its document does not show
//! (series expansion, time), and a cap on the values its response holds, so no request grows without bound
//! in memory or in bytes. Part of the schema, so every transport runs under it.

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicUsize, Ordering},
};

use async_graphql::{
    Request, Response, ServerResult, Value,
    extensions::{
        Extension, ExtensionContext, ExtensionFactory, NextExecute, NextPrepareRequest, NextResolve,
        NextSubscribe, ResolveInfo,
    },
};
use futures::{StreamExt as _, stream::BoxStream};

use super::admission;
use crate::work_budget::WorkBudget;

/// Values (fields resolved, list items included) one response may hold: a full page of 500 events with
/// every field is about 20,000.
pub const MAX_OUTPUT_VALUES: usize = 100_000;

/// The extension factory: add to the schema with `.extension(RequestBudgets)`.
pub struct RequestBudgets;

impl ExtensionFactory for RequestBudgets {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Budgets::default())
    }
}

/// One per request (or subscription; then the output cap applies to each event).
#[derive(Default)]
struct Budgets {
    values: Arc<AtomicUsize>,
    exceeded: Arc<AtomicBool>,
}

fn too_large() -> Response {
    Response::from_errors(vec![admission::document_refusal(format!(
        "the response would hold more than {MAX_OUTPUT_VALUES} values; ask for fewer items or fields at once"
    ))])
}

#[async_graphql::async_trait::async_trait]
impl Extension for Budgets {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        next.run(ctx, request.data(WorkBudget::default())).await
    }

    /// Past the cap nothing more resolves (a field answers null without running, so its children never
    /// start); the response is then replaced by the one error.
    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        if self.values.fetch_add(1, Ordering::Relaxed) >= MAX_OUTPUT_VALUES {
            self.exceeded.store(true, Ordering::Relaxed);
            return Ok(None);
        }
        next.run(ctx, info).await
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let response = next.run(ctx, operation_name).await;
        if self.exceeded.load(Ordering::Relaxed) {
            return too_large();
        }
        response
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        let values = self.values.clone();
        let exceeded = self.exceeded.clone();
        next.run(ctx, stream)
            .map(move |response| {
                // Each event is resolved before it is yielded, so its count starts afresh after it.
                values.store(0, Ordering::Relaxed);
                if exceeded.swap(false, Ordering::Relaxed) {
                    too_large()
                } else {
                    response
                }
            })
            .boxed()
    }
}
