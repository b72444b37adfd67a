// The week view: every calendar of every account, Monday to Sunday in the browser's zone. All-day events
// on top, timed events placed by their local time, overlapping ones side by side. The server expands
// series into instances, so the page only draws what `events` returns for the window and reloads it when
// the change stream says something changed.

import { allNodes } from "./api.js";
import { h } from "./dom.js";
import { addDays, dayHeading, daysBetween, hhmm, isoDate, mondayOf, parseDate, weekHeading } from "./dates.js";

const EVENTS = `query($min: DateTime!, $max: DateTime!, $after: String) {
  events(timeMin: $min, timeMax: $max, first: 500, after: $after) {
    edges { node { id calendarId summary location description allDay status recurringEventId
      start { date dateTime timeZone } end { date dateTime timeZone } } }
    pageInfo { hasNextPage endCursor } } }`;

const HOURS = Array.from({ length: 24 }, (_, hour) => hour);
const FIRST_VISIBLE_HOUR = 7;

export class WeekView {
  /// `calendars()` is the current list (from `calendarsChanged`); `colorOf(id)` a calendar's colour;
  /// `onOpen(event)` / `onNew(day)` open the editor.
  constructor(root, { calendars, colorOf, onOpen, onNew, onError }) {
    Object.assign(this, { root, calendars, colorOf, onOpen, onNew, onError });
    this.monday = mondayOf(new Date());
    this.events = [];
    this.generation = 0;
    this.timer = null;
    this.scrolled = false;
    this.build();
  }

  build() {
    const button = (id, label, text, onclick, extra = "") =>
      h("button", { type: "button", id, class: extra, "aria-label": label, onclick }, text);
    this.title = h("h2", { id: "week-title", "aria-live": "polite" });
    this.legend = h("ul", { class: "legend", "aria-label": "Calendars" });
    this.pending = h("p", { class: "pending", role: "status", hidden: true });
    this.grid = h("div", { class: "week-grid" });
    this.scroller = h("div", { class: "week-scroll", tabindex: "0", "aria-label": "Week" }, this.grid);
    this.root.replaceChildren(
      h("div", { class: "toolbar" },
        button("week-prev", "Previous week", "‹", () => this.go(-7)),
        button("week-today", "This week", "Today", () => this.go(0)),
        button("week-next", "Next week", "›", () => this.go(7)),
        this.title,
        button("new-event", "New event", "New event", () => this.onNew(isoDate(this.defaultDay())), "primary")),
      this.legend,
      this.pending,
      this.scroller,
    );
  }

  /// Today when it is in the shown week, else the shown week's Monday.
  defaultDay() {
    const today = new Date();
    const offset = daysBetween(this.monday, today);
    return offset >= 0 && offset < 7 ? today : this.monday;
  }

  go(days) {
    this.monday = days === 0 ? mondayOf(new Date()) : addDays(this.monday, days);
    this.events = [];
    this.load();
  }

  /// Reloads soon: several changes arriving together cost one request.
  refresh() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.load(), 50);
  }

  async load() {
    const generation = ++this.generation;
    this.root.dataset.loaded = "false";
    this.root.dataset.week = isoDate(this.monday);
    this.render();
    const variables = { min: this.monday.toISOString(), max: addDays(this.monday, 7).toISOString() };
    try {
      const events = await allNodes(EVENTS, variables, (data) => data.events);
      // A newer load (another week, a later change) owns the page.
      if (generation !== this.generation) return;
      this.events = events.filter((event) => event.status !== "CANCELLED");
      this.root.dataset.loaded = "true";
      this.render();
    } catch (error) {
      if (generation === this.generation) this.onError(error);
    }
  }

  render() {
    const calendars = this.calendars();
    const pending = calendars.filter((calendar) => calendar.cacheStatus === "PENDING");
    this.root.dataset.pending = String(pending.length > 0);
    this.pending.hidden = pending.length === 0;
    this.pending.textContent = `Fetching ${pending.map((c) => c.summary).join(", ")} from Google… events appear as they arrive.`;
    this.title.textContent = weekHeading(this.monday);
    this.legend.replaceChildren(...calendars.map((calendar) => {
      const swatch = h("span", { class: "swatch", "aria-hidden": "true" });
      swatch.style.setProperty("--cal", this.colorOf(calendar.id));
      return h("li", { dataset: { calendarId: calendar.id, cacheStatus: calendar.cacheStatus } }, swatch, calendar.summary,
        calendar.cacheStatus === "FAILED" ? h("span", { class: "badge failed" }, "reconnect needed") : null);
    }));
    this.renderGrid();
    this.root.dataset.count = String(this.events.length);
    if (this.root.dataset.loaded === "true" && pending.length === 0 && !performance.getEntriesByName("week-rendered").length) {
      // The browser test reads this mark: navigation to the first complete week.
      performance.mark("week-rendered");
    }
  }

  renderGrid() {
    const days = Array.from({ length: 7 }, (_, i) => addDays(this.monday, i));
    const today = isoDate(new Date());
    const cells = [h("div", { class: "corner" })];
    for (const day of days) {
      cells.push(h("div", { class: `day-head${isoDate(day) === today ? " today" : ""}`, dataset: { day: isoDate(day) } },
        dayHeading(day)));
    }
    const allDay = h("div", { class: "all-day", dataset: { row: "all-day" } });
    for (const event of this.events.filter((e) => e.allDay)) {
      const first = Math.max(0, daysBetween(this.monday, parseDate(event.start.date)));
      const last = Math.min(7, daysBetween(this.monday, parseDate(event.end.date)));
      if (last <= first) continue;
      const chip = this.eventButton(event, event.summary ?? "(no title)", {
        day: isoDate(days[first]),
        days: String(last - first),
      });
      chip.style.gridColumn = `${first + 1} / ${last + 1}`;
      allDay.append(chip);
    }
    cells.push(h("div", { class: "all-day-label" }, "All day"), allDay);
    cells.push(h("div", { class: "hours", "aria-hidden": "true" }, HOURS.map((hour) => h("div", { class: "hour" }, `${String(hour).padStart(2, "0")}:00`))));
    for (const day of days) cells.push(this.dayColumn(day));
    this.grid.replaceChildren(...cells);
    if (!this.scrolled && this.root.offsetParent) {
      // Start at the working day rather than midnight.
      this.scroller.scrollTop = this.grid.querySelector(".hour")?.offsetHeight * FIRST_VISIBLE_HOUR || 0;
      this.scrolled = true;
    }
  }

  /// One day's timed events: each cut to the day, overlapping ones in lanes side by side.
  dayColumn(day) {
    const start = day;
    const end = addDays(day, 1);
    const pieces = [];
    for (const event of this.events.filter((e) => !e.allDay)) {
      const from = new Date(event.start.dateTime);
      const to = new Date(event.end.dateTime);
      if (from >= end || to <= start) continue;
      pieces.push({ event, from: from < start ? start : from, to: to > end ? end : to, startsHere: from >= start });
    }
    pieces.sort((a, b) => a.from - b.from || b.to - a.to);
    // Lanes: each piece takes the first lane free at its start; a cluster of overlaps shares a width.
    const lanes = [];
    let cluster = [];
    let clusterEnd = 0;
    const closeCluster = () => {
      for (const piece of cluster) piece.lanes = lanes.length;
      lanes.length = 0;
      cluster = [];
    };
    for (const piece of pieces) {
      if (piece.from >= clusterEnd) closeCluster();
      let lane = lanes.findIndex((busyUntil) => busyUntil <= piece.from);
      if (lane < 0) lane = lanes.push(0) - 1;
      lanes[lane] = piece.to;
      piece.lane = lane;
      cluster.push(piece);
      clusterEnd = Math.max(clusterEnd, piece.to);
    }
    closeCluster();
    const column = h("div", { class: "day", dataset: { day: isoDate(day) } });
    for (const piece of pieces) {
      const minutes = (piece.from - start) / 60_000;
      const length = Math.max((piece.to - piece.from) / 60_000, 15);
      const label = `${hhmm(piece.from)} ${piece.event.summary ?? "(no title)"}`;
      const block = this.eventButton(piece.event, label, { day: isoDate(day), start: piece.startsHere ? hhmm(piece.from) : "" });
      block.style.top = `${(minutes / 1440) * 100}%`;
      block.style.height = `${(length / 1440) * 100}%`;
      block.style.left = `${(piece.lane / piece.lanes) * 100}%`;
      block.style.width = `${100 / piece.lanes}%`;
      column.append(block);
    }
    return column;
  }

  eventButton(event, label, data) {
    const button = h("button", {
      type: "button",
      class: `event${event.status === "TENTATIVE" ? " tentative" : ""}${event.recurringEventId ? " recurring" : ""}`,
      title: [event.summary, event.location].filter(Boolean).join(" · "),
      dataset: { eventId: event.id, summary: event.summary ?? "", calendarId: event.calendarId, ...data },
      onclick: () => this.onOpen(event),
    }, label);
    button.style.setProperty("--cal", this.colorOf(event.calendarId));
    return button;
  }
}
