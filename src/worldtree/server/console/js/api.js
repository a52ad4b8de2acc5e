// The REST client: every call sends the session's token as `Authorization: Bearer`, and every
// error comes back as an ApiError carrying the server's {"error": {code, message, details}}.
// The token lives in sessionStorage only (gone when the tab closes) and is never rendered.

const TOKEN_KEY = "worldtree.token";

export function token() { return sessionStorage.getItem(TOKEN_KEY); }
export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

export class ApiError extends Error {
  constructor(status, body) {
    const error = body && body.error ? body.error : {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || "http_error";
    this.details = error.details ?? null;
  }
}

/** The ApiError for a failed response. A 401 means the token was revoked or expired while the page
 * was open: the shell is told, and shows the sign-in form. */
async function failure(response) {
  let parsed = null;
  try { parsed = await response.json(); } catch { /* not JSON: keep the status */ }
  if (response.status === 401) window.dispatchEvent(new CustomEvent("worldtree:unauthorized"));
  return new ApiError(response.status, parsed);
}

function headers(extra = {}) {
  const out = { ...extra };
  const t = token();
  if (t) out.Authorization = `Bearer ${t}`;
  return out;
}

/** `api("/runs?page=1")` -> parsed JSON; `{raw: true}` -> the Response (for text bodies). */
export async function api(path, { method = "GET", body, contentType, raw = false, signal } = {}) {
  const extra = contentType ? { "Content-Type": contentType } : {};
  const response = await fetch(`/api/v1${path}`, { method, body, headers: headers(extra), signal });
  if (!response.ok) throw await failure(response);
  if (raw) return response;
  if (response.status === 204) return null;
  return response.json();
}

/**
 * Server-Sent Events through fetch + ReadableStream (EventSource cannot send an Authorization
 * header). Yields {id, event, data} per event; returns when the server closes the stream.
 * `lastEventId` is sent as `Last-Event-ID`, so a reconnect resumes without gap or duplicate.
 */
export async function* sse(path, { signal, lastEventId, onOpen } = {}) {
  const extra = { Accept: "text/event-stream" };
  if (lastEventId) extra["Last-Event-ID"] = String(lastEventId);
  const response = await fetch(`/api/v1${path}`, { headers: headers(extra), signal });
  if (!response.ok) throw await failure(response);
  onOpen?.();
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const event = parseEvent(block);
      if (event) yield event;
    }
  }
}

function parseEvent(block) {
  let id = null, event = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;  // comments are keep-alive pings
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "id") id = value;
    else if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  if (!data.length && id === null) return null;
  return { id, event, data: data.join("\n") };
}

/** Save `text` as a file the browser downloads. */
export function download(name, text, type) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** The caller's role as a number: viewer 1, maintainer 2, admin 3 (roles include those below). */
export const RANK = { viewer: 1, maintainer: 2, admin: 3 };
