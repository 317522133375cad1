// The view a link reproduces: watchlist symbols, selected symbol and timeframe, kept in the
// query string (?symbols=AAPL,BTC/USDT&symbol=AAPL&tf=1m). The API key is never written here.

export const TIMEFRAMES = ["1s", "1m", "5m", "15m", "1h", "1d"];
export const DEFAULT_SYMBOLS = ["AAPL", "MSFT", "NVDA", "BTC/USDT", "ETH/USDT"];
export const DEFAULT_TIMEFRAME = "1m";

/** A symbol as the gateway writes it: trimmed, upper case. */
export function normalizeSymbol(text) {
  return text.trim().toUpperCase();
}

/** The view a query string describes; missing or invalid parts fall back to defaults. */
export function readView(search) {
  const params = new URLSearchParams(search);
  const listed = params.get("symbols");
  const symbols = [...new Set((listed === null ? DEFAULT_SYMBOLS : listed.split(","))
    .map(normalizeSymbol).filter(Boolean))];
  const chosen = normalizeSymbol(params.get("symbol") || "");
  const timeframe = TIMEFRAMES.includes(params.get("tf")) ? params.get("tf") : DEFAULT_TIMEFRAME;
  return { symbols, selected: symbols.includes(chosen) ? chosen : (symbols[0] ?? null), timeframe };
}

/** The query string of a view, readable: "/" and "," stay as they are. */
export function writeView(view) {
  const keep = (text) => encodeURIComponent(text).replace(/%2F/g, "/");
  const parts = [`symbols=${view.symbols.map(keep).join(",")}`];
  if (view.selected) parts.push(`symbol=${keep(view.selected)}`);
  parts.push(`tf=${view.timeframe}`);
  return `?${parts.join("&")}`;
}

/** The view with ``symbol`` added at the end (selected if nothing was). */
export function addSymbol(view, symbol) {
  if (view.symbols.includes(symbol)) return view;
  return { ...view, symbols: [...view.symbols, symbol], selected: view.selected ?? symbol };
}

/** The view without ``symbol``; the selection moves to the first one left. */
export function removeSymbol(view, symbol) {
  const symbols = view.symbols.filter((s) => s !== symbol);
  const selected = view.selected === symbol ? (symbols[0] ?? null) : view.selected;
  return { ...view, symbols, selected };
}
