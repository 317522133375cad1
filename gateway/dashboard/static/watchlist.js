// The watchlist: one row per symbol with the latest quote, its provider, confidence and
// staleness. It keeps live and replayed values apart and shows the ones of the current mode.

import { cell, clock, formatPrice, formatScore, formatSigned } from "./format.js";

const COLUMNS = ["symbol", "price", "change", "change_percent", "provider", "confidence",
  "updated", "state"];

export class Watchlist {
  /** onSelect(symbol) and onRemove(symbol) are called on a click in a row. */
  constructor(body, { onSelect, onRemove }) {
    this.body = body;
    this.onSelect = onSelect;
    this.onRemove = onRemove;
    this.rows = new Map();
    this.live = new Map();
    this.replayed = new Map();
    this.stale = new Set();
    this.errors = new Map();
    this.replaying = false;
  }

  /** Show exactly ``symbols``, in this order, with ``selected`` marked. */
  show(symbols, selected) {
    for (const symbol of [...this.rows.keys()]) {
      if (!symbols.includes(symbol)) {
        this.rows.get(symbol).remove();
        this.rows.delete(symbol);
        this.live.delete(symbol);
        this.stale.delete(symbol);
      }
    }
    for (const symbol of symbols) {
      const row = this.rows.get(symbol) ?? this.addRow(symbol);
      row.classList.toggle("selected", symbol === selected);
      this.body.appendChild(row);
      this.render(symbol);
    }
  }

  addRow(symbol) {
    const row = document.createElement("tr");
    row.dataset.symbol = symbol;
    for (const name of COLUMNS) row.appendChild(cell("td", name === "symbol" ? symbol : "", name));
    const remove = cell("button", "×", "remove");
    remove.title = `remove ${symbol}`;
    remove.setAttribute("aria-label", `remove ${symbol}`);
    remove.addEventListener("click", (event) => {
      event.stopPropagation();
      this.onRemove(symbol);
    });
    row.appendChild(document.createElement("td")).appendChild(remove);
    row.addEventListener("click", () => this.onSelect(symbol));
    this.rows.set(symbol, row);
    return row;
  }

  /** Take the items of a quote data message. */
  update(items, replay) {
    const values = replay ? this.replayed : this.live;
    for (const item of items) {
      const previous = values.get(item.symbol);
      values.set(item.symbol, { ...item, previousPrice: previous?.price, receivedAt: Date.now() });
      if (!replay) this.stale.delete(item.symbol);
      this.errors.delete(item.symbol);
      this.render(item.symbol);
    }
  }

  /** A ``status`` message of the gateway: the symbol went stale or came back. */
  setStatus(symbol, status) {
    if (status === "stale") this.stale.add(symbol);
    else this.stale.delete(symbol);
    this.render(symbol);
  }

  setError(symbol, message) {
    this.errors.set(symbol, message);
    this.render(symbol);
  }

  setReplaying(replaying) {
    this.replaying = replaying;
    this.replayed.clear();
    this.body.closest("table").classList.toggle("replaying", replaying);
    for (const symbol of this.rows.keys()) this.render(symbol);
  }

  latest(symbol) {
    return (this.replaying ? this.replayed : this.live).get(symbol);
  }

  isStale(symbol) {
    return this.stale.has(symbol);
  }

  render(symbol) {
    const row = this.rows.get(symbol);
    if (!row) return;
    const item = this.latest(symbol);
    const set = (name, text) => { row.querySelector(`td.${name}`).textContent = text; };
    set("price", item ? formatPrice(item.price) : "…");
    set("change", item ? formatSigned(item.change, 2) : "");
    set("change_percent", item ? formatSigned(item.change_percent, 2, " %") : "");
    set("provider", item?.provider ?? "");
    set("confidence", item ? formatScore(item.confidence) : "");
    set("updated", item ? clock(item.timestamp) : "");
    set("state", this.stateOf(symbol, item));
    row.dataset.state = this.stateOf(symbol, item);
    const direction = item && item.previousPrice !== undefined
      ? Math.sign(item.price - item.previousPrice) : 0;
    row.querySelector("td.price").dataset.direction = String(direction);
    row.querySelector("td.change_percent").dataset.sign = String(Math.sign(item?.change ?? 0));
    row.title = this.errors.get(symbol) ?? "";
  }

  stateOf(symbol, item) {
    if (this.errors.has(symbol)) return "refused";
    if (this.replaying) return item ? "replay" : "waiting";
    if (this.stale.has(symbol)) return "stale";
    return item ? "live" : "waiting";
  }
}
