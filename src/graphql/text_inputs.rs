//! Plain text only: every string a client sends (in variables or written into the document) is refused
//! with `BAD_USER_INPUT` naming where it is when it holds a character plain text may not ([`text`]):
//! caught here, before anything runs, rather than late and differently per database.
//!
//! [`PlainTextInputs`] is an [`Admission`]: every transport applies it before anything executes.

use async_graphql::{
    Request, ServerError, Value,
    parser::types::{ExecutableDocument, Selection, SelectionSet},
};

use super::admission::{self, Admission};
use crate::{error::AppError, text};

/// Admits only requests whose strings are plain text.
#[derive(Clone, Copy)]
pub struct PlainTextInputs;

impl Admission for PlainTextInputs {
    fn admit(&self, mut request: Request) -> Result<Request, ServerError> {
        check(&mut request)?;
        Ok(request)
    }
}

fn check(request: &mut Request) -> Result<(), ServerError> {
    for (name, value) in request.variables.iter() {
        if let Some((path, c)) = forbidden_in(value, format!("${name}")) {
            return Err(forbidden(&path, c, None));
        }
    }
    // A document that does not parse is left to the schema, which reports the syntax error as usual.
    if let Ok(document) = request.parsed_query()
        && let Some((path, c, pos)) = forbidden_in_document(document)
    {
        return Err(forbidden(&path, c, Some(pos)));
    }
    Ok(())
}

fn forbidden(path: &str, c: char, pos: Option<async_graphql::Pos>) -> ServerError {
    let message = format!(
        "contains the control character U+{:04X}; text may hold tab and newline but no other control characters",
        c as u32
    );
    admission::refusal(AppError::bad_input(path, message), pos)
}

/// The first forbidden character in `value` and where it is (`$input.notes`, `title`, `ids[2]`).
fn forbidden_in(value: &Value, path: String) -> Option<(String, char)> {
    match value {
        Value::String(text) => text.chars().find(|c| text::is_forbidden(*c)).map(|c| (path, c)),
        Value::List(items) => items
            .iter()
            .enumerate()
            .find_map(|(index, item)| forbidden_in(item, format!("{path}[{index}]"))),
        Value::Object(fields) => fields
            .iter()
            .find_map(|(name, field)| forbidden_in(field, format!("{path}.{name}"))),
        _ => None,
    }
}

/// String literals of every argument in the document (operations and fragments, each looked at once).
fn forbidden_in_document(document: &ExecutableDocument) -> Option<(String, char, async_graphql::Pos)> {
    document
        .operations
        .iter()
        .map(|(_, operation)| &operation.node.selection_set.node)
        .chain(
            document
                .fragments
                .values()
                .map(|fragment| &fragment.node.selection_set.node),
        )
        .find_map(forbidden_in_selection)
}

fn forbidden_in_selection(set: &SelectionSet) -> Option<(String, char, async_graphql::Pos)> {
    set.items.iter().find_map(|selection| match &selection.node {
        Selection::Field(field) => field
            .node
            .arguments
            .iter()
            .find_map(|(name, value)| {
                // Variables are checked with the request's variables; here only what is written inline.
                let literal = value
                    .node
                    .clone()
                    .into_const_with(|_| Ok::<_, ()>(Value::Null))
                    .ok()?;
                forbidden_in(&literal, name.node.to_string()).map(|(path, c)| (path, c, value.pos))
            })
            .or_else(|| forbidden_in_selection(&field.node.selection_set.node)),
        Selection::InlineFragment(fragment) => forbidden_in_selection(&fragment.node.selection_set.node),
        Selection::FragmentSpread(_) => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(query: &str, variables: serde_json::Value) -> Option<String> {
        let mut request = Request::new(query).variables(async_graphql::Variables::from_json(variables));
        check(&mut request).err().map(|error| error.message)
    }

    #[test]
    fn control_characters_in_variables_are_refused_naming_the_field() {
        let query = "mutation($input: CreateTodoInput!) { createTodo(input: $input) { id } }";
        let message =
            refused(query, serde_json::json!({ "input": { "title": "a\u{0}b" } })).expect("refused");
        assert!(message.contains("$input.title"), "{message}");
        assert!(message.contains("U+0000"), "{message}");
        let message = refused(
            query,
            serde_json::json!({ "input": { "tags": ["ok", "\u{1b}[31m"] } }),
        )
        .expect("refused");
        assert!(message.contains("$input.tags[1]"), "{message}");
        assert_eq!(
            refused(
                query,
                serde_json::json!({ "input": { "title": "two\nlines\tand tabs" } })
            ),
            None
        );
    }

    #[test]
    fn control_characters_written_in_the_document_are_refused_naming_the_argument() {
        let message = refused(
            r#"mutation { createTodoList(input: { name: "x\u0000" }) { id } }"#,
            serde_json::json!({}),
        )
        .expect("refused");
        assert!(message.contains("input.name"), "{message}");
        let message = refused(
            r#"{ ...F } fragment F on Query { todos(first: 1) { edges { node { id } } } events(timeMin: "\u0007") { edges { cursor } } }"#,
            serde_json::json!({}),
        )
        .expect("refused");
        assert!(message.contains("timeMin"), "{message}");
        assert_eq!(refused(r#"{ me { id } }"#, serde_json::json!({})), None);
    }
}
