// The reference web client: signs in, then shows the week, todos, sync and accounts (one section each,
// chosen by the URL's fragment), kept live by three subscriptions: calendarsChanged, eventChanges and
// syncProgress. Everything goes through the public GraphQL API; nothing here needs another endpoint.

import { AccountsView, signIn, signOut } from "./accounts.js";
import { gql } from "./api.js";
import { $, h } from "./dom.js";
import { showError, showSignInError } from "./errors.js";
import { EventForm } from "./event-form.js";
import { keepSubscribed } from "./live.js";
import { SyncView } from "./sync.js";
import { TodosView } from "./todos.js";
import { WeekView } from "./week.js";

const CALENDAR = "id accountId googleCalendarId summary primary backgroundColor cacheStatus accessRole timeZone";
/// Colours for calendars Google gave none.
const PALETTE = ["#4f6bed", "#0b8043", "#d50000", "#f4511e", "#8e24aa", "#039be5", "#e67c73", "#616161"];

const notice = $("notice");
let calendars = [];
const onError = (error) => {
  showError(notice, error);
  if (error.code === "UNAUTHENTICATED") showSignedOut();
};
const colorOf = (id) => {
  const index = calendars.findIndex((c) => c.id === id);
  return calendars[index]?.backgroundColor ?? PALETTE[Math.max(index, 0) % PALETTE.length];
};
const views = {};

showSignInError(notice, location.search);
boot();

async function boot() {
  let data;
  try {
    // The change stream starts from the latest change as of now, read before the week is: the week
    // shows everything up to it, the stream everything after (not the whole history).
    data = await gql(`{ me { email name } calendars { ${CALENDAR} } eventChangesCursor }`);
  } catch (error) {
    if (error.code !== "UNAUTHENTICATED") onError(error);
    showSignedOut();
    return;
  }
  if (!data.me) {
    showSignedOut();
    return;
  }
  calendars = data.calendars;
  $("user").replaceChildren(h("span", {}, data.me.name ?? data.me.email),
    h("button", { type: "button", class: "small", id: "header-sign-out", onclick: () => signOut().catch(onError) }, "Sign out"));
  $("nav").hidden = false;
  const writable = () => calendars.filter((c) => c.accessRole === "owner" || c.accessRole === "writer");
  // New events go to the primary calendar of the account the user signed in with.
  const defaultCalendarId = () =>
    (calendars.find((c) => c.primary && c.googleCalendarId === data.me.email) ?? writable()[0])?.id;
  const form = new EventForm($("event-dialog"), {
    writableCalendars: writable,
    defaultCalendarId,
    onSaved: () => views.week.refresh(),
  });
  views.week = new WeekView($("view-week"), {
    calendars: () => calendars,
    colorOf,
    onOpen: (event) => form.edit(event),
    onNew: (day) => form.create(day),
    onError,
  });
  views.todos = new TodosView($("view-todos"), { onError });
  views.sync = new SyncView($("view-sync"), { calendars: () => calendars, onError });
  views.accounts = new AccountsView($("view-accounts"), { colorOf, onError });
  document.body.dataset.signedIn = "true";
  window.addEventListener("hashchange", route);
  route();
  views.week.load();
  goLive(data.eventChangesCursor);
  document.body.dataset.ready = "true";
}

function showSignedOut() {
  document.body.dataset.signedIn = "false";
  $("nav").hidden = true;
  $("user").replaceChildren();
  for (const section of document.querySelectorAll("main > section")) section.hidden = section.id !== "signed-out";
  $("sign-in").onclick = () => signIn().catch(onError);
  document.body.dataset.ready = "true";
}

/// Shows the section the fragment names (the week by default) and refreshes it.
function route() {
  const name = location.hash.slice(1) || "week";
  // Another fragment (the skip link's #main) keeps the section shown.
  const current = views[name] ? name : (document.body.dataset.view ?? "week");
  for (const section of document.querySelectorAll("main > section")) section.hidden = section.id !== `view-${current}`;
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.view === current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.body.dataset.view = current;
  if (current === "week") views.week.render();
  else views[current].show();
}

function goLive(since) {
  const week = views.week;
  const state = (name) => (status, error) => {
    document.body.dataset[name] = status;
    if (status === "stopped") onError(error);
  };
  keepSubscribed(`subscription { calendarsChanged { ${CALENDAR} } }`, {
    onState: state("calendarsLive"),
    onData: (data) => {
      const before = calendars.map((c) => `${c.id}:${c.cacheStatus}`).join();
      calendars = data.calendarsChanged;
      // A calendar that finished caching (or appeared) has events the week has not loaded yet.
      if (calendars.map((c) => `${c.id}:${c.cacheStatus}`).join() !== before) week.refresh();
      else week.render();
      if (document.body.dataset.view === "accounts") views.accounts.show();
    },
  });
  // The cursor of the last message: a new socket resumes after it.
  let cursor = since;
  keepSubscribed("subscription($since: String) { eventChanges(since: $since) { changes { eventId } cursor hasMore } }", {
    variables: () => ({ since: cursor }),
    onState: state("eventsLive"),
    onData: ({ eventChanges }) => {
      cursor = eventChanges.cursor;
      if (eventChanges.changes.length) week.refresh();
      // Caught up with every change so far: from here on, a change at Google shows within moments.
      if (!eventChanges.hasMore) week.root.dataset.live = "true";
    },
  });
  keepSubscribed("subscription { syncProgress { configId runId phase done total created updated deleted failed expectedFinishAt at } }", {
    onState: state("syncLive"),
    onData: (data) => views.sync.onProgress(data.syncProgress),
  });
}
