// A tiny element builder: h("button", { class: "small", onclick: fn, dataset: { id } }, "Text").
// Styles are set through CSSOM (el.style.x = ...) by callers, never as attributes: the CSP forbids inline
// style attributes.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key in el && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  el.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

export const $ = (id) => document.getElementById(id);

/// A labelled form control: <label for=id>text</label> followed by the control.
export function field(text, control) {
  return h("div", { class: "field" }, h("label", { for: control.id }, text), control);
}
