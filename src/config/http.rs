//! Where the server listens and how browsers reach it: `BIND_ADDR`, `PUBLIC_URL`, `FRONTEND_URL`,
//! `FRONTEND_ORIGINS`, `COOKIE_SECURE`, `HTTP_HEADER_READ_TIMEOUT_SECS`, `METRICS_ADDR` and `WEB_CLIENT`.

use std::{net::SocketAddr, time::Duration};

use url::Url;

use super::vars::{Vars, fixed_url};

pub const DEFAULT_BIND_ADDR: &str = "127.0.0.1:8080";

/// How long a client may take to send a request's line and headers, in seconds.
const DEFAULT_HEADER_READ_TIMEOUT_SECS: u32 = 10;

pub(super) struct Http {
    pub bind_addr: String,
    pub cookie_secure: bool,
    pub header_read_timeout: Duration,
    pub metrics_addr: Option<SocketAddr>,
    pub web_client: bool,
    pub explicit: ExplicitUrls,
}

/// The URL variables as given, so defaults derived from BIND_ADDR can follow the real port when 0 was asked.
#[derive(Debug, Clone, Default)]
pub(super) struct ExplicitUrls {
    public_url: Option<Url>,
    frontend_url: Option<Url>,
    frontend_origins: Option<Vec<String>>,
}

/// The URLs in force for one bound address.
pub(super) struct DerivedUrls {
    pub public_url: Url,
    pub frontend_url: Url,
    pub frontend_origins: Vec<String>,
}

impl ExplicitUrls {
    /// PUBLIC_URL defaults to `http://` + the bound address, FRONTEND_URL to PUBLIC_URL, and the origins to
    /// those of FRONTEND_URL and PUBLIC_URL.
    pub(super) fn derive(&self, bind_addr: &str) -> DerivedUrls {
        let public_url = self.public_url.clone().unwrap_or_else(|| {
            Url::parse(&format!("http://{bind_addr}")).unwrap_or_else(|_| fixed_url("http://127.0.0.1"))
        });
        let frontend_url = self.frontend_url.clone().unwrap_or_else(|| public_url.clone());
        let frontend_origins = self.frontend_origins.clone().unwrap_or_else(|| {
            let mut origins = vec![origin_of(&frontend_url)];
            let public = origin_of(&public_url);
            if !origins.contains(&public) {
                origins.push(public);
            }
            origins
        });
        DerivedUrls {
            public_url,
            frontend_url,
            frontend_origins,
        }
    }
}

pub(super) fn parse(vars: &mut Vars<'_>, production: bool) -> Http {
    let bind_addr = vars
        .get("BIND_ADDR")
        .unwrap_or_else(|| DEFAULT_BIND_ADDR.to_string());
    if !valid_host_port(&bind_addr) {
        vars.problem(format!("BIND_ADDR must be HOST:PORT, not `{bind_addr}`"));
    }
    let public_url = vars.http_url("PUBLIC_URL");
    let frontend_url = vars.http_url("FRONTEND_URL");
    let frontend_origins = vars.get("FRONTEND_ORIGINS").map(|raw| {
        raw.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .filter_map(|s| match Url::parse(s) {
                Ok(url) if url.host().is_some() => Some(origin_of(&url)),
                _ => {
                    vars.problem(format!(
                        "FRONTEND_ORIGINS entry `{s}` is not an origin like https://app.example.com"
                    ));
                    None
                }
            })
            .collect::<Vec<_>>()
    });
    let cookie_secure = vars.bool("COOKIE_SECURE", false);
    let mut header_read_secs = vars.u32("HTTP_HEADER_READ_TIMEOUT_SECS", DEFAULT_HEADER_READ_TIMEOUT_SECS);
    // Without a bound a client that trickles its headers holds a connection forever.
    if header_read_secs == 0 {
        vars.problem("HTTP_HEADER_READ_TIMEOUT_SECS must be at least 1");
        header_read_secs = DEFAULT_HEADER_READ_TIMEOUT_SECS;
    }
    let metrics_addr = vars
        .get("METRICS_ADDR")
        .and_then(|raw| match raw.parse::<SocketAddr>() {
            Ok(addr) => Some(addr),
            Err(_) => {
                vars.problem(format!(
                    "METRICS_ADDR must be IP:PORT (like 127.0.0.1:9100), not `{raw}`"
                ));
                None
            }
        });
    // Off unless asked: a deployment serving its own SPA does not want ours at `/`.
    let web_client = vars.bool("WEB_CLIENT", false);
    if production {
        if !cookie_secure {
            vars.problem("COOKIE_SECURE must be true in production");
        }
        if public_url.as_ref().is_none_or(|url| url.scheme() != "https") {
            vars.problem("PUBLIC_URL must be set to an https:// URL in production");
        }
    }
    Http {
        bind_addr,
        cookie_secure,
        header_read_timeout: Duration::from_secs(header_read_secs.into()),
        metrics_addr,
        web_client,
        explicit: ExplicitUrls {
            public_url,
            frontend_url,
            frontend_origins,
        },
    }
}

/// `scheme://host[:port]` of a URL, as browsers send it in `Origin`.
pub fn origin_of(url: &Url) -> String {
    url.origin().ascii_serialization()
}

fn valid_host_port(raw: &str) -> bool {
    raw.rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::vars::map;

    #[test]
    fn defaults_follow_the_bind_address() {
        let m = map(&[("BIND_ADDR", "0.0.0.0:9000")]);
        let mut v = Vars::new(&m);
        let http = parse(&mut v, false);
        assert!(v.problems().is_empty());
        assert_eq!(http.header_read_timeout, Duration::from_secs(10));
        assert_eq!(http.metrics_addr, None, "no metrics listener unless asked");
        assert!(!http.web_client, "the web client is off unless asked");
        let urls = http.explicit.derive(&http.bind_addr);
        assert_eq!(urls.public_url.as_str(), "http://0.0.0.0:9000/");
        assert_eq!(urls.frontend_url, urls.public_url);
        assert_eq!(urls.frontend_origins, vec!["http://0.0.0.0:9000".to_string()]);
    }

    #[test]
    fn the_web_client_is_served_when_asked() {
        let m = map(&[("WEB_CLIENT", "true")]);
        let mut v = Vars::new(&m);
        assert!(parse(&mut v, false).web_client);
        assert!(v.problems().is_empty(), "{:?}", v.problems());
    }

    #[test]
    fn malformed_addresses_urls_and_origins_are_each_named() {
        let m = map(&[
            ("BIND_ADDR", "nowhere"),
            ("PUBLIC_URL", "ftp://x"),
            ("FRONTEND_URL", "/relative"),
            ("FRONTEND_ORIGINS", "https://ok.example, not an origin"),
            ("COOKIE_SECURE", "maybe"),
            ("HTTP_HEADER_READ_TIMEOUT_SECS", "0"),
            ("METRICS_ADDR", "localhost:9100"),
            ("WEB_CLIENT", "please"),
        ]);
        let mut v = Vars::new(&m);
        let http = parse(&mut v, false);
        assert_eq!(
            v.into_problems(),
            vec![
                "BIND_ADDR must be HOST:PORT, not `nowhere`".to_string(),
                "PUBLIC_URL must be an absolute http(s) URL, not `ftp://x`".to_string(),
                "FRONTEND_URL must be an absolute http(s) URL, not `/relative`".to_string(),
                "FRONTEND_ORIGINS entry `not an origin` is not an origin like https://app.example.com"
                    .to_string(),
                "COOKIE_SECURE must be true or false, not `maybe`".to_string(),
                "HTTP_HEADER_READ_TIMEOUT_SECS must be at least 1".to_string(),
                "METRICS_ADDR must be IP:PORT (like 127.0.0.1:9100), not `localhost:9100`".to_string(),
                "WEB_CLIENT must be true or false, not `please`".to_string(),
            ]
        );
        assert_eq!(
            http.explicit.derive("127.0.0.1:1").frontend_origins,
            vec!["https://ok.example".to_string()],
            "the valid origins are kept"
        );
    }

    #[test]
    fn production_needs_secure_cookies_and_an_https_public_url() {
        let m = map(&[("PUBLIC_URL", "http://api.example.com")]);
        let mut v = Vars::new(&m);
        parse(&mut v, true);
        assert_eq!(
            v.into_problems(),
            vec![
                "COOKIE_SECURE must be true in production".to_string(),
                "PUBLIC_URL must be set to an https:// URL in production".to_string(),
            ]
        );

        let m = map(&[
            ("PUBLIC_URL", "https://api.example.com"),
            ("COOKIE_SECURE", "true"),
        ]);
        let mut v = Vars::new(&m);
        let http = parse(&mut v, true);
        assert!(v.problems().is_empty(), "{:?}", v.problems());
        assert!(http.cookie_secure);
    }

    #[test]
    fn a_metrics_address_is_read() {
        let m = map(&[("METRICS_ADDR", "0.0.0.0:9100")]);
        let mut v = Vars::new(&m);
        let http = parse(&mut v, true);
        assert_eq!(http.metrics_addr, Some(SocketAddr::from(([0, 0, 0, 0], 9100))));
    }
}
