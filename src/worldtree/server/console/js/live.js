// How the console learns that something changed; pages only pass callbacks. Where the server has
// the event streams (GET /runs/{id}/events, GET /events: listed in /openapi.json), each event
// triggers one fresh read of the REST resource, coalesced, so the page always shows the API's own
// view; a slow timer still refreshes durations. Where it has not, or when a stream keeps failing,
// the same callbacks are fed by polling (GET /runs/{id} every second, GET /runs every two).

import { api, sse } from "./api.js";
import { FINAL, sleep } from "./dom.js";

let known = null;
const CLOCK_MS = 1000;
const SAFETY_MS = 30_000;

/** Whether the server routes `template` (an OpenAPI path such as "/api/v1/events"). */
async function serverHas(template) {
  known ??= fetch("/openapi.json")
    .then((r) => (r.ok ? r.json() : {}))
    .then((spec) => new Set(Object.keys(spec.paths || {})))
    .catch(() => new Set());
  return (await known).has(template);
}

/** `fn` run at most once at a time; calls made meanwhile fold into one more run after it. */
function coalesced(fn) {
  let running = null, again = false;
  return function call() {
    if (running) { again = true; return running; }
    running = (async () => {
      try {
        let result;
        do { again = false; result = await fn(); } while (again);
        return result;
      } finally { running = null; }
    })();
    return running;
  };
}

/** Call `onRun(run)` with the run's state now and on every change, until it ends or `signal` aborts. */
export async function watchRun(runId, onRun, { signal, onError } = {}) {
  const path = `/runs/${encodeURIComponent(runId)}`;
  let last = "", latest = null;
  const read = coalesced(async () => {
    const run = await api(path, { signal });
    const seen = JSON.stringify(run);
    if (seen !== last) { last = seen; latest = run; onRun(run); }
    return run;
  });
  const stop = clock(() => latest && !FINAL.has(latest.state) && onRun(latest));
  try {
    if (await serverHas("/api/v1/runs/{run_id}/events")) {
      const outcome = await followEvents(`${path}/events`, read, { signal, onError, until: (run) => FINAL.has(run?.state) });
      if (outcome !== "fallback") return outcome;
    }
    return await poll(read, 1000, { signal, onError, until: (run) => FINAL.has(run?.state) });
  } finally {
    stop();
  }
}

/** Call `tick()` every CLOCK_MS (re-rendering what was read, so durations grow without a request);
 * returns the function that stops it. */
function clock(tick) {
  const timer = setInterval(tick, CLOCK_MS);
  return () => clearInterval(timer);
}

/** Call `onPage(page)` with the runs matching `query` now and on every change, until `signal` aborts.
 * With `pages` > 1 the following pages are read too and their items joined (for searching). */
export async function watchRuns(query, onPage, { signal, onError, pages = 1 } = {}) {
  const read = coalesced(async () => {
    const page = await api(`/runs?${query}`, { signal });
    const params = new URLSearchParams(query);
    for (let number = Number(params.get("page") || 1) + 1; number <= pages && page.items.length < page.total; number++) {
      params.set("page", String(number));
      const more = await api(`/runs?${params}`, { signal });
      if (!more.items.length) break;
      page.items.push(...more.items);
    }
    latest = page;
    onPage(page);
    return page;
  });
  let latest = null;
  const stop = clock(() => latest?.items.some((run) => run.state === "running") && onPage(latest));
  try {
    if (await serverHas("/api/v1/events")) {
      const outcome = await followEvents("/events", read, { signal, onError, until: () => false });
      if (outcome !== "fallback") return;
    }
    await poll(read, 2000, { signal, onError, until: () => false });
  } finally {
    stop();
  }
}

async function poll(read, intervalMs, { signal, onError, until }) {
  while (!signal?.aborted) {
    try {
      const value = await read();
      if (until(value)) return value;
    } catch (error) {
      if (signal?.aborted) return null;
      onError?.(error);
      if ([401, 403, 404].includes(error.status)) return null;
    }
    await sleep(intervalMs, signal);
  }
  return null;
}

/** Read now, then again on every event of `stream` (and every SAFETY_MS, in case the page missed
 * something); "fallback" when the stream cannot be followed, so the caller polls instead. */
async function followEvents(stream, read, { signal, onError, until }) {
  let value;
  try {
    value = await read();
  } catch (error) {
    if (signal?.aborted) return null;
    onError?.(error);
    return [401, 403, 404].includes(error.status) ? null : "fallback";
  }
  if (until(value)) return value;
  const ticker = setInterval(() => read().catch(() => {}), SAFETY_MS);
  let lastEventId = null, failures = 0;
  try {
    while (!signal?.aborted && failures < 3) {
      try {
        // A stream opened without a position starts at the server's newest event: what happened
        // between the first read and that moment would wait for the safety read. Read again once
        // the stream is open (and once more shortly after: the server takes its position just
        // after it answers).
        const onOpen = lastEventId ? undefined : () => {
          for (const ms of [0, 1000]) setTimeout(() => read().catch(() => {}), ms);
        };
        for await (const event of sse(stream, { signal, lastEventId, onOpen })) {
          if (event.id) lastEventId = event.id;
          failures = 0;
          if (event.event === "dropped") break;  // fell behind: reconnect from lastEventId
          if (event.event === "end") return await read();
          read().catch((error) => onError?.(error));  // coalesced: a burst of events is one or two reads
        }
      } catch (error) {
        if (signal?.aborted) return null;
        if (error.status && error.status < 500 && error.status !== 404) { onError?.(error); return null; }
        if (error.status === 404) return "fallback";
      }
      failures += 1;
      await sleep(300 * failures, signal);
    }
  } finally {
    clearInterval(ticker);
  }
  return signal?.aborted ? null : "fallback";
}
