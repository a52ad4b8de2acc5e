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
    h("table", { class: "runs" }, h("thead", {}, h("tr", {}, ["Run", "Pipeline", "State", "Waiting / running for", ""]
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
      // The runs under way and queued, oldest waiting first: what the queue holds.
      const [running, queued] = await Promise.all(["running", "queued"].map((state) =>
        api(`/runs?state=${state}&page_size=100`, { signal })));
      const rows = [...running.items, ...queued.items.reverse()];
      replace(body, rows.map((r) => h("tr", { "data-run": r.id, "data-state": r.state },
        h("td", {}, h("a", { href: `/console/runs/${r.id}`, "data-link": true }, h("code", {}, r.id))),
        h("td", {}, r.pipeline), h("td", {}, badge(r.state)),
        h("td", { title: when(r.created_at) }, duration(r.started_at || r.created_at, null)),
        h("td", {}, canCancel ? h("button", { type: "button", class: "danger small", onclick: () => cancel(r.id) }, "Cancel") : null))));
      if (!rows.length) replace(body, h("tr", {}, h("td", { colspan: 5, class: "muted" }, "Nothing queued or running.")));
    } catch (error) {
      if (signal.aborted) return;
      if (error.status === 404) { replace(view, h("h2", {}, "Queue"), h("p", { class: "unavailable" }, "The queue is not available on this server.")); return; }
      message.textContent = error.message;
    }
    await sleep(2000, signal);
  }
}
