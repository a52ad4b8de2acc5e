// "Why is it pending?" on the run page: while the run is not over, its jobs waiting for an agent
// (GET /jobs?run=ID&state=pending: a job handed to agents that none holds yet) each get the
// server's explanation (GET /jobs/{RUN_ID:KEY}/explain): a summary and, per agent, the first
// selector term it fails, or that it is offline, draining or busy. Read every two seconds; a
// server without these endpoints (404) shows nothing.

import { api } from "./api.js";
import { h, replace, sleep } from "./dom.js";

const POLL_MS = 2000;

export class PendingView {
  constructor(runId) {
    this.runId = runId;
    this.list = h("div", { class: "pending-jobs" });
    this.element = h("section", { class: "panel", id: "pending-panel", hidden: true },
      h("div", { class: "panel-head" }, h("h3", {}, "Waiting for an agent"),
        h("span", { class: "muted" }, "each agent with the first reason it cannot take the job")),
      this.list);
    /** node id -> short note for the graph, for the nodes of waiting jobs */
    this.waiting = {};
    this.onChange = null;
  }

  /** Read and render until `isOver()` or `signal` aborts. */
  async follow(signal, isOver) {
    while (!signal.aborted) {
      const over = isOver();
      try {
        await this.refresh(over ? [] : null, signal);
      } catch (error) {
        if (signal.aborted || [401, 403, 404].includes(error.status)) { this.render([]); return; }
      }
      if (over) return;
      await sleep(POLL_MS, signal);
    }
  }

  async refresh(known, signal) {
    const jobs = known ?? (await api(`/jobs?run=${encodeURIComponent(this.runId)}&state=pending&page_size=100`, { signal })).items;
    // Only jobs whose step was handed out wait for an agent; the others wait for earlier stages.
    const dispatched = jobs.filter((job) => (job.nodes || []).some((node) => node.state === "running"));
    const explained = await Promise.all(dispatched.map((job) =>
      api(`/jobs/${encodeURIComponent(job.id)}/explain`, { signal }).then((why) => ({ job, why }))));
    this.render(explained.filter(({ why }) => why.state === "pending"));
  }

  render(explained) {
    const waiting = {};
    for (const { job } of explained) {
      for (const node of job.nodes || []) waiting[node.id] = "waits for an agent";
    }
    const changed = JSON.stringify(waiting) !== JSON.stringify(this.waiting);
    this.waiting = waiting;
    this.element.hidden = !explained.length;
    replace(this.list, explained.map(({ job, why }) => h("div", { class: "pending-job", "data-job": job.id },
      h("div", { class: "pending-title" }, h("strong", {}, job.stage ? `${job.stage}/${job.name}` : job.name), " ",
        why.selector_text ? h("span", { class: "muted" }, "selects ", h("code", {}, why.selector_text)) : h("span", { class: "muted" }, "any agent")),
      h("p", { class: "pending-summary" }, why.summary),
      h("ul", { class: "explain" }, why.agents.map((line) => h("li", { "data-agent": line.agent, "data-verdict": line.verdict },
        h("span", { class: "explain-agent" }, line.agent), " ",
        h("span", { class: "verdict", "data-verdict": line.verdict }, line.verdict), " ",
        h("span", { class: "explain-reason" }, line.reason)))))));
    if (changed) this.onChange?.();
  }
}
