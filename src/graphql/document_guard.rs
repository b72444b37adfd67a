//! Measures a document before async-graphql validates it, and refuses it above fixed limits.
//!
//! Validation works on the document with its fragments expanded, so a kilobyte whose fragments each spread
//! the previous one twice costs 2^n steps before any complexity limit is looked at. The guard measures in
//! time linear in the document's size: it counts the significant tokens first (stopping at the limit, so a
//! megabyte of aliases costs one pass of the lexer), then parses what is left and sizes every fragment once
//! (memoised), so the expanded counts are known without expanding anything.
//!
//! [`DocumentGuard`] is an [`Admission`]: every transport applies it before the other rules parse.

use std::collections::HashMap;

use apollo_parser::TokenKind;
use async_graphql::{
    Name, Request, ServerError,
    parser::types::{ExecutableDocument, Selection, SelectionSet},
};

use super::admission::{self, Admission};

/// The limits a document must stay within. Chronos's own client sends documents far below each.
#[derive(Clone, Copy, Debug)]
pub struct DocumentLimits {
    /// Bytes of the document text.
    pub max_bytes: usize,
    /// Significant tokens (names, punctuators, values; not whitespace, commas or comments).
    pub max_tokens: usize,
    /// Levels of `{`, `(` and `[` inside one another.
    pub max_nesting: usize,
    /// Field selections once every fragment spread is replaced by its fragment.
    pub max_expanded_fields: u64,
    /// Aliased field selections once fragments are expanded.
    pub max_expanded_aliases: u64,
    /// Fragment spreads written in the document.
    pub max_spreads: usize,
}

impl DocumentLimits {
    pub const DEFAULT: Self = Self {
        max_bytes: 64 * 1024,
        max_tokens: 2_000,
        max_nesting: 48,
        max_expanded_fields: 1_000,
        max_expanded_aliases: 100,
        max_spreads: 500,
    };
}

/// What the guard measured of a parsed document.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DocumentSize {
    pub expanded_fields: u64,
    pub expanded_aliases: u64,
}

/// Admits documents within [`DocumentLimits`].
#[derive(Clone, Copy)]
pub struct DocumentGuard {
    pub limits: DocumentLimits,
}

impl Default for DocumentGuard {
    fn default() -> Self {
        Self {
            limits: DocumentLimits::DEFAULT,
        }
    }
}

impl Admission for DocumentGuard {
    fn admit(&self, mut request: Request) -> Result<Request, ServerError> {
        let limits = self.limits;
        let bytes = request.query.len();
        if bytes > limits.max_bytes {
            return Err(too_large(format!(
                "is {bytes} bytes long; the limit is {} bytes",
                limits.max_bytes
            )));
        }
        let scanned = scan(&request.query, &limits);
        if scanned.tokens > limits.max_tokens {
            return Err(too_large(format!(
                "has more than {} tokens (names, punctuation and values)",
                limits.max_tokens
            )));
        }
        // The parser recurses once per level; this keeps its stack small whatever the input.
        if scanned.deepest > limits.max_nesting {
            return Err(too_large(format!(
                "nests braces, parentheses or brackets more than {} deep",
                limits.max_nesting
            )));
        }
        // Counted before parsing, and so before sizing, which recurses once per fragment in a chain.
        if scanned.spreads > limits.max_spreads {
            return Err(too_large(format!(
                "has more than {} fragment spreads",
                limits.max_spreads
            )));
        }
        // Parsed once here and kept on the request for the other rules and the schema. A document that does
        // not parse is left to the schema, which reports the syntax error as usual.
        let Ok(document) = request.parsed_query() else {
            return Ok(request);
        };
        let size = measure(document).map_err(|cycle| {
            admission::document_refusal(format!(
                "fragment `{cycle}` spreads itself (directly or through other fragments)"
            ))
        })?;
        if size.expanded_fields > limits.max_expanded_fields {
            return Err(too_large(format!(
                "selects {} fields once its fragments are expanded; the limit is {}",
                size.expanded_fields, limits.max_expanded_fields
            )));
        }
        if size.expanded_aliases > limits.max_expanded_aliases {
            return Err(too_large(format!(
                "has {} aliased fields once its fragments are expanded; the limit is {}",
                size.expanded_aliases, limits.max_expanded_aliases
            )));
        }
        Ok(request)
    }
}

fn too_large(what: String) -> ServerError {
    admission::document_refusal(format!("the document {what}"))
}

/// What one pass of the lexer saw: significant tokens, the deepest nesting of braces, parentheses and
/// brackets, and the fragment spreads written (`...Name`; `... on T` and `... {` are inline fragments).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Scan {
    pub tokens: usize,
    pub deepest: usize,
    pub spreads: usize,
}

impl Scan {
    fn over(&self, limits: &DocumentLimits) -> bool {
        self.tokens > limits.max_tokens
            || self.deepest > limits.max_nesting
            || self.spreads > limits.max_spreads
    }
}

/// Lexes `query` until it is done or past a limit (so a huge document costs no more than its first
/// `max_tokens` tokens and the whitespace between them). Lexical errors are skipped: the parser reports them.
pub fn scan(query: &str, limits: &DocumentLimits) -> Scan {
    let mut scan = Scan::default();
    let mut depth = 0usize;
    let mut after_spread = false;
    for token in apollo_parser::Lexer::new(query).flatten() {
        let kind = token.kind();
        match kind {
            TokenKind::Whitespace | TokenKind::Comment | TokenKind::Comma | TokenKind::Eof => continue,
            TokenKind::LCurly | TokenKind::LParen | TokenKind::LBracket => {
                depth += 1;
                scan.deepest = scan.deepest.max(depth);
            }
            TokenKind::RCurly | TokenKind::RParen | TokenKind::RBracket => {
                depth = depth.saturating_sub(1);
            }
            TokenKind::Name if after_spread && token.data() != "on" => scan.spreads += 1,
            _ => {}
        }
        after_spread = kind == TokenKind::Spread;
        scan.tokens += 1;
        if scan.over(limits) {
            break;
        }
    }
    scan
}

/// Every operation's fields and aliases with fragments expanded (each fragment sized once). Unused
/// fragments are counted too: validation looks at them. A fragment cycle is an error naming one fragment
/// of it.
pub fn measure(document: &ExecutableDocument) -> Result<DocumentSize, Name> {
    let mut sizer = Sizer {
        document,
        fragments: HashMap::new(),
    };
    let mut total = Expanded::default();
    for (_, operation) in document.operations.iter() {
        total = total.plus(sizer.selection_set(&operation.node.selection_set.node)?);
    }
    for name in document.fragments.keys() {
        total = total.plus(sizer.fragment(name)?);
    }
    Ok(DocumentSize {
        expanded_fields: total.fields,
        expanded_aliases: total.aliases,
    })
}

#[derive(Clone, Copy, Default)]
struct Expanded {
    fields: u64,
    aliases: u64,
}

impl Expanded {
    fn plus(self, other: Self) -> Self {
        Self {
            fields: self.fields.saturating_add(other.fields),
            aliases: self.aliases.saturating_add(other.aliases),
        }
    }
}

enum Fragment {
    Sizing,
    Sized(Expanded),
}

struct Sizer<'a> {
    document: &'a ExecutableDocument,
    fragments: HashMap<&'a str, Fragment>,
}

impl<'a> Sizer<'a> {
    fn selection_set(&mut self, set: &'a SelectionSet) -> Result<Expanded, Name> {
        let mut size = Expanded::default();
        for selection in &set.items {
            let part = match &selection.node {
                Selection::Field(field) => {
                    let own = Expanded {
                        fields: 1,
                        aliases: u64::from(field.node.alias.is_some()),
                    };
                    own.plus(self.selection_set(&field.node.selection_set.node)?)
                }
                Selection::InlineFragment(inline) => self.selection_set(&inline.node.selection_set.node)?,
                Selection::FragmentSpread(spread) => self.fragment(&spread.node.fragment_name.node)?,
            };
            size = size.plus(part);
        }
        Ok(size)
    }

    /// A fragment's expanded size, computed on first use. An unknown fragment counts nothing (validation
    /// reports it).
    fn fragment(&mut self, name: &'a Name) -> Result<Expanded, Name> {
        match self.fragments.get(name.as_str()) {
            Some(Fragment::Sized(size)) => return Ok(*size),
            Some(Fragment::Sizing) => return Err(name.clone()),
            None => {}
        }
        let Some(definition) = self.document.fragments.get(name) else {
            return Ok(Expanded::default());
        };
        self.fragments.insert(name.as_str(), Fragment::Sizing);
        let size = self.selection_set(&definition.node.selection_set.node)?;
        self.fragments.insert(name.as_str(), Fragment::Sized(size));
        Ok(size)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    };

    use async_graphql::{
        EmptyMutation, EmptySubscription, Object, Schema, ServerResult, Value,
        extensions::{Extension, ExtensionContext, ExtensionFactory, NextResolve, ResolveInfo},
        parser::parse_query,
    };
    use proptest::prelude::*;

    use super::*;

    fn size_of(query: &str) -> DocumentSize {
        measure(&parse_query(query).expect("valid document")).expect("no cycle")
    }

    fn admit(query: &str) -> Result<Request, ServerError> {
        DocumentGuard::default().admit(Request::new(query))
    }

    fn refusal_message(query: &str) -> String {
        let refusal = admit(query).expect_err("refused");
        assert!(
            refusal.locations.is_empty(),
            "no position for a whole-document refusal"
        );
        refusal.message
    }

    /// `levels` fragments, each spreading the one before twice: 2^levels fields once expanded.
    fn fragment_doubling(levels: usize) -> String {
        let mut query = String::from("query { me { ...F0 } }\nfragment F0 on User { id }\n");
        for level in 1..=levels {
            let before = level - 1;
            query.push_str(&format!(
                "fragment F{level} on User {{ ...F{before} ...F{before} }}\n"
            ));
        }
        query.replace("...F0 } }", &format!("...F{levels} }} }}"))
    }

    #[test]
    fn counts_fields_and_aliases_with_fragments_expanded() {
        let size =
            size_of("{ me { id ...A ...A } } fragment A on User { a: id email ... on User { b: id } }");
        // me, id, twice (a, email, b), and the definition itself once (validation looks at it).
        assert_eq!(size.expanded_fields, 2 + 2 * 3 + 3);
        assert_eq!(size.expanded_aliases, 2 * 2 + 2);
    }

    #[test]
    fn unused_fragments_count_once() {
        let size = size_of("{ me { id } } fragment Unused on User { id email }");
        assert_eq!(size.expanded_fields, 2 + 2);
    }

    fn scan_all(query: &str) -> Scan {
        let unlimited = DocumentLimits {
            max_tokens: usize::MAX,
            max_nesting: usize::MAX,
            max_spreads: usize::MAX,
            ..DocumentLimits::DEFAULT
        };
        scan(query, &unlimited)
    }

    #[test]
    fn spreads_are_counted_as_written_and_inline_fragments_are_not_spreads() {
        assert_eq!(scan_all(&fragment_doubling(10)).spreads, 1 + 2 * 10);
        let inline = "{ me { ... on User { id } ... @include(if: true) { id } ... { id } ...F } }";
        assert_eq!(scan_all(inline).spreads, 1);
    }

    #[test]
    fn fragment_doubling_is_sized_without_being_expanded() {
        // 2^26 fields in the operation, and 2^0 + ... + 2^26 in the definitions; sizing each fragment once
        // makes this instant.
        let size = size_of(&fragment_doubling(26));
        assert_eq!(size.expanded_fields, 1 + (1 << 26) + ((1 << 27) - 1));
        let message = refusal_message(&fragment_doubling(26));
        assert!(
            message.contains("fields once its fragments are expanded"),
            "{message}"
        );
        assert!(message.contains("the limit is 1000"), "{message}");
    }

    #[test]
    fn a_fragment_cycle_is_refused_by_name() {
        let message =
            refusal_message("{ me { ...A } } fragment A on User { ...B } fragment B on User { ...A }");
        assert!(message.contains("spreads itself"), "{message}");
    }

    #[test]
    fn an_ordinary_document_passes_and_stays_parsed() {
        let mut admitted = admit(
            "query Week($after: String) { me { id email } events(first: 10, after: $after) { edges { node { id } } } }",
        )
        .expect("admitted");
        assert!(admitted.parsed_query().is_ok());
    }

    #[test]
    fn each_limit_is_named_in_its_refusal() {
        let long = format!("{{ me {{ id }} }} #{}", "x".repeat(70 * 1024));
        assert!(refusal_message(&long).contains("bytes long; the limit is 65536 bytes"));

        let many_tokens = format!("{{ {} }}", "me { id } ".repeat(3_000));
        assert!(refusal_message(&many_tokens).contains("more than 2000 tokens"));

        let deep = format!("{}{}", "{ a ".repeat(60), "}".repeat(60));
        assert!(refusal_message(&deep).contains("more than 48 deep"));

        let aliases: String = (0..101).map(|i| format!("a{i}: me {{ id }} ")).collect();
        assert!(refusal_message(&format!("{{ {aliases} }}")).contains("101 aliased fields"));

        let spreads = format!(
            "{{ me {{ {} }} }} fragment A on User {{ id }}",
            "...A ".repeat(501)
        );
        assert!(refusal_message(&spreads).contains("more than 500 fragment spreads"));
    }

    #[test]
    fn comments_commas_and_whitespace_are_not_tokens() {
        let scanned = scan_all("# a comment\n{ me , { id } }");
        assert_eq!(
            scanned,
            Scan {
                tokens: 6,
                deepest: 2,
                spreads: 0
            }
        );
    }

    #[test]
    fn the_scan_stops_just_past_its_limits() {
        let limits = DocumentLimits {
            max_tokens: 10,
            max_nesting: 10,
            max_spreads: 10,
            ..DocumentLimits::DEFAULT
        };
        assert_eq!(scan(&"a ".repeat(1_000_000), &limits).tokens, 11);
        assert_eq!(scan(&"[".repeat(1_000_000), &limits).deepest, 11);
        let spreads_only = DocumentLimits {
            max_tokens: usize::MAX,
            ..limits
        };
        assert_eq!(scan(&"...F ".repeat(1_000_000), &spreads_only).spreads, 11);
    }

    /// A schema in which every object field leads to another object, to count what the executor resolves.
    struct Node;

    #[Object]
    impl Node {
        async fn a(&self) -> Node {
            Node
        }
        async fn b(&self) -> Node {
            Node
        }
        async fn leaf(&self) -> i32 {
            1
        }
    }

    struct Root;

    #[Object]
    impl Root {
        async fn node(&self) -> Node {
            Node
        }
    }

    /// Counts every field the executor resolves.
    struct CountResolves(Arc<AtomicU64>);

    impl ExtensionFactory for CountResolves {
        fn create(&self) -> Arc<dyn Extension> {
            Arc::new(CountingExtension(self.0.clone()))
        }
    }

    struct CountingExtension(Arc<AtomicU64>);

    #[async_trait::async_trait]
    impl Extension for CountingExtension {
        async fn resolve(
            &self,
            ctx: &ExtensionContext<'_>,
            info: ResolveInfo<'_>,
            next: NextResolve<'_>,
        ) -> ServerResult<Option<Value>> {
            self.0.fetch_add(1, Ordering::Relaxed);
            next.run(ctx, info).await
        }
    }

    /// A selection set on `Node` of at most `depth` levels, spreading only fragments below `fragments`.
    fn selection_set(depth: u32, fragments: usize) -> BoxedStrategy<String> {
        let leaf = prop_oneof![Just("leaf".to_owned()), Just("leaf1: leaf".to_owned())];
        if depth == 0 {
            return prop::collection::vec(leaf, 1..3)
                .prop_map(|items| items.join(" "))
                .boxed();
        }
        let inner = selection_set(depth - 1, fragments);
        let object = (
            prop_oneof![Just("a"), Just("b"), Just("a1: a"), Just("b1: b")],
            inner.clone(),
        )
            .prop_map(|(field, set)| format!("{field} {{ {set} }}"));
        let inline = inner.prop_map(|set| format!("... on Node {{ {set} }}"));
        let item = if fragments == 0 {
            prop_oneof![leaf, object, inline].boxed()
        } else {
            let spread = (0..fragments).prop_map(|i| format!("...F{i}"));
            prop_oneof![leaf, object, inline, spread].boxed()
        };
        prop::collection::vec(item, 1..4)
            .prop_map(|items| items.join(" "))
            .boxed()
    }

    /// An operation on `node` and up to three fragments, each spreading only those defined before it, and each
    /// spread at least once by the operation (validation refuses unused fragments).
    fn document() -> impl Strategy<Value = String> {
        (0usize..4)
            .prop_flat_map(|count| {
                let fragments: Vec<_> = (0..count).map(|i| selection_set(2, i)).collect();
                (fragments, selection_set(3, count))
            })
            .prop_map(|(fragments, operation)| {
                let every_fragment: String = (0..fragments.len()).map(|i| format!(" ...F{i}")).collect();
                let mut query = format!("{{ node {{ {operation}{every_fragment} }} }}");
                for (i, set) in fragments.iter().enumerate() {
                    query.push_str(&format!(" fragment F{i} on Node {{ {set} }}"));
                }
                query
            })
    }

    /// The expanded field count the slow way: every spread replaced by its fragment, recursively.
    fn naive_expanded_fields(document: &ExecutableDocument, set: &SelectionSet) -> u64 {
        set.items
            .iter()
            .map(|selection| match &selection.node {
                Selection::Field(field) => {
                    1 + naive_expanded_fields(document, &field.node.selection_set.node)
                }
                Selection::InlineFragment(inline) => {
                    naive_expanded_fields(document, &inline.node.selection_set.node)
                }
                Selection::FragmentSpread(spread) => {
                    let fragment = &document.fragments[&spread.node.fragment_name.node];
                    naive_expanded_fields(document, &fragment.node.selection_set.node)
                }
            })
            .sum()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn the_measured_size_is_never_below_what_the_executor_resolves(query in document()) {
            let document = parse_query(&query).expect("generated documents parse");
            let size = measure(&document).expect("generated fragments never cycle");

            let operations: u64 = document
                .operations
                .iter()
                .map(|(_, op)| naive_expanded_fields(&document, &op.node.selection_set.node))
                .sum();
            let fragments: u64 = document
                .fragments
                .values()
                .map(|f| naive_expanded_fields(&document, &f.node.selection_set.node))
                .sum();
            prop_assert_eq!(size.expanded_fields, operations + fragments);

            let resolved = Arc::new(AtomicU64::new(0));
            let schema = Schema::build(Root, EmptyMutation, EmptySubscription)
                .extension(CountResolves(resolved.clone()))
                .finish();
            let response = futures::executor::block_on(schema.execute(query.as_str()));
            prop_assert!(response.errors.is_empty(), "{:?}", response.errors);
            let resolved = resolved.load(Ordering::Relaxed);
            prop_assert!(resolved > 0);
            prop_assert!(size.expanded_fields >= resolved, "measured {} < resolved {}", size.expanded_fields, resolved);
        }
    }
}
