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

/** The WebSocket address of /ws/stream; a browser cannot set headers, so the key is a query. */
export function streamUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const key = apiKey();
  const query = key ? `?api_key=${encodeURIComponent(key)}` : "";
  return `${scheme}//${location.host}/ws/stream${query}`;
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
