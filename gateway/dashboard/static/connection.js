// One WebSocket to /ws/stream. It reconnects with exponential backoff and jitter, and on
// every (re)connection sends the subscriptions its owner wants at that moment.

import { streamProtocols } from "./access.js";

const FIRST_DELAY_MS = 500;
const MAX_DELAY_MS = 8000;
const PING_EVERY_MS = 15000;
const SILENCE_LIMIT_MS = 40000;
const UNAUTHORIZED_CLOSE = 4401;

/** Delay before reconnection attempt ``attempt`` (0, 1, 2...): doubling, capped, +-25 %. */
export function backoffDelay(attempt, random = Math.random) {
  return Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** attempt) * (0.75 + random() / 2);
}

export class StreamConnection {
  /**
   * url(): the address to connect to; subscriptions(): subscribe messages to send on open;
   * onMessage(message); onState(state, detail) with state one of connecting, connected,
   * reconnecting, unauthorized, closed. With reconnect false a lost socket stays closed.
   */
  constructor({ url, subscriptions, onMessage, onState, reconnect = true }) {
    Object.assign(this, { url, subscriptions, onMessage, onState, reconnect });
    this.socket = null;
    this.attempt = 0;
    this.timer = null;
    this.stopped = false;
    this.lastMessageAt = 0;
    this.watchdog = null;
  }

  start() {
    this.stopped = false;
    this.open();
    this.watchdog = setInterval(() => this.checkSilence(), PING_EVERY_MS);
  }

  /** Close for good: no reconnection. */
  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.watchdog);
    if (this.socket) this.socket.close(1000);
    this.onState("closed");
  }

  /** Reconnect now, for example with a new API key. */
  restart() {
    clearTimeout(this.timer);
    this.attempt = 0;
    if (this.socket) {
      this.socket.onclose = null;
      this.socket.close(1000);
    }
    this.open();
  }

  get isOpen() {
    return this.socket?.readyState === WebSocket.OPEN;
  }

  send(message) {
    if (this.isOpen) this.socket.send(JSON.stringify(message));
  }

  open() {
    this.onState("connecting");
    const socket = new WebSocket(this.url(), streamProtocols());
    this.socket = socket;
    let refused = false;
    socket.onopen = () => {
      this.lastMessageAt = Date.now();
      this.onState("connected");
      for (const request of this.subscriptions()) this.send(request);
    };
    socket.onmessage = (event) => {
      this.lastMessageAt = Date.now();
      this.attempt = 0;
      const message = JSON.parse(event.data);
      if (message.type === "error" && message.error_code === "UNAUTHORIZED") refused = true;
      this.onMessage(message);
    };
    socket.onclose = (event) => {
      if (this.socket !== socket || this.stopped) return;
      if (refused || event.code === UNAUTHORIZED_CLOSE) {
        this.onState("unauthorized");
      } else if (!this.reconnect) {
        this.onState("closed", "the connection was lost");
      } else {
        const delay = backoffDelay(this.attempt++);
        this.onState("reconnecting", { delay, attempt: this.attempt });
        this.timer = setTimeout(() => this.open(), delay);
      }
    };
  }

  /** Ping regularly; a connection silent for too long is dropped and reopened. */
  checkSilence() {
    if (!this.isOpen) return;
    if (Date.now() - this.lastMessageAt > SILENCE_LIMIT_MS) this.socket.close(4000);
    else this.send({ type: "ping" });
  }
}
