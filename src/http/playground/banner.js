// The banner for `?error=<code>`: where a failed sign-in or connect lands, with what to do next.

const MESSAGES = {
  account_in_use:
    "That Google account is already connected to another Chronos user. Sign in as that user to use it, or disconnect it there first.",
  invalid_state:
    "The sign-in link expired or was already used (or was opened in another browser). Run startGoogleSignIn again and open the new URL in this browser.",
  access_denied:
    "Google access was not granted. Run startGoogleSignIn again and allow access to continue.",
  token_exchange_failed:
    "Google did not accept the sign-in code. Try again; if it keeps failing, check the server's Google client settings.",
  missing_calendar_scope:
    "Calendar access was not granted. Run startGoogleSignIn again and allow access to your calendars.",
  not_signed_in:
    "Connecting another account needs a signed-in user. Sign in first with startGoogleSignIn, then run connectGoogleAccount.",
  internal: "Something went wrong on the server while signing in. Try again; the server log has the details.",
};

/// Shows the banner for the page's `error` parameter, if any. Returns the code shown, or null.
export function showErrorBanner(banner, search) {
  const code = new URLSearchParams(search).get("error");
  if (!code) return null;
  const sentence =
    MESSAGES[code] ?? "Signing in did not complete. Run startGoogleSignIn again to retry.";
  banner.replaceChildren();
  const title = document.createElement("strong");
  title.textContent = "Sign-in failed";
  const codeEl = document.createElement("code");
  codeEl.textContent = code;
  const text = document.createElement("span");
  text.textContent = sentence;
  const close = document.createElement("button");
  close.type = "button";
  close.className = "small";
  close.textContent = "Dismiss";
  close.addEventListener("click", () => {
    banner.hidden = true;
    const url = new URL(location.href);
    url.searchParams.delete("error");
    history.replaceState(null, "", url);
  });
  banner.append(title, codeEl, text, close);
  banner.dataset.code = code;
  banner.hidden = false;
  return code;
}
