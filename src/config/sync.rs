//! Background sync: `SCHEDULER_ENABLED`, `SYNC_MASS_DELETE_PERCENT` and `SYNC_MASS_DELETE_MIN`.

use super::vars::Vars;

/// The sync mass-delete guard: a run that would delete more than `percent` % of a config's mirrors, and
/// at least `at_least` events, deletes nothing and pauses the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MassDeleteLimits {
    pub percent: u32,
    pub at_least: u32,
}

impl Default for MassDeleteLimits {
    fn default() -> Self {
        Self {
            percent: 25,
            at_least: 10,
        }
    }
}

pub(super) struct Sync {
    pub scheduler_enabled: bool,
    pub mass_delete: MassDeleteLimits,
}

pub(super) fn parse(vars: &mut Vars<'_>) -> Sync {
    let scheduler_enabled = vars.bool("SCHEDULER_ENABLED", true);
    let defaults = MassDeleteLimits::default();
    let mass_delete = MassDeleteLimits {
        percent: vars.u32("SYNC_MASS_DELETE_PERCENT", defaults.percent),
        at_least: vars.u32("SYNC_MASS_DELETE_MIN", defaults.at_least),
    };
    if !(1..=100).contains(&mass_delete.percent) {
        vars.problem(format!(
            "SYNC_MASS_DELETE_PERCENT must be between 1 and 100, not `{}`",
            mass_delete.percent
        ));
    }
    Sync {
        scheduler_enabled,
        mass_delete,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::vars::map;

    #[test]
    fn defaults() {
        let m = map(&[]);
        let mut v = Vars::new(&m);
        let s = parse(&mut v);
        assert!(s.scheduler_enabled);
        assert_eq!(s.mass_delete, MassDeleteLimits::default());
        assert!(v.problems().is_empty());
    }

    #[test]
    fn out_of_range_and_malformed_values_are_named() {
        for (percent, ok) in [("0", false), ("1", true), ("100", true), ("101", false)] {
            let m = map(&[("SYNC_MASS_DELETE_PERCENT", percent)]);
            let mut v = Vars::new(&m);
            parse(&mut v);
            assert_eq!(v.problems().is_empty(), ok, "{percent}: {:?}", v.problems());
        }
        let m = map(&[
            ("SCHEDULER_ENABLED", "sometimes"),
            ("SYNC_MASS_DELETE_PERCENT", "0"),
            ("SYNC_MASS_DELETE_MIN", "ten"),
        ]);
        let mut v = Vars::new(&m);
        parse(&mut v);
        assert_eq!(
            v.into_problems(),
            vec![
                "SCHEDULER_ENABLED must be true or false, not `sometimes`".to_string(),
                "SYNC_MASS_DELETE_MIN must be a whole number, not `ten`".to_string(),
                "SYNC_MASS_DELETE_PERCENT must be between 1 and 100, not `0`".to_string(),
            ]
        );
    }
}
