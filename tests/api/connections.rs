//! Connections over raw TCP: a client that is slow to send its request headers does not hold a connection.

use std::time::{Duration, Instant};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::helpers::TestApp;

/// Short, so the tests run quickly; the bound below is generous against a loaded machine.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(1);
const CLOSED_WITHIN: Duration = Duration::from_secs(15);

async fn slow_header_app() -> TestApp {
    TestApp::spawn_with(|settings| settings.header_read_timeout = HEADER_READ_TIMEOUT).await
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.address.trim_start_matches("http://"))
        .await
        .expect("connect")
}

/// Reads one response (head and a `content-length` body) and returns it as text.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    let read = async {
        loop {
            if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&received[..end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|line| line.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().expect("content-length"));
                if received.len() >= end + 4 + length {
                    break;
                }
            }
            let n = stream.read(&mut chunk).await.expect("read");
            assert!(
                n > 0,
                "closed mid-response: {:?}",
                String::from_utf8_lossy(&received)
            );
            received.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("a response");
    String::from_utf8_lossy(&received).into_owned()
}

/// Waits for the server to close the connection: end of stream, or a reset. Returns how long it took and
/// what was received before.
async fn wait_for_close(stream: &mut TcpStream) -> (Duration, Vec<u8>) {
    let started = Instant::now();
    let mut received = Vec::new();
    let closed = tokio::time::timeout(CLOSED_WITHIN, async {
        let mut chunk = [0u8; 1024];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the server kept the connection open for {CLOSED_WITHIN:?}"
    );
    (started.elapsed(), received)
}

#[tokio::test]
async fn a_client_that_stalls_in_its_request_headers_is_disconnected() {
    let app = slow_header_app().await;

    // Positive control on the same channel: complete requests on a raw connection are answered, two in a
    // row on one keep-alive connection (so closing is not simply what every connection gets).
    let mut stream = connect(&app).await;
    for _ in 0..2 {
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: chronos.test\r\n\r\n")
            .await
            .expect("write");
        let response = read_response(&mut stream).await;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.ends_with("ok"), "{response}");
    }

    // A request line and one header, then nothing: cut off once the header timeout runs out.
    let mut stalled = connect(&app).await;
    stalled
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: chronos.test\r\n")
        .await
        .expect("write");
    let (after, received) = wait_for_close(&mut stalled).await;
    assert!(
        after >= HEADER_READ_TIMEOUT - Duration::from_millis(100),
        "closed after {after:?}, before the timeout ran out"
    );
    assert!(
        !String::from_utf8_lossy(&received).starts_with("HTTP/1.1 200"),
        "a partial request was answered: {:?}",
        String::from_utf8_lossy(&received)
    );

    // Half a request line is no better.
    let mut half_line = connect(&app).await;
    half_line.write_all(b"GET /heal").await.expect("write");
    wait_for_close(&mut half_line).await;

    // The server still serves new connections.
    let mut fresh = connect(&app).await;
    fresh
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: chronos.test\r\n\r\n")
        .await
        .expect("write");
    assert!(read_response(&mut fresh).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn a_client_that_connects_and_sends_nothing_is_disconnected() {
    let app = slow_header_app().await;
    // Positive control: a connection that speaks in time is answered.
    let mut speaking = connect(&app).await;
    speaking
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: chronos.test\r\n\r\n")
        .await
        .expect("write");
    assert!(read_response(&mut speaking).await.starts_with("HTTP/1.1 200"));

    let mut silent = connect(&app).await;
    let (after, received) = wait_for_close(&mut silent).await;
    assert!(received.is_empty(), "{received:?}");
    assert!(
        after >= HEADER_READ_TIMEOUT - Duration::from_millis(100),
        "closed after {after:?}"
    );
}
