//! The GraphQL playground served on `GET /graphql`: our own small IDE (editor, variables, docs explorer
//! from introspection, completion, subscriptions over `/graphql/ws`, history), embedded in the binary so it
//! works with no network beyond this server.
//!
//! Why our own: no crate in the registry carries GraphiQL's built assets (async-graphql's and juniper's
//! GraphiQL pages load them from a CDN), and third-party code is not copied into the repository. Plain HTML,
//! CSS and JavaScript modules, no framework, no build step.
//!
//! The assets live under one content hash (`/graphql/assets/<hash>/<file>`), so they are cached for a year
//! and a new build is a new URL; modules import each other by relative path within it. The page itself is
//! `no-cache`, so it always names the current hash. Nothing is inline: the CSP is `'self'` only.

use std::sync::LazyLock;

use axum::{
    extract::Path,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use sha2::{Digest, Sha256};

/// Where the assets are served; the page's links are `ASSETS_PREFIX/<hash>/<file>`.
pub const ASSETS_PREFIX: &str = "/graphql/assets";

/// The page's policy: its own scripts, styles, icon and connections (`'self'` covers the same-origin
/// websocket), nothing inline, nothing from elsewhere, never framed.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// One embedded file.
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $type:expr) => {
        Asset {
            name: $name,
            content_type: $type,
            bytes: include_bytes!(concat!("playground/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file the page loads.
pub static ASSETS: &[Asset] = &[
    asset!("playground.css", "text/css; charset=utf-8"),
    asset!("main.js", JS),
    asset!("editor.js", JS),
    asset!("schema.js", JS),
    asset!("transport.js", JS),
    asset!("history.js", JS),
    asset!("banner.js", JS),
    asset!("favicon.svg", "image/svg+xml"),
];

const PAGE_TEMPLATE: &str = include_str!("playground/index.html");

/// The content hash of all assets together: any change to any file gives every file a new URL, so
/// relative module imports never mix versions.
pub static ASSETS_HASH: LazyLock<String> = LazyLock::new(|| {
    let mut digest = Sha256::new();
    for asset in ASSETS {
        digest.update(asset.name.as_bytes());
        digest.update((asset.bytes.len() as u64).to_le_bytes());
        digest.update(asset.bytes);
    }
    digest.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
});

/// The page, with its asset links pointing at the current hash.
static PAGE: LazyLock<String> =
    LazyLock::new(|| PAGE_TEMPLATE.replace("{{ASSETS}}", &format!("{ASSETS_PREFIX}/{}", *ASSETS_HASH)));

/// `GET /graphql`. Never executes an operation, whatever its query string says.
pub async fn page() -> Response {
    let mut response = (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        PAGE.as_str(),
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    response
}

/// `GET /graphql/assets/{hash}/{file}`: an embedded file under the current hash, cached for a year. A
/// stale hash is a 404 rather than today's file, so a cache never stores new bytes under an old URL.
pub async fn asset(Path((hash, file)): Path<(String, String)>) -> Response {
    let found = ASSETS
        .iter()
        .find(|a| a.name == file)
        .filter(|_| hash == *ASSETS_HASH);
    let Some(asset) = found else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let mut response = asset.bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_links_only_embedded_assets_under_the_hash() {
        let prefix = format!("{ASSETS_PREFIX}/{}/", *ASSETS_HASH);
        let mut linked = 0;
        for part in PAGE.split(&prefix).skip(1) {
            let name = part.split('"').next().unwrap_or_default();
            assert!(ASSETS.iter().any(|a| a.name == name), "{name} is not embedded");
            linked += 1;
        }
        assert!(linked >= 3, "stylesheet, script and icon are linked");
        assert!(!PAGE.contains("{{"), "every placeholder is filled");
        assert!(!PAGE.contains("<script>"), "no inline script");
        assert!(!PAGE.contains("<style"), "no inline style");
        assert!(!PAGE.contains("style=\""), "no inline style attribute");
    }

    #[test]
    fn modules_import_only_embedded_siblings() {
        for asset in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            let text = std::str::from_utf8(asset.bytes).unwrap_or_default();
            for line in text.lines().filter(|l| l.starts_with("import ")) {
                let target = line
                    .split(['"', '\''])
                    .nth(1)
                    .and_then(|t| t.strip_prefix("./"))
                    .unwrap_or_default();
                assert!(ASSETS.iter().any(|a| a.name == target), "{}: {line}", asset.name);
            }
        }
    }
}
