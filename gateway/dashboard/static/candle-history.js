// Candle history from GET /v1/candles/{symbol}?closed=true: the closed candles of the last
// WANTED_BARS buckets, oldest first, in pages; the forming candle comes from the live
// ohlcv subscription.

import { getJson, HttpError } from "./access.js";

export const TIMEFRAME_SECONDS = { "1s": 1, "1m": 60, "5m": 300, "15m": 900, "1h": 3600, "1d": 86400 };
const WANTED_BARS = 150;
const MAX_REQUESTS = 8;
const PAGE_LIMIT = 5000;

/** The chart bar of an ohlcv item; ``time`` is the open time in epoch seconds. */
export function toBar(item) {
  return {
    time: Math.floor(Date.parse(item.timestamp) / 1000),
    open: item.open, high: item.high, low: item.low, close: item.close,
    volume: item.volume, closed: item.is_closed,
  };
}

function earliestKept(error) {
  const match = error instanceof HttpError && error.status === 400
    && /earliest record kept was written at (\S+)/.exec(String(error.detail));
  return match ? Date.parse(match[1]) : null;
}

/**
 * Load the closed candles of the last WANTED_BARS buckets before ``endMs``; call
 * onBars(bars) after each page with every bar found so far (oldest first). Stops at the
 * request budget, the last page, or when isCurrent() turns false (the user chose something
 * else meanwhile). A range reaching past the log's earliest record starts there instead.
 */
export async function loadCandles(symbol, timeframe, endMs, onBars, isCurrent) {
  let start = endMs - WANTED_BARS * TIMEFRAME_SECONDS[timeframe] * 1000;
  const bars = new Map();
  let cursor = null;
  for (let requests = 0; requests < MAX_REQUESTS; requests += 1) {
    const params = { timeframe, closed: "true", start: new Date(start).toISOString(),
      end: new Date(endMs).toISOString(), limit: PAGE_LIMIT };
    if (cursor) params.cursor = cursor;
    let page;
    try {
      page = await getJson(`/v1/candles/${encodeURIComponent(symbol)}`, params);
    } catch (error) {
      const earliest = earliestKept(error);
      if (earliest === null || earliest <= start || cursor) throw error;
      start = earliest;
      continue;
    }
    if (!isCurrent()) return;
    for (const item of page.items) {
      const bar = toBar(item);
      bars.set(bar.time, bar);
    }
    onBars([...bars.values()].sort((a, b) => a.time - b.time));
    cursor = page.next_cursor;
    if (!cursor) return;
  }
}
