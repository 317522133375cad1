// The dashboard: wires the watchlist, chart, provider and news panels and replay control to
// one live WebSocket (/ws/stream) and the REST history, and keeps the view in the address bar.

import { adoptKeyFromAddress, apiKey, setApiKey, streamUrl } from "./access.js";
import { BookPanel } from "./book-panel.js";
import { AlertPanel } from "./alerts.js";
import { loadCandles } from "./candle-history.js";
import { CandleChart } from "./chart.js";
import { StreamConnection } from "./connection.js";
import { NewsPanel } from "./news.js";
import { ProviderPanel } from "./providers.js";
import { ReplayControl } from "./replay.js";
import { addSymbol, normalizeSymbol, readView, removeSymbol, writeView } from "./view-state.js";
import { Watchlist } from "./watchlist.js";

const CHART_LIBRARY_URL = "/dashboard/vendor/lightweight-charts.mjs";
const QUOTE_INTERVAL_MS = 500;
const OHLCV_INTERVAL_MS = 250;
const STALE_AFTER_MS = 5000;
const MESSAGE_SHOWN_MS = 10000;

const $ = (id) => document.getElementById(id);

adoptKeyFromAddress(new URLSearchParams(location.search));
let view = readView(location.search);
let chart = null;
let chartMissing = false;
const earlyCandles = new Map();
let chartGeneration = 0;
let connectionState = "connecting";
let reconnectDetail = null;
let lastDataAt = 0;
let everConnected = false;

const watchlist = new Watchlist($("watchlist-rows"), { onSelect: select, onRemove: remove });
const providers = new ProviderPanel($("provider-table"), $("provider-note"));
const news = new NewsPanel($("news-list"), $("news-note"));
const connection = new StreamConnection({
  url: streamUrl, subscriptions: liveSubscriptions, onMessage: receive, onState: connectionChanged,
});
const book = new BookPanel($("book"), (symbol) => {
  connection.send({ type: "unsubscribe", stream_type: "orderbook", symbols: [symbol] });
  connection.send(book.request(symbol));
});
const alerts = new AlertPanel($("alert-form"), $("alert-list"), $("alert-note"), {
  send: (message) => connection.send(message), symbol: () => view.selected,
});
const replay = new ReplayControl($("replay-form"), $("replay-status"), {
  plan: () => view, onStart: replayStarted, onData: replayData, onEnd: replayEnded,
});

function quoteRequest(symbols) {
  return { type: "subscribe", stream_type: "quote", symbols, interval_ms: QUOTE_INTERVAL_MS };
}

function ohlcvRequest() {
  return { type: "subscribe", stream_type: "ohlcv", symbols: [view.selected],
    timeframe: view.timeframe, interval_ms: OHLCV_INTERVAL_MS };
}

function newsRequest() {
  return { type: "subscribe", stream_type: "news", symbols: [view.selected] };
}

/** Follow the news of the selected symbol instead of ``previous``'s. */
function followNews(previous) {
  if (previous) connection.send({ type: "unsubscribe", stream_type: "news", symbols: [previous] });
  news.reset(view.selected);
  if (view.selected) connection.send(newsRequest());
}

/** What the live connection subscribes on every (re)connection. */
function liveSubscriptions() {
  const requests = [{ type: "subscribe", stream_type: "alerts" }];
  if (view.symbols.length) requests.push(quoteRequest(view.symbols));
  if (view.selected) requests.push(ohlcvRequest(), newsRequest());
  news.reset(view.selected);
  const bookRequest = book.request(view.selected);
  if (bookRequest) requests.push(bookRequest);
  return requests;
}

function setView(next) {
  view = next;
  history.replaceState(null, "", writeView(view));
  watchlist.show(view.symbols, view.selected);
  $("chart-title").textContent = view.selected ? `${view.selected} · ${view.timeframe}` : "no symbol";
  $("provider-title").textContent = view.selected ?? "";
  $("news-title").textContent = view.selected ?? "";
  $("timeframe").value = view.timeframe;
  if (book.symbol !== view.selected) followBook(book.symbol, view.selected);
}

/** Move the order book panel from one symbol to another (subscriptions included). */
function followBook(previous, symbol) {
  if (previous) connection.send({ type: "unsubscribe", stream_type: "orderbook", symbols: [previous] });
  book.follow(symbol);
  const request = book.request(symbol);
  if (request) connection.send(request);
}

function receive(message) {
  switch (message.type) {
    case "data":
      lastDataAt = Date.now();
      if (message.stream_type === "quote") liveQuotes(message.data);
      else if (message.stream_type === "alerts") alerts.fired(message.data);
      else if (message.stream_type === "ohlcv" && !replay.active) drawCandles(message.data);
      else if (message.stream_type === "news") news.update(message.data);
      else if (message.stream_type === "orderbook") book.apply(message.data);
      break;
    case "status":
      watchlist.setStatus(message.symbol, message.status);
      break;
    case "alert_ack":
      alerts.acknowledged(message);
      break;
    case "error":
      if (message.error_code === "ALERT_ERROR") alerts.refused(message);
      refused(message);
      break;
    default:
      break;
  }
}

function liveQuotes(items) {
  watchlist.update(items, false);
  if (!replay.active) providers.show(watchlist.latest(view.selected));
}

/** Draw the items of the chart's symbol and timeframe; kept until the library is loaded. */
function drawCandles(items) {
  for (const item of items) {
    if (item.symbol !== view.selected || item.timeframe !== view.timeframe) continue;
    if (chart) chart.update(item);
    else if (!chartMissing) earlyCandles.set(item.timestamp, item);
  }
}

function refused(message) {
  const symbol = view.symbols.find((s) => message.message.includes(s));
  if (message.error_code === "SUBSCRIPTION_ERROR" && symbol) watchlist.setError(symbol, message.message);
  say(`${message.error_code}: ${message.message}`);
}

function connectionChanged(state, detail) {
  connectionState = state;
  reconnectDetail = detail ?? null;
  if (state === "connected") {
    if (everConnected) loadHistory();
    everConnected = true;
  }
  if (state === "unauthorized") say("the gateway wants an API key: enter it above");
  document.body.classList.toggle("needs-key", state === "unauthorized");
  showConnection();
}

/** The badge: connected, stale (connected but no fresh data), reconnecting or refused. */
function showConnection() {
  let state = connectionState;
  let text = state;
  const quiet = Date.now() - lastDataAt > STALE_AFTER_MS;
  if (state === "connected" && (quiet || watchlist.isStale(view.selected))) {
    state = "stale";
    text = quiet ? "stale: no data for a while" : `stale: ${view.selected} has no fresh provider`;
  } else if (state === "reconnecting") {
    text = `reconnecting in ${(reconnectDetail.delay / 1000).toFixed(1)} s (attempt ${reconnectDetail.attempt})`;
  } else if (state === "unauthorized") {
    text = "API key required";
  }
  const badge = $("connection");
  badge.dataset.state = state;
  badge.textContent = text;
}

function select(symbol) {
  if (symbol === view.selected) return;
  if (replay.active) replay.backToLive();
  const previous = view.selected;
  if (previous) connection.send({ type: "unsubscribe", stream_type: "ohlcv", symbols: [previous] });
  setView({ ...view, selected: symbol });
  connection.send(ohlcvRequest());
  followNews(previous);
  providers.show(watchlist.latest(symbol));
  showChart();
}

function remove(symbol) {
  const wasSelected = symbol === view.selected;
  connection.send({ type: "unsubscribe", stream_type: "quote", symbols: [symbol] });
  if (wasSelected) connection.send({ type: "unsubscribe", stream_type: "ohlcv", symbols: [symbol] });
  setView(removeSymbol(view, symbol));
  if (wasSelected) followNews(symbol);
  if (wasSelected && view.selected) {
    connection.send(ohlcvRequest());
    providers.show(watchlist.latest(view.selected));
  }
  if (wasSelected) showChart();
}

function add(text) {
  const symbol = normalizeSymbol(text);
  if (!symbol || view.symbols.includes(symbol)) return;
  const first = view.selected === null;
  setView(addSymbol(view, symbol));
  connection.send(quoteRequest([symbol]));
  if (first) {
    connection.send(ohlcvRequest());
    followNews(null);
    showChart();
  }
}

function changeTimeframe(timeframe) {
  if (replay.active) replay.backToLive();
  if (view.selected) connection.send({ type: "unsubscribe", stream_type: "ohlcv", symbols: [view.selected] });
  setView({ ...view, timeframe });
  if (view.selected) connection.send(ohlcvRequest());
  showChart();
}

/** Start the chart over for the current symbol and timeframe. */
function showChart() {
  chartGeneration += 1;
  if (chart) chart.reset();
  loadHistory();
}

async function loadHistory() {
  if (!chart || !view.selected || replay.active) return;
  const generation = chartGeneration;
  const current = () => generation === chartGeneration && !replay.active;
  $("chart-note").textContent = "loading history…";
  try {
    await loadCandles(view.selected, view.timeframe, Date.now(), (bars) => chart.setHistory(bars), current);
    if (current()) $("chart-note").textContent = "";
  } catch (error) {
    if (current()) $("chart-note").textContent = `history unavailable: ${error.message}`;
  }
}

function replayStarted() {
  chartGeneration += 1;
  document.body.classList.add("replaying");
  watchlist.setReplaying(true);
  providers.show(null);
  if (chart) chart.reset();
}

function replayData(message) {
  if (message.stream_type === "ohlcv") {
    drawCandles(message.data);
  } else {
    watchlist.update(message.data, true);
    providers.show(watchlist.latest(view.selected));
  }
}

function replayEnded() {
  document.body.classList.remove("replaying");
  watchlist.setReplaying(false);
  providers.show(watchlist.latest(view.selected));
  showChart();
}

function say(text) {
  const messages = $("messages");
  messages.textContent = text;
  clearTimeout(say.timer);
  say.timer = setTimeout(() => { messages.textContent = ""; }, MESSAGE_SHOWN_MS);
}

async function loadChartLibrary() {
  try {
    chart = new CandleChart(await import(CHART_LIBRARY_URL), $("chart"));
    showChart();
    drawCandles([...earlyCandles.values()]);
    earlyCandles.clear();
  } catch (error) {
    chartMissing = true;
    earlyCandles.clear();
    $("chart").classList.add("missing");
    $("chart").textContent = "The chart library (lightweight-charts) is not installed on this "
      + "gateway: run `make dashboard-assets`, or set FIML_DASHBOARD_CHART_LIBRARY to its file, "
      + `then restart the gateway. (${error.message})`;
  }
}

$("add-form").addEventListener("submit", (event) => {
  event.preventDefault();
  add(event.target.elements.symbol.value);
  event.target.reset();
});
$("timeframe").addEventListener("change", (event) => changeTimeframe(event.target.value));
$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  setApiKey(event.target.elements.key.value.trim());
  connection.restart();
  providers.refreshStatuses();
  loadHistory();
});
$("key-form").elements.key.value = apiKey();

setView(view);
connection.start();
providers.start();
setInterval(showConnection, 1000);
loadChartLibrary();
