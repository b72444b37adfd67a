// Signing in and out, and the connected Google accounts: their status, calendars, and "reconnect" for an
// account Google no longer accepts. Signing in and connecting leave for Google and land back here.

import { gql } from "./api.js";
import { h } from "./dom.js";

/// Where Google's answer lands: this page, same origin (an allowed `redirectTo` by default).
const landing = () => new URL("/", location.href).href;

export async function signIn() {
  const data = await gql("mutation($to: String) { startGoogleSignIn(redirectTo: $to) { url } }", { to: landing() });
  location.assign(data.startGoogleSignIn.url);
}

/// Adds a Google account to the signed-in user; with `email`, reconnects that one.
export async function connectAccount(email) {
  const data = await gql(
    "mutation($to: String, $hint: String) { connectGoogleAccount(redirectTo: $to, loginHint: $hint) { url } }",
    { to: landing(), hint: email ?? null },
  );
  location.assign(data.connectGoogleAccount.url);
}

export async function signOut() {
  await gql("mutation { signOut }");
  location.assign("/");
}

const ACCOUNTS = `{ accounts { id email name status
  calendars { id summary primary backgroundColor cacheStatus accessRole } } }`;

export class AccountsView {
  constructor(root, { colorOf, onError }) {
    this.root = root;
    this.colorOf = colorOf;
    this.onError = onError;
  }

  async show() {
    this.root.dataset.loaded = "false";
    try {
      const { accounts } = await gql(ACCOUNTS);
      this.render(accounts);
    } catch (error) {
      this.onError(error);
    }
  }

  render(accounts) {
    const items = accounts.map((account) =>
      h("li", { class: "account", dataset: { email: account.email, status: account.status } },
        h("div", { class: "account-head" },
          h("strong", {}, account.name ?? account.email),
          h("span", { class: "muted" }, account.email),
          h("span", { class: `badge ${account.status.toLowerCase()}` },
            account.status === "ACTIVE" ? "Connected" : "Needs reconnecting"),
          account.status === "NEEDS_REAUTH"
            ? h("button", { type: "button", class: "primary reconnect", onclick: () => this.act(() => connectAccount(account.email)) },
              `Reconnect ${account.email}`)
            : h("button", { type: "button", class: "small refresh", "aria-label": `Refresh the calendars of ${account.email}`,
              onclick: () => this.refresh(account.id) }, "Refresh calendars")),
        h("ul", { class: "calendar-list" }, account.calendars.map((calendar) => {
          const swatch = h("span", { class: "swatch", "aria-hidden": "true" });
          swatch.style.setProperty("--cal", this.colorOf(calendar.id));
          return h("li", {}, swatch, calendar.summary,
            calendar.primary ? h("span", { class: "muted" }, " (primary)") : null,
            calendar.cacheStatus === "READY" ? null
              : h("span", { class: `badge ${calendar.cacheStatus.toLowerCase()}` },
                calendar.cacheStatus === "PENDING" ? "Caching…" : "Cannot refresh"));
        }))));
    this.root.replaceChildren(
      h("h2", {}, "Accounts"),
      h("ul", { class: "accounts" }, items),
      h("div", { class: "actions" },
        h("button", { type: "button", id: "connect-account", onclick: () => this.act(() => connectAccount()) },
          "Connect another Google account"),
        h("button", { type: "button", id: "sign-out", onclick: () => this.act(signOut) }, "Sign out")),
    );
    this.root.dataset.loaded = "true";
  }

  /// Lists the account's calendars at Google again; a refused grant shows as NEEDS_REAUTH here.
  async refresh(accountId) {
    await this.act(() => gql("mutation($id: ID!) { refreshCalendars(accountId: $id) { id } }", { id: accountId }));
    await this.show();
  }

  async act(action) {
    try {
      await action();
    } catch (error) {
      this.onError(error);
    }
  }
}
