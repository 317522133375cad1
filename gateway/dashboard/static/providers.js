// The provider panel of the selected symbol: each provider's status (GET /v1/providers),
// whether it is fresh and its score (the quote items' ``providers`` and ``scores``), and
// which one drives the quote now (the items' ``provider``). A gateway without those fields
// or that endpoint still gets a panel: what is missing is said, not guessed.

import { getJson, HttpError } from "./access.js";
import { cell, formatScore } from "./format.js";

const POLL_MS = 5000;

export class ProviderPanel {
  constructor(table, note) {
    this.body = table.querySelector("tbody");
    this.note = note;
    this.statuses = new Map();
    this.statusNote = "";
    this.item = null;
  }

  /** Poll GET /v1/providers every few seconds. */
  start() {
    const poll = async () => {
      await this.refreshStatuses();
      setTimeout(poll, POLL_MS);
    };
    poll();
  }

  async refreshStatuses() {
    try {
      const statuses = await getJson("/v1/providers");
      this.statuses = new Map(statuses.map((status) => [status.provider, status]));
      this.statusNote = "";
    } catch (error) {
      this.statusNote = error instanceof HttpError && error.status === 404
        ? "this gateway has no GET /v1/providers: statuses unknown"
        : `provider statuses unavailable (${error.message})`;
    }
    this.render();
  }

  /** The latest quote item of the selected symbol, or null. */
  show(item) {
    this.item = item ?? null;
    this.render();
  }

  render() {
    const item = this.item;
    const scores = item?.scores ?? null;
    const fresh = Array.isArray(item?.providers) ? new Set(item.providers) : null;
    const names = new Set([...this.statuses.keys(), ...Object.keys(scores ?? {}),
      ...(fresh ?? []), ...(item ? [item.provider] : [])]);
    this.body.replaceChildren(...[...names].sort().map((name) => {
      const status = this.statuses.get(name);
      const drives = item?.provider === name;
      const row = document.createElement("tr");
      row.dataset.provider = name;
      row.classList.toggle("drives", drives);
      row.append(
        cell("td", name, "provider"),
        cell("td", status?.status ?? "—", `status status-${(status?.status ?? "").toLowerCase()}`),
        cell("td", fresh ? (fresh.has(name) ? "yes" : "no") : "—", "fresh"),
        cell("td", formatScore(scores?.[name]), "score"),
        cell("td", typeof status?.latency_ms === "number" ? `${status.latency_ms.toFixed(0)} ms` : "—", "latency"),
        cell("td", status?.error_kind ?? "", "error"),
        cell("td", drives ? "▶ drives the quote" : "", "drives"),
      );
      return row;
    }));
    const missing = [];
    if (item && !scores) missing.push("scores");
    if (item && !fresh) missing.push("fresh providers");
    const notes = [this.statusNote, missing.length ? `not in this gateway's quotes: ${missing.join(", ")}` : "",
      item ? `confidence ${formatScore(item.confidence)}` : "waiting for a quote"];
    this.note.textContent = notes.filter(Boolean).join(" · ");
  }
}
