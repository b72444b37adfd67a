// Readable errors: one sentence per contract code (`extensions.code`), and one per sign-in failure code
// (`/?error=<code>`, where the OAuth callback lands when signing in or connecting failed).

import { h } from "./dom.js";

const API_MESSAGES = {
  UNAUTHENTICATED: "You are signed out (the session ended or expired). Sign in again to continue.",
  FORBIDDEN: "Chronos refused this request from this page. Reload the page and try again.",
  NOT_FOUND: "That item no longer exists: it may have been deleted in another tab or at Google.",
  BAD_USER_INPUT: "Something in the form is not accepted:",
  CONFLICT: "It changed meanwhile (at Google or in another tab). The latest version is shown; try again.",
  RATE_LIMITED: "Too many requests in a short time. Wait a moment, then try again.",
  UPSTREAM_UNAVAILABLE: "Google could not be reached, so nothing was changed. Try again shortly.",
  NEEDS_REAUTH: "Google no longer accepts this account's access. Reconnect it under Accounts.",
  INTERNAL: "Something went wrong on the server. Try again; the server log has the details.",
  NETWORK: "Chronos could not be reached. Check the connection and try again.",
};

/// Codes whose server message adds what the sentence cannot know (which field, what changed).
const WITH_DETAIL = new Set(["BAD_USER_INPUT", "CONFLICT", "NOT_FOUND", "FORBIDDEN"]);

const SIGN_IN_MESSAGES = {
  account_in_use:
    "That Google account is already connected to another Chronos user. Sign in as that user, or disconnect it there first.",
  invalid_state:
    "The sign-in link expired or was already used (or was opened in another browser). Sign in again.",
  access_denied: "Google access was not granted. Sign in again and allow access to continue.",
  token_exchange_failed:
    "Google did not accept the sign-in. Try again; if it keeps failing, the server's Google client settings need a look.",
  missing_calendar_scope: "Calendar access was not granted. Sign in again and allow access to your calendars.",
  not_signed_in: "Connecting another account needs a signed-in user. Sign in first, then connect the account.",
  internal: "Something went wrong on the server while signing in. Try again; the server log has the details.",
};

export function describe(error) {
  const code = error?.code ?? "INTERNAL";
  const sentence = API_MESSAGES[code] ?? API_MESSAGES.INTERNAL;
  const detail = WITH_DETAIL.has(code) && error.message ? error.message : null;
  return { code, sentence, detail };
}

/// Shows an error in `box` (a role=alert element) with its code; returns the code.
export function showError(box, error) {
  const { code, sentence, detail } = describe(error);
  box.replaceChildren(
    h("strong", {}, sentence),
    detail ? h("span", { class: "detail" }, ` ${detail}`) : "",
    h("code", {}, code),
    dismissButton(box),
  );
  box.dataset.code = code;
  box.hidden = false;
  return code;
}

/// Shows the sign-in failure named by the page's `?error=`, if any; returns its code or null.
export function showSignInError(box, search) {
  const code = new URLSearchParams(search).get("error");
  if (!code) return null;
  const sentence = SIGN_IN_MESSAGES[code] ?? "Signing in did not complete. Try again.";
  box.replaceChildren(h("strong", {}, "Sign-in failed. "), h("span", {}, sentence), h("code", {}, code), dismissButton(box));
  box.dataset.code = code;
  box.hidden = false;
  return code;
}

export function clearError(box) {
  box.hidden = true;
  box.replaceChildren();
  delete box.dataset.code;
}

function dismissButton(box) {
  return h("button", {
    type: "button",
    class: "small",
    onclick: () => {
      clearError(box);
      // The sign-in error stays in the URL until dismissed, so a reload still explains it.
      const url = new URL(location.href);
      if (url.searchParams.has("error")) {
        url.searchParams.delete("error");
        history.replaceState(null, "", url);
      }
    },
  }, "Dismiss");
}
