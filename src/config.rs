//! One typed, validated configuration, read from the environment and an optional `.env` file.
//!
//! Each concern reads and validates its own variables in a submodule (`runtime`, `database`, `http`,
//! `google`, `security`, `rate_limits`, `sync`, `graphql`); they all record problems into one list, so an operator sees
//! every problem at once, one line each naming the variable. Development works with zero configuration:
//! secrets are generated once into the data directory (`.chronos/` by default) with a warning.

mod database;
mod google;
mod graphql;
mod http;
mod rate_limits;
mod runtime;
mod security;
mod sync;
mod vars;

use std::{
    collections::HashMap,
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use url::Url;

pub use self::{
    database::{DEFAULT_DATABASE_URL, POSTGRES_CONNECTIONS, PoolSettings, STATEMENT_CACHE},
    google::{GoogleQuota, GoogleSettings},
    graphql::GraphqlSettings,
    http::{DEFAULT_BIND_ADDR, origin_of},
    rate_limits::RateLimits,
    runtime::{Environment, LogFormat},
    sync::MassDeleteLimits,
};
use self::{
    http::ExplicitUrls,
    vars::{Vars, fixed_url},
};
use crate::crypto::{KeyRing, SecretString};

/// The default of [`Settings::websocket_session_check`].
pub const WEBSOCKET_SESSION_CHECK: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct Settings {
    pub environment: Environment,
    pub database_url: String,
    pub database_pool: PoolSettings,
    pub bind_addr: String,
    pub public_url: Url,
    pub frontend_url: Url,
    /// Origins (`scheme://host[:port]`) allowed for CORS and Origin checks.
    pub frontend_origins: Vec<String>,
    pub google: GoogleSettings,
    pub encryption_keys: KeyRing,
    pub csrf_secret: SecretString,
    pub cookie_secure: bool,
    /// How long a client may take to send a request's line and headers before the connection is closed.
    pub header_read_timeout: std::time::Duration,
    /// Where `GET /metrics` is served on a listener of its own (`METRICS_ADDR`). Unset: on the main
    /// listener in development, nowhere in production.
    pub metrics_addr: Option<SocketAddr>,
    /// Whether `/` serves the reference web client (`WEB_CLIENT`; the demo turns it on). Off: `/`
    /// redirects to the playground.
    pub web_client: bool,
    pub rate_limits: RateLimits,
    pub scheduler_enabled: bool,
    pub mass_delete: MassDeleteLimits,
    /// Introspection and GraphiQL.
    pub graphql: GraphqlSettings,
    /// How often a websocket re-reads its session and closes when it is gone or expired (an ended
    /// session is also announced, which closes its sockets at once; the re-read catches what was not).
    pub websocket_session_check: Duration,
    pub log_format: LogFormat,
    pub data_dir: PathBuf,
    /// Warnings to log once logging is up (configuration is read before it).
    pub warnings: Vec<String>,
    explicit: ExplicitUrls,
}

/// Every problem found in the configuration, one line each.
#[derive(Debug)]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "configuration error: {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl Settings {
    /// Reads `.env` (if present) and the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        // A missing .env is normal; a malformed one is reported like any other problem.
        let dotenv_problem = match dotenvy::dotenv() {
            Ok(_) => None,
            Err(e) if e.not_found() => None,
            Err(e) => Some(format!(".env could not be read: {e}")),
        };
        let vars: HashMap<String, String> = std::env::vars().collect();
        let result = Self::from_vars(&vars);
        match (result, dotenv_problem) {
            (Ok(s), None) => Ok(s),
            (Ok(_), Some(p)) => Err(ConfigError { problems: vec![p] }),
            (Err(mut e), Some(p)) => {
                e.problems.insert(0, p);
                Err(e)
            }
            (Err(e), None) => Err(e),
        }
    }

    /// Builds settings from a variable map. Generates development secrets into the data directory when they
    /// are missing outside production.
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let mut vars = Vars::new(vars);
        let runtime = runtime::parse(&mut vars);
        let production = runtime.production();
        let database_url = database::parse(&mut vars, production);
        let database_pool = database::parse_pool(&mut vars);
        let http = http::parse(&mut vars, production);
        let google = google::parse(&mut vars, production);
        let rate_limits = rate_limits::parse(&mut vars);
        let sync = sync::parse(&mut vars);
        let graphql = graphql::parse(&mut vars, production);
        let security = security::parse(&mut vars, production, &runtime.data_dir);

        let problems = vars.into_problems();
        match (security.encryption_keys, security.csrf_secret) {
            (Some(encryption_keys), Some(csrf_secret)) if problems.is_empty() => {
                let mut settings = Settings {
                    environment: runtime.environment,
                    database_url,
                    database_pool,
                    bind_addr: http.bind_addr.clone(),
                    public_url: fixed_url("http://127.0.0.1"),
                    frontend_url: fixed_url("http://127.0.0.1"),
                    frontend_origins: Vec::new(),
                    google,
                    encryption_keys,
                    csrf_secret,
                    cookie_secure: http.cookie_secure,
                    header_read_timeout: http.header_read_timeout,
                    metrics_addr: http.metrics_addr,
                    web_client: http.web_client,
                    rate_limits,
                    scheduler_enabled: sync.scheduler_enabled,
                    mass_delete: sync.mass_delete,
                    graphql,
                    websocket_session_check: WEBSOCKET_SESSION_CHECK,
                    log_format: runtime.log_format,
                    data_dir: runtime.data_dir,
                    warnings: security.warning.into_iter().collect(),
                    explicit: http.explicit,
                };
                settings.derive_urls(&http.bind_addr);
                Ok(settings)
            }
            _ => Err(ConfigError { problems }),
        }
    }

    /// Settings for tests and the demo: development, the given database, generated secrets, no rate limits.
    pub fn for_local(database_url: &str, data_dir: &Path) -> Result<Self, ConfigError> {
        let keys = security::generated_key_ring("k1").map_err(|p| ConfigError { problems: vec![p] })?;
        let vars = HashMap::from([
            ("DATABASE_URL".to_string(), database_url.to_string()),
            ("BIND_ADDR".to_string(), "127.0.0.1:0".to_string()),
            ("ENCRYPTION_KEYS".to_string(), keys),
            ("CSRF_SECRET".to_string(), security::random_secret()),
            ("RATE_LIMIT_SIGNIN_PER_MIN".to_string(), "0".to_string()),
            ("RATE_LIMIT_API_PER_MIN".to_string(), "0".to_string()),
            ("RATE_LIMIT_IN_FLIGHT_PER_USER".to_string(), "0".to_string()),
            ("CHRONOS_DATA_DIR".to_string(), data_dir.display().to_string()),
        ]);
        Self::from_vars(&vars)
    }

    pub fn is_production(&self) -> bool {
        self.environment == Environment::Production
    }

    /// Recomputes the URL defaults from the address actually bound (port 0 becomes the real port).
    pub fn with_bound_addr(mut self, addr: SocketAddr) -> Self {
        self.bind_addr = addr.to_string();
        self.derive_urls(&addr.to_string());
        self
    }

    fn derive_urls(&mut self, bind_addr: &str) {
        let urls = self.explicit.derive(bind_addr);
        self.public_url = urls.public_url;
        self.frontend_url = urls.frontend_url;
        self.frontend_origins = urls.frontend_origins;
    }

    /// The OAuth redirect URI Google sends the browser back to.
    pub fn oauth_redirect_url(&self) -> String {
        join_url(&self.public_url, "/auth/google/callback")
    }

    /// The address Google posts push notifications to.
    pub fn webhook_url(&self) -> String {
        join_url(&self.public_url, "/webhooks/google")
    }

    /// Whether pages of `origin` may call the API (CORS, Origin checks, `redirectTo`). In development the
    /// loopback names `localhost`, `127.0.0.1` and `[::1]` are one host: with the default origins, the
    /// server opened as `http://localhost:PORT` is the same origin as `http://127.0.0.1:PORT`.
    pub fn is_allowed_origin(&self, origin: &str) -> bool {
        self.frontend_origins.iter().any(|allowed| {
            allowed == origin || (!self.is_production() && same_loopback_origin(allowed, origin))
        })
    }
}

/// Whether two origins differ only in their loopback host name (same scheme and port).
fn same_loopback_origin(a: &str, b: &str) -> bool {
    fn loopback(url: &Url) -> bool {
        match url.host() {
            Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip == std::net::Ipv4Addr::LOCALHOST,
            Some(url::Host::Ipv6(ip)) => ip == std::net::Ipv6Addr::LOCALHOST,
            None => false,
        }
    }
    match (Url::parse(a), Url::parse(b)) {
        (Ok(a), Ok(b)) => {
            a.scheme() == b.scheme()
                && a.port_or_known_default() == b.port_or_known_default()
                && loopback(&a)
                && loopback(&b)
        }
        _ => false,
    }
}

fn join_url(base: &Url, path: &str) -> String {
    format!("{}{}", base.as_str().trim_end_matches('/'), path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::ExposeSecret;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn dev_dir() -> tempfile::TempDir {
        tempfile::tempdir().expect("temp dir")
    }

    #[test]
    fn zero_configuration_works_in_development_and_keeps_generated_secrets() {
        let dir = dev_dir();
        let v = vars(&[("CHRONOS_DATA_DIR", dir.path().to_str().expect("utf-8 path"))]);
        let first = Settings::from_vars(&v).expect("defaults are valid");
        assert_eq!(first.database_url, DEFAULT_DATABASE_URL);
        assert_eq!(first.graphql, GraphqlSettings::defaults(false));
        assert!(first.graphql.introspection && first.graphql.graphiql);
        assert_eq!(first.public_url.as_str(), "http://127.0.0.1:8080/");
        assert_eq!(first.frontend_origins, vec!["http://127.0.0.1:8080".to_string()]);
        assert!(
            first
                .warnings
                .iter()
                .any(|w| w.contains("generated development secrets"))
        );
        let second = Settings::from_vars(&v).expect("defaults are valid");
        assert_eq!(
            first.csrf_secret.expose_secret(),
            second.csrf_secret.expose_secret(),
            "secrets are generated once"
        );
        assert!(
            second
                .warnings
                .iter()
                .any(|w| w.contains("using development secrets"))
        );
    }

    #[test]
    fn production_names_every_insecure_setting() {
        let err = Settings::from_vars(&vars(&[
            ("ENVIRONMENT", "production"),
            ("COOKIE_SECURE", "false"),
        ]))
        .expect_err("insecure production must be refused");
        let text = err.to_string();
        for needle in [
            "ENCRYPTION_KEYS must be set",
            "CSRF_SECRET must be set",
            "GOOGLE_CLIENT_ID must be set",
            "DATABASE_URL must be set",
            "COOKIE_SECURE must be true",
            "PUBLIC_URL must be set to an https",
        ] {
            assert!(text.contains(needle), "missing `{needle}` in:\n{text}");
        }
        assert_eq!(text.lines().count(), err.problems.len(), "one line per problem");
    }

    #[test]
    fn production_accepts_a_complete_secure_configuration() {
        let keys = security::generated_key_ring("p1").expect("key ring");
        let v = vars(&[
            ("ENVIRONMENT", "production"),
            ("COOKIE_SECURE", "true"),
            ("PUBLIC_URL", "https://api.example.com"),
            ("FRONTEND_URL", "https://app.example.com/home"),
            ("DATABASE_URL", "postgres://db/chronos"),
            ("ENCRYPTION_KEYS", &keys),
            ("CSRF_SECRET", "0123456789abcdef0123456789abcdef"),
            ("GOOGLE_CLIENT_ID", "id"),
            ("GOOGLE_CLIENT_SECRET", "secret"),
        ]);
        let s = Settings::from_vars(&v).expect("valid production settings");
        assert!(s.is_production());
        assert_eq!(
            s.graphql,
            GraphqlSettings {
                introspection: false,
                graphiql: false
            },
            "production does not publish the schema unless asked"
        );
        assert_eq!(
            s.oauth_redirect_url(),
            "https://api.example.com/auth/google/callback"
        );
        assert_eq!(
            s.frontend_origins,
            vec![
                "https://app.example.com".to_string(),
                "https://api.example.com".to_string()
            ]
        );
    }

    #[test]
    fn malformed_values_are_each_named() {
        let dir = dev_dir();
        let v = vars(&[
            ("CHRONOS_DATA_DIR", dir.path().to_str().expect("utf-8 path")),
            ("BIND_ADDR", "nowhere"),
            ("COOKIE_SECURE", "maybe"),
            ("RATE_LIMIT_API_PER_MIN", "-3"),
            ("PUBLIC_URL", "ftp://x"),
            ("ENCRYPTION_KEYS", "k1:not-base64!"),
            ("CSRF_SECRET", "short"),
            ("LOG_FORMAT", "xml"),
            ("DATABASE_URL", "mysql://x"),
            ("SYNC_MASS_DELETE_PERCENT", "0"),
            ("SYNC_MASS_DELETE_MIN", "ten"),
        ]);
        let err = Settings::from_vars(&v).expect_err("malformed values are refused");
        let text = err.to_string();
        for needle in [
            "BIND_ADDR",
            "COOKIE_SECURE",
            "RATE_LIMIT_API_PER_MIN",
            "PUBLIC_URL",
            "ENCRYPTION_KEYS",
            "CSRF_SECRET",
            "LOG_FORMAT",
            "DATABASE_URL",
            "SYNC_MASS_DELETE_PERCENT",
            "SYNC_MASS_DELETE_MIN",
        ] {
            assert!(text.contains(needle), "missing `{needle}` in:\n{text}");
        }
    }

    #[test]
    fn debug_of_settings_redacts_every_secret() {
        let keys = security::generated_key_ring("p1").expect("key ring");
        let key_b64 = keys.split_once(':').expect("ID:BASE64").1.to_string();
        let csrf = "csrf-0123456789abcdef0123456789abcdef";
        let v = vars(&[
            ("ENVIRONMENT", "production"),
            ("COOKIE_SECURE", "true"),
            ("PUBLIC_URL", "https://api.example.com"),
            ("DATABASE_URL", "postgres://db/chronos"),
            ("ENCRYPTION_KEYS", &keys),
            ("CSRF_SECRET", csrf),
            ("GOOGLE_CLIENT_ID", "client-id"),
            ("GOOGLE_CLIENT_SECRET", "google-client-secret-value"),
        ]);
        let s = Settings::from_vars(&v).expect("valid production settings");
        // Positive control: the secrets are there to be read explicitly.
        assert_eq!(s.csrf_secret.expose_secret(), csrf);
        for text in [format!("{s:?}"), format!("{s:#?}"), format!("{:?}", s.google)] {
            assert!(text.contains("client-id"), "{text}");
            assert!(!text.contains(csrf), "CSRF secret leaked: {text}");
            assert!(
                !text.contains("google-client-secret-value"),
                "client secret leaked: {text}"
            );
            assert!(!text.contains(&key_b64), "encryption key leaked: {text}");
        }
    }

    #[test]
    fn port_zero_defaults_follow_the_bound_port() {
        let dir = dev_dir();
        let s = Settings::for_local("sqlite::memory:", dir.path()).expect("local settings");
        let s = s.with_bound_addr("127.0.0.1:43210".parse().expect("addr"));
        assert_eq!(s.public_url.as_str(), "http://127.0.0.1:43210/");
        assert!(s.is_allowed_origin("http://127.0.0.1:43210"));
        assert!(!s.is_allowed_origin("http://evil.example"));
    }
}
