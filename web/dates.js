// Dates in the browser's own zone: the week runs Monday to Sunday, local midnight to local midnight.

export function mondayOf(date) {
  const day = new Date(date.getFullYear(), date.getMonth(), date.getDate());
  day.setDate(day.getDate() - ((day.getDay() + 6) % 7));
  return day;
}

export function addDays(date, days) {
  const next = new Date(date);
  next.setDate(next.getDate() + days);
  return next;
}

const pad = (n) => String(n).padStart(2, "0");

/// `yyyy-mm-dd` of a local date.
export function isoDate(date) {
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

/// A local date from `yyyy-mm-dd` (at local midnight, not UTC's).
export function parseDate(text) {
  const [y, m, d] = text.split("-").map(Number);
  return new Date(y, m - 1, d);
}

/// `HH:MM` of a local time.
export function hhmm(date) {
  return `${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/// Whole days from `a` to `b` (local dates; DST days count as one).
export function daysBetween(a, b) {
  return Math.round((parseDate(isoDate(b)) - parseDate(isoDate(a))) / 86_400_000);
}

/// The instant of a local day and `HH:MM`.
export function atTime(day, time) {
  const [hours, minutes] = time.split(":").map(Number);
  const at = parseDate(day);
  at.setHours(hours, minutes, 0, 0);
  return at;
}

export const browserZone = () => Intl.DateTimeFormat().resolvedOptions().timeZone;

export function dayHeading(date) {
  return date.toLocaleDateString(undefined, { weekday: "short", day: "numeric", month: "short" });
}

export function weekHeading(monday) {
  const sunday = addDays(monday, 6);
  const options = { day: "numeric", month: "short", year: "numeric" };
  return `${monday.toLocaleDateString(undefined, options)} – ${sunday.toLocaleDateString(undefined, options)}`;
}

export function dateTimeText(iso) {
  return iso ? new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" }) : "";
}
