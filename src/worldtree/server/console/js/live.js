// How the console learns that something changed. Each watcher is ONE function: today they poll
// the REST API (GET /runs/{id} every second, GET /runs every two); when the server offers the
// event streams (GET /runs/{id}/events, GET /events), only the bodies below change, as SSE
// followers through api.sse() calling the same callbacks. Callers never know which it is.

import { api } from "./api.js";
import { FINAL, sleep } from "./dom.js";

/** Call `onRun(run)` with the run's state now and on every change, until it ends or `signal` aborts. */
export async function watchRun(runId, onRun, { signal, onError, intervalMs = 1000 } = {}) {
  let last = "";
  while (!signal?.aborted) {
    try {
      const run = await api(`/runs/${encodeURIComponent(runId)}`, { signal });
      const seen = JSON.stringify(run);
      if (seen !== last) { last = seen; onRun(run); }
      if (FINAL.has(run.state)) return run;
    } catch (error) {
      if (signal?.aborted) return null;
      onError?.(error);
      if (error.status === 404 || error.status === 401 || error.status === 403) return null;
    }
    await sleep(intervalMs, signal);
  }
  return null;
}

/** Call `onPage(page)` with the runs matching `query` now and every `intervalMs`, until `signal` aborts. */
export async function watchRuns(query, onPage, { signal, onError, intervalMs = 2000 } = {}) {
  while (!signal?.aborted) {
    try {
      onPage(await api(`/runs?${query}`, { signal }));
    } catch (error) {
      if (signal?.aborted) return;
      onError?.(error);
      if (error.status === 401 || error.status === 403) return;
    }
    await sleep(intervalMs, signal);
  }
}
