// Number and time formatting shared by the panels.

/** A price with enough decimals for its size. */
export function formatPrice(value) {
  if (value === null || value === undefined) return "—";
  const digits = Math.abs(value) >= 1000 ? 2 : Math.abs(value) >= 1 ? 3 : 5;
  return value.toFixed(digits);
}

export function formatSigned(value, digits = 2, suffix = "") {
  if (value === null || value === undefined) return "—";
  return `${value > 0 ? "+" : ""}${value.toFixed(digits)}${suffix}`;
}

export function formatScore(value) {
  return typeof value === "number" ? value.toFixed(2) : "—";
}

/** HH:MM:SS of an ISO time or epoch milliseconds, in UTC. */
export function clock(time) {
  const date = typeof time === "number" ? new Date(time) : new Date(Date.parse(time));
  return Number.isNaN(date.getTime()) ? "—" : date.toISOString().slice(11, 19);
}

/** The element with ``text`` as its only content. */
export function cell(tag, text, className = "") {
  const element = document.createElement(tag);
  element.textContent = text;
  if (className) element.className = className;
  return element;
}
