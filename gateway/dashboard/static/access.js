// The API key (when the gateway has FIML_API_KEYS) and the REST calls that carry it.
// The key lives in this tab's sessionStorage, never in the address bar: a link to the page
// can be shared without it. A key in the address (?api_key=...) is taken once and removed.

const STORAGE_KEY = "fiml.api_key";

/** Keep an ``api_key`` of the address in session storage (the page then rewrites the
 * address without it). */
export function adoptKeyFromAddress(params) {
  const offered = params.get("api_key");
  if (offered) sessionStorage.setItem(STORAGE_KEY, offered);
}

export function apiKey() {
  return sessionStorage.getItem(STORAGE_KEY) || "";
}

export function setApiKey(key) {
  if (key) sessionStorage.setItem(STORAGE_KEY, key);
  else sessionStorage.removeItem(STORAGE_KEY);
}

/** The WebSocket address of /ws/stream, without the key: it must stay out of access logs. */
export function streamUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws/stream`;
}

/** The WebSocket subprotocols to offer: ``fiml``, and the key as ``fiml.key.<base64url>``
 * (a browser cannot set headers on a WebSocket; the gateway answers with ``fiml``). */
export function streamProtocols() {
  const key = apiKey();
  if (!key) return ["fiml"];
  const bytes = String.fromCharCode(...new TextEncoder().encode(key));
  const encoded = btoa(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  return ["fiml", `fiml.key.${encoded}`];
}

export class HttpError extends Error {
  constructor(status, detail) {
    super(`HTTP ${status}: ${detail}`);
    this.status = status;
    this.detail = detail;
  }
}

/** GET a JSON document of the gateway with the key in the X-API-Key header. */
export async function getJson(path, params = {}) {
  const query = new URLSearchParams(params).toString();
  const headers = apiKey() ? { "X-API-Key": apiKey() } : {};
  const response = await fetch(query ? `${path}?${query}` : path, { headers });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new HttpError(response.status, body.detail ?? response.statusText);
  return body;
}
