// Drives Debian's headless Chromium through the playground of a running Chronos, with every request
// outside loopback blocked: the page renders from the server alone, runs `{ __typename }`, signs in
// through the Google emulator's account chooser, queries as the signed-in user and receives a
// subscription's messages over the websocket. Writes docs/playground.png; on failure, a screenshot to
// the path given by --failure-screenshot.
//
//   node tests/browser/playground.mjs http://127.0.0.1:PORT [--failure-screenshot PATH] [--account EMAIL]

import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { check, commandLine, finish, launch, step } from "./support.mjs";

const { base, option } = commandLine(
  "node playground.mjs http://127.0.0.1:PORT [--failure-screenshot PATH] [--account EMAIL]",
);
const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const screenshot = option("--screenshot", resolve(repo, "docs/playground.png"));
const failureShot = option("--failure-screenshot", resolve(repo, "target/playground-failure.png"));
const account = option("--account", "alice@demo.chronos.dev");
const TIMEOUT = 20_000;

const { browser, blocked, problems, newContext, watch } = await launch();
const context = await newContext({ viewport: { width: 1360, height: 820 }, colorScheme: "light" });
const page = await context.newPage();
watch(page);
page.setDefaultTimeout(TIMEOUT);

/// Replaces the editor's text, runs it with Ctrl+Enter, and returns the parsed result once one arrives.
async function run(target, query, variables = {}) {
  await target.evaluate(() => {
    document.getElementById("result").textContent = "";
  });
  await target.fill("#variables", JSON.stringify(variables));
  await target.fill("#query", query);
  await target.press("#query", "Control+Enter");
  await target.waitForFunction(() => document.getElementById("result").textContent.trim().length > 0);
  const text = await target.textContent("#result");
  return JSON.parse(text);
}

async function data(target, query, variables) {
  const body = await run(target, query, variables);
  check(!body.errors, `${query}: ${JSON.stringify(body.errors)}`);
  return body.data;
}

async function openPlayground(target, path = "/graphql") {
  await target.goto(`${base}${path}`);
  await target.waitForSelector("body[data-ready=true]");
}

await finish("playground", { browser, blocked, problems, page, failureShot }, async () => {
  step("the playground renders from the server alone");
  await openPlayground(page);
  check((await page.title()).includes("Chronos"), "page title");
  const typename = await data(page, "{ __typename }");
  check(typename.__typename === "Query", `__typename: ${JSON.stringify(typename)}`);
  check(/^200\b/.test(await page.textContent("#status")), "status shows 200");

  step("the docs explorer is built from introspection");
  await page.click("#toggle-docs");
  await page.click("#docs-body >> text=Query");
  await page.waitForSelector('#docs-body .field[data-field="calendars"]');
  const calendarsDoc = await page.textContent('#docs-body .field[data-field="calendars"]');
  check(calendarsDoc.includes("accountId") && calendarsDoc.includes("[Calendar!]!"), calendarsDoc);

  step("field names complete from the schema");
  await page.fill("#query", "{\n  ");
  await page.focus("#query");
  await page.press("#query", "End");
  // Focus leaves the editor and comes straight back, as a quick click away does: the close scheduled
  // on leaving must not close the list opened since. The page-side timer below is set after that
  // close's and runs longer, so it fires after it: an order, not a guess at timing.
  await page.focus("#toggle-docs");
  await page.focus("#query");
  await page.keyboard.type("cal");
  await page.waitForSelector("#completions:not([hidden]) li");
  await page.evaluate(() => new Promise((done) => setTimeout(done, 300)));
  check(await page.isVisible("#completions li"), "the list stays open after focus comes back");
  const offered = await page.$$eval("#completions li span:first-child", (items) => items.map((i) => i.textContent));
  check(offered.includes("calendars"), `completions: ${offered}`);
  await page.keyboard.press("Enter");
  check((await page.inputValue("#query")).includes("calendars"), "accepting completes the name");

  step("a failed sign-in shows a readable banner");
  await openPlayground(page, "/graphql?error=account_in_use");
  const banner = await page.textContent("#banner");
  check(banner.includes("account_in_use") && banner.includes("already connected"), banner);
  check(await page.isVisible("#banner"), "banner visible");
  await openPlayground(page);
  check(!(await page.isVisible("#banner")), "no banner without an error");

  step(`signs in through the emulator's chooser as ${account}`);
  const anonymous = await data(page, "{ me { email } }");
  check(anonymous.me === null, "not signed in yet");
  const start = await data(page, "mutation { startGoogleSignIn { url } }");
  const authorize = start.startGoogleSignIn.url;
  check(await page.isVisible(`#result a[href="${authorize}"]`), "the URL is a link");
  await page.goto(authorize);
  await page.click(`a.account[data-email="${account}"]`);
  await page.waitForURL(`${base}/graphql**`);
  await page.waitForSelector("body[data-ready=true]");
  check(!(await page.isVisible("#banner")), "landed without an error");
  const me = await data(page, "{ me { email name } }");
  check(me.me?.email === account, `me: ${JSON.stringify(me)}`);

  step("receives a subscription's messages over the websocket");
  let calendars = [];
  const deadline = Date.now() + TIMEOUT;
  while (Date.now() < deadline) {
    calendars = (await data(page, "{ calendars { id summary primary } }")).calendars;
    if (calendars.some((c) => c.primary) && calendars.some((c) => c.summary === "Work")) break;
    await page.waitForTimeout(250);
  }
  const primary = calendars.find((c) => c.primary);
  const work = calendars.find((c) => c.summary === "Work");
  check(primary && work, `calendars: ${JSON.stringify(calendars)}`);
  const created = await data(
    page,
    "mutation($input: CreateSyncConfigInput!) { createSyncConfig(input: $input) { id } }",
    { input: { sourceCalendarId: work.id, destinationCalendarId: primary.id, direction: "ONE_WAY" } },
  );
  const configId = created.createSyncConfig.id;
  const listener = await context.newPage();
  watch(listener);
  listener.setDefaultTimeout(TIMEOUT);
  await openPlayground(listener);
  await listener.fill("#variables", "{}");
  await listener.fill("#query", "subscription {\n  syncProgress {\n    phase\n    created\n    runId\n  }\n}");
  await listener.press("#query", "Control+Enter");
  await listener.waitForSelector("#result[data-subscription=subscribed]");
  let received = false;
  for (let attempt = 0; attempt < 3 && !received; attempt++) {
    await data(page, "mutation($id: ID!) { triggerSync(configId: $id) { id } }", { id: configId });
    received = await listener
      .waitForFunction(() => Number(document.getElementById("result").dataset.messages) > 0, null, { timeout: 10_000 })
      .then(() => true)
      .catch(() => false);
  }
  check(received, "a syncProgress message arrived");
  const message = await listener.textContent("#result .msg");
  check(message.includes('"syncProgress"') && message.includes('"phase"'), message);
  await listener.click("#stop");
  await listener.close();

  step("history keeps the operations run");
  await page.click("#toggle-history");
  const history = await page.$$eval("#history-list li", (items) => items.map((i) => i.textContent));
  check(history.some((h) => h.includes("triggerSync")), `history: ${history}`);
  await page.click("#toggle-history");

  step("a screenshot of a query result");
  if (!(await page.isVisible("#docs"))) await page.click("#toggle-docs");
  await page.click('#docs-path >> text=Schema');
  await page.click("#docs-body a >> text=/^Calendar$/");
  await data(page, "{\n  me {\n    email\n    name\n  }\n  calendars {\n    summary\n    primary\n    timeZone\n  }\n}");
  mkdirSync(dirname(screenshot), { recursive: true });
  await page.screenshot({ path: screenshot });

  console.log(`screenshot ${screenshot}`);
});
