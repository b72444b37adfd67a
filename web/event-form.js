// Creating, editing and deleting an event in a modal dialog. On an instance of a series the person
// chooses which instances change: this one, this and the following ones (the series splits in two at
// Google), or all of them (`scope: RecurrenceScope`).

import { gql } from "./api.js";
import { $, field, h } from "./dom.js";
import { addDays, atTime, browserZone, hhmm, isoDate, parseDate } from "./dates.js";
import { clearError, showError } from "./errors.js";

const FIELDS = "id summary calendarId recurringEventId start { date dateTime } end { date dateTime }";
const CREATE = `mutation($input: CreateEventInput!) { createEvent(input: $input) { ${FIELDS} } }`;
const UPDATE = `mutation($id: ID!, $input: UpdateEventInput!, $scope: RecurrenceScope) {
  updateEvent(id: $id, input: $input, scope: $scope) { ${FIELDS} } }`;
const DELETE = "mutation($id: ID!, $scope: RecurrenceScope) { deleteEvent(id: $id, scope: $scope) }";

const REPEATS = {
  "": "Does not repeat",
  "RRULE:FREQ=DAILY": "Every day",
  "RRULE:FREQ=WEEKLY": "Every week",
  "RRULE:FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR": "Every weekday",
};

export class EventForm {
  /// `writableCalendars()` lists the calendars the user may write to, `defaultCalendarId()` names the one
  /// new events go to; `onSaved()` runs after a change.
  constructor(dialog, { writableCalendars, defaultCalendarId, onSaved }) {
    Object.assign(this, { dialog, writableCalendars, defaultCalendarId, onSaved });
    dialog.addEventListener("close", () => {
      this.dialog.dataset.state = "closed";
      this.returnFocus?.focus();
    });
  }

  /// A new event on `day` (yyyy-mm-dd), 09:00 to 10:00.
  create(day) {
    this.open(null, { summary: "", day, endDay: day, from: "09:00", to: "10:00", allDay: false });
  }

  edit(event) {
    const allDay = event.allDay;
    const start = allDay ? parseDate(event.start.date) : new Date(event.start.dateTime);
    // All-day ends are exclusive; the form shows the last day.
    const end = allDay ? addDays(parseDate(event.end.date), -1) : new Date(event.end.dateTime);
    this.open(event, {
      summary: event.summary ?? "",
      location: event.location ?? "",
      description: event.description ?? "",
      day: isoDate(start),
      endDay: isoDate(end),
      from: allDay ? "09:00" : hhmm(start),
      to: allDay ? "10:00" : hhmm(end),
      allDay,
    });
  }

  open(event, values) {
    this.event = event;
    this.initial = values;
    this.returnFocus = document.activeElement;
    const input = (id, type, value, extra = {}) => h("input", { id, name: id, type, value: value ?? "", ...extra });
    const calendars = this.writableCalendars();
    const chosen = event ? event.calendarId : this.defaultCalendarId();
    const calendarSelect = h("select", { id: "ev-calendar", name: "calendar", disabled: Boolean(event) },
      calendars.map((c) => h("option", { value: c.id, selected: c.id === chosen }, c.summary)));
    if (event && !calendars.some((c) => c.id === event.calendarId)) {
      calendarSelect.append(h("option", { value: event.calendarId, selected: true }, "(read-only calendar)"));
    }
    const allDay = input("ev-all-day", "checkbox", null, { checked: values.allDay });
    const times = [
      field("Starts at", input("ev-from", "time", values.from, { required: true })),
      field("Ends at", input("ev-to", "time", values.to, { required: true })),
    ];
    const toggleTimes = () => times.forEach((t) => { t.hidden = allDay.checked; });
    allDay.addEventListener("change", toggleTimes);
    toggleTimes();
    const instance = Boolean(event?.recurringEventId);
    const scope = instance
      ? h("fieldset", { class: "scope" }, h("legend", {}, "This is a repeating event. Change"),
        ...[["THIS", "only this event"], ["THIS_AND_FOLLOWING", "this and the following events"], ["ALL", "all events"]]
          .map(([value, text], i) => h("label", {},
            h("input", { type: "radio", name: "scope", value, checked: i === 0 }), ` ${text}`)))
      : null;
    this.error = h("div", { class: "notice", role: "alert", hidden: true });
    const form = h("form", { method: "dialog", id: "event-form", onsubmit: (e) => this.save(e) },
      h("h2", {}, event ? "Edit event" : "New event"),
      this.error,
      field("Title", input("ev-summary", "text", values.summary, { required: true, maxlength: "1024" })),
      field("Calendar", calendarSelect),
      h("div", { class: "row" }, field("All day", allDay)),
      h("div", { class: "row" },
        field("Date", input("ev-day", "date", values.day, { required: true })),
        ...times,
        field("Ends on", input("ev-end-day", "date", values.endDay, { required: true }))),
      event ? null : field("Repeats", h("select", { id: "ev-repeat" },
        Object.entries(REPEATS).map(([value, text]) => h("option", { value }, text)))),
      field("Location", input("ev-location", "text", values.location, { maxlength: "1024" })),
      field("Description", h("textarea", { id: "ev-description", rows: "3", maxlength: "8192" }, values.description ?? "")),
      scope,
      h("div", { class: "actions" },
        h("button", { type: "submit", class: "primary", id: "ev-save" }, "Save"),
        event ? h("button", { type: "button", class: "danger", id: "ev-delete", onclick: () => this.remove() }, "Delete") : null,
        h("button", { type: "button", id: "ev-cancel", onclick: () => this.dialog.close() }, "Cancel")));
    this.form = form;
    this.dialog.replaceChildren(form);
    this.dialog.setAttribute("aria-label", event ? "Edit event" : "New event");
    this.dialog.dataset.state = "open";
    this.dialog.showModal();
    $("ev-summary").focus();
  }

  /// What the form says, as the API's start and end.
  times() {
    const allDay = $("ev-all-day").checked;
    const day = $("ev-day").value;
    const endDay = $("ev-end-day").value || day;
    if (allDay) {
      return { start: { date: day }, end: { date: isoDate(addDays(parseDate(endDay), 1)) } };
    }
    const zone = browserZone();
    const start = atTime(day, $("ev-from").value);
    let end = atTime(endDay, $("ev-to").value);
    // "Ends at" before "Starts at" on the same day means the next day (a night shift).
    if (end <= start && endDay === day) end = atTime(isoDate(addDays(parseDate(day), 1)), $("ev-to").value);
    return {
      start: { dateTime: start.toISOString(), timeZone: zone },
      end: { dateTime: end.toISOString(), timeZone: zone },
    };
  }

  timesChanged() {
    const now = {
      allDay: $("ev-all-day").checked, day: $("ev-day").value, endDay: $("ev-end-day").value,
      from: $("ev-from").value, to: $("ev-to").value,
    };
    const was = this.initial;
    if (now.allDay !== was.allDay || now.day !== was.day || now.endDay !== was.endDay) return true;
    return !now.allDay && (now.from !== was.from || now.to !== was.to);
  }

  async save(submit) {
    submit.preventDefault();
    const text = (id) => $(id).value.trim();
    try {
      this.busy(true);
      if (!this.event) {
        const repeat = $("ev-repeat").value;
        const input = {
          calendarId: $("ev-calendar").value,
          summary: text("ev-summary"),
          location: text("ev-location") || null,
          description: text("ev-description") || null,
          ...this.times(),
          recurrence: repeat ? [repeat] : null,
        };
        await gql(CREATE, { input });
      } else {
        // Only what changed is sent: "this and following" may not move instances to another date.
        const input = {};
        const initial = this.initial;
        for (const [key, id] of [["summary", "ev-summary"], ["location", "ev-location"], ["description", "ev-description"]]) {
          if (text(id) !== (initial[key] ?? "")) input[key] = text(id) || null;
        }
        if (this.timesChanged()) Object.assign(input, this.times());
        await gql(UPDATE, { id: this.event.id, input, scope: this.scope() });
      }
      this.done();
    } catch (error) {
      this.failed(error);
    }
  }

  async remove() {
    try {
      this.busy(true);
      await gql(DELETE, { id: this.event.id, scope: this.scope() });
      this.done();
    } catch (error) {
      this.failed(error);
    }
  }

  scope() {
    return this.form.querySelector("input[name=scope]:checked")?.value ?? null;
  }

  busy(on) {
    this.dialog.dataset.state = on ? "saving" : "open";
    this.form.querySelectorAll("button").forEach((b) => { b.disabled = on; });
    if (on) clearError(this.error);
  }

  done() {
    this.dialog.close();
    this.onSaved();
  }

  failed(error) {
    this.busy(false);
    showError(this.error, error);
    this.dialog.dataset.state = "error";
    // A conflict means the cached copy just took Google's version: show it.
    if (error.code === "CONFLICT" || error.code === "NOT_FOUND") this.onSaved();
  }
}
