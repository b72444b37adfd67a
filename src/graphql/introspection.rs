//! Whether a deployment publishes its schema (`GRAPHQL_INTROSPECTION`), applied to every transport.
//!
//! [`Introspection`] is an [`Admission`] that POST and the websocket both apply.
//! When introspection is off, each request is marked with async-graphql's own
//! [`Request::disable_introspection`], which guarantees `__schema` / `__type` never resolve. On its own that
//! answers `null` without saying why, so a document that asks for them is refused first with a `FORBIDDEN`
//! error at the field's position: a client learns the schema is not published rather than that it is empty.

use std::collections::HashSet;

use async_graphql::{
    Request, ServerError,
    parser::types::{ExecutableDocument, Selection, SelectionSet},
};

use super::admission::{self, Admission};
use crate::error::AppError;

/// The schema-describing root fields. `__typename` is not among them: it names one object's type only,
/// and clients add it to every selection.
const INTROSPECTION_FIELDS: [&str; 2] = ["__schema", "__type"];

/// Admits introspection only when `allowed`.
#[derive(Clone, Copy)]
pub struct Introspection {
    pub allowed: bool,
}

impl Admission for Introspection {
    fn admit(&self, request: Request) -> Result<Request, ServerError> {
        if self.allowed {
            return Ok(request);
        }
        // The document is parsed once here and kept on the request for the schema. A document that does not
        // parse is left to the schema, which reports the syntax error as usual.
        let mut request = request;
        if let Ok(document) = request.parsed_query()
            && let Some(pos) = introspection_position(document)
        {
            return Err(admission::refusal(
                AppError::Forbidden(
                    "introspection is disabled on this server (GRAPHQL_INTROSPECTION)".into(),
                ),
                Some(pos),
            ));
        }
        Ok(request.disable_introspection())
    }
}

/// Where any operation of the document selects `__schema` or `__type` on its root, through fragments too.
/// These fields exist only on the query root, so only root selection sets need looking at; each fragment is
/// looked at once, so the time is linear in the document's size whatever its spreads.
fn introspection_position(document: &ExecutableDocument) -> Option<async_graphql::Pos> {
    let mut seen = HashSet::new();
    document
        .operations
        .iter()
        .find_map(|(_, operation)| find_in(&operation.node.selection_set.node, document, &mut seen))
}

fn find_in<'a>(
    set: &'a SelectionSet,
    document: &'a ExecutableDocument,
    seen: &mut HashSet<&'a str>,
) -> Option<async_graphql::Pos> {
    set.items.iter().find_map(|selection| match &selection.node {
        Selection::Field(field) => INTROSPECTION_FIELDS
            .contains(&field.node.name.node.as_str())
            .then_some(field.pos),
        Selection::InlineFragment(fragment) => find_in(&fragment.node.selection_set.node, document, seen),
        Selection::FragmentSpread(spread) => {
            let name = spread.node.fragment_name.node.as_str();
            if !seen.insert(name) {
                return None;
            }
            let fragment = document.fragments.get(&spread.node.fragment_name.node)?;
            find_in(&fragment.node.selection_set.node, document, seen)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position(query: &str) -> Option<(usize, usize)> {
        let document = async_graphql::parser::parse_query(query).expect("valid document");
        introspection_position(&document).map(|pos| (pos.line, pos.column))
    }

    #[test]
    fn finds_introspection_at_the_root_and_through_fragments() {
        assert_eq!(position("{ __schema { queryType { name } } }"), Some((1, 3)));
        assert_eq!(position("{ t: __type(name: \"Query\") { name } }"), Some((1, 3)));
        assert_eq!(
            position("{ ... on Query { __schema { types { name } } } }"),
            Some((1, 18))
        );
        assert_eq!(
            position(
                "query A { me { id } }\nquery B { ...F }\nfragment F on Query { __schema { description } }"
            ),
            Some((3, 23))
        );
    }

    #[test]
    fn ignores_typename_and_ordinary_fields_and_survives_fragment_cycles() {
        assert_eq!(position("{ __typename me { id __typename } }"), None);
        assert_eq!(position("mutation { signOut }"), None);
        assert_eq!(
            position("{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }"),
            None
        );
    }
}
