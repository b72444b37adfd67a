// Subscriptions that stay open: each is one graphql-transport-ws subscription (transport.js), opened again
// after the socket drops, with a growing pause. `eventChanges` resumes from the last cursor received, so
// nothing is missed and nothing comes twice.

import { subscribe } from "./transport.js";

/// Keeps `query` subscribed. `variables()` is read at each (re)subscription; `onData(data)` gets each
/// message's data; `onState("connecting" | "subscribed" | "live" | "stopped", error?)` follows the connection. An error
/// with a code (signed out, say) stops retrying. Returns a function that stops it.
export function keepSubscribed(query, { variables = () => ({}), onData, onState = () => {} }) {
  let stop = null;
  let stopped = false;
  let pause = 500;
  let timer = null;
  const open = () => {
    onState("connecting");
    stop = subscribe(
      { query, variables: variables() },
      {
        // Sent once the server acknowledged the connection and the subscription was sent.
        onStatus: (status) => status === "subscribed" && onState("subscribed"),
        onNext: (payload) => {
          pause = 500;
          if (payload.errors?.length) {
            finish(payload.errors);
            return;
          }
          onState("live");
          onData(payload.data);
        },
        onError: (errors) => finish(errors),
        onComplete: () => finish(null),
      },
    );
  };
  const finish = (errors) => {
    if (stopped) return;
    const code = errors?.[0]?.extensions?.code;
    if (code) {
      stopped = true;
      stop?.();
      onState("stopped", { code, message: errors[0].message });
      return;
    }
    stop?.();
    onState("connecting");
    clearTimeout(timer);
    timer = setTimeout(open, pause);
    pause = Math.min(pause * 2, 15_000);
  };
  open();
  return () => {
    stopped = true;
    clearTimeout(timer);
    stop?.();
  };
}
