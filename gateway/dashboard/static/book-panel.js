// The order book of the selected crypto symbol: a depth ladder (bids and asks with each
// venue's size) and a depth chart, from the orderbook stream (docs/protocol.md, "Order
// books"). The book is rebuilt from a snapshot and deltas; a seq gap or a checksum that does
// not match asks the owner to resubscribe for a fresh snapshot.

const DEPTH = 25;
const INTERVAL_MS = 250;
const SVG = "http://www.w3.org/2000/svg";

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

/** The unsigned CRC32 of an ASCII string. */
export function crc32(text) {
  let crc = 0xffffffff;
  for (let i = 0; i < text.length; i += 1) crc = CRC_TABLE[(crc ^ text.charCodeAt(i)) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

const digits = (level) => level[0].replace(".", "").replace(/^0+/, "") + level[1].replace(".", "").replace(/^0+/, "");

/** A client's copy of one orderbook stream; apply() throws on a seq gap or a bad checksum. */
export class ClientBook {
  constructor() {
    this.seq = null;
    this.venues = [];
    this.bids = new Map();
    this.asks = new Map();
    this.crossed = { bids: [], asks: [] };
  }

  apply(item) {
    if (item.action === "snapshot") {
      this.bids = new Map();
      this.asks = new Map();
      this.venues = item.venues ?? [];
    } else if (this.seq === null || item.seq !== this.seq + 1) {
      throw new Error(`seq ${item.seq} does not follow ${this.seq}`);
    }
    this.seq = item.seq;
    this.crossed = item.crossed ?? { bids: [], asks: [] };
    for (const [side, levels] of [[this.bids, item.bids], [this.asks, item.asks]]) {
      for (const level of levels) {
        if (Number(level[1]) === 0) side.delete(level[0]);
        else side.set(level[0], level);
      }
    }
    const [bids, asks] = this.levels();
    for (const [side, ordered] of [[this.bids, bids], [this.asks, asks]]) {
      for (const level of ordered.slice(item.depth)) side.delete(level[0]);
    }
    const [keptBids, keptAsks] = this.levels();
    const top = [...keptAsks.slice(0, 10), ...keptBids.slice(0, 10)]; // Kraken's top 10
    if (crc32(top.map(digits).join("")) !== item.checksum) {
      throw new Error(`checksum mismatch at seq ${item.seq}`);
    }
  }

  /** Bids and asks, best first. */
  levels() {
    return [
      [...this.bids.values()].sort((a, b) => Number(b[0]) - Number(a[0])),
      [...this.asks.values()].sort((a, b) => Number(a[0]) - Number(b[0])),
    ];
  }
}

export class BookPanel {
  /** root: the panel's section; resubscribe(symbol): ask for a fresh snapshot. */
  constructor(root, resubscribe) {
    this.root = root;
    this.resubscribe = resubscribe;
    this.symbol = null;
    this.book = new ClientBook();
  }

  /** The subscribe message for ``symbol``'s consolidated book, or null for a non-crypto one. */
  request(symbol) {
    if (!symbol || !symbol.includes("/")) return null;
    return { type: "subscribe", stream_type: "orderbook", symbols: [symbol], depth: DEPTH, interval_ms: INTERVAL_MS };
  }

  /** Show ``symbol``'s book from its next snapshot on. */
  follow(symbol) {
    this.symbol = this.request(symbol) ? symbol : null;
    this.book = new ClientBook();
    this.root.hidden = this.symbol === null;
    this.root.querySelector(".book-title").textContent = this.symbol ?? "";
    this.render();
  }

  apply(items) {
    for (const item of items) {
      if (item.symbol !== this.symbol) continue;
      try {
        this.book.apply(item);
      } catch (error) {
        this.root.dataset.desyncs = String(Number(this.root.dataset.desyncs ?? 0) + 1);
        this.book = new ClientBook();
        this.resubscribe(this.symbol);
        return;
      }
    }
    this.render();
  }

  render() {
    const [bids, asks] = this.book.levels();
    const table = this.root.querySelector("table");
    const venues = this.book.venues;
    table.tHead.rows[0].replaceChildren(...["side", "price", "size", ...venues.map((v) => v.replace(/^synthetic:/, ""))]
      .map((text) => Object.assign(document.createElement("th"), { textContent: text })));
    const rows = [...asks.slice(0, 10).reverse().map((l) => ["ask", l]), ...bids.slice(0, 10).map((l) => ["bid", l])];
    const crossed = new Set([...this.book.crossed.bids, ...this.book.crossed.asks]);
    table.tBodies[0].replaceChildren(...rows.map(([side, level]) => {
      const row = document.createElement("tr");
      row.className = side;
      if (crossed.has(level[0])) row.classList.add("crossed");
      for (const text of [side, level[0], level[1], ...(level[2] ?? [])]) {
        row.append(Object.assign(document.createElement("td"), { textContent: text }));
      }
      return row;
    }));
    this.root.dataset.seq = String(this.book.seq ?? 0);
    this.root.dataset.venues = String(venues.length);
    this.drawDepth(bids, asks);
  }

  /** Cumulative size by price: bids to the left, asks to the right. */
  drawDepth(bids, asks) {
    const svg = this.root.querySelector("svg");
    const [width, height] = [400, 140];
    const paths = [];
    if (bids.length && asks.length) {
      const low = Number(bids[bids.length - 1][0]);
      const high = Number(asks[asks.length - 1][0]);
      const cumulative = (levels) => levels.reduce((sum, l) => [...sum, (sum.at(-1) ?? 0) + Number(l[1])], []);
      const [bidDepth, askDepth] = [cumulative(bids), cumulative(asks)];
      const top = Math.max(bidDepth.at(-1), askDepth.at(-1)) || 1;
      const x = (price) => ((Number(price) - low) / (high - low || 1)) * width;
      const y = (size) => height - (size / top) * height;
      const line = (levels, depth) => levels.map((l, i) => `${x(l[0]).toFixed(1)},${y(depth[i]).toFixed(1)}`).join(" ");
      paths.push(["bids", line(bids, bidDepth)], ["asks", line(asks, askDepth)]);
    }
    svg.replaceChildren(...paths.map(([side, points]) => {
      const polyline = document.createElementNS(SVG, "polyline");
      polyline.setAttribute("points", points);
      polyline.setAttribute("class", side);
      return polyline;
    }));
  }
}
