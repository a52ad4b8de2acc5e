// The run page, /console/runs/{id}: header with state and actions, the DAG, the live log of the
// selected node, and the document the run was submitted with (with a copy button).

import { api, ApiError, RANK } from "./api.js";
import { drawDag } from "./dag.js";
import { badge, duration, FINAL, h, replace, when } from "./dom.js";
import { LogView } from "./logs.js";
import { watchRun } from "./live.js";
import { PendingView } from "./pending.js";

const RETRYABLE = new Set(["failed", "cancelled", "timed_out", "error"]);

export async function runPage(view, runId, { who, signal }) {
  let graph;
  try {
    graph = await api(`/runs/${encodeURIComponent(runId)}/graph`, { signal });
  } catch (error) {
    if (signal.aborted) return;
    replace(view, h("h2", {}, "Run not found"), h("p", { class: "error" }, error.message));
    return;
  }
  const id = graph.id;
  const canAct = (RANK[who.role] || 0) >= RANK.maintainer;
  const stateBadge = h("span", { class: "run-state" }, badge(graph.state));
  const meta = h("dl", { class: "run-meta" });
  const message = h("p", { class: "run-message", "aria-live": "polite" });
  const cancel = canAct ? h("button", { type: "button", class: "danger", id: "cancel-run", hidden: true,
    onclick: () => act("cancel") }, "Cancel") : null;
  const retry = canAct ? h("button", { type: "button", id: "retry-run", hidden: true,
    onclick: () => act("retry") }, "Retry") : null;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", "dag");
  svg.setAttribute("aria-label", "pipeline graph");
  const logs = new LogView(id);
  signal.addEventListener("abort", () => logs.stop(), { once: true });
  const dag = drawDag(svg, graph, (node) => { dag.select(node); logs.follow(node); });
  logs.onAll = () => dag.select(null);
  const pending = new PendingView(id);
  let latest = null;
  pending.onChange = () => latest && show(latest);
  const yaml = h("pre", { class: "yaml", id: "run-yaml" }, "…");
  const copy = h("button", { type: "button", class: "secondary", id: "copy-yaml", onclick: copyYaml }, "Copy");

  replace(view,
    h("div", { class: "run-head" },
      h("h2", {}, h("span", { class: "run-pipeline", id: "run-pipeline" }, "…"), " ",
        h("code", { class: "run-id" }, id)),
      stateBadge, h("span", { class: "spacer" }), cancel, retry),
    meta, message,
    h("section", { class: "panel dag-panel" }, h("div", { class: "panel-head" }, h("h3", {}, "Graph"),
      h("span", { class: "muted" }, "click a step for its log")), h("div", { class: "dag-scroll" }, svg)),
    pending.element,
    logs.element,
    h("section", { class: "panel" }, h("div", { class: "panel-head" }, h("h3", {}, "Document"), h("span", { class: "spacer" }), copy), yaml));

  logs.follow(null);
  api(`/runs/${encodeURIComponent(id)}/document`, { raw: true, signal })
    .then((response) => response.text())
    .then((text) => { yaml.textContent = text; })
    .catch((error) => { if (!signal.aborted) yaml.textContent = `(the document cannot be shown: ${error.message})`; });

  function show(run) {
    latest = run;
    replace(stateBadge, badge(run.state));
    document.getElementById("run-pipeline").textContent = run.pipeline;
    replace(meta,
      h("dt", {}, "attempt"), h("dd", {}, String(run.attempt)),
      h("dt", {}, "created"), h("dd", {}, when(run.created_at)),
      h("dt", {}, "started"), h("dd", {}, when(run.started_at)),
      run.finished_at ? [h("dt", {}, "finished"), h("dd", {}, when(run.finished_at))] : null,
      h("dt", {}, "duration"), h("dd", {}, duration(run.started_at, run.finished_at)),
      run.cancel_reason ? [h("dt", {}, "cancelled"), h("dd", {}, run.cancel_reason)] : null);
    // A node the latest attempt has not reached yet is pending (after a retry, not its old state).
    const states = Object.fromEntries(graph.nodes.map((node) => [node.id, "pending"]));
    const notes = {};
    for (const node of run.nodes || []) {
      states[node.id] = node.state;
      if (node.state !== "succeeded" && node.exit_code !== null && node.exit_code !== undefined) notes[node.id] = `exit ${node.exit_code}`;
      else if (node.error) notes[node.id] = node.error.length > 40 ? `${node.error.slice(0, 39)}…` : node.error;
    }
    // A step handed to agents that none has taken yet is pending, not running (see pending.js).
    for (const [node, note] of Object.entries(pending.waiting)) {
      if (states[node] === "running") { states[node] = "pending"; notes[node] = note; }
    }
    dag.update(states, notes);
    if (cancel) cancel.hidden = FINAL.has(run.state);
    if (retry) retry.hidden = !RETRYABLE.has(run.state);
  }

  async function follow() {
    await watchRun(id, show, { signal, onError: (error) => { message.textContent = error.message; } });
  }

  async function act(what) {
    const button = what === "cancel" ? cancel : retry;
    button.disabled = true;
    message.textContent = "";
    try {
      await api(`/runs/${encodeURIComponent(id)}/${what}`, { method: "POST" });
      message.textContent = what === "cancel" ? "Cancel requested." : "Retry queued: a new attempt starts soon.";
      if (what === "retry") { logs.follow(logs.node); follow(); }
    } catch (error) {
      message.textContent = error instanceof ApiError ? error.message : String(error);
    } finally {
      button.disabled = false;
    }
  }

  async function copyYaml() {
    try {
      await navigator.clipboard.writeText(yaml.textContent);
      copy.textContent = "Copied";
    } catch {
      // No clipboard permission (plain http on another host): select the text for Ctrl-C instead.
      const range = document.createRange();
      range.selectNodeContents(yaml);
      getSelection().removeAllRanges();
      getSelection().addRange(range);
      copy.textContent = "Selected: press Ctrl-C";
    }
    setTimeout(() => { copy.textContent = "Copy"; }, 2000);
  }

  follow();
  pending.follow(signal, () => latest !== null && FINAL.has(latest.state));
}
