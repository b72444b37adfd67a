//! Response fields in the order the query asked for them, as the GraphQL spec's ordered result map
//! requires.
//!
//! async-graphql (7.2) resolves the fields of a selection set concurrently and inserts each into the result
//! map as it completes, so a slow field (one that waits on the database) can come after a later one. This
//! extension keeps the parsed operation and, once it ran, puts every object's keys back in the order of
//! the selection sets (fragments expanded in place, the first occurrence of a key deciding its position).
//! Resolution stays concurrent; only the finished map is reordered.

use std::sync::{Arc, Mutex, PoisonError};

use async_graphql::{
    Name, Request, Response, ServerResult, Value, Variables,
    extensions::{
        Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextPrepareRequest,
        NextSubscribe,
    },
    parser::types::{DocumentOperations, ExecutableDocument, Selection, SelectionSet},
};
use futures::{StreamExt as _, stream::BoxStream};

/// Deepest selection nesting reordered; the schema's depth limit is far below it.
const MAX_DEPTH: usize = 64;

/// The extension factory: add to the schema with `.extension(FieldOrder)`.
pub struct FieldOrder;

impl ExtensionFactory for FieldOrder {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(FieldOrderExtension::default())
    }
}

/// One per request (or subscription): the document parsed for it and the operation asked for. Shared
/// with the subscription's event stream, which outlives the hook calls.
#[derive(Default)]
struct FieldOrderExtension {
    seen: Arc<Mutex<Seen>>,
}

#[derive(Default)]
struct Seen {
    document: Option<ExecutableDocument>,
    operation_name: Option<String>,
}

impl FieldOrderExtension {
    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for FieldOrderExtension {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let request = next.run(ctx, request).await?;
        self.seen().operation_name = request.operation_name.clone();
        Ok(request)
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        self.seen().document = Some(document.clone());
        Ok(document)
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let mut response = next.run(ctx, operation_name).await;
        let document = self.seen().document.take();
        if let Some(document) = document {
            reorder_response(&mut response.data, &document, operation_name);
        }
        response
    }

    /// Each event of a subscription, once the stream has parsed its document.
    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        let seen = self.seen.clone();
        next.run(ctx, stream)
            .map(move |mut response| {
                let seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(document) = &seen.document {
                    reorder_response(&mut response.data, document, seen.operation_name.as_deref());
                }
                response
            })
            .boxed()
    }
}

/// Puts the keys of `data` (an operation's result) in the order of the operation's selection sets.
pub fn reorder_response(data: &mut Value, document: &ExecutableDocument, operation_name: Option<&str>) {
    let operation = match (&document.operations, operation_name) {
        (DocumentOperations::Single(operation), _) => Some(operation),
        (DocumentOperations::Multiple(operations), Some(name)) => operations.get(name),
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => {
            operations.values().next()
        }
        (DocumentOperations::Multiple(_), None) => None,
    };
    if let Some(operation) = operation {
        reorder(data, &[&operation.node.selection_set.node], document, 0);
    }
}

/// The response keys a merged selection set produces, in order, each with its fields' sub-selections.
type Plan<'a> = Vec<(&'a str, Vec<&'a SelectionSet>)>;

fn reorder(value: &mut Value, sets: &[&SelectionSet], document: &ExecutableDocument, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    let mut plan = Plan::new();
    for set in sets {
        collect(set, document, &mut plan, depth);
    }
    apply(value, &plan, document, depth);
}

fn collect<'a>(set: &'a SelectionSet, document: &'a ExecutableDocument, plan: &mut Plan<'a>, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    for selection in &set.items {
        match &selection.node {
            Selection::Field(field) => {
                let key = field.node.response_key().node.as_str();
                let index = match plan.iter().position(|(k, _)| *k == key) {
                    Some(index) => index,
                    None => {
                        plan.push((key, Vec::new()));
                        plan.len() - 1
                    }
                };
                if !field.node.selection_set.node.items.is_empty() {
                    plan[index].1.push(&field.node.selection_set.node);
                }
            }
            Selection::FragmentSpread(spread) => {
                if let Some(fragment) = document.fragments.get(&spread.node.fragment_name.node) {
                    collect(&fragment.node.selection_set.node, document, plan, depth + 1);
                }
            }
            Selection::InlineFragment(inline) => {
                collect(&inline.node.selection_set.node, document, plan, depth + 1);
            }
        }
    }
}

fn apply(value: &mut Value, plan: &Plan<'_>, document: &ExecutableDocument, depth: usize) {
    match value {
        Value::List(items) => {
            for item in items {
                apply(item, plan, document, depth);
            }
        }
        Value::Object(map) => {
            let position = |key: &Name| {
                plan.iter()
                    .position(|(k, _)| *k == key.as_str())
                    .unwrap_or(usize::MAX)
            };
            let mut entries: Vec<(Name, Value)> = std::mem::take(map).into_iter().collect();
            // Stable: keys the plan does not know (none expected) keep their relative order at the end.
            entries.sort_by_key(|(key, _)| position(key));
            for (key, child) in &mut entries {
                if let Some((_, sets)) = plan.iter().find(|(k, _)| *k == key.as_str())
                    && !sets.is_empty()
                {
                    reorder(child, sets, document, depth + 1);
                }
            }
            *map = entries.into_iter().collect();
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::parser::parse_query;

    use super::*;

    fn keys(value: &Value) -> Vec<String> {
        match value {
            Value::Object(map) => map.keys().map(|k| k.to_string()).collect(),
            _ => Vec::new(),
        }
    }

    fn object(pairs: &[(&str, Value)]) -> Value {
        Value::Object(pairs.iter().map(|(k, v)| (Name::new(*k), v.clone())).collect())
    }

    #[test]
    fn keys_follow_the_selection_sets_with_aliases_fragments_and_lists() {
        let document = parse_query(
            "query Q { b: me { id name } ...F accounts { ... on GoogleAccount { email id } } }
             fragment F on Query { calendars { summary id } me2: me { id } }",
        )
        .expect("query");
        let mut data = object(&[
            (
                "accounts",
                Value::List(vec![object(&[
                    ("id", Value::from("1")),
                    ("email", Value::from("a@x")),
                ])]),
            ),
            ("me2", object(&[("id", Value::from("u"))])),
            (
                "calendars",
                Value::List(vec![object(&[
                    ("id", Value::from("c")),
                    ("summary", Value::from("s")),
                ])]),
            ),
            (
                "b",
                object(&[("name", Value::from("n")), ("id", Value::from("u"))]),
            ),
        ]);
        reorder_response(&mut data, &document, Some("Q"));
        assert_eq!(keys(&data), ["b", "calendars", "me2", "accounts"]);
        let Value::Object(map) = &data else {
            unreachable!("an object")
        };
        assert_eq!(keys(&map["b"]), ["id", "name"]);
        let Value::List(calendars) = &map["calendars"] else {
            unreachable!("a list")
        };
        assert_eq!(keys(&calendars[0]), ["summary", "id"]);
        let Value::List(accounts) = &map["accounts"] else {
            unreachable!("a list")
        };
        assert_eq!(keys(&accounts[0]), ["email", "id"]);
    }
}
