//! The GraphQL endpoints: our own POST handler and the websocket (the playground on GET is in playground.rs).
//!
//! The stock async-graphql handler executes GET requests and treats any content type as JSON; with cookie
//! sessions that lets a foreign page run operations as the user, so POST is written here: JSON only, one
//! operation per request.

use async_graphql::{Executor, ServerError, Value, http::ALL_WEBSOCKET_PROTOCOLS};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::{
    body::Bytes,
    extract::{ConnectInfo, State, WebSocketUpgrade, ws::CloseFrame, ws::Message},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::Utc;
use futures::{SinkExt, StreamExt};
use std::net::SocketAddr;
use tower_sessions::Session;

use super::{cookies, csrf::CsrfToken, guards};
use crate::{
    crypto::ExposeSecret,
    error::AppError,
    graphql::{ClientInfo, introspection::Introspection, text_inputs::TextInputs},
    schema::ChronosSchema,
    session::{TypedSession, Viewer},
    state::AppState,
};

/// The signed-in viewer of a request, after the CSRF check that guards every POST carrying the session
/// cookie. The token is compared with the one bound to the session the cookie names.
async fn authenticate(
    state: &AppState,
    session: &TypedSession,
    headers: &HeaderMap,
    require_csrf: bool,
) -> Result<Viewer, AppError> {
    let has_session_cookie =
        cookies::request_cookie(headers, cookies::session_cookie_name(&state.settings)).is_some();
    if require_csrf
        && has_session_cookie
        && let Some(binding) = session.csrf_binding().await?
    {
        let presented = headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !CsrfToken::verify(
            state.settings.csrf_secret.expose_secret().as_bytes(),
            &binding,
            presented,
        ) {
            return Err(AppError::Forbidden("missing or invalid X-CSRF-Token".into()));
        }
    }
    let user_id = session.user_id(Utc::now()).await?;
    Ok(Viewer {
        user_id,
        session_id: session.id(),
    })
}

fn client_info(peer: SocketAddr, headers: &HeaderMap) -> ClientInfo {
    ClientInfo {
        ip: peer.ip(),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    }
}

/// A GraphQL-shaped refusal with the right HTTP status (429 carries Retry-After).
fn refusal(error: AppError) -> Response {
    let status = error.status();
    let retry_after = match &error {
        AppError::RateLimited { retry_after_secs } => Some(*retry_after_secs),
        _ => None,
    };
    let body = async_graphql::Response::from_errors(vec![
        async_graphql::Error::from(error).into_server_error(async_graphql::Pos::default()),
    ]);
    let mut response = (status, axum::Json(body)).into_response();
    if let Some(value) = retry_after.and_then(|s| HeaderValue::from_str(&s.to_string()).ok()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

pub async fn graphql_post(
    State(state): State<AppState>,
    State(schema): State<ChronosSchema>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    session: Session,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !is_json(&headers) {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            axum::Json(serde_json::json!({
                "error": { "code": "BAD_USER_INPUT", "message": "Content-Type must be application/json" }
            })),
        )
            .into_response();
    }
    if let Err(e) = guards::check_origin(&headers, &state.settings) {
        return e.into_response();
    }
    // One operation per request (the rate and in-flight limits count requests): a batch is refused with
    // its own message rather than as a malformed body.
    if body.trim_ascii_start().first() == Some(&b'[') {
        return AppError::bad_input(
            "body",
            "batched requests (a JSON array of operations) are not supported: send each operation as its \
             own request, a JSON object with `query` (and `variables`, `operationName`)",
        )
        .into_response();
    }
    let request: async_graphql::Request = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            return AppError::bad_input(
                "body",
                format!("expected one GraphQL request as a JSON object ({e})"),
            )
            .into_response();
        }
    };
    let session = TypedSession(session);
    let viewer = match authenticate(&state, &session, &headers, true).await {
        Ok(viewer) => viewer,
        Err(e) => return refusal(e),
    };
    let client = client_info(peer, &headers);
    let limited = match viewer.user_id {
        Some(user_id) => state.rate_limits.api_user.check(&user_id),
        None => state.rate_limits.api_ip.check(&client.ip),
    };
    if let Err(e) = limited {
        return refusal(e);
    }
    if viewer.user_id.is_some()
        && let Err(e) = session.touch(Utc::now(), client.user_agent.as_deref()).await
    {
        return refusal(e);
    }
    let mut request = request;
    request.data = crate::schema::request_data(&state, viewer);
    let request = request.data(session).data(client);
    let executor = guarded(schema, &state);
    let mut response = executor.execute(request).await;
    label_uncoded_errors(&mut response.errors);
    axum::Json(response).into_response()
}

/// The schema behind the checks every transport applies before anything executes: plain-text inputs, and
/// introspection only where published.
fn guarded(schema: ChronosSchema, state: &AppState) -> TextInputs<Introspection<ChronosSchema>> {
    TextInputs::new(Introspection::new(schema, state.settings.graphql.introspection))
}

/// Errors with no code of their own: raised before any resolver ran (syntax, validation, depth and
/// complexity limits) or while a resolver read its arguments, they are the client's to fix; anything else
/// is a server fault, logged here and answered as `INTERNAL` without its details.
fn label_uncoded_errors(errors: &mut [ServerError]) {
    for error in errors {
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_some() {
            continue;
        }
        if is_client_error(&error.path, &error.message) {
            extensions.set("code", Value::from("BAD_USER_INPUT"));
        } else {
            tracing::error!(message = %error.message, path = ?error.path, "uncoded error in a resolver");
            extensions.set("code", Value::from("INTERNAL"));
            error.message = "internal error".to_owned();
        }
    }
}

/// Requests fail before execution with no path; an argument that does not parse fails at execution with
/// async-graphql's "Failed to parse" message.
fn is_client_error(path: &[async_graphql::PathSegment], message: &str) -> bool {
    path.is_empty() || message.starts_with("Failed to parse")
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// Subscriptions over `graphql-transport-ws` or `graphql-ws`. The Origin is checked before the upgrade
/// (cross-site websocket hijacking); the socket closes with 1001 when the server shuts down.
pub async fn graphql_ws(
    State(state): State<AppState>,
    State(schema): State<ChronosSchema>,
    session: Session,
    headers: HeaderMap,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    if let Err(e) = guards::check_origin(&headers, &state.settings) {
        return e.into_response();
    }
    let session = TypedSession(session);
    let viewer = match authenticate(&state, &session, &headers, false).await {
        Ok(viewer) => viewer,
        Err(e) => return e.into_response(),
    };
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| {
            let tasks = state.tasks.clone();
            tasks.track_future(async move {
                let (mut sink, stream) = socket.split();
                let shutdown = state.shutdown.clone();
                let stream = stream.take_until(async move { shutdown.cancelled().await });
                let data = crate::schema::request_data(&state, viewer);
                let executor = guarded(schema, &state);
                GraphQLWebSocket::new_with_pair(&mut sink, stream, executor, protocol)
                    .with_data(data)
                    .serve()
                    .await;
                if state.shutdown.is_cancelled() {
                    let _ = sink
                        .send(Message::Close(Some(CloseFrame {
                            code: 1001,
                            reason: "server shutting down".into(),
                        })))
                        .await;
                }
                let _ = sink.close().await;
            })
        })
}

#[cfg(test)]
mod tests {
    use async_graphql::{PathSegment, Pos};

    use super::*;

    fn labelled(error: ServerError) -> ServerError {
        let mut errors = [error];
        label_uncoded_errors(&mut errors);
        let [error] = errors;
        error
    }

    fn code(error: &ServerError) -> Option<String> {
        match error.extensions.as_ref()?.get("code")? {
            Value::String(code) => Some(code.clone()),
            _ => None,
        }
    }

    #[test]
    fn errors_before_execution_are_the_clients() {
        let error = labelled(ServerError::new(
            "Unknown field \"nope\"",
            Some(Pos { line: 1, column: 3 }),
        ));
        assert_eq!(code(&error).as_deref(), Some("BAD_USER_INPUT"));
        assert_eq!(error.message, "Unknown field \"nope\"");
    }

    #[test]
    fn arguments_that_do_not_parse_are_the_clients() {
        let mut error = ServerError::new("Failed to parse \"Date\": expected a date as yyyy-mm-dd", None);
        error.path = vec![PathSegment::Field("todos".into())];
        let error = labelled(error);
        assert_eq!(code(&error).as_deref(), Some("BAD_USER_INPUT"));
    }

    #[test]
    fn other_uncoded_resolver_errors_are_internal_and_say_nothing() {
        let mut error = ServerError::new("Data `chronos::session::TypedSession` does not exist.", None);
        error.path = vec![PathSegment::Field("signOut".into())];
        let error = labelled(error);
        assert_eq!(code(&error).as_deref(), Some("INTERNAL"));
        assert_eq!(error.message, "internal error");
    }

    #[test]
    fn coded_errors_keep_their_code() {
        let mut error = ServerError::new("not found", None);
        error.path = vec![PathSegment::Field("event".into())];
        error
            .extensions
            .get_or_insert_with(Default::default)
            .set("code", Value::from("NOT_FOUND"));
        let error = labelled(error);
        assert_eq!(code(&error).as_deref(), Some("NOT_FOUND"));
        assert_eq!(error.message, "not found");
    }
}
