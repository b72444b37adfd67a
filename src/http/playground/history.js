// Operations run, and the editors' contents, kept in localStorage (this browser only).

const HISTORY_KEY = "chronos.playground.history";
const EDITOR_KEY = "chronos.playground.editor";
const LIMIT = 50;

function read(key, fallback) {
  try {
    const value = JSON.parse(localStorage.getItem(key));
    return value ?? fallback;
  } catch {
    return fallback;
  }
}

function write(key, value) {
  try {
    localStorage.setItem(key, JSON.stringify(value));
  } catch {
    // Storage full or disabled: history is a convenience, the playground works without it.
  }
}

export function entries() {
  const list = read(HISTORY_KEY, []);
  return Array.isArray(list) ? list : [];
}

export function record(query, variables) {
  const list = entries().filter((e) => e.query !== query || e.variables !== variables);
  list.unshift({ query, variables, at: new Date().toISOString() });
  write(HISTORY_KEY, list.slice(0, LIMIT));
}

export function clear() {
  write(HISTORY_KEY, []);
}

export function saveEditors(query, variables) {
  write(EDITOR_KEY, { query, variables });
}

export function savedEditors() {
  const saved = read(EDITOR_KEY, null);
  return saved && typeof saved.query === "string" ? saved : null;
}
