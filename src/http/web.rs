//! The reference web client served on `GET /` when `WEB_CLIENT` is on (the demo turns it on): a
//! single-page app in `web/` at the repository root (plain HTML, CSS and JavaScript modules, no build
//! step) that talks to Chronos only through the public GraphQL API, as any SPA would. Served as a
//! [`Bundle`] under `/assets/<hash>/`; the graphql-transport-ws client and the icon are the playground's
//! own files, served in both bundles.

use std::sync::LazyLock;

use axum::{extract::Path, response::Response};

use super::assets::{Asset, Bundle, CSS, JS, SVG};

macro_rules! web {
    ($name:literal, $type:expr) => {
        Asset {
            name: $name,
            content_type: $type,
            bytes: include_bytes!(concat!("../../web/", $name)),
        }
    };
}

/// Every file the page loads.
static ASSETS: &[Asset] = &[
    web!("app.css", CSS),
    web!("main.js", JS),
    web!("api.js", JS),
    web!("live.js", JS),
    web!("dom.js", JS),
    web!("dates.js", JS),
    web!("errors.js", JS),
    web!("accounts.js", JS),
    web!("week.js", JS),
    web!("event-form.js", JS),
    web!("todos.js", JS),
    web!("sync.js", JS),
    Asset {
        name: "transport.js",
        content_type: JS,
        bytes: include_bytes!("playground/transport.js"),
    },
    Asset {
        name: "favicon.svg",
        content_type: SVG,
        bytes: include_bytes!("playground/favicon.svg"),
    },
];

pub static BUNDLE: LazyLock<Bundle> =
    LazyLock::new(|| Bundle::new("/assets", ASSETS, include_str!("../../web/index.html")));

/// `GET /`: the client. A failed sign-in lands here as `/?error=<code>`; the page reads and explains it.
pub async fn page() -> Response {
    BUNDLE.page_response()
}

/// `GET /assets/{hash}/{file}`.
pub async fn asset(Path((hash, file)): Path<(String, String)>) -> Response {
    BUNDLE.asset_response(&hash, &file)
}
