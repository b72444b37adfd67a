//! The connection loop: HTTP/1 (with upgrades, for websockets) and HTTP/2 over one listener, each
//! connection bounded in how long it may take to send a request's headers, and a graceful stop.
//!
//! `axum::serve` sets no header read timeout, so a client trickling its headers held a connection (and a
//! file descriptor) forever; hyper's own connection builder has the knob.

use std::time::Duration;

use axum::{Router, extract::ConnectInfo};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto, graceful::GracefulShutdown},
    service::TowerToHyperService,
};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

/// Serves `router` on `listener` until `shutdown` is cancelled, then stops accepting and gives open
/// connections up to `grace` to finish their requests (idle ones close at once). Handlers see the peer as
/// `ConnectInfo<SocketAddr>`, as with `into_make_service_with_connect_info`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    header_read_timeout: Duration,
    shutdown: CancellationToken,
    grace: Duration,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin on the error.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(Duration::from_millis(100)) => continue,
                    }
                }
            },
        };
        let service = router
            .clone()
            .map_request(move |mut request: axum::http::Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            });
        let builder = builder.clone();
        // Taken before the task starts: a shutdown that begins meanwhile still reaches this connection.
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            if !first_byte_within(&stream, header_read_timeout).await {
                return;
            }
            let connection = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service));
            if let Err(e) = watcher.watch(connection).await {
                tracing::debug!(%peer, error = %e, "connection closed with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open after the grace period were dropped");
    }
}

/// Whether `stream` sends its first byte within `timeout`. Until then hyper is still telling HTTP/1 from
/// HTTP/2 and no header timer runs, so a client that connects and says nothing is dropped here.
async fn first_byte_within(stream: &TcpStream, timeout: Duration) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(timeout, stream.peek(&mut byte)).await,
        Ok(Ok(1..))
    )
}
