// The playground: wires the editors, the run button, results, subscriptions, history and docs.

import { showErrorBanner } from "./banner.js";
import { QueryEditor } from "./editor.js";
import * as history from "./history.js";
import { DocsExplorer, INTROSPECTION, Schema } from "./schema.js";
import { post, subscribe } from "./transport.js";

const DEFAULT_QUERY = `# Ctrl+Enter runs the operation; Ctrl+Space completes field names; Docs shows the schema.
# To sign in, run startGoogleSignIn and open the URL it returns in this browser:
#   mutation { startGoogleSignIn { url } }
{
  __typename
}
`;

const $ = (id) => document.getElementById(id);
const ui = {
  banner: $("banner"),
  run: $("run"),
  stop: $("stop"),
  status: $("status"),
  query: $("query"),
  variables: $("variables"),
  result: $("result"),
  history: $("history"),
  historyList: $("history-list"),
  docs: $("docs"),
};

let schema = null;
let stopSubscription = null;
const editor = new QueryEditor(ui.query, $("completions"), { onRun: run, getSchema: () => schema });
const docs = new DocsExplorer({ body: $("docs-body"), path: $("docs-path"), search: $("docs-search") });

showErrorBanner(ui.banner, location.search);
const saved = history.savedEditors();
editor.value = saved?.query ?? DEFAULT_QUERY;
ui.variables.value = saved?.variables ?? "{}";
for (const area of [ui.query, ui.variables]) {
  area.addEventListener("input", saveEditors);
  area.addEventListener("change", saveEditors);
}
ui.variables.addEventListener("keydown", (e) => {
  if ((e.ctrlKey || e.metaKey) && e.key === "Enter") {
    e.preventDefault();
    run();
  }
});
ui.run.addEventListener("click", run);
ui.stop.addEventListener("click", () => stopSubscription?.());
$("toggle-docs").addEventListener("click", () => toggle(ui.docs, $("toggle-docs")));
$("toggle-history").addEventListener("click", () => {
  toggle(ui.history, $("toggle-history"));
  renderHistory();
});
$("clear-history").addEventListener("click", () => {
  history.clear();
  renderHistory();
});
loadSchema();
document.body.dataset.ready = "true";

function saveEditors() {
  history.saveEditors(editor.value, ui.variables.value);
}

function toggle(panel, button) {
  panel.hidden = !panel.hidden;
  button.setAttribute("aria-pressed", String(!panel.hidden));
}

async function loadSchema() {
  try {
    const { body } = await post({ query: INTROSPECTION, operationName: "PlaygroundIntrospection" });
    if (body?.data?.__schema) {
      schema = new Schema(body.data);
      docs.setSchema(schema);
    } else {
      docs.unavailable("Introspection is disabled on this server, so there are no docs or completions.");
    }
  } catch (error) {
    docs.unavailable(`Could not load the schema: ${error.message}`);
  }
}

/// The operations of the document (type and name), outside comments and strings, at brace depth 0.
function operations(text) {
  const found = [];
  let depth = 0;
  const re = /#[^\n]*|"(?:\\.|[^"\\\n])*"|[{}]|\b(query|mutation|subscription|fragment)\b\s*([A-Za-z_][A-Za-z0-9_]*)?/g;
  let m;
  while ((m = re.exec(text))) {
    const t = m[0];
    if (t === "{") {
      if (depth === 0 && (!found.length || found[found.length - 1].opened)) {
        found.push({ type: "query", name: null, start: m.index, opened: true });
      } else if (depth === 0) found[found.length - 1].opened = true;
      depth++;
    } else if (t === "}") depth = Math.max(0, depth - 1);
    else if (m[1] && depth === 0) found.push({ type: m[1], name: m[2] ?? null, start: m.index, opened: false });
  }
  return found.filter((op) => op.type !== "fragment");
}

/// The operation to run: the only one, or the one the cursor is in.
function selectedOperation() {
  const ops = operations(editor.value);
  if (ops.length <= 1) return ops[0] ?? { type: "query", name: null };
  const cursor = ui.query.selectionStart;
  return ops.filter((op) => op.start <= cursor).pop() ?? ops[0];
}

function setStatus(text) {
  ui.status.textContent = text;
}

async function run() {
  stopSubscription?.();
  let variables = {};
  const rawVariables = ui.variables.value.trim();
  if (rawVariables) {
    try {
      variables = JSON.parse(rawVariables);
    } catch (error) {
      showResult({ errors: [{ message: `Variables are not valid JSON: ${error.message}` }] });
      setStatus("invalid variables");
      return;
    }
  }
  const operation = selectedOperation();
  const payload = { query: editor.value, variables };
  if (operation.name) payload.operationName = operation.name;
  history.record(editor.value, ui.variables.value);
  if (!ui.history.hidden) renderHistory();
  if (operation.type === "subscription") return runSubscription(payload);
  const started = performance.now();
  setStatus("running…");
  ui.run.disabled = true;
  try {
    const { status, statusText, body } = await post(payload);
    showResult(body);
    setStatus(`${status} ${statusText} · ${Math.round(performance.now() - started)} ms`);
  } catch (error) {
    showResult({ errors: [{ message: `The request failed: ${error.message}` }] });
    setStatus("network error");
  } finally {
    ui.run.disabled = false;
  }
}

function runSubscription(payload) {
  ui.result.replaceChildren();
  ui.result.dataset.messages = "0";
  let count = 0;
  ui.stop.hidden = false;
  const done = (label) => {
    ui.stop.hidden = true;
    stopSubscription = null;
    setStatus(`subscription ${label} · ${count} message${count === 1 ? "" : "s"}`);
  };
  stopSubscription = subscribe(payload, {
    onStatus: (state) => {
      ui.result.dataset.subscription = state;
      setStatus(state === "subscribed" ? "subscribed, waiting for messages…" : `${state}…`);
    },
    onNext: (message) => {
      count++;
      ui.result.dataset.messages = String(count);
      const entry = document.createElement("span");
      entry.className = "msg";
      entry.append(`#${count} at ${new Date().toLocaleTimeString()}\n`, json(message));
      ui.result.prepend(entry);
      setStatus(`subscribed · ${count} message${count === 1 ? "" : "s"}`);
    },
    onError: (errors) => {
      const entry = document.createElement("span");
      entry.className = "msg";
      entry.append(json({ errors }));
      ui.result.prepend(entry);
      done("ended with an error");
    },
    onComplete: () => done("complete"),
  });
}

function showResult(body) {
  ui.result.replaceChildren(typeof body === "string" ? body : json(body));
  delete ui.result.dataset.subscription;
}

/// Pretty JSON as DOM nodes: keys, strings and numbers coloured; URLs clickable (the sign-in URL).
function json(value) {
  const fragment = document.createDocumentFragment();
  const text = JSON.stringify(value, null, 2) ?? "undefined";
  const re = /("(?:\\.|[^"\\])*")(\s*:)?|\b(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)\b/g;
  let last = 0;
  let m;
  while ((m = re.exec(text))) {
    fragment.append(text.slice(last, m.index));
    last = re.lastIndex;
    if (m[1] && m[2]) {
      fragment.append(span("k", m[1]), m[2]);
    } else if (m[1]) {
      const raw = JSON.parse(m[1]);
      if (/^https?:\/\/\S+$/.test(raw)) {
        const link = document.createElement("a");
        link.href = raw;
        link.className = "s";
        link.textContent = m[1];
        fragment.append(link);
      } else fragment.append(span("s", m[1]));
    } else fragment.append(span("n", m[3]));
  }
  fragment.append(text.slice(last));
  return fragment;
}

function span(className, text) {
  const node = document.createElement("span");
  node.className = className;
  node.textContent = text;
  return node;
}

function renderHistory() {
  const items = history.entries().map((entry) => {
    const li = document.createElement("li");
    const firstLine = entry.query.split("\n").find((l) => l.trim() && !l.trim().startsWith("#")) ?? entry.query;
    li.textContent = firstLine.trim();
    li.title = `${entry.at}\n${entry.query}`;
    li.addEventListener("click", () => {
      editor.value = entry.query;
      ui.variables.value = entry.variables ?? "{}";
      saveEditors();
    });
    return li;
  });
  ui.historyList.replaceChildren(...items);
}
