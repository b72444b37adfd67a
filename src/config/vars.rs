//! Reading raw variables: values are trimmed, a blank value counts as unset, and every problem is collected
//! (one line naming the variable) instead of stopping at the first, so an operator fixes them in one pass.

use std::collections::HashMap;

use url::Url;

/// The variables being read and the problems found so far.
pub(super) struct Vars<'a> {
    map: &'a HashMap<String, String>,
    problems: Vec<String>,
}

impl<'a> Vars<'a> {
    pub(super) fn new(map: &'a HashMap<String, String>) -> Self {
        Self {
            map,
            problems: Vec::new(),
        }
    }

    /// The trimmed value, `None` when unset or blank.
    pub(super) fn get(&self, name: &str) -> Option<String> {
        self.map
            .get(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    pub(super) fn is_set(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub(super) fn problem(&mut self, problem: impl Into<String>) {
        self.problems.push(problem.into());
    }

    #[cfg(test)]
    pub(super) fn problems(&self) -> &[String] {
        &self.problems
    }

    pub(super) fn into_problems(self) -> Vec<String> {
        self.problems
    }

    /// Production must not run on a default or a generated value of `name`.
    pub(super) fn require_in_production(&mut self, production: bool, name: &str, hint: &str) {
        if production && !self.is_set(name) {
            self.problem(format!("{name} must be set explicitly in production{hint}"));
        }
    }

    /// `true|1|yes` or `false|0|no`, any case.
    pub(super) fn bool(&mut self, name: &str, default: bool) -> bool {
        match self.get(name).map(|v| v.to_ascii_lowercase()).as_deref() {
            None => default,
            Some("true" | "1" | "yes") => true,
            Some("false" | "0" | "no") => false,
            Some(other) => {
                self.problem(format!("{name} must be true or false, not `{other}`"));
                default
            }
        }
    }

    pub(super) fn u32(&mut self, name: &str, default: u32) -> u32 {
        match self.get(name) {
            None => default,
            Some(v) => v.parse().unwrap_or_else(|_| {
                self.problem(format!("{name} must be a whole number, not `{v}`"));
                default
            }),
        }
    }

    /// An absolute http(s) URL with a host; `None` when unset or invalid (then a problem is recorded).
    pub(super) fn http_url(&mut self, name: &str) -> Option<Url> {
        let raw = self.get(name)?;
        match Url::parse(&raw) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Some(url),
            _ => {
                self.problem(format!("{name} must be an absolute http(s) URL, not `{raw}`"));
                None
            }
        }
    }
}

/// A URL known valid at compile time (the built-in defaults).
pub(super) fn fixed_url(raw: &str) -> Url {
    Url::parse(raw).unwrap_or_else(|e| unreachable!("constant URL {raw} is valid: {e}"))
}

#[cfg(test)]
pub(super) fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_is_unset_and_values_are_trimmed() {
        let m = map(&[("A", "  x "), ("B", "   ")]);
        let v = Vars::new(&m);
        assert_eq!(v.get("A").as_deref(), Some("x"));
        assert_eq!(v.get("B"), None);
        assert!(!v.is_set("C"));
    }

    #[test]
    fn typed_readers_name_the_variable_and_keep_going() {
        let m = map(&[
            ("FLAG", "Yes"),
            ("BAD_FLAG", "maybe"),
            ("N", "-1"),
            ("U", "ftp://x"),
            ("OK_URL", "https://example.com/a"),
        ]);
        let mut v = Vars::new(&m);
        assert!(v.bool("FLAG", false));
        assert!(
            !v.bool("BAD_FLAG", false),
            "a bad value falls back to the default"
        );
        assert_eq!(v.u32("N", 7), 7);
        assert_eq!(v.u32("UNSET", 7), 7);
        assert_eq!(v.http_url("U"), None);
        assert_eq!(
            v.http_url("OK_URL").map(String::from).as_deref(),
            Some("https://example.com/a")
        );
        assert_eq!(
            v.into_problems(),
            vec![
                "BAD_FLAG must be true or false, not `maybe`".to_string(),
                "N must be a whole number, not `-1`".to_string(),
                "U must be an absolute http(s) URL, not `ftp://x`".to_string(),
            ]
        );
    }
}
