// The agents page, /console/agents: every agent (GET /agents) with its status, labels, load,
// metrics and last heartbeat, read again every two seconds (agents have no event stream), and a
// Drain button for maintainers. Where the server has no agents endpoint (404), says so.

import { api, RANK } from "./api.js";
import { h, replace, sleep, when } from "./dom.js";

const POLL_MS = 2000;

/** online/offline as the REST API says, refined: draining wins over idle/busy (it takes no new job). */
export function agentStatus(agent) {
  if (!agent.online) return "offline";
  if (agent.draining) return "draining";
  return agent.status;  // idle | busy
}

function percent(value) {
  return typeof value === "number" ? `${Math.round(value)}%` : null;
}

function bytes(value) {
  if (typeof value !== "number") return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let n = value, unit = 0;
  while (n >= 1024 && unit < units.length - 1) { n /= 1024; unit += 1; }
  return `${n.toFixed(n < 10 && unit ? 1 : 0)} ${units[unit]}`;
}

/** CPU, memory, disk as short chips; what the agent did not report is left out. */
function metrics(m) {
  if (!m) return h("span", { class: "muted" }, "—");
  const parts = [
    ["cpu", percent(m.cpu_percent), ""],
    ["mem", percent(m.memory_percent), m.memory_total_bytes ? `${bytes(m.memory_used_bytes)} of ${bytes(m.memory_total_bytes)}` : ""],
    ["disk", percent(m.disk_percent), m.disk_total_bytes ? `${bytes(m.disk_used_bytes)} of ${bytes(m.disk_total_bytes)}` : ""],
  ].filter(([, value]) => value !== null);
  if (!parts.length) return h("span", { class: "muted" }, "—");
  return h("span", { class: "metrics" }, parts.map(([name, value, title]) =>
    h("span", { class: "metric", "data-metric": name, title: title || null }, h("span", { class: "muted" }, `${name} `), value)));
}

export function labelChips(labels) {
  const entries = Object.entries(labels || {}).sort(([a], [b]) => a.localeCompare(b));
  if (!entries.length) return h("span", { class: "muted" }, "no labels");
  return h("span", { class: "chips" }, entries.map(([key, value]) =>
    h("span", { class: "chip", "data-label": key }, value === "" ? key : `${key}=${value}`)));
}

export async function agentsPage(view, { who, signal }) {
  const body = h("tbody");
  const message = h("p", { class: "run-message", "aria-live": "polite" });
  const canDrain = (RANK[who.role] || 0) >= RANK.maintainer;
  const columns = ["Agent", "Status", "Labels", "Jobs", "Metrics", "Last seen", ""];
  replace(view, h("h2", {}, "Agents"), message,
    h("table", { class: "runs agents" }, h("thead", {}, h("tr", {}, columns.map((c) => h("th", {}, c)))), body));

  async function drain(agent, button) {
    button.disabled = true;
    try {
      await api(`/agents/${encodeURIComponent(agent.id)}/drain`, { method: "POST" });
      message.textContent = `${agent.name} is draining: it finishes its jobs and takes no new one.`;
      await refresh();
    } catch (error) {
      message.textContent = error.message;
      button.disabled = false;
    }
  }

  function row(agent) {
    const status = agentStatus(agent);
    const host = agent.host || {};
    const button = canDrain && agent.online && !agent.draining
      ? h("button", { type: "button", class: "secondary small drain", onclick: (e) => drain(agent, e.currentTarget) }, "Drain")
      : null;
    return h("tr", { "data-agent": agent.name, "data-status": status },
      h("td", {}, h("div", { class: "agent-name" }, agent.name),
        h("div", { class: "muted small" }, [host.hostname, host.os && host.arch ? `${host.os}/${host.arch}` : null,
          host.version ? `v${host.version}` : null].filter(Boolean).join(" · "))),
      h("td", {}, h("span", { class: "badge", "data-state": status }, status)),
      h("td", {}, labelChips(agent.labels)),
      h("td", { class: "jobs", title: "running jobs / capacity" }, `${agent.running}/${agent.capacity}`),
      h("td", {}, metrics(agent.metrics)),
      h("td", { title: agent.last_seen || "" }, when(agent.last_seen),
        agent.offline_since ? h("div", { class: "muted small" }, `offline since ${when(agent.offline_since)}`) : null),
      h("td", {}, button));
  }

  async function refresh() {
    const answer = await api("/agents", { signal });
    const items = answer.items || [];
    if (!items.length) {
      replace(body, h("tr", {}, h("td", { colspan: columns.length, class: "muted" },
        "No agent has registered. Start one with ", h("code", {}, "worldtree agent --server HOST:PORT --labels k=v"), ".")));
    } else {
      replace(body, items.map(row));
    }
  }

  while (!signal.aborted) {
    try {
      await refresh();
    } catch (error) {
      if (signal.aborted) return;
      if (error.status === 404) {
        replace(view, h("h2", {}, "Agents"), h("p", { class: "unavailable" }, "Agents are not available on this server."));
        return;
      }
      message.textContent = error.message;
      if ([401, 403].includes(error.status)) return;
    }
    await sleep(POLL_MS, signal);
  }
}
