// The candlestick chart with volume, drawn by lightweight-charts. It holds the bars it
// shows, so a live update of the forming candle redraws it in place, a newer one appends,
// and an older one (history arriving late) redraws the whole series.

import { toBar } from "./candle-history.js";

const UP = "#26a69a";
const DOWN = "#ef5350";
const MAX_BARS = 2000;
const TRIM_BARS = 500;

export class CandleChart {
  /** ``charts`` is the lightweight-charts module; ``element`` the chart's container. */
  constructor(charts, element) {
    this.element = element;
    this.chart = charts.createChart(element, {
      autoSize: true,
      layout: { background: { type: charts.ColorType.Solid, color: "#131722" }, textColor: "#d1d4dc" },
      grid: { vertLines: { color: "#1f2430" }, horzLines: { color: "#1f2430" } },
      timeScale: { timeVisible: true, secondsVisible: true, barSpacing: 9 },
      rightPriceScale: { scaleMargins: { top: 0.08, bottom: 0.28 } },
    });
    this.candles = this.chart.addSeries(charts.CandlestickSeries, {
      upColor: UP, downColor: DOWN, borderVisible: false, wickUpColor: UP, wickDownColor: DOWN,
    });
    this.volume = this.chart.addSeries(charts.HistogramSeries, {
      priceFormat: { type: "volume" }, priceScaleId: "volume", lastValueVisible: false,
      priceLineVisible: false,
    });
    this.chart.priceScale("volume").applyOptions({ scaleMargins: { top: 0.78, bottom: 0 } });
    this.bars = new Map();
    this.reset();
  }

  /** Forget every bar. */
  reset() {
    this.bars.clear();
    this.lastTime = null;
    this.candles.setData([]);
    this.volume.setData([]);
    this.precisionSet = false;
    this.publish();
  }

  /** Merge history bars (oldest first) with what live updates already drew. */
  setHistory(bars) {
    for (const bar of bars) {
      const known = this.bars.get(bar.time);
      if (!known || bar.closed) this.bars.set(bar.time, bar);
    }
    this.redraw();
  }

  /** Apply one ohlcv item of a data message. */
  update(item) {
    const bar = toBar(item);
    this.adjustPrecision(bar.close);
    this.bars.set(bar.time, bar);
    if (this.bars.size > MAX_BARS) {
      const oldest = [...this.bars.keys()].sort((a, b) => a - b).slice(0, TRIM_BARS);
      for (const time of oldest) this.bars.delete(time);
      this.redraw();
      return;
    }
    if (this.lastTime !== null && bar.time < this.lastTime) {
      this.redraw();
      return;
    }
    this.lastTime = bar.time;
    this.candles.update(bar);
    this.volume.update(this.volumeBar(bar));
    this.publish();
  }

  redraw() {
    const bars = [...this.bars.values()].sort((a, b) => a.time - b.time);
    if (bars.length) this.adjustPrecision(bars[bars.length - 1].close);
    this.candles.setData(bars);
    this.volume.setData(bars.map((bar) => this.volumeBar(bar)));
    this.lastTime = bars.length ? bars[bars.length - 1].time : null;
    this.publish();
  }

  volumeBar(bar) {
    return { time: bar.time, value: bar.volume, color: bar.close >= bar.open ? `${UP}80` : `${DOWN}80` };
  }

  adjustPrecision(price) {
    if (this.precisionSet) return;
    const precision = price >= 1000 ? 2 : price >= 1 ? 3 : 5;
    this.candles.applyOptions({ priceFormat: { type: "price", precision, minMove: 10 ** -precision } });
    this.precisionSet = true;
  }

  /** Counts on the container, for people reading the DOM and for the browser tests. */
  publish() {
    const closed = [...this.bars.values()].filter((bar) => bar.closed);
    this.element.dataset.candles = String(this.bars.size);
    this.element.dataset.closed = String(closed.length);
    this.element.dataset.lastTime = this.lastTime === null ? "" : String(this.lastTime);
    this.element.dataset.lastClosedTime = closed.length
      ? String(Math.max(...closed.map((bar) => bar.time))) : "";
  }
}
