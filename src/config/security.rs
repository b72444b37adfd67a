//! Secrets: `ENCRYPTION_KEYS` (the master key ring) and `CSRF_SECRET`. Production must set both; development
//! falls back to secrets generated once into the data directory, so restarts can still read old data.

use std::{collections::HashMap, path::Path};

use super::vars::Vars;
use crate::crypto::{KeyRing, SecretString};

const DEV_SECRETS_FILE: &str = "dev-keys";
const MIN_CSRF_SECRET_BYTES: usize = 32;

/// Said with every ENCRYPTION_KEYS problem: the format and a way to make a key.
pub(super) const ENCRYPTION_KEYS_HELP: &str = "expected comma-separated ID:BASE64 entries (the first key \
    encrypts, all decrypt), each ID 1-16 characters of A-Z a-z 0-9 _ - and each BASE64 exactly 32 random \
    bytes in standard base64; generate one with: echo \"k1:$(openssl rand -base64 32)\" (or head -c32 /dev/urandom | base64)";
const CSRF_SECRET_HELP: &str = "generate one with: openssl rand -base64 32";

pub(super) struct Security {
    /// `None` only when a problem was recorded.
    pub encryption_keys: Option<KeyRing>,
    /// `None` only when a problem was recorded.
    pub csrf_secret: Option<SecretString>,
    pub warning: Option<String>,
}

pub(super) fn parse(vars: &mut Vars<'_>, production: bool, data_dir: &Path) -> Security {
    vars.require_in_production(
        production,
        "ENCRYPTION_KEYS",
        &format!("; {ENCRYPTION_KEYS_HELP}"),
    );
    vars.require_in_production(production, "CSRF_SECRET", &format!("; {CSRF_SECRET_HELP}"));
    let keys_var = vars.get("ENCRYPTION_KEYS");
    let csrf_var = vars.get("CSRF_SECRET");

    let mut warning = None;
    let dev_secrets = if !production && (keys_var.is_none() || csrf_var.is_none()) {
        let path = data_dir.join(DEV_SECRETS_FILE);
        match DevSecrets::load_or_create(data_dir) {
            Ok((secrets, created)) => {
                warning = Some(if created {
                    format!(
                        "generated development secrets into {}; set ENCRYPTION_KEYS and CSRF_SECRET for real data",
                        path.display()
                    )
                } else {
                    format!(
                        "using development secrets from {}; set ENCRYPTION_KEYS and CSRF_SECRET for real data",
                        path.display()
                    )
                });
                Some(secrets)
            }
            Err(e) => {
                vars.problem(format!(
                    "development secrets could not be kept in {}: {e}",
                    data_dir.display()
                ));
                None
            }
        }
    } else {
        None
    };

    let (raw_keys, from_file) = match (keys_var, &dev_secrets) {
        (Some(raw), _) => (Some(raw), false),
        (None, Some(dev)) => (Some(dev.encryption_keys.clone()), true),
        (None, None) => (None, false),
    };
    let encryption_keys = raw_keys.and_then(|raw| match KeyRing::parse(&raw) {
        Ok(ring) => Some(ring),
        Err(e) => {
            // The error names the entry and the problem, never the key material.
            let source = if from_file {
                format!(" (read from {})", data_dir.join(DEV_SECRETS_FILE).display())
            } else {
                String::new()
            };
            vars.problem(format!("{e}{source}; {ENCRYPTION_KEYS_HELP}"));
            None
        }
    });
    let csrf_secret = match csrf_var.or(dev_secrets.map(|s| s.csrf_secret)) {
        Some(raw) if raw.len() >= MIN_CSRF_SECRET_BYTES => Some(SecretString::from(raw)),
        Some(_) => {
            vars.problem(format!(
                "CSRF_SECRET must be at least {MIN_CSRF_SECRET_BYTES} bytes; {CSRF_SECRET_HELP}"
            ));
            None
        }
        None => None,
    };
    Security {
        encryption_keys,
        csrf_secret,
        warning,
    }
}

/// A fresh key ring in the `ENCRYPTION_KEYS` format.
pub(super) fn generated_key_ring(id: &str) -> Result<String, String> {
    KeyRing::generate(id)
        .map(|ring| ring.to_env_string())
        .map_err(|e| format!("could not generate an encryption key: {e}"))
}

pub(super) fn random_secret() -> String {
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
            encryption_keys: generated_key_ring("dev1").map_err(std::io::Error::other)?,
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
    use crate::config::vars::map;
    use crate::crypto::ExposeSecret;

    const CSRF: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn explicit_secrets_are_used_and_nothing_is_written() {
        let dir = tempfile::tempdir().expect("temp dir");
        let keys = generated_key_ring("k1").expect("ring");
        let m = map(&[("ENCRYPTION_KEYS", &keys), ("CSRF_SECRET", CSRF)]);
        let mut v = Vars::new(&m);
        let s = parse(&mut v, true, dir.path());
        assert!(v.problems().is_empty(), "{:?}", v.problems());
        assert_eq!(s.encryption_keys.expect("ring").to_env_string(), keys);
        assert_eq!(s.csrf_secret.expect("csrf").expose_secret(), CSRF);
        assert!(s.warning.is_none());
        assert!(!dir.path().join(DEV_SECRETS_FILE).exists());
    }

    #[test]
    fn a_bad_key_ring_says_the_format_and_how_to_generate_a_key_without_echoing_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let short = "c2hvcnQta2V5LW1hdGVyaWFs"; // base64 of 18 bytes
        for (value, says) in [
            ("k1:not-base64!", "key is not valid standard base64"),
            (
                &format!("k1:{short}") as &str,
                "key must decode to 32 bytes, got 18",
            ),
            ("no-separator", "has no ':'"),
        ] {
            let m = map(&[("ENCRYPTION_KEYS", value), ("CSRF_SECRET", CSRF)]);
            let mut v = Vars::new(&m);
            let s = parse(&mut v, false, dir.path());
            assert!(s.encryption_keys.is_none());
            let problems = v.into_problems();
            assert_eq!(problems.len(), 1, "{problems:?}");
            let p = &problems[0];
            assert!(p.starts_with("ENCRYPTION_KEYS entry 1"), "{p}");
            assert!(p.contains(says), "{p}");
            assert!(p.contains("ID:BASE64") && p.contains("32 random bytes"), "{p}");
            assert!(p.contains("openssl rand -base64 32"), "{p}");
            assert!(!p.contains(short), "the key is never echoed: {p}");
        }
    }

    #[test]
    fn production_requires_both_secrets_with_a_hint() {
        let dir = tempfile::tempdir().expect("temp dir");
        let m = map(&[]);
        let mut v = Vars::new(&m);
        let s = parse(&mut v, true, dir.path());
        assert!(s.encryption_keys.is_none() && s.csrf_secret.is_none());
        let problems = v.into_problems();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("ENCRYPTION_KEYS must be set explicitly in production; expected"));
        assert!(problems[0].contains("openssl rand -base64 32"));
        assert!(problems[1].starts_with("CSRF_SECRET must be set explicitly in production"));
        assert!(
            !dir.path().join(DEV_SECRETS_FILE).exists(),
            "production never generates secrets"
        );
    }

    #[test]
    fn a_short_csrf_secret_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let keys = generated_key_ring("k1").expect("ring");
        let m = map(&[("ENCRYPTION_KEYS", &keys), ("CSRF_SECRET", "short")]);
        let mut v = Vars::new(&m);
        let s = parse(&mut v, false, dir.path());
        assert!(s.csrf_secret.is_none());
        assert_eq!(
            v.into_problems(),
            vec![format!(
                "CSRF_SECRET must be at least 32 bytes; {CSRF_SECRET_HELP}"
            )]
        );
    }

    #[test]
    fn development_generates_once_and_names_a_broken_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let m = map(&[]);
        let mut v = Vars::new(&m);
        let first = parse(&mut v, false, dir.path());
        assert!(
            first
                .warning
                .as_deref()
                .is_some_and(|w| w.starts_with("generated"))
        );
        let mut v = Vars::new(&m);
        let second = parse(&mut v, false, dir.path());
        assert!(second.warning.as_deref().is_some_and(|w| w.starts_with("using")));
        assert!(v.problems().is_empty());
        assert_eq!(
            first.csrf_secret.expect("csrf").expose_secret(),
            second.csrf_secret.expect("csrf").expose_secret()
        );

        std::fs::write(
            dir.path().join(DEV_SECRETS_FILE),
            format!("ENCRYPTION_KEYS=dev1:AAAA\nCSRF_SECRET={CSRF}\n"),
        )
        .expect("write");
        let mut v = Vars::new(&m);
        parse(&mut v, false, dir.path());
        let problems = v.into_problems();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains(DEV_SECRETS_FILE), "{}", problems[0]);
    }
}
