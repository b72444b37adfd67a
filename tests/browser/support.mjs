// What the browser tests share: Debian's headless Chromium with every request outside loopback blocked,
// console errors collected, and small assertion helpers.

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
