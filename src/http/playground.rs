//! The GraphQL playground served on `GET /graphql`: our own small IDE (editor, variables, docs explorer
//! from introspection, completion, subscriptions over `/graphql/ws`, history), embedded in the binary so it
//! works with no network beyond this server.
//!
//! Why our own: no crate in the registry carries GraphiQL's built assets (async-graphql's and juniper's
//! GraphiQL pages load them from a CDN), and third-party code is not copied into the repository. Plain HTML,
//! CSS and JavaScript modules, no framework, no build step; served as a [`Bundle`] (one content hash,
//! nothing inline). `transport.js` is shared with the web client, which serves the same file.

use std::sync::LazyLock;

use axum::{extract::Path, response::Response};

use super::assets::{Asset, Bundle, CSS, JS, SVG};

macro_rules! asset {
    ($name:literal, $type:expr) => {
        Asset {
            name: $name,
            content_type: $type,
            bytes: include_bytes!(concat!("playground/", $name)),
        }
    };
}

/// Every file the page loads.
static ASSETS: &[Asset] = &[
    asset!("playground.css", CSS),
    asset!("main.js", JS),
    asset!("editor.js", JS),
    asset!("schema.js", JS),
    asset!("transport.js", JS),
    asset!("history.js", JS),
    asset!("banner.js", JS),
    asset!("favicon.svg", SVG),
];

pub static BUNDLE: LazyLock<Bundle> =
    LazyLock::new(|| Bundle::new("/graphql/assets", ASSETS, include_str!("playground/index.html")));

/// `GET /graphql`. Never executes an operation, whatever its query string says.
pub async fn page() -> Response {
    BUNDLE.page_response()
}

/// `GET /graphql/assets/{hash}/{file}`.
pub async fn asset(Path((hash, file)): Path<(String, String)>) -> Response {
    BUNDLE.asset_response(&hash, &file)
}
