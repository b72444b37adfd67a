//! The GraphQL endpoints: our own POST handler and the websocket (the playground on GET is in playground.rs).
//!
//! The stock async-graphql handler executes GET requests and treats any content type as JSON; with cookie
//! sessions that lets a foreign page run operations as the user, so POST is written here: JSON only, one
//! operation per request.

use async_graphql::{Executor, http::ALL_WEBSOCKET_PROTOCOLS};
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
    error::{AppError, WholeRequest},
    graphql::{
        ClientInfo,
        admission::{self, Admission, Admitted},
        document_guard::DocumentGuard,
        error_codes::CodedErrors,
        in_flight::InFlightLimited,
        introspection::Introspection,
        measured::Measured,
        text_inputs::PlainTextInputs,
    },
    schema::ChronosSchema,
    session::{self, TypedSession, Viewer},
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

/// A GraphQL-shaped refusal with the right HTTP status (429 and 503 carry Retry-After).
fn refusal(error: AppError) -> Response {
    let status = error.status();
    let retry_after = error.retry_after_secs();
    let body = async_graphql::Response::from_errors(vec![
        async_graphql::Error::from(error).into_server_error(async_graphql::Pos::default()),
    ]);
    with_status(status, retry_after, body)
}

/// An executed operation's answer: 200, unless an error answers for the whole request (the server is out
/// of capacity, or refused to run it), whose status and Retry-After it then takes.
fn answer(body: async_graphql::Response) -> Response {
    let whole = body
        .errors
        .iter()
        .find_map(|error| error.source::<WholeRequest>().copied());
    match whole {
        Some(whole) => with_status(whole.status, whole.retry_after_secs, body),
        None => axum::Json(body).into_response(),
    }
}

fn with_status(status: StatusCode, retry_after: Option<u64>, body: async_graphql::Response) -> Response {
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
    // Refused before it executes (CSRF, rate limit), the operation is measured here.
    let started = std::time::Instant::now();
    let operation_name = request.operation_name.clone();
    let refused = |error: AppError| {
        crate::metrics::graphql_operation(
            crate::metrics::operation_label(operation_name.as_deref()),
            error.code().to_owned(),
            started.elapsed(),
        );
        refusal(error)
    };
    let session = TypedSession(session);
    let viewer = match authenticate(&state, &session, &headers, true).await {
        Ok(viewer) => viewer,
        Err(e) => return refused(e),
    };
    let client = client_info(peer, &headers);
    let limited = match viewer.user_id {
        Some(user_id) => state.rate_limits.api_user.check(&user_id),
        None => state.rate_limits.api_ip.check(&client.ip),
    };
    if let Err(e) = limited {
        return refused(e);
    }
    if viewer.user_id.is_some()
        && let Err(e) = session.touch(Utc::now(), client.user_agent.as_deref()).await
    {
        return refused(e);
    }
    let user_id = viewer.user_id;
    let mut request = request;
    request.data = crate::schema::request_data(&state, viewer);
    let request = request.data(session).data(client);
    let executor = guarded(schema, &state, Everything, user_id);
    answer(executor.execute(request).await)
}

/// The schema behind what every transport applies alike: a document within the guard's limits (measured
/// before anything else parses or validates it), plain-text inputs and introspection only where published
/// before anything executes, then one of the user's in-flight slots while it executes, and a contract code
/// on every error after (`extra` admits first), and the whole measured.
fn guarded(
    schema: ChronosSchema,
    state: &AppState,
    extra: impl Admission,
    user_id: Option<uuid::Uuid>,
) -> impl Executor {
    let introspection = Introspection {
        allowed: state.settings.graphql.introspection,
    };
    let limited = InFlightLimited::new(schema, state.rate_limits.in_flight.clone(), user_id);
    let admitted = Admitted::new(Admitted::new(limited, introspection), PlainTextInputs);
    let admitted = Admitted::new(admitted, DocumentGuard::default());
    Measured::new(CodedErrors::new(Admitted::new(admitted, extra)))
}

/// Admits every request: what POST passes to [`guarded`] (its limits are checked before, as HTTP).
#[derive(Clone, Copy)]
struct Everything;

impl Admission for Everything {
    fn admit(
        &self,
        request: async_graphql::Request,
    ) -> Result<async_graphql::Request, async_graphql::ServerError> {
        Ok(request)
    }
}

/// Whose rate limit an operation spends: the signed-in user's, else the client address's (as over POST).
#[derive(Clone, Copy)]
enum LimitKey {
    User(uuid::Uuid),
    Address(std::net::IpAddr),
}

/// Every operation over the websocket spends the same rate limit as a POST would.
#[derive(Clone)]
struct OperationRateLimit {
    state: AppState,
    key: LimitKey,
}

impl Admission for OperationRateLimit {
    fn admit(
        &self,
        request: async_graphql::Request,
    ) -> Result<async_graphql::Request, async_graphql::ServerError> {
        let limited = match self.key {
            LimitKey::User(user_id) => self.state.rate_limits.api_user.check(&user_id),
            LimitKey::Address(ip) => self.state.rate_limits.api_ip.check(&ip),
        };
        limited.map(|()| request).map_err(|e| admission::refusal(e, None))
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// Why the server closes a websocket.
#[derive(Debug, Clone, Copy)]
enum Closing {
    Shutdown,
    SessionEnded,
}

impl Closing {
    fn frame(self) -> CloseFrame {
        let (code, reason) = match self {
            Self::Shutdown => (1001, "server shutting down"),
            // graphql-transport-ws's code for "unauthorized": the client signs in again to reconnect.
            Self::SessionEnded => (4401, "session ended"),
        };
        CloseFrame {
            code,
            reason: reason.into(),
        }
    }
}

/// How long closing may wait on a client that does not read.
const CLOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Subscriptions over `graphql-transport-ws` or `graphql-ws`. The Origin is checked before the upgrade
/// (cross-site websocket hijacking). A socket opened signed in belongs to its session: when the session
/// ends (announced from any instance, or found gone or expired by a periodic re-read) the socket closes
/// with 4401 and whatever ran on it stops; when the server shuts down it closes with 1001.
pub async fn graphql_ws(
    State(state): State<AppState>,
    State(schema): State<ChronosSchema>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    session: Session,
    headers: HeaderMap,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    if let Err(e) = guards::check_origin(&headers, &state.settings) {
        return e.into_response();
    }
    // Listening before the session is read: an end announced after the read is not missed.
    let announcements = state.ended_sessions.subscribe();
    let session = TypedSession(session);
    let viewer = match authenticate(&state, &session, &headers, false).await {
        Ok(viewer) => viewer,
        Err(e) => return e.into_response(),
    };
    let user_id = viewer.user_id;
    let limit_key = match viewer.user_id {
        Some(user_id) => LimitKey::User(user_id),
        None => LimitKey::Address(client_info(peer, &headers).ip),
    };
    // An anonymous socket has nothing to lose when a session ends: it only watches the shutdown.
    let watched = viewer
        .user_id
        .zip(viewer.session_id.clone())
        .map(|(user_id, session_id)| (user_id, session_id, announcements));
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        // The same cap as a POST body.
        .max_message_size(super::MAX_BODY_BYTES)
        .max_frame_size(super::MAX_BODY_BYTES)
        .read_buffer_size(super::WEBSOCKET_READ_BUFFER_BYTES)
        .on_upgrade(move |socket| {
            let tasks = state.tasks.clone();
            tasks.track_future(async move {
                let _open = crate::metrics::websocket_open();
                let (mut sink, stream) = socket.split();
                let data = crate::schema::request_data(&state, viewer);
                let limit = OperationRateLimit {
                    state: state.clone(),
                    key: limit_key,
                };
                let executor = guarded(schema, &state, limit, user_id);
                let served = GraphQLWebSocket::new_with_pair(&mut sink, stream, executor, protocol)
                    .with_data(data)
                    .serve();
                let ending = async {
                    let shutdown = state.shutdown.cancelled();
                    match watched {
                        Some((user_id, session_id, announcements)) => {
                            let every = state.settings.websocket_session_check;
                            let ended =
                                session::ended(&state.sessions, announcements, &session_id, user_id, every);
                            tokio::select! {
                                () = shutdown => Closing::Shutdown,
                                () = ended => Closing::SessionEnded,
                            }
                        }
                        None => {
                            shutdown.await;
                            Closing::Shutdown
                        }
                    }
                };
                // Whichever comes first; the other is dropped, with every operation running on the socket.
                let closing = tokio::select! {
                    () = served => None,
                    closing = ending => Some(closing),
                };
                if let Some(closing) = closing {
                    let close = sink.send(Message::Close(Some(closing.frame())));
                    let _ = tokio::time::timeout(CLOSE_TIMEOUT, close).await;
                }
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.close()).await;
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolver_error(error: AppError) -> async_graphql::Response {
        let mut error = async_graphql::Error::from(error).into_server_error(async_graphql::Pos::default());
        error.path = vec![async_graphql::PathSegment::Field("todoLists".into())];
        async_graphql::Response::from_errors(vec![error])
    }

    #[test]
    fn an_exhausted_pool_met_in_a_resolver_answers_503_with_retry_after() {
        let response = answer(resolver_error(AppError::Overloaded { retry_after_secs: 1 }));
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok()),
            Some("1")
        );
    }

    #[test]
    fn field_errors_leave_the_status_at_200() {
        for error in [
            AppError::NotFound("event"),
            AppError::RateLimited { retry_after_secs: 3 },
            AppError::UpstreamBusy {
                retry_after: std::time::Duration::from_secs(5),
            },
        ] {
            assert_eq!(answer(resolver_error(error)).status(), StatusCode::OK);
        }
    }
}
