//! Pages embedded in the binary with their files: the playground (`/graphql`) and the web client (`/`).
//!
//! Each [`Bundle`] serves its files under one content hash (`<prefix>/<hash>/<file>`), so they are cached
//! for a year and a new build is a new URL; modules import each other by relative path within it. The
//! page itself is `no-cache`, so it always names the current hash. Nothing is inline: the CSP is `'self'`
//! only.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use sha2::{Digest, Sha256};

/// A page's policy: its own scripts, styles, images and connections (`'self'` covers the same-origin
/// websocket), nothing inline, nothing from elsewhere, never framed.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

pub const JS: &str = "text/javascript; charset=utf-8";
pub const CSS: &str = "text/css; charset=utf-8";
pub const SVG: &str = "image/svg+xml";

/// One embedded file.
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

/// A page and the files it loads, under one content hash.
pub struct Bundle {
    /// Where the files are served; the page's links are `prefix/<hash>/<file>`.
    pub prefix: &'static str,
    pub assets: &'static [Asset],
    /// The content hash of all files together: any change to any file gives every file a new URL, so
    /// relative module imports never mix versions.
    pub hash: String,
    /// The page, with `{{ASSETS}}` replaced by `prefix/<hash>`.
    pub page: String,
}

impl Bundle {
    pub fn new(prefix: &'static str, assets: &'static [Asset], template: &str) -> Self {
        let mut digest = Sha256::new();
        for asset in assets {
            digest.update(asset.name.as_bytes());
            digest.update((asset.bytes.len() as u64).to_le_bytes());
            digest.update(asset.bytes);
        }
        let hash: String = digest.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let page = template.replace("{{ASSETS}}", &format!("{prefix}/{hash}"));
        Self {
            prefix,
            assets,
            hash,
            page,
        }
    }

    /// The page: never cached without asking, under the strict CSP.
    pub fn page_response(&self) -> Response {
        let mut response = (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            self.page.clone(),
        )
            .into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
        response
    }

    /// An embedded file under the current hash, cached for a year. A stale hash is a 404 rather than
    /// today's file, so a cache never stores new bytes under an old URL.
    pub fn asset_response(&self, hash: &str, file: &str) -> Response {
        let found = self
            .assets
            .iter()
            .find(|a| a.name == file)
            .filter(|_| hash == self.hash);
        let Some(asset) = found else {
            return (StatusCode::NOT_FOUND, "no such asset").into_response();
        };
        let mut response = asset.bytes.into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundles() -> [&'static Bundle; 2] {
        [&super::super::playground::BUNDLE, &super::super::web::BUNDLE]
    }

    #[test]
    fn pages_link_only_embedded_assets_under_the_hash() {
        for bundle in bundles() {
            let prefix = format!("{}/{}/", bundle.prefix, bundle.hash);
            let mut linked = 0;
            for part in bundle.page.split(&prefix).skip(1) {
                let name = part.split('"').next().unwrap_or_default();
                assert!(
                    bundle.assets.iter().any(|a| a.name == name),
                    "{name} is not embedded"
                );
                linked += 1;
            }
            assert!(linked >= 3, "stylesheet, script and icon are linked");
            assert!(!bundle.page.contains("{{"), "every placeholder is filled");
            assert!(!bundle.page.contains("<script>"), "no inline script");
            assert!(!bundle.page.contains("<style"), "no inline style");
            assert!(!bundle.page.contains("style=\""), "no inline style attribute");
        }
    }

    #[test]
    fn modules_import_only_embedded_siblings() {
        for bundle in bundles() {
            for asset in bundle.assets.iter().filter(|a| a.name.ends_with(".js")) {
                let text = std::str::from_utf8(asset.bytes).unwrap_or_default();
                let mut lines = text.lines();
                while let Some(line) = lines.next() {
                    if !line.starts_with("import ") {
                        continue;
                    }
                    // A long import list continues on the following lines up to its `from`.
                    let mut statement = line.to_owned();
                    while !statement.contains(" from ") && !statement.contains('"') {
                        match lines.next() {
                            Some(next) => statement.push_str(next),
                            None => break,
                        }
                    }
                    let target = statement
                        .split(['"', '\''])
                        .nth(1)
                        .and_then(|t| t.strip_prefix("./"))
                        .unwrap_or_default();
                    assert!(
                        bundle.assets.iter().any(|a| a.name == target),
                        "{}: {statement}",
                        asset.name
                    );
                }
            }
        }
    }
}
