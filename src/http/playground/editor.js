// The query editor: a textarea with the niceties that matter (indentation, closing brackets, field
// completion from the schema). Completion opens as you type a name, or with Ctrl+Space.

import { suggestions } from "./schema.js";

const PAIRS = { "{": "}", "(": ")", "[": "]", '"': '"' };
const INDENT = "  ";

export class QueryEditor {
  constructor(textarea, popup, { onRun, getSchema }) {
    this.area = textarea;
    this.popup = popup;
    this.onRun = onRun;
    this.getSchema = getSchema;
    this.items = [];
    this.active = 0;
    this.prefix = "";
    textarea.addEventListener("keydown", (e) => this.keydown(e));
    textarea.addEventListener("input", (e) => {
      if (e.inputType === "insertText" && /[A-Za-z_]/.test(e.data ?? "")) this.complete(false);
      else if (e.inputType !== "insertText" || !/[A-Za-z0-9_]/.test(e.data ?? "")) this.close();
      else if (!this.popup.hidden) this.complete(false);
    });
    // Closed a moment after the editor loses focus, unless focus has come back by then (a quick click
    // away and back must not close a list opened since).
    textarea.addEventListener("blur", () =>
      setTimeout(() => {
        if (document.activeElement !== this.area) this.close();
      }, 150),
    );
    textarea.addEventListener("click", () => this.close());
    popup.addEventListener("mousedown", (e) => {
      const item = e.target.closest("li");
      if (!item) return;
      e.preventDefault();
      this.accept(Number(item.dataset.index));
    });
  }

  get value() {
    return this.area.value;
  }

  set value(text) {
    this.area.value = text;
  }

  insert(text, caretOffset = text.length) {
    const { selectionStart: start, selectionEnd: end, value } = this.area;
    this.area.setRangeText(text, start, end, "end");
    this.area.selectionStart = this.area.selectionEnd = start + caretOffset;
    this.area.dispatchEvent(new Event("change"));
    return value;
  }

  keydown(e) {
    const open = !this.popup.hidden;
    if ((e.ctrlKey || e.metaKey) && e.key === "Enter") {
      e.preventDefault();
      this.close();
      this.onRun();
      return;
    }
    if (e.ctrlKey && e.key === " ") {
      e.preventDefault();
      this.complete(true);
      return;
    }
    if (open) {
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        e.preventDefault();
        const step = e.key === "ArrowDown" ? 1 : -1;
        this.active = (this.active + step + this.items.length) % this.items.length;
        this.renderPopup();
        return;
      }
      if (e.key === "Enter" || e.key === "Tab") {
        e.preventDefault();
        this.accept(this.active);
        return;
      }
      if (e.key === "Escape") {
        e.preventDefault();
        this.close();
        return;
      }
    }
    const { selectionStart: start, selectionEnd: end, value } = this.area;
    const next = value[start];
    if (e.key === "Tab" && !e.ctrlKey && !e.altKey) {
      e.preventDefault();
      if (e.shiftKey) this.dedent();
      else this.insert(INDENT);
      return;
    }
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      const lineStart = value.lastIndexOf("\n", start - 1) + 1;
      const indent = /^[ \t]*/.exec(value.slice(lineStart, start))[0];
      const opener = /[{(\[]\s*$/.test(value.slice(lineStart, start));
      if (opener && (next === "}" || next === ")" || next === "]")) {
        const inner = `\n${indent}${INDENT}`;
        this.insert(`${inner}\n${indent}`, inner.length);
      } else {
        this.insert(`\n${indent}${opener ? INDENT : ""}`);
      }
      return;
    }
    if (PAIRS[e.key] && !e.ctrlKey && !e.metaKey) {
      if (e.key === '"' && next === '"') {
        e.preventDefault();
        this.area.selectionStart = this.area.selectionEnd = start + 1;
        return;
      }
      e.preventDefault();
      const selected = value.slice(start, end);
      this.insert(`${e.key}${selected}${PAIRS[e.key]}`, 1 + selected.length);
      return;
    }
    if ((e.key === "}" || e.key === ")" || e.key === "]") && next === e.key && start === end) {
      e.preventDefault();
      this.area.selectionStart = this.area.selectionEnd = start + 1;
      return;
    }
    if (e.key === "Backspace" && start === end && PAIRS[value[start - 1]] === next && next) {
      e.preventDefault();
      this.area.setRangeText("", start - 1, start + 1, "end");
    }
  }

  dedent() {
    const { selectionStart: start, value } = this.area;
    const lineStart = value.lastIndexOf("\n", start - 1) + 1;
    if (value.startsWith(INDENT, lineStart)) {
      this.area.setRangeText("", lineStart, lineStart + INDENT.length, "preserve");
      this.area.selectionStart = this.area.selectionEnd = Math.max(lineStart, start - INDENT.length);
    }
  }

  complete(explicit) {
    const schema = this.getSchema();
    const cursor = this.area.selectionStart;
    const { prefix, items } = suggestions(schema, this.area.value, cursor);
    if (!items.length || (!explicit && !prefix)) return this.close();
    this.items = items.slice(0, 50);
    this.prefix = prefix;
    this.active = 0;
    this.renderPopup();
    this.place(cursor);
  }

  accept(index) {
    const item = this.items[index];
    if (!item) return;
    const end = this.area.selectionStart;
    this.area.setRangeText(item.name, end - this.prefix.length, end, "end");
    this.close();
    this.area.dispatchEvent(new Event("change"));
  }

  close() {
    this.popup.hidden = true;
    this.items = [];
  }

  renderPopup() {
    const nodes = this.items.map((item, index) => {
      const li = document.createElement("li");
      li.dataset.index = String(index);
      li.setAttribute("role", "option");
      if (index === this.active) li.className = "active";
      const name = document.createElement("span");
      name.textContent = item.name;
      const type = document.createElement("span");
      type.className = "type";
      type.textContent = item.detail;
      li.append(name, type);
      return li;
    });
    this.popup.replaceChildren(...nodes);
    this.popup.hidden = false;
    this.popup.children[this.active]?.scrollIntoView({ block: "nearest" });
  }

  /// Puts the popup under the caret: the editor is monospace, so line and column give the position.
  place(cursor) {
    const style = getComputedStyle(this.area);
    const lineHeight = parseFloat(style.lineHeight) || 20;
    const before = this.area.value.slice(0, cursor).split("\n");
    const line = before.length - 1;
    const column = before[before.length - 1].length;
    const top = parseFloat(style.paddingTop) + (line + 1) * lineHeight - this.area.scrollTop + 2;
    const left = parseFloat(style.paddingLeft) + column * charWidth(style) - this.area.scrollLeft;
    this.popup.style.top = `${Math.min(top, this.area.clientHeight - 20)}px`;
    this.popup.style.left = `${Math.min(left, Math.max(0, this.area.clientWidth - 220))}px`;
  }
}

let measured = null;
function charWidth(style) {
  if (measured) return measured;
  const canvas = document.createElement("canvas").getContext("2d");
  canvas.font = `${style.fontSize} ${style.fontFamily}`;
  measured = canvas.measureText("0000000000").width / 10 || 8;
  return measured;
}
