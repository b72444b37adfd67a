//! One typed, validated configuration, read from the environment and an optional `.env` file.
//!
//! Validation collects every problem at once so an operator fixes them in one pass; each problem is one
//! line naming the variable. Development works with zero configuration: secrets are generated once into
//! the data directory (`.chronos/` by default) with a warning.

use std::{
    collections::HashMap,
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
};

use url::Url;

use crate::crypto::{KeyRing, SecretString};

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

/// Where Chronos finds Google. All three point at one host when the emulator stands in for Google.
#[derive(Debug, Clone)]
pub struct GoogleSettings {
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    pub accounts_url: Url,
    pub oauth_url: Url,
    pub api_url: Url,
}

impl GoogleSettings {
    /// Every Google endpoint on one base URL, as the emulator serves them.
    pub fn single_host(base: &Url) -> Self {
        Self {
            client_id: Some("chronos-local".into()),
            client_secret: Some(SecretString::new("chronos-local-secret".into())),
            accounts_url: base.clone(),
            oauth_url: base.clone(),
            api_url: base.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct RateLimits {
    /// Sign-in and OAuth callback requests per client IP per minute; 0 disables.
    pub signin_per_min: u32,
    /// GraphQL requests per user per minute; 0 disables.
    pub api_per_min: u32,
}

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

#[derive(Debug, Clone)]
pub struct Settings {
    pub environment: Environment,
    pub database_url: String,
    pub bind_addr: String,
    pub public_url: Url,
    pub frontend_url: Url,
    /// Origins (`scheme://host[:port]`) allowed for CORS and Origin checks.
    pub frontend_origins: Vec<String>,
    pub google: GoogleSettings,
    pub encryption_keys: KeyRing,
    pub csrf_secret: SecretString,
    pub cookie_secure: bool,
    pub rate_limits: RateLimits,
    pub scheduler_enabled: bool,
    pub mass_delete: MassDeleteLimits,
    pub log_format: LogFormat,
    pub data_dir: PathBuf,
    /// Warnings to log once logging is up (configuration is read before it).
    pub warnings: Vec<String>,
    explicit: ExplicitUrls,
}

/// The URL variables as given, so defaults derived from BIND_ADDR can follow the real port when 0 was asked.
#[derive(Debug, Clone, Default)]
struct ExplicitUrls {
    public_url: Option<Url>,
    frontend_url: Option<Url>,
    frontend_origins: Option<Vec<String>>,
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

pub const DEFAULT_DATABASE_URL: &str = "sqlite://chronos.db?mode=rwc";
pub const DEFAULT_BIND_ADDR: &str = "127.0.0.1:8080";
const DEV_SECRETS_FILE: &str = "dev-keys";
const MIN_CSRF_SECRET_BYTES: usize = 32;

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
        let mut problems = Vec::new();
        let mut warnings = Vec::new();
        let get = |name: &str| {
            vars.get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };

        let environment = match get("ENVIRONMENT").as_deref() {
            None | Some("development") => Environment::Development,
            Some("production") => Environment::Production,
            Some(other) => {
                problems.push(format!(
                    "ENVIRONMENT must be `development` or `production`, not `{other}`"
                ));
                Environment::Development
            }
        };
        let production = environment == Environment::Production;

        let database_url = get("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.to_string());
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            problems.push("DATABASE_URL must start with `sqlite:` or `postgres://`".to_string());
        }

        let bind_addr = get("BIND_ADDR").unwrap_or_else(|| DEFAULT_BIND_ADDR.to_string());
        if !valid_host_port(&bind_addr) {
            problems.push(format!("BIND_ADDR must be HOST:PORT, not `{bind_addr}`"));
        }

        let mut parse_url = |name: &str| -> Option<Url> {
            let raw = get(name)?;
            match Url::parse(&raw) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Some(url),
                _ => {
                    problems.push(format!("{name} must be an absolute http(s) URL, not `{raw}`"));
                    None
                }
            }
        };
        let explicit_public = parse_url("PUBLIC_URL");
        let explicit_frontend = parse_url("FRONTEND_URL");
        let accounts_url = parse_url("GOOGLE_ACCOUNTS_URL");
        let oauth_url = parse_url("GOOGLE_OAUTH_URL");
        let api_url = parse_url("GOOGLE_API_URL");

        let explicit_origins = get("FRONTEND_ORIGINS").map(|raw| {
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .filter_map(|s| match Url::parse(s) {
                    Ok(url) if url.host().is_some() => Some(origin_of(&url)),
                    _ => {
                        problems.push(format!(
                            "FRONTEND_ORIGINS entry `{s}` is not an origin like https://app.example.com"
                        ));
                        None
                    }
                })
                .collect::<Vec<_>>()
        });

        let client_id = get("GOOGLE_CLIENT_ID");
        let client_secret = get("GOOGLE_CLIENT_SECRET").map(SecretString::new);
        if client_id.is_some() != client_secret.is_some() {
            problems.push("GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET must be set together".to_string());
        }

        let cookie_secure = parse_bool(get("COOKIE_SECURE"), "COOKIE_SECURE", false, &mut problems);
        let scheduler_enabled =
            parse_bool(get("SCHEDULER_ENABLED"), "SCHEDULER_ENABLED", true, &mut problems);
        let signin_per_min = parse_u32(
            get("RATE_LIMIT_SIGNIN_PER_MIN"),
            "RATE_LIMIT_SIGNIN_PER_MIN",
            10,
            &mut problems,
        );
        let api_per_min = parse_u32(
            get("RATE_LIMIT_API_PER_MIN"),
            "RATE_LIMIT_API_PER_MIN",
            600,
            &mut problems,
        );
        let defaults = MassDeleteLimits::default();
        let mass_delete = MassDeleteLimits {
            percent: parse_u32(
                get("SYNC_MASS_DELETE_PERCENT"),
                "SYNC_MASS_DELETE_PERCENT",
                defaults.percent,
                &mut problems,
            ),
            at_least: parse_u32(
                get("SYNC_MASS_DELETE_MIN"),
                "SYNC_MASS_DELETE_MIN",
                defaults.at_least,
                &mut problems,
            ),
        };
        if !(1..=100).contains(&mass_delete.percent) {
            problems.push(format!(
                "SYNC_MASS_DELETE_PERCENT must be between 1 and 100, not `{}`",
                mass_delete.percent
            ));
        }
        let log_format = match get("LOG_FORMAT").as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                problems.push(format!("LOG_FORMAT must be `text` or `json`, not `{other}`"));
                LogFormat::Text
            }
        };
        let data_dir = PathBuf::from(get("CHRONOS_DATA_DIR").unwrap_or_else(|| ".chronos".to_string()));

        let keys_var = get("ENCRYPTION_KEYS");
        let csrf_var = get("CSRF_SECRET");
        if production {
            for (name, value) in [
                ("ENCRYPTION_KEYS", keys_var.is_some()),
                ("CSRF_SECRET", csrf_var.is_some()),
                ("GOOGLE_CLIENT_ID", client_id.is_some()),
                ("GOOGLE_CLIENT_SECRET", client_secret.is_some()),
                ("DATABASE_URL", get("DATABASE_URL").is_some()),
            ] {
                if !value {
                    problems.push(format!("{name} must be set explicitly in production"));
                }
            }
            if !cookie_secure {
                problems.push("COOKIE_SECURE must be true in production".to_string());
            }
            match &explicit_public {
                Some(url) if url.scheme() == "https" => {}
                _ => problems.push("PUBLIC_URL must be set to an https:// URL in production".to_string()),
            }
        }

        // Development falls back to secrets generated once into the data directory.
        let dev_secrets = if !production && (keys_var.is_none() || csrf_var.is_none()) {
            match DevSecrets::load_or_create(&data_dir) {
                Ok((secrets, created)) => {
                    let path = data_dir.join(DEV_SECRETS_FILE);
                    warnings.push(if created {
                        format!("generated development secrets into {}; set ENCRYPTION_KEYS and CSRF_SECRET for real data", path.display())
                    } else {
                        format!("using development secrets from {}; set ENCRYPTION_KEYS and CSRF_SECRET for real data", path.display())
                    });
                    Some(secrets)
                }
                Err(e) => {
                    problems.push(format!(
                        "development secrets could not be kept in {}: {e}",
                        data_dir.display()
                    ));
                    None
                }
            }
        } else {
            None
        };

        let encryption_keys = match keys_var
            .as_deref()
            .or(dev_secrets.as_ref().map(|s| s.encryption_keys.as_str()))
        {
            Some(raw) => match KeyRing::parse(raw) {
                Ok(ring) => Some(ring),
                Err(e) => {
                    problems.push(format!("ENCRYPTION_KEYS: {e}"));
                    None
                }
            },
            None => None,
        };
        let csrf_secret = match csrf_var.or(dev_secrets.map(|s| s.csrf_secret)) {
            Some(raw) if raw.len() >= MIN_CSRF_SECRET_BYTES => Some(SecretString::new(raw)),
            Some(_) => {
                problems.push(format!(
                    "CSRF_SECRET must be at least {MIN_CSRF_SECRET_BYTES} bytes"
                ));
                None
            }
            None => None,
        };

        match (encryption_keys, csrf_secret) {
            (Some(encryption_keys), Some(csrf_secret)) if problems.is_empty() => {
                let google = GoogleSettings {
                    client_id,
                    client_secret,
                    accounts_url: accounts_url.unwrap_or_else(|| fixed_url("https://accounts.google.com")),
                    oauth_url: oauth_url.unwrap_or_else(|| fixed_url("https://oauth2.googleapis.com")),
                    api_url: api_url.unwrap_or_else(|| fixed_url("https://www.googleapis.com")),
                };
                let mut settings = Settings {
                    environment,
                    database_url,
                    bind_addr: bind_addr.clone(),
                    public_url: fixed_url("http://127.0.0.1"),
                    frontend_url: fixed_url("http://127.0.0.1"),
                    frontend_origins: Vec::new(),
                    google,
                    encryption_keys,
                    csrf_secret,
                    cookie_secure,
                    rate_limits: RateLimits {
                        signin_per_min,
                        api_per_min,
                    },
                    scheduler_enabled,
                    mass_delete,
                    log_format,
                    data_dir,
                    warnings,
                    explicit: ExplicitUrls {
                        public_url: explicit_public,
                        frontend_url: explicit_frontend,
                        frontend_origins: explicit_origins,
                    },
                };
                settings.derive_urls(&bind_addr);
                Ok(settings)
            }
            _ => Err(ConfigError { problems }),
        }
    }

    /// Settings for tests and the demo: development, the given database, generated secrets, no rate limits.
    pub fn for_local(database_url: &str, data_dir: &Path) -> Result<Self, ConfigError> {
        let vars = HashMap::from([
            ("DATABASE_URL".to_string(), database_url.to_string()),
            ("BIND_ADDR".to_string(), "127.0.0.1:0".to_string()),
            ("ENCRYPTION_KEYS".to_string(), generated_key_ring("k1")?),
            ("CSRF_SECRET".to_string(), random_secret()),
            ("RATE_LIMIT_SIGNIN_PER_MIN".to_string(), "0".to_string()),
            ("RATE_LIMIT_API_PER_MIN".to_string(), "0".to_string()),
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
        self.public_url = self.explicit.public_url.clone().unwrap_or_else(|| {
            Url::parse(&format!("http://{bind_addr}")).unwrap_or_else(|_| fixed_url("http://127.0.0.1"))
        });
        self.frontend_url = self
            .explicit
            .frontend_url
            .clone()
            .unwrap_or_else(|| self.public_url.clone());
        self.frontend_origins = self.explicit.frontend_origins.clone().unwrap_or_else(|| {
            let mut origins = vec![origin_of(&self.frontend_url)];
            let public = origin_of(&self.public_url);
            if !origins.contains(&public) {
                origins.push(public);
            }
            origins
        });
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

/// `scheme://host[:port]` of a URL, as browsers send it in `Origin`.
pub fn origin_of(url: &Url) -> String {
    url.origin().ascii_serialization()
}

fn join_url(base: &Url, path: &str) -> String {
    format!("{}{}", base.as_str().trim_end_matches('/'), path)
}

fn fixed_url(raw: &str) -> Url {
    Url::parse(raw).unwrap_or_else(|e| unreachable!("constant URL {raw} is valid: {e}"))
}

fn valid_host_port(raw: &str) -> bool {
    raw.rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
}

fn parse_bool(raw: Option<String>, name: &str, default: bool, problems: &mut Vec<String>) -> bool {
    match raw.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None => default,
        Some("true" | "1" | "yes") => true,
        Some("false" | "0" | "no") => false,
        Some(other) => {
            problems.push(format!("{name} must be true or false, not `{other}`"));
            default
        }
    }
}

fn parse_u32(raw: Option<String>, name: &str, default: u32, problems: &mut Vec<String>) -> u32 {
    match raw {
        None => default,
        Some(v) => v.parse().unwrap_or_else(|_| {
            problems.push(format!("{name} must be a whole number, not `{v}`"));
            default
        }),
    }
}

fn generated_key_ring(id: &str) -> Result<String, ConfigError> {
    KeyRing::generate(id)
        .map(|ring| ring.to_env_string())
        .map_err(|e| ConfigError {
            problems: vec![format!("could not generate an encryption key: {e}")],
        })
}

fn random_secret() -> String {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Development secrets, generated once and kept in the data directory so restarts can read old data.
struct DevSecrets {
    encryption_keys: String,
    csrf_secret: String,
}

impl DevSecrets {
    fn load_or_create(dir: &Path) -> std::io::Result<(Self, bool)> {
        let path = dir.join(DEV_SECRETS_FILE);
        if let Ok(text) = std::fs::read_to_string(&path) {
            let vars: HashMap<&str, &str> = text
                .lines()
                .filter_map(|line| line.split_once('='))
                .map(|(k, v)| (k.trim(), v.trim()))
                .collect();
            if let (Some(keys), Some(csrf)) = (vars.get("ENCRYPTION_KEYS"), vars.get("CSRF_SECRET")) {
                return Ok((
                    Self {
                        encryption_keys: keys.to_string(),
                        csrf_secret: csrf.to_string(),
                    },
                    false,
                ));
            }
        }
        let secrets = Self {
            encryption_keys: generated_key_ring("dev1").map_err(|e| std::io::Error::other(e.to_string()))?,
            csrf_secret: random_secret(),
        };
        std::fs::create_dir_all(dir)?;
        let text = format!(
            "# Development secrets generated by chronos. Do not use in production.\nENCRYPTION_KEYS={}\nCSRF_SECRET={}\n",
            secrets.encryption_keys, secrets.csrf_secret
        );
        write_private(&path, text.as_bytes())?;
        Ok((secrets, true))
    }
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

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
            first.csrf_secret.expose(),
            second.csrf_secret.expose(),
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
        let keys = generated_key_ring("p1").expect("key ring");
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
    fn port_zero_defaults_follow_the_bound_port() {
        let dir = dev_dir();
        let s = Settings::for_local("sqlite::memory:", dir.path()).expect("local settings");
        let s = s.with_bound_addr("127.0.0.1:43210".parse().expect("addr"));
        assert_eq!(s.public_url.as_str(), "http://127.0.0.1:43210/");
        assert!(s.is_allowed_origin("http://127.0.0.1:43210"));
        assert!(!s.is_allowed_origin("http://evil.example"));
    }
}
