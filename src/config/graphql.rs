//! What the GraphQL endpoint reveals about itself: `GRAPHQL_INTROSPECTION` (whether `__schema` / `__type`
//! are answered) and `GRAPHIQL` (whether `GET /graphql` serves the playground, else 404). Both default to on in
//! development and off in production, where the schema is not published to anonymous callers.

use super::vars::Vars;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GraphqlSettings {
    /// Whether introspection queries are answered; when off they are refused with FORBIDDEN.
    pub introspection: bool,
    /// Whether `GET /graphql` serves GraphiQL; when off it answers 404.
    pub graphiql: bool,
}

impl GraphqlSettings {
    /// The defaults of an environment: everything on in development, off in production.
    pub fn defaults(production: bool) -> Self {
        Self {
            introspection: !production,
            graphiql: !production,
        }
    }
}

pub(super) fn parse(vars: &mut Vars<'_>, production: bool) -> GraphqlSettings {
    let defaults = GraphqlSettings::defaults(production);
    GraphqlSettings {
        introspection: vars.bool("GRAPHQL_INTROSPECTION", defaults.introspection),
        graphiql: vars.bool("GRAPHIQL", defaults.graphiql),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::vars::map;

    #[test]
    fn on_in_development_off_in_production_unless_set() {
        let m = map(&[]);
        let mut v = Vars::new(&m);
        assert_eq!(
            parse(&mut v, false),
            GraphqlSettings {
                introspection: true,
                graphiql: true
            }
        );
        assert_eq!(
            parse(&mut v, true),
            GraphqlSettings {
                introspection: false,
                graphiql: false
            }
        );

        let m = map(&[("GRAPHQL_INTROSPECTION", "true"), ("GRAPHIQL", "1")]);
        let mut v = Vars::new(&m);
        assert_eq!(
            parse(&mut v, true),
            GraphqlSettings {
                introspection: true,
                graphiql: true
            }
        );
        let m = map(&[("GRAPHQL_INTROSPECTION", "false"), ("GRAPHIQL", "no")]);
        let mut v = Vars::new(&m);
        assert_eq!(
            parse(&mut v, false),
            GraphqlSettings {
                introspection: false,
                graphiql: false
            }
        );
        assert!(v.problems().is_empty());
    }

    #[test]
    fn malformed_values_are_named() {
        let m = map(&[("GRAPHQL_INTROSPECTION", "sure"), ("GRAPHIQL", "off")]);
        let mut v = Vars::new(&m);
        assert_eq!(parse(&mut v, true), GraphqlSettings::defaults(true));
        assert_eq!(
            v.into_problems(),
            vec![
                "GRAPHQL_INTROSPECTION must be true or false, not `sure`".to_string(),
                "GRAPHIQL must be true or false, not `off`".to_string(),
            ]
        );
    }
}
