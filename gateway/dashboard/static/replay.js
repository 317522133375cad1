// The replay control: a past range (UTC) and a speed, played on a WebSocket of its own so
// the live connection keeps running; "Back to live" closes it.

import { streamUrl } from "./access.js";
import { clock } from "./format.js";
import { StreamConnection } from "./connection.js";

/** The ISO time of a datetime-local value read as UTC. */
export function utcInputToIso(value) {
  const ms = Date.parse(`${value}Z`);
  return Number.isNaN(ms) ? null : new Date(ms).toISOString();
}

/** The datetime-local value (UTC, seconds) of epoch milliseconds. */
export function isoToUtcInput(ms) {
  return new Date(ms).toISOString().slice(0, 19);
}

export class ReplayControl {
  /**
   * form: the replay form; status: where its progress is written; hooks: onStart(),
   * onData(message), onEnd() and plan() returning {symbols, selected, timeframe}.
   */
  constructor(form, status, hooks) {
    this.form = form;
    this.status = status;
    this.hooks = hooks;
    this.connection = null;
    this.pending = new Set();
    this.range = null;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.play();
    });
    form.querySelector("#replay-live").addEventListener("click", () => this.backToLive());
    this.presetLastMinute();
  }

  presetLastMinute() {
    const now = Date.now();
    this.form.elements.from.value = isoToUtcInput(now - 60_000);
    this.form.elements.to.value = isoToUtcInput(now - 1000);
  }

  get active() {
    return this.connection !== null;
  }

  play() {
    const start = utcInputToIso(this.form.elements.from.value);
    const end = utcInputToIso(this.form.elements.to.value);
    const speed = Number(this.form.elements.speed.value);
    if (!start || !end || end <= start) {
      this.say("error", "pick a start before the end (UTC)");
      return;
    }
    this.stopConnection();
    const { symbols, selected, timeframe } = this.hooks.plan();
    const common = { type: "subscribe", start, end, speed, interval_ms: 250 };
    const requests = [
      { ...common, stream_type: "ohlcv", symbols: [selected], timeframe },
      { ...common, stream_type: "quote", symbols },
    ];
    this.pending = new Set(["ohlcv", "quote"]);
    this.range = { start, end, speed };
    this.hooks.onStart();
    this.connection = new StreamConnection({
      url: streamUrl,
      subscriptions: () => requests,
      reconnect: false,
      onMessage: (message) => this.receive(message),
      onState: (state, detail) => {
        if (state === "closed" && detail) this.say("error", `replay stopped: ${detail}`);
      },
    });
    this.connection.start();
    this.say("playing", `replaying ${clock(start)}–${clock(end)} UTC at ${speed ? `×${speed}` : "full speed"}`);
    this.form.classList.add("active");
  }

  receive(message) {
    if (message.type === "data" && message.replay) {
      this.hooks.onData(message);
      const newest = message.data.map((item) => item.timestamp).sort().pop();
      this.say("playing", `replaying ${clock(this.range.start)}–${clock(this.range.end)} UTC: at ${clock(newest)}`);
    } else if (message.type === "replay_complete") {
      this.pending.delete(message.stream_type);
      if (this.pending.size === 0) {
        this.say("complete", `replay complete: ${clock(this.range.start)}–${clock(this.range.end)} UTC`);
        this.connection.stop();
      }
    } else if (message.type === "error") {
      this.say("error", `${message.error_code}: ${message.message}`);
    }
  }

  /** Leave the replay, whether it finished or not. */
  backToLive() {
    if (!this.active) return;
    this.stopConnection();
    this.form.classList.remove("active");
    this.say("live", "live");
    this.hooks.onEnd();
  }

  stopConnection() {
    if (this.connection) this.connection.stop();
    this.connection = null;
  }

  say(state, text) {
    this.status.dataset.state = state;
    this.status.textContent = text;
  }
}
