//! `DATABASE_URL`: SQLite or PostgreSQL.

use super::vars::Vars;

pub const DEFAULT_DATABASE_URL: &str = "sqlite://chronos.db?mode=rwc";

pub(super) fn parse(vars: &mut Vars<'_>, production: bool) -> String {
    let database_url = vars
        .get("DATABASE_URL")
        .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_string());
    if !(database_url.starts_with("sqlite:")
        || database_url.starts_with("postgres://")
        || database_url.starts_with("postgresql://"))
    {
        vars.problem("DATABASE_URL must start with `sqlite:` or `postgres://`");
    }
    // Production on the default file would silently start an empty database.
    vars.require_in_production(production, "DATABASE_URL", "");
    database_url
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::vars::map;

    #[test]
    fn sqlite_and_postgres_are_accepted() {
        for url in ["sqlite::memory:", "postgres://db/x", "postgresql://db/x"] {
            let m = map(&[("DATABASE_URL", url)]);
            let mut v = Vars::new(&m);
            assert_eq!(parse(&mut v, true), url);
            assert!(v.problems().is_empty(), "{url}: {:?}", v.problems());
        }
    }

    #[test]
    fn other_schemes_and_a_default_in_production_are_refused() {
        let m = map(&[("DATABASE_URL", "mysql://x")]);
        let mut v = Vars::new(&m);
        parse(&mut v, false);
        assert_eq!(
            v.into_problems(),
            vec!["DATABASE_URL must start with `sqlite:` or `postgres://`".to_string()]
        );

        let m = map(&[]);
        let mut v = Vars::new(&m);
        assert_eq!(parse(&mut v, true), DEFAULT_DATABASE_URL);
        assert_eq!(
            v.into_problems(),
            vec!["DATABASE_URL must be set explicitly in production".to_string()]
        );
    }
}
