// Sync configs: create one between two calendars, run it, watch its progress live (`syncProgress`,
// subscribed by main.js for every config), and read its run history with the counters and Google calls.

import { gql } from "./api.js";
import { field, h } from "./dom.js";
import { dateTimeText } from "./dates.js";

const CONFIGS = `{ syncConfigs { id direction status statusReason enabled
  source { id summary } destination { id summary } } }`;
const RUNS = `query($id: ID!) { syncRuns(configId: $id, first: 10) { edges { node {
  id status trigger createdAt startedAt finishedAt created updated deleted failed skipped conflicts googleCalls error } } } }`;
const COUNTERS = ["created", "updated", "deleted", "failed", "skipped", "conflicts", "googleCalls"];
const COUNTER_NAMES = { googleCalls: "Google calls" };

export class SyncView {
  /// `calendars()` is the current calendar list.
  constructor(root, { calendars, onError }) {
    Object.assign(this, { root, calendars, onError });
    this.configs = [];
    this.cards = new Map();
    this.progress = new Map();
  }

  async show() {
    this.root.dataset.loaded = "false";
    try {
      this.configs = (await gql(CONFIGS)).syncConfigs;
      this.render();
      await Promise.all(this.configs.map((config) => this.loadRuns(config.id)));
      this.root.dataset.loaded = "true";
    } catch (error) {
      this.onError(error);
    }
  }

  render() {
    const calendars = this.calendars();
    const select = (id, label) => field(label, h("select", { id, required: true },
      calendars.map((c) => h("option", { value: c.id, dataset: { summary: c.summary } }, c.summary))));
    const form = h("form", { class: "inline", id: "new-sync", onsubmit: (e) => { e.preventDefault(); this.create(); } },
      select("sync-source", "From calendar"),
      select("sync-destination", "To calendar"),
      field("Direction", h("select", { id: "sync-direction" },
        h("option", { value: "ONE_WAY" }, "One way"), h("option", { value: "TWO_WAY" }, "Both ways"))),
      h("button", { type: "submit", class: "primary" }, "Create sync"));
    const destination = form.querySelector("#sync-destination");
    if (destination.options.length > 1) destination.selectedIndex = 1;
    this.cards.clear();
    const cards = this.configs.map((config) => this.card(config));
    this.root.replaceChildren(h("h2", {}, "Sync"),
      h("p", { class: "muted" }, "Copies the events of one calendar into another, for example work meetings as busy time in a personal calendar."),
      form,
      cards.length ? h("div", { class: "sync-configs" }, cards) : h("p", { class: "muted" }, "No sync yet."));
  }

  card(config) {
    const progress = h("div", { class: "progress", role: "status", "aria-live": "polite" });
    const runs = h("div", { class: "runs" });
    const card = h("article", { class: "sync-config", dataset: { configId: config.id, status: config.status } },
      h("h3", {}, `${config.source.summary} → ${config.destination.summary}`),
      h("p", {},
        h("span", { class: `badge ${config.status.toLowerCase()}` }, config.status),
        ` ${config.direction === "ONE_WAY" ? "one way" : "both ways"}`,
        config.statusReason ? h("span", { class: "muted" }, ` — ${config.statusReason}`) : null),
      h("button", { type: "button", class: "primary run", "aria-label": `Run ${config.source.summary} → ${config.destination.summary} now`,
        onclick: () => this.trigger(config.id) }, "Run now"),
      progress,
      h("h4", {}, "Runs"),
      runs);
    this.cards.set(config.id, { card, progress, runs });
    this.drawProgress(config.id);
    return card;
  }

  async create() {
    const input = {
      sourceCalendarId: this.root.querySelector("#sync-source").value,
      destinationCalendarId: this.root.querySelector("#sync-destination").value,
      direction: this.root.querySelector("#sync-direction").value,
    };
    try {
      await gql("mutation($input: CreateSyncConfigInput!) { createSyncConfig(input: $input) { id } }", { input });
      await this.show();
    } catch (error) {
      this.onError(error);
    }
  }

  async trigger(configId) {
    try {
      const { triggerSync } = await gql("mutation($id: ID!) { triggerSync(configId: $id) { id status } }", { id: configId });
      const known = this.progress.get(configId);
      if (known?.runId !== triggerSync.id) this.progress.set(configId, { runId: triggerSync.id, phases: [], last: null });
      this.drawProgress(configId);
      await this.loadRuns(configId);
    } catch (error) {
      this.onError(error);
    }
  }

  /// A `syncProgress` message: the phases a run went through are kept, so the page shows its whole way.
  onProgress(message) {
    let run = this.progress.get(message.configId);
    if (!run || run.runId !== message.runId) {
      run = { runId: message.runId, phases: [], last: null };
      this.progress.set(message.configId, run);
    }
    if (run.phases.at(-1) !== message.phase) run.phases.push(message.phase);
    run.last = message;
    this.drawProgress(message.configId);
    if (message.phase === "FINISHED" || message.phase === "FAILED") this.loadRuns(message.configId);
  }

  drawProgress(configId) {
    const parts = this.cards.get(configId);
    const run = this.progress.get(configId);
    if (!parts || !run) return;
    const last = run.last;
    const bar = h("progress", { max: String(last?.total || 1), value: String(last?.total ? last.done : 0), "aria-label": "Run progress" });
    parts.progress.replaceChildren(
      h("ol", { class: "phases" }, run.phases.map((phase) => h("li", { class: phase.toLowerCase() }, phase))),
      bar,
      h("span", {}, last ? ` ${last.done} of ${last.total ?? "?"} changes` : " queued"),
      last?.expectedFinishAt ? h("span", { class: "muted" }, ` · done about ${dateTimeText(last.expectedFinishAt)}`) : "");
    parts.progress.dataset.runId = run.runId;
    parts.progress.dataset.phases = run.phases.join(" ");
  }

  async loadRuns(configId) {
    const parts = this.cards.get(configId);
    if (!parts) return;
    try {
      const runs = (await gql(RUNS, { id: configId })).syncRuns.edges.map((e) => e.node);
      const head = h("tr", {}, h("th", { scope: "col" }, "Run"), h("th", { scope: "col" }, "Status"),
        COUNTERS.map((c) => h("th", { scope: "col" }, COUNTER_NAMES[c] ?? c)));
      const rows = runs.map((run) => h("tr", { dataset: { runId: run.id, status: run.status } },
        h("td", {}, `${dateTimeText(run.startedAt ?? run.createdAt)} (${run.trigger.toLowerCase()})`),
        h("td", {}, run.status, run.error ? h("div", { class: "muted" }, run.error) : null),
        COUNTERS.map((c) => h("td", { class: "num", dataset: { counter: c } }, String(run[c])))));
      parts.runs.replaceChildren(runs.length
        ? h("div", { class: "table-scroll" }, h("table", {}, h("thead", {}, head), h("tbody", {}, rows)))
        : h("p", { class: "muted" }, "Not run yet."));
    } catch (error) {
      this.onError(error);
    }
  }
}
