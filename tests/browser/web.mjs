// Drives Debian's headless Chromium through the reference web client (`web/`) of a running Chronos
// seeded with the demo accounts, with every request outside loopback blocked: signs in through the
// emulator's chooser, reads the seeded week, sees a change made at Google arrive live, creates, splits
// and deletes events (checked at Google), reorders todos by drag and drop, runs a sync and watches it,
// connects a second account and reconnects it after Google revoked it, and measures the first load.
// Writes docs/web-week.png, docs/web-todos.png and docs/web-sync.png; on failure, a screenshot to the
// path given by --failure-screenshot.
//
//   node tests/browser/web.mjs http://127.0.0.1:PORT --emulator http://127.0.0.1:PORT --monday YYYY-MM-DD
//     [--account EMAIL] [--other-account EMAIL] [--docs DIR] [--failure-screenshot PATH]

import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { check, commandLine, finish, launch, step } from "./support.mjs";

const { base, option } = commandLine(
  "node web.mjs http://127.0.0.1:PORT --emulator URL --monday YYYY-MM-DD [--account EMAIL] [--other-account EMAIL] [--docs DIR] [--failure-screenshot PATH]",
);
const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const emulator = option("--emulator")?.replace(/\/$/, "");
const seedMonday = option("--monday");
const account = option("--account", "alice@demo.chronos.dev");
const other = option("--other-account", "bob@demo.chronos.dev");
const docs = option("--docs", resolve(repo, "docs"));
const failureShot = option("--failure-screenshot", resolve(repo, "target/web-failure.png"));
check(emulator && /^\d{4}-\d{2}-\d{2}$/.test(seedMonday ?? ""), "--emulator and --monday are required");
const TIMEOUT = 20_000;
// The demo's "Work" calendar is in New York; the browser is too, so the seeded times read as written.
const ZONE = "America/New_York";
const VIEWPORT = { width: 1360, height: 900 };

const { browser, blocked, problems, newContext, watch } = await launch();
const context = await newContext({ viewport: VIEWPORT, colorScheme: "light", timezoneId: ZONE, locale: "en-GB" });
const page = watch(await context.newPage());
page.setDefaultTimeout(TIMEOUT);

/// `yyyy-mm-dd` of the seed's Monday plus `offset` days.
function seedDay(offset) {
  const [y, m, d] = seedMonday.split("-").map(Number);
  const day = new Date(Date.UTC(y, m - 1, d + offset));
  return day.toISOString().slice(0, 10);
}

/// The UTC instant of a New York wall-clock time on a seed day (the seed weeks are in winter or summer
/// as the calendar says; Intl gives the offset of that day).
function newYork(offset, time) {
  const day = seedDay(offset);
  const guess = new Date(`${day}T${time}:00Z`);
  const shown = new Date(guess.toLocaleString("en-US", { timeZone: ZONE }));
  const utc = new Date(guess.toLocaleString("en-US", { timeZone: "UTC" }));
  return new Date(guess.getTime() + (utc - shown));
}

// --- Google, as the user would reach it outside Chronos (the emulator over HTTP) ---

async function googleToken() {
  const response = await fetch(`${emulator}/emulator/accounts/${encodeURIComponent(account)}/token`, { method: "POST" });
  check(response.ok, `token: ${response.status}`);
  return (await response.json()).access_token;
}

async function google(path, init = {}) {
  const token = await googleToken();
  const response = await fetch(`${emulator}/calendar/v3${path}`, {
    ...init,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...(init.headers ?? {}) },
  });
  const body = await response.json();
  check(response.ok, `${path}: ${response.status} ${JSON.stringify(body)}`);
  return body;
}

async function googleEvents(calendarId) {
  const items = [];
  let pageToken = "";
  do {
    const query = `maxResults=250${pageToken ? `&pageToken=${encodeURIComponent(pageToken)}` : ""}`;
    const body = await google(`/calendars/${encodeURIComponent(calendarId)}/events?${query}`);
    items.push(...body.items);
    pageToken = body.nextPageToken;
  } while (pageToken);
  return items.filter((item) => item.status !== "cancelled");
}

/// Waits until the server has at least `count` live subscribers on `bus` (its /metrics gauge): the
/// readiness signal that a message published now reaches the page.
async function liveSubscribers(bus, count) {
  const deadline = Date.now() + TIMEOUT;
  for (;;) {
    const text = await (await fetch(`${base}/metrics`)).text();
    const line = text.split("\n").find((l) => l.startsWith(`chronos_live_subscriptions{bus="${bus}"}`));
    if (line && Number(line.split(" ").at(-1)) >= count) return;
    check(Date.now() < deadline, `fewer than ${count} live ${bus} subscribers: ${line}`);
    await new Promise((done) => setImmediate(done));
  }
}

// --- The page ---

const event = (summary, day) =>
  `#view-week .event[data-summary="${summary}"]${day === undefined ? "" : `[data-day="${seedDay(day)}"]`}`;

async function openWeekOfSeed(target) {
  await target.waitForSelector("#view-week[data-loaded=true][data-pending=false]");
  // Near midnight the browser's week and the seed's (UTC) week can differ: step to the seed's.
  for (let i = 0; i < 2; i++) {
    const shown = await target.getAttribute("#view-week", "data-week");
    if (shown === seedMonday) break;
    await target.click(shown < seedMonday ? "#week-next" : "#week-prev");
    await target.waitForSelector(`#view-week[data-week="${seedMonday}"][data-loaded=true]`);
  }
  await target.waitForSelector(`#view-week[data-week="${seedMonday}"][data-loaded=true][data-pending=false]`);
}

async function todoTitles(target) {
  return target.$$eval("#todo-items li", (items) => items.map((li) => li.dataset.title));
}

async function waitForTodos(target, titles) {
  await target.waitForFunction(
    (expected) => {
      const list = document.getElementById("todo-items");
      const shown = [...(list?.querySelectorAll("li") ?? [])].map((li) => li.dataset.title);
      return list?.dataset.state === "saved" && JSON.stringify(shown) === JSON.stringify(expected);
    },
    titles,
  );
}

async function shot(target, name) {
  mkdirSync(docs, { recursive: true });
  await target.screenshot({ path: resolve(docs, name) });
}

await finish("web client", { browser, blocked, problems, page, failureShot }, async () => {
  step("signed out, a failed sign-in's code is explained");
  await page.goto(`${base}/?error=account_in_use`);
  await page.waitForSelector("body[data-ready=true][data-signed-in=false]");
  check((await page.title()) === "Chronos", "page title");
  const notice = await page.textContent("#notice");
  check(notice.includes("already connected") && notice.includes("account_in_use"), notice);
  await page.click("#notice button");
  check(!(await page.isVisible("#notice")), "the notice is dismissed");
  check(!page.url().includes("error="), "dismissing drops the code from the URL");

  step(`signs in through the emulator's chooser as ${account}`);
  await page.click("#sign-in");
  await page.click(`a.account[data-email="${account}"]`);
  await page.waitForURL(`${base}/`);
  await page.waitForSelector("body[data-ready=true][data-signed-in=true]");
  check(!(await page.isVisible("#notice")), "landed without an error");

  step("the seeded week: the moved standup instance and the all-day conference");
  await openWeekOfSeed(page);
  await page.waitForSelector(event("Team standup", 0));
  const standups = await page.$$eval(event("Team standup"), (els) => els.map((e) => `${e.dataset.day} ${e.dataset.start}`));
  check(standups.includes(`${seedDay(0)} 09:30`), `Monday's standup at 09:30: ${standups}`);
  check(standups.includes(`${seedDay(2)} 11:00`), `Wednesday's standup moved to 11:00: ${standups}`);
  check(!standups.includes(`${seedDay(2)} 09:30`), `no standup left at Wednesday 09:30: ${standups}`);
  check(standups.includes(`${seedDay(4)} 09:30`), `Friday's standup at 09:30: ${standups}`);
  const conference = await page.$eval(`#view-week .all-day ${event("Conference").slice("#view-week ".length)}`,
    (e) => ({ day: e.dataset.day, days: e.dataset.days }));
  check(conference.day === seedDay(3) && conference.days === "2", `the conference on Thursday and Friday: ${JSON.stringify(conference)}`);
  const lunch = await page.$eval(event("Lunch with Sam", 1), (e) => e.dataset.start);
  check(lunch === "12:00", `lunch on Tuesday at noon: ${lunch}`);
  const colours = await page.$$eval("#view-week .legend li", (items) => items.length);
  check(colours >= 2, `both calendars in the legend: ${colours}`);

  step("an event inserted at Google appears without reload within 3 s");
  await page.waitForSelector("#view-week[data-live=true]");
  await liveSubscribers("cache_changes", 2);
  const inserted = Date.now();
  await google(`/calendars/${encodeURIComponent(account)}/events`, {
    method: "POST",
    body: JSON.stringify({
      summary: "Coffee with Kim",
      start: { dateTime: newYork(3, "15:00").toISOString() },
      end: { dateTime: newYork(3, "15:30").toISOString() },
    }),
  });
  await page.waitForSelector(event("Coffee with Kim", 3), { timeout: 3_000 });
  console.log(`live: a change at Google shown after ${Date.now() - inserted} ms`);

  step("creates an event in the page and finds it at Google");
  await page.click("#new-event");
  await page.waitForSelector("#event-dialog[data-state=open]");
  await page.fill("#ev-summary", "Design review");
  await page.fill("#ev-day", seedDay(1));
  await page.fill("#ev-end-day", seedDay(1));
  await page.fill("#ev-from", "15:00");
  await page.fill("#ev-to", "16:00");
  await page.fill("#ev-location", "Room 2");
  await page.click("#ev-save");
  await page.waitForSelector("#event-dialog[data-state=closed]", { state: "attached" });
  await page.waitForSelector(`${event("Design review", 1)}[data-start="15:00"]`);
  const created = (await googleEvents(account)).filter((e) => e.summary === "Design review");
  check(created.length === 1, `one Design review at Google: ${JSON.stringify(created)}`);
  check(new Date(created[0].start.dateTime).getTime() === newYork(1, "15:00").getTime(), `at 15:00 New York: ${JSON.stringify(created[0].start)}`);
  check(created[0].location === "Room 2", `with its location: ${created[0].location}`);

  step("edits \"this and following\" on a recurring instance: two series at Google");
  await page.click(event("Team standup", 4));
  await page.waitForSelector("#event-dialog[data-state=open] fieldset.scope");
  await page.fill("#ev-summary", "Standup (new format)");
  await page.check("input[name=scope][value=THIS_AND_FOLLOWING]");
  await page.click("#ev-save");
  await page.waitForSelector("#event-dialog[data-state=closed]", { state: "attached" });
  await page.waitForSelector(`${event("Standup (new format)", 4)}[data-start="09:30"]`);
  check(await page.isVisible(event("Team standup", 0)), "Monday's standup keeps its name");
  const calendarList = await google("/users/me/calendarList");
  const work = calendarList.items.find((c) => c.summary === "Work");
  check(work, `the Work calendar: ${JSON.stringify(calendarList.items.map((c) => c.summary))}`);
  const series = (await googleEvents(work.id)).filter((e) => e.recurrence?.length);
  const names = series.map((s) => s.summary).sort();
  check(JSON.stringify(names) === JSON.stringify(["Standup (new format)", "Team standup"]), `two series: ${JSON.stringify(series)}`);
  await shot(page, "web-week.png");

  step("deletes an event in the page: gone there and at Google");
  await page.click(event("Design review", 1));
  await page.waitForSelector("#event-dialog[data-state=open] #ev-delete");
  await page.click("#ev-delete");
  await page.waitForSelector("#event-dialog[data-state=closed]", { state: "attached" });
  await page.waitForSelector(event("Design review"), { state: "detached" });
  check(await page.isVisible(event("Coffee with Kim", 3)), "the other events stay");
  const left = (await googleEvents(account)).map((e) => e.summary);
  check(left.includes("Lunch with Sam") && !left.includes("Design review"), `deleted at Google: ${left}`);

  step("todos: add three, reorder by drag and drop and by keyboard, reload, same order");
  await page.click("#nav a[data-view=todos]");
  await page.waitForSelector("#view-todos[data-loaded=true]");
  await page.fill("#new-list-name", "Errands");
  await page.press("#new-list-name", "Enter");
  await page.waitForSelector("#view-todos[data-loaded=true] #new-todo-title");
  const todos = ["Buy milk", "Call the plumber", "Book flights"];
  for (const [i, title] of todos.entries()) {
    await page.fill("#new-todo-title", title);
    if (i === 0) await page.fill("#new-todo-due", seedDay(5));
    await page.press("#new-todo-title", "Enter");
    await waitForTodos(page, todos.slice(0, i + 1));
  }
  // The upper edge of "Buy milk" drops before it.
  await page.dragAndDrop('#todo-items li[data-title="Book flights"]', '#todo-items li[data-title="Buy milk"]', {
    targetPosition: { x: 40, y: 3 },
  });
  await waitForTodos(page, ["Book flights", "Buy milk", "Call the plumber"]);
  await page.focus('button[aria-label="Move Call the plumber up"]');
  await page.keyboard.press("Enter");
  await waitForTodos(page, ["Book flights", "Call the plumber", "Buy milk"]);
  await page.check('#todo-items li[data-title="Call the plumber"] input[type=checkbox]');
  await page.waitForSelector('#view-todos[data-loaded=true] #todo-items li.completed[data-title="Call the plumber"]');
  await page.reload();
  await page.waitForSelector("#view-todos[data-loaded=true] #todo-items");
  const reloaded = await todoTitles(page);
  check(JSON.stringify(reloaded) === JSON.stringify(["Book flights", "Call the plumber", "Buy milk"]), `after reload: ${reloaded}`);
  check(await page.isChecked('#todo-items li[data-title="Call the plumber"] input[type=checkbox]'), "still completed");
  check((await page.inputValue('#todo-items li[data-title="Buy milk"] input[type=date]')) === seedDay(5), "the due date kept");
  await shot(page, "web-todos.png");

  step("sync: create primary → Work, run it, watch STARTED → FINISHED, find the mirrors at Google");
  await page.click("#nav a[data-view=sync]");
  await page.waitForSelector("#view-sync[data-loaded=true]");
  await page.selectOption("#sync-source", { label: account });
  await page.selectOption("#sync-destination", { label: "Work" });
  await page.click("#new-sync button[type=submit]");
  await page.waitForSelector("#view-sync[data-loaded=true] .sync-config");
  await liveSubscribers("progress", 1);
  await page.click(".sync-config button.run");
  await page.waitForFunction(() => {
    const phases = document.querySelector(".sync-config .progress")?.dataset.phases?.split(" ") ?? [];
    return phases[0] === "STARTED" && phases.at(-1) === "FINISHED";
  });
  const phases = await page.getAttribute(".sync-config .progress", "data-phases");
  const row = ".sync-config .runs tbody tr:first-child";
  await page.waitForSelector(`${row}[data-status=SUCCEEDED]`);
  const counter = async (name) => Number(await page.textContent(`${row} td[data-counter=${name}]`));
  const mirrored = await counter("created");
  check(mirrored >= 2, `the run created the mirrors: ${mirrored}`);
  check((await counter("googleCalls")) >= 1, "the run's Google calls are shown");
  const atWork = (await googleEvents(work.id)).map((e) => e.summary);
  // Next week's events are ahead whatever today is (the config copies from now on, lookback 0).
  for (const summary of ["Dentist", "Gym"]) {
    check(atWork.includes(summary), `${summary} mirrored into Work: ${atWork}`);
  }
  console.log(`sync: phases ${phases}; ${mirrored} mirrors created`);
  await shot(page, "web-sync.png");

  step(`accounts: connects ${other} too; the week says his calendars are caching, then shows them`);
  await page.click("#nav a[data-view=accounts]");
  await page.waitForSelector(`#view-accounts[data-loaded=true] .account[data-email="${account}"][data-status=ACTIVE]`);
  // Google answers event listings slowly for a while: the new calendars land PENDING and stay so.
  const faults = `${emulator}/emulator/faults`;
  const slow = await fetch(faults, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ method: "GET", path: "/events", latencyMs: 4_000 }),
  });
  check(slow.ok, `fault: ${slow.status}`);
  await page.click("#connect-account");
  await page.click(`a.account[data-email="${other}"]`);
  await page.waitForURL(`${base}/`);
  await page.waitForSelector("body[data-ready=true][data-signed-in=true]");
  await page.waitForSelector("#view-week[data-pending=true] .pending");
  const caching = await page.textContent("#view-week .pending");
  check(caching.includes(other) && (await page.isVisible("#view-week .pending")), `the caching state: ${caching}`);
  check((await fetch(faults, { method: "DELETE" })).ok, "faults cleared");
  await page.waitForSelector("#view-week[data-pending=false][data-loaded=true]");
  check(!(await page.isVisible("#view-week .pending")), "the caching note goes once every calendar is cached");
  const legend = await page.$$eval("#view-week .legend li", (items) => items.map((i) => i.dataset.cacheStatus));
  check(legend.length === 4 && legend.every((status) => status === "READY"), `four calendars, all cached: ${legend}`);
  await page.click("#nav a[data-view=accounts]");
  await page.waitForSelector(`#view-accounts[data-loaded=true] .account[data-email="${other}"][data-status=ACTIVE]`);

  step(`a grant revoked at Google: NEEDS_REAUTH explained, "Reconnect" brings ${other} back`);
  const control = (path) => fetch(`${emulator}/emulator/${path}`, { method: "POST" }).then((r) => check(r.ok, `${path}: ${r.status}`));
  await control(`accounts/${encodeURIComponent(other)}/revoke`);
  await control("expire-access-tokens");
  await page.click(`.account[data-email="${other}"] button.refresh`);
  await page.waitForSelector("#notice[data-code=NEEDS_REAUTH]");
  const reauth = await page.textContent("#notice");
  check(reauth.includes("Reconnect it under Accounts"), reauth);
  await page.click(`#view-accounts[data-loaded=true] .account[data-email="${other}"][data-status=NEEDS_REAUTH] button.reconnect`);
  await page.waitForURL(`${base}/`);
  await page.waitForSelector("body[data-ready=true][data-signed-in=true]");
  await page.click("#nav a[data-view=accounts]");
  await page.waitForSelector(`#view-accounts[data-loaded=true] .account[data-email="${other}"][data-status=ACTIVE]`);

  step("phone width: nothing wider than the screen but the week's own scroller");
  const phone = watch(await context.newPage());
  await phone.setViewportSize({ width: 390, height: 844 });
  await phone.goto(`${base}/`);
  await phone.waitForSelector("#view-week[data-loaded=true][data-pending=false]");
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 0, `the page scrolls sideways by ${overflow}px at phone width`);
  await phone.close();

  step("first load: compressed transfer and time to a rendered week (fresh cache each time)");
  const storage = await context.storageState();
  const loads = [];
  for (let i = 0; i < 5; i++) {
    const fresh = await newContext({ viewport: VIEWPORT, timezoneId: ZONE, locale: "en-GB", storageState: storage });
    const cold = watch(await fresh.newPage());
    const finished = [];
    cold.on("requestfinished", (request) => finished.push(request));
    await cold.goto(`${base}/`);
    await cold.waitForSelector("#view-week[data-loaded=true][data-pending=false]");
    const rendered = await cold.evaluate(() => performance.getEntriesByName("week-rendered")[0]?.startTime);
    check(rendered > 0, "the page marked the rendered week");
    // Bodies as they crossed the wire (gzip), and headers apart: both count in a first load.
    const bytes = { assets: 0, api: 0, headers: 0 };
    for (const request of finished) {
      const sizes = await request.sizes();
      bytes[request.url().endsWith("/graphql") ? "api" : "assets"] += sizes.responseBodySize;
      bytes.headers += sizes.responseHeadersSize;
    }
    loads.push({ rendered, ...bytes, requests: finished.length });
    await fresh.close();
  }
  const median = (values) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)];
  const first = loads[0];
  console.log(
    `first load: ${first.requests} requests; compressed bodies ${first.assets + first.api} bytes ` +
      `(page and assets ${first.assets}, GraphQL ${first.api}) plus ${first.headers} bytes of response headers; ` +
      `navigation to rendered week: median ${median(loads.map((l) => l.rendered)).toFixed(0)} ms of ` +
      `${loads.length} cold loads (${loads.map((l) => l.rendered.toFixed(0)).join(", ")})`,
  );

  step("signs out");
  await page.click("#header-sign-out");
  await page.waitForSelector("body[data-ready=true][data-signed-in=false]");

  console.log(`screenshots in ${docs}`);
});
