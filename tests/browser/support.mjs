// What the browser tests share: Debian's headless Chromium with every request outside loopback blocked,
// console errors collected, and small assertion helpers.

import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { chromium } from "playwright-core";

export function isLoopback(url) {
  try {
    const { protocol, hostname } = new URL(url);
    if (protocol === "data:" || protocol === "blob:" || protocol === "about:") return true;
    return hostname === "localhost" || hostname === "[::1]" || /^127(\.\d{1,3}){3}$/.test(hostname);
  } catch {
    return false;
  }
}

export function step(text) {
  console.log(`- ${text}`);
}

export function check(condition, message) {
  if (!condition) throw new Error(message);
}

/// The command line: the server's URL first, then `--name value` options.
export function commandLine(usage) {
  const args = process.argv.slice(2);
  const base = args[0]?.replace(/\/$/, "");
  if (!base) {
    console.error(`usage: ${usage}`);
    process.exit(2);
  }
  const option = (name, fallback) => {
    const at = args.indexOf(name);
    return at >= 0 ? args[at + 1] : fallback;
  };
  return { base, option };
}

/// Launches Chromium. Contexts made by `newContext` block every request outside loopback (recorded in
/// `blocked`), and pages made by `watch` record console errors and page errors in `problems`.
export async function launch() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    // Root in CI has no user namespace sandbox; the pages loaded are our own.
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
  const blocked = [];
  const problems = [];
  const newContext = async (options) => {
    const context = await browser.newContext(options);
    await context.route("**/*", (route) => {
      const url = route.request().url();
      if (isLoopback(url)) return route.continue();
      blocked.push(url);
      return route.abort("blockedbyclient");
    });
    return context;
  };
  const watch = (page) => {
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(`console: ${message.text()}`);
    });
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
    return page;
  };
  return { browser, blocked, problems, newContext, watch };
}

/// Ends a run: checks nothing left loopback and nothing logged an error, then prints `<name> browser test
/// passed` (what the Rust side looks for); on any failure prints it with what was blocked or logged,
/// screenshots `page` to `failureShot`, and exits 1.
export async function finish(name, { browser, blocked, problems, page, failureShot }, run) {
  try {
    await run();
    check(blocked.length === 0, `requests outside loopback: ${blocked.join(", ")}`);
    check(problems.length === 0, `console errors:\n${problems.join("\n")}`);
    console.log(`${name} browser test passed`);
    await browser.close();
  } catch (error) {
    console.error(`${name} browser test FAILED: ${error.stack ?? error}`);
    if (problems.length) console.error(problems.join("\n"));
    if (blocked.length) console.error(`blocked: ${blocked.join(", ")}`);
    try {
      mkdirSync(dirname(failureShot), { recursive: true });
      await page.screenshot({ path: failureShot, fullPage: true });
      console.error(`failure screenshot: ${failureShot}`);
    } catch (shotError) {
      console.error(`no failure screenshot: ${shotError.message}`);
    }
    await browser.close();
    process.exit(1);
  }
}
