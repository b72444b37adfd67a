// Talking to the server: POST /graphql with the CSRF header, and a small graphql-transport-ws client
// for subscriptions on /graphql/ws.

/// The CSRF cookie's value (`__Host-chronos_csrf` in production, `chronos_csrf` in development). Read at
/// every request: signing in changes the session and the server reissues the cookie.
export function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)(?:__Host-)?chronos_csrf=([^;]*)/);
  return match ? decodeURIComponent(match[1]) : null;
}

/// Runs one operation over HTTP. Resolves to { status, body } where body is the parsed JSON (or text).
export async function post(payload) {
  const headers = { "content-type": "application/json", accept: "application/json" };
  const token = csrfToken();
  if (token) headers["x-csrf-token"] = token;
  const response = await fetch("/graphql", {
    method: "POST",
    headers,
    credentials: "same-origin",
    body: JSON.stringify(payload),
  });
  const text = await response.text();
  let body = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON (a proxy's error page, say): shown as text.
  }
  return { status: response.status, statusText: response.statusText, body };
}

let nextId = 0;

/// Runs a subscription over graphql-transport-ws: connection_init, wait for connection_ack, subscribe,
/// then `next` messages until `complete` or `error`; pings are answered. Returns a function that stops it.
export function subscribe(payload, { onStatus, onNext, onError, onComplete }) {
  const url = new URL("/graphql/ws", location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(url, "graphql-transport-ws");
  const id = String(++nextId);
  let finished = false;
  const finish = (callback, value) => {
    if (finished) return;
    finished = true;
    callback(value);
    if (socket.readyState <= WebSocket.OPEN) socket.close(1000);
  };
  const send = (message) => socket.send(JSON.stringify(message));
  onStatus("connecting");
  socket.addEventListener("open", () => send({ type: "connection_init", payload: {} }));
  socket.addEventListener("message", (event) => {
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return;
    }
    switch (message.type) {
      case "connection_ack":
        send({ id, type: "subscribe", payload });
        onStatus("subscribed");
        break;
      case "ping":
        send({ type: "pong" });
        break;
      case "next":
        if (message.id === id) onNext(message.payload);
        break;
      case "error":
        if (message.id === id) finish(onError, message.payload);
        break;
      case "complete":
        if (message.id === id) finish(onComplete);
        break;
    }
  });
  socket.addEventListener("close", (event) => {
    const reason = event.reason ? `: ${event.reason}` : "";
    finish(onError, [{ message: `the connection closed (${event.code}${reason})` }]);
  });
  return () => {
    if (finished) return;
    if (socket.readyState === WebSocket.OPEN) send({ id, type: "complete" });
    finish(onComplete);
  };
}
