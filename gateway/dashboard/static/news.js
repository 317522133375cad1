// The news panel of the selected symbol: the stories of its ``news`` subscription (the last
// ones at subscribe, then each new or updated one), newest published first. An item with an
// id already shown replaces it; the ids in an item's ``replaces`` were merged into it.

import { cell, clock, formatSigned } from "./format.js";

const SHOWN = 20;

export class NewsPanel {
  constructor(list, note) {
    this.list = list;
    this.note = note;
    this.symbol = null;
    this.stories = new Map();
  }

  /** Start over for ``symbol`` (null: no symbol selected). */
  reset(symbol) {
    this.symbol = symbol;
    this.stories.clear();
    this.render();
  }

  /** Take the items of a news data message. */
  update(items) {
    for (const item of items) {
      if (item.symbol !== this.symbol) continue;
      for (const old of item.replaces ?? []) this.stories.delete(old);
      this.stories.set(item.id, item);
    }
    this.render();
  }

  render() {
    const newest = [...this.stories.values()]
      .sort((a, b) => b.timestamp.localeCompare(a.timestamp) || a.id.localeCompare(b.id))
      .slice(0, SHOWN);
    this.list.replaceChildren(...newest.map((item) => {
      const entry = document.createElement("li");
      entry.dataset.id = item.id;
      const link = cell("a", item.headline, "headline");
      link.href = item.url;
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      const sentiment = item.symbol_sentiment ?? item.sentiment;
      const details = [clock(item.timestamp), item.publisher, item.providers.join(", ")];
      if (typeof sentiment === "number") details.push(`sentiment ${formatSigned(sentiment)}`);
      entry.append(link, cell("div", details.filter(Boolean).join(" · "), "note"));
      return entry;
    }));
    this.note.textContent = this.symbol && !newest.length ? `no news of ${this.symbol} yet` : "";
  }
}
