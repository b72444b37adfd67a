//! HTTP in front: routes, the layers every request passes through, and the guards.

mod assets;
mod cookies;
pub mod csrf;
mod graphql;
mod guards;
mod headers;
mod health;
pub mod metrics;
mod oauth_callback;
pub mod playground;
mod request_id;
mod serve;
mod web;
mod webhook;

use std::time::Duration;

use axum::{
    Router,
    body::Body,
    extract::RawQuery,
    http::{Request, Response, StatusCode},
    middleware,
    response::Redirect,
    routing::{get, post},
};
use tower::ServiceBuilder;
use tower_http::{
    compression::CompressionLayer,
    limit::RequestBodyLimitLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    timeout::TimeoutLayer,
    trace::TraceLayer,
};
use tracing::Span;

pub use self::serve::serve;
use crate::{error::AppError, schema::ChronosSchema, state::AppState};

/// What the routes run with: the application's state, and the schema (built by the composition root,
/// above the domains, so the state need not know it).
#[derive(Clone, axum::extract::FromRef)]
pub struct HttpState {
    pub app: AppState,
    pub schema: ChronosSchema,
}

/// Largest request body accepted; GraphQL operations are small, and there are no uploads.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// What a websocket reads from its connection at a time. A longer message is still read whole (the
/// buffer grows to its length, up to [`MAX_BODY_BYTES`]). The library's default, 128 KiB, is zero-filled
/// on every read and so stays resident for every open socket: most of the ~150 KB an idle subscriber
/// cost (`fanout_bench`). A client's messages (subscribe, ping, complete) fit in 1 KiB; 4 KiB cost an
/// idle subscriber 3 KB more.
pub const WEBSOCKET_READ_BUFFER_BYTES: usize = 1024;
/// Longest a request may take before it is answered 408.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

pub fn router(state: AppState, schema: ChronosSchema) -> Router {
    // Only the routes that use the session load it.
    let with_session = Router::new()
        .route("/graphql", playground_route(&state).post(graphql::graphql_post))
        .route("/graphql/ws", get(graphql::graphql_ws))
        .route("/auth/google/callback", get(oauth_callback::google_callback))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            cookies::sync_csrf_cookie,
        ))
        .layer(cookies::session_layer(&state));
    let mut router = Router::new().merge(with_session);
    // A separate listener serves the scrape when one is configured; production never shows it publicly.
    if state.settings.metrics_addr.is_none() && !state.settings.is_production() {
        router = router.route("/metrics", get(metrics::scrape));
    }
    // The web client at `/` when turned on; else `/` leads to the playground.
    router = if state.settings.web_client {
        router
            .route("/", get(web::page))
            .route("/assets/{hash}/{file}", get(web::asset))
    } else {
        router.route("/", get(root))
    };
    router
        .route("/graphql/assets/{hash}/{file}", get(playground::asset))
        .route("/webhooks/google", post(webhook::google_push))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .fallback(|| async { AppError::NotFound("route") })
        .layer(
            ServiceBuilder::new()
                .map_request(request_id::drop_invalid_request_id)
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(request_span)
                        .on_request(())
                        .on_response(log_response)
                        .on_failure(()),
                )
                .layer(PropagateRequestIdLayer::x_request_id())
                .layer(middleware::from_fn_with_state(
                    state.clone(),
                    headers::security_headers,
                ))
                .layer(headers::cors(&state))
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::REQUEST_TIMEOUT,
                    REQUEST_TIMEOUT,
                ))
                .layer(CompressionLayer::new())
                .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES)),
        )
        .with_state(HttpState { app: state, schema })
}

/// `/` is the playground when the web client is off. A failed sign-in lands here as `/?error=<code>` when
/// no frontend is configured: the code goes along, so the playground can tell the person what happened.
async fn root(RawQuery(query): RawQuery) -> Redirect {
    let error = query.as_deref().and_then(|query| {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(key, _)| key == "error")
            .map(|(_, code)| code.into_owned())
    });
    // Only a code-shaped value is carried over: the URL is ours, not a place to inject text.
    match error.filter(|code| {
        !code.is_empty() && code.len() <= 64 && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
    }) {
        Some(code) => Redirect::to(&format!("/graphql?error={code}")),
        None => Redirect::to("/graphql"),
    }
}

/// GraphiQL on `GET /graphql`, or a 404 when `GRAPHIQL` is off (the default in production).
fn playground_route(state: &AppState) -> axum::routing::MethodRouter<HttpState> {
    if state.settings.graphql.graphiql {
        get(playground::page)
    } else {
        get(|| async { AppError::NotFound("route") })
    }
}

/// The span every log line of a request is recorded in. The query string is left out: it can carry
/// OAuth codes and state.
fn request_span(request: &Request<Body>) -> Span {
    let request_id = request
        .headers()
        .get(request_id::HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %request.method(),
        path = %request.uri().path(),
    )
}

fn log_response<B>(response: &Response<B>, latency: Duration, _span: &Span) {
    tracing::info!(
        status = response.status().as_u16(),
        latency_ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
        "response"
    );
}
