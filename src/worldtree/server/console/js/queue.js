// The queue: counts per state (GET /queue/stats) and the runs waiting or running, each with a
// cancel button for maintainers. Where the server has no queue endpoints (404), says so.

import { api, RANK } from "./api.js";
import { badge, duration, h, replace, sleep, when } from "./dom.js";

const SHOWN = ["pending", "running", "succeeded", "failed", "cancelled", "max_concurrent", "current_concurrent", "executors"];

export async function queuePage(view, { who, signal }) {
  const stats = h("div", { class: "stats", id: "queue-stats" });
  const body = h("tbody");
  const message = h("p", { class: "run-message", "aria-live": "polite" });
  const canCancel = (RANK[who.role] || 0) >= RANK.maintainer;
  replace(view, h("h2", {}, "Queue"), stats, message,
    h("table", { class: "runs" }, h("thead", {}, h("tr", {}, ["Run", "Pipeline", "State", "Waiting / running for", "Why it waits", ""]
      .map((c) => h("th", {}, c)))), body));

  async function cancel(id) {
    try {
      await api(`/runs/${encodeURIComponent(id)}/cancel`, { method: "POST" });
      message.textContent = `Cancel of ${id} requested.`;
    } catch (error) {
      message.textContent = error.message;
    }
  }

  while (!signal.aborted) {
    try {
      const counts = await api("/queue/stats", { signal });
      replace(stats, SHOWN.filter((k) => k in counts).map((k) =>
        h("div", { class: "stat", "data-stat": k }, h("span", { class: "stat-value" }, String(counts[k])),
          h("span", { class: "stat-name" }, k.replaceAll("_", " ")))));
      const rows = await queued(signal);
      replace(body, rows.map((r) => h("tr", { "data-run": r.id, "data-state": r.state },
        h("td", {}, h("a", { href: `/console/runs/${r.id}`, "data-link": true }, h("code", {}, r.id))),
        h("td", {}, r.pipeline), h("td", {}, badge(r.state)),
        h("td", { title: when(r.created_at) }, duration(r.started_at || r.created_at, null)),
        h("td", { class: "muted" }, r.waiting_for || ""),
        h("td", {}, canCancel ? h("button", { type: "button", class: "danger small", onclick: () => cancel(r.id) }, "Cancel") : null))));
      if (!rows.length) replace(body, h("tr", {}, h("td", { colspan: 6, class: "muted" }, "Nothing queued or running.")));
    } catch (error) {
      if (signal.aborted) return;
      if (error.status === 404) { replace(view, h("h2", {}, "Queue"), h("p", { class: "unavailable" }, "The queue is not available on this server.")); return; }
      message.textContent = error.message;
    }
    await sleep(2000, signal);
  }
}

let hasQueue = true;

/** Running then queued runs, oldest first: GET /queue (which says why each waits) where the server
 * has it, else the runs list filtered by state. */
async function queued(signal) {
  if (hasQueue) {
    try {
      const queue = await api("/queue", { signal });
      return [...(queue.running || []), ...(queue.queued || [])];
    } catch (error) {
      if (error.status !== 404) throw error;
      hasQueue = false;
    }
  }
  const [running, waiting] = await Promise.all(["running", "queued"].map((state) =>
    api(`/runs?state=${state}&page_size=100`, { signal })));
  return [...running.items.reverse(), ...waiting.items.reverse()];
}
