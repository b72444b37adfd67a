//! How this process runs: `ENVIRONMENT`, `LOG_FORMAT` and `CHRONOS_DATA_DIR`.

use std::path::PathBuf;

use super::vars::Vars;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

pub(super) struct Runtime {
    pub environment: Environment,
    pub log_format: LogFormat,
    pub data_dir: PathBuf,
}

impl Runtime {
    pub(super) fn production(&self) -> bool {
        self.environment == Environment::Production
    }
}

pub(super) fn parse(vars: &mut Vars<'_>) -> Runtime {
    let environment = match vars.get("ENVIRONMENT").as_deref() {
        None | Some("development") => Environment::Development,
        Some("production") => Environment::Production,
        Some(other) => {
            vars.problem(format!(
                "ENVIRONMENT must be `development` or `production`, not `{other}`"
            ));
            Environment::Development
        }
    };
    let log_format = match vars.get("LOG_FORMAT").as_deref() {
        None | Some("text") => LogFormat::Text,
        Some("json") => LogFormat::Json,
        Some(other) => {
            vars.problem(format!("LOG_FORMAT must be `text` or `json`, not `{other}`"));
            LogFormat::Text
        }
    };
    let data_dir = PathBuf::from(
        vars.get("CHRONOS_DATA_DIR")
            .unwrap_or_else(|| ".chronos".to_string()),
    );
    Runtime {
        environment,
        log_format,
        data_dir,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::vars::map;

    #[test]
    fn defaults_to_development_text_logs_and_dot_chronos() {
        let m = map(&[]);
        let mut v = Vars::new(&m);
        let r = parse(&mut v);
        assert_eq!(r.environment, Environment::Development);
        assert_eq!(r.log_format, LogFormat::Text);
        assert_eq!(r.data_dir, PathBuf::from(".chronos"));
        assert!(v.problems().is_empty());
    }

    #[test]
    fn unknown_environment_and_log_format_are_named() {
        let m = map(&[("ENVIRONMENT", "staging"), ("LOG_FORMAT", "xml")]);
        let mut v = Vars::new(&m);
        let r = parse(&mut v);
        assert!(!r.production(), "an unknown environment is not production");
        assert_eq!(
            v.into_problems(),
            vec![
                "ENVIRONMENT must be `development` or `production`, not `staging`".to_string(),
                "LOG_FORMAT must be `text` or `json`, not `xml`".to_string(),
            ]
        );
    }
}
